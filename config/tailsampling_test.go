package config

import (
	"slices"
	"strings"
	"testing"
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
	if r := c.TailSampling.Rules; len(r) != 4 || r[0].Attribute != "tier" || r[0].Equals != "gold" || r[3].Transaction != "/api/*" || r[3].Release != "2.*" {
		t.Errorf("rules = %+v", r)
	}
}
