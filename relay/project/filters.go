package project

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
)

// Toggle is a filter that is on or off (browserExtensions, webCrawlers,
// localhost).
type Toggle struct {
	IsEnabled bool `json:"isEnabled"`
}

// LegacyBrowsers is the legacyBrowsers filter: on, and which browsers
// (Relay's options: default, ie_pre_9, ie9, ie10, ie11, opera_pre_15,
// opera_mini_pre_8, android_pre_4, safari_pre_6, edge_pre_79, ...).
type LegacyBrowsers struct {
	IsEnabled bool     `json:"isEnabled"`
	Options   []string `json:"options"`
}

// Patterns is a list of globs (errorMessages).
type Patterns struct {
	Patterns []string `json:"patterns"`
}

// CSPFilter is the csp filter: the sources whose reports are dropped.
type CSPFilter struct {
	DisallowedSources []string `json:"disallowedSources"`
}

// GenericFilters is the generic part of filterSettings, and the filters
// of the global config: rule-condition filters by id, in order. Relay
// takes the filters as a list of {id, isEnabled, condition}; an object
// keyed by id is read too (older Relay).
type GenericFilters struct {
	Version int             `json:"version"`
	Filters []GenericFilter `json:"filters"`
}

// GenericFilter is one generic inbound filter: the id is its outcome
// reason.
type GenericFilter struct {
	ID        string     `json:"id"`
	IsEnabled bool       `json:"isEnabled"`
	Condition *Condition `json:"condition"`
}

// maxGenericVersion is the newest generic filter schema Baton reads; as
// Relay, a newer version in the project or global config turns all
// generic filters off.
const maxGenericVersion = 1

// UnmarshalJSON reads filters as a list or as an object keyed by id.
func (g *GenericFilters) UnmarshalJSON(b []byte) error {
	var raw struct {
		Version int             `json:"version"`
		Filters json.RawMessage `json:"filters"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	g.Version, g.Filters = raw.Version, nil
	f := bytes.TrimSpace(raw.Filters)
	switch {
	case len(f) == 0 || bytes.Equal(f, []byte("null")):
	case f[0] == '[':
		if err := json.Unmarshal(f, &g.Filters); err != nil {
			return err
		}
	default:
		// An object: keep the order of its keys, which is the order of
		// evaluation.
		dec := json.NewDecoder(bytes.NewReader(f))
		if _, err := dec.Token(); err != nil {
			return err
		}
		for dec.More() {
			tok, err := dec.Token()
			if err != nil {
				return err
			}
			var gf GenericFilter
			if err := dec.Decode(&gf); err != nil {
				return err
			}
			gf.ID, _ = tok.(string)
			g.Filters = append(g.Filters, gf)
		}
	}
	return g.compile()
}

func (g *GenericFilters) compile() error {
	for i := range g.Filters {
		if c := g.Filters[i].Condition; c != nil {
			if err := c.compile(0); err != nil {
				return fmt.Errorf("generic filter %q: %w", g.Filters[i].ID, err)
			}
		}
	}
	return nil
}

// Supported reports whether Baton reads this version of generic filters.
func (g *GenericFilters) Supported() bool { return g == nil || g.Version <= maxGenericVersion }

// Has reports whether a filter with id is listed.
func (g *GenericFilters) Has(id string) bool { return g.find(id) != nil }

// condition returns the condition of the filter with id, or nil.
func (g *GenericFilters) condition(id string) *Condition {
	if f := g.find(id); f != nil {
		return f.Condition
	}
	return nil
}

func (g *GenericFilters) find(id string) *GenericFilter {
	if g == nil {
		return nil
	}
	for i := range g.Filters {
		if g.Filters[i].ID == id {
			return &g.Filters[i]
		}
	}
	return nil
}

// Each calls fn with the generic filters of a project and of the global
// config in Relay's order of evaluation, until fn returns false: the
// project's first (a missing condition taken from the global filter of
// the same id), then the global ones the project does not list. Nothing
// is evaluated when either version is newer than Baton reads. Disabled
// filters and filters without a condition are skipped.
func (g *GenericFilters) Each(global *GenericFilters, fn func(id string, c *Condition) bool) {
	if !g.Supported() || !global.Supported() {
		return
	}
	if g != nil {
		for i := range g.Filters {
			f := &g.Filters[i]
			c := f.Condition
			if c == nil {
				c = global.condition(f.ID)
			}
			if f.IsEnabled && c != nil && !fn(f.ID, c) {
				return
			}
		}
	}
	if global != nil {
		for i := range global.Filters {
			f := &global.Filters[i]
			if f.IsEnabled && f.Condition != nil && !g.Has(f.ID) && !fn(f.ID, f.Condition) {
				return
			}
		}
	}
}

// ParseGlobalFilters returns the generic filters of a global config
// (its "filters" key), nil when it has none.
func ParseGlobalFilters(global []byte) (*GenericFilters, error) {
	var g struct {
		Filters *GenericFilters `json:"filters"`
	}
	if err := json.Unmarshal(global, &g); err != nil {
		return nil, fmt.Errorf("global config filters: %w", err)
	}
	return g.Filters, nil
}

// EventFilters are the inbound filters that read the event, compiled once
// per project revision.
type EventFilters struct {
	BrowserExtensions bool
	WebCrawlers       bool
	Localhost         bool
	// LegacyBrowsers are the options of an enabled legacyBrowsers filter.
	LegacyBrowsers     []string
	ErrorMessages      *Glob    // nil: off
	CSPSources         []Origin // the csp filter's disallowedSources
	IgnoreTransactions *Glob    // nil: off
	// Releases is on when the releases filter lists anything (its globs
	// are Filters.BlockedRelease).
	Releases bool
	Generic  *GenericFilters
}

// On reports whether a filter other than the generic ones reads the event.
func (e *EventFilters) On() bool {
	return e.BrowserExtensions || e.WebCrawlers || e.Localhost || len(e.LegacyBrowsers) > 0 ||
		e.ErrorMessages != nil || len(e.CSPSources) > 0 || e.IgnoreTransactions != nil || e.Releases
}

// Event returns the compiled filters that read the event.
func (f *Filters) Event() *EventFilters { return &f.event }

func (f *Filters) compileEvent() error {
	e := EventFilters{
		BrowserExtensions: f.BrowserExtensions.IsEnabled,
		WebCrawlers:       f.WebCrawlers.IsEnabled,
		Localhost:         f.Localhost.IsEnabled,
		Releases:          len(f.Releases.Releases) > 0,
	}
	if f.LegacyBrowsers.IsEnabled && len(f.LegacyBrowsers.Options) > 0 {
		e.LegacyBrowsers = f.LegacyBrowsers.Options
	}
	var err error
	if e.ErrorMessages, err = CompileGlobs(f.ErrorMessages.Patterns); err != nil {
		return fmt.Errorf("errorMessages: %w", err)
	}
	// As Relay: ignoreTransactions needs isEnabled and patterns; Sentry
	// sends its default patterns itself.
	if f.IgnoreTransactions.IsEnabled {
		if e.IgnoreTransactions, err = CompileGlobs(f.IgnoreTransactions.Patterns); err != nil {
			return fmt.Errorf("ignoreTransactions: %w", err)
		}
	}
	for _, s := range f.CSP.DisallowedSources {
		e.CSPSources = append(e.CSPSources, ParseOrigin(s))
	}
	if len(f.Generic.Filters) > 0 || f.Generic.Version != 0 {
		g := f.Generic
		e.Generic = &g
	}
	f.event = e
	return nil
}

// Glob is a compiled list of Relay glob patterns: case-insensitive, '*'
// any run of characters ('/' included), '?' one character, {a,b}
// alternatives, [...] a class, '\' escapes. One regular expression for
// the whole list, so a string is matched in linear time.
type Glob struct {
	re *regexp.Regexp
}

// CompileGlobs compiles patterns; nil for none. An empty pattern matches
// nothing, as in Relay.
func CompileGlobs(patterns []string) (*Glob, error) {
	var b strings.Builder
	b.WriteString(`(?is)^(?:`)
	n := 0
	for _, p := range patterns {
		if p == "" {
			continue
		}
		if n > 0 {
			b.WriteByte('|')
		}
		n++
		if err := globToRegexp(&b, p); err != nil {
			return nil, fmt.Errorf("pattern %q: %w", p, err)
		}
	}
	if n == 0 {
		return nil, nil
	}
	b.WriteString(`)$`)
	re, err := regexp.Compile(b.String())
	if err != nil {
		return nil, err
	}
	return &Glob{re: re}, nil
}

// Match reports whether s matches one of the patterns.
func (g *Glob) Match(s string) bool { return g != nil && g.re.MatchString(s) }

func globToRegexp(b *strings.Builder, p string) error {
	b.WriteString("(?:")
	depth := 0
	for i := 0; i < len(p); i++ {
		switch c := p[i]; c {
		case '*':
			b.WriteString(".*")
		case '?':
			b.WriteByte('.')
		case '{':
			depth++
			b.WriteString("(?:")
		case '}':
			if depth == 0 {
				b.WriteString(`\}`)
				continue
			}
			depth--
			b.WriteByte(')')
		case ',':
			if depth > 0 {
				b.WriteByte('|')
			} else {
				b.WriteByte(',')
			}
		case '[':
			end := strings.IndexByte(p[i+1:], ']')
			if end < 0 {
				b.WriteString(`\[`)
				continue
			}
			class := p[i+1 : i+1+end]
			b.WriteByte('[')
			if strings.HasPrefix(class, "!") {
				b.WriteByte('^')
				class = class[1:]
			}
			b.WriteString(strings.ReplaceAll(class, `\`, `\\`))
			b.WriteByte(']')
			i += end + 1
		case '\\':
			if i+1 < len(p) {
				i++
				b.WriteString(regexp.QuoteMeta(p[i : i+1]))
			} else {
				b.WriteString(`\\`)
			}
		default:
			b.WriteString(regexp.QuoteMeta(p[i : i+1]))
		}
	}
	if depth != 0 {
		return fmt.Errorf("unclosed {")
	}
	b.WriteByte(')')
	return nil
}
