package tailsample

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/baton-relay/baton/buffer"
	"github.com/baton-relay/baton/envelope"
	"github.com/baton-relay/baton/relay/record"
)

// BenchmarkTraceBuffer measures transactions per second through the trace
// buffer (append to the Tail stream, read and index, decide, Peek and Move
// to the class stream: keep_rate 1, so every item is written twice) against
// head sampling's path (append to the class stream only), on a buffer on
// disk with the default (strict) durability, 5 transactions per trace,
// appended 100 per commit. tail+rules adds three keep rules that match
// nothing (each item is parsed once more for them). +decisions makes the
// decisions durable (Options.Marks: one decision record per trace, in the
// settling Move); /1 has one transaction per trace, its worst case.
func BenchmarkTraceBuffer(b *testing.B) {
	for _, mode := range []string{"head", "tail", "tail+rules", "tail+decisions", "tail/1", "tail+decisions/1"} {
		b.Run(mode, func(b *testing.B) {
			perTrace := 5
			if strings.HasSuffix(mode, "/1") {
				perTrace = 1
			}
			buf, err := buffer.Open(b.TempDir(), buffer.Options{Weigh: record.Items, Logger: quietStore{}})
			if err != nil {
				b.Fatal(err)
			}
			defer buf.Close()
			h := &harness{b: buf, out: &counts{}, now: t0}
			rules := Rules{KeepRate: 1}
			if mode == "tail+rules" {
				rules.Match = []Match{{Attribute: "tier", Equals: "gold"}, {Transaction: "/checkout/*"}, {Release: "9.*"}}
			}
			h.x = NewIndex(IndexOptions{Rules: rules, DecisionWait: time.Second, MaxTraceWait: time.Minute})
			h.s = NewSampler(Options{Buffer: buf, Stream: tailTx, Index: h.x, Outcomes: h.out,
				Route: func(c envelope.Class, _ []byte) buffer.Stream { return record.StreamFor(c, 0).ID() },
				Now:   func() time.Time { return h.now }})
			if strings.HasPrefix(mode, "tail+decisions") {
				h.s.o.Marks = NewMarks(buf, record.Marks().ID(), h.x, nil)
			}
			const batch = 100
			vals := make([][]byte, batch)
			es := make([]buffer.Entry, batch)
			ctx := context.Background()
			var recs []buffer.Record
			b.SetBytes(int64(len(txRecord(traceA, "GET /bench", "ok", t0, 0))))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i += batch {
				for j := range batch {
					vals[j] = txRecord(fmt.Sprintf("%032x", (i+j)/perTrace), "GET /bench", "ok", t0, 0)
					es[j] = buffer.Entry{Stream: classTx, Value: vals[j]}
					if mode != "head" {
						es[j].Stream = tailTx
					}
				}
				if err := buf.Append(ctx, es); err != nil {
					b.Fatal(err)
				}
				if mode == "head" {
					continue
				}
				if recs, err = buf.Read(ctx, tailTx, recs[:0], batch, 0); err != nil {
					b.Fatal(err)
				}
				for k := range recs {
					h.s.index(&recs[k])
				}
				h.now = t0.Add(2 * time.Second) // every trace of the batch is due
				if err := h.s.settle(ctx); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tx/s")
			if h.s.o.Marks != nil {
				var records int64 // 0 when the marks stream was never written
				for _, st := range buf.Stats().Streams {
					if st.Stream == record.Marks().ID() {
						records = st.Pending
					}
				}
				if want := int64((b.N + batch - 1) / batch * batch / perTrace); records != want {
					b.Fatalf("%d decision records on disk, want one per trace (%d)", records, want)
				}
			}
		})
	}
}

// BenchmarkMemoryPerTrace reports the heap an Index and a Sampler's queue
// take per waiting trace of one item (100,000 traces; -benchtime 1x).
func BenchmarkMemoryPerTrace(b *testing.B) {
	const n = 100_000
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("%032x", i)
	}
	for range b.N {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		x := NewIndex(IndexOptions{DecisionWait: time.Second, MaxTraceWait: time.Minute, MaxTraces: n})
		s := &Sampler{}
		for i, id := range ids {
			id = strings.Clone(id) // as index does: one string per record read
			x.observe(id, t0, false, false, nil, 1, 0)
			s.held = append(s.held, heldRecord{seq: buffer.Seq(i), id: id})
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "B/trace")
		runtime.KeepAlive(x)
		runtime.KeepAlive(s)
	}
}

// BenchmarkInspect is the CPU of looking at one transaction record's
// envelope: status and duration, then with three keep rules.
func BenchmarkInspect(b *testing.B) {
	var rec record.Record
	if err := record.Decode(txRecord(traceA, "GET /bench", "ok", t0, 0), &rec, &record.Slab{}); err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		rules Rules
	}{
		{"plain", Rules{DurationThreshold: time.Second}},
		{"rules", Rules{DurationThreshold: time.Second, Match: []Match{{Attribute: "tier", Equals: "gold"}, {Transaction: "/checkout/*"}, {Release: "9.*"}}}},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for range b.N {
				c.rules.Inspect(rec.Envelope)
			}
		})
	}
}

// memBuffer is a Buffer in memory for the CPU benchmarks: one stream,
// Peek and Move only (the benchmark indexes what it appends itself).
type memBuffer struct{ recs []buffer.Record }

func (m *memBuffer) Read(context.Context, buffer.Stream, []buffer.Record, int, int) ([]buffer.Record, error) {
	panic("memBuffer: Read")
}

func (m *memBuffer) Peek(_ buffer.Stream, from, to buffer.Seq, dst []buffer.Record) ([]buffer.Record, error) {
	for _, r := range m.recs {
		if r.Seq >= from && r.Seq <= to {
			dst = append(dst, r)
		}
	}
	return dst, nil
}

func (m *memBuffer) Move(_ context.Context, _ []buffer.Entry, _ buffer.Stream, upTo buffer.Seq) error {
	n := 0
	for n < len(m.recs) && m.recs[n].Seq <= upTo {
		n++
	}
	m.recs = append(m.recs[:0], m.recs[n:]...)
	return nil
}

// BenchmarkSamplerRecord is the CPU a Sampler spends on one transaction
// record, without the disk: index it as read (decode, inspect, Index),
// then decide and settle it (Peek, decode, Move, release), 5 per trace,
// 100 per settle; rules adds three keep rules that match nothing.
func BenchmarkSamplerRecord(b *testing.B) {
	for _, mode := range []string{"plain", "rules"} {
		b.Run(mode, func(b *testing.B) {
			rules := Rules{KeepRate: 1, DurationThreshold: time.Minute}
			if mode == "rules" {
				rules.Match = []Match{{Attribute: "tier", Equals: "gold"}, {Transaction: "/checkout/*"}, {Release: "9.*"}}
			}
			const batch, perTrace = 100, 5
			vals := make([][]byte, batch)
			for j := range vals {
				vals[j] = txRecord(fmt.Sprintf("%032x", j/perTrace), "GET /bench", "ok", t0, 0)
			}
			mb := &memBuffer{}
			now := t0
			x := NewIndex(IndexOptions{Rules: rules, DecisionWait: time.Second, MaxTraceWait: time.Minute})
			s := NewSampler(Options{Buffer: mb, Stream: tailTx, Index: x, Outcomes: &counts{},
				Route: func(c envelope.Class, _ []byte) buffer.Stream { return record.StreamFor(c, 0).ID() },
				Now:   func() time.Time { return now }})
			ctx := context.Background()
			seq := buffer.Seq(0)
			b.ReportAllocs()
			for i := 0; i < b.N; i += batch {
				now = now.Add(time.Minute) // the last batch's traces are forgotten, this one's are new
				for _, v := range vals {
					seq++
					mb.recs = append(mb.recs, buffer.Record{Seq: seq, Value: v})
					s.index(&mb.recs[len(mb.recs)-1])
				}
				now = now.Add(2 * time.Second) // every trace of the batch is due
				if err := s.settle(ctx); err != nil {
					b.Fatal(err)
				}
				if len(s.held) != 0 {
					b.Fatalf("%d records still held", len(s.held))
				}
			}
			if st := x.Stats(); st.Kept == 0 || st.Dropped != 0 {
				b.Fatalf("stats %+v: want every trace kept", st)
			}
		})
	}
}
