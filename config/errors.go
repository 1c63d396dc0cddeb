package config

import (
	"cmp"
	"errors"
	"math"
	"slices"
	"strconv"
	"strings"
)

// Problem kinds. Every Problem's Err wraps exactly one of these, so callers
// can test an Errors value with errors.Is.
var (
	// ErrRead: a config or project file cannot be read.
	ErrRead = errors.New("config: cannot read file")
	// ErrSyntax: a file is not valid YAML, or uses YAML Baton does not accept
	// (several documents, duplicate keys, runaway aliases).
	ErrSyntax = errors.New("config: invalid YAML")
	// ErrUnknownKey: a key is not part of the schema.
	ErrUnknownKey = errors.New("config: unknown key")
	// ErrType: a value has the wrong shape or cannot be parsed as the
	// field's type (a list for a string, "10 parsecs" for a duration).
	ErrType = errors.New("config: wrong type")
	// ErrEnv: ${NAME} expansion failed.
	ErrEnv = errors.New("config: environment expansion failed")
	// ErrInvalid: a well-typed value breaks a rule (Validate).
	ErrInvalid = errors.New("config: invalid value")
)

// Problem is one thing wrong with a configuration, with the position of the
// offending YAML node. File is empty and Line 0 when the value has no node
// (built in code, or a rule about something missing with no closer node).
type Problem struct {
	File   string // file name as given to Load/Parse, or "<default>"
	Line   int    // 1-based; 0 if unknown
	Column int    // 1-based; 0 if unknown; not printed
	Field  string // dotted path such as "upstreams.eu.urls[0]"
	Msg    string // what is wrong, and how to fix it when known
	Err    error  // wraps one of the Err* kinds above

	rank int // load order of File, for sorting; math.MaxInt if unknown
}

// String formats p as "file:line: field: msg", leaving out what is unknown.
func (p Problem) String() string {
	var b strings.Builder
	if p.File != "" {
		b.WriteString(p.File)
		if p.Line > 0 {
			b.WriteString(":")
			b.WriteString(strconv.Itoa(p.Line))
		}
		b.WriteString(": ")
	} else if p.Line > 0 {
		b.WriteString("line ")
		b.WriteString(strconv.Itoa(p.Line))
		b.WriteString(": ")
	}
	if p.Field != "" {
		b.WriteString(p.Field)
		b.WriteString(": ")
	}
	b.WriteString(p.Msg)
	return b.String()
}

// Error implements error; it is String.
func (p Problem) Error() string { return p.String() }

// Unwrap returns p.Err.
func (p Problem) Unwrap() error { return p.Err }

// Errors is every Problem found, in file load order, then line order. Load,
// Parse and Validate return it as their error; use errors.As to get it.
type Errors []Problem

// Error returns one problem per line.
func (e Errors) Error() string {
	lines := make([]string, len(e))
	for i, p := range e {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// Unwrap returns each Problem, so errors.Is(err, ErrUnknownKey) works.
func (e Errors) Unwrap() []error {
	errs := make([]error, len(e))
	for i, p := range e {
		errs[i] = p
	}
	return errs
}

// pos is where a node came from.
type pos struct {
	file      string
	line, col int
	rank      int // index of file in load order
}

// origins maps a field path to the position of its value.
type origins map[string]pos

// at returns the position of path or of its closest ancestor, preferring one
// in a user's file: a value left at its default (or inherited from a default
// template) is reported at the closest node the user wrote, and only at
// default.yaml when there is none (the top-level mapping does not count).
func (o origins) at(path string) pos {
	found := pos{rank: math.MaxInt}
	for path != "" {
		if p, ok := o[path]; ok {
			if p.rank != defaultRank {
				return p
			}
			if found.rank == math.MaxInt {
				found = p
			}
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			break
		}
		path = path[:i]
	}
	return found
}

// defaultRank is the load rank of default.yaml, always loaded first.
const defaultRank = 0

// problems collects Problems.
type problems []Problem

func (ps *problems) add(at pos, field string, kind error, msg string) {
	*ps = append(*ps, Problem{File: at.file, Line: at.line, Column: at.col, Field: field, Msg: msg, Err: kind, rank: at.rank})
}

// sorted returns the problems ordered by file load order, line, column and
// field, without duplicates, or nil when there are none.
func (ps problems) sorted() Errors {
	if len(ps) == 0 {
		return nil
	}
	out := slices.Clone(ps)
	slices.SortStableFunc(out, func(a, b Problem) int {
		return cmp.Or(cmp.Compare(a.rank, b.rank), cmp.Compare(a.Line, b.Line),
			cmp.Compare(a.Column, b.Column), cmp.Compare(a.Field, b.Field))
	})
	out = slices.CompactFunc(out, func(a, b Problem) bool {
		return a.File == b.File && a.Line == b.Line && a.Column == b.Column && a.Field == b.Field && a.Msg == b.Msg
	})
	return Errors(out)
}

// suggest returns didYouMean(suggestions(name, candidates)).
func suggest(name string, candidates []string) string {
	return didYouMean(suggestions(name, candidates))
}

// DidYouMean returns ` (did you mean "x"?)` naming the candidates closest to
// name (a typo's edit distance, or a shared prefix), or "" if none is close:
// the hint of Baton's config errors, for other checkers of config files.
func DidYouMean(name string, candidates []string) string {
	return suggest(name, candidates)
}

// suggestions returns the candidates closest to name: those at the smallest
// edit distance when that is at most 2 (and less than half of name), else
// those sharing a prefix with name (at least 3 characters), at most 3.
func suggestions(name string, candidates []string) []string {
	best, bestDist := []string(nil), 3
	for _, c := range candidates {
		d := editDistance(name, c)
		if d > 2 || d > max(1, len(name)/2) {
			continue
		}
		if d < bestDist {
			best, bestDist = []string{c}, d
		} else if d == bestDist {
			best = append(best, c)
		}
	}
	if best == nil && len(name) >= 3 {
		for _, c := range candidates {
			if strings.HasPrefix(c, name) || strings.HasPrefix(name, c) && len(c) >= 3 {
				best = append(best, c)
			}
		}
	}
	if len(best) > 3 {
		best = best[:3]
	}
	return best
}

// didYouMean formats suggestions as ` (did you mean "x"?)`, or "" if none.
func didYouMean(s []string) string {
	switch len(s) {
	case 0:
		return ""
	case 1:
		return ` (did you mean "` + s[0] + `"?)`
	}
	return ` (did you mean one of "` + strings.Join(s, `", "`) + `"?)`
}

// editDistance is the optimal-string-alignment distance: insertions,
// deletions, substitutions and adjacent transpositions cost 1.
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return math.MaxInt
	}
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}
