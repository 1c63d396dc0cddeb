package buffer

import (
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// Peek returns the records of s with seq in [from, to] that are not acked,
// in seq order, without moving the read cursor or the watermark:
// for a consumer that indexes a stream as it reads it and settles its
// records later, out of the order it read them (the relay's trace buffer),
// without keeping their values in memory meanwhile. Corrupt records are
// skipped (Read quarantines them). Records are copied into dst.
func (b *Buffer) Peek(s Stream, from, to Seq, dst []Record) ([]Record, error) {
	if err := b.enter(); err != nil {
		return dst[:0], err
	}
	defer b.active.Done()
	out := dst[:0]
	b.mu.Lock()
	if st := b.streams[s]; st != nil {
		from = max(from, st.m.Watermark+1) // acked records are deleted lazily
	}
	b.mu.Unlock()
	if to < from {
		return out, nil
	}
	it, err := b.db.NewIter(&pebble.IterOptions{LowerBound: recordKey(s, from), UpperBound: recordKey(s, to+1)})
	if err != nil {
		return out, fmt.Errorf("buffer: peek stream %d: %w", s, err)
	}
	for ok := it.First(); ok; ok = it.Next() {
		_, _, q, _ := decodeRecordKey(it.Key())
		v, verr := it.ValueAndErr()
		if verr != nil {
			err = verr
			break
		}
		payload, at, valid := decodeRecordValue(v)
		if !valid {
			continue
		}
		out = appendRecord(out, q, at, payload)
	}
	if cerr := it.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return out[:0], fmt.Errorf("buffer: peek stream %d: %w", s, err)
	}
	return out, nil
}
