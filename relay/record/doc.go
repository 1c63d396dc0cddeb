// Package record is the layout of what Baton keeps in its buffer: the
// record codec (one class part of an accepted envelope with the metadata
// its forwarder needs) and the stream ids that say which queue a record
// waits in. Ingest writes records; forwarding, release, aggregation and
// `baton buffer inspect` read them. The buffer itself treats both as
// opaque; only this package knows their layout.
//
// # Records
//
// A record is a fixed header (version, class, items, received time,
// project, and for a sampled request the ids of its ingest span), four
// length-prefixed fields (public key, client, forwarded-for chain, origin)
// and the class envelope, S2-compressed when that pays (see Record).
// Version 4 stores fields whole with uvarint lengths, version 6 adds the
// trace; versions 1 to 3, written by earlier Batons, had 1-byte lengths and
// are still read.
//
// # Stream ids
//
//	bit  15       14       13         12     11..8   7..0
//	     pending  flushed  outcomes   tail   class   partition
//
// A class stream (StreamFor) carries records ready for the class's sink. Its
// Pending twin holds envelopes that wait for their project's config
// (managed mode); Flushed streams hold aggregated metric buckets; the
// Outcomes stream (class client_report) holds raw outcomes, one JSON per
// line, instead of an envelope; a Tail stream (one per class) holds the
// transactions and spans of tail-sampled projects until their trace is
// decided (relay/tailsample). Classes fit in 4 bits (envelope.NumClasses
// ≤ 16). The
// partition of a public key is a fixed hash (Partition), so a project keeps
// its stream, and its order, across restarts.
package record
