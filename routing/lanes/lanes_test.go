package lanes

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The commit mark moves only past a prefix of finished records.
func TestTrackPrefix(t *testing.T) {
	l := &lane{parts: map[int32]*partTrack{}, revokedAt: map[int32]uint64{}}
	recs := make([]*kgo.Record, 5)
	var pt *partTrack
	for i := range recs {
		recs[i] = &kgo.Record{Topic: "t", Offset: int64(10 + i)}
		pt = l.track(recs[i], 0)
	}
	next := func(off int64) int64 {
		l.mu.Lock()
		defer l.mu.Unlock()
		return pt.finishLocked(off)
	}
	for _, c := range []struct{ finish, want int64 }{{12, -1}, {11, -1}, {10, 13}, {14, -1}, {13, 15}} {
		if got := next(c.finish); got != c.want {
			t.Errorf("finish %d: mark %d, want %d", c.finish, got, c.want)
		}
	}
	if len(pt.done) != 0 || len(pt.pending) != 0 {
		t.Errorf("tracker not empty: %+v", pt)
	}
}

// A refused record is re-read from the first offset the revoked tracker
// had not handed off when that is earlier: the record may be from the old
// assignment, polled before the revoke.
func TestRewindOffset(t *testing.T) {
	l := &lane{parts: map[int32]*partTrack{}, revokedAt: map[int32]uint64{}, resumeAt: map[int32]int64{}}
	rec := func(off int64) *kgo.Record { return &kgo.Record{Topic: "t", Offset: off} }
	var pt *partTrack
	for off := int64(10); off < 13; off++ {
		pt = l.track(rec(off), 0)
	}
	l.mu.Lock()
	pt.finishLocked(10)
	l.mu.Unlock()
	l.forget(context.Background(), nil, map[string][]int32{"t": {0}})
	l.forget(context.Background(), nil, map[string][]int32{"t": {0}}) // again, no tracker: 11 holds
	if l.track(rec(13), 0) != nil {
		t.Fatal("record of a poll begun before the revoke tracked")
	}
	for _, c := range []struct{ refused, want int64 }{{13, 11}, {5, 5}} {
		if got := l.rewindOffset(rec(c.refused)); got != c.want {
			t.Errorf("refused %d: rewind to %d, want %d", c.refused, got, c.want)
		}
	}
	// Re-assigned from 14; revoked again: the new tracker's first.
	l.track(rec(14), l.pollEpoch())
	l.forget(context.Background(), nil, map[string][]int32{"t": {0}})
	if got := l.rewindOffset(rec(20)); got != 14 {
		t.Errorf("after the next revoke: rewind to %d, want 14", got)
	}
}

// A record whose partition was revoked before its handler call is left
// to the new owner: no call, no hand-off, its window slot freed.
func TestRevokedNotHandled(t *testing.T) {
	called := false
	l := &lane{o: LaneOptions{Topic: "t", Next: "n", Deadline: time.Second, MaxAttempts: 1,
		Handler: HandlerFunc(func(context.Context, *Item) Result { called = true; return Result{Verdict: Done} })},
		window: make(chan struct{}, 1), m: newLaneMetrics()}
	l.window <- struct{}{}
	pt := &partTrack{done: map[int64]bool{}}
	pt.gone.Store(true)
	l.process(context.Background(), &kgo.Record{Topic: "t"}, pt)
	if called || len(l.window) != 0 {
		t.Errorf("handler called %v, window slots held %d; want neither", called, len(l.window))
	}
}

func TestHeaderName(t *testing.T) {
	for in, want := range map[string]string{"project_id": "Project-Id", "class": "Class", "baton-lane-reason": "Baton-Lane-Reason", "a b": "", "ä": ""} {
		if got := headerName(in); got != want {
			t.Errorf("headerName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 12, 5, 13, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Duration{
		"3":                                3 * time.Second,
		" 0 ":                              0,
		"Sat, 05 Dec 2026 13:00:42 GMT":    42 * time.Second, // IMF-fixdate
		"Saturday, 05-Dec-26 13:01:00 GMT": time.Minute,      // RFC 850
		"Sat Dec  5 13:00:02 2026":         2 * time.Second,  // asctime
		"Sat, 05 Dec 2026 12:00:00 GMT":    0,                // past
		"":                                 time.Second,
		"-1":                               time.Second,
		"soon":                             time.Second,
	} {
		if got := retryAfter(in, now); got != want {
			t.Errorf("retryAfter(%q) = %s, want %s", in, got, want)
		}
	}
}

// The HTTP handler throttles for a Retry-After given as a date.
func TestHTTPRetryAfterDate(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Retry-After", time.Now().Add(10*time.Second).UTC().Format(http.TimeFormat))
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	res := NewHTTP(srv.URL, 1).Handle(context.Background(), &Item{Topic: "t"})
	// The date has whole seconds: 9-10s from now.
	if res.Verdict != Throttle || res.After < 8*time.Second || res.After > 10*time.Second {
		t.Errorf("result %+v, want Throttle for about 10s", res)
	}
}

// A worker in process: records escalate from a to b and are done there;
// Stats account for each once.
func TestWorkerEscalates(t *testing.T) {
	const n = 200
	c, prod := newKfake(t, []kfake.Opt{kfake.SeedTopics(2, "a", "b", "dead")})
	for i := range n {
		prod.Produce(context.Background(), &kgo.Record{Topic: "a", Key: []byte{byte(i % 3)}, Value: []byte{byte(i)}}, nil)
	}
	if err := prod.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	var done atomic.Int64
	all := make(chan struct{})
	w, err := New(Options{Kafka: []kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...)}, Group: "t", Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Lanes: []LaneOptions{
			{Topic: "a", Next: "b", DeadLetterTopic: "dead", Deadline: time.Second, Concurrency: 4, MaxAttempts: 1, Ordered: true,
				Handler: HandlerFunc(func(context.Context, *Item) Result { return Result{Verdict: Escalate, Reason: "test"} })},
			{Topic: "b", DeadLetterTopic: "dead", Deadline: time.Second, Concurrency: 4, MaxAttempts: 1,
				Handler: HandlerFunc(func(_ context.Context, it *Item) Result {
					if it.Attempt != 1 || it.Headers[HeaderFrom] != "a" {
						t.Errorf("escalated item attempt %d from %q", it.Attempt, it.Headers[HeaderFrom])
					}
					if done.Add(1) == n {
						close(all)
					}
					return Result{Verdict: Done}
				})},
		}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- w.Run(ctx) }()
	select {
	case <-all:
	case <-time.After(20 * time.Second):
		t.Fatalf("only %d done: %+v", done.Load(), w.Stats())
	}
	cancel()
	if err := <-ran; err != nil {
		t.Fatal(err)
	}
	st := w.Stats()
	if st[0].Consumed != n || st[0].Escalated != n || st[1].Done != n {
		t.Errorf("stats %+v", st)
	}
}

// A second worker joins the group mid-run: the first commits what it had
// handed off in the partitions it gives up, so the second redoes at most
// what the first held (its window, and the rest of a batch it had polled).
// Commits are otherwise an hour apart, so without the commit on revocation
// the second would redo everything the first did in those partitions.
func TestRevokeCommits(t *testing.T) {
	const n, concurrency = 4000, 4
	c, prod := newKfake(t, []kfake.Opt{kfake.SeedTopics(4, "a", "dead"),
		kfake.BrokerConfigs(map[string]string{"group.min.session.timeout.ms": "1000"})},
		kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	// Produced as the worker goes, 16 records every 16 ms, below what it
	// handles: the first worker is caught up on every partition, so
	// whichever it gives up, it had handed off records there.
	produced := make(chan error, 1)
	go func() {
		tick := time.NewTicker(16 * time.Millisecond)
		defer tick.Stop()
		for i := 0; i < n; i += 16 {
			recs := make([]*kgo.Record, 16)
			for j := range recs {
				recs[j] = &kgo.Record{Topic: "a", Value: []byte{byte(i + j)}}
			}
			if err := prod.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
				produced <- err
				return
			}
			<-tick.C
		}
		produced <- nil
	}()
	type at struct {
		p int32
		o int64
	}
	var mu sync.Mutex
	calls := map[at]int{}
	var byWorker [2]atomic.Int64
	enough, all := make(chan struct{}), make(chan struct{})
	handler := func(w int) Handler {
		return HandlerFunc(func(ctx context.Context, it *Item) Result {
			<-time.After(2 * time.Millisecond) // the simulated work
			mu.Lock()
			calls[at{it.Partition, it.Offset}]++
			switch len(calls) {
			case n / 4:
				close(enough)
			case n:
				close(all)
			}
			mu.Unlock()
			byWorker[w].Add(1)
			return Result{Verdict: Done}
		})
	}
	run := func(w int) (stop func()) {
		wk, err := New(Options{Kafka: []kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...)}, Group: "t",
			SessionTimeout: 3 * time.Second, CommitInterval: time.Hour,
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
			Lanes: []LaneOptions{{Topic: "a", DeadLetterTopic: "dead", Deadline: 5 * time.Second,
				Concurrency: concurrency, MaxAttempts: 1, Handler: handler(w)}}})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		ran := make(chan error, 1)
		go func() { ran <- wk.Run(ctx) }()
		return func() {
			cancel()
			if err := <-ran; err != nil {
				t.Error(err)
			}
		}
	}
	stopA := run(0)
	select {
	case <-enough:
	case <-time.After(20 * time.Second):
		t.Fatal("the first worker did not get going")
	}
	stopB := run(1)
	select {
	case <-all:
	case <-time.After(30 * time.Second):
		mu.Lock()
		t.Fatalf("only %d of %d offsets done", len(calls), n)
	}
	if err := <-produced; err != nil {
		t.Fatal(err)
	}
	stopB()
	stopA()
	mu.Lock()
	defer mu.Unlock()
	dups := 0
	for _, k := range calls {
		dups += k - 1
	}
	window := concurrency * windowPerSlot
	t.Logf("first worker %d calls, second %d; %d duplicates", byWorker[0].Load(), byWorker[1].Load(), dups)
	if byWorker[1].Load() == 0 {
		t.Fatal("the second worker got no partitions: nothing was revoked")
	}
	// Held: the window, plus the rest of the batch it had polled (the
	// poll takes up to the window's size).
	if dups > 2*window {
		t.Errorf("%d records redone after the revocation, want at most %d (twice the window)", dups, 2*window)
	}
}

// BenchmarkLanes is items per second through lanes on kfake with a
// handler that answers at once: one lane (every item done), and two (every
// item escalated from the first to the second, done there).
func BenchmarkLanes(b *testing.B) {
	for _, lanes := range []int{1, 2} {
		b.Run(fmt.Sprintf("lanes=%d", lanes), func(b *testing.B) {
			const n = 20000
			c, prod := newKfake(b, []kfake.Opt{kfake.SeedTopics(4, "a", "b", "dead")}, kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
			recs := make([]*kgo.Record, n)
			for i := range recs {
				recs[i] = &kgo.Record{Topic: "a", Value: make([]byte, 512)}
			}
			var done, calls atomic.Int64
			var first atomic.Int64 // UnixNano of the first handler call: group joins are not counted
			all := make(chan struct{})
			finish := HandlerFunc(func(context.Context, *Item) Result {
				if calls.Add(1) == 1 {
					first.Store(time.Now().UnixNano())
				}
				if done.Add(1) == n {
					close(all)
				}
				return Result{Verdict: Done}
			})
			escalate := HandlerFunc(func(context.Context, *Item) Result {
				if calls.Add(1) == 1 {
					first.Store(time.Now().UnixNano())
				}
				return Result{Verdict: Escalate, Reason: "bench"}
			})
			opts := Options{Kafka: []kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...)}, Group: "bench", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
			lane := LaneOptions{Topic: "a", DeadLetterTopic: "dead", Deadline: time.Second, Concurrency: 16, MaxAttempts: 1, Handler: finish}
			if lanes == 2 {
				lane.Next, lane.Handler = "b", escalate
				opts.Lanes = append(opts.Lanes, lane, LaneOptions{Topic: "b", DeadLetterTopic: "dead", Deadline: time.Second, Concurrency: 16, MaxAttempts: 1, Handler: finish})
			} else {
				opts.Lanes = append(opts.Lanes, lane)
			}
			if err := prod.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
				b.Fatal(err)
			}
			w, err := New(opts)
			if err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			ran := make(chan error, 1)
			b.ResetTimer()
			go func() { ran <- w.Run(ctx) }()
			<-all
			took := time.Since(time.Unix(0, first.Load()))
			b.StopTimer()
			cancel()
			if err := <-ran; err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(n)/took.Seconds(), "items/s")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// A partition revoked and re-assigned while a poll waits: the poll returns
// the new assignment's records, which track refuses (the poll began before
// the revoke). They must be read again, not skipped by the marks of the
// records after them. The hook runs the revoke callback at the start of
// the poll that returns records; the client keeps the partition, as after
// a re-assign.
func TestRevokeReassignDuringPoll(t *testing.T) {
	const n = 8
	c, prod := newKfake(t, []kfake.Opt{kfake.SeedTopics(1, "a", "dead")})
	recs := make([]*kgo.Record, n)
	for i := range recs {
		recs[i] = &kgo.Record{Topic: "a", Value: []byte{byte(i)}}
	}
	if err := prod.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	seen := map[int64]bool{}
	all := make(chan struct{})
	h := &revokeInPoll{}
	w, err := New(Options{Kafka: []kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...), kgo.WithHooks(h)}, Group: "t",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Lanes: []LaneOptions{{Topic: "a", DeadLetterTopic: "dead", Deadline: time.Second, Concurrency: 4, MaxAttempts: 1,
			Handler: HandlerFunc(func(_ context.Context, it *Item) Result {
				mu.Lock()
				defer mu.Unlock()
				if !seen[it.Offset] {
					seen[it.Offset] = true
					if len(seen) == n {
						close(all)
					}
				}
				return Result{Verdict: Done}
			})}}})
	if err != nil {
		t.Fatal(err)
	}
	h.l = w.lanes[0]
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- w.Run(ctx) }()
	select {
	case <-all:
	case <-time.After(10 * time.Second):
		mu.Lock()
		t.Errorf("%d of %d offsets handled: %v", len(seen), n, seen)
		mu.Unlock()
	}
	cancel()
	if err := <-ran; err != nil {
		t.Fatal(err)
	}
	if h.revokes.Load() == 0 {
		t.Error("no revoke during a poll")
	}
}

// revokeInPoll revokes partition 0 of lane l at the start of each poll
// until a poll has returned records.
type revokeInPoll struct {
	l       *lane
	polled  atomic.Bool
	revokes atomic.Int64
}

func (h *revokeInPoll) OnPollStart(ctx context.Context) {
	if !h.polled.Load() {
		h.revokes.Add(1)
		h.l.revoke(ctx, h.l.cl, map[string][]int32{h.l.o.Topic: {0}})
	}
}

func (h *revokeInPoll) OnFetchRecordUnbuffered(_ *kgo.Record, polled bool) {
	if polled {
		h.polled.Store(true)
	}
}

// newKfake is a one-broker kfake cluster with opts and a producing client
// with prod, both closed when tb ends.
func newKfake(tb testing.TB, opts []kfake.Opt, prod ...kgo.Opt) (*kfake.Cluster, *kgo.Client) {
	tb.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1)}, opts...)...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(c.Close)
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...)}, prod...)...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(cl.Close)
	return c, cl
}
