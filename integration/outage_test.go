package integration

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// outageListener is an upstream's listener that can be down: it then
// reads each request's head, records it and closes the connection without
// an answer (a network failure for Baton), so the test sees what Baton
// tried to send during the outage. Up, connections go to the server.
type outageListener struct {
	net.Listener
	down atomic.Bool

	mu    sync.Mutex
	tried []fakeRequest // Method, RequestURI and At only
}

func (l *outageListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil || !l.down.Load() {
			return c, err
		}
		go l.refuse(c)
	}
}

func (l *outageListener) refuse(c net.Conn) {
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	req, err := http.ReadRequest(bufio.NewReader(c))
	if err != nil {
		return
	}
	l.mu.Lock()
	l.tried = append(l.tried, fakeRequest{At: time.Now(), Method: req.Method, RequestURI: req.RequestURI})
	l.mu.Unlock()
}

func (l *outageListener) attempts() []fakeRequest {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]fakeRequest(nil), l.tried...)
}

// TestUpstreamNetworkOutage: with the upstream unreachable, Baton keeps
// acknowledging envelopes into its buffer; past outage_grace_period it
// stops sending them and probes GET /api/0/relays/live/ (backing off up to
// max_retry_interval) instead; when the upstream is back, the first probe
// that gets an answer resumes delivery of everything. One log line marks
// the outage, however many sends it stopped.
func TestUpstreamNetworkOutage(t *testing.T) {
	settleDialer(t)
	const (
		n   = 40
		tag = "net-outage"
	)
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := &outageListener{Listener: inner}
	ln.down.Store(true)
	up := &fakeUpstream{t: t}
	srv := &http.Server{Handler: http.HandlerFunc(up.serve)}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })

	var logs syncBuffer
	cfg := loadConfig(t, fmt.Sprintf("server:\n  listen: 127.0.0.1:0\nbuffer:\n  dir: %s\n  reserve_bytes: 1MiB\ntelemetry:\n  metrics_listen: 127.0.0.1:0\n", t.TempDir()),
		fmt.Sprintf("upstreams:\n  up:\n    urls: [%q]\n    timeout: 5s\n    outage_grace_period: 300ms\n    max_retry_interval: 1s\nroutes:\n  default: {upstream: up}\n", "http://"+inner.Addr().String()))
	node := runNode(t, cfg, t.TempDir(), &logs)

	for seq := range n {
		body, _ := faultSeqEnvelope(tag, seq)
		if status, resp, _ := post(t, node.url+"/api/42/envelope/", body, authHeader(testKey)); status != 200 {
			t.Fatalf("envelope %d: %d %s (Baton must ack while the upstream is down)", seq, status, resp)
		}
	}
	outage := `baton_upstream_outage_urls{upstream="up"} 1`
	fakeWaitFor(t, 10*time.Second, func() bool { return strings.Contains(metricsText(t, node), outage) },
		func() string { return "no outage in /metrics:\n" + metricsText(t, node) })
	// Three probes: the outage is well under way.
	probes := func(reqs []fakeRequest) (probes, envelopes []fakeRequest) {
		for _, r := range reqs {
			if r.Method == "GET" && r.RequestURI == "/api/0/relays/live/" {
				probes = append(probes, r)
			} else {
				envelopes = append(envelopes, r)
			}
		}
		return probes, envelopes
	}
	fakeWaitFor(t, 10*time.Second, func() bool { p, _ := probes(ln.attempts()); return len(p) >= 3 },
		func() string { return fmt.Sprintf("attempts while down: %d", len(ln.attempts())) })
	p, envs := probes(ln.attempts())
	for _, e := range envs {
		if e.Method != "POST" || !strings.HasSuffix(e.RequestURI, "/envelope/") {
			t.Errorf("upstream got %s %s while down, want only envelopes and probes", e.Method, e.RequestURI)
		}
		if e.At.After(p[0].At) {
			t.Errorf("envelope request at %s, after the outage's first probe at %s: sending was not paused",
				e.At.Format(time.StampMilli), p[0].At.Format(time.StampMilli))
		}
	}
	// Before the outage: the grace period's retries (100 ms backoff
	// doubling, one request per project at a time), not a flood.
	if len(envs) > 10 {
		t.Errorf("%d envelope requests in a 300ms grace period, want at most 10", len(envs))
	}
	if st := node.r.Stats(); st.Pending != n {
		t.Errorf("pending %d during the outage, want %d buffered", st.Pending, n)
	}

	ln.down.Store(false)
	fakeWaitFor(t, 10*time.Second, func() bool { return len(up.delivered()) > 0 && node.r.Stats().Pending == 0 },
		func() string {
			return fmt.Sprintf("after recovery: pending %d, delivered %d", node.r.Stats().Pending, len(up.delivered()))
		})
	_, delivered := probes(up.delivered())
	seqs, _ := faultSeqs(t, tag, delivered)
	seen := map[int]bool{}
	for _, s := range seqs {
		seen[s] = true
	}
	if len(seen) != n {
		t.Errorf("%d of %d envelopes delivered after recovery", len(seen), n)
	}
	if reqs := up.requests(); reqs[0].Method != "GET" || reqs[0].RequestURI != "/api/0/relays/live/" {
		t.Errorf("first request after recovery: %s %s, want the probe that ends the outage", reqs[0].Method, reqs[0].RequestURI)
	}
	expectMetrics(t, node, `baton_upstream_outage_urls{upstream="up"} 0`, `baton_upstream_outages_total{upstream="up"} 1`)
	if k := bytes.Count(logs.Bytes(), []byte("upstream unreachable")); k != 1 {
		t.Errorf("%d outage log lines, want 1:\n%s", k, logs.Bytes())
	}
	for i := 1; i < len(p); i++ {
		// Probes back off from 1 s (jittered down to half): one request
		// per probe, not a burst of retries.
		if gap := p[i].At.Sub(p[i-1].At); gap < 250*time.Millisecond {
			t.Errorf("probes %d and %d only %s apart", i, i+1, gap)
		}
	}
	t.Logf("while down: %d envelope requests (grace period), %d probes; delivered %d requests after recovery",
		len(envs), len(p), len(up.requests()))
}

// syncBuffer is a bytes.Buffer safe for the relay's logger and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) Bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Clone(s.b.Bytes())
}
