package policy

import (
	"strings"
	"testing"

	"github.com/baton-relay/baton/config"
	"github.com/baton-relay/baton/relay/outcome"
	"github.com/baton-relay/baton/relay/project"
)

const (
	keyA = "a7c3e9f1b5d24680ace13579bdf02468"
	keyB = "b7c3e9f1b5d24680ace13579bdf02468"
)

// fakeCache answers GetBytes from a map; a key it lacks is still being
// looked up (project.Pending), unless busy says the lookups are at their cap.
type fakeCache struct {
	states  map[string]*project.State
	unknown map[string]bool
	busy    bool
}

func (c *fakeCache) GetBytes(key []byte) (*project.State, project.Status) {
	switch {
	case c.states[string(key)] != nil:
		return c.states[string(key)], project.Ready
	case c.unknown[string(key)]:
		return nil, project.Unknown
	case c.busy:
		return nil, project.Busy
	}
	return nil, project.Pending
}

func staticConfig(mode config.Mode) config.Config {
	return config.Config{Mode: mode, Projects: map[string]config.Project{
		"1": {PublicKeys: []string{keyA}, AllowedDomains: []string{"*.example"}},
		"2": {PublicKeys: []string{keyB}, Disabled: true},
	}}
}

func mustNew(t *testing.T, cfg config.Config, cache Cache) *Projects {
	t.Helper()
	p, err := New(cfg, cache, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

type admitCase struct {
	name     string
	pid      uint64
	key      string
	origin   string
	want     Refusal
	pending  bool
	hasState bool
}

func checkAdmit(t *testing.T, p *Projects, cases []admitCase) {
	t.Helper()
	for _, c := range cases {
		var origin []byte
		if c.origin != "" {
			origin = []byte(c.origin)
		}
		a := p.Admit(c.pid, []byte(c.key), origin)
		if a.Refusal != c.want || a.Pending != c.pending || (a.State != nil) != c.hasState {
			t.Errorf("%s: Admit = refusal %v pending %v state %v; want %v %v %v",
				c.name, a.Refusal, a.Pending, a.State != nil, c.want, c.pending, c.hasState)
		}
	}
}

// TestAdmitProxy: proxy mode lets every project and key through, without
// a state to enforce.
func TestAdmitProxy(t *testing.T) {
	p := mustNew(t, staticConfig(config.ModeProxy), nil)
	checkAdmit(t, p, []admitCase{
		{name: "listed", pid: 1, key: keyA},
		{name: "unlisted", pid: 99, key: "anything", origin: "https://evil.test"},
	})
}

// TestAdmitStatic: static mode serves the listed projects only, with
// their keys, disabled flag and allowed domains.
func TestAdmitStatic(t *testing.T) {
	p := mustNew(t, staticConfig(config.ModeStatic), nil)
	checkAdmit(t, p, []admitCase{
		{name: "known", pid: 1, key: keyA, origin: "https://app.example", hasState: true},
		{name: "no origin", pid: 1, key: keyA, hasState: true},
		{name: "unlisted project", pid: 3, key: keyA, want: UnknownProject},
		{name: "other project's key", pid: 1, key: keyB, want: UnknownKey},
		{name: "disabled project", pid: 2, key: keyB, want: DisabledProject},
		{name: "cors", pid: 1, key: keyA, origin: "https://evil.test", want: CORS},
		{name: "cors by referer", pid: 1, key: keyA, origin: string(Origin(nil, []byte("https://evil.test/app.example"))), want: CORS},
	})
	if _, err := New(config.Config{Mode: config.ModeStatic, Projects: map[string]config.Project{"x": {}}}, nil, Options{}); err == nil {
		t.Error("a project id that is not a number was accepted")
	}
}

// TestAdmitManaged: managed mode answers from the cache without waiting —
// ready, unknown, pending or busy — and the static projects of the config
// take precedence for their ids.
func TestAdmitManaged(t *testing.T) {
	off := false
	cache := &fakeCache{
		states: map[string]*project.State{
			"k1": {ProjectID: 10, Keys: []project.Key{{PublicKey: "k1"}}, AllowedDomains: []string{"app.example"}},
			"k2": {ProjectID: 11, Keys: []project.Key{{PublicKey: "k2", IsEnabled: &off}}, AllowedDomains: []string{"*"}},
			"k3": {ProjectID: 12, Keys: []project.Key{{PublicKey: "k3"}}, Disabled: true, AllowedDomains: []string{"*"}},
		},
		unknown: map[string]bool{"gone": true},
	}
	p := mustNew(t, staticConfig(config.ModeManaged), cache)
	checkAdmit(t, p, []admitCase{
		{name: "ready", pid: 10, key: "k1", origin: "https://app.example:8443", hasState: true},
		{name: "ready, wrong project", pid: 11, key: "k1", want: UnknownProject},
		{name: "disabled key", pid: 11, key: "k2", want: DisabledKey},
		{name: "disabled project", pid: 12, key: "k3", want: DisabledProject},
		{name: "cors", pid: 10, key: "k1", origin: "https://evil.test", want: CORS},
		{name: "unknown", pid: 10, key: "gone", want: UnknownProject},
		{name: "pending", pid: 10, key: "new", pending: true},
		{name: "static override", pid: 1, key: keyA, hasState: true},
		{name: "static override, cache's key", pid: 1, key: "k1", want: UnknownKey},
	})
	cache.busy = true
	checkAdmit(t, p, []admitCase{
		{name: "busy", pid: 10, key: "new", want: Overload},
		{name: "busy, ready key", pid: 10, key: "k1", hasState: true},
	})
	key, origin := []byte("k1"), []byte("https://app.example")
	if a := testing.AllocsPerRun(100, func() { p.Admit(10, key, origin) }); a != 0 {
		t.Errorf("Admit allocates %v times", a)
	}
}

// TestRefusalReason: what a refusal becomes for a record refused on
// release.
func TestRefusalReason(t *testing.T) {
	for r, want := range map[Refusal]outcome.Reason{
		UnknownProject:  outcome.ReasonProjectUnknown,
		UnknownKey:      outcome.ReasonProjectUnknown,
		DisabledKey:     outcome.ReasonProjectDisabled,
		DisabledProject: outcome.ReasonProjectDisabled,
		CORS:            outcome.ReasonCORS,
	} {
		if got := r.Reason(); got != want {
			t.Errorf("%v.Reason() = %v, want %v", r, got, want)
		}
	}
	if CORS.String() != "cors" || Refusal(200).String() != "refusal(200)" {
		t.Errorf("names: %s %s", CORS, Refusal(200))
	}
}

// A static project from a Relay project file is the file decoded: its
// quotas and filters are in the State, its projectId comes from the file
// name, and a key disabled in the file stays known but refused. A file
// DecodeState refuses, with a broken part, or of another project is an
// error naming the file.
func TestStaticRelayProjectFile(t *testing.T) {
	relayProject := func(body string) config.Config {
		return config.Config{Mode: config.ModeStatic, Projects: map[string]config.Project{"7": {
			PublicKeys: []string{keyA}, AllowedDomains: []string{"*"}, Relay: []byte(body),
		}}}
	}
	p := mustNew(t, relayProject(`{"publicKeys": [{"publicKey": "`+keyA+`"}, {"publicKey": "`+keyB+`", "isEnabled": false}],
		"config": {"quotas": [{"categories": ["error"], "limit": 0, "reasonCode": "r"}], "filterSettings": {"releases": {"releases": ["1.*"]}}}}`), nil)
	a := p.Admit(7, []byte(keyA), nil)
	if a.Refusal != Admitted || a.State == nil || a.State.ProjectID != 7 || len(a.State.Quotas) != 1 || !a.State.Filters.HasReleaseFilter() {
		t.Fatalf("admission %+v", a)
	}
	if a := p.Admit(7, []byte(keyB), nil); a.Refusal != DisabledKey {
		t.Errorf("key disabled in the file: %v, want DisabledKey", a.Refusal)
	}
	for body, want := range map[string]string{
		`[1]`:                                "projects/7.json: project: invalid project state: not a JSON object",
		`{"config": {"quotas": "x"}}`:        "projects/7.json: project: invalid project state: config.quotas: ",
		`{"projectId": 8, "publicKeys": []}`: "projects/7.json: project: invalid project state: projectId 8 is not the file's project 7",
	} {
		_, err := New(relayProject(body), nil, Options{})
		if err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("%s: %v, want %q...", body, err, want)
		}
	}
}
