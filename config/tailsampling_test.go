package config

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestTailSamplingRules(t *testing.T) {
	c, got := parse(t,
		"tail_sampling:",
		"  rules:",
		"    - {attribute: tier, equals: gold}",
		"    - {equals: x}",
		"    - {}",
		"    - {transaction: '/api/*', release: '2.*'}",
	)
	want := []string{
		`test.yaml:4: tail_sampling.rules[1]: equals needs an attribute`,
		`test.yaml:5: tail_sampling.rules[2]: a rule needs attribute, transaction or release`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if g := c.TailSampling.RootGrace; g != 5*time.Second {
		t.Errorf("tail_sampling.root_grace = %s, want the default 5s", g)
	}
	if r := c.TailSampling.Rules; len(r) != 4 || r[0].Attribute != "tier" || r[0].Equals != "gold" || r[3].Transaction != "/api/*" || r[3].Release != "2.*" {
		t.Errorf("rules = %+v", r)
	}
}

func TestProjectTailSampling(t *testing.T) {
	c, got := parse(t,
		"mode: static",
		"tail_sampling: {max_trace_wait: 1m, root_grace: -1s}",
		"projects:",
		`  "42":`,
		"    public_keys: [e12d836b15bb49d7bbf99e64295d995b]",
		"    tail_sampling:",
		"      keep_rate: 2",
		"      decision_wait: 2m",
		"      root_grace: -2s",
		"      rules: [{equals: x}]",
		`  "43":`,
		"    public_keys: [f12d836b15bb49d7bbf99e64295d995b]",
		"    tail_sampling: {keep_rate: 0, root_grace: 0s}",
	)
	want := []string{
		`test.yaml:2: tail_sampling.root_grace: must not be negative (0 is off)`,
		`test.yaml:7: projects.42.tail_sampling.keep_rate: 2 is not between 0 and 1`,
		`test.yaml:8: projects.42.tail_sampling.decision_wait: 2m0s is longer than tail_sampling.max_trace_wait (1m0s)`,
		`test.yaml:9: projects.42.tail_sampling.root_grace: must not be negative (0 is off)`,
		`test.yaml:10: projects.42.tail_sampling.rules[0]: equals needs an attribute`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if g := c.Projects["43"].TailSampling.RootGrace; g == nil || *g != 0 {
		t.Errorf("projects.43.tail_sampling.root_grace = %v, want 0 (off), not absent", g)
	}
	if g := c.Projects["42"].TailSampling.RootGrace; g == nil || *g != -2*time.Second {
		t.Errorf("projects.42.tail_sampling.root_grace = %v, want -2s as written", g)
	}
	if p := c.TailProjects(); !p[42] || !p[43] || len(p) != 2 {
		t.Errorf("TailProjects = %v, want 42 and 43 (their own tail_sampling)", p)
	}
}
