package policy

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/baton-relay/baton/config"
	"github.com/baton-relay/baton/envelope"
	"github.com/baton-relay/baton/relay/internal/testutil"
	"github.com/baton-relay/baton/relay/outcome"
	"github.com/baton-relay/baton/relay/project"
)

// clock is an injected clock the test moves by hand.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

var t0 = time.Date(2027, 1, 1, 12, 0, 0, 0, time.UTC)

func decode(t *testing.T, cfg string) *Admission {
	t.Helper()
	st, err := project.DecodeState([]byte(`{"projectId":1,"organizationId":2,"publicKeys":[{"publicKey":"` + keyA + `","numericId":3}],"config":` + cfg + `}`))
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Broken) > 0 {
		t.Fatalf("broken parts: %v", st.Broken)
	}
	return &Admission{State: st}
}

func items(counts map[envelope.Class]int) *[envelope.NumClasses]int {
	var n [envelope.NumClasses]int
	for c, k := range counts {
		n[c] = k
	}
	return &n
}

// wantDrops checks which classes v drops, and why.
func wantDrops(t *testing.T, v *Verdict, want map[envelope.Class]outcome.Reason) {
	t.Helper()
	for c := range envelope.NumClasses {
		why, drop := want[c]
		if v.Drop[c] != drop || drop && v.Why[c] != why {
			t.Errorf("%s: drop %v (%v), want %v (%v)", c, v.Drop[c], v.Why[c], drop, why)
		}
	}
}

const traceHdr = `{"trace":{"trace_id":"0123456789abcdef0123456789abcdef","release":"0.9.1","public_key":"` + keyA + `"}}`

// TestVerdictFilters: the client address filter drops all but client
// reports; the release filter drops the events whose trace context names
// a blocked release; a filter-less project never asks for the address.
func TestVerdictFilters(t *testing.T) {
	e := NewEnforcer(Options{})
	var v Verdict
	in := items(map[envelope.Class]int{envelope.ClassError: 2, envelope.ClassClientReport: 1, envelope.ClassAttachment: 1})

	a := decode(t, `{"filterSettings":{"clientIps":{"blacklistedIps":["10.0.0.0/8"]}}}`)
	e.Apply(&v, a, []byte(keyA), in, nil, func() netip.Addr { return netip.MustParseAddr("10.1.2.3") }, nil)
	wantDrops(t, &v, map[envelope.Class]outcome.Reason{envelope.ClassError: outcome.ReasonFiltered, envelope.ClassAttachment: outcome.ReasonFiltered})
	e.Apply(&v, a, []byte(keyA), in, nil, func() netip.Addr { return netip.MustParseAddr("192.0.2.1") }, nil)
	wantDrops(t, &v, nil)

	a = decode(t, `{"filterSettings":{"releases":{"releases":["0.9.*"]}}}`)
	e.Apply(&v, a, []byte(keyA), in, []byte(traceHdr), nil, nil)
	wantDrops(t, &v, map[envelope.Class]outcome.Reason{envelope.ClassError: outcome.ReasonFiltered})
	e.Apply(&v, a, []byte(keyA), in, []byte(`{}`), nil, nil) // no trace context: left to the processing relay
	wantDrops(t, &v, nil)

	asked := false
	e.Apply(&v, decode(t, `{}`), []byte(keyA), in, nil, func() netip.Addr { asked = true; return netip.Addr{} }, nil)
	if asked {
		t.Error("the client address was read for a project without an address filter")
	}
	wantDrops(t, &v, nil)
}

// TestVerdictReplayFeature: replays need the session-replay feature when
// the project sends its features; without the features part nothing is
// turned off.
func TestVerdictReplayFeature(t *testing.T) {
	e := NewEnforcer(Options{})
	var v Verdict
	in := items(map[envelope.Class]int{envelope.ClassReplay: 1, envelope.ClassError: 1})
	e.Apply(&v, decode(t, `{"features":[]}`), []byte(keyA), in, nil, nil, nil)
	wantDrops(t, &v, map[envelope.Class]outcome.Reason{envelope.ClassReplay: outcome.ReasonFeatureDisabled})
	e.Apply(&v, decode(t, `{"features":["organizations:session-replay"]}`), []byte(keyA), in, nil, nil, nil)
	wantDrops(t, &v, nil)
	e.Apply(&v, decode(t, `{}`), []byte(keyA), in, nil, nil, nil)
	wantDrops(t, &v, nil)
}

// TestVerdictQuota: a counted quota drops a class once its window is
// exhausted and reports a rate limit until the window ends; the next
// window counts afresh; a zero quota drops at once for a minute.
func TestVerdictQuota(t *testing.T) {
	clk := &clock{t: t0.Add(15 * time.Second)} // 15s into a 60s window
	e := NewEnforcer(Options{Now: clk.now})
	var v Verdict
	a := decode(t, `{"quotas":[{"id":"q1","categories":["error"],"scope":"project","limit":2,"window":60,"reasonCode":"too_many"}]}`)
	errs := items(map[envelope.Class]int{envelope.ClassError: 1, envelope.ClassSession: 1})
	for i := range 2 {
		e.Apply(&v, a, []byte(keyA), errs, nil, nil, nil)
		if v.Drop[envelope.ClassError] || len(v.RateLimits) > 0 {
			t.Fatalf("envelope %d limited: %+v", i+1, v)
		}
	}
	e.Apply(&v, a, []byte(keyA), errs, nil, nil, nil)
	wantDrops(t, &v, map[envelope.Class]outcome.Reason{envelope.ClassError: outcome.ReasonRateLimited})
	// Organization 2: its windows start 2 s into the minute (Relay's
	// shift, org % window), so this one ends in 47 s, not 45.
	want := RateLimit{After: 47 * time.Second, Category: envelope.CategoryError, Scope: "project", Reason: "too_many"}
	if len(v.RateLimits) != 1 || v.RateLimits[0] != want {
		t.Fatalf("rate limits %+v, want [%+v]", v.RateLimits, want)
	}
	clk.t = clk.t.Add(45 * time.Second)
	if e.Apply(&v, a, []byte(keyA), errs, nil, nil, nil); !v.Drop[envelope.ClassError] {
		t.Fatal("admitted at the unshifted minute: the window was not shifted")
	}
	clk.t = clk.t.Add(2 * time.Second) // the next window
	e.Apply(&v, a, []byte(keyA), errs, nil, nil, nil)
	if v.Drop[envelope.ClassError] || len(v.RateLimits) > 0 {
		t.Fatalf("limited in a fresh window: %+v", v)
	}

	a = decode(t, `{"quotas":[{"categories":["session"],"scope":"organization","limit":0}]}`)
	e.Apply(&v, a, []byte(keyA), errs, nil, nil, nil)
	wantDrops(t, &v, map[envelope.Class]outcome.Reason{envelope.ClassSession: outcome.ReasonRateLimited})
	want = RateLimit{After: time.Minute, Category: envelope.CategorySession, Scope: "organization"}
	if len(v.RateLimits) != 1 || v.RateLimits[0] != want {
		t.Fatalf("rate limits %+v, want [%+v]", v.RateLimits, want)
	}
}

// TestVerdictStaticRate: a static project's events_per_second drops
// events past the bucket and says when it refills; the clock refills it.
func TestVerdictStaticRate(t *testing.T) {
	clk := &clock{t: t0}
	cfg := config.Config{Mode: config.ModeStatic, Projects: map[string]config.Project{"1": {PublicKeys: []string{keyA}, AllowedDomains: []string{"*"}}}}
	p := cfg.Projects["1"]
	p.RateLimit.EventsPerSecond = 2
	cfg.Projects["1"] = p
	prj, err := New(cfg, nil, Options{Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	e := NewEnforcer(Options{Now: clk.now})
	var v Verdict
	a := prj.Admit(1, []byte(keyA), nil)
	e.Apply(&v, &a, []byte(keyA), items(map[envelope.Class]int{envelope.ClassError: 2}), nil, nil, nil)
	wantDrops(t, &v, nil)
	e.Apply(&v, &a, []byte(keyA), items(map[envelope.Class]int{envelope.ClassError: 1, envelope.ClassSession: 1}), nil, nil, nil)
	wantDrops(t, &v, map[envelope.Class]outcome.Reason{envelope.ClassError: outcome.ReasonRateLimited})
	want := RateLimit{After: 500 * time.Millisecond, Category: envelope.CategoryError, Scope: "project", Reason: "events_per_second"}
	if len(v.RateLimits) != 1 || v.RateLimits[0] != want {
		t.Fatalf("rate limits %+v, want [%+v]", v.RateLimits, want)
	}
	clk.t = clk.t.Add(500 * time.Millisecond)
	e.Apply(&v, &a, []byte(keyA), items(map[envelope.Class]int{envelope.ClassError: 1}), nil, nil, nil)
	wantDrops(t, &v, nil)
}

// TestVerdictSampling: a transaction whose trace a rule samples out is
// dropped as sampled, while the rule's time range (read on the injected
// clock) holds; errors are never sampled here.
func TestVerdictSampling(t *testing.T) {
	clk := &clock{t: t0}
	e := NewEnforcer(Options{Now: clk.now})
	var v Verdict
	a := decode(t, `{"sampling":{"version":2,"rules":[{"id":1,"type":"trace","samplingValue":{"type":"sampleRate","value":0},
		"condition":{"op":"and","inner":[]},"timeRange":{"start":"2027-01-01T13:00:00Z","end":"2027-01-01T14:00:00Z"}}]}}`)
	in := items(map[envelope.Class]int{envelope.ClassTransaction: 1, envelope.ClassError: 1})
	e.Apply(&v, a, []byte(keyA), in, []byte(traceHdr), nil, nil)
	wantDrops(t, &v, nil) // before the rule's range: kept
	clk.t = t0.Add(90 * time.Minute)
	e.Apply(&v, a, []byte(keyA), in, []byte(traceHdr), nil, nil)
	wantDrops(t, &v, map[envelope.Class]outcome.Reason{envelope.ClassTransaction: outcome.ReasonSampled})
	e.Apply(&v, a, []byte(keyA), in, []byte(`{}`), nil, nil) // no trace id: kept
	wantDrops(t, &v, nil)
}

// TestVerdictProxy: without a state or a rate, the verdict is empty and
// its rate-limit array is reused; nothing is allocated.
func TestVerdictProxy(t *testing.T) {
	e := NewEnforcer(Options{})
	v := Verdict{RateLimits: make([]RateLimit, 1, 4)}
	v.Drop[envelope.ClassError] = true
	in := items(map[envelope.Class]int{envelope.ClassError: 1})
	var a Admission
	e.Apply(&v, &a, []byte(keyA), in, nil, nil, nil)
	if v.Drop[envelope.ClassError] || len(v.RateLimits) != 0 || cap(v.RateLimits) != 4 {
		t.Fatalf("verdict not reset: %+v", v)
	}
	if n := testing.AllocsPerRun(100, func() { e.Apply(&v, &a, []byte(keyA), in, nil, nil, nil) }); n != 0 {
		t.Errorf("Apply allocates %v times", n)
	}
}

// TestVerdictQuotasCheckedFirst: as Relay, a class is counted only when
// every quota covering it admits it. A project quota listed before a key
// quota that refuses is not charged for the refused items; a quota
// covering two classes sees them in order, the first admitted and the
// second refused whole; and a decision allocates nothing.
func TestVerdictQuotasCheckedFirst(t *testing.T) {
	clk := &clock{t: t0}
	e := NewEnforcer(Options{Now: clk.now})
	var v Verdict
	a := decode(t, `{"quotas":[
		{"id":"proj","categories":["error"],"scope":"project","limit":10,"window":60},
		{"id":"key","categories":["error"],"scope":"key","limit":1,"window":60,"reasonCode":"key_quota"}]}`)
	errs := items(map[envelope.Class]int{envelope.ClassError: 1})
	admitted := func(key string, n int) int {
		ok := 0
		for range n {
			if e.Apply(&v, a, []byte(key), errs, nil, nil, nil); !v.Drop[envelope.ClassError] {
				ok++
			}
		}
		return ok
	}
	if n := admitted(keyA, 5); n != 1 {
		t.Fatalf("key A: %d of 5 admitted, want its key quota's 1", n)
	}
	if len(v.RateLimits) != 1 || v.RateLimits[0].Reason != "key_quota" {
		t.Fatalf("rate limits %+v, want only the key quota's", v.RateLimits)
	}
	// The project quota counted 1, not 5: 9 more fit, through other keys.
	ok := 0
	for i := range 12 {
		ok += admitted(fmt.Sprintf("%032x", i), 1)
	}
	if ok != 9 {
		t.Fatalf("%d admitted through other keys, want 9 (project quota 10, 1 counted)", ok)
	}

	// One quota over both classes: errors (first) fit, the transactions
	// would not and are refused without being counted.
	a = decode(t, `{"quotas":[{"id":"all","scope":"project","limit":3,"window":60}]}`)
	both := items(map[envelope.Class]int{envelope.ClassError: 1, envelope.ClassTransaction: 3})
	e.Apply(&v, a, []byte(keyA), both, nil, nil, nil)
	wantDrops(t, &v, map[envelope.Class]outcome.Reason{envelope.ClassTransaction: outcome.ReasonRateLimited})
	e.Apply(&v, a, []byte(keyA), items(map[envelope.Class]int{envelope.ClassTransaction: 2}), nil, nil, nil)
	wantDrops(t, &v, nil)
	e.Apply(&v, a, []byte(keyA), errs, nil, nil, nil)
	wantDrops(t, &v, map[envelope.Class]outcome.Reason{envelope.ClassError: outcome.ReasonRateLimited})

	if testutil.RaceEnabled {
		return // sync.Pool drops its buffers at random
	}
	if n := testing.AllocsPerRun(100, func() { e.Apply(&v, a, []byte(keyA), both, nil, nil, nil) }); n != 0 {
		t.Errorf("%v allocations per decision", n)
	}
}
