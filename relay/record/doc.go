// Package record is the layout of what Baton keeps in its buffer: the
// record codec (one class part of an accepted envelope with the metadata
// its forwarder needs) and the stream ids that say which queue a record
// waits in. Ingest writes records; forwarding, release, aggregation and
// `baton buffer inspect` read them. The buffer itself treats both as
// opaque; only this package knows their layout.
//
// # Stream ids
//
//	bit  15       14       13..8   7..0
//	     pending  flushed  class   partition
//
// A class stream (StreamFor) carries records ready for the class's sink. Its
// Pending twin holds envelopes that wait for their project's config
// (managed mode); Flushed streams hold aggregated metric buckets. The
// partition of a public key is a fixed hash (Partition), so a project keeps
// its stream, and its order, across restarts.
package record
