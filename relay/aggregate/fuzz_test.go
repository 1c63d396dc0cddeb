package aggregate

import (
	"testing"
	"time"

	"github.com/baton-relay/baton/envelope"
)

// FuzzInsert feeds parsed statsd payloads through a small-budget aggregator
// (with a per-scope budget when split/8 is odd) and checks the invariants:
// no panic, every accepted bucket comes out (ParseStatsd gives each one
// merge), and the accounting returns to zero.
func FuzzInsert(f *testing.F) {
	f.Add([]byte("a:1|c\nb:1:2|d|#x:y\na:2|c|T1700000003\ns:1:2|s\ng:1:0:3:4:2|g"), uint8(2))
	f.Add([]byte("transactions/x@ms:1|d|#a:1,b:2\ntransactions/x@ms:2|d|#b:2,a:1|T1699999990"), uint8(1))
	f.Add([]byte("a:1|c|#k:1\na:1|c|#k:2\na:1|c|#k:3\nb:1:2:3|d|#k:1\na:1|c|#k:1|T1699999990"), uint8(8))
	f.Fuzz(func(t *testing.T, payload []byte, split uint8) {
		now := time.Unix(base, 0)
		bs, _ := envelope.ParseStatsd(nil, payload, now)
		a := newAgg(t, Options{MaxBytes: 2048, MaxScopeBytes: int64(split/8%2) * 1024, Partitions: 3, Now: func() time.Time { return now }})
		step := int(split%8) + 1
		var out uint64
		count := func(batches []Batch) {
			for _, b := range flat(batches) {
				out += uint64(b.Metadata.Merges)
				if b.Width != 10 || b.Timestamp%10 != 0 {
					t.Fatalf("bucket not aligned: %+v", b)
				}
			}
		}
		for i := 0; i < len(bs); i += step {
			chunk := bs[i:min(i+step, len(bs))]
			a.Insert(Scope{ProjectID: uint64(i % 2)}, Source{Seq: uint64(i)}, chunk)
			count(a.Flush(now, nil)) // buckets made due early by a budget
			checkScopeBytes(t, a)
		}
		count(a.FlushAll(nil))
		st := a.Stats()
		if st.Buckets != 0 || st.Bytes != 0 || st.Inserted+st.Rejected != uint64(len(bs)) {
			t.Fatalf("stats after FlushAll: %+v (%d parsed)", st, len(bs))
		}
		if out != st.Inserted || st.Flushed+st.Merged != st.Inserted {
			t.Fatalf("stats %+v: %d merges flushed", st, out)
		}
		if len(bs) > 0 {
			if w, ok := a.Watermark(0); !ok || w != uint64((len(bs)-1)/step*step) {
				t.Fatalf("Watermark = %d, %v after FlushAll", w, ok)
			}
		}
	})
}
