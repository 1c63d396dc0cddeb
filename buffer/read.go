package buffer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// Read returns the next records of s above its read cursor, in seq order,
// and advances the cursor past them. It blocks until at least one record is
// available or ctx is done. At most maxRecords records and, beyond the first,
// at most maxBytes of payload are returned; a limit ≤ 0 means no limit.
//
// Records are copied into dst (reusing dst[i].Value's capacity), so the
// caller owns them. Expired records are dropped and corrupt ones quarantined
// on the way; neither is returned.
func (b *Buffer) Read(ctx context.Context, s Stream, dst []Record, maxRecords, maxBytes int) ([]Record, error) {
	if err := b.enter(); err != nil {
		return dst[:0], err
	}
	defer b.active.Done()
	for {
		if err := b.failure(); err != nil {
			return dst[:0], err
		}
		b.mu.Lock()
		st := b.streams[s]
		if st == nil {
			st = newStream(s, meta{Next: 1})
			b.streams[s] = st
		}
		if st.reading {
			b.mu.Unlock()
			return dst[:0], fmt.Errorf("buffer: concurrent Read of stream %d", s)
		}
		st.cursor = max(st.cursor, st.m.Watermark)
		from, to := st.cursor, st.last()
		if from >= to || st.dropping {
			wait := st.notify
			b.mu.Unlock()
			select {
			case <-wait:
				continue
			case <-ctx.Done():
				return dst[:0], ctx.Err()
			case <-b.closing:
				return dst[:0], ErrClosed
			case <-b.failed:
				continue
			}
		}
		st.reading, st.reserved = true, to
		b.mu.Unlock()

		out, inflight, scanned, err := b.readRange(s, from, to, dst, maxRecords, maxBytes)

		b.mu.Lock()
		st.reading = false
		if err == nil && st.cursor == from { // no Rewind meanwhile
			st.cursor = scanned
			for _, r := range inflight {
				if r.seq > st.m.Watermark {
					st.inflight.push(r)
				}
			}
		}
		b.mu.Unlock()
		if err != nil || len(out) > 0 {
			return out, err
		}
		dst = out
		if err := ctx.Err(); err != nil {
			return out, err
		}
	}
}

// readRange copies records of s in (from, to] into dst and returns them,
// their stored sizes and weights and the last seq consumed. Expired and corrupt records
// met on the way are removed through the commit loop before it returns, so a
// Rewind never meets them again.
func (b *Buffer) readRange(s Stream, from, to Seq, dst []Record, maxRecords, maxBytes int) (out []Record, inflight []inflightRec, scanned Seq, err error) {
	it, err := b.db.NewIter(&pebble.IterOptions{LowerBound: recordKey(s, from+1), UpperBound: recordKey(s, to+1)})
	if err != nil {
		return dst[:0], nil, from, fmt.Errorf("buffer: read stream %d: %w", s, err)
	}
	out, scanned = dst[:0], from
	var (
		cutoff      = b.expiryCutoff()
		expiredTo   Seq
		corrupt     []corruptRecord
		payloadSize int
	)
	for ok := it.First(); ok; ok = it.Next() {
		_, _, q, _ := decodeRecordKey(it.Key())
		v, verr := it.ValueAndErr()
		if verr != nil {
			err = verr
			break
		}
		payload, at, valid := decodeRecordValue(v)
		switch {
		case !valid:
			corrupt = append(corrupt, corruptRecord{q, append([]byte(nil), v...)})
			scanned = q
			continue
		case len(out) == 0 && !cutoff.IsZero() && at.Before(cutoff):
			expiredTo, scanned = q, q // expired records form a prefix
			continue
		}
		if len(out) > 0 && ((maxRecords > 0 && len(out) >= maxRecords) || (maxBytes > 0 && payloadSize+len(payload) > maxBytes)) {
			break
		}
		out = appendRecord(out, q, at, payload)
		var w int64
		if b.opts.Weigh != nil {
			w = b.opts.Weigh(payload)
		}
		inflight = append(inflight, inflightRec{q, int64(len(it.Key()) + len(v)), w})
		payloadSize += len(payload)
		scanned = q
	}
	if cerr := it.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		if errors.Is(err, pebble.ErrCorruption) {
			err = fmt.Errorf("%w: %w", ErrCorrupt, err)
		}
		return out[:0], nil, from, fmt.Errorf("buffer: read stream %d: %w", s, err)
	}
	if expiredTo > from {
		r := getRequest(opDrop)
		r.stream, r.from, r.to, r.reason = s, from, expiredTo, DropExpired
		if err := b.submit(context.Background(), r); err != nil {
			return out[:0], nil, from, err
		}
	}
	corrupt = slices.DeleteFunc(corrupt, func(c corruptRecord) bool { return c.seq <= expiredTo }) // quarantined by the drop
	if len(corrupt) > 0 {
		r := getRequest(opQuarantine)
		r.stream, r.corrupt = s, corrupt
		if err := b.submit(context.Background(), r); err != nil {
			return out[:0], nil, from, err
		}
		b.opts.Logger.Errorf("buffer: stream %d: quarantined %d corrupt records", s, len(corrupt))
	}
	return out, inflight, scanned, nil
}

func (b *Buffer) expiryCutoff() (t time.Time) {
	if b.opts.MaxAge <= 0 {
		return t
	}
	return b.opts.Now().Add(-b.opts.MaxAge)
}

// appendRecord appends a copy of payload as record q to out, reusing the
// Value buffer of a record out held before (in its spare capacity).
func appendRecord(out []Record, q Seq, at time.Time, payload []byte) []Record {
	var r Record
	if n := len(out); n < cap(out) {
		r = out[:n+1][n]
	}
	r.Seq, r.Appended = q, at
	r.Value = append(r.Value[:0], payload...)
	return append(out, r)
}
