package relay

import (
	"testing"

	"github.com/baton-relay/baton/relay/grouping"
	"github.com/baton-relay/baton/relay/project"
)

// TestGroupingConfigID: the config id a project's groupingConfig is judged
// against (relay/project may not import relay/grouping) is the one the
// hash reproduces.
func TestGroupingConfigID(t *testing.T) {
	if project.DefaultGroupingConfig != grouping.ConfigID {
		t.Errorf("project.DefaultGroupingConfig %q, grouping.ConfigID %q", project.DefaultGroupingConfig, grouping.ConfigID)
	}
}
