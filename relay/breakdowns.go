package relay

import (
	"github.com/baton-relay/baton/relay/normalize"
	"github.com/baton-relay/baton/relay/project"
)

// appendBreakdowns appends st's breakdownsV2 to dst for normalize.Input:
// nil when st has none (the events' own breakdowns stay), else non-nil,
// empty when configured without entries (the events' are removed).
func appendBreakdowns(dst []normalize.Breakdown, st *project.State) []normalize.Breakdown {
	if st == nil || st.Breakdowns == nil {
		return nil
	}
	if dst == nil {
		dst = make([]normalize.Breakdown, 0, len(st.Breakdowns))
	}
	for _, b := range st.Breakdowns {
		dst = append(dst, normalize.Breakdown(b))
	}
	return dst
}
