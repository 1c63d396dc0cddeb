package integration

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
)

// fakeRequest is one request a fakeUpstream received.
type fakeRequest struct {
	At         time.Time
	Method     string
	RequestURI string // path and query exactly as sent
	Header     http.Header
	Wire       []byte // body as sent
	Body       []byte // body with Content-Encoding undone
	Status     int    // what the fake answered
}

// fakeAnswer is what a fakeUpstream replies.
type fakeAnswer struct {
	Status int
	Header map[string]string
	Body   string
}

// fakeUpstream is a scriptable upstream relay on 127.0.0.1: answer decides
// every reply (200 "{}" when nil) and every request is recorded.
type fakeUpstream struct {
	t      *testing.T
	srv    *httptest.Server
	answer atomic.Pointer[func(r *fakeRequest) fakeAnswer]

	mu   sync.Mutex
	reqs []fakeRequest
}

func newFakeUpstream(t *testing.T) *fakeUpstream {
	t.Helper()
	u := &fakeUpstream{t: t}
	u.srv = httptest.NewServer(http.HandlerFunc(u.serve))
	t.Cleanup(u.srv.Close)
	return u
}

// url is the base URL to configure as an upstream.
func (u *fakeUpstream) url() string { return u.srv.URL }

func (u *fakeUpstream) setAnswer(fn func(r *fakeRequest) fakeAnswer) { u.answer.Store(&fn) }

func (u *fakeUpstream) serve(w http.ResponseWriter, r *http.Request) {
	wire, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	body, err := fakeDecode(r.Header.Get("Content-Encoding"), wire)
	if err != nil {
		u.t.Errorf("fake upstream: %s %s: undecodable body: %v", r.Method, r.RequestURI, err)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	req := fakeRequest{At: time.Now(), Method: r.Method, RequestURI: r.RequestURI, Header: r.Header.Clone(), Wire: wire, Body: body}
	ans := fakeAnswer{Status: http.StatusOK, Body: "{}"}
	if fn := u.answer.Load(); fn != nil {
		ans = (*fn)(&req)
	}
	req.Status = ans.Status
	u.mu.Lock()
	u.reqs = append(u.reqs, req)
	u.mu.Unlock()
	for k, v := range ans.Header {
		w.Header().Set(k, v)
	}
	w.WriteHeader(ans.Status)
	io.WriteString(w, ans.Body)
}

// requests returns a copy of what was received so far, in arrival order.
func (u *fakeUpstream) requests() []fakeRequest {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]fakeRequest(nil), u.reqs...)
}

// delivered returns the requests answered 2xx, in arrival order.
func (u *fakeUpstream) delivered() []fakeRequest {
	var out []fakeRequest
	for _, r := range u.requests() {
		if r.Status >= 200 && r.Status < 300 {
			out = append(out, r)
		}
	}
	return out
}

// fakeUpstreamYAML routes the given route keys (class names or "default")
// to upstream name at u, with short failure handling for tests.
func fakeUpstreamYAML(name, url string, routes ...string) string {
	s := fmt.Sprintf("upstreams:\n  %s:\n    urls: [%q]\n    timeout: 5s\n    probe_interval: 200ms\nroutes:\n", name, url)
	for _, r := range routes {
		s += fmt.Sprintf("  %s: {upstream: %s}\n", r, name)
	}
	return s
}

func fakeDecode(enc string, b []byte) ([]byte, error) {
	switch enc {
	case "", "identity":
		return b, nil
	case "gzip":
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			return nil, err
		}
		return io.ReadAll(zr)
	case "zstd":
		d, err := zstd.NewReader(nil)
		if err != nil {
			return nil, err
		}
		defer d.Close()
		return d.DecodeAll(b, nil)
	}
	return nil, fmt.Errorf("unknown Content-Encoding %q", enc)
}

// faultFreePort returns a loopback port nothing listens on (it was free a
// moment ago).
func faultFreePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return port
}

// fakeWaitFor polls cond every 10 ms until it holds, failing the test with
// what() after timeout.
func fakeWaitFor(t *testing.T, timeout time.Duration, cond func() bool, what func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", timeout, what())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
