package tailsample

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/baton-relay/baton/buffer"
	"github.com/baton-relay/baton/envelope"
	"github.com/baton-relay/baton/relay/outcome"
	"github.com/baton-relay/baton/relay/record"
)

var (
	tailTx  = record.StreamFor(envelope.ClassTransaction, 0).Tail().ID()
	classTx = record.StreamFor(envelope.ClassTransaction, 0).ID()
	t0      = time.Unix(1_700_000_000, 0)
)

type quietStore struct{}

func (quietStore) Infof(string, ...any)              {}
func (quietStore) Errorf(string, ...any)             {}
func (quietStore) Fatalf(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }

func openBuffer(t *testing.T, fs vfs.FS) *buffer.Buffer {
	t.Helper()
	b, err := buffer.Open("db", buffer.Options{FS: fs, MemTableSize: 256 << 10, Weigh: record.Items, Logger: quietStore{}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// txRecord is a buffer record of one transaction of trace id, received at,
// lasting dur, with status.
func txRecord(id, name, status string, at time.Time, dur time.Duration) []byte {
	tx := fmt.Sprintf(`{"type":"transaction","transaction":%q,"start_timestamp":1700000000,"timestamp":%v,"contexts":{"trace":{"trace_id":%q,"span_id":"fa90fdead5f74052","status":%q}}}`,
		name, 1700000000+dur.Seconds(), id, status)
	env := fmt.Appendf(nil, "{\"event_id\":\"%032x\",\"trace\":{\"trace_id\":%q,\"public_key\":\"k\"}}\n{\"type\":\"transaction\",\"length\":%d}\n%s\n", len(name), id, len(tx), tx)
	rec := record.Record{Class: envelope.ClassTransaction, Items: 1, ReceivedAt: at.UnixNano(), ProjectID: 42, PublicKey: []byte("k")}
	return append(record.AppendHeader(nil, &rec), env...)
}

type counts struct {
	mu    sync.Mutex
	drops map[outcome.Reason]int
}

func (c *counts) Drop(_ envelope.Class, why outcome.Reason, records, _ int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.drops == nil {
		c.drops = map[outcome.Reason]int{}
	}
	c.drops[why] += records
}

// reports counts the reason codes of the drops reported upstream.
type reports struct {
	mu    sync.Mutex
	codes map[string]int
}

func (r *reports) Report(_ *record.Record, why outcome.Reason, code string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.codes == nil {
		r.codes = map[string]int{}
	}
	r.codes[why.String()+" "+code]++
}

func (r *reports) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return fmt.Sprint(r.codes)
}

type harness struct {
	t   *testing.T
	b   *buffer.Buffer
	s   *Sampler
	x   *Index
	out *counts
	now time.Time
}

func newHarness(t *testing.T, b *buffer.Buffer, rules Rules) *harness {
	return newHarnessWith(t, b, IndexOptions{Rules: rules, DecisionWait: time.Second, MaxTraceWait: 10 * time.Second, MaxTraces: 8})
}

func newHarnessWith(t *testing.T, b *buffer.Buffer, o IndexOptions) *harness {
	h := &harness{t: t, b: b, out: &counts{}, now: t0}
	h.x = NewIndex(o)
	h.s = NewSampler(Options{
		Buffer: b, Stream: tailTx, Index: h.x, Outcomes: h.out,
		Route:  func(c envelope.Class, _ []byte) buffer.Stream { return record.StreamFor(c, 0).ID() },
		Now:    func() time.Time { return h.now },
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	return h
}

func (h *harness) append(vals ...[]byte) {
	h.t.Helper()
	var es []buffer.Entry
	for _, v := range vals {
		es = append(es, buffer.Entry{Stream: tailTx, Value: v})
	}
	if err := h.b.Append(context.Background(), es); err != nil {
		h.t.Fatal(err)
	}
}

// step reads what the stream holds (n records), indexes it and settles at
// h.now: one turn of Run without its waits.
func (h *harness) step(n int) {
	h.t.Helper()
	if n > 0 {
		recs, err := h.b.Read(context.Background(), tailTx, nil, n, 0)
		if err != nil || len(recs) != n {
			h.t.Fatalf("read %d of %d records: %v", len(recs), n, err)
		}
		for i := range recs {
			h.s.index(&recs[i])
		}
	}
	if err := h.s.settle(context.Background()); err != nil {
		h.t.Fatal(err)
	}
}

// names returns the transaction names waiting in the class stream.
func (h *harness) delivered() []string {
	var names []string
	for _, st := range h.b.Stats().Streams {
		if st.Stream != classTx || st.Pending == 0 {
			continue
		}
		recs, err := h.b.Peek(classTx, 0, 1<<62, nil)
		if err != nil {
			h.t.Fatal(err)
		}
		for _, r := range recs {
			var rec record.Record
			if err := record.Decode(r.Value, &rec, &record.Slab{}); err != nil {
				h.t.Fatal(err)
			}
			e, _ := envelope.Parse(rec.Envelope)
			for _, it := range e.Items {
				var name string
				if _, err := fmt.Sscanf(string(it.Payload), `{"type":"transaction","transaction":%q`, &name); err == nil {
					names = append(names, name)
				}
			}
		}
	}
	return names
}

func (h *harness) pending(s buffer.Stream) int64 {
	for _, st := range h.b.Stats().Streams {
		if st.Stream == s {
			return st.Pending
		}
	}
	return 0
}

const (
	traceA = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	traceB = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	traceC = "cccccccccccccccccccccccccccccccc"
)

// Interleaved traces leave whole, by one decision each, in stream order:
// an undecided trace at the head holds the decided ones behind it, which
// stay pending until it is decided.
func TestSamplerDecidesWholeTracesInOrder(t *testing.T) {
	b := openBuffer(t, vfs.NewMem())
	defer b.Close()
	h := newHarness(t, b, Rules{KeepRate: 0, DurationThreshold: 5 * time.Second})
	h.append(
		txRecord(traceA, "A1", "ok", t0, 0),
		txRecord(traceB, "B1", "ok", t0, 0),
		txRecord(traceC, "C1", "internal_error", t0, 0),
	)
	h.step(3)
	if got := h.delivered(); len(got) != 0 {
		t.Fatalf("delivered %v before decision_wait", got)
	}
	h.x.Mark(traceA, t0) // an error of trace A arrived
	h.now = t0.Add(900 * time.Millisecond)
	h.append(txRecord(traceA, "A2", "ok", h.now, 0)) // A keeps going
	h.step(1)
	h.now = t0.Add(1500 * time.Millisecond) // B and C are due, A is not (last item 0.6 s ago)
	h.step(0)
	if got := h.delivered(); len(got) != 0 || h.pending(tailTx) != 4 {
		t.Fatalf("A at the head undecided: delivered %v, tail pending %d; want nothing and 4", got, h.pending(tailTx))
	}
	h.now = t0.Add(2 * time.Second)
	h.step(0)
	got := h.delivered()
	if want := []string{"A1", "C1", "A2"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("delivered %v, want %v (A by its error, C by its status; B dropped)", got, want)
	}
	if h.out.drops[outcome.ReasonSampled] != 1 || h.pending(tailTx) != 0 {
		t.Errorf("sampled drops %d, tail pending %d; want 1 and 0", h.out.drops[outcome.ReasonSampled], h.pending(tailTx))
	}
	// A late item of B follows B's decision (dropped), one of A A's (kept).
	h.append(txRecord(traceB, "B2", "ok", h.now, 0), txRecord(traceA, "A3", "ok", h.now, 0))
	h.step(2)
	if got := h.delivered(); got[len(got)-1] != "A3" || h.out.drops[outcome.ReasonSampled] != 2 {
		t.Errorf("late items: delivered %v, sampled drops %d; want A3 kept and B2 dropped", got, h.out.drops[outcome.ReasonSampled])
	}
	if st := h.x.Stats(); st.Kept != 2 || st.Dropped != 1 {
		t.Errorf("index stats %+v, want 2 kept and 1 dropped: one decision per trace", st)
	}
}

// A trace that never stops is decided max_trace_wait after its first
// item; a slow one is kept by the duration rule.
func TestSamplerMaxTraceWaitAndDuration(t *testing.T) {
	b := openBuffer(t, vfs.NewMem())
	defer b.Close()
	h := newHarness(t, b, Rules{KeepRate: 0, DurationThreshold: 5 * time.Second})
	h.append(txRecord(traceB, "slow", "ok", t0, 6*time.Second))
	for i := range 12 {
		h.now = t0.Add(time.Duration(i) * 900 * time.Millisecond)
		h.append(txRecord(traceA, fmt.Sprintf("A%d", i), "ok", h.now, 0))
		h.step(map[bool]int{true: 2, false: 1}[i == 0])
	}
	// The slow trace, at the head, left once due; A kept arriving every
	// 0.9 s and still waits.
	if got := h.delivered(); fmt.Sprint(got) != "[slow]" || h.pending(tailTx) != 12 {
		t.Fatalf("delivered %v, tail pending %d; want [slow] and A's 12 waiting", got, h.pending(tailTx))
	}
	h.now = t0.Add(10 * time.Second) // max_trace_wait after A's first item
	h.step(0)
	if h.pending(tailTx) != 0 || h.out.drops[outcome.ReasonSampled] != 12 {
		t.Errorf("tail pending %d, sampled drops %d: want A decided (dropped) by max_trace_wait", h.pending(tailTx), h.out.drops[outcome.ReasonSampled])
	}
}

// Nothing of the index is persisted: after a restart the records still
// waiting are indexed again from the buffer, with their received times,
// and decided as before.
func TestSamplerRebuildsOnRestart(t *testing.T) {
	fs := vfs.NewMem()
	b := openBuffer(t, fs)
	h := newHarness(t, b, Rules{KeepRate: 1})
	h.append(txRecord(traceA, "A1", "ok", t0, 0), txRecord(traceB, "B1", "ok", t0, 0))
	h.step(2)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b = openBuffer(t, fs)
	defer b.Close()
	h = newHarness(t, b, Rules{KeepRate: 1})
	h.now = t0.Add(500 * time.Millisecond)
	h.step(2)
	if got := h.delivered(); len(got) != 0 || h.pending(tailTx) != 2 {
		t.Fatalf("after restart: delivered %v, tail pending %d; want nothing yet and 2", got, h.pending(tailTx))
	}
	h.now = t0.Add(time.Second)
	h.step(0)
	if got := h.delivered(); fmt.Sprint(got) != "[A1 B1]" || h.pending(tailTx) != 0 {
		t.Errorf("delivered %v, tail pending %d; want [A1 B1] and 0", got, h.pending(tailTx))
	}
}

// A full index decides a new trace at once by the keep rate.
func TestIndexFull(t *testing.T) {
	x := NewIndex(IndexOptions{Rules: Rules{KeepRate: 0}, DecisionWait: time.Second, MaxTraceWait: time.Minute, MaxTraces: 2})
	x.observe(traceA, t0, false, false, nil, 1, 0)
	x.observe(traceB, t0, false, false, nil, 1, 0)
	if decided, keep := x.observe(traceC, t0, true, false, nil, 1, 0); !decided || !keep {
		t.Errorf("interesting trace beyond max_traces: decided %v keep %v; want kept at once", decided, keep)
	}
	if decided, keep := x.observe("dddddddddddddddddddddddddddddddd", t0, false, false, nil, 1, 0); !decided || keep {
		t.Errorf("plain trace beyond max_traces: decided %v keep %v; want dropped at once (rate 0)", decided, keep)
	}
	if st := x.Stats(); st.Early != 2 || st.Waiting != 2 {
		t.Errorf("stats %+v, want 2 early and 2 waiting", st)
	}
	if _, _, indexed := x.add("eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee", t0, false, false, nil, 1, 100); indexed {
		t.Error("a record decided early was indexed: releasing it would touch a trace it is not counted in")
	}
	if st := x.Stats(); st.Bytes != 0 {
		t.Errorf("held bytes %d after an early record, want 0 (it is not held in the index)", st.Bytes)
	}
}

// A trace that reaches MaxTraceItems is decided at once, before its
// decision wait; the others keep waiting.
func TestSamplerCapsTrace(t *testing.T) {
	b := openBuffer(t, vfs.NewMem())
	defer b.Close()
	h := newHarnessWith(t, b, IndexOptions{Rules: Rules{KeepRate: 1}, DecisionWait: time.Second, MaxTraceWait: 10 * time.Second, MaxTraceItems: 3})
	h.append(txRecord(traceA, "A1", "ok", t0, 0), txRecord(traceA, "A2", "ok", t0, 0))
	h.step(2)
	if got := h.delivered(); len(got) != 0 {
		t.Fatalf("delivered %v with 2 of 3 items", got)
	}
	h.append(txRecord(traceA, "A3", "ok", t0, 0), txRecord(traceB, "B1", "ok", t0, 0))
	h.step(2)
	if got := h.delivered(); fmt.Sprint(got) != "[A1 A2 A3]" || h.pending(tailTx) != 1 {
		t.Errorf("delivered %v, tail pending %d; want trace A whole at its third item and B waiting", got, h.pending(tailTx))
	}
	if st := h.x.Stats(); st.Capped != 1 || st.Kept != 1 {
		t.Errorf("stats %+v, want 1 capped trace kept", st)
	}
}

// Over the byte budget the oldest traces are decided at once, as many as
// bring the held bytes back under it; the rest wait for their time.
func TestSamplerByteBudget(t *testing.T) {
	b := openBuffer(t, vfs.NewMem())
	defer b.Close()
	size := int64(len(txRecord(traceA, "A1", "ok", t0, 0)))
	h := newHarnessWith(t, b, IndexOptions{Rules: Rules{KeepRate: 0}, DecisionWait: time.Second, MaxTraceWait: 10 * time.Second, MaxBytes: size + size/2})
	h.append(txRecord(traceA, "A1", "ok", t0, 0), txRecord(traceB, "B1", "ok", t0, 0), txRecord(traceC, "C1", "ok", t0, 0))
	h.step(3)
	if h.pending(tailTx) != 1 || h.out.drops[outcome.ReasonSampled] != 2 {
		t.Fatalf("tail pending %d, sampled drops %d; want A and B decided (dropped) at once and C waiting", h.pending(tailTx), h.out.drops[outcome.ReasonSampled])
	}
	if st := h.x.Stats(); st.OverBudget != 2 || st.Bytes != size {
		t.Errorf("stats %+v, want 2 traces decided over budget and %d bytes held", st, size)
	}
	h.now = t0.Add(time.Second)
	h.step(0)
	if h.pending(tailTx) != 0 || h.x.Stats().Bytes != 0 {
		t.Errorf("after decision_wait: tail pending %d, held bytes %d; want 0 and 0", h.pending(tailTx), h.x.Stats().Bytes)
	}
}

// A record whose project's rules are not known yet (its config is being
// looked up, as after a restart) is not indexed: it waits, undecided, and
// is indexed under its project's rules once they come; a record whose
// rules never come gets the Index's after MaxTraceWait.
func TestSamplerWaitsForRules(t *testing.T) {
	b := openBuffer(t, vfs.NewMem())
	defer b.Close()
	h := newHarness(t, b, Rules{KeepRate: 1})
	known := map[uint64]bool{}
	h.s.o.Rules = func(rec *record.Record) (Rules, bool) {
		return Rules{KeepRate: 0}, known[rec.ProjectID]
	}
	h.append(txRecord(traceA, "A1", "ok", t0, 0), txRecord(traceB, "B1", "ok", t0, 0))
	h.step(2)
	h.now = t0.Add(2 * time.Second) // past decision_wait: still no rules
	h.step(0)
	if h.pending(tailTx) != 2 || h.x.Stats().Kept+h.x.Stats().Dropped != 0 {
		t.Fatalf("without rules: tail pending %d, stats %+v; want both waiting, undecided", h.pending(tailTx), h.x.Stats())
	}
	known[42] = true // the config came: keep rate 0
	h.step(0)
	h.now = t0.Add(4 * time.Second)
	h.step(0)
	if h.pending(tailTx) != 0 || h.out.drops[outcome.ReasonSampled] != 2 {
		t.Errorf("with the project's rules: tail pending %d, sampled drops %d; want both traces dropped by keep rate 0", h.pending(tailTx), h.out.drops[outcome.ReasonSampled])
	}

	known[42] = false
	h.append(txRecord(traceC, "C1", "ok", h.now, 0))
	h.step(1)
	h.now = h.now.Add(10 * time.Second) // max_trace_wait: the Index's rules
	h.step(0)
	h.now = h.now.Add(10 * time.Second)
	h.step(0)
	if got := h.delivered(); fmt.Sprint(got) != "[C1]" {
		t.Errorf("rules never came: delivered %v, want [C1] kept by the Index's keep rate 1", got)
	}
}

// A dropped trace's outcome names the sampling rule its keep rate came
// from, as head sampling's does ("Sampled:<id>"): its first item's
// (Rules.RateRule), though a DSC changed mid-trace; a trace decided early
// (the index full) by its own rules; tail sampling's own keep rate is
// rule 0.
func TestSamplerDropReason(t *testing.T) {
	b := openBuffer(t, vfs.NewMem())
	defer b.Close()
	h := newHarnessWith(t, b, IndexOptions{Rules: Rules{KeepRate: 1}, DecisionWait: time.Second, MaxTraceWait: 10 * time.Second, MaxTraces: 2})
	rep := &reports{}
	h.s.o.Reporter = rep
	rule := uint32(1001)
	h.s.o.Rules = func(*record.Record) (Rules, bool) { return Rules{KeepRate: 0, RateRule: rule}, true }
	h.append(txRecord(traceA, "A1", "ok", t0, 0))
	h.step(1)
	rule = 1002
	h.append(txRecord(traceA, "A2", "ok", t0, 0), txRecord(traceB, "B1", "ok", t0, 0), txRecord(traceC, "C1", "ok", t0, 0))
	h.step(3) // C is decided early: A and B fill the index
	h.now = t0.Add(2 * time.Second)
	h.step(0)
	if got, want := rep.String(), "map[sampled Sampled:1001:2 sampled Sampled:1002:2]"; got != want {
		t.Errorf("reported %s, want %s (A's two by its first item's rule, B and C by theirs)", got, want)
	}
	if st := h.x.Stats(); st.Dropped != 3 || st.Early != 1 {
		t.Errorf("stats %+v, want 3 traces dropped, 1 early", st)
	}

	h.s.o.Rules = nil // the Index's: tail sampling's own keep rate
	h.x.o.Rules.KeepRate = 0
	h.append(txRecord("dddddddddddddddddddddddddddddddd", "D1", "ok", h.now, 0))
	h.step(1)
	h.now = h.now.Add(2 * time.Second)
	h.step(0)
	if got := rep.codes["sampled Sampled:0"]; got != 1 {
		t.Errorf("reported %s, want one Sampled:0 for tail sampling's own keep rate", rep)
	}
}
