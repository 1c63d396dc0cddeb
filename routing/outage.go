package routing

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// Outage mode, as Relay's upstream connection monitor does it
// (docs/relay-protocol.md: http.outage_grace_period, GET /api/0/relays/live/):
// a node whose requests fail at the network level (no connection, reset,
// timeout, or a 502, 503 or 504 from a gateway in front of it) for longer
// than OutageGracePeriod, with no answer in between, is in outage. Baton
// then stops sending to it: requests that would go there fail at once
// with ErrOutage, Throttled for the time until the next probe, and one
// goroutine per node probes LivePath with a jittered exponential backoff
// capped at MaxRetryInterval. Any answer but 502-504 ends the outage (the
// network works again; what the upstream thinks of the data is the next
// request's business), and so does a request answered meanwhile.
//
// In a pool, a node in outage is skipped like an ejected one (its keys
// move to the others) but is never tried by a trial request: only its
// prober re-admits it. With every node down, sends fail fast until the
// first one answers its probe.

// Defaults of UpstreamOptions for outage mode (config/default.yaml agrees).
const (
	// DefaultUpstreamOutageGracePeriod is Relay's http.outage_grace_period.
	DefaultUpstreamOutageGracePeriod = 10 * time.Second
	// DefaultUpstreamMaxRetryInterval is Relay's http.max_retry_interval.
	DefaultUpstreamMaxRetryInterval = 60 * time.Second
	// firstProbeDelay is the first probe's backoff; it doubles per failed
	// probe up to MaxRetryInterval.
	firstProbeDelay = time.Second
)

// LivePath is the upstream's health check probed during an outage.
const LivePath = "/api/0/relays/live/"

// ErrOutage is returned (wrapped, Throttled with the time until the next
// probe) for a request to an upstream in outage mode. It is retryable.
var ErrOutage = errors.New("routing: upstream unreachable, sending paused until its health check answers")

// outage is the state of one node's outage; its prober owns it.
type outage struct {
	since time.Time
	done  chan struct{} // closed when the outage ends

	mu      sync.Mutex
	next    time.Time     // when the next probe starts
	probing chan struct{} // non-nil while a probe runs, closed after it
	waiting int           // sends waiting for the probe (tests)
}

// UpstreamState is a snapshot of an upstream pool's health.
type UpstreamState struct {
	// Nodes is the size of the pool; Outage how many of its nodes are in
	// outage mode now.
	Nodes, Outage int
	// Outages counts the outages entered since start, every node's.
	Outages uint64
	// Ejected is how many nodes are ejected now (consecutive failures,
	// until their next trial); Ejections counts the ejections since start.
	Ejected   int
	Ejections uint64
}

// State returns the pool's health for metrics.
func (u *Upstream) State() UpstreamState {
	s := UpstreamState{Nodes: len(u.nodes), Outages: u.outages.Load(), Ejections: u.ejections.Load()}
	now := u.opts.Now().UnixNano()
	for _, n := range u.nodes {
		if n.outage.Load() != nil {
			s.Outage++
		}
		if n.ejectedUntil.Load() > now {
			s.Ejected++
		}
	}
	return s
}

// Member states of UpstreamMember.
const (
	MemberHealthy = "healthy"
	MemberEjected = "ejected" // consecutive failures, until its next trial
	MemberOutage  = "outage"  // unreachable: paused until its probe answers
)

// UpstreamMember is one URL of a pool, for the status page.
type UpstreamMember struct {
	URL   string // scheme://host[:port][/prefix]: never credentials
	State string // MemberHealthy, MemberEjected or MemberOutage
	// LastError is the last failed request's error ("" if none), at
	// LastErrorAt.
	LastError   string
	LastErrorAt time.Time
	// Latency is the moving average round trip of answered requests; 0
	// before the first answer.
	Latency time.Duration
}

// Members returns the state of each URL of the pool, in config order.
func (u *Upstream) Members() []UpstreamMember {
	now := u.opts.Now().UnixNano()
	ms := make([]UpstreamMember, len(u.nodes))
	for i, n := range u.nodes {
		m := UpstreamMember{URL: n.base, State: MemberHealthy, Latency: time.Duration(n.rtt.Load())}
		switch {
		case n.outage.Load() != nil:
			m.State = MemberOutage
		case n.ejectedUntil.Load() > now:
			m.State = MemberEjected
		}
		if e := n.lastErr.Load(); e != nil {
			m.LastError, m.LastErrorAt = e.msg, e.at
		}
		ms[i] = m
	}
	return ms
}

// isNetworkStatus reports whether an answer means the upstream itself was
// not reached: a gateway's 502, 503 or 504 (Relay's classification).
func isNetworkStatus(status int) bool {
	return status >= fasthttp.StatusBadGateway && status <= fasthttp.StatusGatewayTimeout
}

// received notes an answer from n that shows the network works: it ends
// the grace period and any outage.
func (u *Upstream) received(n *upstreamNode) {
	if n.netErrSince.Load() != 0 {
		n.netErrSince.Store(0)
	}
	if o := n.outage.Load(); o != nil {
		u.endOutage(n, o, "a request was answered")
	}
}

// netFailed notes a network failure of a request to n and puts n in
// outage once failures have lasted OutageGracePeriod.
func (u *Upstream) netFailed(n *upstreamNode, err error) {
	now := u.opts.Now()
	first := n.netErrSince.Load()
	if first == 0 {
		if n.netErrSince.CompareAndSwap(0, now.UnixNano()) {
			first = now.UnixNano()
		} else {
			first = n.netErrSince.Load()
		}
	}
	if n.outage.Load() != nil || now.UnixNano()-first < int64(u.opts.OutageGracePeriod) {
		return
	}
	o := &outage{since: now, done: make(chan struct{}), next: now}
	if !n.outage.CompareAndSwap(nil, o) {
		return
	}
	u.outages.Add(1)
	u.opts.Logger.Warn("upstream unreachable: pausing sends to it and probing "+LivePath,
		"url", n.base, "failing_for", time.Duration(now.UnixNano()-first).Round(time.Millisecond), "err", err)
	u.probers.Add(1)
	go u.probe(n, o)
}

// endOutage takes n out of outage o (if it still is in it) and re-admits
// it to the pool.
func (u *Upstream) endOutage(n *upstreamNode, o *outage, why string) {
	if !n.outage.CompareAndSwap(o, nil) {
		return
	}
	n.netErrSince.Store(0)
	n.failures.Store(0)
	n.ejectedUntil.Store(0)
	close(o.done)
	u.opts.Logger.Info("upstream reachable again: resuming sends", "url", n.base,
		"outage", u.opts.Now().Sub(o.since).Round(time.Millisecond), "because", why)
}

// probe checks n's LivePath with backoff until it answers, then ends o.
func (u *Upstream) probe(n *upstreamNode, o *outage) {
	defer u.probers.Done()
	// Its own client: one attempt per probe (fasthttp retries a failed GET
	// on the node's), on a connection of its own.
	hc := &fasthttp.HostClient{
		Addr: n.hc.Addr, IsTLS: n.hc.IsTLS, TLSConfig: n.hc.TLSConfig, Dial: n.hc.Dial, Name: n.hc.Name,
		MaxConns: 1, MaxIdemponentCallAttempts: 1, MaxIdleConnDuration: n.hc.MaxIdleConnDuration,
		ReadTimeout: u.opts.Timeout, WriteTimeout: u.opts.Timeout,
	}
	defer hc.CloseIdleConnections()
	d := probeBackoff(0, u.opts.MaxRetryInterval)
	o.mu.Lock()
	o.next = u.opts.Now().Add(d)
	o.mu.Unlock()
	for attempt := 1; ; attempt++ {
		select {
		case <-u.opts.After(d):
		case <-o.done: // a request got through meanwhile
			return
		case <-u.stop:
			return
		}
		ch := make(chan struct{})
		o.mu.Lock()
		o.probing = ch
		o.mu.Unlock()
		up := u.checkLive(hc, n)
		if up {
			u.endOutage(n, o, "its health check answered")
		} else {
			d = probeBackoff(attempt, u.opts.MaxRetryInterval)
		}
		o.mu.Lock()
		o.probing = nil
		o.next = u.opts.Now().Add(d) // before close: waiters read it
		o.mu.Unlock()
		close(ch)
		if up {
			return
		}
	}
}

// probeBackoff is the wait before probe number attempt: jittered
// exponential, [d/2, d) with d doubling from firstProbeDelay up to limit.
func probeBackoff(attempt int, limit time.Duration) time.Duration {
	d := limit
	if attempt < 20 {
		d = min(firstProbeDelay<<attempt, limit)
	}
	return d/2 + rand.N(d/2+1)
}

// checkLive reports whether n answers GET LivePath with anything but a
// network failure.
func (u *Upstream) checkLive(hc *fasthttp.HostClient, n *upstreamNode) bool {
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI(n.base + LivePath)
	req.Header.SetMethod(fasthttp.MethodGet)
	req.Header.SetUserAgent(u.opts.UserAgent)
	resp.SkipBody = true
	if err := hc.DoDeadline(req, resp, time.Now().Add(u.opts.Timeout)); err != nil {
		return false
	}
	return !isNetworkStatus(resp.StatusCode())
}

// available returns nil when n takes requests, else ErrOutage Throttled
// for the time until the soonest probe of the pool. A probe of n in flight
// is waited for, so a sender that waited for it learns its result instead
// of waiting for the next one.
func (u *Upstream) available(ctx context.Context, n *upstreamNode) error {
	o := n.outage.Load()
	if o == nil {
		return nil
	}
	o.mu.Lock()
	probing := o.probing
	if probing != nil {
		o.waiting++
	}
	o.mu.Unlock()
	if probing != nil {
		select {
		case <-probing:
		case <-ctx.Done():
			return ctx.Err()
		}
		if n.outage.Load() == nil {
			return nil
		}
	}
	now := u.opts.Now()
	wait := time.Duration(-1)
	for _, m := range u.nodes {
		if mo := m.outage.Load(); mo != nil {
			mo.mu.Lock()
			d := max(mo.next.Sub(now), 0)
			mo.mu.Unlock()
			if wait < 0 || d < wait {
				wait = d
			}
		}
	}
	return Throttled(fmt.Errorf("routing: upstream %s: %w", n.base, ErrOutage), max(wait, 0))
}

// stopProbers ends the probers and waits for them (a probe in flight ends
// within Timeout) or for ctx.
func (u *Upstream) stopProbers(ctx context.Context) {
	close(u.stop)
	done := make(chan struct{})
	go func() { u.probers.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
}
