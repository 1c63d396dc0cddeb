package relay

import (
	"fmt"
	"os"

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

// readAndroidModels reads the normalization.android_models table.
func readAndroidModels(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	m, err := normalize.ParseAndroidModels(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}
