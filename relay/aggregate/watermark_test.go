package aggregate

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/baton-relay/baton/envelope"
)

func TestWatermarkBasics(t *testing.T) {
	clk := newClock(base)
	a := newAgg(t, Options{Now: clk.Now})
	wm := func(stream uint32, want uint64, wantOK bool) {
		t.Helper()
		if got, ok := a.Watermark(stream); got != want || ok != wantOK {
			t.Errorf("Watermark(%d) = %d, %v; want %d, %v", stream, got, ok, want, wantOK)
		}
	}
	wm(1, 0, false) // nothing inserted
	a.Insert(sc1, Source{Stream: 1, Seq: 5}, nil)
	wm(1, 5, true) // nothing held: the last seq
	a.Insert(sc1, Source{Stream: 1, Seq: 6}, []envelope.Bucket{counter("old", 1, 1)})
	wm(1, 6, true) // rejected buckets hold nothing

	a.Insert(sc1, Source{Stream: 1, Seq: 7}, []envelope.Bucket{counter("a", base, 1)})
	a.Insert(sc1, Source{Stream: 1, Seq: 8}, []envelope.Bucket{counter("a", base, 1)})    // merges into 7's bucket
	a.Insert(sc1, Source{Stream: 1, Seq: 9}, []envelope.Bucket{counter("b", base+10, 1)}) // next window
	a.Insert(sc1, Source{Stream: 2, Seq: 1}, []envelope.Bucket{counter("b", base+10, 1)}) // other stream
	wm(1, 6, true)
	wm(2, 0, true)
	due, _ := a.NextDue()
	a.Flush(due, nil) // the first window
	wm(1, 8, true)
	wm(2, 0, true)
	a.Insert(sc1, Source{Stream: 2, Seq: 2}, []envelope.Bucket{counter("c", base+10, 1)})
	a.FlushAll(nil)
	wm(1, 9, true)
	wm(2, 2, true)

	// A held seq 0 leaves no seq to ack.
	a.Insert(sc1, Source{Stream: 3, Seq: 0}, []envelope.Bucket{counter("a", base, 1)})
	wm(3, 0, false)
	a.FlushAll(nil)
	wm(3, 0, true)
}

// TestWatermarkOutOfOrder: a seq below one already inserted (a caller bug,
// or a rewind) still keeps the watermark below it while its bucket is held.
func TestWatermarkOutOfOrder(t *testing.T) {
	a := newAgg(t, Options{Now: newClock(base).Now})
	a.Insert(sc1, Source{Seq: 10}, []envelope.Bucket{counter("a", base, 1)})
	a.Insert(sc1, Source{Seq: 20}, []envelope.Bucket{counter("b", base, 1)})
	a.Insert(sc1, Source{Seq: 15}, []envelope.Bucket{counter("b", base, 1)}) // lowers b's smallest seq
	a.Insert(sc1, Source{Seq: 5}, []envelope.Bucket{counter("c", base+10, 1)})
	if w, _ := a.Watermark(0); w != 4 {
		t.Errorf("watermark %d, want 4", w)
	}
	due, _ := a.NextDue()
	a.Flush(due, nil) // a and b
	if w, _ := a.Watermark(0); w != 4 {
		t.Errorf("watermark %d, want 4 (c is held)", w)
	}
	a.FlushAll(nil)
	if w, _ := a.Watermark(0); w != 20 {
		t.Errorf("watermark %d, want 20", w)
	}
}

// TestWatermarkModel checks Watermark against a brute-force model over
// random inserts from two streams, random flushes and budget pressure
// (MaxBytes, and MaxScopeBytes for odd seeds).
// Every inserted bucket is a distribution with a unique value, so the
// flushed buckets tell exactly which inserts are still held.
func TestWatermarkModel(t *testing.T) {
	for seed := range uint64(30) {
		r := rand.New(rand.NewPCG(seed, 99))
		clk := newClock(base)
		o := Options{MaxBytes: int64(1500 + r.IntN(5000)), Now: clk.Now}
		if seed%2 == 1 { // no draw from r: keep its sequence as it was
			o.MaxScopeBytes = o.MaxBytes * int64(2+seed%4) / 8
		}
		a := newAgg(t, o)
		type contrib struct {
			stream uint32
			seq    uint64
		}
		held := map[float64]contrib{} // unique value → its record
		last := map[uint32]uint64{}
		seq := [2]uint64{}
		next := 0.0
		for op := range 3000 {
			switch r.IntN(10) {
			case 0, 1: // flush what is due
				clk.t = clk.t.Add(time.Duration(r.IntN(20)) * time.Second)
				for _, b := range flat(a.Flush(clk.t, nil)) {
					for _, v := range b.Value.Distribution {
						if _, ok := held[v]; !ok {
							t.Fatalf("seed %d: value %v flushed twice or never inserted", seed, v)
						}
						delete(held, v)
					}
				}
			default:
				s := uint32(r.IntN(2))
				seq[s] += uint64(r.IntN(3)) // repeats and gaps
				last[s] = seq[s]
				src := Source{Stream: s, Seq: seq[s]}
				var bs []envelope.Bucket
				for range r.IntN(4) {
					next++
					ts := clk.t.Unix() - int64(r.IntN(30))
					bs = append(bs, dist(fmt.Sprint("m", r.IntN(5)), ts, next))
					held[next] = contrib{s, src.Seq}
				}
				a.Insert(Scope{ProjectID: uint64(r.IntN(2))}, src, bs)
			}
			checkScopeBytes(t, a)
			for s := range uint32(2) {
				want, wantOK := last[s] // nothing held: the last seq
				minHeld, any := uint64(0), false
				for _, c := range held {
					if c.stream == s && (!any || c.seq < minHeld) {
						minHeld, any = c.seq, true
					}
				}
				if any {
					want, wantOK = max(minHeld, 1)-1, minHeld > 0
				}
				got, ok := a.Watermark(s)
				if got != want || ok != wantOK {
					t.Fatalf("seed %d op %d: Watermark(%d) = %d, %v; model %d, %v", seed, op, s, got, ok, want, wantOK)
				}
			}
		}
		if st := a.Stats(); o.MaxScopeBytes == 0 && st.FlushedEarly == 0 {
			t.Errorf("seed %d: the budget never forced a flush", seed)
		} else if o.MaxScopeBytes > 0 && st.FlushedEarlyScope == 0 {
			t.Errorf("seed %d: the scope budget never forced a flush", seed)
		}
	}
}
