package clientoptions

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/getsentry/sentry-go"
)

// fakeBaton serves one revision of options at a time, with ETags, and
// answers ingest with the revision as hint.
type fakeBaton struct {
	rev   atomic.Pointer[string]
	rate  atomic.Pointer[string]
	gets  atomic.Int64
	query atomic.Pointer[string]
	age   atomic.Int64 // max-age in seconds; 0 is 7
}

func (f *fakeBaton) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rev := *f.rev.Load()
	if strings.HasSuffix(r.URL.Path, "/client-options/") {
		f.gets.Add(1)
		q := r.URL.RawQuery
		f.query.Store(&q)
		if !strings.Contains(r.Header.Get("X-Sentry-Auth"), "sentry_key=k1") {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		etag := `"` + rev + `"`
		age := f.age.Load()
		if age == 0 {
			age = 7
		}
		w.Header().Set("Cache-Control", fmt.Sprintf("private, max-age=%d", age))
		if r.Header.Get("If-None-Match") == etag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("ETag", etag)
		fmt.Fprintf(w, `{"version":1,"revision":%q,"options":{"traces_sample_rate":%s,"send_default_pii":false},"rules":[]}`, rev, *f.rate.Load())
		return
	}
	w.Header().Set("X-Baton-Client-Options", rev)
	w.Write([]byte(`{}`))
}

func (f *fakeBaton) set(rev, rate string) { f.rev.Store(&rev); f.rate.Store(&rate) }

func TestFetchAndHint(t *testing.T) {
	f := &fakeBaton{}
	f.set("r1", "0.25")
	srv := httptest.NewServer(f)
	defer srv.Close()
	co, err := New(Options{DSN: "http://k1@" + strings.TrimPrefix(srv.URL, "http://") + "/42", Release: "app@1", DeviceID: "d1", MinInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if changed, err := co.Fetch(t.Context()); !changed || err != nil {
		t.Fatalf("first fetch: %v %v", changed, err)
	}
	q := *f.query.Load()
	for _, want := range []string{"sdk=sentry.go", "version=" + sentry.SDKVersion, "platform=go", "release=app%401", "device_id=d1"} {
		if !strings.Contains(q, want) {
			t.Errorf("query %q lacks %q", q, want)
		}
	}
	if changed, err := co.Fetch(t.Context()); changed || err != nil {
		t.Fatalf("second fetch (304): %v %v", changed, err)
	}
	if time.Duration(co.maxAge.Load()) != 7*time.Second || !co.WithholdDefaultPII() {
		t.Errorf("max-age %v, withhold PII %v", time.Duration(co.maxAge.Load()), co.WithholdDefaultPII())
	}

	opts := sentry.ClientOptions{TracesSampleRate: 0.5}
	co.Apply(&opts)
	if got := opts.TracesSampler(sentry.SamplingContext{}); got != 0.25 {
		t.Errorf("sampler %v, want the served 0.25", got)
	}
	// An ingest answer with the revision in force fetches nothing; one
	// with another revision fetches once.
	ingest := func() {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/api/42/envelope/", nil)
		resp, err := opts.HTTPTransport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	ingest()
	co.Close()
	if n := f.gets.Load(); n != 2 {
		t.Errorf("%d fetches after a hint of the same revision, want 2", n)
	}
	f.set("r2", "1")
	ingest()
	co.Close()
	if r := co.Current(); r.Revision != "r2" || opts.TracesSampler(sentry.SamplingContext{}) != 1 || f.gets.Load() != 3 {
		t.Errorf("after a new revision's hint: %+v, %d fetches", r, f.gets.Load())
	}
}

// TestRunPollsEachMaxAge: Run fetches at once, then waits the max-age of
// the last answer before each next fetch (its clock is the test's), and
// returns when its context ends.
func TestRunPollsEachMaxAge(t *testing.T) {
	f := &fakeBaton{}
	f.set("r1", "0.25")
	srv := httptest.NewServer(f)
	defer srv.Close()
	co, err := New(Options{DSN: "http://k1@" + strings.TrimPrefix(srv.URL, "http://") + "/42"})
	if err != nil {
		t.Fatal(err)
	}
	waits := make(chan time.Duration)
	tick := make(chan time.Time)
	co.after = func(d time.Duration) <-chan time.Time {
		waits <- d
		return tick
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		co.Run(ctx)
	}()
	// Each wait is asked for after its fetch: the counts are exact.
	if d := <-waits; d != 7*time.Second || f.gets.Load() != 1 || co.Current().Revision != "r1" {
		t.Fatalf("after the first fetch: wait %s, %d fetches, %+v", d, f.gets.Load(), co.Current())
	}
	f.age.Store(3)
	f.set("r2", "1")
	tick <- time.Now()
	if d := <-waits; d != 3*time.Second || f.gets.Load() != 2 || co.Current().Revision != "r2" {
		t.Errorf("after the poll: wait %s (the new max-age is 3s), %d fetches, %+v", d, f.gets.Load(), co.Current())
	}
	tick <- time.Now()
	if d := <-waits; d != 3*time.Second || f.gets.Load() != 3 || co.Current().Revision != "r2" {
		t.Errorf("after the 304 poll: wait %s, %d fetches, %+v", d, f.gets.Load(), co.Current())
	}
	cancel()
	<-done
	if n := f.gets.Load(); n != 3 {
		t.Errorf("%d fetches after the context ended, want 3", n)
	}
}

func TestNewRefusesBadDSN(t *testing.T) {
	for _, dsn := range []string{"", "http://host/42", "http://k@host/", "http://k@host/abc"} {
		if _, err := New(Options{DSN: dsn}); err == nil {
			t.Errorf("New(%q) accepted", dsn)
		}
	}
}
