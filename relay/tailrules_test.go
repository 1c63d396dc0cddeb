package relay

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/baton-relay/baton/config"
	"github.com/baton-relay/baton/envelope"
	"github.com/baton-relay/baton/relay/policy"
	"github.com/baton-relay/baton/relay/project"
	"github.com/baton-relay/baton/relay/record"
	"github.com/baton-relay/baton/relay/tailsample"
)

// TestMatchCache: a part's keep rules are converted once per revision (the
// part's pointer), again for a new one, and the cache stays bounded.
func TestMatchCache(t *testing.T) {
	var c matchCache
	a := &project.TailSampling{Rules: []project.TailRule{{Attribute: "tier", Equals: "gold"}}}
	m := c.of(1, a)
	if len(m) != 1 || m[0] != (tailsample.Match{Attribute: "tier", Equals: "gold"}) {
		t.Fatalf("rules %+v", m)
	}
	if again := c.of(1, a); &again[0] != &m[0] {
		t.Error("the same revision's rules were converted again")
	}
	b := &project.TailSampling{Rules: []project.TailRule{{Transaction: "/checkout/*"}}}
	if m := c.of(1, b); len(m) != 1 || m[0] != (tailsample.Match{Transaction: "/checkout/*"}) {
		t.Errorf("a new revision's rules: %+v", m)
	}
	if m := c.of(2, &project.TailSampling{Enabled: true}); m != nil {
		t.Errorf("a part without rules: %+v", m)
	}
	for pid := range uint64(2 * maxCachedMatch) {
		c.of(pid, a)
	}
	if len(c.m) > maxCachedMatch {
		t.Errorf("%d entries, over the bound %d", len(c.m), maxCachedMatch)
	}
}

// BenchmarkTailRules is what a Sampler's rules lookup (tailRules) costs
// per record of a project whose config's tailSampling part has keep
// rules: with its own keepRate, and without one (the rate the project's
// sampling rules give the record's trace context).
func BenchmarkTailRules(b *testing.B) {
	for _, c := range []struct{ name, keepRate string }{{"keepRate", `"keepRate":0.5,`}, {"sampled", ""}} {
		b.Run(c.name, func(b *testing.B) {
			state := `{"publicKeys":[{"publicKey":"k"}],"config":{
				"sampling":{"version":2,"rules":[{"id":1,"type":"trace","samplingValue":{"type":"sampleRate","value":0.25},"condition":{"op":"and","inner":[]}}]},
				"tailSampling":{"enabled":true,` + c.keepRate + `"rules":[{"attribute":"tier","equals":"gold"},{"transaction":"/checkout/*"},{"release":"9.*"}]}}}`
			p, err := policy.New(config.Config{Mode: config.ModeStatic, Projects: map[string]config.Project{"42": {Relay: json.RawMessage(state)}}}, nil, policy.Options{})
			if err != nil {
				b.Fatal(err)
			}
			r := &Relay{}
			r.policy.Store(p)
			env := []byte("{\"trace\":{\"trace_id\":\"4bf92f3577b34da6a3ce929d0e0e4736\",\"public_key\":\"k\"}}\n{\"type\":\"transaction\"}\n{}\n")
			rec := record.Record{Class: envelope.ClassTransaction, ProjectID: 42, PublicKey: []byte("k"), Envelope: env}
			b.ReportAllocs()
			for b.Loop() {
				if rules, ok := r.tailRules(&rec); !ok || len(rules.Match) != 3 || rules.KeepRate == 1 {
					b.Fatalf("rules %+v, %v", rules, ok)
				}
			}
		})
	}
}

// The root grace of a record's rules: a managed part's rootGrace, else
// tail_sampling.root_grace; a static project's own root_grace, 0 (off)
// included, else tail_sampling's.
func TestTailRulesRootGrace(t *testing.T) {
	off, mine := time.Duration(0), 1500*time.Millisecond
	part := func(extra string) json.RawMessage {
		return json.RawMessage(`{"publicKeys":[{"publicKey":"k"}],"config":{"tailSampling":{"enabled":true` + extra + `}}}`)
	}
	cfg := config.Config{Mode: config.ModeStatic, Projects: map[string]config.Project{
		"1": {Relay: part(`,"rootGrace":0.5`)},
		"2": {Relay: part(``)},
		"3": {TailSampling: &config.ProjectTailSampling{RootGrace: &mine}},
		"4": {TailSampling: &config.ProjectTailSampling{RootGrace: &off}},
		"5": {TailSampling: &config.ProjectTailSampling{}},
	}}
	cfg.TailSampling.RootGrace = 5 * time.Second
	p, err := policy.New(cfg, nil, policy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	r := &Relay{cfg: cfg}
	r.policy.Store(p)
	r.newTail()
	for pid, want := range map[uint64]time.Duration{1: 500 * time.Millisecond, 2: 5 * time.Second, 3: mine, 4: 0, 5: 5 * time.Second} {
		rec := record.Record{Class: envelope.ClassTransaction, ProjectID: pid, PublicKey: []byte("k"), Envelope: []byte("{}\n")}
		if rules, ok := r.tailRules(&rec); !ok || rules.RootGrace != want {
			t.Errorf("project %d: root grace %s (%v), want %s", pid, rules.RootGrace, ok, want)
		}
	}
}

// Without the part's keepRate, the keep rate and the rule a drop names
// are what the project's sampling rules give the record's trace context.
func TestTailRulesRateRule(t *testing.T) {
	state := `{"publicKeys":[{"publicKey":"k"}],"config":{
		"sampling":{"version":2,"rules":[{"id":1007,"type":"trace","samplingValue":{"type":"sampleRate","value":0.25},"condition":{"op":"and","inner":[]}}]},
		"tailSampling":{"enabled":true}}}`
	cfg := config.Config{Mode: config.ModeStatic, Projects: map[string]config.Project{"42": {Relay: json.RawMessage(state)}}}
	p, err := policy.New(cfg, nil, policy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	r := &Relay{cfg: cfg}
	r.policy.Store(p)
	r.newTail()
	env := []byte("{\"trace\":{\"trace_id\":\"4bf92f3577b34da6a3ce929d0e0e4736\",\"public_key\":\"k\"}}\n{\"type\":\"transaction\"}\n{}\n")
	rec := record.Record{Class: envelope.ClassTransaction, ProjectID: 42, PublicKey: []byte("k"), Envelope: env}
	if rules, ok := r.tailRules(&rec); !ok || rules.KeepRate != 0.25 || rules.RateRule != 1007 {
		t.Errorf("rules %+v (%v), want keep rate 0.25 from rule 1007", rules, ok)
	}
}
