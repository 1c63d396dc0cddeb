package lanes

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The commit mark moves only past a prefix of finished records.
func TestTrackPrefix(t *testing.T) {
	l := &lane{parts: map[int32]*partTrack{}}
	recs := make([]*kgo.Record, 5)
	var pt *partTrack
	for i := range recs {
		recs[i] = &kgo.Record{Topic: "t", Offset: int64(10 + i)}
		pt = l.track(recs[i])
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

func TestHeaderName(t *testing.T) {
	for in, want := range map[string]string{"project_id": "Project-Id", "class": "Class", "baton-lane-reason": "Baton-Lane-Reason", "a b": "", "ä": ""} {
		if got := headerName(in); got != want {
			t.Errorf("headerName(%q) = %q, want %q", in, got, want)
		}
	}
}

// A worker in process: records escalate from a to b and are done there;
// Stats account for each once.
func TestWorkerEscalates(t *testing.T) {
	const n = 200
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "a", "b", "dead"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	prod, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
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

// BenchmarkLanes is items per second through lanes on kfake with a
// handler that answers at once: one lane (every item done), and two (every
// item escalated from the first to the second, done there).
func BenchmarkLanes(b *testing.B) {
	for _, lanes := range []int{1, 2} {
		b.Run(fmt.Sprintf("lanes=%d", lanes), func(b *testing.B) {
			const n = 20000
			c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(4, "a", "b", "dead"))
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			prod, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
			if err != nil {
				b.Fatal(err)
			}
			defer prod.Close()
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
