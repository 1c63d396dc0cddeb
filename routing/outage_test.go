package routing

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// fakeTimers hands the prober's waits to the test: each After call
// arrives on calls, and fires when the test sends on it.
type fakeTimers struct{ calls chan timerCall }

type timerCall struct {
	d    time.Duration
	fire chan time.Time
}

func newFakeTimers() *fakeTimers { return &fakeTimers{calls: make(chan timerCall, 16)} }

func (f *fakeTimers) After(d time.Duration) <-chan time.Time {
	c := timerCall{d, make(chan time.Time, 1)}
	f.calls <- c
	return c.fire
}

// next returns the prober's next wait: it has scheduled its next probe.
func (f *fakeTimers) next(t *testing.T) timerCall {
	t.Helper()
	select {
	case c := <-f.calls:
		return c
	case <-time.After(10 * time.Second):
		t.Fatal("the prober scheduled no probe")
		return timerCall{}
	}
}

// downAddr returns a 127.0.0.1 address nothing listens on (yet).
func downAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// countingDial counts connection attempts: nothing listens at a down
// address to count them there.
func countingDial(n *atomic.Int64) fasthttp.DialFunc {
	return func(addr string) (net.Conn, error) {
		n.Add(1)
		return fasthttp.Dial(addr)
	}
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func sendMsg(u *Upstream, m Message) error {
	errs := make([]error, 1)
	u.Send(context.Background(), []Message{m}, errs)
	return errs[0]
}

// waitFor polls cond until it holds or a deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond) // polling a condition, not synchronising
	}
}

func TestUpstreamOutageProbesAndResumes(t *testing.T) {
	t.Parallel()
	addr := downAddr(t)
	clock, timers := newFakeClock(testReceived), newFakeTimers()
	var dials atomic.Int64
	u := newTestUpstream(t, UpstreamOptions{
		URLs: []string{"http://" + addr}, OutageGracePeriod: 10 * time.Second, MaxRetryInterval: 8 * time.Second,
		Dial: countingDial(&dials), Now: clock.Now, After: timers.After, Logger: quietLogger(),
	})
	m := testMsg(1, "{}\n")

	// Failures within the grace period: every send still connects.
	for i := range 3 {
		if err := sendMsg(u, m); err == nil || errors.Is(err, ErrOutage) {
			t.Fatalf("send %d in the grace period: %v, want a connection error", i, err)
		}
		clock.Advance(4 * time.Second)
	}
	if d := dials.Load(); d != 3 {
		t.Fatalf("%d connection attempts in the grace period, want 3", d)
	}
	// The third failure came 8 s after the first; the fourth, at 12 s, is
	// past the grace period and starts the outage.
	if err := sendMsg(u, m); err == nil || errors.Is(err, ErrOutage) {
		t.Fatalf("send past the grace period: %v", err)
	}
	if s := u.State(); s.Outage != 1 || s.Outages != 1 {
		t.Fatalf("state %+v, want one node in outage", s)
	}
	probe := timers.next(t)
	if probe.d < firstProbeDelay/2 || probe.d > firstProbeDelay {
		t.Errorf("first probe in %v, want [%v, %v]", probe.d, firstProbeDelay/2, firstProbeDelay)
	}

	// In outage: sends fail at once, retryable, with the wait until the
	// probe, and connect to nothing.
	for i := range 5 {
		err := sendMsg(u, m)
		after, ok := RetryAfter(err)
		if !errors.Is(err, ErrOutage) || IsPermanent(err) || !ok || after != probe.d {
			t.Fatalf("send %d in outage: %v (retry after %v, %v), want ErrOutage after %v", i, err, after, ok, probe.d)
		}
	}
	if d := dials.Load(); d != 4 {
		t.Fatalf("%d connection attempts, want 4: sends in outage must not connect", d)
	}

	// A failed probe backs off (doubling, capped at MaxRetryInterval).
	probe.fire <- clock.Now()
	var waits []time.Duration
	for range 4 {
		probe = timers.next(t)
		waits = append(waits, probe.d)
		if after, _ := RetryAfter(sendMsg(u, m)); after != probe.d {
			t.Fatalf("hint %v after a failed probe, want the next probe's %v", after, probe.d)
		}
		probe.fire <- clock.Now()
	}
	probe = timers.next(t)
	for i, limit := range []time.Duration{2, 4, 8, 8} {
		if lo, hi := limit*time.Second/2, limit*time.Second; waits[i] < lo || waits[i] > hi {
			t.Errorf("wait %d after failed probes: %v, want [%v, %v]", i+1, waits[i], lo, hi)
		}
	}
	if d := dials.Load(); d != 4+5 {
		t.Fatalf("%d connection attempts, want 9 (4 sends, 5 probes)", d)
	}

	// The upstream comes back on the same address: the next probe finds
	// it and sending resumes.
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("cannot listen on %s again: %v", addr, err)
	}
	f := serveFakeUpstream(t, ln)
	probe.fire <- clock.Now()
	waitFor(t, "the outage to end", func() bool { return u.State().Outage == 0 })
	if err := sendMsg(u, m); err != nil {
		t.Fatalf("send after recovery: %v", err)
	}
	reqs := f.requests()
	if len(reqs) != 2 || reqs[0].method != "GET" || reqs[0].uri != LivePath || reqs[1].uri != "/api/1/envelope/" {
		t.Fatalf("upstream saw %+v, want the probe of %s then the envelope", reqs, LivePath)
	}
	if s := u.State(); s.Outage != 0 || s.Outages != 1 {
		t.Fatalf("state %+v after recovery", s)
	}
}

// A send that finds the node's probe in flight waits for its result
// instead of failing and waiting for the next probe.
func TestUpstreamOutageSendWaitsForProbe(t *testing.T) {
	t.Parallel()
	f := newFakeUpstream(t)
	probed, release := make(chan struct{}, 1), make(chan struct{})
	f.answer(func(ctx *fasthttp.RequestCtx) {
		if string(ctx.Path()) == LivePath {
			probed <- struct{}{}
			<-release
		}
	})
	timers := newFakeTimers()
	u := newTestUpstream(t, UpstreamOptions{URLs: []string{f.url}, After: timers.After, Logger: quietLogger()})
	n := u.nodes[0]
	u.netFailed(n, errors.New("test"))
	n.netErrSince.Store(1) // long ago: the next failure starts the outage
	u.netFailed(n, errors.New("test"))
	probe := timers.next(t)
	probe.fire <- time.Now()
	<-probed
	done := make(chan error, 1)
	go func() { done <- sendMsg(u, testMsg(1, "{}\n")) }()
	o := n.outage.Load()
	waitFor(t, "the send to wait for the probe", func() bool { return len(done) > 0 || probeWaiters(o) > 0 })
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("send during the probe: %v, want delivered once the probe succeeded", err)
	}
}

// probeWaiters returns how many sends have waited for a probe of o.
func probeWaiters(o *outage) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.waiting
}

func TestUpstreamOutageClassification(t *testing.T) {
	t.Parallel()
	f := newFakeUpstream(t)
	clock, timers := newFakeClock(testReceived), newFakeTimers()
	u := newTestUpstream(t, UpstreamOptions{URLs: []string{f.url}, MaxFailures: -1, Now: clock.Now, After: timers.After, Logger: quietLogger()})
	m := testMsg(1, "{}\n")
	// 500 and 4xx are answers: the upstream is reachable, however long
	// they last.
	for _, code := range []int{500, 400, 429} {
		f.status(code)
		for range 3 {
			_ = sendMsg(u, m)
			clock.Advance(6 * time.Second)
		}
		if u.State().Outage != 0 {
			t.Fatalf("%d answers put the upstream in outage", code)
		}
	}
	// 502-504 are a gateway's: they count as network failures. A 400 in
	// between restarts the grace period.
	f.status(502)
	_ = sendMsg(u, m)
	clock.Advance(6 * time.Second)
	f.status(400)
	_ = sendMsg(u, m)
	f.status(504)
	_ = sendMsg(u, m)
	clock.Advance(6 * time.Second)
	_ = sendMsg(u, m)
	if u.State().Outage != 0 {
		t.Fatal("outage entered although a 400 came within the grace period")
	}
	clock.Advance(6 * time.Second)
	_ = sendMsg(u, m)
	if u.State().Outage != 1 {
		t.Fatal("12 s of 504 answers did not start an outage")
	}
	// The probe's 503 keeps the outage; its 404 ends it.
	f.status(503)
	timers.next(t).fire <- clock.Now()
	next := timers.next(t) // the probe failed: another is scheduled
	if u.State().Outage != 1 {
		t.Fatal("a 503 to the probe ended the outage")
	}
	f.status(404)
	next.fire <- clock.Now()
	waitFor(t, "a 404 to the probe to end the outage", func() bool { return u.State().Outage == 0 })
}

func TestUpstreamOutageInPool(t *testing.T) {
	t.Parallel()
	a, b := newFakeUpstream(t), newFakeUpstream(t)
	clock, timers := newFakeClock(testReceived), newFakeTimers()
	u := newTestUpstream(t, UpstreamOptions{
		URLs: []string{a.url, b.url}, ProbeInterval: 10 * time.Second,
		Now: clock.Now, After: timers.After, Logger: quietLogger(),
	})
	ma, mb := testMsg(1, "{}\n"), testMsg(2, "{}\n")
	ma.PublicKey, mb.PublicKey = keyFor(t, u, 0), keyFor(t, u, 1)
	a.status(502)
	_ = sendMsg(u, ma)
	clock.Advance(11 * time.Second)
	_ = sendMsg(u, ma)
	probeA := timers.next(t)
	// a's keys move to b, and no trial request goes to a however long
	// the outage lasts: only its prober re-admits it.
	for range 3 {
		clock.Advance(11 * time.Second)
		if err := sendMsg(u, ma); err != nil {
			t.Fatalf("a's key with a in outage: %v, want delivered by b", err)
		}
	}
	if na, nb := len(a.requests()), len(b.requests()); na != 2 || nb != 3 {
		t.Fatalf("a got %d requests (want 2), b %d (want 3)", na, nb)
	}
	// Both down: sends fail fast with the soonest probe's wait.
	b.status(503)
	_ = sendMsg(u, mb)
	clock.Advance(11 * time.Second)
	_ = sendMsg(u, mb)
	probeB := timers.next(t)
	if u.State().Outage != 2 {
		t.Fatalf("state %+v, want both nodes in outage", u.State())
	}
	nb := len(b.requests())
	// The hint is the soonest probe's: b's is probeB.d away, a's was due
	// 44 s ago on the fake clock (nothing fires it), so 0.
	if after, ok := RetryAfter(sendMsg(u, mb)); !ok || after != 0 {
		t.Fatalf("all down: retry after %v (%v), want 0: a's probe is overdue", after, ok)
	}
	u.nodes[0].outage.Load().mu.Lock()
	u.nodes[0].outage.Load().next = clock.Now().Add(time.Hour)
	u.nodes[0].outage.Load().mu.Unlock()
	if err := sendMsg(u, ma); !errors.Is(err, ErrOutage) {
		t.Fatalf("all down: %v, want ErrOutage", err)
	} else if after, _ := RetryAfter(err); after != probeB.d {
		t.Fatalf("all down: retry after %v, want b's next probe in %v", after, probeB.d)
	}
	if len(b.requests()) != nb || len(a.requests()) != 2 {
		t.Fatal("a send with every node in outage reached a node")
	}
	// a answers its probe: keys of both nodes go to a.
	a.status(200)
	probeA.fire <- clock.Now()
	waitFor(t, "a to recover", func() bool { return u.State().Outage == 1 })
	for _, m := range []Message{ma, mb} {
		if err := sendMsg(u, m); err != nil {
			t.Fatalf("send with a back: %v", err)
		}
	}
	if na := len(a.requests()); na != 2+1+2 {
		t.Fatalf("a got %d requests, want 5 (2 failed, the probe, 2 sends)", na)
	}
}

func TestUpstreamOutageForward(t *testing.T) {
	t.Parallel()
	addr := downAddr(t)
	timers := newFakeTimers()
	var dials atomic.Int64
	u := newTestUpstream(t, UpstreamOptions{URLs: []string{"http://" + addr}, Dial: countingDial(&dials), After: timers.After, Logger: quietLogger()})
	n := u.nodes[0]
	n.netErrSince.Store(1)
	u.netFailed(n, errors.New("test"))
	timers.next(t)
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI("http://baton.local/api/0/relays/projectconfigs/")
	if err := u.Forward(context.Background(), req, resp); !errors.Is(err, ErrOutage) {
		t.Fatalf("forward in outage: %v, want ErrOutage", err)
	}
	if dials.Load() != 0 {
		t.Fatal("a forward in outage connected")
	}
}
