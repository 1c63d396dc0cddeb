package aggregate

import (
	"errors"
	"slices"
	"testing"
	"time"
)

// fakeStore admits up to each check's limit per (project, namespace),
// forever, and records its calls; with fail set it errs.
type fakeStore struct {
	calls  int
	checks []SeriesCheck
	sets   map[limitKey]map[uint64]bool
	fail   bool
}

func (f *fakeStore) AdmitSeries(_ time.Time, checks []SeriesCheck, ok []bool) error {
	f.calls++
	f.checks = append(f.checks, checks...)
	if f.fail {
		return errors.New("store down")
	}
	if f.sets == nil {
		f.sets = map[limitKey]map[uint64]bool{}
	}
	for i, c := range checks {
		k := limitKey{project: c.Project, namespace: c.Namespace, id: c.ID, scope: c.Scope, value: c.Value}
		if f.sets[k] == nil {
			f.sets[k] = map[uint64]bool{}
		}
		set := f.sets[k]
		if !set[c.Hash] && len(set) < c.Limit {
			set[c.Hash] = true
		}
		ok[i] = set[c.Hash]
	}
	return nil
}

func batch(l *Limiter, project uint64, ns string, hashes ...uint64) []bool {
	se := make([]Series, len(hashes))
	for i, h := range hashes {
		se[i] = Series{Project: project, Namespace: ns, Hash: h}
	}
	ok := make([]bool, len(hashes))
	l.AdmitBatch(se, ok)
	return ok
}

// TestLimiterStoreBatch: with a Store, one batch is one call, series the
// store admitted in this granule are answered from the cache, and a new
// granule asks the store again; project windows reach the store.
func TestLimiterStoreBatch(t *testing.T) {
	clk := newClock(base - base%3600)
	f := &fakeStore{}
	l := NewLimiter(LimitOptions{Limit: 3, Now: clk.Now, Store: f})
	l.SetProjectLimits(2, 0, []ProjectLimit{{ID: "w", Limit: 2, Window: time.Hour, Granularity: 10 * time.Minute}})
	got := batch(l, 1, "custom", 1, 2, 3, 4, 0)
	if want := []bool{true, true, true, false, false}; !slices.Equal(got, want) {
		t.Fatalf("first batch %v, want %v", got, want)
	}
	if f.calls != 1 {
		t.Fatalf("%d store calls for one batch, want 1", f.calls)
	}
	if c := f.checks[0]; c.Limit != 3 || c.Window != time.Hour || c.Granularity != time.Hour {
		t.Errorf("check %+v: want limit 3 over the default hour in one granule", c)
	}
	// Admitted ones come from the cache; the refused ones ask again.
	got = batch(l, 1, "custom", 1, 2, 3, 4)
	if want := []bool{true, true, true, false}; !slices.Equal(got, want) || f.calls != 2 || len(f.checks) != 6 {
		t.Fatalf("second batch %v (%d calls, %d checks), want %v from 1 call of 1 check", got, f.calls, len(f.checks), want)
	}
	if st := l.Stats(); st.Cached != 3 || st.Stored != 6 || st.Admitted != 6 || st.Limited != 3 || st.Fallbacks != 0 {
		t.Fatalf("stats %+v", st)
	}
	batch(l, 2, "spans", 7)
	if c := f.checks[len(f.checks)-1]; c.Limit != 2 || c.Window != time.Hour || c.Granularity != 10*time.Minute {
		t.Errorf("project check %+v: want limit 2, 1h in 10m granules", c)
	}
	// The next granule of project 2 asks the store again.
	clk.t = clk.t.Add(10 * time.Minute)
	calls := f.calls
	if !batch(l, 2, "spans", 7)[0] || f.calls != calls+1 {
		t.Fatalf("a series of the last granule: want admitted by a new store call")
	}
}

// TestLimiterStoreFallback: while the store fails, the local sets decide,
// and they know the series the store admitted before.
func TestLimiterStoreFallback(t *testing.T) {
	clk := newClock(base)
	f := &fakeStore{}
	l := NewLimiter(LimitOptions{Limit: 3, Now: clk.Now, Store: f})
	batch(l, 1, "custom", 1, 2)
	f.fail = true
	clk.t = clk.t.Add(2 * time.Hour) // a new granule: nothing cached
	got := batch(l, 1, "custom", 1, 2, 3, 4)
	// The local hour rolled too: its set starts empty, so 1 and 2 are
	// admitted again there, then 3, and 4 is over.
	if want := []bool{true, true, true, false}; !slices.Equal(got, want) {
		t.Fatalf("fallback %v, want %v", got, want)
	}
	if st := l.Stats(); st.Fallbacks != 4 {
		t.Fatalf("stats %+v: want 4 fallbacks", st)
	}
	// Within one local window the fallback knows what the store admitted.
	f.fail = false
	clk.t = clk.t.Add(time.Hour)
	batch(l, 5, "custom", 10, 11, 12)
	f.fail = true
	clk.t = clk.t.Add(time.Second)
	if got := batch(l, 5, "custom", 10, 11, 12, 13); !slices.Equal(got, []bool{true, true, true, false}) {
		t.Fatalf("fallback after store admissions: %v, want the 3 known admitted, the new one over", got)
	}
}

// TestLimiterStoreUnlimited: without any limit the store is never asked.
func TestLimiterStoreUnlimited(t *testing.T) {
	f := &fakeStore{}
	l := NewLimiter(LimitOptions{Store: f})
	if got := batch(l, 1, "custom", 1, 2); !slices.Equal(got, []bool{true, true}) || f.calls != 0 {
		t.Fatalf("%v, %d calls: want all admitted without the store", got, f.calls)
	}
}
