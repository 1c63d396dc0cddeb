package aggregate

import (
	"fmt"
	"testing"
)

// TestLimiterProjectScopes: a project's configured limits count per their
// scope (organization, project, type, name), several apply to one
// namespace (a series passes only if none rejects it), a limit of another
// namespace does not apply, and a passive limit counts but never rejects.
// The same answers locally and with a Store.
func TestLimiterProjectScopes(t *testing.T) {
	type step struct {
		project uint64
		mri     string
		hash    uint64
		want    bool
	}
	lim := func(scope string, limit int) ProjectLimit {
		return ProjectLimit{ID: scope, Scope: scope, Limit: limit}
	}
	cases := []struct {
		name    string
		org     uint64 // of projects 1 and 2
		limits  []ProjectLimit
		steps   []step
		passive uint64 // want Stats().Passive
	}{
		{"project", 0, []ProjectLimit{lim(ScopeProject, 2)}, []step{
			{1, "c:custom/a@none", 1, true}, {1, "c:custom/b@none", 2, true},
			{1, "c:custom/c@none", 3, false}, {1, "c:custom/a@none", 1, true},
			{2, "c:custom/a@none", 3, true}, // another project
		}, 0},
		{"organization", 9, []ProjectLimit{lim(ScopeOrganization, 2)}, []step{
			{1, "c:custom/a@none", 1, true}, {2, "c:custom/a@none", 2, true},
			{2, "c:custom/a@none", 3, false}, {1, "c:custom/a@none", 4, false},
		}, 0},
		{"organization unknown counts per project", 0, []ProjectLimit{lim(ScopeOrganization, 2)}, []step{
			{1, "c:custom/a@none", 1, true}, {2, "c:custom/a@none", 2, true},
			{2, "c:custom/a@none", 3, true}, {1, "c:custom/a@none", 4, true},
			{1, "c:custom/a@none", 5, false},
		}, 0},
		{"type", 0, []ProjectLimit{lim(ScopeType, 1)}, []step{
			{1, "c:custom/a@none", 1, true}, {1, "d:custom/b@none", 2, true},
			{1, "c:custom/c@none", 3, false}, {1, "s:custom/a@none", 4, true},
		}, 0},
		{"name", 0, []ProjectLimit{lim(ScopeName, 1)}, []step{
			{1, "c:custom/a@none", 1, true}, {1, "c:custom/a@none", 2, false},
			{1, "c:custom/b@none", 3, true}, {1, "c:custom/b@none", 4, false},
			{1, "c:custom/a@none", 1, true},
		}, 0},
		{"other namespace", 0, []ProjectLimit{{ID: "s", Namespace: "spans", Limit: 1}}, []step{
			{1, "c:custom/a@none", 1, true}, {1, "c:custom/a@none", 2, true}, // the default: unlimited
			{1, "d:spans/a@none", 3, true}, {1, "d:spans/a@none", 4, false},
		}, 0},
		{"passive", 0, []ProjectLimit{{ID: "p", Passive: true, Limit: 1}}, []step{
			{1, "c:custom/a@none", 1, true}, {1, "c:custom/a@none", 2, true}, {1, "c:custom/a@none", 3, true},
		}, 2},
		{"name and passive project", 0, []ProjectLimit{lim(ScopeName, 1), {ID: "p", Passive: true, Limit: 1}}, []step{
			{1, "c:custom/a@none", 1, true}, {1, "c:custom/a@none", 2, false}, {1, "c:custom/b@none", 3, true},
		}, 2},
		{"each limit counts", 0, []ProjectLimit{lim(ScopeName, 1), lim(ScopeProject, 2)}, []step{
			{1, "c:custom/a@none", 1, true},
			{1, "c:custom/a@none", 2, false}, // the name limit rejects; the project limit counts it
			{1, "c:custom/b@none", 3, false}, // the project limit is full
		}, 0},
	}
	for _, tc := range cases {
		for _, store := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/store=%v", tc.name, store), func(t *testing.T) {
				o := LimitOptions{Now: newClock(base).Now}
				if store {
					o.Store = &fakeStore{}
				}
				l := NewLimiter(o)
				l.SetProjectLimits(1, tc.org, tc.limits)
				l.SetProjectLimits(2, tc.org, tc.limits)
				for i, s := range tc.steps {
					se := Series{Project: s.project, Namespace: Namespace(s.mri), Hash: s.hash, Name: s.mri}
					if got := l.AdmitSeries(se); got != s.want {
						t.Fatalf("step %d %+v: admitted %v, want %v", i, s, got, s.want)
					}
				}
				if st := l.Stats(); st.Passive != tc.passive {
					t.Errorf("passive = %d, want %d", st.Passive, tc.passive)
				}
			})
		}
	}
}

// TestLimiterProjectLimitsStoreKeys: the checks a Store gets name the
// limit, its scope and the scope's value, in the organization's id for
// organization limits; removing a project's limits restores the default.
func TestLimiterProjectLimitsStoreKeys(t *testing.T) {
	f := &fakeStore{}
	l := NewLimiter(LimitOptions{Now: newClock(base).Now, Store: f})
	l.SetProjectLimits(1, 9, []ProjectLimit{
		{ID: "o", Scope: ScopeOrganization, Limit: 5}, {ID: "t", Scope: ScopeType, Limit: 5},
		{ID: "n", Scope: ScopeName, Limit: 5}, {ID: "p", Limit: 5},
	})
	ok := make([]bool, 1)
	l.AdmitBatch([]Series{{Project: 1, Namespace: "custom", Hash: 7, Name: "c:custom/x@none"}}, ok)
	if !ok[0] || len(f.checks) != 4 {
		t.Fatalf("ok %v, checks %+v", ok, f.checks)
	}
	want := []SeriesCheck{
		{Project: 9, ID: "o", Scope: ScopeOrganization},
		{Project: 1, ID: "t", Scope: ScopeType, Value: "c"},
		{Project: 1, ID: "n", Scope: ScopeName, Value: "c:custom/x@none"},
		{Project: 1, ID: "p", Scope: ScopeProject},
	}
	for i, c := range f.checks {
		w := want[i]
		if c.Project != w.Project || c.ID != w.ID || c.Scope != w.Scope || c.Value != w.Value || c.Namespace != "custom" || c.Limit != 5 {
			t.Errorf("check %d = %+v, want %+v", i, c, w)
		}
	}
	l.SetProjectLimits(1, 9, nil)
	if !l.AdmitSeries(Series{Project: 1, Namespace: "custom", Hash: 8}) || len(f.checks) != 4 {
		t.Errorf("without limits: %d checks, want none more (unlimited default)", len(f.checks))
	}
}
