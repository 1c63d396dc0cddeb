package project

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/baton-relay/baton/relay/clientopts"
	"github.com/baton-relay/baton/relay/internal/testutil"
)

// newFakeClock is Options.Now for tests: time moves only when told.
func newFakeClock() *testutil.Clock {
	return testutil.NewClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC), false)
}

// projectJSON is a small valid project state for key.
func projectJSON(key string, id int, rev, config string) json.RawMessage {
	if config == "" {
		config = `{"allowedDomains":["*"],"features":["organizations:session-replay"]}`
	}
	return json.RawMessage(fmt.Sprintf(`{"projectId":%d,"organizationId":1,"rev":%q,"publicKeys":[{"publicKey":%q,"numericId":%d}],"config":%s}`,
		id, rev, key, id, config))
}

// upstream is a fake Fetcher: it records requests, answers from a map
// (absent keys are null), and can fail, report pending, answer unchanged,
// or hold requests until released.
type upstream struct {
	mu        sync.Mutex
	states    map[string]json.RawMessage
	revs      map[string]string
	pending   map[string]bool
	failing   map[string]bool // a request with any of these keys fails
	unchanged bool            // answer "unchanged" to a matching revision
	global    json.RawMessage
	gate      chan struct{} // non-nil: requests wait until it is closed
	delay     time.Duration // real time each request takes
	requests  []Request
	asked     map[string]int

	inflight, maxInflight atomic.Int32
}

func newUpstream() *upstream {
	return &upstream{
		states: map[string]json.RawMessage{}, revs: map[string]string{},
		pending: map[string]bool{}, failing: map[string]bool{}, asked: map[string]int{},
	}
}

func (u *upstream) set(key string, id int, rev, config string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.states[key] = projectJSON(key, id, rev, config)
	u.revs[key] = rev
}

func (u *upstream) setRaw(key string, raw string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.states[key] = json.RawMessage(raw)
}

func (u *upstream) with(f func(u *upstream)) {
	u.mu.Lock()
	defer u.mu.Unlock()
	f(u)
}

func (u *upstream) hold() {
	u.with(func(u *upstream) { u.gate = make(chan struct{}) })
}

func (u *upstream) release() {
	u.with(func(u *upstream) {
		if u.gate != nil {
			close(u.gate)
			u.gate = nil
		}
	})
}

func (u *upstream) askedFor(key string) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.asked[key]
}

func (u *upstream) allRequests() []Request {
	u.mu.Lock()
	defer u.mu.Unlock()
	return slices.Clone(u.requests)
}

// lastRevision returns the revision sent with key in the last request
// that asked for it.
func (u *upstream) lastRevision(key string) (rev *string, found bool) {
	reqs := u.allRequests()
	for i := len(reqs) - 1; i >= 0; i-- {
		if j := slices.Index(reqs[i].PublicKeys, key); j >= 0 {
			if j < len(reqs[i].Revisions) {
				return reqs[i].Revisions[j], true
			}
			return nil, true
		}
	}
	return nil, false
}

func (u *upstream) Fetch(ctx context.Context, req *Request) (*Response, error) {
	n := u.inflight.Add(1)
	defer u.inflight.Add(-1)
	for {
		m := u.maxInflight.Load()
		if n <= m || u.maxInflight.CompareAndSwap(m, n) {
			break
		}
	}
	cp := *req
	cp.PublicKeys = slices.Clone(req.PublicKeys)
	cp.Revisions = make([]*string, len(req.Revisions))
	for i, r := range req.Revisions {
		if r != nil {
			s := *r
			cp.Revisions[i] = &s
		}
	}
	cp.Parts = slices.Clone(req.Parts)
	u.mu.Lock()
	u.requests = append(u.requests, cp)
	for _, k := range req.PublicKeys {
		u.asked[k]++
	}
	gate, delay := u.gate, u.delay
	u.mu.Unlock()

	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}

	u.mu.Lock()
	defer u.mu.Unlock()
	for _, k := range req.PublicKeys {
		if u.failing[k] {
			return nil, errors.New("upstream: 502 bad gateway")
		}
	}
	resp := &Response{Configs: map[string]json.RawMessage{}, Global: u.global}
	for i, k := range req.PublicKeys {
		switch {
		case u.pending[k]:
			resp.Pending = append(resp.Pending, k)
		case u.unchanged && i < len(req.Revisions) && req.Revisions[i] != nil && u.revs[k] != "" && *req.Revisions[i] == u.revs[k]:
			resp.Unchanged = append(resp.Unchanged, k)
		default:
			if st, ok := u.states[k]; ok {
				resp.Configs[k] = st
			} else {
				resp.Configs[k] = json.RawMessage("null")
			}
		}
	}
	return resp, nil
}

// logRecorder is a slog.Handler keeping every record as one line.
type logRecorder struct {
	mu    sync.Mutex
	lines []string
}

func (r *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return r }
func (r *logRecorder) WithGroup(string) slog.Handler            { return r }
func (r *logRecorder) Handle(_ context.Context, rec slog.Record) error {
	var b strings.Builder
	b.WriteString(rec.Message)
	rec.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	})
	r.mu.Lock()
	r.lines = append(r.lines, b.String())
	r.mu.Unlock()
	return nil
}

func (r *logRecorder) all() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.lines)
}

func (r *logRecorder) count(substr string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, l := range r.lines {
		if strings.Contains(l, substr) {
			n++
		}
	}
	return n
}

type harness struct {
	*Cache
	t        *testing.T
	up       *upstream
	clock    *testutil.Clock
	barriers int
}

// newHarness starts a cache with a fake upstream and clock; Run is
// cancelled and waited for when the test ends.
func newHarness(t *testing.T, opts Options) *harness {
	t.Helper()
	h := &harness{t: t, up: newUpstream(), clock: newFakeClock()}
	opts.Fetch = h.up.Fetch
	opts.Now = h.clock.Now
	if opts.BatchInterval == 0 {
		opts.BatchInterval = time.Millisecond
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	c, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	h.Cache = c
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Error("Run did not return after its context was cancelled")
		}
	})
	return h
}

// waitFor polls cond, woken by Changed, until it holds; it fails the test
// after a few seconds.
func (h *harness) waitFor(what string, cond func() bool) {
	h.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			h.t.Fatalf("timed out waiting for %s (stats %+v)", what, h.Stats())
		}
		select {
		case <-h.Changed():
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// waitStatus Gets key until it has status want.
func (h *harness) waitStatus(key string, want Status) *State {
	h.t.Helper()
	var st *State
	h.waitFor(fmt.Sprintf("%s to be %v", key, want), func() bool {
		var s Status
		st, s = h.Get(key)
		return s == want
	})
	return st
}

// barrier fetches a fresh key and waits for it. With Concurrency 1 every
// fetch queued before it has then completed.
func (h *harness) barrier() {
	h.t.Helper()
	h.barriers++
	key := fmt.Sprintf("barrier-%d", h.barriers)
	h.up.set(key, 900000+h.barriers, "b", "")
	h.waitStatus(key, Ready)
}

func (h *harness) mustGet(key string, want Status) *State {
	h.t.Helper()
	st, s := h.Get(key)
	if s != want {
		h.t.Fatalf("Get(%s) = %v, want %v", key, s, want)
	}
	if (st != nil) != (want == Ready) {
		h.t.Fatalf("Get(%s) = %v with state %v", key, s, st)
	}
	return st
}

func TestNewRequiresFetcher(t *testing.T) {
	if _, err := New(Options{}); !errors.Is(err, ErrNoFetcher) {
		t.Errorf("New without Fetch: %v", err)
	}
}

func TestOptionDefaults(t *testing.T) {
	o := Options{}.withDefaults()
	if o.MaxProjects != 10000 || o.Expiry != 300*time.Second || o.Grace != 120*time.Second ||
		o.MissExpiry != 60*time.Second || o.BatchSize != 500 || o.BatchInterval != 100*time.Millisecond ||
		o.Concurrency != 5 || o.Timeout != 30*time.Second || o.MaxQueued != 10000 || o.Logger == nil || o.Now == nil {
		t.Errorf("defaults = %+v", o)
	}
	if o := (Options{Grace: -1}).withDefaults(); o.Grace != 0 {
		t.Errorf("Grace -1 = %v, want none", o.Grace)
	}
	o = Options{BatchSize: 10, Concurrency: 2}.withDefaults()
	if o.MaxQueued != 80 {
		t.Errorf("MaxQueued = %d, want 4×10×2", o.MaxQueued)
	}
	for s, want := range map[Status]string{Pending: "pending", Ready: "ready", Unknown: "unknown"} {
		if s.String() != want {
			t.Errorf("%d.String() = %q", s, s.String())
		}
	}
}

func TestGetMissThenReady(t *testing.T) {
	h := newHarness(t, Options{Concurrency: 1})
	h.up.set("k1", 1, "r1", "")

	changed := h.Changed()
	h.mustGet("k1", Pending)
	select {
	case <-changed:
	case <-time.After(5 * time.Second):
		t.Fatal("Changed not closed after a fetch")
	}
	st := h.waitStatus("k1", Ready)
	if st.ProjectID != 1 || st.Rev != "r1" || !st.HasFeature("organizations:session-replay") {
		t.Errorf("state = %+v", st)
	}
	if again := h.mustGet("k1", Ready); again != st {
		t.Error("a second Get returned another *State")
	}
	if known, enabled := st.KeyEnabled([]byte("k1")); !known || !enabled {
		t.Error("k1 not an enabled key of its own state")
	}
	s := h.Stats()
	if s.Projects != 1 || s.Misses != 0 || s.Fetched != 1 || s.Requests != 1 || s.Failures != 0 {
		t.Errorf("stats = %+v", s)
	}
	if r := h.up.allRequests()[0]; !r.Global || len(r.Revisions) != 1 || r.Revisions[0] != nil || r.Parts != nil {
		t.Errorf("request = %+v", r)
	}
}

func TestUnknownKeyRememberedForMissExpiry(t *testing.T) {
	h := newHarness(t, Options{Concurrency: 1, MissExpiry: 60 * time.Second})

	h.mustGet("nokey", Pending)
	h.waitStatus("nokey", Unknown)
	if s := h.Stats(); s.Unknown != 1 || s.Misses != 1 || s.Projects != 0 {
		t.Errorf("stats = %+v", s)
	}
	for range 1000 {
		h.mustGet("nokey", Unknown)
	}
	h.clock.Advance(60*time.Second - time.Nanosecond)
	h.mustGet("nokey", Unknown)
	h.barrier()
	if n := h.up.askedFor("nokey"); n != 1 {
		t.Fatalf("unknown key asked %d times within MissExpiry, want 1", n)
	}

	// Due again: asked once more, and unknown meanwhile.
	h.clock.Advance(time.Nanosecond)
	h.mustGet("nokey", Unknown)
	deadline := time.Now().Add(5 * time.Second)
	for h.up.askedFor("nokey") < 2 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	h.barrier()
	if n := h.up.askedFor("nokey"); n != 2 {
		t.Errorf("asked %d times after MissExpiry, want 2", n)
	}
	h.mustGet("nokey", Unknown)

	// The project appears upstream: found on the next round.
	h.up.set("nokey", 5, "r1", "")
	h.mustGet("nokey", Unknown)
	h.clock.Advance(60 * time.Second)
	if st := h.waitStatus("nokey", Ready); st.ProjectID != 5 {
		t.Errorf("state = %+v", st)
	}
	if s := h.Stats(); s.Misses != 0 || s.Projects != 1+h.barriers {
		t.Errorf("stats after the project appeared = %+v", s)
	}
}

func TestBatching(t *testing.T) {
	h := newHarness(t, Options{BatchSize: 500, Concurrency: 2})
	h.up.with(func(u *upstream) { u.delay = 2 * time.Millisecond })
	keys := make([]string, 1200)
	for i := range keys {
		keys[i] = fmt.Sprintf("%032x", i+1)
		h.up.set(keys[i], i+1, "r", "")
	}
	for _, k := range keys {
		h.mustGet(k, Pending)
	}
	h.waitFor("every key ready", func() bool {
		for _, k := range keys {
			if _, s := h.Get(k); s != Ready {
				return false
			}
		}
		return true
	})
	for i, k := range keys {
		if st, _ := h.Get(k); st.ProjectID != uint64(i+1) {
			t.Fatalf("%s: project %d, want %d", k, st.ProjectID, i+1)
		}
	}

	reqs := h.up.allRequests()
	if len(reqs) < 3 {
		t.Errorf("%d requests for 1200 keys at 500 a batch", len(reqs))
	}
	for i, r := range reqs {
		if len(r.PublicKeys) == 0 || len(r.PublicKeys) > 500 {
			t.Errorf("request %d has %d keys", i, len(r.PublicKeys))
		}
		if len(r.Revisions) != len(r.PublicKeys) {
			t.Errorf("request %d: %d revisions for %d keys", i, len(r.Revisions), len(r.PublicKeys))
		}
	}
	for _, k := range keys {
		if n := h.up.askedFor(k); n != 1 {
			t.Fatalf("%s asked %d times, want 1", k, n)
		}
	}
	if m := h.up.maxInflight.Load(); m > 2 {
		t.Errorf("%d requests in flight, Concurrency is 2", m)
	}
	if s := h.Stats(); s.Projects != 1200 || s.Fetched != 1200 || s.Dropped != 0 {
		t.Errorf("stats = %+v", s)
	}
}

func TestConcurrencyLimit(t *testing.T) {
	h := newHarness(t, Options{BatchSize: 10, Concurrency: 3, MaxQueued: 1000})
	h.up.hold()
	keys := make([]string, 100)
	for i := range keys {
		keys[i] = fmt.Sprintf("c%031d", i)
		h.up.set(keys[i], i+1, "r", "")
		h.mustGet(keys[i], Pending)
	}
	h.waitFor("3 requests in flight", func() bool { return h.up.inflight.Load() == 3 })
	// More misses while the upstream is stuck: queued, never a 4th request.
	for i := range 50 {
		h.mustGet(fmt.Sprintf("more%d", i), Pending)
	}
	h.up.release()
	h.waitFor("every key ready", func() bool {
		for _, k := range keys {
			if _, s := h.Get(k); s != Ready {
				return false
			}
		}
		return true
	})
	if m := h.up.maxInflight.Load(); m != 3 {
		t.Errorf("max in flight %d, want Concurrency 3", m)
	}
	for i, r := range h.up.allRequests() {
		if len(r.PublicKeys) > 10 {
			t.Errorf("request %d has %d keys, BatchSize is 10", i, len(r.PublicKeys))
		}
	}
}

func TestPartsOption(t *testing.T) {
	h := newHarness(t, Options{Parts: PartSet(0).With(PartKeys).With(PartSampling)})
	h.up.set("k", 1, "r", "")
	h.mustGet("k", Pending)
	h.waitStatus("k", Ready)
	if r := h.up.allRequests()[0]; !slices.Equal(r.Parts, []string{"keys", "sampling"}) {
		t.Errorf("request parts = %q", r.Parts)
	}
	b, err := json.Marshal(h.up.allRequests()[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"publicKeys":["k"]`, `"revisions":[null]`, `"global":true`, `"parts":["keys","sampling"]`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("request JSON %s lacks %s", b, want)
		}
	}
}

func TestRevisionsAndUnchanged(t *testing.T) {
	const expiry = 300 * time.Second
	h := newHarness(t, Options{Concurrency: 1, Expiry: expiry})
	h.up.with(func(u *upstream) { u.unchanged = true })
	h.up.set("k", 1, "r1", "")

	h.mustGet("k", Pending)
	st1 := h.waitStatus("k", Ready)
	if rev, found := h.up.lastRevision("k"); !found || rev != nil {
		t.Fatalf("first request revision = %v, %v; want null", rev, found)
	}

	// Stale: served, and refreshed with the cached revision.
	h.clock.Advance(expiry)
	if st := h.mustGet("k", Ready); st != st1 {
		t.Error("stale Get returned another state")
	}
	h.waitFor("an unchanged answer", func() bool { return h.Stats().Unchanged == 1 })
	if rev, found := h.up.lastRevision("k"); !found || rev == nil || *rev != "r1" {
		t.Fatalf("refresh revision = %v, %v; want r1", rev, found)
	}
	if st := h.mustGet("k", Ready); st != st1 {
		t.Error("unchanged answer replaced the state")
	}

	// Unchanged reset the age: no refresh for another Expiry.
	h.clock.Advance(expiry - time.Second)
	h.mustGet("k", Ready)
	h.barrier()
	if n := h.up.askedFor("k"); n != 2 {
		t.Fatalf("asked %d times, want 2: unchanged did not reset the age", n)
	}
	h.clock.Advance(time.Second)
	h.mustGet("k", Ready)
	h.waitFor("a third request", func() bool { return h.Stats().Unchanged == 2 })

	// A new revision upstream replaces the state.
	h.up.set("k", 1, "r2", `{"allowedDomains":["example.com"]}`)
	h.clock.Advance(expiry)
	if st := h.mustGet("k", Ready); st != st1 {
		t.Error("stale Get returned another state")
	}
	h.waitFor("revision r2", func() bool {
		st, s := h.Get("k")
		return s == Ready && st.Rev == "r2"
	})
	if rev, _ := h.up.lastRevision("k"); rev == nil || *rev != "r1" {
		t.Errorf("refresh revision = %v, want r1", rev)
	}
	if st, _ := h.Get("k"); !slices.Equal(st.AllowedDomains, []string{"example.com"}) {
		t.Errorf("AllowedDomains = %q", st.AllowedDomains)
	}
}

func TestPendingAnswer(t *testing.T) {
	h := newHarness(t, Options{Concurrency: 1})
	h.up.set("k", 1, "r1", "")
	h.up.with(func(u *upstream) { u.pending["k"] = true })

	h.mustGet("k", Pending)
	h.waitFor("a pending answer", func() bool { return h.Stats().Pending == 1 })
	for range 1000 {
		h.mustGet("k", Pending)
	}
	h.clock.Advance(pendingRetry - time.Millisecond)
	h.mustGet("k", Pending)
	h.barrier()
	if n := h.up.askedFor("k"); n != 1 {
		t.Fatalf("pending key asked %d times before pendingRetry, want 1", n)
	}

	// Still pending on the next round, then computed.
	h.clock.Advance(time.Millisecond)
	h.mustGet("k", Pending)
	h.waitFor("a second pending answer", func() bool { return h.Stats().Pending == 2 })
	h.up.with(func(u *upstream) { u.pending["k"] = false })
	h.clock.Advance(2 * pendingRetry) // the backoff doubled
	h.mustGet("k", Pending)
	st := h.waitStatus("k", Ready)
	if st.Rev != "r1" || h.up.askedFor("k") != 3 {
		t.Errorf("state %+v after %d requests", st, h.up.askedFor("k"))
	}

	// Pending while refreshing a cached state: the stale state keeps
	// serving and the refresh is retried after pendingRetry.
	h.up.with(func(u *upstream) { u.pending["k"] = true })
	h.clock.Advance(300 * time.Second)
	h.mustGet("k", Ready)
	h.waitFor("a pending refresh", func() bool { return h.Stats().Pending == 3 })
	h.mustGet("k", Ready)
	h.barrier()
	if n := h.up.askedFor("k"); n != 4 {
		t.Fatalf("asked %d times, want 4", n)
	}
	h.up.set("k", 1, "r2", "")
	h.up.with(func(u *upstream) { u.pending["k"] = false })
	h.clock.Advance(pendingRetry)
	h.mustGet("k", Ready)
	h.waitFor("revision r2", func() bool { st, _ := h.Get("k"); return st != nil && st.Rev == "r2" })
}

func TestExpiryGraceAndBackoff(t *testing.T) {
	const expiry, grace = 300 * time.Second, 120 * time.Second
	// One key per request, one request at a time: the barrier key never
	// shares a failing request, and once it is ready every earlier fetch
	// has completed.
	h := newHarness(t, Options{Concurrency: 1, BatchSize: 1, MaxQueued: 100, Expiry: expiry, Grace: grace})
	h.up.set("k", 1, "r1", "")
	h.mustGet("k", Pending)
	st1 := h.waitStatus("k", Ready)

	h.up.with(func(u *upstream) { u.failing["k"] = true })
	h.clock.Advance(expiry + time.Second)
	if st := h.mustGet("k", Ready); st != st1 {
		t.Fatal("stale state not served")
	}
	h.barrier()
	if s := h.Stats(); s.Failures != 1 || h.up.askedFor("k") != 2 {
		t.Fatalf("after a failed refresh: stats %+v, asked %d", s, h.up.askedFor("k"))
	}

	// No hot loop: many Gets at the same instant, then over one second.
	for range 10000 {
		if st := h.mustGet("k", Ready); st != st1 {
			t.Fatal("stale state not served")
		}
	}
	h.barrier()
	if n := h.up.askedFor("k"); n != 2 {
		t.Fatalf("asked %d times right after a failure, want 2", n)
	}
	for range 1000 {
		h.clock.Advance(time.Millisecond)
		h.mustGet("k", Ready)
	}
	h.barrier()
	if n := h.up.askedFor("k"); n > 3 {
		t.Fatalf("asked %d times within a second of a failure, want at most 3", n)
	}

	// Past the grace period: nothing to serve.
	h.clock.Advance(grace - 2*time.Second)
	h.mustGet("k", Pending)
	h.barrier()

	// Backing off: over another minute of Gets every second, a handful
	// of requests (1s, 2s, 4s... doubling), not sixty.
	before := h.up.askedFor("k")
	for range 60 {
		h.clock.Advance(time.Second)
		h.mustGet("k", Pending)
		h.barrier()
	}
	if n := h.up.askedFor("k") - before; n < 2 || n > 7 {
		t.Errorf("%d requests over 60s of failures, want a doubling backoff (2..7)", n)
	}

	// The upstream recovers: fetched again within the longest backoff.
	h.up.with(func(u *upstream) { u.failing["k"] = false })
	h.up.set("k", 1, "r2", "")
	h.clock.Advance(61 * time.Second)
	h.mustGet("k", Pending)
	if st := h.waitStatus("k", Ready); st.Rev != "r2" {
		t.Errorf("recovered state rev %q", st.Rev)
	}
}

func TestMissBackoff(t *testing.T) {
	h := newHarness(t, Options{Concurrency: 1, BatchSize: 1, MaxQueued: 100})
	h.up.with(func(u *upstream) { u.failing["k"] = true })
	h.mustGet("k", Pending)
	h.barrier()
	if n := h.up.askedFor("k"); n != 1 {
		t.Fatalf("asked %d times", n)
	}
	// Requests at 0s, 1s, 3s, 7s (delays 1s, 2s, 4s, 8s): 4 in 10s.
	for range 10 {
		h.clock.Advance(time.Second)
		for range 100 {
			h.mustGet("k", Pending)
		}
		h.barrier()
	}
	if n := h.up.askedFor("k"); n != 4 {
		t.Errorf("asked %d times in 10s of failures, want 4 (1s, 2s, 4s backoff)", n)
	}
	if s := h.Stats(); s.Failures != 4 || s.Misses != 1 {
		t.Errorf("stats = %+v", s)
	}
}

func TestFetchTimeout(t *testing.T) {
	rec := &logRecorder{}
	h := newHarness(t, Options{Timeout: 20 * time.Millisecond, Logger: slog.New(rec)})
	h.up.hold()
	h.mustGet("k", Pending)
	// The failure is counted before it is logged: wait for the log line.
	h.waitFor("a timed-out request", func() bool { return rec.count("fetch failed") == 1 })
	if s := h.Stats(); s.Failures != 1 || s.Requests != 1 {
		t.Errorf("stats = %+v", s)
	}
	h.mustGet("k", Pending)
	h.up.release()
}

func TestFlood(t *testing.T) {
	const maxProjects = 1000
	h := newHarness(t, Options{MaxProjects: maxProjects, BatchSize: 500, Concurrency: 2})
	reals := make([]string, 200)
	states := make([]*State, len(reals))
	for i := range reals {
		reals[i] = fmt.Sprintf("real%028d", i)
		h.up.set(reals[i], i+1, "r", "")
		h.mustGet(reals[i], Pending)
	}
	for i, k := range reals {
		states[i] = h.waitStatus(k, Ready)
	}

	// The upstream hangs; 100k random keys must not block Get, grow the
	// misses past their bound, or evict a real config.
	h.up.hold()
	const n, workers = 100000, 4
	var notPending, busy atomic.Int64
	done := make(chan struct{})
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 99))
			for range n / workers {
				key := fmt.Sprintf("%016x%016x", rng.Uint64(), rng.Uint64())
				switch _, s := h.Get(key); s {
				case Pending:
				case Busy: // the outstanding-lookup cap sheds it
					busy.Add(1)
				default:
					notPending.Add(1)
				}
			}
		})
	}
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		h.up.release()
		t.Fatal("Get blocked during a flood with the upstream hanging")
	}
	if k := notPending.Load(); k != 0 {
		t.Errorf("%d random keys neither pending nor busy", k)
	}
	s := h.Stats()
	t.Logf("after the flood: %+v", s)
	if s.Misses > maxProjects {
		t.Errorf("%d misses cached, bound %d", s.Misses, maxProjects)
	}
	if s.Dropped < n/2 || busy.Load() != s.Dropped {
		t.Errorf("%d misses dropped with the queue full (MaxQueued %d), %d answered busy", s.Dropped, h.opts.MaxQueued, busy.Load())
	}
	if s.Projects != len(reals) {
		t.Errorf("%d projects cached, want %d", s.Projects, len(reals))
	}
	for i, k := range reals {
		if st, status := h.Get(k); status != Ready || st != states[i] {
			t.Fatalf("real project %s: %v %p, want ready %p", k, status, st, states[i])
		}
	}

	// The upstream answers null for all of them.
	h.up.release()
	h.waitFor("the flood to be answered", func() bool {
		return len(h.queue) == 0 && h.up.inflight.Load() == 0 && h.Stats().Unknown >= 1000
	})
	s = h.Stats()
	if s.Misses > maxProjects || s.Projects != len(reals) {
		t.Errorf("after the answers: %+v", s)
	}
	for i, k := range reals {
		if st, status := h.Get(k); status != Ready || st != states[i] {
			t.Fatalf("real project %s: %v, want ready", k, status)
		}
	}
}

func TestGlobal(t *testing.T) {
	h := newHarness(t, Options{Concurrency: 1})
	if g := h.Global(); g != nil {
		t.Fatalf("Global() = %s before any fetch", g)
	}
	if r := h.Answer(&Request{Global: true}, nil); string(r.Global) != "{}" || r.GlobalStatus != "pending" {
		t.Errorf("Answer before a global config: %s %q", r.Global, r.GlobalStatus)
	}
	const g1 = `{"measurements":{"builtinMeasurements":[],"maxCustomMeasurements":10},"options":{}}`
	h.up.with(func(u *upstream) { u.global = json.RawMessage(g1) })
	h.up.set("k", 1, "r1", "")
	h.mustGet("k", Pending)
	h.waitStatus("k", Ready)
	if g := h.Global(); string(g) != g1 {
		t.Errorf("Global() = %s, want %s", g, g1)
	}
	if r := h.Answer(&Request{Global: true}, nil); string(r.Global) != g1 || r.GlobalStatus != "ready" {
		t.Errorf("Answer global %s %q", r.Global, r.GlobalStatus)
	}
	if r := h.Answer(&Request{}, nil); r.Global != nil || r.GlobalStatus != "" {
		t.Errorf("global sent unasked: %s", r.Global)
	}

	// A response without a global config keeps the last one.
	h.up.with(func(u *upstream) { u.global = nil })
	h.mustGet("k2", Pending)
	h.waitStatus("k2", Unknown)
	h.up.with(func(u *upstream) { u.global = json.RawMessage("null") })
	h.mustGet("k3", Pending)
	h.waitStatus("k3", Unknown)
	if g := h.Global(); string(g) != g1 {
		t.Errorf("Global() = %s after responses without one", g)
	}

	const g2 = `{"options":{"x":1}}`
	h.up.with(func(u *upstream) { u.global = json.RawMessage(g2) })
	h.mustGet("k4", Pending)
	h.waitStatus("k4", Unknown)
	if g := h.Global(); string(g) != g2 {
		t.Errorf("Global() = %s, want %s", g, g2)
	}
	for i, r := range h.up.allRequests() {
		if !r.Global {
			t.Errorf("request %d did not ask for the global config", i)
		}
	}
}

func decodeConfigKeys(t *testing.T, raw json.RawMessage) (top, cfg map[string]json.RawMessage) {
	t.Helper()
	if err := json.Unmarshal(raw, &top); err != nil {
		t.Fatalf("answer config %s: %v", raw, err)
	}
	if c, ok := top["config"]; ok {
		if err := json.Unmarshal(c, &cfg); err != nil {
			t.Fatal(err)
		}
	}
	return top, cfg
}

func TestAnswer(t *testing.T) {
	h := newHarness(t, Options{Concurrency: 1})
	const config = `{"allowedDomains":["*"],"quotas":[{"id":"q","scope":"project","limit":10,"window":60}],` +
		`"filterSettings":{"releases":{"releases":["1.*"]}},"sampling":{"version":2,"rules":[]},` +
		`"features":["f"],"groupingConfig":{"id":"newstyle"},"sessionMetrics":{"version":1}}`
	h.up.set("ready1", 1, "ra", config)
	h.up.set("norev", 2, "", "")
	for _, k := range []string{"ready1", "norev", "unknown1"} {
		h.mustGet(k, Pending)
	}
	want := h.waitStatus("ready1", Ready)
	h.waitStatus("norev", Ready)
	h.waitStatus("unknown1", Unknown)

	resp := h.Answer(&Request{PublicKeys: []string{"ready1", "unknown1", "new1"}}, nil)
	if got := resp.Configs["ready1"]; string(got) != string(want.AppendJSON(nil, AllParts)) {
		t.Errorf("ready1 = %s", got)
	}
	if back := mustDecode(t, resp.Configs["ready1"]); back.Rev != "ra" || len(back.Quotas) != 1 || back.Present != want.Present {
		t.Errorf("ready1 decodes to %+v", back)
	}
	if got, ok := resp.Configs["unknown1"]; !ok || string(got) != "null" {
		t.Errorf("unknown1 = %s, %v; want null", got, ok)
	}
	if _, ok := resp.Configs["new1"]; ok || !slices.Equal(resp.Pending, []string{"new1"}) {
		t.Errorf("new1: configs %s, pending %q", resp.Configs["new1"], resp.Pending)
	}
	if len(resp.Unchanged) != 0 || resp.Global != nil {
		t.Errorf("unchanged %q global %s", resp.Unchanged, resp.Global)
	}
	// The pending key was queued: answered on a later ask.
	h.waitStatus("new1", Unknown)
	if r := h.Answer(&Request{PublicKeys: []string{"new1"}}, nil); string(r.Configs["new1"]) != "null" || len(r.Pending) != 0 {
		t.Errorf("new1 later: %+v", r)
	}

	ra, old, empty := "ra", "old", ""
	for _, tc := range []struct {
		name          string
		keys          []string
		revs          []*string
		unchanged     []string
		configs       []string
		nullConfigKey string
	}{
		{"matching revision", []string{"ready1", "unknown1"}, []*string{&ra, nil}, []string{"ready1"}, nil, "unknown1"},
		{"other revision", []string{"ready1"}, []*string{&old}, nil, []string{"ready1"}, ""},
		{"null revision", []string{"ready1"}, []*string{nil}, nil, []string{"ready1"}, ""},
		{"fewer revisions than keys", []string{"unknown1", "ready1"}, []*string{&ra}, nil, []string{"ready1"}, "unknown1"},
		{"no revision upstream", []string{"norev"}, []*string{&empty}, nil, []string{"norev"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := h.Answer(&Request{PublicKeys: tc.keys, Revisions: tc.revs}, nil)
			if !slices.Equal(r.Unchanged, tc.unchanged) {
				t.Errorf("unchanged = %q, want %q", r.Unchanged, tc.unchanged)
			}
			for _, k := range tc.configs {
				if st := r.Configs[k]; len(st) == 0 || string(st) == "null" {
					t.Errorf("no config for %s", k)
				}
			}
			for _, k := range tc.unchanged {
				if _, ok := r.Configs[k]; ok {
					t.Errorf("%s both unchanged and in configs", k)
				}
			}
			if tc.nullConfigKey != "" && string(r.Configs[tc.nullConfigKey]) != "null" {
				t.Errorf("%s = %s, want null", tc.nullConfigKey, r.Configs[tc.nullConfigKey])
			}
		})
	}

	// A view (this Baton's own clientOptions) is what is compared and
	// served: the downstream holding the fetched revision gets the view.
	doc, err := clientopts.Parse([]byte(`{"version":1,"options":{"traces_sample_rate":0.5}}`))
	if err != nil {
		t.Fatal(err)
	}
	view := func(st *State) *State {
		return st.WithClientOptions([]byte(`{"version":1,"options":{"traces_sample_rate":0.5}}`), doc)
	}
	viewed := "ra+co." + doc.Revision()
	if r := h.Answer(&Request{PublicKeys: []string{"ready1"}, Revisions: []*string{&ra}}, view); len(r.Unchanged) != 0 ||
		mustDecode(t, r.Configs["ready1"]).ClientOptions == nil || mustDecode(t, r.Configs["ready1"]).Rev != viewed {
		t.Errorf("viewed, asked with the fetched revision: %+v", r)
	}
	if r := h.Answer(&Request{PublicKeys: []string{"ready1"}, Revisions: []*string{&viewed}}, view); !slices.Equal(r.Unchanged, []string{"ready1"}) {
		t.Errorf("viewed, asked with the viewed revision: %+v", r)
	}

	for _, tc := range []struct {
		name  string
		parts []string
		keys  []string // config keys expected
	}{
		{"sampling", []string{"sampling"}, []string{"sampling"}},
		{"quotas and filters", []string{"quotas", "filters"}, []string{"filterSettings", "quotas"}},
		{"unknown names ignored", []string{"quotas", "bogus"}, []string{"quotas"}},
		{"only unknown names", []string{"bogus"}, []string{}},
		{"keys", []string{"keys"}, []string{}},
		{"metrics and other", []string{"metrics", "other"}, []string{"groupingConfig", "sessionMetrics"}},
		{"client and features", []string{"client", "features"}, []string{"allowedDomains", "features"}},
	} {
		t.Run("parts "+tc.name, func(t *testing.T) {
			r := h.Answer(&Request{PublicKeys: []string{"ready1", "unknown1"}, Parts: tc.parts}, nil)
			top, cfg := decodeConfigKeys(t, r.Configs["ready1"])
			if got := slices.Sorted(maps.Keys(cfg)); !slices.Equal(got, tc.keys) {
				t.Errorf("config keys %q, want %q", got, tc.keys)
			}
			for _, k := range []string{"publicKeys", "projectId", "rev", "organizationId"} {
				if _, ok := top[k]; !ok {
					t.Errorf("top-level %s missing", k)
				}
			}
			back := mustDecode(t, r.Configs["ready1"])
			if known, enabled := back.KeyEnabled([]byte("ready1")); !known || !enabled {
				t.Error("keys part lost")
			}
			if string(r.Configs["unknown1"]) != "null" {
				t.Errorf("unknown1 = %s", r.Configs["unknown1"])
			}
		})
	}
}

func TestBrokenPartStoredAndServed(t *testing.T) {
	rec := &logRecorder{}
	h := newHarness(t, Options{Concurrency: 1, Logger: slog.New(rec)})
	h.up.set("k", 1, "r1", `{"sampling":"garbage","features":["f"],"quotas":[{"id":"q","scope":"project","limit":5,"window":60}]}`)
	h.mustGet("k", Pending)
	st := h.waitStatus("k", Ready)
	if _, ok := st.Broken[PartSampling]; !ok || len(st.Broken) != 1 || st.Sampling != nil {
		t.Fatalf("Broken = %v, Sampling %v", st.Broken, st.Sampling)
	}
	if !st.HasFeature("f") || len(st.Quotas) != 1 {
		t.Errorf("other parts not decoded: %+v", st)
	}
	if s := h.Stats(); s.Broken != 1 || s.Fetched != 1 || s.Projects != 1 {
		t.Errorf("stats = %+v", s)
	}
	if n := rec.count("part=sampling"); n != 1 {
		t.Errorf("broken part logged %d times, want 1: %q", n, rec.all())
	}

	// Served downstream verbatim.
	r := h.Answer(&Request{PublicKeys: []string{"k"}}, nil)
	if _, cfg := decodeConfigKeys(t, r.Configs["k"]); string(cfg["sampling"]) != `"garbage"` {
		t.Errorf("served sampling = %s", cfg["sampling"])
	}

	// Refreshed at the same revision (an upstream without unchanged):
	// counted again, not logged again.
	h.clock.Advance(300 * time.Second)
	h.mustGet("k", Ready)
	h.waitFor("a second fetch", func() bool { return h.Stats().Fetched == 2 })
	if s := h.Stats(); s.Broken != 2 {
		t.Errorf("stats = %+v", s)
	}
	if n := rec.count("part=sampling"); n != 1 {
		t.Errorf("broken part logged %d times for one revision, want 1", n)
	}
	// A new revision, still broken: logged again.
	h.up.set("k", 1, "r2", `{"sampling":{"rules":[{"id":1,"type":"trace","samplingValue":{"type":"sampleRate","value":7},"condition":{"op":"and"}}]}}`)
	h.clock.Advance(300 * time.Second)
	h.mustGet("k", Ready)
	h.waitFor("revision r2", func() bool { st, _ := h.Get("k"); return st.Rev == "r2" })
	if n := rec.count("part=sampling"); n != 2 {
		t.Errorf("broken part logged %d times over two revisions, want 2", n)
	}

	// An unusable state (bad publicKeys) is a failed fetch: the key stays
	// pending (a known key would keep its last good config), not unknown.
	h.up.setRaw("bad", `{"projectId":3,"publicKeys":"nope","config":{}}`)
	failures := h.Stats().Failures
	h.mustGet("bad", Pending)
	h.waitFor("the failed decode", func() bool { return h.Stats().Failures == failures+1 })
	h.mustGet("bad", Pending)
	if s := h.Stats(); s.Unknown != 0 {
		t.Errorf("stats = %+v", s)
	}
	if rec.count("unusable") != 1 {
		t.Errorf("log = %q", rec.all())
	}
	// A known project whose refresh is unusable keeps its config.
	h.up.setRaw("k", `{"projectId":1,"publicKeys":7}`)
	h.clock.Advance(300 * time.Second)
	h.mustGet("k", Ready) // stale, within grace
	h.waitFor("the failed refresh", func() bool { return h.Stats().Failures == failures+2 })
	if st := h.mustGet("k", Ready); st.Rev != "r2" {
		t.Errorf("last good config lost: %+v", st)
	}
}

func TestRunReturnsWithFetchInFlight(t *testing.T) {
	up := newUpstream()
	up.hold()
	c, err := New(Options{Fetch: up.Fetch, BatchInterval: time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); c.Run(ctx) }()
	c.Get("k")
	deadline := time.Now().Add(5 * time.Second)
	for up.inflight.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no request started")
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return")
	}
	if up.inflight.Load() != 0 {
		t.Error("Run returned with a fetch in flight")
	}
	if _, s := c.Get("k"); s != Pending {
		t.Errorf("k = %v after a cancelled fetch", s)
	}
}

// readyCache returns a cache holding n ready projects, without Run.
func readyCache(tb testing.TB, n int) (*Cache, []string) {
	c, err := New(Options{
		Fetch:  func(context.Context, *Request) (*Response, error) { return nil, errors.New("unused") },
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		tb.Fatal(err)
	}
	keys := make([]string, n)
	now := time.Now()
	for i := range keys {
		keys[i] = fmt.Sprintf("%032x", i+1)
		c.store(keys[i], projectJSON(keys[i], i+1, "r", ""), now, "")
	}
	for _, k := range keys {
		if _, s := c.Get(k); s != Ready {
			tb.Fatalf("%s not ready", k)
		}
	}
	return c, keys
}

func TestGetReadyDoesNotAllocate(t *testing.T) {
	c, keys := readyCache(t, 256)
	i := 0
	if a := testing.AllocsPerRun(1000, func() {
		c.Get(keys[i%len(keys)])
		i++
	}); a != 0 {
		t.Errorf("Get of a cached key: %v allocs, want 0", a)
	}
}

func BenchmarkGetReady(b *testing.B) {
	c, keys := readyCache(b, 1024)
	var notReady atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := rand.IntN(len(keys))
		for pb.Next() {
			if _, s := c.Get(keys[i%len(keys)]); s != Ready {
				notReady.Add(1)
			}
			i++
		}
	})
	if n := notReady.Load(); n != 0 {
		b.Fatalf("%d Gets not ready", n)
	}
}

// A key the upstream keeps answering pending is asked again after 1s, 2s,
// 4s, ... and given up Timeout after its first pending answer; it is still
// asked for, and recovers when its config comes.
func TestPendingBackoffAndGiveUp(t *testing.T) {
	const timeout = 10 * time.Second
	h := newHarness(t, Options{Concurrency: 1, Timeout: timeout})
	h.up.set("k", 1, "r1", "")
	h.up.with(func(u *upstream) { u.pending["k"] = true })
	h.mustGet("k", Pending)
	h.waitFor("a pending answer", func() bool { return h.Stats().Pending == 1 })
	elapsed := time.Duration(0)
	for i, d := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second} {
		h.clock.Advance(d - time.Millisecond)
		h.mustGet("k", Pending)
		h.barrier()
		if n := h.up.askedFor("k"); n != i+1 {
			t.Fatalf("asked %d times %v before retry %d, want %d", n, d-time.Millisecond, i+1, i+1)
		}
		h.clock.Advance(time.Millisecond)
		h.mustGet("k", Pending)
		h.waitFor("the retry", func() bool { return h.Stats().Pending == int64(i+2) })
		elapsed += d
		if h.GaveUp([]byte("k")) {
			t.Fatalf("given up after %v, want %v", elapsed, timeout)
		}
	}
	h.clock.Advance(timeout - elapsed)
	if !h.GaveUp([]byte("k")) {
		t.Fatalf("not given up after %v", timeout)
	}
	h.up.with(func(u *upstream) { u.pending["k"] = false })
	h.clock.Advance(8 * time.Second)
	h.mustGet("k", Pending)
	h.waitStatus("k", Ready)
	if h.GaveUp([]byte("k")) {
		t.Fatal("still given up with a config")
	}
}

// A disabled project is refreshed after MissExpiry, as Relay refreshes
// every state but an enabled project's (docs/relay-protocol.md §4.4).
func TestDisabledProjectRefreshedAfterMissExpiry(t *testing.T) {
	h := newHarness(t, Options{Concurrency: 1, Expiry: 300 * time.Second, MissExpiry: 10 * time.Second})
	h.up.setRaw("off", `{"projectId":9,"organizationId":1,"rev":"r1","disabled":true,"publicKeys":[{"publicKey":"off","numericId":9}],"config":{}}`)
	if st := h.waitStatus("off", Ready); !st.Disabled {
		t.Fatalf("state = %+v, want disabled", st)
	}
	h.clock.Advance(10*time.Second - time.Nanosecond)
	h.mustGet("off", Ready)
	h.barrier()
	if n := h.up.askedFor("off"); n != 1 {
		t.Fatalf("disabled project asked %d times within MissExpiry, want 1", n)
	}
	h.clock.Advance(time.Nanosecond)
	h.mustGet("off", Ready) // stale, within grace: still served while refreshed
	h.waitFor("the disabled project to be asked again", func() bool { return h.up.askedFor("off") == 2 })
}
