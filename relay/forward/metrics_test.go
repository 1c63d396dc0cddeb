package forward

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/baton-relay/baton/buffer"
	"github.com/baton-relay/baton/envelope"
	"github.com/baton-relay/baton/relay/aggregate"
	"github.com/baton-relay/baton/relay/outcome"
	"github.com/baton-relay/baton/relay/record"
)

var rawStream = record.StreamFor(envelope.ClassMetric, 0).ID()

// newMetrics is a metrics stage over rawStream of b, with its writes
// logged and its outcomes recorded.
func newMetrics(b *buffer.Buffer, agg *aggregate.Aggregator, clk Clock) (*Metrics, *opBuffer, *recorder) {
	ob := &opBuffer{Buffer: b, hit: make(chan struct{}, 1)}
	rec := newRecorder()
	m := NewMetrics(MetricsOptions{
		Buffer: ob, Sources: []buffer.Stream{rawStream}, Aggregator: agg,
		Limits: envelope.DefaultLimits(), Outcomes: rec, Clock: clk, Logger: quiet,
	})
	return m, ob, rec
}

// opBuffer logs the writes of the metrics stage in order.
type opBuffer struct {
	*buffer.Buffer
	mu  sync.Mutex
	ops []string
	hit chan struct{}
}

func (o *opBuffer) log(op string) {
	o.mu.Lock()
	o.ops = append(o.ops, op)
	o.mu.Unlock()
	select {
	case o.hit <- struct{}{}:
	default:
	}
}

func (o *opBuffer) Append(ctx context.Context, es []buffer.Entry) error {
	err := o.Buffer.Append(ctx, es)
	o.log("append")
	return err
}

func (o *opBuffer) Ack(s buffer.Stream, upTo buffer.Seq) error {
	err := o.Buffer.Ack(s, upTo)
	o.log("ack")
	return err
}

func (o *opBuffer) get() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.ops)
}

func statsdRecord(project uint64, line string, received time.Time) []byte {
	rec := record.Record{Class: envelope.ClassMetric, Items: 1, ReceivedAt: received.UnixNano(), ProjectID: project, PublicKey: []byte(keyOf(project))}
	env := "{}\n{\"type\":\"statsd\",\"length\":" + strconv.Itoa(len(line)) + "}\n" + line + "\n"
	return record.Append(nil, &rec, []byte(env))
}

// Raw records are acked only once the buckets they were folded into are
// appended to the flushed stream: the flusher waits for the bucket to be
// due on the clock, appends, then acks.
func TestMetricsAckAfterFlush(t *testing.T) {
	b, _ := openBuffer(t)
	clk := newClock(false)
	now := clk.Now()
	if err := b.Append(context.Background(), []buffer.Entry{
		{Stream: rawStream, Value: statsdRecord(1, "baton.test:1|c\nbaton.test:2|c", now)},
	}); err != nil {
		t.Fatal(err)
	}
	agg, err := aggregate.New(aggregate.Options{InitialDelay: -1, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	m, ob, rec := newMetrics(b, agg, clk)
	var wg sync.WaitGroup
	run(t, func(readCtx, sendCtx context.Context) {
		m.Start(&wg, readCtx, sendCtx)
		wg.Wait()
	})
	// The flusher sleeps idleFlush until the insert gives it a due time;
	// nothing is written before that is
	// reached on the clock.
	w := clk.Next(t, guard)
	for ; w.D == idleFlush; w = clk.Next(t, guard) {
	}
	if ops := ob.get(); len(ops) > 0 {
		t.Fatalf("wrote %v before the bucket was due; outcomes %+v", ops, rec.get())
	}
	clk.Advance(w.D)
	w.Fire()
	for !slices.Contains(ob.get(), "append") {
		select {
		case w := <-clk.Waits(): // a wake raced the first wait: it asks again
			clk.Advance(w.D)
			w.Fire()
		case <-ob.hit:
		case <-time.After(guard):
			t.Fatal("nothing flushed")
		}
	}
	for !slices.Contains(ob.get(), "ack") {
		select {
		case <-ob.hit:
		case <-time.After(guard):
			t.Fatal("raw records not acked")
		}
	}
	if ops := ob.get(); ops[0] != "append" || ops[1] != "ack" {
		t.Fatalf("ops %v, want append before ack", ops)
	}
	// The raw records' outcome is counted once their ack returned.
	for rec.get().aggregate.Records == 0 {
		select {
		case <-rec.aggregated:
		case <-time.After(guard):
			t.Fatal("acked raw records not counted as aggregated")
		}
	}
	r := rec.get()
	if r.aggregate.Records != 1 || r.produced.Records != 1 || r.produced.Items != 1 {
		t.Fatalf("aggregated %+v, produced %+v", r.aggregate, r.produced)
	}
	got, err := b.Read(context.Background(), record.Flushed(0).ID(), nil, 10, 0)
	if err != nil || len(got) != 1 || !bytes.Contains(got[0].Value, []byte(`"value":3`)) {
		t.Fatalf("flushed stream: %d records %v", len(got), err)
	}
}

// On shutdown the flusher writes out everything held, due or not, before
// it acks the raw records.
func TestMetricsFlushAllOnShutdown(t *testing.T) {
	b, _ := openBuffer(t)
	clk := newClock(false)
	if err := b.Append(context.Background(), []buffer.Entry{{Stream: rawStream, Value: statsdRecord(1, "baton.test:1|c", clk.Now())}}); err != nil {
		t.Fatal(err)
	}
	agg, err := aggregate.New(aggregate.Options{Now: clk.Now}) // held 30s: never due here
	if err != nil {
		t.Fatal(err)
	}
	m, ob, rec := newMetrics(b, agg, clk)
	readCtx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	m.Start(&wg, readCtx, context.Background())
	// The flusher sleeps idleFlush until the insert gives it a due time.
	for w := clk.Next(t, guard); w.D == idleFlush; w = clk.Next(t, guard) {
	}
	stop()
	wg.Wait()
	if ops := ob.get(); !slices.Equal(ops, []string{"append", "ack"}) {
		t.Fatalf("ops %v, want append then ack", ops)
	}
	if r := rec.get(); r.aggregate.Records != 1 || r.produced.Records != 1 {
		t.Fatalf("aggregated %+v, produced %+v", r.aggregate, r.produced)
	}
}

// countingStore admits the first limit series it sees per call order and
// counts its calls.
type countingStore struct {
	mu    sync.Mutex
	calls int
	n     int
	seen  map[uint64]bool
}

func (s *countingStore) AdmitSeries(_ time.Time, checks []aggregate.SeriesCheck, ok []bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	s.n += len(checks)
	for i, c := range checks {
		if !s.seen[c.Hash] && len(s.seen) < c.Limit {
			s.seen[c.Hash] = true
		}
		ok[i] = s.seen[c.Hash]
	}
	return nil
}

// The cardinality limiter decides a read batch in one store call: three
// records of four new series each against a limit of 5 make one call of
// 12 checks, 7 buckets dropped as cardinality_limited, from the record
// where the limit was crossed on.
func TestMetricsCardinalityOneCallPerBatch(t *testing.T) {
	b, _ := openBuffer(t)
	clk := newClock(false)
	now := clk.Now()
	var es []buffer.Entry
	for r := range 3 {
		var lines []string
		for i := range 4 {
			lines = append(lines, "card.k"+strconv.Itoa(r*4+i)+":1|c")
		}
		es = append(es, buffer.Entry{Stream: rawStream, Value: statsdRecord(1, strings.Join(lines, "\n"), now)})
	}
	if err := b.Append(context.Background(), es); err != nil {
		t.Fatal(err)
	}
	agg, err := aggregate.New(aggregate.Options{InitialDelay: -1, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	store := &countingStore{seen: map[uint64]bool{}}
	ob := &opBuffer{Buffer: b, hit: make(chan struct{}, 1)}
	rec := newRecorder()
	var limitedRecs []int
	m := NewMetrics(MetricsOptions{
		Buffer: ob, Sources: []buffer.Stream{rawStream}, Aggregator: agg,
		Limiter: aggregate.NewLimiter(aggregate.LimitOptions{Limit: 5, Now: clk.Now, Store: store}),
		Limited: func(_ *record.Record, n int) { limitedRecs = append(limitedRecs, n) },
		Limits:  envelope.DefaultLimits(), Outcomes: rec, Clock: clk, Logger: quiet,
	})
	var wg sync.WaitGroup
	stop := run(t, func(readCtx, sendCtx context.Context) {
		m.Start(&wg, readCtx, sendCtx)
		wg.Wait()
	})
	deadline := time.Now().Add(guard)
	for rec.get().dropped[outcome.ReasonCardinality].Items < 7 || agg.Stats().Buckets < 5 {
		if time.Now().After(deadline) {
			t.Fatalf("dropped %+v and %d buckets held, want 7 cardinality_limited and the 5 admitted", rec.get().dropped, agg.Stats().Buckets)
		}
		time.Sleep(time.Millisecond) // polling an observable condition, with a deadline
	}
	stop()
	store.mu.Lock()
	defer store.mu.Unlock()
	if store.calls != 1 || store.n != 12 {
		t.Fatalf("%d store calls of %d checks, want 1 of 12", store.calls, store.n)
	}
	if !slices.Equal(limitedRecs, []int{3, 4}) {
		t.Fatalf("limited per record %v, want [3 4] (the second record's last 3, the third's 4)", limitedRecs)
	}
}

// gatedBuffer blocks Append until open is closed, and records for each
// Append its bytes less those of its last entry.
type gatedBuffer struct {
	*buffer.Buffer
	open chan struct{}

	mu    sync.Mutex
	sizes []int
}

func (g *gatedBuffer) Append(ctx context.Context, es []buffer.Entry) error {
	select {
	case <-g.open:
	case <-ctx.Done():
		return ctx.Err()
	}
	n := 0
	for _, e := range es[:len(es)-1] {
		n += len(e.Value)
	}
	g.mu.Lock()
	g.sizes = append(g.sizes, n)
	g.mu.Unlock()
	return g.Buffer.Append(ctx, es)
}

// Buckets made due early by the budgets count against MaxBytes until
// they are written: while the flusher cannot write (the buffer's Append
// is held), a reader of many new series stops inserting once the
// aggregator is Full instead of queueing early buckets without bound.
// Once writes go through, every line ends in one outcome, and a commit
// appends its encoded records commitBytes at a time.
func TestMetricsEarlyFlushBounded(t *testing.T) {
	b, _ := openBuffer(t)
	clk := newClock(false)
	const (
		records  = 200
		lines    = 50
		maxBytes = 64 << 10
	)
	var es []buffer.Entry
	for r := range records {
		var sb strings.Builder
		for l := range lines {
			fmt.Fprintf(&sb, "baton.series:1|c|#s:%d\n", r*lines+l)
		}
		es = append(es, buffer.Entry{Stream: rawStream, Value: statsdRecord(1, strings.TrimSuffix(sb.String(), "\n"), clk.Now())})
	}
	if err := b.Append(context.Background(), es); err != nil {
		t.Fatal(err)
	}
	agg, err := aggregate.New(aggregate.Options{MaxBytes: maxBytes, MaxScopeBytes: maxBytes / 4, Partitions: 8, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	gb := &gatedBuffer{Buffer: b, open: make(chan struct{})}
	rec := newRecorder()
	m := NewMetrics(MetricsOptions{
		Buffer: gb, Sources: []buffer.Stream{rawStream}, Aggregator: agg,
		Limits: envelope.DefaultLimits(), Outcomes: rec, Clock: clk, Logger: quiet,
	})
	const chunk = 1 << 10 // a flush here encodes ~2.5 KiB
	m.commitBytes = chunk
	go func() { // the flusher's timer never fires: wakes drive it
		for range clk.Waits() {
		}
	}()
	var wg sync.WaitGroup
	stop := run(t, func(readCtx, sendCtx context.Context) {
		m.Start(&wg, readCtx, sendCtx)
		wg.Wait()
	})
	defer stop()
	// One record's buckets may go past the budget before the reader checks.
	const limit = maxBytes + lines*512
	deadline := time.Now().Add(guard)
	for m.stalls.Load() == 0 {
		st := agg.Stats()
		if held := st.Bytes + st.Writing; held > limit {
			t.Fatalf("aggregator holds %d bytes with the flusher blocked, budget %d (inserted %d of %d)", held, maxBytes, st.Inserted, records*lines)
		}
		if time.Now().After(deadline) {
			t.Fatalf("reader never waited for the budget: %+v", st)
		}
		time.Sleep(time.Millisecond) // polling an observable condition
	}
	if st := agg.Stats(); st.Bytes+st.Writing > limit || st.Inserted == records*lines {
		t.Fatalf("reader waiting, but %+v", st)
	}
	close(gb.open)
	for agg.Stats().Inserted < records*lines {
		if st := agg.Stats(); st.Bytes+st.Writing > limit {
			t.Fatalf("aggregator holds %d bytes, budget %d", st.Bytes+st.Writing, maxBytes)
		}
		if time.Now().After(deadline) {
			t.Fatalf("not all inserted: %+v", agg.Stats())
		}
		time.Sleep(time.Millisecond)
	}
	stop() // writes out what is held
	r := rec.get()
	if r.aggregate.Records != records || r.produced.Items != records*lines || len(r.dropped) != 0 {
		t.Fatalf("outcomes %+v, want %d records aggregated, %d buckets produced", r, records, records*lines)
	}
	gb.mu.Lock()
	defer gb.mu.Unlock()
	if len(gb.sizes) < 2 || slices.Max(gb.sizes) >= chunk {
		t.Fatalf("appends of %v bytes (less their last record), want several under %d", gb.sizes, chunk)
	}
}
