package project

import (
	"encoding/json"
	"strings"
	"testing"
)

// Counts: the count switch alone, or a storm limit, counts an issue's
// events; discarded hashes alone do not, nor no part at all.
func TestGroupingCounts(t *testing.T) {
	for _, c := range []struct {
		part string
		want bool
	}{
		{`{"count":true}`, true},
		{`{"storm":{"limit":5,"window":60}}`, true},
		{`{"storm":{"limit":5,"window":60},"count":false}`, true},
		{`{"discardedHashes":[]}`, false},
		{`{"count":false}`, false},
	} {
		g := new(Grouping)
		if err := json.Unmarshal([]byte(c.part), g); err != nil {
			t.Fatal(err)
		}
		if err := g.validate(); err != nil {
			t.Fatalf("%s: %v", c.part, err)
		}
		if got := g.Counts(); got != c.want {
			t.Errorf("%s: Counts() = %v, want %v", c.part, got, c.want)
		}
	}
	var none *Grouping
	if none.Counts() {
		t.Error("nil part counts")
	}
	if g, err := NewGrouping(Grouping{Count: true}); err != nil || !g.Counts() || g.Discards("x") {
		t.Errorf("NewGrouping count: %+v %v", g, err)
	}
}

// NotFinal: a project with its own rules (customRules), or whose
// groupingConfig names another config than Baton reproduces, has no final
// hash; the default config, or none named, leaves finality to the hash.
func TestGroupingNotFinal(t *testing.T) {
	for _, c := range []struct {
		config string
		want   string // substring of NotFinal; "" for none
	}{
		{`{"grouping":{"count":true}}`, ""},
		{`{"grouping":{"count":true},"groupingConfig":{"id":"newstyle:2023-01-11","enhancements":"eJybzDRxY3J-bm5-npWRgaGlroG5rqHRBABfHAZ0"}}`, ""},
		{`{"grouping":{"customRules":true}}`, "customRules"},
		{`{"grouping":{"count":true},"groupingConfig":{"id":"legacy:2019-03-12"}}`, "grouping config legacy:2019-03-12"},
		{`{"grouping":{"customRules":true},"groupingConfig":{"id":"legacy:2019-03-12"}}`, "customRules"},
		{`{"grouping":{"count":true},"groupingConfig":"garbage"}`, ""},
	} {
		st, err := DecodeState([]byte(`{"projectId":42,"publicKeys":[{"publicKey":"e12d836b15bb49d7bbf99e64295d995b"}],"config":` + c.config + `}`))
		if err != nil {
			t.Fatalf("%s: %v", c.config, err)
		}
		got := st.Grouping.NotFinal()
		if (c.want == "") != (got == "") || !strings.Contains(got, c.want) {
			t.Errorf("%s: NotFinal() = %q, want %q", c.config, got, c.want)
		}
	}
	if g, err := NewGrouping(Grouping{CustomRules: true}); err != nil || g.NotFinal() == "" {
		t.Errorf("NewGrouping customRules: NotFinal %q, %v", g.NotFinal(), err)
	}
}
