package policy

import (
	"fmt"
	"testing"
	"time"

	"github.com/baton-relay/baton/envelope"
	"github.com/baton-relay/baton/relay/outcome"
	"github.com/baton-relay/baton/relay/project"
)

const (
	upKeyA = "a7c3e9f1b5d24680ace13579bdf02468"
	upKeyB = "b7c3e9f1b5d24680ace13579bdf02468"
)

// upClock is an injected clock tests move by hand.
type upClock struct{ t time.Time }

func (c *upClock) now() time.Time { return c.t }

func newUpEnforcer() (*Enforcer, *upClock) {
	c := &upClock{t: time.Unix(1_800_000_000, 0)}
	return NewEnforcer(Options{Now: c.now}), c
}

// upItems is one item of each class given.
func upItems(classes ...envelope.Class) *[envelope.NumClasses]int {
	var in [envelope.NumClasses]int
	for _, c := range classes {
		in[c] = 1
	}
	return &in
}

// TestUpstreamLimitsScope checks which requests a cached limit applies to,
// per scope: a key limit to its key, a project limit to every key of the
// project, an organization limit to the organization's projects (or to the
// project when the organization was not known), a global one to all.
func TestUpstreamLimitsScope(t *testing.T) {
	type req struct {
		org, pid uint64
		key      string
		limited  bool
	}
	cases := []struct {
		name  string
		sc    Scoping
		scope string
		reqs  []req
	}{
		{"key", Scoping{ProjectID: 42, PublicKey: upKeyA}, "key", []req{
			{0, 42, upKeyA, true}, {0, 42, upKeyB, false}, {0, 43, upKeyA, true}}},
		{"unknown scope is key", Scoping{ProjectID: 42, PublicKey: upKeyA}, "team", []req{
			{0, 42, upKeyA, true}, {0, 42, upKeyB, false}}},
		{"project", Scoping{ProjectID: 42, PublicKey: upKeyA}, "project", []req{
			{0, 42, upKeyA, true}, {0, 42, upKeyB, true}, {0, 43, upKeyA, false}}},
		{"organization", Scoping{OrganizationID: 7, ProjectID: 42, PublicKey: upKeyA}, "organization", []req{
			{7, 43, upKeyB, true}, {8, 42, upKeyB, false}, {0, 42, upKeyA, false}}},
		{"organization not known", Scoping{ProjectID: 42, PublicKey: upKeyA}, "organization", []req{
			{0, 42, upKeyB, true}, {7, 42, upKeyB, true}, {7, 43, upKeyA, false}}},
		{"global", Scoping{ProjectID: 42, PublicKey: upKeyA}, "global", []req{
			{0, 1, upKeyB, true}, {9, 43, upKeyA, true}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e, _ := newUpEnforcer()
			e.Upstream().Record(tc.sc, []UpstreamLimit{{RetryAfter: time.Minute, Categories: []string{"error"}, Scope: tc.scope}})
			for _, r := range tc.reqs {
				var v Verdict
				a := Admission{ProjectID: r.pid}
				if r.org != 0 {
					a.State = &project.State{ProjectID: r.pid, OrganizationID: r.org}
				}
				e.Apply(&v, &a, []byte(r.key), upItems(envelope.ClassError), nil, nil, nil)
				if v.Drop[envelope.ClassError] != r.limited {
					t.Errorf("org %d project %d key %.1s…: limited %v, want %v", r.org, r.pid, r.key, v.Drop[envelope.ClassError], r.limited)
				}
			}
		})
	}
}

// TestUpstreamLimitsCategories checks that a limit drops only the classes
// of its categories, reports itself once with the categories it was given,
// and that a limit without categories drops everything but client reports.
func TestUpstreamLimitsCategories(t *testing.T) {
	e, _ := newUpEnforcer()
	sc := Scoping{ProjectID: 42, PublicKey: upKeyA}
	e.Upstream().Record(sc, []UpstreamLimit{
		{RetryAfter: time.Minute, Categories: []string{"transaction", "error"}, Scope: "project", Reason: "quota"},
		{RetryAfter: time.Minute, Categories: []string{"no_such_category"}, Scope: "project"}, // applies to nothing
		{RetryAfter: time.Minute, Categories: []string{"metric_bucket"}, Scope: "project", Namespaces: []string{"custom"}},
	})
	var v Verdict
	a := Admission{ProjectID: 42}
	e.Apply(&v, &a, []byte(upKeyA), upItems(envelope.ClassError, envelope.ClassTransaction, envelope.ClassCheckIn, envelope.ClassMetric), nil, nil, nil)
	if !v.Drop[envelope.ClassError] || !v.Drop[envelope.ClassTransaction] || v.Why[envelope.ClassError] != outcome.ReasonRateLimited {
		t.Fatalf("error and transaction not rate limited: %+v", v)
	}
	if v.Drop[envelope.ClassCheckIn] || v.Drop[envelope.ClassMetric] {
		t.Fatalf("a class outside the limits dropped: %+v", v.Drop)
	}
	want := RateLimit{After: time.Minute, Category: envelope.CategoryUnknown, Scope: "project", Reason: "quota", Cached: true, Categories: "error;transaction"}
	if len(v.RateLimits) != 1 || v.RateLimits[0] != want {
		t.Fatalf("rate limits %+v, want [%+v]", v.RateLimits, want)
	}

	e.Upstream().Record(sc, []UpstreamLimit{{RetryAfter: time.Minute, Scope: "key"}})
	e.Apply(&v, &a, []byte(upKeyA), upItems(envelope.ClassCheckIn, envelope.ClassClientReport), nil, nil, nil)
	if !v.Drop[envelope.ClassCheckIn] || v.Drop[envelope.ClassClientReport] {
		t.Fatalf("all-category limit: drops %+v, want the check-in and not the client report", v.Drop)
	}
	if len(v.RateLimits) != 1 || v.RateLimits[0].Categories != "" || v.RateLimits[0].Scope != "key" {
		t.Fatalf("all-category limit reported as %+v", v.RateLimits)
	}
}

// TestUpstreamLimitsExpiry moves the injected clock: the reported wait
// shrinks, a longer limit of the same categories replaces a shorter one,
// and nothing applies once the limit ended.
func TestUpstreamLimitsExpiry(t *testing.T) {
	e, clock := newUpEnforcer()
	sc := Scoping{ProjectID: 42, PublicKey: upKeyA}
	e.Upstream().Record(sc, []UpstreamLimit{{RetryAfter: 10 * time.Second, Categories: []string{"error"}, Scope: "project"}})
	e.Upstream().Record(sc, []UpstreamLimit{{RetryAfter: 5 * time.Second, Categories: []string{"error"}, Scope: "project"}}) // shorter: kept the longer
	a := Admission{ProjectID: 42}
	var v Verdict
	clock.t = clock.t.Add(4 * time.Second)
	e.Apply(&v, &a, []byte(upKeyA), upItems(envelope.ClassError), nil, nil, nil)
	if len(v.RateLimits) != 1 || v.RateLimits[0].After != 6*time.Second {
		t.Fatalf("after 4s: %+v, want one limit with 6s left", v.RateLimits)
	}
	e.Upstream().Record(sc, []UpstreamLimit{{RetryAfter: 20 * time.Second, Categories: []string{"error"}, Scope: "project"}})
	e.Apply(&v, &a, []byte(upKeyA), upItems(envelope.ClassError), nil, nil, nil)
	if len(v.RateLimits) != 1 || v.RateLimits[0].After != 20*time.Second {
		t.Fatalf("after a longer limit: %+v, want one limit of 20s", v.RateLimits)
	}
	clock.t = clock.t.Add(20 * time.Second)
	e.Apply(&v, &a, []byte(upKeyA), upItems(envelope.ClassError), nil, nil, nil)
	if v.Drop[envelope.ClassError] || len(v.RateLimits) != 0 {
		t.Fatalf("limit applied after it ended: %+v", v)
	}
}

// TestUpstreamLimitsBound fills the cache to its bound: a new scope is not
// cached while the others are live, and is once they ended. Looking up a
// request without a limit allocates nothing, with limits of other scopes
// cached or not.
func TestUpstreamLimitsBound(t *testing.T) {
	e, clock := newUpEnforcer()
	u := e.Upstream()
	u.max = 4
	lim := []UpstreamLimit{{RetryAfter: 10 * time.Second, Scope: "project"}}
	a := Admission{ProjectID: 1000}
	var v Verdict
	in := upItems(envelope.ClassError)
	if n := testing.AllocsPerRun(100, func() { e.Apply(&v, &a, []byte(upKeyA), in, nil, nil, nil) }); n != 0 {
		t.Fatalf("empty cache: %v allocations per Apply", n)
	}
	for pid := range uint64(10) {
		u.Record(Scoping{ProjectID: pid + 1, PublicKey: upKeyA}, lim)
	}
	if u.nscopes != 4 {
		t.Fatalf("%d scopes cached, want the bound 4", u.nscopes)
	}
	for pid := range uint64(10) {
		a := Admission{ProjectID: pid + 1}
		e.Apply(&v, &a, []byte(upKeyA), in, nil, nil, nil)
		if want := pid < 4; v.Drop[envelope.ClassError] != want {
			t.Errorf("project %d: limited %v, want %v", pid+1, v.Drop[envelope.ClassError], want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { e.Apply(&v, &a, []byte(upKeyA), in, nil, nil, nil) }); n != 0 {
		t.Fatalf("other scopes cached: %v allocations per Apply", n)
	}
	clock.t = clock.t.Add(10 * time.Second)
	u.Record(Scoping{ProjectID: 1000, PublicKey: upKeyA}, lim)
	if u.nscopes != 1 {
		t.Fatalf("%d scopes after the others ended, want 1", u.nscopes)
	}
	e.Apply(&v, &a, []byte(upKeyA), in, nil, nil, nil)
	if !v.Drop[envelope.ClassError] {
		t.Fatal("a limit recorded after a sweep does not apply")
	}
}

// TestUpstreamLimitsConcurrent records and looks up from many goroutines
// (run with -race).
func TestUpstreamLimitsConcurrent(t *testing.T) {
	e := NewEnforcer(Options{})
	done := make(chan struct{})
	for g := range 4 {
		go func() {
			defer func() { done <- struct{}{} }()
			var v Verdict
			for i := range 200 {
				pid := uint64(i % 16)
				e.Upstream().Record(Scoping{ProjectID: pid, PublicKey: fmt.Sprint(g)}, []UpstreamLimit{{RetryAfter: time.Second, Categories: []string{"error"}, Scope: "key"}})
				a := Admission{ProjectID: pid}
				e.Apply(&v, &a, []byte(fmt.Sprint(g)), upItems(envelope.ClassError), nil, nil, nil)
				if !v.Drop[envelope.ClassError] {
					t.Error("a key's own limit did not apply")
					return
				}
			}
		}()
	}
	for range 4 {
		<-done
	}
}
