package project

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// Breakdown is one entry of the config's breakdownsV2 (Relay's
// BreakdownsConfig), which the first relay's normalization computes from
// an event's spans (relay/normalize breakdowns.go).
type Breakdown struct {
	Name string
	// Matches are the span operation prefixes of a spanOperations
	// breakdown; nil for a type Relay does not know (emits nothing).
	Matches []string
}

// decodeBreakdowns fills st.Breakdowns from breakdownsV2, in name order:
// nil when absent or null, non-nil (maybe empty) when configured. A type
// Relay does not know is kept without matches, as Relay ignores it; a
// spanOperations entry without matches, or a config that is not an
// object of objects, is an error (Relay rejects the project config).
func (st *State) decodeBreakdowns() error {
	raw, ok := st.config["breakdownsV2"]
	if !ok || bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		return nil
	}
	var m map[string]struct {
		Type    string    `json:"type"`
		Matches *[]string `json:"matches"`
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		return fmt.Errorf("breakdownsV2: %v", err)
	}
	out := make([]Breakdown, 0, len(m))
	for name, c := range m {
		if c.Type == "" {
			return fmt.Errorf("breakdownsV2: %s: missing type", name)
		}
		b := Breakdown{Name: name}
		if c.Type == "spanOperations" || c.Type == "span_operations" {
			if c.Matches == nil {
				return fmt.Errorf("breakdownsV2: %s: spanOperations without matches", name)
			}
			b.Matches = *c.Matches
		}
		out = append(out, b)
	}
	slices.SortFunc(out, func(a, b Breakdown) int { return strings.Compare(a.Name, b.Name) })
	st.Breakdowns = out
	return nil
}
