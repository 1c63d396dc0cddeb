package project

import (
	"reflect"
	"strings"
	"testing"
)

func TestDecodeBreakdowns(t *testing.T) {
	state := func(bd string) *State {
		t.Helper()
		cfg := `{"projectId":1,"publicKeys":[],"config":{`
		if bd != "" {
			cfg += `"breakdownsV2":` + bd
		}
		st, err := DecodeState([]byte(cfg + `}}`))
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	for _, c := range []struct {
		in     string
		want   []Breakdown
		broken string
	}{
		{"", nil, ""},
		{"null", nil, ""},
		{"{}", []Breakdown{}, ""},
		{`{"span_ops":{"type":"spanOperations","matches":["http","db","browser","resource","ui"]},"a":{"type":"span_operations","matches":[]},"z":{"type":"future"}}`,
			[]Breakdown{{Name: "a", Matches: []string{}}, {Name: "span_ops", Matches: []string{"http", "db", "browser", "resource", "ui"}}, {Name: "z"}}, ""},
		{`{"span_ops":{"type":"spanOperations"}}`, nil, "without matches"},
		{`{"span_ops":{"matches":["db"]}}`, nil, "missing type"},
		{`["span_ops"]`, nil, "breakdownsV2"},
	} {
		st := state(c.in)
		if !reflect.DeepEqual(st.Breakdowns, c.want) || (st.Breakdowns == nil) != (c.want == nil) {
			t.Errorf("%s: got %#v, want %#v", c.in, st.Breakdowns, c.want)
		}
		if why := st.Broken[PartOther]; c.broken == "" && why != "" || !strings.Contains(why, c.broken) {
			t.Errorf("%s: broken %q, want %q", c.in, why, c.broken)
		}
	}
}
