package grouping

import (
	"bytes"
	"net/url"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/baton-relay/baton/relay/event"
)

// family is Sentry's behavior family of a platform.
func family(platform string) string {
	switch platform {
	case "javascript", "node":
		return "javascript"
	case "objc", "cocoa", "swift", "native", "c":
		return "native"
	}
	return "other"
}

// contextLinePlatforms are the platforms whose source lines Sentry trusts
// for grouping.
func contextLinePlatform(p string) bool {
	switch p {
	case "javascript", "node", "python", "php", "ruby":
		return true
	}
	return false
}

type frameIn struct {
	platform, family                                         string
	absPath, filename, module, function, rawFunction, contxt string
	pkg                                                      string
	sourcemap, hasAddr, inApp                                bool
	lineno, colno                                            []byte // as sent, for the recursion test
}

// sameFrame is Sentry's recursion test: equal abs_path, package, module,
// filename, function, lineno and colno.
func sameFrame(a, b *frameIn) bool {
	return a.absPath == b.absPath && a.pkg == b.pkg && a.module == b.module && a.filename == b.filename &&
		a.function == b.function && bytes.Equal(a.lineno, b.lineno) && bytes.Equal(a.colno, b.colno)
}

// Frame string fields, in the order readFrames copies them.
const (
	rPlatform = iota
	rAbsPath
	rFilename
	rModule
	rFunction
	rRawFunction
	rContext
	rPackage
	nRaw
)

// readFrames reads the frames' fields. Their strings are copied out of the
// tree into one string for the whole stack (one allocation, not one per
// field): the Result outlives the tree.
func (g *grouper) readFrames(frames []*event.Node) ([]frameIn, []frameView) {
	ins := make([]frameIn, len(frames))
	// Where each frame's string fields sit in the one copy (no pointers:
	// nothing for the collector to scan).
	spans := make([]struct{ at, n [nRaw]int32 }, len(frames))
	var sb strings.Builder
	// Two passes over the members: the first sizes the copy, the second
	// writes it (a repeated key keeps its last value, as a decoder does).
	total := 0
	for _, n := range frames {
		for i := range n.Len() {
			if rawField(n.Key(i)) >= 0 {
				total += len(n.Index(i).Bytes())
			}
		}
	}
	sb.Grow(total)
	for fi, n := range frames {
		f := &ins[fi]
		var lineno, colno, inAppN *event.Node
		for i := range n.Len() {
			v := n.Index(i)
			if k := rawField(n.Key(i)); k >= 0 {
				b := v.Bytes()
				spans[fi].at[k], spans[fi].n[k] = int32(sb.Len()), int32(len(b))
				sb.Write(b)
				continue
			}
			switch string(n.Key(i)) {
			case "instruction_addr":
				f.hasAddr = !v.IsNull()
			case "lineno":
				lineno = v
			case "colno":
				colno = v
			case "in_app":
				inAppN = v
			case "data":
				f.sourcemap = v.Kind() == event.Object && !get(v, "sourcemap").IsNull()
			}
		}
		f.lineno, _ = lineno.Lenient()
		f.colno, _ = colno.Lenient()
		f.inApp, _ = inAppN.Bool() // absent: not in-app (Sentry's default)
	}
	all := sb.String()
	views := make([]frameView, len(frames))
	for fi := range frames {
		var fs [nRaw]string
		for k := range fs {
			if l := spans[fi].n[k]; l > 0 {
				fs[k] = all[spans[fi].at[k] : spans[fi].at[k]+l]
			}
		}
		f := &ins[fi]
		f.platform, f.absPath, f.filename, f.module = fs[rPlatform], fs[rAbsPath], fs[rFilename], fs[rModule]
		f.function, f.rawFunction, f.contxt, f.pkg = fs[rFunction], fs[rRawFunction], fs[rContext], fs[rPackage]
		views[fi] = g.frameFacts(f)
	}
	return ins, views
}

// rawField is the index of a frame string field, -1 for other keys.
func rawField(key []byte) int {
	switch string(key) {
	case "platform":
		return rPlatform
	case "abs_path":
		return rAbsPath
	case "filename":
		return rFilename
	case "module":
		return rModule
	case "function":
		return rFunction
	case "raw_function":
		return rRawFunction
	case "context_line":
		return rContext
	case "package":
		return rPackage
	}
	return -1
}

// frameFacts completes f and returns what the stack-trace rules see of it.
func (g *grouper) frameFacts(f *frameIn) frameView {
	if f.platform == "" {
		f.platform = g.platform
	}
	f.family = family(f.platform)
	v := frameView{
		family:   f.family,
		absPath:  pathForm(f.absPath),
		filename: pathForm(f.filename),
		module:   f.module,
		function: f.function,
		pkg:      pathForm(f.pkg),
		inApp:    f.inApp,
		group:    true,
	}
	v.path = v.absPath
	if f.absPath == "" {
		v.path = v.filename
	}
	return v
}

// pathForm is p as path rules match it: forward slashes, lower case.
func pathForm(p string) string {
	if strings.IndexByte(p, '\\') >= 0 {
		p = strings.ReplaceAll(p, `\`, `/`)
	}
	return strings.ToLower(p)
}

// hasURLOrigin reports whether a frame's abs_path is a URL.
func hasURLOrigin(p string, allowFile bool) bool {
	switch {
	case p == "":
		return false
	case strings.HasPrefix(p, "http:"), strings.HasPrefix(p, "https:"), strings.HasPrefix(p, "applewebdata:"), strings.HasPrefix(p, "blob:"):
		return true
	case strings.HasPrefix(p, "file:"):
		return !allowFile
	}
	return false
}

var (
	rubyErb     = regexp.MustCompile(`__\d{4,}_\d{4,}$`)
	javaReflect = regexp.MustCompile(`(sun\.reflect\.Generated(?:Serialization)?ConstructorAccessor)\d+`)
	javaCGLIB   = regexp.MustCompile(`(\$\$[\w_]+?CGLIB\$\$)[a-fA-F0-9]+(_[0-9]+)?`)
	javaAssist  = regexp.MustCompile(`(\$\$_javassist)(?:_seam)?(?:_[0-9]+)?`)
	clojureFn   = regexp.MustCompile(`(\$fn__)\d+`)
)

// part is one child of a frame component (module, filename, function,
// context-line) as values: the component tree and the hash-only path
// (sum.go) both build on it, so they cannot disagree.
type part struct {
	id          string
	value       string // context-line: the raw line, emitted with whitespace collapsed
	hint        string
	contributes bool
}

func (p *part) off(hint string) {
	p.contributes = false
	if hint != "" {
		p.hint = hint
	}
}

func leafPart(id, v string) part { return part{id: id, value: v, contributes: v != ""} }

func modulePart(f *frameIn) part {
	p := leafPart("module", f.module)
	if f.module == "" {
		return p
	}
	switch f.platform {
	case "javascript":
		if strings.Contains(f.module, "/") && f.absPath != "" && strings.HasSuffix(f.absPath, f.module) {
			p.off("ignored bad javascript module")
		}
	case "java":
		m := f.module
		if strings.Contains(m, "$$Lambda$") {
			p.off("ignored java lambda")
		}
		switch {
		case strings.HasPrefix(m, "sun.reflect.GeneratedMethodAccessor"):
			p.value, p.hint = "sun.reflect.GeneratedMethodAccessor", "removed reflection marker"
		case strings.HasPrefix(m, "jdk.internal.reflect.GeneratedMethodAccessor"):
			p.value, p.hint = "jdk.internal.reflect.GeneratedMethodAccessor", "removed reflection marker"
		default:
			n := javaReflect.ReplaceAllString(m, "${1}<auto>")
			n = javaCGLIB.ReplaceAllString(n, "${1}<auto>")
			n = javaAssist.ReplaceAllString(n, "${1}<auto>")
			n = clojureFn.ReplaceAllString(n, "${1}<auto>")
			if n != m {
				p.value, p.hint = n, "removed codegen marker"
			}
		}
	}
	return p
}

func filenamePart(f *frameIn) part {
	if f.filename == "" {
		return part{id: "filename"}
	}
	name := f.filename
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	name = strings.ToLower(name)
	p := leafPart("filename", name)
	switch {
	case hasURLOrigin(f.absPath, true):
		p.off("ignored because frame points to a URL")
	case name == "<anonymous>":
		p.off("anonymous filename discarded")
	case name == "[native code]":
		p.off("native code indicated by filename")
	case f.platform == "java":
		if n := javaAssist.ReplaceAllString(name, "${1}<auto>"); n != name {
			p.value, p.hint = n, "cleaned javassist parts"
		}
	}
	if name == "" {
		p.off("")
	}
	return p
}

func contextLinePart(f *frameIn) part {
	if !hasNonSpace(f.contxt) {
		return part{id: "context-line"}
	}
	p := part{id: "context-line", value: f.contxt, contributes: true}
	switch {
	case utf8.RuneCountInString(f.contxt) > 120:
		p.off("discarded because line too long")
	case f.family == "javascript" && f.function == "" && hasURLOrigin(f.absPath, false):
		p.off("discarded because from URL origin and no function")
	}
	return p
}

func functionPart(f *frameIn, contextLine *part) part {
	fn := f.function
	if fn == "" || f.platform == "csharp" {
		if f.rawFunction != "" {
			fn = f.rawFunction
		}
	}
	if fn == "" {
		return part{id: "function"}
	}
	p := leafPart("function", fn)
	switch {
	case f.platform == "ruby":
		if strings.HasPrefix(fn, "block ") {
			p.value, p.hint = "block", "ruby block"
		} else if n := rubyErb.ReplaceAllString(fn, ""); n != fn {
			p.value, p.hint = n, "removed generated erb template suffix"
		}
	case f.platform == "php":
		if strings.HasPrefix(fn, "[Anonymous") || strings.HasPrefix(fn, "class@anonymous\x00") {
			p.off("ignored anonymous function")
		}
		if strings.HasPrefix(fn, "class@anonymous") {
			if i := strings.LastIndex(fn, "::"); i >= 0 {
				p.value, p.hint = fn[i+2:], "anonymous class method"
			}
		}
	case f.platform == "java":
		if strings.HasPrefix(fn, "lambda$") {
			p.off("ignored lambda function")
		}
	case f.family == "native":
		if fn == "<redacted>" || fn == "<unknown>" {
			p.off("ignored unknown function")
		}
	case f.family == "javascript":
		if i := strings.LastIndexByte(fn, '.'); i >= 0 {
			p.value, p.hint = fn[i+1:], "trimmed javascript function"
			if fn[i+1:] == "" {
				p.contributes = false
			}
		}
		if f.sourcemap && contextLine != nil && contextLine.contributes {
			p.off("ignored because sourcemap used and context line available")
		}
	}
	return p
}

// frameParts is Sentry's frame:v1 for one frame: its children in order
// (module, filename, function and, on context-line platforms,
// context-line) into ps, and the hint when the whole frame is ignored
// ("" when it is not). The frame contributes when a child does and off is "".
func frameParts(f *frameIn, ps *[4]part) (n int, off string) {
	module, filename := modulePart(f), filenamePart(f)
	if module.contributes && filename.contributes {
		filename.off("module takes precedence")
	}
	var ctx *part
	var ctxPart part
	if contextLinePlatform(f.platform) {
		ctxPart = contextLinePart(f)
		ctx = &ctxPart
	}
	function := functionPart(f, ctx)
	if f.family == "javascript" {
		fn := f.rawFunction
		if fn == "" {
			fn = f.function
		}
		if i := strings.LastIndexByte(fn, '.'); i >= 0 {
			fn = fn[i+1:]
		}
		switch {
		case fn == "":
			function.contributes = false
		case fn == "?" || fn == "<anonymous function>" || fn == "<anonymous>" || fn == "Anonymous function" || strings.HasSuffix(fn, "/<"):
			function.off("ignored unknown function name")
		}
		switch f.absPath {
		case "[native code]", "native code", "eval code", "<anonymous>":
			off = "ignored low quality javascript frame"
		}
		if fn == "eval" {
			off = "ignored low quality javascript frame"
		}
	}
	ps[0], ps[1], ps[2] = module, filename, function
	n = 3
	if ctx != nil {
		ps[3] = ctxPart
		n = 4
	}
	return n, off
}

// hasNonSpace reports whether s has a rune that is not white space (its
// context line is not empty once whitespace is collapsed).
func hasNonSpace(s string) bool {
	return strings.IndexFunc(s, func(r rune) bool { return !unicode.IsSpace(r) }) >= 0
}

// appendFields appends s with white-space runs collapsed to one space and
// the ends trimmed: strings.Join(strings.Fields(s), " ") without the
// allocations (invalid UTF-8 is copied as it is, as Fields keeps it).
func appendFields(dst []byte, s string) []byte {
	start := len(dst)
	space := false
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf { // ASCII: most context lines are
			if asciiSpace[c] {
				space = true
			} else {
				if space && len(dst) > start {
					dst = append(dst, ' ')
				}
				space = false
				dst = append(dst, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if unicode.IsSpace(r) {
			space = true
		} else {
			if space && len(dst) > start {
				dst = append(dst, ' ')
			}
			space = false
			dst = append(dst, s[i:i+size]...)
		}
		i += size
	}
	return dst
}

// asciiSpace is unicode.IsSpace for the ASCII bytes.
var asciiSpace = [utf8.RuneSelf]bool{'\t': true, '\n': true, '\v': true, '\f': true, '\r': true, ' ': true}

// frameComponent is Sentry's frame:v1 for one frame, the same in every
// variant (in-app and rule marks are applied on a copy per variant).
func (g *grouper) frameComponent(f *frameIn) *Component {
	var ps [4]part
	n, off := frameParts(f, &ps)
	var children [4]*Component
	for i := range n {
		p := &ps[i]
		c := g.comp(p.id)
		c.Value, c.Hint, c.Contributes = p.value, p.hint, p.contributes
		if p.id == "context-line" && p.value != "" {
			c.Value = string(appendFields(nil, p.value))
		}
		children[i] = c
	}
	c := g.node("frame", children[:n]...)
	if off != "" {
		c.off(off)
	}
	return c
}

// stacktrace is Sentry's stacktrace:v1: an "app" and a "system" variant.
func (g *grouper) stacktrace(st *event.Node) map[string]*Component {
	ins, views := g.readFrames(list(get(st, "frames")))
	g.finality(ins, views)
	g.cand = builtin.apply(views, g.cand)
	base := make([]*Component, len(ins))
	for i := range ins {
		c := g.frameComponent(&ins[i])
		if i > 0 && sameFrame(&ins[i], &ins[i-1]) {
			c.off("ignored due to recursion")
		}
		if !views[i].group {
			c.off("ignored by stack trace rule")
		}
		base[i] = c
	}
	if len(ins) == 1 && base[0].Contributes && ins[0].family == "javascript" && ins[0].function == "" && hasURLOrigin(ins[0].absPath, false) {
		base[0].off("ignored single non-URL JavaScript frame")
	}
	system := g.node("stacktrace", base...)
	appFrames := g.children(base...)
	for i, c := range base {
		if !views[i].inApp && c.Contributes {
			appFrames[i] = g.offCopy(c, "non app frame")
		}
	}
	app := g.node("stacktrace", appFrames...)
	if !app.Contributes && len(base) > 0 {
		app.Hint = "ignored because it contains no in-app frames"
	}
	return map[string]*Component{"app": app, "system": system}
}

// finality notes frames whose grouping values Sentry only knows after
// processing Baton does not do (docs/grouping.md "Final").
func (g *grouper) finality(ins []frameIn, views []frameView) {
	for i := range ins {
		f := &ins[i]
		switch f.family {
		case "native":
			g.notFinal("native frames: Sentry symbolicates them first")
		case "javascript":
			p := f.absPath
			if p == "" {
				p = f.filename
			}
			if f.contxt == "" && !f.sourcemap && jsSourceFile(p) {
				g.notFinal("JavaScript frames without source context: Sentry applies source maps and fetches sources")
			}
		}
		if f.hasAddr && f.function == "" {
			g.notFinal("frames with an address but no function: Sentry symbolicates them first")
		}
		if f.platform == "java" && obfuscated(f.module) {
			g.notFinal("Java module looks obfuscated: Sentry applies the ProGuard/R8 mapping")
		}
	}
}

func jsSourceFile(p string) bool {
	if p == "" {
		return false
	}
	if strings.Contains(p, "://") {
		return true
	}
	if i := strings.IndexAny(p, "?#"); i >= 0 {
		p = p[:i]
	}
	// The extension, case-insensitively, without lower-casing the path.
	hasExt := func(ext string) bool { return len(p) >= len(ext) && strings.EqualFold(p[len(p)-len(ext):], ext) }
	return hasExt(".js") || hasExt(".mjs") || hasExt(".cjs") || hasExt(".jsx")
}

// obfuscated reports a Java module like "a.b.c" or "o.Zz": every segment at
// most two characters long.
func obfuscated(module string) bool {
	if module == "" || !strings.Contains(module, ".") {
		return false
	}
	for seg := range strings.SplitSeq(module, ".") {
		if len(seg) > 2 {
			return false
		}
	}
	return true
}

// exceptions is Sentry's chained-exception:v1 over the exception list.
func (g *grouper) exceptions(exs []*event.Node) map[string]*Component {
	byName := map[string][]*Component{}
	order := []string{}
	for _, ex := range exs {
		if b, _ := get(get(ex, "mechanism"), "is_exception_group").Bool(); b {
			g.notFinal("exception group: Sentry's child selection is not reproduced")
		}
		for name, c := range g.singleException(ex) {
			if _, ok := byName[name]; !ok {
				order = append(order, name)
			}
			byName[name] = append(byName[name], c)
		}
	}
	out := make(map[string]*Component, len(byName))
	for _, name := range order {
		cs := byName[name]
		if len(exs) == 1 {
			out[name] = cs[0]
		} else {
			out[name] = node("chained-exception", cs...)
		}
	}
	return removeNonStacktrace(out)
}

func (g *grouper) singleException(ex *event.Node) map[string]*Component {
	typ := leaf("type", str(get(ex, "type")))
	mech := get(ex, "mechanism")
	var nsError *Component
	if b, _ := get(mech, "synthetic").Bool(); b {
		typ.off("ignored because exception is synthetic")
	}
	if ns := get(get(mech, "meta"), "ns_error"); ns.Kind() == event.Object {
		nsError = node("ns-error", leaf("domain", text(get(ns, "domain"))), leaf("code", text(get(ns, "code"))))
		g.notFinal("NSError exception: cocoa events need symbolication")
	}
	var stacks map[string]*Component
	if st := get(ex, "stacktrace"); hasFrames(st) {
		stacks = g.stacktrace(st)
	} else {
		stacks = map[string]*Component{"app": {ID: "stacktrace"}}
	}
	raw, hasValue := get(ex, "value").Lenient()
	// Parameterizing is the costly part of a frame-less hash: skip it when
	// every variant's stack trace contributes, which ignores the value
	// (it is then shown as sent).
	needValue := nsError == nil || !nsError.Contributes
	if needValue {
		needValue = false
		for _, st := range stacks {
			needValue = needValue || !st.Contributes
		}
	}
	valueNorm, hint := string(raw), ""
	if hasValue && needValue {
		valueNorm = parameterize(valueNorm)
		g.drift(valueNorm)
		if valueNorm != string(raw) {
			hint = "stripped event-specific values"
		}
	}
	out := make(map[string]*Component, len(stacks))
	for name, st := range stacks {
		value := leaf("value", valueNorm)
		value.Hint = hint
		if st.Contributes && value.Contributes {
			value.off("ignored because stacktrace takes precedence")
		}
		if nsError != nil && nsError.Contributes && value.Contributes {
			value.off("ignored because ns-error info takes precedence")
		}
		children := []*Component{st, typ}
		if nsError != nil {
			children = append(children, nsError)
		}
		children = append(children, value)
		out[name] = node("exception", children...)
	}
	return out
}

// threads is Sentry's threads:v1: the stack of the one thread.
func (g *grouper) threads(ths []*event.Node) map[string]*Component {
	if len(ths) != 1 {
		withStack := 0
		for _, t := range ths {
			if hasFrames(get(t, "stacktrace")) {
				withStack++
			}
		}
		if withStack > 0 {
			g.notFinal("several threads: Sentry's thread selection is not reproduced")
		}
		return map[string]*Component{"app": {ID: "threads", Hint: "ignored because it contains several threads"}}
	}
	st := get(ths[0], "stacktrace")
	if !hasFrames(st) {
		return map[string]*Component{"app": {ID: "threads", Hint: "thread has no stacktrace"}}
	}
	out := map[string]*Component{}
	for name, c := range g.stacktrace(st) {
		out[name] = node("threads", c)
	}
	return removeNonStacktrace(out)
}

// message is Sentry's message:v1: the template (else the formatted text),
// cut to its first two non-blank lines and parameterized.
func message(root *event.Node) *Component {
	var raw string
	if le := get(root, "logentry"); le.Kind() == event.Object {
		raw = str(get(le, "message"))
		if raw == "" {
			raw = str(get(le, "formatted"))
		}
	} else if m := get(root, "message"); m.Kind() == event.String {
		raw = str(m)
	} else if m.Kind() == event.Object {
		raw = str(get(m, "message"))
		if raw == "" {
			raw = str(get(m, "formatted"))
		}
	}
	if raw == "" {
		return nil
	}
	norm := parameterize(trimLines(raw))
	c := leaf("message", norm)
	if norm != raw {
		c.Hint = "stripped event-specific values"
	}
	return c
}

// trimLines keeps the first two non-blank lines and marks a cut with "...".
func trimLines(s string) string {
	if !strings.ContainsAny(s, "\n\r\v\f\x1c\x1d\x1e\u0085") && !strings.Contains(s, "\u2028") && !strings.Contains(s, "\u2029") {
		return s
	}
	var kept []string
	for line := range strings.SplitSeq(strings.NewReplacer("\r\n", "\n", "\r", "\n", "\v", "\n", "\f", "\n", "\x1c", "\n", "\x1d", "\n", "\x1e", "\n", "\u0085", "\n", "\u2028", "\n", "\u2029", "\n").Replace(s), "\n") {
		if strings.TrimSpace(line) != "" {
			kept = append(kept, line)
			if len(kept) == 2 {
				break
			}
		}
	}
	out := strings.Join(kept, "\n")
	if out != s {
		out += "..."
	}
	return out
}

// security is Sentry's csp/hpkp/expect-ct/expect-staple strategy.
func (g *grouper) security(id string, n *event.Node) *Component {
	if id != "csp" {
		return node(id, leaf("salt", id), leaf("hostname", str(get(n, "hostname"))))
	}
	directive := str(get(n, "effective_directive"))
	blocked := normalizeBlockedURI(str(get(n, "blocked_uri")), g)
	violation := &Component{ID: "violation"}
	uri := leaf("uri", blocked)
	if t := localScriptViolation(directive, str(get(n, "violated_directive")), blocked); t != "" {
		violation = leaf("violation", "'"+t+"'")
		uri.off("violation takes precedence")
	} else {
		violation.Hint = "not a local script violation"
	}
	return node("csp", leaf("salt", directive), violation, uri)
}

func localScriptViolation(effective, violated, blocked string) string {
	if violated == "" || effective != "script-src" || blocked != "'self'" {
		return ""
	}
	switch {
	case strings.Contains(violated, "'unsafe-inline'"):
		return "unsafe-inline"
	case strings.Contains(violated, "'unsafe-eval'"):
		return "unsafe-eval"
	}
	return ""
}

func normalizeBlockedURI(v string, g *grouper) string {
	switch {
	case v == "" || v == "self" || v == "'self'":
		return "'self'"
	case strings.HasPrefix(v, "data:"), strings.HasPrefix(v, "blob:"):
		g.notFinal("CSP blocked-uri scheme: normalization not verified")
		return v[:strings.IndexByte(v, ':')+1]
	}
	if u, err := url.Parse(v); err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" {
		return u.Host
	}
	g.notFinal("CSP blocked-uri form: normalization not verified")
	return v
}

var fingerprintVar = regexp.MustCompile(`^\{\{\s*(\S+?)\s*\}\}$`)

// fingerprint applies the event's fingerprint: custom (replaces the
// default variants) or hybrid ("{{ default }}" plus salt values).
func (g *grouper) fingerprint(root *event.Node, res *Result) {
	fp := get(root, "fingerprint")
	if fp.Kind() != event.Array || fp.Len() == 0 {
		return
	}
	var values []string
	hasDefault := false
	for i := range fp.Len() {
		e := fp.Index(i)
		if e.Kind() != event.String {
			g.notFinal("fingerprint entry that is not a string")
		}
		v := text(e)
		if m := fingerprintVar.FindStringSubmatch(v); m != nil {
			if m[1] == "default" {
				hasDefault = true
				continue
			}
			g.notFinal("fingerprint variable " + v + ": not resolved at the edge")
		}
		values = append(values, v)
	}
	if hasDefault && len(values) == 0 {
		return
	}
	if hasDefault {
		for i := range res.Variants {
			v := &res.Variants[i]
			v.Type, v.Values = "salted-component", values
			if v.Hash == "" {
				continue
			}
			g.in = g.in[:0]
			for _, c := range v.Components {
				g.in = feed(g.in, c)
			}
			for _, s := range values {
				g.in = append(g.in, s...)
			}
			v.Hash = md5Hex(g.in)
		}
		return
	}
	for i := range res.Variants {
		v := &res.Variants[i]
		if v.Hash != "" {
			v.Hash, v.Contributes, v.Hint = "", false, "custom fingerprint takes precedence"
		}
	}
	g.in = g.in[:0]
	for _, s := range values {
		g.in = append(g.in, s...)
	}
	res.Variants = append([]Variant{{Name: "custom-fingerprint", Type: "custom-fingerprint", Contributes: true,
		Values: values, Hash: md5Hex(g.in)}}, res.Variants...)
}

var md5Re = regexp.MustCompile(`^[0-9a-f]{32}$`)

// checksumResult is the legacy "checksum" field's grouping, which replaces
// every other variant: the value itself is the "checksum" hash, and when it
// is not 32 lowercase hex digits its md5 is added as "hashed-checksum".
func checksumResult(cs string) Result {
	res := Result{Config: ConfigID, Rules: RulesVersion, Primary: cs, PrimaryVariant: "checksum", Final: true,
		Variants: []Variant{{Name: "checksum", Type: "checksum", Contributes: true, Values: []string{cs}, Hash: cs}}}
	if !md5Re.MatchString(cs) {
		res.Variants = append(res.Variants, Variant{Name: "hashed-checksum", Type: "hashed-checksum", Contributes: true,
			Values: []string{cs}, Hash: md5Hex([]byte(cs))})
	}
	return res
}

// builtinFingerprints flags JavaScript events Sentry's built-in
// fingerprinting rules (javascript@2024-02-02) may regroup.
func (g *grouper) builtinFingerprints(root *event.Node) {
	if family(g.platform) != "javascript" {
		return
	}
	for _, ex := range list(get(root, "exception")) {
		t, v := str(get(ex, "type")), strings.ToLower(text(get(ex, "value")))
		if t == "ChunkLoadError" || strings.Contains(v, "loading chunk") || strings.Contains(v, "loading css chunk") ||
			strings.Contains(v, "hydrat") || strings.Contains(v, "minified react error") {
			g.notFinal("JavaScript error a built-in Sentry fingerprint rule may match")
		}
	}
}
