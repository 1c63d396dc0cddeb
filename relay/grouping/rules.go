package grouping

import (
	_ "embed"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// RulesVersion names the built-in stack-trace rule set Baton ships (the
// enhancements base of Sentry's default grouping config).
const RulesVersion = "all-platforms:2023-01-11"

//go:embed rules/all-platforms@2023-01-11.txt
var builtinRules string

// frameView is what rules match a frame on. Strings are as the event has
// them; path and package are already lower-cased with forward slashes.
type frameView struct {
	family   string // javascript, native or other
	path     string // abs_path, else filename
	absPath  string
	filename string
	module   string
	function string
	pkg      string
	category string
	inApp    bool
	group    bool
}

type field uint8

const (
	fFamily field = iota
	fPath
	fAbsPath
	fFilename
	fModule
	fFunction
	fPackage
	fCategory
	fApp
)

type matcher struct {
	f      field
	negate bool
	g      *glob
	values []string // family
	app    bool
}

type rule struct {
	caller, self, callee []matcher
	category             string
	app, group           int8 // +1 / -1 / 0 on the frame itself
	upApp, upGroup       int8 // "^": frames it calls (later in the list)
	downApp, downGroup   int8 // "v": its callers (earlier in the list)
	// onlyApp: the rule's one effect is the frame's own in_app (set by
	// indexRules), so a frame that already has that value is skipped
	// without matching: applying the rule would change nothing.
	onlyApp bool
}

// glob is one rule pattern: Sentry's glob (`*`, `**`, `?`, `[..]`) as a
// regexp, with a literal every match contains to skip most frames cheaply.
type glob struct {
	exact string // pattern without wildcards, or ""
	// A pattern that is one literal with a leading and/or trailing "match
	// anything" is a prefix, suffix or substring test.
	prefix, suffix, contains string
	literal                  string // longest literal run (lower-cased when fold)
	fold                     bool
	re                       *regexp.Regexp
}

func compileGlob(p string, path bool) (*glob, error) {
	g := &glob{fold: path}
	if path {
		p = strings.ToLower(strings.ReplaceAll(p, `\`, `/`))
	} else {
		// Without path semantics "*" already matches anything: "**" is "*".
		for strings.Contains(p, "**") {
			p = strings.ReplaceAll(p, "**", "*")
		}
	}
	if !strings.ContainsAny(p, "*?[") {
		g.exact = p
		return g, nil
	}
	any := "*"
	if path {
		any = "**"
	}
	if lit, ok := strings.CutPrefix(p, any); ok && !strings.ContainsAny(strings.TrimSuffix(lit, any), "*?[") {
		if body, ok := strings.CutSuffix(lit, any); ok {
			g.contains = body
		} else {
			g.suffix = lit
		}
		return g, nil
	}
	if lit, ok := strings.CutSuffix(p, any); ok && !strings.ContainsAny(lit, "*?[") {
		g.prefix = lit
		return g, nil
	}
	var b strings.Builder
	b.WriteString(`^`)
	lit, cur := "", ""
	flush := func() {
		if len(cur) > len(lit) {
			lit = cur
		}
		cur = ""
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '*' && i+1 < len(p) && p[i+1] == '*':
			b.WriteString(`.*`)
			for i+1 < len(p) && p[i+1] == '*' {
				i++
			}
			flush()
		case c == '*':
			if path {
				b.WriteString(`[^/]*`)
			} else {
				b.WriteString(`.*`)
			}
			flush()
		case c == '?':
			b.WriteString(`.`)
			flush()
		case c == '[':
			j := strings.IndexByte(p[i+1:], ']')
			if j < 0 {
				return nil, fmt.Errorf("unclosed [ in %q", p)
			}
			cls := p[i+1 : i+1+j]
			if strings.HasPrefix(cls, "!") {
				cls = "^" + cls[1:]
			}
			b.WriteString("[" + strings.ReplaceAll(cls, `\`, `\\`) + "]")
			i += j + 1
			flush()
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
			cur += string(c)
		}
	}
	flush()
	b.WriteString(`$`)
	re, err := regexp.Compile(`(?s)` + b.String())
	if err != nil {
		return nil, err
	}
	g.re, g.literal = re, lit
	return g, nil
}

func (g *glob) match(v string) bool {
	switch {
	case g.prefix != "":
		return strings.HasPrefix(v, g.prefix)
	case g.suffix != "":
		return strings.HasSuffix(v, g.suffix)
	case g.contains != "":
		return strings.Contains(v, g.contains)
	case g.re == nil:
		return v == g.exact
	}
	if g.literal != "" && !strings.Contains(v, g.literal) {
		return false
	}
	return g.re.MatchString(v)
}

// matchSlashed is match("/" + v) without building the string: Sentry also
// tries a relative path with a leading slash.
func (g *glob) matchSlashed(v string) bool {
	switch {
	case g.prefix != "":
		return g.prefix == "/" || (g.prefix[0] == '/' && strings.HasPrefix(v, g.prefix[1:]))
	case g.suffix != "":
		return strings.HasSuffix(v, g.suffix) || (len(g.suffix) == len(v)+1 && g.suffix[0] == '/' && g.suffix[1:] == v)
	case g.contains != "":
		return strings.Contains(v, g.contains) || (g.contains[0] == '/' && strings.HasPrefix(v, g.contains[1:]))
	case g.re == nil:
		return len(g.exact) == len(v)+1 && g.exact[0] == '/' && g.exact[1:] == v
	}
	if g.literal != "" && !strings.Contains(v, g.literal) && (g.literal[0] != '/' || !strings.HasPrefix(v, g.literal[1:])) {
		return false
	}
	return g.re.MatchString("/" + v)
}

// matchPath is a path matcher's test: match(v), or for a relative v also
// match("/" + v). The common "**/dir/**" form tests the substring once
// (the hot rules of JavaScript and Python stacks).
func (g *glob) matchPath(v string) bool {
	if g.prefix == "" && g.suffix == "" && g.contains != "" {
		return strings.Contains(v, g.contains) || (v[0] != '/' && g.contains[0] == '/' && strings.HasPrefix(v, g.contains[1:]))
	}
	return g.match(v) || (v[0] != '/' && g.matchSlashed(v))
}

// parseRules reads the rule text (docs/grouping.md "Stack-trace rules").
func parseRules(text string) ([]rule, error) {
	var rules []rule
	for ln, line := range strings.Split(text, "\n") {
		if i := strings.Index(line, "#"); i >= 0 && !strings.Contains(line[:i], `"`) {
			line = line[:i]
		}
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		r, err := parseRule(line)
		if err != nil {
			return nil, fmt.Errorf("rules:%d: %w", ln+1, err)
		}
		rules = append(rules, r)
	}
	return rules, nil
}

func parseRule(line string) (rule, error) {
	var r rule
	toks, err := tokens(line)
	if err != nil {
		return r, err
	}
	// [ caller ] | self | [ callee ] actions
	section := &r.self
	for i := 0; i < len(toks); i++ {
		t := toks[i]
		switch {
		case t == "[":
			if len(r.self) == 0 {
				section = &r.caller
			} else {
				section = &r.callee
			}
		case t == "]":
			section = &r.self
		case t == "|":
		case strings.Contains(t, ":") && !isAction(t):
			m, err := parseMatcher(t)
			if err != nil {
				return r, err
			}
			*section = append(*section, m)
		default:
			if err := r.action(t); err != nil {
				return r, err
			}
		}
	}
	if len(r.self) == 0 {
		return r, fmt.Errorf("rule has no frame matcher")
	}
	return r, nil
}

func isAction(t string) bool {
	return strings.HasPrefix(t, "category=") || strings.HasPrefix(t, "+") || strings.HasPrefix(t, "-") ||
		strings.HasPrefix(t, "^") || strings.HasPrefix(t, "v+") || strings.HasPrefix(t, "v-")
}

func (r *rule) action(t string) error {
	if c, ok := strings.CutPrefix(t, "category="); ok {
		r.category = c
		return nil
	}
	var app, group *int8
	rest := t
	switch {
	case strings.HasPrefix(t, "^"):
		app, group, rest = &r.upApp, &r.upGroup, t[1:]
	case strings.HasPrefix(t, "v"):
		app, group, rest = &r.downApp, &r.downGroup, t[1:]
	default:
		app, group = &r.app, &r.group
	}
	if len(rest) < 2 || (rest[0] != '+' && rest[0] != '-') {
		return fmt.Errorf("unknown action %q", t)
	}
	v := int8(1)
	if rest[0] == '-' {
		v = -1
	}
	switch rest[1:] {
	case "app":
		*app = v
	case "group":
		*group = v
	default:
		return fmt.Errorf("unknown action %q", t)
	}
	return nil
}

func parseMatcher(t string) (matcher, error) {
	var m matcher
	if strings.HasPrefix(t, "!") {
		m.negate, t = true, t[1:]
	}
	key, val, _ := strings.Cut(t, ":")
	key = strings.TrimPrefix(key, "stack.")
	path := false
	switch key {
	case "family":
		m.f, m.values = fFamily, strings.Split(val, ",")
		return m, nil
	case "app":
		m.f, m.app = fApp, val == "yes" || val == "true" || val == "1"
		return m, nil
	case "path":
		m.f, path = fPath, true
	case "abs_path":
		m.f, path = fAbsPath, true
	case "filename":
		m.f, path = fFilename, true
	case "package":
		m.f, path = fPackage, true
	case "module":
		m.f = fModule
	case "function":
		m.f = fFunction
	case "category":
		m.f = fCategory
	default:
		return m, fmt.Errorf("unknown matcher %q", key)
	}
	g, err := compileGlob(val, path)
	if err != nil {
		return m, err
	}
	m.g = g
	return m, nil
}

// tokens splits a rule line on blanks, keeping quoted values (quotes and
// backslash escapes removed) and [ ] | as their own tokens.
func tokens(line string) ([]string, error) {
	var out []string
	var cur strings.Builder
	inTok := false
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == '"':
			inTok = true
			j := i + 1
			for ; j < len(line) && line[j] != '"'; j++ {
				if line[j] == '\\' && j+1 < len(line) {
					j++
				}
				cur.WriteByte(line[j])
			}
			if j >= len(line) {
				return nil, fmt.Errorf("unclosed quote")
			}
			i = j
		case c == ' ' || c == '\t':
			if inTok {
				out = append(out, cur.String())
				cur.Reset()
				inTok = false
			}
		case (c == '[' || c == ']' || c == '|') && !inTok:
			out = append(out, string(c))
		default:
			inTok = true
			cur.WriteByte(c)
		}
	}
	if inTok {
		out = append(out, cur.String())
	}
	return out, nil
}

func (m *matcher) matches(f *frameView) bool {
	ok := false
	switch m.f {
	case fFamily:
		for _, v := range m.values {
			if v == f.family || v == "all" {
				ok = true
			}
		}
	case fApp:
		ok = f.inApp == m.app
	case fPath:
		ok = f.path != "" && m.g.matchPath(f.path)
	case fAbsPath:
		ok = f.absPath != "" && m.g.match(f.absPath)
	case fFilename:
		ok = f.filename != "" && m.g.match(f.filename)
	case fPackage:
		ok = f.pkg != "" && m.g.match(f.pkg)
	case fModule:
		ok = f.module != "" && m.g.match(f.module)
	case fFunction:
		ok = f.function != "" && m.g.match(f.function)
	case fCategory:
		ok = f.category != "" && m.g.match(f.category)
	}
	return ok != m.negate
}

func matchAll(ms []matcher, f *frameView) bool {
	for i := range ms {
		if !ms[i].matches(f) {
			return false
		}
	}
	return true
}

var defaultRules = mustRules(builtinRules)

// ruleSet is rules with an index that skips, per frame, the rules whose
// first matcher cannot match it: most rules name one module prefix or one
// function, and a frame has one module and one function.
type ruleSet struct {
	rules []rule
	// byModule[c]: rules whose first matcher is a module prefix starting
	// with byte c; byFunction: rules whose first matcher is an exact
	// function; other: every other rule.
	byModule   [256][]int
	byFunction map[string][]int
	other      []int
}

func indexRules(rules []rule) *ruleSet {
	rs := &ruleSet{rules: rules, byFunction: map[string][]int{}}
	for i := range rules {
		r := &rules[i]
		r.onlyApp = r.app != 0 && r.category == "" && r.group == 0 && r.upApp == 0 && r.upGroup == 0 && r.downApp == 0 && r.downGroup == 0
		m := &rules[i].self[0]
		switch {
		case m.negate:
			rs.other = append(rs.other, i)
		case m.f == fModule && m.g.prefix != "":
			rs.byModule[m.g.prefix[0]] = append(rs.byModule[m.g.prefix[0]], i)
		case m.f == fModule && m.g.exact != "":
			rs.byModule[m.g.exact[0]] = append(rs.byModule[m.g.exact[0]], i)
		case m.f == fFunction && m.g.exact != "" && m.g.re == nil && m.g.prefix == "" && m.g.suffix == "" && m.g.contains == "":
			rs.byFunction[m.g.exact] = append(rs.byFunction[m.g.exact], i)
		default:
			rs.other = append(rs.other, i)
		}
	}
	return rs
}

var builtin = indexRules(defaultRules)

// apply is applyRules visiting only the candidate rules: the candidates of
// all frames are merged into one ordered list, so rules still run in file
// order (a later rule sees what earlier ones set).
func (rs *ruleSet) apply(frames []frameView, scratch []int) []int {
	cand := append(scratch[:0], rs.other...)
	for i := range frames {
		if m := frames[i].module; m != "" {
			cand = append(cand, rs.byModule[m[0]]...)
		}
		cand = append(cand, rs.byFunction[frames[i].function]...)
	}
	slices.Sort(cand)
	cand = slices.Compact(cand)
	anyCategory := false // no frame has a category until a rule sets one
	for _, ri := range cand {
		r := &rs.rules[ri]
		if !anyCategory && r.self[0].f == fCategory && !r.self[0].negate {
			continue
		}
		applyRule(r, frames)
		anyCategory = anyCategory || r.category != ""
	}
	return cand
}

func mustRules(text string) []rule {
	r, err := parseRules(text)
	if err != nil {
		panic(err)
	}
	return r
}

// applyRules runs the rules in order over the frames (oldest first, as the
// event lists them), as Sentry does: a later rule sees the categories and
// in_app flags earlier ones set.
func applyRules(rules []rule, frames []frameView) {
	for ri := range rules {
		applyRule(&rules[ri], frames)
	}
}

func applyRule(r *rule, frames []frameView) {
	for i := range frames {
		f := &frames[i]
		if r.onlyApp && f.inApp == (r.app > 0) {
			continue
		}
		if !matchAll(r.self, f) {
			continue
		}
		if len(r.caller) > 0 && (i == 0 || !matchAll(r.caller, &frames[i-1])) {
			continue
		}
		if len(r.callee) > 0 && (i+1 >= len(frames) || !matchAll(r.callee, &frames[i+1])) {
			continue
		}
		if r.category != "" {
			f.category = r.category
		}
		if r.app != 0 {
			f.inApp = r.app > 0
		}
		if r.group != 0 {
			f.group = r.group > 0
		}
		for j := i + 1; j < len(frames) && (r.upApp != 0 || r.upGroup != 0); j++ {
			if r.upApp != 0 {
				frames[j].inApp = r.upApp > 0
			}
			if r.upGroup != 0 {
				frames[j].group = r.upGroup > 0
			}
		}
		for j := 0; j < i && (r.downApp != 0 || r.downGroup != 0); j++ {
			if r.downApp != 0 {
				frames[j].inApp = r.downApp > 0
			}
			if r.downGroup != 0 {
				frames[j].group = r.downGroup > 0
			}
		}
	}
}
