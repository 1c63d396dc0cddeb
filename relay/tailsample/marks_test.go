package tailsample

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/baton-relay/baton/buffer"
	"github.com/baton-relay/baton/relay/outcome"
	"github.com/baton-relay/baton/relay/record"
)

var marksStream = record.Marks().ID()

// openClocked is openBuffer with append times from *clock.
func openClocked(t *testing.T, fs vfs.FS, clock *time.Time) *buffer.Buffer {
	t.Helper()
	b, err := buffer.Open("db", buffer.Options{FS: fs, MemTableSize: 256 << 10, Weigh: record.Items, Logger: quietStore{}, Now: func() time.Time { return *clock }})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// mark appends the durable mark of trace id, as ingest does beside an
// error, and marks it in x.
func mark(t *testing.T, b *buffer.Buffer, m *Marks, x *Index, id string, at time.Time) {
	t.Helper()
	e := []buffer.Entry{{Stream: marksStream, Value: AppendMark(nil, id)}}
	if err := b.Append(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	x.Mark(id, at)
	m.Added(e[0].Seq, at)
}

// An error's mark survives a restart: trace A, whose error went out before
// Baton stopped, is kept at keep rate 0 after the index is rebuilt; trace
// B, unmarked, is dropped. Without Load, A is dropped too.
func TestMarksSurviveRebuild(t *testing.T) {
	for _, load := range []bool{true, false} {
		t.Run(fmt.Sprintf("load=%v", load), func(t *testing.T) {
			fs, clock := vfs.NewMem(), t0
			b := openClocked(t, fs, &clock)
			h := newHarness(t, b, Rules{KeepRate: 0})
			m := NewMarks(b, marksStream, h.x, nil)
			h.append(txRecord(traceA, "A1", "ok", t0, 0), txRecord(traceB, "B1", "ok", t0, 0))
			mark(t, b, m, h.x, traceA, t0)
			h.step(2)
			if err := b.Close(); err != nil {
				t.Fatal(err)
			}

			clock = t0.Add(500 * time.Millisecond)
			b = openClocked(t, fs, &clock)
			defer b.Close()
			h = newHarness(t, b, Rules{KeepRate: 0})
			h.now = clock
			if load {
				m = NewMarks(b, marksStream, h.x, nil)
				if err := m.Load(clock); err != nil || m.Loaded() != 1 {
					t.Fatalf("Load: %d marks, %v; want trace A's 1", m.Loaded(), err)
				}
			}
			h.step(2)
			h.now = t0.Add(2 * time.Second)
			h.step(0)
			want := map[bool]string{true: "[A1]", false: "[]"}[load]
			if got := h.delivered(); fmt.Sprint(got) != want || h.out.drops[outcome.ReasonSampled] != map[bool]int{true: 1, false: 2}[load] {
				t.Errorf("delivered %v, sampled drops %d; want %s", got, h.out.drops[outcome.ReasonSampled], want)
			}
		})
	}
}

// Marks leave the buffer MaxTraceWait + MarkSlack after they were
// appended, by Expire while running and by Load on start, and an expired
// mark is not loaded.
func TestMarksExpire(t *testing.T) {
	fs, clock := vfs.NewMem(), t0
	b := openClocked(t, fs, &clock)
	x := NewIndex(IndexOptions{DecisionWait: time.Second, MaxTraceWait: 10 * time.Second})
	m := NewMarks(b, marksStream, x, nil)
	life := 10*time.Second + MarkSlack
	mark(t, b, m, x, traceA, t0)
	clock = t0.Add(5 * time.Second)
	mark(t, b, m, x, traceB, clock)
	pending := func() int64 {
		for _, st := range b.Stats().Streams {
			if st.Stream == marksStream {
				return st.Pending
			}
		}
		return 0
	}
	if err := m.Expire(t0.Add(life - time.Millisecond)); err != nil || pending() != 2 {
		t.Fatalf("before A's life ended: %d marks on disk (%v), want 2", pending(), err)
	}
	if err := m.Expire(t0.Add(life + time.Millisecond)); err != nil || pending() != 1 {
		t.Fatalf("after A's life: %d marks on disk (%v), want B's 1", pending(), err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}

	b = openClocked(t, fs, &clock)
	defer b.Close()
	x = NewIndex(IndexOptions{DecisionWait: time.Second, MaxTraceWait: 10 * time.Second})
	m = NewMarks(b, marksStream, x, nil)
	if err := m.Load(t0.Add(5*time.Second + life + time.Millisecond)); err != nil || m.Loaded() != 0 || pending() != 0 {
		t.Errorf("Load after B's life: %d loaded, %d on disk (%v); want none", m.Loaded(), pending(), err)
	}
	if st := x.Stats(); st.Waiting != 0 {
		t.Errorf("index holds %d traces, want none", st.Waiting)
	}
}

// A trace needs one durable mark per MaxTraceWait: its later errors within
// it are marked in memory only (the trace is due before the first mark
// expires).
func TestHasDurableMark(t *testing.T) {
	x := NewIndex(IndexOptions{DecisionWait: time.Second, MaxTraceWait: 10 * time.Second})
	x.Mark(traceB, t0)
	if x.HasDurableMark(traceA, t0) || x.HasDurableMark(traceB, t0) {
		t.Fatal("a durable mark before any was appended")
	}
	x.MarkDurable(traceA, t0)
	if !x.HasDurableMark(traceA, t0.Add(10*time.Second-time.Millisecond)) {
		t.Error("no durable mark within MaxTraceWait of it")
	}
	if x.HasDurableMark(traceA, t0.Add(10*time.Second)) {
		t.Error("a durable mark MaxTraceWait after it: the next error must append one")
	}
}

// A finished trace's decision survives a restart: trace A, kept by the
// duration threshold at keep rate 0, and trace B, dropped, were decided
// and released before Baton stopped; after the index is rebuilt, a late
// fast item of A is kept and one of B dropped, by the remembered
// decisions, B's with the sampling rule of its keep rate then (1001), not
// now (2002). Without decision records (no Marks), A's late item is
// decided afresh and dropped, and B's under the rule of now.
func TestDecisionsSurviveRebuild(t *testing.T) {
	for _, durable := range []bool{true, false} {
		t.Run(fmt.Sprintf("durable=%v", durable), func(t *testing.T) {
			fs, clock := vfs.NewMem(), t0
			b := openClocked(t, fs, &clock)
			rules := Rules{KeepRate: 0, DurationThreshold: 5 * time.Second, RateRule: 1001}
			h := newHarness(t, b, rules)
			if durable {
				h.s.o.Marks = NewMarks(b, marksStream, h.x, nil)
			}
			h.append(txRecord(traceA, "A-slow", "ok", t0, 6*time.Second), txRecord(traceB, "B1", "ok", t0, 0))
			h.step(2)
			h.now = t0.Add(2 * time.Second)
			h.step(0)
			if got := h.delivered(); fmt.Sprint(got) != "[A-slow]" || h.pending(tailTx) != 0 {
				t.Fatalf("before the restart: delivered %v, %d waiting; want [A-slow], none", got, h.pending(tailTx))
			}
			if got, want := h.pending(marksStream), map[bool]int64{true: 2, false: 0}[durable]; got != want {
				t.Fatalf("%d decision records on disk, want %d", got, want)
			}
			if err := b.Close(); err != nil {
				t.Fatal(err)
			}

			clock = t0.Add(3 * time.Second)
			b = openClocked(t, fs, &clock)
			defer b.Close()
			rules.RateRule = 2002
			h = newHarness(t, b, rules)
			rep := &reports{}
			h.s.o.Reporter = rep
			h.now = clock
			m := NewMarks(b, marksStream, h.x, nil)
			h.s.o.Marks = m
			if err := m.Load(clock); err != nil || m.LoadedDecisions() != map[bool]int{true: 2, false: 0}[durable] {
				t.Fatalf("Load: %d decisions, %v", m.LoadedDecisions(), err)
			}
			h.append(txRecord(traceA, "A-late", "ok", clock, 0), txRecord(traceB, "B-late", "ok", clock, 0))
			h.step(2)
			h.now = clock.Add(2 * time.Second)
			h.step(0)
			want := map[bool]string{true: "[A-slow A-late]", false: "[A-slow]"}[durable]
			if got := h.delivered(); fmt.Sprint(got) != want || h.out.drops[outcome.ReasonSampled] != map[bool]int{true: 1, false: 2}[durable] {
				t.Errorf("after the restart: delivered %v, sampled drops %d; want %s", got, h.out.drops[outcome.ReasonSampled], want)
			}
			wantCode := map[bool]string{true: "map[sampled Sampled:1001:1]", false: "map[sampled Sampled:2002:2]"}[durable]
			if got := rep.String(); got != wantCode {
				t.Errorf("after the restart: reported %s, want %s", got, wantCode)
			}
			// A remembered decision is on disk already: late items add none.
			if got, want := h.pending(marksStream), map[bool]int64{true: 2, false: 2}[durable]; got != want {
				t.Errorf("after the late items: %d decision records on disk, want %d", got, want)
			}
		})
	}
}

// Decision records are expired with the marks: MaxTraceWait + MarkSlack
// after they were appended, and one that old is not loaded.
func TestDecisionsExpire(t *testing.T) {
	fs, clock := vfs.NewMem(), t0
	b := openClocked(t, fs, &clock)
	h := newHarness(t, b, Rules{KeepRate: 1})
	h.s.o.Marks = NewMarks(b, marksStream, h.x, nil)
	h.append(txRecord(traceA, "A1", "ok", t0, 0))
	h.step(1)
	h.now = t0.Add(2 * time.Second)
	h.step(0)
	life := 10*time.Second + MarkSlack
	if err := h.s.o.Marks.Expire(t0.Add(life)); err != nil || h.pending(marksStream) != 1 {
		t.Fatalf("within its life: %d decision records (%v), want 1", h.pending(marksStream), err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b = openClocked(t, fs, &clock)
	defer b.Close()
	x := NewIndex(IndexOptions{DecisionWait: time.Second, MaxTraceWait: 10 * time.Second})
	m := NewMarks(b, marksStream, x, nil)
	if err := m.Load(t0.Add(2*time.Second + life + time.Millisecond)); err != nil || m.LoadedDecisions() != 0 || x.Stats().Waiting != 0 {
		t.Errorf("Load past its life: %d loaded, %d indexed (%v); want none", m.LoadedDecisions(), x.Stats().Waiting, err)
	}
	for _, st := range b.Stats().Streams {
		if st.Stream == marksStream && st.Pending != 0 {
			t.Errorf("%d expired decision records left on disk", st.Pending)
		}
	}
}
