package project

import (
	"encoding/json"
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
	if g, err := NewGrouping(nil, Storm{}, true); err != nil || !g.Counts() || g.Discards("x") {
		t.Errorf("NewGrouping count: %+v %v", g, err)
	}
}
