package grouping

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Snapshot is the hashes one of Sentry's grouping snapshot files records
// (tests/sentry/grouping/snapshots/test_variants/test_event_hash_variant/
// <config>/<name>.pysnap), by variant name; "" is a null hash.
type Snapshot map[string]string

// ErrSnapshot is a snapshot file that is not in Sentry's layout.
var ErrSnapshot = errors.New("grouping: not a Sentry grouping snapshot")

// ParseSnapshot reads the variant hashes of a .pysnap file: after the
// "---" header, each variant starts at a line "name:" in the first column,
// and its first line "  hash: ..." holds the hash, quoted, or null. The
// component trees Sentry prints under it are not read.
func ParseSnapshot(src []byte) (Snapshot, error) {
	text := strings.ReplaceAll(string(src), "\r\n", "\n")
	if rest, ok := strings.CutPrefix(text, "---\n"); ok { // the header
		_, body, found := strings.Cut(rest, "\n---\n")
		if !found {
			return nil, fmt.Errorf("%w: header without its closing ---", ErrSnapshot)
		}
		text = body
	}
	snap := Snapshot{}
	name := ""
	for line := range strings.SplitSeq(text, "\n") {
		switch {
		case line == "" || strings.HasPrefix(line, "---"):
		case line[0] != ' ' && strings.HasSuffix(line, ":"):
			name = strings.TrimSuffix(line, ":")
		case name != "" && strings.HasPrefix(line, "  hash: "):
			v := strings.TrimPrefix(line, "  hash: ")
			switch {
			case v == "null":
				snap[name] = ""
			default:
				h, err := strconv.Unquote(v)
				if err != nil {
					return nil, fmt.Errorf("%w: variant %s: hash %s", ErrSnapshot, name, v)
				}
				snap[name] = h
			}
			name = "" // the rest of the variant is its tree
		}
	}
	if len(snap) == 0 {
		return nil, fmt.Errorf("%w: no variant hashes", ErrSnapshot)
	}
	return snap, nil
}

// Primary is the hash Sentry files an event with these variants under: the
// first non-null in Sentry's variant order, with its variant's name.
func (s Snapshot) Primary() (hash, variant string) {
	names := make([]string, 0, len(s))
	for n := range s {
		names = append(names, n)
	}
	slices.SortFunc(names, func(a, b string) int {
		if d := rank(a) - rank(b); d != 0 {
			return d
		}
		return strings.Compare(a, b)
	})
	for _, n := range names {
		if s[n] != "" {
			return s[n], n
		}
	}
	return "", ""
}
