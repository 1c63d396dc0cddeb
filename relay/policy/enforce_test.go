package policy

import (
	"fmt"
	"testing"
	"time"

	"github.com/baton-relay/baton/relay/project"
)

// count is one class's charge of quota q at now through the in-memory
// counters, as applyQuotas makes it (an unshifted window: Org 0): whether
// it was over, and the wait until its window ends.
func count(e *Enforcer, q *project.Quota, st *project.State, key []byte, n int64, now time.Time) (time.Duration, bool) {
	var kb [128]byte
	cs := [1]Charge{{Key: quotaKey(kb[:0], q, st, key), Limit: *q.Limit, Window: q.Window, N: n}}
	sec := now.Unix()
	e.quotas.Count(cs[:], sec)
	_, end := cs[0].slot(sec) // the wait applyQuotas reports
	return time.Duration(end-sec) * time.Second, cs[0].Over
}

// TestQuotaCountersPruned drives the quota map through windows: counters
// of windows that ended are let go, the count stays bounded, and counting
// a known window allocates nothing.
func TestQuotaCountersPruned(t *testing.T) {
	limit := int64(3)
	st := &project.State{ProjectID: 7, OrganizationID: 9}
	q := &project.Quota{ID: "errors", Scope: "key", Limit: &limit, Window: 10}
	t0 := time.Unix(1_800_000_000, 0)
	var e Enforcer

	// A window counts up to its limit, and the next one starts afresh.
	key := []byte("a7c3e9f1b5d24680ace13579bdf02468")
	for i := range 3 {
		if _, over := count(&e, q, st, key, 1, t0); over {
			t.Fatalf("item %d over a limit of 3", i+1)
		}
	}
	if wait, over := count(&e, q, st, key, 1, t0); !over || wait != 10*time.Second {
		t.Fatalf("4th item: over %v wait %v, want over and 10s", over, wait)
	}
	if _, over := count(&e, q, st, key, 1, t0.Add(10*time.Second)); over {
		t.Fatal("next window still over")
	}

	// Many keys in one window, then one after a sweep: only the live one stays.
	for i := range 100 {
		count(&e, q, st, fmt.Appendf(nil, "key%03d", i), 1, t0.Add(10*time.Second))
	}
	if n := e.quotas.len(); n != 101 {
		t.Fatalf("%d counters, want 101", n)
	}
	later := t0.Add((10 + quotaSweepEvery + 10) * time.Second)
	count(&e, q, st, key, 1, later)
	if n := e.quotas.len(); n != 1 {
		t.Fatalf("%d counters after their windows ended, want 1", n)
	}

	// At the bound, windows that ended are swept at once; live ones are
	// kept and a new scope is let through uncounted.
	e.quotas.max = 8
	for i := range 20 {
		count(&e, q, st, fmt.Appendf(nil, "k%d", i), 1, later)
	}
	if n := e.quotas.len(); n != 8 {
		t.Fatalf("%d counters, want the bound 8", n)
	}
	if _, over := count(&e, q, st, []byte("new"), 5, later); over {
		t.Fatal("a scope past the bound was limited")
	}
	next := later.Add(10 * time.Second) // every window ended; no periodic sweep due
	if _, over := count(&e, q, st, []byte("new"), 1, next); over {
		t.Fatal("over in a fresh window")
	}
	if n := e.quotas.len(); n != 1 {
		t.Fatalf("%d counters after a sweep at the bound, want 1", n)
	}

	// Looking up a known window allocates nothing, for every scope kind.
	for _, scope := range []string{"key", "project", "organization", "global"} {
		q := &project.Quota{ID: "errors", Scope: scope, Limit: &limit, Window: 3600}
		count(&e, q, st, key, 0, next)
		if a := testing.AllocsPerRun(100, func() { count(&e, q, st, key, 0, next) }); a != 0 {
			t.Fatalf("scope %s: %v allocations per count", scope, a)
		}
	}
}

// BenchmarkQuotaCountersAdd is one quota decision counted in memory, the
// local counterpart of relay/fleet's BenchmarkCounterAdd.
func BenchmarkQuotaCountersAdd(b *testing.B) {
	var qc quotaCounters
	key := []byte("bench\x00p1")
	now := time.Now().Unix()
	b.ReportAllocs()
	for b.Loop() {
		if qc.Add(key, 1<<40, 3600, 1, now) {
			b.Fatal("over")
		}
	}
}
