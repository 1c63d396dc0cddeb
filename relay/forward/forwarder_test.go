package forward

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/baton-relay/baton/buffer"
	"github.com/baton-relay/baton/envelope"
	"github.com/baton-relay/baton/relay/outcome"
	"github.com/baton-relay/baton/relay/record"
	"github.com/baton-relay/baton/routing"
)

var errsStream = record.StreamFor(envelope.ClassError, 0).ID()

// startForwarder runs a forwarder of errsStream over b and sink.
func startForwarder(t *testing.T, b *buffer.Buffer, sink routing.Sink, clk Clock, o ForwarderOptions) (*ackBuffer, *recorder, func()) {
	ab := &ackBuffer{Buffer: b, acks: make(chan buffer.Seq, 64)}
	rec := newRecorder()
	o.Buffer, o.Stream, o.Sink, o.Outcomes, o.Clock, o.Logger = ab, errsStream, sink, rec, clk, quiet
	f := NewForwarder(o)
	return ab, rec, run(t, f.Run)
}

func within(t *testing.T, what string, d, lo, hi time.Duration) {
	t.Helper()
	if d < lo || d >= hi {
		t.Errorf("%s waited %v, want [%v, %v)", what, d, lo, hi)
	}
}

// Backoff doubles while nothing gets through and starts again from
// MinBackoff once an attempt delivers part of the batch.
func TestBackoffResetsOnPartialProgress(t *testing.T) {
	b, _ := openBuffer(t)
	appendRecs(t, b, errsStream, envelope.ClassError, 1, 2, 3)
	down := errors.New("connection refused")
	sink := &fakeSink{script: func(_ context.Context, call int, msgs []routing.Message) []error {
		switch call {
		case 0, 1:
			return each(len(msgs), down)
		case 2: // the first gets through
			return append([]error{nil}, each(len(msgs)-1, down)...)
		}
		return each(len(msgs), nil)
	}}
	clk := newClock(false)
	ab, rec, _ := startForwarder(t, b, sink, clk, ForwarderOptions{})
	w := clk.Next(t, guard)
	within(t, "1st failure", w.D, MinBackoff/2, MinBackoff)
	w.Fire()
	w = clk.Next(t, guard)
	within(t, "2nd failure", w.D, MinBackoff, 2*MinBackoff)
	w.Fire()
	w = clk.Next(t, guard)
	within(t, "after partial progress", w.D, MinBackoff/2, MinBackoff)
	w.Fire()
	if got := waitAck(t, ab.acks); got != 3 {
		t.Fatalf("acked up to %d, want 3", got)
	}
	want := [][]uint64{{1, 2, 3}, {1, 2, 3}, {1, 2, 3}, {2, 3}}
	if got := sink.sent(); !slices.EqualFunc(got, want, slices.Equal) {
		t.Fatalf("sent %v, want %v", got, want)
	}
	if d := rec.get().delivered; d.Records != 3 {
		t.Fatalf("delivered %+v", d)
	}
}

// A batch throttled with several Retry-Afters waits for the largest.
func TestWaitsForLargestRetryAfter(t *testing.T) {
	b, _ := openBuffer(t)
	appendRecs(t, b, errsStream, envelope.ClassError, 1, 2, 3)
	busy := errors.New("429")
	sink := &fakeSink{script: func(_ context.Context, call int, msgs []routing.Message) []error {
		if call == 0 {
			return []error{routing.Throttled(busy, 2*time.Second), routing.Throttled(busy, 7*time.Second), routing.Throttled(busy, 3*time.Second)}
		}
		return each(len(msgs), nil)
	}}
	clk := newClock(false)
	ab, _, _ := startForwarder(t, b, sink, clk, ForwarderOptions{})
	w := clk.Next(t, guard)
	if w.D != 7*time.Second {
		t.Fatalf("waited %v, want the largest Retry-After 7s", w.D)
	}
	w.Fire()
	waitAck(t, ab.acks)
}

// X-Sentry-Rate-Limits as routing.Upstream returns them: the limited
// project is retried after the header's longest limit (over Retry-After),
// the other is delivered at once.
func TestRateLimitHeaders(t *testing.T) {
	var limited atomic.Bool
	limited.Store(true)
	var mu sync.Mutex
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.URL.Path)
		mu.Unlock()
		if strings.HasPrefix(r.URL.Path, "/api/1/") && limited.Load() {
			w.Header().Set("Retry-After", "1")
			w.Header().Set("X-Sentry-Rate-Limits", "7:error;default:project:quota, 2:transaction:organization")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(srv.Close)
	clk := newClock(false)
	up, err := routing.NewUpstream(routing.UpstreamOptions{URLs: []string{srv.URL}, Compression: "none", Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { up.Close(context.Background()) })

	b, _ := openBuffer(t)
	appendRecs(t, b, errsStream, envelope.ClassError, 1, 2)
	ab, rec, _ := startForwarder(t, b, up, clk, ForwarderOptions{})
	w := clk.Next(t, guard)
	if w.D != 7*time.Second {
		t.Fatalf("waited %v, want 7s (the error category's limit)", w.D)
	}
	if d := rec.get().delivered; d.Records != 1 {
		t.Fatalf("before the wait delivered %+v, want project 2's record", d)
	}
	limited.Store(false)
	w.Fire()
	waitAck(t, ab.acks)
	mu.Lock()
	defer mu.Unlock()
	if n := len(got); n != 3 {
		t.Fatalf("upstream saw %d requests %v, want 3", n, got)
	}
}

// fakeRegistrar registers again only when the generation is unchanged,
// as relay's upstreamAuth does.
type fakeRegistrar struct {
	mu            sync.Mutex
	gen           atomic.Uint64
	calls         []uint64 // the generations Reregister was called with
	registrations int
}

func (r *fakeRegistrar) Generation() uint64 { return r.gen.Load() }

func (r *fakeRegistrar) Reregister(_ context.Context, gen uint64) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, gen)
	if r.gen.Load() != gen {
		return nil
	}
	r.registrations++
	r.gen.Add(1)
	return nil
}

func (r *fakeRegistrar) stats() ([]uint64, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.calls), r.registrations
}

var unauthorized = routing.Permanent(&routing.StatusError{Status: 401})

// A 401 to a request signed before a registration that happened while it
// was in flight is late: the forwarder passes the generation it read
// before sending, and nothing registers again.
func TestLate401DoesNotReregister(t *testing.T) {
	b, _ := openBuffer(t)
	appendRecs(t, b, errsStream, envelope.ClassError, 1)
	reg := &fakeRegistrar{}
	sink := &fakeSink{script: func(_ context.Context, call int, msgs []routing.Message) []error {
		if call == 0 {
			reg.gen.Add(1) // someone else registered meanwhile
			return each(len(msgs), unauthorized)
		}
		return each(len(msgs), nil)
	}}
	ab, rec, _ := startForwarder(t, b, sink, newClock(true), ForwarderOptions{Registrar: reg})
	waitAck(t, ab.acks)
	calls, n := reg.stats()
	if !slices.Equal(calls, []uint64{0}) || n != 0 {
		t.Fatalf("Reregister calls %v, registrations %d; want one call with generation 0 and no registration", calls, n)
	}
	if d := rec.get().delivered; d.Records != 1 {
		t.Fatalf("delivered %+v", d)
	}
}

// Many forwarders refused with 401 at once cause one registration, and
// all deliver after it.
func TestConcurrent401sRegisterOnce(t *testing.T) {
	const n = 50
	b, _ := openBuffer(t)
	reg := &fakeRegistrar{}
	sink := &fakeSink{script: func(_ context.Context, _ int, msgs []routing.Message) []error {
		if reg.Generation() == 0 {
			return each(len(msgs), unauthorized)
		}
		return each(len(msgs), nil)
	}}
	clk := newClock(true)
	rec := newRecorder()
	acks := make(chan buffer.Seq, n)
	ab := &ackBuffer{Buffer: b, acks: acks}
	var sent sync.WaitGroup
	for p := range uint32(n) {
		s := record.StreamFor(envelope.ClassError, p).ID()
		appendRecs(t, b, s, envelope.ClassError, uint64(p))
		sent.Add(1)
		f := NewForwarder(ForwarderOptions{Buffer: ab, Stream: s, Sink: sink, Outcomes: rec, Registrar: reg, Clock: clk, Logger: quiet})
		run(t, f.Run)
	}
	for range n {
		waitAck(t, acks)
	}
	if _, regs := reg.stats(); regs != 1 {
		t.Fatalf("%d registrations, want 1", regs)
	}
	if d := rec.get().delivered; d.Records != n {
		t.Fatalf("delivered %+v, want %d", d, n)
	}
}

// A key the upstream really refuses keeps answering 401: it is retried
// after ReauthAttempts registrations, then dropped as invalid.
func TestBadKeyDroppedAfterReauthAttempts(t *testing.T) {
	b, _ := openBuffer(t)
	appendRecs(t, b, errsStream, envelope.ClassError, 1)
	reg := &fakeRegistrar{}
	sink := &fakeSink{script: func(_ context.Context, _ int, msgs []routing.Message) []error {
		return each(len(msgs), unauthorized)
	}}
	ab, rec, _ := startForwarder(t, b, sink, newClock(true), ForwarderOptions{Registrar: reg})
	waitAck(t, ab.acks)
	if calls, regs := reg.stats(); len(calls) != ReauthAttempts || regs != ReauthAttempts {
		t.Fatalf("Reregister %v, %d registrations; want %d each", calls, regs, ReauthAttempts)
	}
	if got := len(sink.sent()); got != ReauthAttempts+1 {
		t.Fatalf("%d sends, want %d", got, ReauthAttempts+1)
	}
	if d := rec.get().dropped[outcome.ReasonInvalid]; d.Records != 1 || d.Items != 1 {
		t.Fatalf("dropped invalid %+v", d)
	}
}

// A 401 after many failed attempts (an upstream that was down, then came
// back having forgotten the registration) still re-registers: the
// re-registration budget counts 401 answers, not attempts.
func Test401AfterLongOutageReregisters(t *testing.T) {
	b, _ := openBuffer(t)
	appendRecs(t, b, errsStream, envelope.ClassError, 1)
	reg := &fakeRegistrar{}
	sink := &fakeSink{script: func(_ context.Context, call int, msgs []routing.Message) []error {
		switch {
		case call < 2*ReauthAttempts:
			return each(len(msgs), &routing.StatusError{Status: 502})
		case call == 2*ReauthAttempts:
			return each(len(msgs), unauthorized)
		}
		return make([]error, len(msgs))
	}}
	ab, rec, _ := startForwarder(t, b, sink, newClock(true), ForwarderOptions{Registrar: reg})
	waitAck(t, ab.acks)
	if _, regs := reg.stats(); regs != 1 {
		t.Fatalf("%d registrations, want 1", regs)
	}
	if got := rec.get(); got.delivered.Records != 1 || got.dropped[outcome.ReasonInvalid].Records != 0 {
		t.Fatalf("outcomes %+v: the record must be delivered, not dropped", got)
	}
}

// Held back behind a failed record of its project (routing.ErrHeldBack),
// a record is retried after it, in order; other projects go on.
func TestHeldBackKeepsProjectOrder(t *testing.T) {
	b, _ := openBuffer(t)
	// project 1: three records; project 2: one between them
	appendRecs(t, b, errsStream, envelope.ClassError, 1, 2, 1, 1)
	var delivered []uint64 // project ids, in delivery order
	var mu sync.Mutex
	sink := &fakeSink{script: func(_ context.Context, call int, msgs []routing.Message) []error {
		errs := make([]error, len(msgs))
		failed := map[uint64]bool{}
		for i, m := range msgs {
			switch {
			case failed[m.ProjectID]:
				errs[i] = routing.ErrHeldBack
			case call == 0 && m.ProjectID == 1: // the first of project 1 fails
				errs[i] = &routing.StatusError{Status: 503}
				failed[1] = true
			default:
				mu.Lock()
				delivered = append(delivered, m.ProjectID)
				mu.Unlock()
			}
		}
		return errs
	}}
	ab, _, _ := startForwarder(t, b, sink, newClock(true), ForwarderOptions{})
	waitAck(t, ab.acks)
	if want := [][]uint64{{1, 2, 1, 1}, {1, 1, 1}}; !slices.EqualFunc(sink.sent(), want, slices.Equal) {
		t.Fatalf("sent %v, want %v", sink.sent(), want)
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []uint64{2, 1, 1, 1}; !slices.Equal(delivered, want) {
		t.Fatalf("delivered %v, want %v", delivered, want)
	}
}

// Records the destination refuses for good, and records that do not
// decode, are dropped with their outcome; the rest is delivered.
func TestPermanentDropsCounted(t *testing.T) {
	b, _ := openBuffer(t)
	appendRecs(t, b, errsStream, envelope.ClassError, 1, 2)
	if err := b.Append(context.Background(), []buffer.Entry{{Stream: errsStream, Value: []byte{0xff, 1, 2}}}); err != nil {
		t.Fatal(err)
	}
	sink := &fakeSink{script: func(_ context.Context, _ int, msgs []routing.Message) []error {
		errs := make([]error, len(msgs))
		for i, m := range msgs {
			if m.ProjectID == 1 {
				errs[i] = routing.Permanent(&routing.StatusError{Status: 400})
			}
		}
		return errs
	}}
	clk := newClock(false)
	reported := &reportLog{}
	ab, rec, _ := startForwarder(t, b, sink, clk, ForwarderOptions{Reporter: reported})
	if got := waitAck(t, ab.acks); got != 3 {
		t.Fatalf("acked up to %d, want 3", got)
	}
	r := rec.get()
	if r.delivered.Records != 1 || r.dropped[outcome.ReasonInvalid].Records != 1 || r.dropped[outcome.ReasonCorrupt].Records != 1 {
		t.Fatalf("delivered %+v, dropped %+v", r.delivered, r.dropped)
	}
	// The refused record is reported upstream with its project, key and
	// envelope; the corrupt one has nothing to report.
	reported.mu.Lock()
	defer reported.mu.Unlock()
	if want := []string{"1 keyb invalid {}\n{\"type\":\"event\"}\n{}\n"}; !slices.Equal(reported.got, want) {
		t.Fatalf("reported %q, want %q", reported.got, want)
	}
	if w := clk.Waited(); len(w) != 0 {
		t.Fatalf("waited %v: a batch that settled must not back off", w)
	}
}

// reportLog is a Reporter that logs what it is told.
type reportLog struct {
	mu  sync.Mutex
	got []string
}

func (l *reportLog) Report(rec *record.Record, why outcome.Reason, code string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.got = append(l.got, fmt.Sprintf("%d %s %s%s %s", rec.ProjectID, rec.PublicKey, why, code, rec.Envelope))
}

// Shutdown: once readCtx is done the backlog is still drained and the loop
// returns when the stream is empty; once sendCtx is done the batch in
// flight is abandoned unacked and delivered after reopening.
func TestDrainOnShutdown(t *testing.T) {
	t.Run("read stopped", func(t *testing.T) {
		b, _ := openBuffer(t)
		appendRecs(t, b, errsStream, envelope.ClassError, 1)
		sink := &fakeSink{script: func(_ context.Context, _ int, msgs []routing.Message) []error { return each(len(msgs), nil) }}
		f := NewForwarder(ForwarderOptions{Buffer: b, Stream: errsStream, Sink: sink, Outcomes: newRecorder(), Clock: newClock(false), Logger: quiet})
		readCtx, cancel := context.WithCancel(context.Background())
		cancel()
		f.Run(readCtx, context.Background()) // returns: the stream is empty
		if len(sink.sent()) != 1 {
			t.Fatalf("sent %v after readCtx ended, want the backlog drained", sink.sent())
		}
	})
	t.Run("send abandoned", func(t *testing.T) {
		b, fs := openBuffer(t)
		appendRecs(t, b, errsStream, envelope.ClassError, 1, 2)
		inFlight := make(chan struct{})
		sink := &fakeSink{script: func(ctx context.Context, _ int, msgs []routing.Message) []error {
			close(inFlight)
			<-ctx.Done()
			return each(len(msgs), ctx.Err())
		}}
		ab, rec, stop := startForwarder(t, b, sink, newClock(false), ForwarderOptions{})
		select {
		case <-inFlight:
		case <-time.After(guard):
			t.Fatal("nothing sent")
		}
		stop()
		select {
		case s := <-ab.acks:
			t.Fatalf("acked up to %d after an abandoned send", s)
		default:
		}
		if d := rec.get().delivered; d.Records != 0 {
			t.Fatalf("delivered %+v", d)
		}
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		b = openBufferOn(t, fs)
		recs, err := b.Read(context.Background(), errsStream, nil, 10, 0)
		if err != nil || len(recs) != 2 {
			t.Fatalf("after reopening read %d records, %v; want both again", len(recs), err)
		}
	})
}

// TestBacklogSentInFullBatches: a backlog goes out BatchRecords records a
// send (each send waits for its acks, so the batch is the drain rate).
func TestBacklogSentInFullBatches(t *testing.T) {
	b, _ := openBuffer(t)
	n := BatchRecords*2 + BatchRecords/2
	appendRecs(t, b, errsStream, envelope.ClassError, make([]uint64, n)...)
	sink := &fakeSink{script: func(_ context.Context, _ int, msgs []routing.Message) []error { return each(len(msgs), nil) }}
	f := NewForwarder(ForwarderOptions{Buffer: b, Stream: errsStream, Sink: sink, Outcomes: newRecorder(), Clock: newClock(false), Logger: quiet})
	readCtx, cancel := context.WithCancel(context.Background())
	cancel()
	f.Run(readCtx, context.Background()) // drains the backlog, then returns
	var sizes []int
	for _, c := range sink.sent() {
		sizes = append(sizes, len(c))
	}
	if want := []int{BatchRecords, BatchRecords, BatchRecords / 2}; !slices.Equal(sizes, want) {
		t.Fatalf("sends of %v records, want %v", sizes, want)
	}
}

func TestBackoffBounds(t *testing.T) {
	for f := range 30 {
		d := backoff(f, MinBackoff, time.Minute)
		hi := min(MinBackoff<<min(f, 20), time.Minute)
		if f >= 20 {
			hi = time.Minute
		}
		if d < hi/2 || d > hi {
			t.Fatalf("backoff(%d) = %v, want [%v, %v]", f, d, hi/2, hi)
		}
	}
}

// An upstream in outage (routing.ErrOutage) says when it probes next:
// the forwarder waits exactly that, however long the outage lasts, instead
// of a backoff of its own that would delay the resumption.
func TestOutageWaitsForTheProbe(t *testing.T) {
	b, _ := openBuffer(t)
	appendRecs(t, b, errsStream, envelope.ClassError, 1, 2)
	down := fmt.Errorf("routing: upstream x: %w", routing.ErrOutage)
	sink := &fakeSink{script: func(_ context.Context, call int, msgs []routing.Message) []error {
		switch {
		case call < 5:
			return []error{routing.Throttled(down, 3*time.Second), routing.ErrHeldBack}
		case call == 5:
			return []error{routing.Throttled(down, 0), routing.ErrHeldBack} // probe overdue
		}
		return each(len(msgs), nil)
	}}
	clk := newClock(false)
	ab, _, _ := startForwarder(t, b, sink, clk, ForwarderOptions{})
	for i := range 6 {
		w := clk.Next(t, guard)
		if want := map[bool]time.Duration{true: 3 * time.Second, false: MinBackoff}[i < 5]; w.D != want {
			t.Fatalf("wait %d in outage: %v, want %v", i, w.D, want)
		}
		w.Fire()
	}
	waitAck(t, ab.acks)
	if n := len(sink.sent()); n != 7 {
		t.Fatalf("%d sends, want 7", n)
	}
}

// A sink that keeps the loan (Kafka records in flight at a deadline) goes on
// reading the batch's envelopes after Send returned: the next batch must not
// be decoded or read into that memory. Without the loan kept, the memory is
// reused, which shows that the test can see a reuse.
func TestKeptLoanMemoryIsNotReused(t *testing.T) {
	for _, tc := range []struct {
		name string
		size int // small envelopes are stored as they are, large ones compressed
		keep bool
	}{
		{"stored/kept", 64, true}, {"compressed/kept", 4096, true},
		{"stored/not kept", 64, false}, {"compressed/not kept", 4096, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, _ := openBuffer(t)
			env := func(fill byte) []byte {
				return append([]byte("{}\n{\"type\":\"event\"}\n"), bytes.Repeat([]byte{fill}, tc.size)...)
			}
			add := func(project uint64, fill byte) {
				rec := record.Record{Class: envelope.ClassError, Items: 1, ReceivedAt: time.Now().UnixNano(), ProjectID: project, PublicKey: []byte(keyOf(project))}
				if err := b.Append(context.Background(), []buffer.Entry{{Stream: errsStream, Value: record.Append(nil, &rec, env(fill))}}); err != nil {
					t.Fatal(err)
				}
			}
			var held []byte // what the sink still references after the first Send
			second := make(chan []byte, 1)
			sink := &fakeSink{script: func(_ context.Context, call int, msgs []routing.Message) []error {
				switch call {
				case 0:
					if msgs[0].Loan == nil {
						t.Error("the forwarder lent nothing")
					} else if tc.keep {
						msgs[0].Loan.Keep()
					}
					held = msgs[0].Envelope
				case 1:
					second <- bytes.Clone(held)
				}
				return each(len(msgs), nil)
			}}
			add(1, 'a')
			ab, _, stop := startForwarder(t, b, sink, newClock(false), ForwarderOptions{})
			defer stop()
			waitAck(t, ab.acks)
			add(2, 'b')
			var got []byte
			select {
			case got = <-second:
			case <-time.After(guard):
				t.Fatal("the second batch was not sent")
			}
			switch intact := bytes.Equal(got, env('a')); {
			case tc.keep && !intact:
				t.Errorf("the kept envelope was overwritten by the next batch: %.40q", got)
			case !tc.keep && intact:
				t.Errorf("the memory of a loan not kept was not reused (the test cannot see a reuse)")
			}
		})
	}
}

// With SteerTrace an envelope's DSC trace id becomes the message's Trace
// and Key; an envelope without one keeps the project key, and a Shard wins.
func TestSteerTrace(t *testing.T) {
	const id = "771a43a4192642f0b136d5159a501700"
	withDSC := []byte(`{"trace":{"trace_id":"` + id + `","public_key":"k"}}` + "\n{\"type\":\"event\"}\n{}\n")
	without := []byte("{}\n{\"type\":\"event\"}\n{}\n")
	for _, tc := range []struct {
		name       string
		o          ForwarderOptions
		env        []byte
		trace, key string
	}{
		{"trace", ForwarderOptions{SteerTrace: true}, withDSC, id, id},
		{"no trace id", ForwarderOptions{SteerTrace: true}, without, "", ""},
		{"steer project", ForwarderOptions{}, withDSC, "", ""},
		{"shard wins", ForwarderOptions{SteerTrace: true, Shard: "7"}, withDSC, "", "7"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, _ := openBuffer(t)
			rec := record.Record{Class: envelope.ClassError, Items: 1, ReceivedAt: time.Now().UnixNano(), ProjectID: 1, PublicKey: []byte(keyOf(1))}
			if err := b.Append(context.Background(), []buffer.Entry{{Stream: errsStream, Value: record.Append(nil, &rec, tc.env)}}); err != nil {
				t.Fatal(err)
			}
			got := make(chan [2]string, 1)
			sink := &fakeSink{script: func(_ context.Context, call int, msgs []routing.Message) []error {
				if call == 0 {
					got <- [2]string{string(msgs[0].Trace), string(msgs[0].Key)}
				}
				return each(len(msgs), nil)
			}}
			_, _, stop := startForwarder(t, b, sink, newClock(false), tc.o)
			defer stop()
			select {
			case g := <-got:
				if g[0] != tc.trace || g[1] != tc.key {
					t.Errorf("Trace %q, Key %q; want %q, %q", g[0], g[1], tc.trace, tc.key)
				}
			case <-time.After(guard):
				t.Fatal("nothing was sent")
			}
		})
	}
}
