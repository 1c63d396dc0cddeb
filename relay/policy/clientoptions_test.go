package policy

import (
	"encoding/json"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/baton-relay/baton/config"
	"github.com/baton-relay/baton/relay/project"
)

// TestManagedClientOptions: managed.client_options is added to the fetched
// config of its project, replacing what the upstream sent (here a broken
// part), in what Admit answers and what View serves downstream; the copy is
// made once per revision, and other projects are left as fetched.
func TestManagedClientOptions(t *testing.T) {
	decode := func(pid int, key, rev string) *project.State {
		st, err := project.DecodeState([]byte(`{"projectId":` + strconv.Itoa(pid) + `,"rev":"` + rev + `","publicKeys":[{"publicKey":"` + key +
			`"}],"brokenParts":{"clientOptions":"unreadable"},"config":{"features":["x"]}}`))
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	rate := 0.5
	cfg := config.Config{Mode: config.ModeManaged, Managed: config.Managed{ClientOptions: map[string]*config.ProjectClientOptions{
		"1": {Version: 1, Options: config.ClientOptionValues{TracesSampleRate: &rate}},
	}}}
	fetched, other := decode(1, keyA, "r1"), decode(2, keyB, "r1")
	p := mustNew(t, cfg, &fakeCache{states: map[string]*project.State{keyA: fetched, keyB: other}})

	a := p.Admit(1, []byte(keyA), nil)
	st := a.State
	if a.Refusal != Admitted || st == nil || st.ClientOptions == nil || *st.ClientOptions.Options.TracesSampleRate != 0.5 {
		t.Fatalf("admitted %+v", a)
	}
	if st.ClientOptionsBroken() != "" || len(st.Broken) != 0 || !st.Present.Has(project.PartClientOptions) {
		t.Errorf("broken %v present %v: the added part replaces the broken one", st.Broken, st.Present)
	}
	if want := "r1+co." + st.ClientOptions.Revision(); st.Rev != want {
		t.Errorf("rev %q, want %q: a downstream must see the added options as a new revision", st.Rev, want)
	}
	if fetched.ClientOptions != nil || fetched.Rev != "r1" || fetched.ClientOptionsBroken() == "" {
		t.Errorf("the cached state was changed: %+v", fetched)
	}
	var served struct {
		Rev         string                     `json:"rev"`
		BrokenParts map[string]string          `json:"brokenParts"`
		Config      map[string]json.RawMessage `json:"config"`
	}
	if err := json.Unmarshal(st.AppendJSON(nil, project.AllParts), &served); err != nil {
		t.Fatal(err)
	}
	if served.Rev != st.Rev || served.BrokenParts != nil || !strings.Contains(string(served.Config["clientOptions"]), `"traces_sample_rate":0.5`) ||
		string(served.Config["features"]) != `["x"]` {
		t.Errorf("served downstream: %+v", served)
	}
	redecoded, err := project.DecodeState(st.AppendJSON(nil, project.AllParts))
	if err != nil || redecoded.ClientOptions == nil || redecoded.ClientOptions.Revision() != st.ClientOptions.Revision() {
		t.Errorf("a downstream decodes %+v, %v", redecoded, err)
	}

	if again := p.Admit(1, []byte(keyA), nil).State; again != st {
		t.Error("the same revision was copied again")
	}
	key := []byte(keyA)
	if allocs := testing.AllocsPerRun(100, func() { p.Admit(1, key, nil) }); allocs != 0 {
		t.Errorf("Admit allocates %.0f times with added options", allocs)
	}
	if v := p.View(decode(1, keyA, "r2")); v == st || v.Rev != "r2+co."+st.ClientOptions.Revision() {
		t.Errorf("a new revision is viewed as %q", v.Rev)
	}
	if got := p.Admit(2, []byte(keyB), nil).State; got != other {
		t.Error("a project without added options is not served as fetched")
	}
}

// TestManagedClientOptionsTwoKeys: two keys of one project have states of
// the same revision; each is served its own view (a view found by rev alone
// would judge one key by the other's state), each copied once.
func TestManagedClientOptionsTwoKeys(t *testing.T) {
	const keyC = "c0ffee00c0ffee00c0ffee00c0ffee00"
	decode := func(key string) *project.State {
		st, err := project.DecodeState([]byte(`{"projectId":1,"rev":"r1","publicKeys":[{"publicKey":"` + key + `"}]}`))
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	cfg := config.Config{Mode: config.ModeManaged, Managed: config.Managed{ClientOptions: map[string]*config.ProjectClientOptions{"1": {Version: 1}}}}
	p := mustNew(t, cfg, &fakeCache{states: map[string]*project.State{keyA: decode(keyA), keyC: decode(keyC)}})
	ka, kc := []byte(keyA), []byte(keyC)
	for range 2 {
		for _, k := range [][]byte{ka, kc} {
			a := p.Admit(1, k, nil)
			if a.Refusal != Admitted || a.State == nil || len(a.State.Keys) != 1 || a.State.Keys[0].PublicKey != string(k) {
				t.Fatalf("key %s: %+v", k, a)
			}
		}
	}
	if allocs := testing.AllocsPerRun(100, func() { p.Admit(1, ka, nil); p.Admit(1, kc, nil) }); allocs != 0 {
		t.Errorf("alternating keys allocate %.0f times: a view is copied per request", allocs)
	}
}

// TestRelayDirProjectParts: the project file of a Relay config directory is
// served with Baton's own parts in effect (config's TestRelayDirIgnored
// only checks that they are not reported as ignored).
func TestRelayDirProjectParts(t *testing.T) {
	cfg, _, err := config.LoadDir(filepath.Join("..", "..", "config", "testdata", "relaydir", "full"))
	if err != nil {
		t.Fatal(err)
	}
	p := mustNew(t, cfg, &fakeCache{}) // a part that does not decode is an error
	a := p.Admit(42, []byte("e12d836b15bb49d7bbf99e64295d995b"), []byte("https://example.com"))
	if a.Refusal != Admitted || a.State == nil {
		t.Fatalf("admission %+v", a)
	}
	if co := a.State.ClientOptions; co == nil || co.Options.TracesSampleRate == nil || *co.Options.TracesSampleRate != 0.5 {
		t.Errorf("clientOptions not in effect: %+v", co)
	}
	if a.State.Grouping == nil {
		t.Error("grouping not in effect")
	}
}

// BenchmarkAdmitManaged: the door of a cached managed project, without
// and with options of managed.client_options (a copy found per revision).
func BenchmarkAdmitManaged(b *testing.B) {
	st, err := project.DecodeState([]byte(`{"projectId":1,"rev":"r1","publicKeys":[{"publicKey":"` + keyA + `"}],"config":{}}`))
	if err != nil {
		b.Fatal(err)
	}
	rate := 0.5
	for _, bc := range []struct {
		name  string
		added map[string]*config.ProjectClientOptions
	}{
		{"none", nil},
		{"added", map[string]*config.ProjectClientOptions{"1": {Version: 1, Options: config.ClientOptionValues{TracesSampleRate: &rate}}}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			p, err := New(config.Config{Mode: config.ModeManaged, Managed: config.Managed{ClientOptions: bc.added}},
				&fakeCache{states: map[string]*project.State{keyA: st}}, Options{})
			if err != nil {
				b.Fatal(err)
			}
			key := []byte(keyA)
			b.ReportAllocs()
			for b.Loop() {
				if a := p.Admit(1, key, nil); a.Refusal != Admitted {
					b.Fatal(a.Refusal)
				}
			}
		})
	}
}
