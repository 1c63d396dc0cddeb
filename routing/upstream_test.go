package routing

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/valyala/fasthttp"

	"github.com/baton-relay/baton/envelope"
)

// fakeUpstream is an HTTP server recording what it receives and answering
// with handle (200 when nil).
type fakeUpstream struct {
	url    string
	mu     sync.Mutex
	reqs   []recorded
	handle atomic.Pointer[func(ctx *fasthttp.RequestCtx)]
}

type recorded struct {
	method, uri string
	headers     map[string]string
	body        []byte // decoded
}

func newFakeUpstream(t testing.TB) *fakeUpstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return serveFakeUpstream(t, ln)
}

// serveFakeUpstream serves a fakeUpstream on ln until the test ends.
func serveFakeUpstream(t testing.TB, ln net.Listener) *fakeUpstream {
	t.Helper()
	f := &fakeUpstream{url: "http://" + ln.Addr().String()}
	srv := &fasthttp.Server{Handler: f.serve, DisableHeaderNamesNormalizing: true, MaxIdleWorkerDuration: 20 * time.Millisecond}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ln) }()
	t.Cleanup(func() {
		_ = srv.Shutdown()
		_ = ln.Close() // Shutdown misses a Serve that has not started yet
		<-done
	})
	return f
}

func (f *fakeUpstream) serve(ctx *fasthttp.RequestCtx) {
	r := recorded{method: string(ctx.Method()), uri: string(ctx.RequestURI()), headers: map[string]string{}}
	for k, v := range ctx.Request.Header.All() {
		r.headers[string(k)] = string(v)
	}
	body, err := decode(string(ctx.Request.Header.ContentEncoding()), ctx.Request.Body())
	if err != nil {
		ctx.Error("bad body: "+err.Error(), 400)
		return
	}
	r.body = body
	f.mu.Lock()
	f.reqs = append(f.reqs, r)
	f.mu.Unlock()
	if h := f.handle.Load(); h != nil {
		(*h)(ctx)
		return
	}
	ctx.SetBodyString(`{"id":"0123456789abcdef0123456789abcdef"}`)
}

func (f *fakeUpstream) answer(h func(ctx *fasthttp.RequestCtx)) { f.handle.Store(&h) }

func (f *fakeUpstream) status(code int, headers ...string) {
	f.answer(func(ctx *fasthttp.RequestCtx) {
		for i := 0; i+1 < len(headers); i += 2 {
			ctx.Response.Header.Set(headers[i], headers[i+1])
		}
		ctx.SetStatusCode(code)
		ctx.SetBodyString(`{"detail":"nope"}`)
	})
}

func (f *fakeUpstream) requests() []recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]recorded(nil), f.reqs...)
}

func decode(enc string, b []byte) ([]byte, error) {
	switch enc {
	case "":
		return append([]byte(nil), b...), nil
	case "gzip":
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			return nil, err
		}
		return io.ReadAll(zr)
	case "zstd":
		zr, err := zstd.NewReader(nil)
		if err != nil {
			return nil, err
		}
		defer zr.Close()
		return zr.DecodeAll(b, nil)
	}
	return nil, fmt.Errorf("unknown encoding %q", enc)
}

type fakeClock struct{ ns atomic.Int64 }

func newFakeClock(t time.Time) *fakeClock {
	c := &fakeClock{}
	c.ns.Store(t.UnixNano())
	return c
}
func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

func newTestUpstream(t *testing.T, opts UpstreamOptions) *Upstream {
	t.Helper()
	if opts.MaxIdleConnDuration == 0 {
		opts.MaxIdleConnDuration = 50 * time.Millisecond
	}
	if opts.Timeout == 0 {
		opts.Timeout = 5 * time.Second
	}
	u, err := NewUpstream(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = u.Close(context.Background()) })
	return u
}

const (
	testHeaderLine = `{"event_id":"9ec79c33ec9942ab8353589fcb2e04dc","sent_at":"2025-03-01T12:30:00.5Z","sdk":{"name":"sentry.go","sent_at":"x"}}`
	testItems      = "{\"type\":\"event\",\"length\":14}\n{\"a\":\"sent_at\"}\n{\"type\":\"attachment\"}\nraw\xffbytes\n"
)

func TestUpstreamDelivers(t *testing.T) {
	t.Parallel()
	for _, enc := range []string{"gzip", "zstd", "none"} {
		t.Run(enc, func(t *testing.T) {
			t.Parallel()
			f := newFakeUpstream(t)
			clock := newFakeClock(testReceived.Add(90 * time.Second))
			var signed atomic.Int32
			u := newTestUpstream(t, UpstreamOptions{
				URLs: []string{f.url}, Compression: enc, Now: clock.Now, UserAgent: "baton/1.2.3",
				Sign: func(req *fasthttp.Request) {
					signed.Add(1)
					req.Header.Set("X-Sentry-Relay-Id", "relay-1")
				},
			})
			m := testMsg(42, testHeaderLine+"\n"+testItems)
			m2 := testMsg(43, "{}\n"+testItems) // no sent_at: untouched
			m2.Client, m2.ClientIP = "", ""
			errs := make([]error, 2)
			u.Send(context.Background(), []Message{m, m2}, errs)
			if errs[0] != nil || errs[1] != nil {
				t.Fatalf("Send: %v", errs)
			}
			reqs := f.requests()
			if len(reqs) != 2 {
				t.Fatalf("%d requests, want 2", len(reqs))
			}
			byURI := map[string]recorded{}
			for _, r := range reqs {
				byURI[r.uri] = r
			}
			r, ok := byURI["/api/42/envelope/"]
			if !ok {
				t.Fatalf("no request for project 42: %v", reqs)
			}
			// sent_at moves by the 90 s the envelope spent buffered; the
			// nested sdk.sent_at and the items are untouched.
			want := strings.Replace(testHeaderLine, `"2025-03-01T12:30:00.5Z"`, `"2025-03-01T12:31:30.5Z"`, 1) + "\n" + testItems
			if string(r.body) != want {
				t.Errorf("body\n got %q\nwant %q", r.body, want)
			}
			wantHeaders := map[string]string{
				"Content-Type":      "application/x-sentry-envelope",
				"X-Sentry-Auth":     "Sentry sentry_key=abc123, sentry_version=7, sentry_client=sentry.go/0.30",
				"X-Forwarded-For":   "203.0.113.7",
				"User-Agent":        "baton/1.2.3",
				"X-Sentry-Relay-Id": "relay-1",
			}
			if enc != "none" {
				wantHeaders["Content-Encoding"] = enc
			}
			for k, v := range wantHeaders {
				if r.headers[k] != v {
					t.Errorf("header %s = %q, want %q", k, r.headers[k], v)
				}
			}
			if r.method != "POST" {
				t.Errorf("method %s", r.method)
			}
			r2 := byURI["/api/43/envelope/"]
			if string(r2.body) != "{}\n"+testItems {
				t.Errorf("envelope without sent_at changed: %q", r2.body)
			}
			if got := r2.headers["X-Sentry-Auth"]; got != "Sentry sentry_key=abc123, sentry_version=7, sentry_client=baton/1.2.3" {
				t.Errorf("auth without client: %q", got)
			}
			if _, ok := r2.headers["X-Forwarded-For"]; ok {
				t.Error("X-Forwarded-For without a client IP")
			}
			if signed.Load() != 2 {
				t.Errorf("Sign ran %d times", signed.Load())
			}
		})
	}
}

func TestUpstreamResponses(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name      string
		status    int
		headers   []string
		permanent bool
		throttled bool
		after     time.Duration
		limits    int
	}{
		{"ok", 200, nil, false, false, 0, 0},
		{"accepted", 202, nil, false, false, 0, 0},
		{"429 retry-after seconds", 429, []string{"Retry-After", "60"}, false, true, 60 * time.Second, 0},
		{"429 rate limits", 429, []string{"X-Sentry-Rate-Limits", "30::organization, 120:error;transaction:project:quota_exceeded"}, false, true, 120 * time.Second, 2},
		{"429 both, longest wins", 429, []string{"Retry-After", "10", "X-Sentry-Rate-Limits", "5:error:key"}, false, true, 10 * time.Second, 1},
		// Per category: a limit on transactions does not park an error
		// envelope; one on all categories or on errors does.
		{"429 other category ignored", 429, []string{"X-Sentry-Rate-Limits", "5::organization, 600:transaction;span:project"}, false, true, 5 * time.Second, 2},
		{"429 only other categories", 429, []string{"X-Sentry-Rate-Limits", "600:transaction:project, 60:span:key"}, false, true, 600 * time.Second, 2},
		{"429 bare", 429, nil, false, true, 0, 0},
		{"503 http date", 503, []string{"Retry-After", now.Add(2 * time.Minute).Format(fasthttpDate)}, false, true, 2 * time.Minute, 0},
		{"400", 400, nil, true, false, 0, 0},
		{"413", 413, nil, true, false, 0, 0},
		{"408", 408, nil, false, false, 0, 0},
		{"500", 500, nil, false, false, 0, 0},
		{"502", 502, nil, false, false, 0, 0},
		{"302", 302, []string{"Location", "/elsewhere"}, false, false, 0, 0},
	}
	f := newFakeUpstream(t)
	u := newTestUpstream(t, UpstreamOptions{URLs: []string{f.url}, Now: func() time.Time { return now }, MaxFailures: 1000})
	for _, tt := range tests {
		f.status(tt.status, tt.headers...)
		errs := make([]error, 1)
		u.Send(context.Background(), []Message{testMsg(1, "{}\n{\"type\":\"event\"}\n{}\n")}, errs)
		err := errs[0]
		if tt.status < 300 {
			if err != nil {
				t.Errorf("%s: %v", tt.name, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("%s: nil error", tt.name)
			continue
		}
		if IsPermanent(err) != tt.permanent {
			t.Errorf("%s: permanent = %v, want %v (%v)", tt.name, IsPermanent(err), tt.permanent, err)
		}
		after, throttled := RetryAfter(err)
		if throttled != tt.throttled || after != tt.after {
			t.Errorf("%s: throttled %v after %s, want %v after %s", tt.name, throttled, after, tt.throttled, tt.after)
		}
		var se *StatusError
		if !errors.As(err, &se) || se.Status != tt.status {
			t.Errorf("%s: %v is not a StatusError with status %d", tt.name, err, tt.status)
			continue
		}
		if len(se.Limits) != tt.limits {
			t.Errorf("%s: %d limits, want %d", tt.name, len(se.Limits), tt.limits)
		}
		if tt.status == 400 && !strings.Contains(se.Detail, "nope") {
			t.Errorf("400 detail %q lacks the body", se.Detail)
		}
	}
}

const fasthttpDate = "Mon, 02 Jan 2006 15:04:05 GMT"

func TestUpstreamConnectionRefused(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	u := newTestUpstream(t, UpstreamOptions{URLs: []string{"http://" + addr}, MaxFailures: 2})
	// Three projects: messages of one project stop at its first failure.
	msgs := []Message{testMsg(1, "{}"), testMsg(2, "{}"), testMsg(3, "{}")}
	for i := range msgs {
		msgs[i].PublicKey = "key" + strconv.Itoa(i)
	}
	errs := make([]error, 3)
	u.Send(context.Background(), msgs, errs)
	for i, err := range errs {
		if err == nil || IsPermanent(err) {
			t.Errorf("msg %d: %v, want retryable", i, err)
		}
	}
	if u.nodes[0].ejectedUntil.Load() == 0 {
		t.Error("node not ejected after failures")
	}
}

// keyFor returns a public key that rendezvous hashing sends to node want
// when every node is healthy.
func keyFor(t *testing.T, u *Upstream, want int) string {
	t.Helper()
	for i := range 10000 {
		k := "key" + strconv.Itoa(i)
		if u.pick(k) == u.nodes[want] {
			return k
		}
	}
	t.Fatalf("no key maps to node %d", want)
	return ""
}

func TestUpstreamEjectionAndReadmission(t *testing.T) {
	t.Parallel()
	a, b := newFakeUpstream(t), newFakeUpstream(t)
	a.status(500)
	clock := newFakeClock(testReceived)
	u := newTestUpstream(t, UpstreamOptions{URLs: []string{a.url, b.url}, MaxFailures: 3, ProbeInterval: 10 * time.Second, Now: clock.Now})
	m := testMsg(1, "{}\n")
	m.PublicKey = keyFor(t, u, 0)
	sendOne := func() error {
		errs := make([]error, 1)
		u.Send(context.Background(), []Message{m}, errs)
		return errs[0]
	}
	for i := range 3 {
		if err := sendOne(); err == nil || IsPermanent(err) {
			t.Fatalf("send %d to failing node: %v", i, err)
		}
	}
	// Ejected: the key moves to b.
	if err := sendOne(); err != nil {
		t.Fatalf("send after ejection: %v", err)
	}
	if n := len(b.requests()); n != 1 {
		t.Fatalf("b got %d requests, want 1", n)
	}
	// After the interval one trial goes to a; it fails, so a is ejected
	// for another interval.
	clock.Advance(11 * time.Second)
	if err := sendOne(); err == nil {
		t.Fatal("trial against failing node succeeded")
	}
	if n := len(a.requests()); n != 4 {
		t.Fatalf("a got %d requests, want 4 (3 + trial)", n)
	}
	if err := sendOne(); err != nil || len(b.requests()) != 2 {
		t.Fatalf("after failed trial: %v, b has %d requests", err, len(b.requests()))
	}
	// a recovers; the next trial re-admits it for good.
	a.status(200)
	clock.Advance(11 * time.Second)
	for i := range 3 {
		if err := sendOne(); err != nil {
			t.Fatalf("send %d after recovery: %v", i, err)
		}
	}
	if na, nb := len(a.requests()), len(b.requests()); na != 7 || nb != 2 {
		t.Fatalf("a has %d requests (want 7), b %d (want 2)", na, nb)
	}
}

func TestUpstreamAllEjectedFallsBack(t *testing.T) {
	t.Parallel()
	u := newTestUpstream(t, UpstreamOptions{URLs: []string{"http://10.0.0.1:1", "http://10.0.0.2:1"}})
	k := keyFor(t, u, 1)
	for _, n := range u.nodes {
		n.ejectedUntil.Store(time.Now().Add(time.Hour).UnixNano())
	}
	if u.pick(k) != u.nodes[1] {
		t.Error("with every node ejected the key left its rendezvous node")
	}
}

func TestRendezvousStability(t *testing.T) {
	t.Parallel()
	u := newTestUpstream(t, UpstreamOptions{URLs: []string{"http://10.0.0.1:3000", "http://10.0.0.2:3000", "http://10.0.0.3:3000"}})
	const keys = 10000
	before := make([]*upstreamNode, keys)
	count := map[*upstreamNode]int{}
	for i := range keys {
		before[i] = u.pick(fmt.Sprintf("%032x", i*7919))
		count[before[i]]++
	}
	for i, n := range u.nodes {
		if share := float64(count[n]) / keys; share < 1.0/3-0.05 || share > 1.0/3+0.05 {
			t.Errorf("node %d holds %.3f of the keys", i, share)
		}
	}
	ejected := u.nodes[1]
	ejected.ejectedUntil.Store(time.Now().Add(time.Hour).UnixNano())
	moved := 0
	for i := range keys {
		after := u.pick(fmt.Sprintf("%032x", i*7919))
		switch {
		case after == ejected:
			t.Fatalf("key %d still on the ejected node", i)
		case before[i] != ejected && after != before[i]:
			t.Fatalf("key %d moved between healthy nodes", i)
		case after != before[i]:
			moved++
		}
	}
	if share := float64(moved) / keys; share > 1.0/3+0.05 {
		t.Errorf("%.3f of the keys moved", share)
	}
	// Re-admission brings exactly those keys back.
	ejected.ok()
	for i := range keys {
		if u.pick(fmt.Sprintf("%032x", i*7919)) != before[i] {
			t.Fatalf("key %d did not return after re-admission", i)
		}
	}
}

func TestUpstreamForward(t *testing.T) {
	t.Parallel()
	f := newFakeUpstream(t)
	f.answer(func(ctx *fasthttp.RequestCtx) {
		ctx.SetStatusCode(418)
		ctx.Response.Header.Set("X-Answer", "yes")
		ctx.SetBodyString("teapot")
	})
	// Sign is for the relay's own envelopes: a proxied request must not
	// borrow the relay's identity.
	u := newTestUpstream(t, UpstreamOptions{URLs: []string{f.url + "/prefix/"}, Sign: func(req *fasthttp.Request) {
		req.Header.Set("X-Sentry-Relay-Signature", "signed-by-baton")
	}})
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI("http://baton.local/api/0/relays/live/?x=1&y=%2F")
	req.Header.SetMethod("PUT")
	req.Header.Set("X-Custom", "kept")
	req.SetBodyString("payload")
	if err := u.Forward(context.Background(), req, resp); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode() != 418 || string(resp.Body()) != "teapot" || string(resp.Header.Peek("X-Answer")) != "yes" {
		t.Errorf("response %d %q", resp.StatusCode(), resp.Body())
	}
	r := f.requests()[0]
	if r.method != "PUT" || r.uri != "/prefix/api/0/relays/live/?x=1&y=%2F" || r.headers["X-Custom"] != "kept" || string(r.body) != "payload" {
		t.Errorf("forwarded %s %s %v %q", r.method, r.uri, r.headers, r.body)
	}
	if sig, ok := r.headers["X-Sentry-Relay-Signature"]; ok {
		t.Errorf("a forwarded request was signed: %q", sig)
	}
}

func TestUpstreamClosedAndContext(t *testing.T) {
	t.Parallel()
	f := newFakeUpstream(t)
	u := newTestUpstream(t, UpstreamOptions{URLs: []string{f.url}})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	errs := make([]error, 2)
	u.Send(ctx, []Message{testMsg(1, "{}"), testMsg(1, "{}")}, errs)
	for _, err := range errs {
		if !errors.Is(err, context.Canceled) {
			t.Errorf("canceled ctx: %v", err)
		}
	}
	if err := u.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	u.Send(context.Background(), []Message{testMsg(1, "{}")}, errs[:1])
	if !errors.Is(errs[0], ErrClosed) {
		t.Errorf("after Close: %v", errs[0])
	}
	if len(f.requests()) != 0 {
		t.Error("requests sent")
	}
}

func TestNewUpstreamValidates(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		opts UpstreamOptions
		want error
	}{
		{UpstreamOptions{}, ErrNoUpstreams},
		{UpstreamOptions{URLs: []string{"ftp://x"}}, ErrBadUpstreamURL},
		{UpstreamOptions{URLs: []string{"http://"}}, ErrBadUpstreamURL},
		{UpstreamOptions{URLs: []string{"http://a:1", "http://a:1/"}}, ErrBadUpstreamURL},
		{UpstreamOptions{URLs: []string{"http://a:1"}, Compression: "br"}, ErrUnknownCompression},
	} {
		if _, err := NewUpstream(tt.opts); !errors.Is(err, tt.want) {
			t.Errorf("%+v: %v, want %v", tt.opts, err, tt.want)
		}
	}
}

// TestUpstreamKeepsProjectOrder checks that session messages of one project
// arrive in order, and that a failure holds back the ones behind it.
func TestUpstreamKeepsProjectOrder(t *testing.T) {
	t.Parallel()
	f := newFakeUpstream(t)
	u := newTestUpstream(t, UpstreamOptions{URLs: []string{f.url}, Compression: "none", Concurrency: 8})
	msgs := make([]Message, 40)
	for i := range msgs {
		msgs[i] = testMsg(1, fmt.Sprintf("{}\n{\"type\":\"session\",\"length\":%d}\nseq-%02d\n", len(fmt.Sprintf("seq-%02d", i)), i))
		msgs[i].Class = envelope.ClassSession
		msgs[i].PublicKey = []string{"alpha", "beta"}[i%2]
	}
	errs := make([]error, len(msgs))
	u.Send(context.Background(), msgs, errs)
	last := map[string]int{}
	for _, r := range f.requests() {
		body := string(r.body)
		var seq int
		if _, err := fmt.Sscanf(body[strings.Index(body, "seq-"):], "seq-%d", &seq); err != nil {
			t.Fatal(err)
		}
		key := []string{"alpha", "beta"}[seq%2]
		if prev, ok := last[key]; ok && seq < prev {
			t.Fatalf("project %s: seq %d arrived after %d", key, seq, prev)
		}
		last[key] = seq
	}
	if len(last) != 2 || last["alpha"] != 38 || last["beta"] != 39 {
		t.Fatalf("last arrivals %v", last)
	}

	f.status(503)
	u.Send(context.Background(), msgs[:3], errs[:3])
	if errs[0] == nil || errs[1] == nil || !errors.Is(errs[2], ErrHeldBack) {
		t.Fatalf("after a 503: %v", errs[:3])
	}
	// A permanent failure (400) is dropped, not retried: it holds nothing back.
	f.status(400)
	u.Send(context.Background(), msgs[:3], errs[:3])
	for i, err := range errs[:3] {
		if !IsPermanent(err) {
			t.Fatalf("after a 400: errs[%d] = %v", i, err)
		}
	}
}

// TestUpstreamParallelWithinProject checks that messages of classes whose
// order does not matter go out in parallel even when they all belong to one
// project, up to Concurrency, while one project's sessions stay one at a
// time; and that a failure of such a message holds nothing back.
func TestUpstreamParallelWithinProject(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		class       envelope.Class
		concurrency int
		want        int // requests in flight at once
	}{
		{envelope.ClassError, 4, 4},
		{envelope.ClassError, 1, 1},
		{envelope.ClassTransaction, 3, 3},
		{envelope.ClassSession, 4, 1},
		{envelope.ClassCheckIn, 4, 1},
	} {
		t.Run(fmt.Sprintf("%s/%d", tc.class, tc.concurrency), func(t *testing.T) {
			t.Parallel()
			f := newFakeUpstream(t)
			var inFlight, most atomic.Int32
			release := make(chan struct{})
			reached := make(chan struct{})
			var once sync.Once
			f.answer(func(ctx *fasthttp.RequestCtx) {
				if bytes.Contains(ctx.Request.Body(), []byte("seq-00")) {
					return // the project's first message goes alone
				}
				n := inFlight.Add(1)
				for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
				}
				if int(n) == tc.want {
					once.Do(func() { close(reached) })
				}
				<-release
				inFlight.Add(-1)
			})
			u := newTestUpstream(t, UpstreamOptions{URLs: []string{f.url}, Compression: "none", Concurrency: tc.concurrency})
			msgs := make([]Message, 8)
			for i := range msgs {
				msgs[i] = testMsg(1, fmt.Sprintf("{}\n{\"type\":\"event\",\"length\":6}\nseq-%02d\n", i))
				msgs[i].Class = tc.class
			}
			errs := make([]error, len(msgs))
			done := make(chan struct{})
			go func() { defer close(done); u.Send(context.Background(), msgs, errs) }()
			select {
			case <-reached:
			case <-time.After(5 * time.Second):
				t.Fatalf("in flight at most %d, want %d", most.Load(), tc.want)
			}
			close(release)
			<-done
			if got := most.Load(); int(got) != tc.want {
				t.Fatalf("at most %d requests in flight, want %d", got, tc.want)
			}
			for i, err := range errs {
				if err != nil {
					t.Fatalf("errs[%d] = %v", i, err)
				}
			}
			if n := len(f.requests()); n != len(msgs) {
				t.Fatalf("%d requests, want %d", n, len(msgs))
			}
		})
	}

	// A failed error message is retried alone: the others of its project
	// were sent (no ErrHeldBack). But when the project's first message
	// fails, the rest wait for the retry: a failing upstream gets one
	// request per project and attempt.
	f := newFakeUpstream(t)
	failing := atomic.Pointer[string]{}
	f.answer(func(ctx *fasthttp.RequestCtx) {
		if bytes.Contains(ctx.Request.Body(), []byte(*failing.Load())) {
			ctx.SetStatusCode(503)
		}
	})
	u := newTestUpstream(t, UpstreamOptions{URLs: []string{f.url}, Compression: "none", Concurrency: 4})
	msgs := make([]Message, 4)
	for i := range msgs {
		msgs[i] = testMsg(1, fmt.Sprintf("{}\n{\"type\":\"event\",\"length\":6}\nseq-%02d\n", i))
	}
	msgs[3].PublicKey = "other"
	errs := make([]error, len(msgs))
	seq := "seq-01"
	failing.Store(&seq)
	u.Send(context.Background(), msgs, errs)
	if errs[1] == nil || IsPermanent(errs[1]) || errors.Is(errs[1], ErrHeldBack) || errs[0] != nil || errs[2] != nil || errs[3] != nil {
		t.Fatalf("errors after a 503 to seq-01: %v", errs)
	}
	seq = "seq-00"
	failing.Store(&seq)
	before := len(f.requests())
	u.Send(context.Background(), msgs, errs)
	if errs[0] == nil || errors.Is(errs[0], ErrHeldBack) || !errors.Is(errs[1], ErrHeldBack) || !errors.Is(errs[2], ErrHeldBack) || errs[3] != nil {
		t.Fatalf("errors after a 503 to the project's first message: %v", errs)
	}
	if n := len(f.requests()) - before; n != 2 {
		t.Fatalf("%d requests, want 2 (the failing project's first, the other project's)", n)
	}
}

// A steered message goes to the node its shard hashes to, whatever its
// project, and carries the shard header; the shards spread over the pool.
func TestUpstreamSteersByShard(t *testing.T) {
	t.Parallel()
	fs := []*fakeUpstream{newFakeUpstream(t), newFakeUpstream(t), newFakeUpstream(t)}
	u := newTestUpstream(t, UpstreamOptions{URLs: []string{fs[0].url, fs[1].url, fs[2].url}, Compression: "none"})
	env := []byte(testHeaderLine + "\n" + testItems)
	var msgs []Message
	for shard := range 32 {
		for key := range 3 { // the same shard from three projects
			msgs = append(msgs, Message{
				ProjectID: uint64(key + 1), PublicKey: fmt.Sprintf("%032d", key),
				Shard: strconv.Itoa(shard), Envelope: env,
			})
		}
	}
	errs := make([]error, len(msgs))
	u.Send(context.Background(), msgs, errs)
	for i, err := range errs {
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	owner := map[string]int{}
	for i, f := range fs {
		got := f.requests()
		if len(got) == 0 {
			t.Errorf("node %d got no shard", i)
		}
		for _, r := range got {
			shard := r.headers[HeaderShard]
			if shard == "" {
				t.Fatalf("node %d: request without %s", i, HeaderShard)
			}
			if prev, ok := owner[shard]; ok && prev != i {
				t.Fatalf("shard %s on nodes %d and %d", shard, prev, i)
			}
			owner[shard] = i
		}
	}
	if len(owner) != 32 {
		t.Fatalf("%d shards delivered, want 32", len(owner))
	}
}

// TestUpstreamMembers checks what the status page shows of a pool: a
// healthy URL with its round trip, a refusing one ejected with its error.
func TestUpstreamMembers(t *testing.T) {
	t.Parallel()
	f := newFakeUpstream(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String()
	ln.Close()
	up := newTestUpstream(t, UpstreamOptions{URLs: []string{f.url}, MaxFailures: 1})
	down := newTestUpstream(t, UpstreamOptions{URLs: []string{closed}, MaxFailures: 1})
	errs := make([]error, 1)
	up.Send(context.Background(), []Message{testMsg(1, "{}")}, errs)
	if errs[0] != nil {
		t.Fatal(errs[0])
	}
	down.Send(context.Background(), []Message{testMsg(1, "{}")}, errs)
	if errs[0] == nil {
		t.Fatal("send to a closed port succeeded")
	}
	m := up.Members()
	if len(m) != 1 || m[0].URL != f.url || m[0].State != MemberHealthy || m[0].Latency <= 0 || m[0].LastError != "" {
		t.Errorf("healthy pool: %+v", m)
	}
	m = down.Members()
	if len(m) != 1 || m[0].State != MemberEjected || !strings.Contains(m[0].LastError, "connection refused") || m[0].LastErrorAt.IsZero() {
		t.Errorf("refusing pool: %+v", m)
	}
}

// Trace steering: every item of a trace, whatever its project and whichever
// of two edge relays (two Upstreams over one pool) sends it, lands on one
// node; ejecting a node in one edge moves only that node's traces.
func TestUpstreamSteersByTrace(t *testing.T) {
	t.Parallel()
	fs := []*fakeUpstream{newFakeUpstream(t), newFakeUpstream(t), newFakeUpstream(t)}
	urls := []string{fs[0].url, fs[1].url, fs[2].url}
	edges := []*Upstream{
		newTestUpstream(t, UpstreamOptions{URLs: urls, Compression: "none"}),
		newTestUpstream(t, UpstreamOptions{URLs: urls, Compression: "none"}),
	}
	const traces = 60
	send := func(u *Upstream, trace int) {
		t.Helper()
		id := fmt.Sprintf("%032x", trace*104729+1)
		env := []byte(`{"trace":{"trace_id":"` + id + `"}}` + "\n" + testItems)
		var msgs []Message
		for key := range 3 { // one trace from three projects
			msgs = append(msgs, Message{
				ProjectID: uint64(key + 1), PublicKey: fmt.Sprintf("%032d", key),
				Trace: []byte(id), Envelope: env,
			})
		}
		errs := make([]error, len(msgs))
		u.Send(context.Background(), msgs, errs)
		for i, err := range errs {
			if err != nil {
				t.Fatalf("trace %d message %d: %v", trace, i, err)
			}
		}
	}
	// owners maps each trace id to the nodes that received it.
	owners := func() map[string]map[int]bool {
		got := map[string]map[int]bool{}
		for i, f := range fs {
			for _, r := range f.requests() {
				id := string(envelopeTraceID(r.body))
				if got[id] == nil {
					got[id] = map[int]bool{}
				}
				got[id][i] = true
			}
		}
		return got
	}
	for trace := range traces {
		send(edges[0], trace)
		send(edges[1], trace)
	}
	before := map[string]int{}
	perNode := make([]int, len(fs))
	for id, nodes := range owners() {
		if len(nodes) != 1 {
			t.Fatalf("trace %s on nodes %v", id, nodes)
		}
		for n := range nodes {
			before[id] = n
			perNode[n]++
		}
	}
	if len(before) != traces {
		t.Fatalf("%d traces delivered, want %d", len(before), traces)
	}
	for n, c := range perNode {
		if c == 0 {
			t.Errorf("node %d got no trace", n)
		}
	}

	// Eject node 1 in edge 0 only and send every trace again from it.
	edges[0].nodes[1].ejectedUntil.Store(time.Now().Add(time.Hour).UnixNano())
	seen := make([]int, len(fs))
	for i, f := range fs {
		seen[i] = len(f.requests())
	}
	for trace := range traces {
		send(edges[0], trace)
	}
	moved := 0
	for i, f := range fs {
		for _, r := range f.requests()[seen[i]:] {
			id := string(envelopeTraceID(r.body))
			switch was := before[id]; {
			case i == 1:
				t.Fatalf("trace %s sent to the ejected node", id)
			case was != 1 && was != i:
				t.Fatalf("trace %s moved from healthy node %d to %d", id, was, i)
			case was == 1:
				moved++
			}
		}
	}
	if moved != 3*perNode[1] {
		t.Errorf("%d messages moved, want the ejected node's %d traces × 3", moved, perNode[1])
	}
}

// envelopeTraceID is the trace id of the test envelope b's header line.
func envelopeTraceID(b []byte) []byte {
	line, _, _ := bytes.Cut(b, []byte("\n"))
	_, rest, ok := bytes.Cut(line, []byte(`"trace_id":"`))
	if !ok {
		return nil
	}
	id, _, _ := bytes.Cut(rest, []byte(`"`))
	return id
}

// Streams × Concurrency can exceed MaxConnsPerHost: the requests beyond it
// wait for a connection instead of failing at once with fasthttp's
// ErrNoFreeConns (which the streams would retry after a backoff), and a
// request that stops waiting is not held against the node.
func TestUpstreamWaitsForFreeConnection(t *testing.T) {
	t.Parallel()
	const maxConns, streams, perStream = 2, 5, 4
	f := newFakeUpstream(t)
	var inFlight, most atomic.Int32
	release := make(chan struct{})
	full := make(chan struct{})
	var once sync.Once
	f.answer(func(ctx *fasthttp.RequestCtx) {
		n := inFlight.Add(1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		if n == maxConns {
			once.Do(func() { close(full) })
		}
		<-release
		inFlight.Add(-1)
	})
	u := newTestUpstream(t, UpstreamOptions{URLs: []string{f.url}, Compression: "none", Concurrency: 8, MaxConnsPerHost: maxConns})
	errs := make([][]error, streams)
	var wg sync.WaitGroup
	for s := range streams {
		msgs := make([]Message, perStream)
		for i := range msgs {
			msgs[i] = testMsg(uint64(s+1), fmt.Sprintf("{}\n{\"type\":\"event\",\"length\":6}\nseq-%02d\n", i))
			msgs[i].PublicKey = fmt.Sprintf("key%d", s)
		}
		errs[s] = make([]error, len(msgs))
		wg.Go(func() { u.Send(context.Background(), msgs, errs[s]) })
	}
	select {
	case <-full:
	case <-time.After(5 * time.Second):
		t.Fatalf("%d requests in flight, want %d", inFlight.Load(), maxConns)
	}
	// While every connection is busy, a caller giving up gets its ctx's
	// error, and the node is not failed by it.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	one := []Message{testMsg(9, "{}\n{\"type\":\"event\",\"length\":6}\nseq-99\n")}
	oneErr := make([]error, 1)
	u.Send(ctx, one, oneErr)
	if !errors.Is(oneErr[0], context.Canceled) {
		t.Fatalf("send with a cancelled ctx: %v, want context.Canceled", oneErr[0])
	}
	close(release)
	wg.Wait()
	for s := range errs {
		for i, err := range errs[s] {
			if err != nil {
				t.Errorf("stream %d message %d: %v", s, i, err)
			}
		}
	}
	if got := most.Load(); got > maxConns {
		t.Errorf("%d requests in flight at once, want at most %d", got, maxConns)
	}
	if n := len(f.requests()); n != streams*perStream {
		t.Errorf("%d requests, want %d", n, streams*perStream)
	}
	if n := u.nodes[0].failures.Load(); n != 0 {
		t.Errorf("node failures %d, want 0", n)
	}

	// A request whose deadline passes while it waits fails retryably with
	// ErrConnsBusy, again not against the node.
	n := u.nodes[0]
	for range maxConns {
		n.slots <- struct{}{}
	}
	err := n.acquire(context.Background(), time.Now().Add(20*time.Millisecond))
	if !errors.Is(err, ErrConnsBusy) || IsPermanent(err) {
		t.Fatalf("acquire with every slot taken: %v, want retryable ErrConnsBusy", err)
	}
}
