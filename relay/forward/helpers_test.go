package forward

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
	"github.com/baton-relay/baton/relay/internal/testutil"
	"github.com/baton-relay/baton/relay/outcome"
	"github.com/baton-relay/baton/relay/record"
	"github.com/baton-relay/baton/routing"
)

// guard bounds how long a test waits for the loop under test to do
// something it must do; it only turns a hang into a failure.
const guard = 10 * time.Second

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// openBuffer opens a buffer on an in-memory filesystem; reopen it with
// openBufferOn(t, fs).
func openBuffer(t *testing.T) (*buffer.Buffer, vfs.FS) {
	fs := vfs.NewMem()
	return openBufferOn(t, fs), fs
}

func openBufferOn(t *testing.T, fs vfs.FS) *buffer.Buffer {
	t.Helper()
	b, err := buffer.Open("db", buffer.Options{FS: fs, MemTableSize: 256 << 10, Weigh: record.Items, Logger: quietStore{}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

// appendRecs appends one record per project id to s and returns their seqs.
func appendRecs(t *testing.T, b *buffer.Buffer, s buffer.Stream, c envelope.Class, projects ...uint64) {
	t.Helper()
	var es []buffer.Entry
	for _, p := range projects {
		es = append(es, buffer.Entry{Stream: s, Value: recordOf(c, p, time.Now())})
	}
	if err := b.Append(context.Background(), es); err != nil {
		t.Fatal(err)
	}
}

func recordOf(c envelope.Class, project uint64, received time.Time) []byte {
	rec := record.Record{
		Class: c, Items: 1, ReceivedAt: received.UnixNano(), ProjectID: project,
		PublicKey: []byte(keyOf(project)),
	}
	return record.Append(nil, &rec, []byte("{}\n{\"type\":\"event\"}\n{}\n"))
}

func keyOf(project uint64) string { return "key" + string(rune('a'+project)) }

// ackBuffer reports every ack of the wrapped buffer.
type ackBuffer struct {
	*buffer.Buffer
	acks chan buffer.Seq
}

func (a *ackBuffer) Ack(s buffer.Stream, upTo buffer.Seq) error {
	err := a.Buffer.Ack(s, upTo)
	a.acks <- upTo
	return err
}

func waitAck(t *testing.T, acks chan buffer.Seq) buffer.Seq {
	t.Helper()
	select {
	case s := <-acks:
		return s
	case <-time.After(guard):
		t.Fatal("no ack")
		return 0
	}
}

// newClock is a test clock; with auto, waits fire at once and are only
// recorded.
func newClock(auto bool) *testutil.Clock {
	return testutil.NewClock(time.Unix(1_750_000_000, 0), auto)
}

// fakeSink answers each Send with script(call, msgs), one error per
// message, and records what it was sent.
type fakeSink struct {
	mu     sync.Mutex
	script func(ctx context.Context, call int, msgs []routing.Message) []error
	calls  [][]uint64 // project ids of each call, in order
}

func (s *fakeSink) Send(ctx context.Context, msgs []routing.Message, errs []error) {
	s.mu.Lock()
	call := len(s.calls)
	ids := make([]uint64, len(msgs))
	for i := range msgs {
		ids[i] = msgs[i].ProjectID
	}
	s.calls = append(s.calls, ids)
	s.mu.Unlock()
	copy(errs, s.script(ctx, call, msgs))
}

func (s *fakeSink) Close(context.Context) error { return nil }

func (s *fakeSink) sent() [][]uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][]uint64(nil), s.calls...)
}

// each answers every message with err.
func each(n int, err error) []error {
	errs := make([]error, n)
	for i := range errs {
		errs[i] = err
	}
	return errs
}

// recorder counts outcomes.
type recorder struct {
	mu sync.Mutex
	counts
	aggregated chan struct{} // signalled after each Aggregate
}

type counts struct {
	delivered outcome.Count
	aggregate outcome.Count
	produced  outcome.Count
	dropped   map[outcome.Reason]outcome.Count
}

func newRecorder() *recorder {
	return &recorder{counts: counts{dropped: map[outcome.Reason]outcome.Count{}}, aggregated: make(chan struct{}, 1)}
}

func add(c *outcome.Count, records, items int) {
	c.Records += int64(records)
	c.Items += int64(items)
}

func (r *recorder) Deliver(_ envelope.Class, records, items int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	add(&r.delivered, records, items)
}

func (r *recorder) Drop(_ envelope.Class, why outcome.Reason, records, items int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.dropped[why]
	add(&c, records, items)
	r.dropped[why] = c
}

func (r *recorder) Aggregate(_ envelope.Class, records, items int) {
	r.mu.Lock()
	add(&r.aggregate, records, items)
	r.mu.Unlock()
	select {
	case r.aggregated <- struct{}{}:
	default:
	}
}

func (r *recorder) Produce(_ envelope.Class, records, items int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	add(&r.produced, records, items)
}

func (r *recorder) get() counts {
	r.mu.Lock()
	defer r.mu.Unlock()
	cp := counts{delivered: r.delivered, aggregate: r.aggregate, produced: r.produced, dropped: map[outcome.Reason]outcome.Count{}}
	for k, v := range r.dropped {
		cp.dropped[k] = v
	}
	return cp
}

// run starts fn(readCtx, sendCtx) and stops it at the end of the test.
func run(t *testing.T, fn func(readCtx, sendCtx context.Context)) (stop func()) {
	readCtx, stopRead := context.WithCancel(context.Background())
	sendCtx, stopSend := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); fn(readCtx, sendCtx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			stopRead()
			stopSend()
			select {
			case <-done:
			case <-time.After(guard):
				t.Error("loop did not stop")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// quietStore drops Pebble's logs.
type quietStore struct{}

func (quietStore) Infof(string, ...any)           {}
func (quietStore) Errorf(string, ...any)          {}
func (quietStore) Fatalf(format string, a ...any) { panic(fmt.Sprintf(format, a...)) }
