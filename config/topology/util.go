package topology

import (
	"cmp"
	"maps"
	"slices"

	"github.com/baton-relay/baton/config"
)

func sortedKeys[M ~map[string]V, V any](m M) []string {
	return slices.Sorted(maps.Keys(m))
}

func sortProblems(ps config.Errors) {
	slices.SortStableFunc(ps, func(a, b config.Problem) int {
		return cmp.Or(cmp.Compare(a.Line, b.Line), cmp.Compare(a.Field, b.Field), cmp.Compare(a.Msg, b.Msg))
	})
}
