package relay

import (
	"encoding/binary"
	"time"

	"github.com/baton-relay/baton/buffer"
	"github.com/baton-relay/baton/envelope"
	"github.com/baton-relay/baton/relay/outcome"
	"github.com/baton-relay/baton/relay/record"
)

// The buffer's own drops (buffer.max_age expiry, when_full: drop_oldest
// eviction, corrupt records) reported as outcomes: the buffer's Digest
// keeps, for each record it drops, what its outcomes need (dropDigest),
// and OnDrop, once the drop is committed, emits them (reportBufferDrops).
// Only raw outcomes report these reasons (Relay's client reports carry
// filtered, sampled and rate-limited drops only), so with client reports
// or outcomes off no digest is made.

// maxDropDigests bounds the digests of one drop report: about 100 bytes a
// record, so some 10,000 records, what the reporter holds between flushes
// anyway (outcome.DefaultMaxEntries). The outcomes of records past it are
// counted as lost.
const maxDropDigests = 1 << 20

// dropDigester makes the digests of dropped records. The buffer calls it
// from its commit loop only, one call at a time, so its scratch is its own.
type dropDigester struct {
	limits *envelope.Limits
	slab   record.Slab
	env    envelope.Envelope
	body   []byte
	addr   []byte
	pairs  []dropPair
}

type dropPair struct {
	cat envelope.Category
	q   int
}

// digest appends one entry for the record v of stream s, length-prefixed:
//
//	items     uvarint   the record header's item count
//	project   uvarint
//	key       uvarint length + public key
//	received  8 bytes BE unix nanoseconds
//	event id  16 bytes (zero when none)
//	addr      uvarint length + the client's address (may be empty)
//	n         uvarint, then n × (category uvarint, quantity uvarint)
//
// A raw-outcomes record, one that does not decode (corrupt) or dst past
// maxDropDigests gets no entry.
func (d *dropDigester) digest(dst []byte, s buffer.Stream, v []byte) []byte {
	if record.Stream(s).IsOutcomes() || len(dst) >= maxDropDigests {
		return dst
	}
	var rec record.Record
	d.slab.Reset()
	if record.Decode(v, &rec, &d.slab) != nil || d.env.Parse(rec.Envelope, d.limits) != nil {
		return dst
	}
	b := binary.AppendUvarint(d.body[:0], uint64(rec.Items))
	b = binary.AppendUvarint(b, rec.ProjectID)
	b = appendBytes(b, rec.PublicKey)
	b = binary.BigEndian.AppendUint64(b, uint64(rec.ReceivedAt))
	b = append(b, d.env.Header.EventID[:]...)
	d.addr = d.addr[:0]
	if a := firstAddr(rec.ClientIP); a.IsValid() {
		d.addr = a.AppendTo(d.addr)
	}
	b = appendBytes(b, d.addr)
	d.pairs = d.pairs[:0]
	for i := range d.env.Items {
		outcome.Quantities(&d.env.Items[i], func(c envelope.Category, q int) {
			d.pairs = append(d.pairs, dropPair{c, q})
		})
	}
	b = binary.AppendUvarint(b, uint64(len(d.pairs)))
	for _, p := range d.pairs {
		b = binary.AppendUvarint(b, uint64(uint8(p.cat)))
		b = binary.AppendUvarint(b, uint64(p.q))
	}
	d.body = b
	d.env.Reset()
	return appendBytes(dst, b)
}

func appendBytes(dst, b []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(b)))
	return append(dst, b...)
}

// dropDigest is the buffer's Digest: nil unless raw outcomes are on.
func (r *Relay) dropDigest() func([]byte, buffer.Stream, []byte) []byte {
	if !r.reporter.Raw() {
		return nil
	}
	d := &dropDigester{limits: &r.limits}
	return d.digest
}

// onBufferDrop is the buffer's OnDrop: it counts the drop and reports the
// outcomes of the dropped records from their digests.
func (r *Relay) onBufferDrop(s buffer.Stream, records int, _, items int64, reason string, digests []byte) {
	if record.Stream(s).Class() >= envelope.NumClasses {
		return // tail sampling's error marks (max_age expired them): no envelope
	}
	why := outcome.ReasonExpired
	switch reason {
	case buffer.DropBufferFull:
		why = outcome.ReasonBufferFull
	case buffer.DropCorrupt:
		why = outcome.ReasonCorrupt
	}
	r.outcomes.Drop(record.Stream(s).Class(), why, records, int(items))
	if record.Stream(s).IsOutcomes() {
		r.rawCounts.Drop(record.Stream(s).Class(), why, records, int(items))
		return // outcomes are not reported as outcomes
	}
	if !r.reporter.Raw() {
		return
	}
	var o outcome.Origin
	var pairs []dropPair
	for len(digests) > 0 {
		e, rest, ok := cutBytes(digests)
		if !ok {
			break
		}
		digests = rest
		n, ps, ok := decodeDropDigest(e, &o, pairs[:0])
		if !ok {
			break
		}
		pairs = ps
		items -= int64(n)
		r.scopeOrigin(&o, nil)
		for _, p := range pairs {
			r.reporter.EmitFrom(&o, p.cat, why, "", p.q)
		}
	}
	if items > 0 {
		r.reporter.Lose(items) // records past maxDropDigests, or that did not decode
	}
}

// decodeDropDigest reads one entry dropDigester.digest wrote into o and
// pairs, and returns the record's item count.
func decodeDropDigest(e []byte, o *outcome.Origin, pairs []dropPair) (items int, _ []dropPair, ok bool) {
	var n, project uint64
	var key, addr []byte
	if n, e, ok = cutUvarint(e); !ok {
		return 0, pairs, false
	}
	if project, e, ok = cutUvarint(e); !ok {
		return 0, pairs, false
	}
	if key, e, ok = cutBytes(e); !ok || len(e) < 8+16 {
		return 0, pairs, false
	}
	*o = outcome.Origin{ProjectID: project, Key: key, Received: time.Unix(0, int64(binary.BigEndian.Uint64(e)))}
	copy(o.EventID[:], e[8:24])
	if addr, e, ok = cutBytes(e[24:]); !ok {
		return 0, pairs, false
	}
	if len(addr) > 0 {
		o.RemoteAddr = string(addr)
	}
	var np uint64
	if np, e, ok = cutUvarint(e); !ok {
		return 0, pairs, false
	}
	for range np {
		var c, q uint64
		if c, e, ok = cutUvarint(e); !ok {
			return 0, pairs, false
		}
		if q, e, ok = cutUvarint(e); !ok {
			return 0, pairs, false
		}
		pairs = append(pairs, dropPair{envelope.Category(int8(uint8(c))), int(q)})
	}
	return int(n), pairs, true
}

func cutUvarint(b []byte) (uint64, []byte, bool) {
	v, k := binary.Uvarint(b)
	if k <= 0 {
		return 0, nil, false
	}
	return v, b[k:], true
}

func cutBytes(b []byte) (field, rest []byte, ok bool) {
	n, b, ok := cutUvarint(b)
	if !ok || n > uint64(len(b)) {
		return nil, nil, false
	}
	return b[:n:n], b[n:], true
}
