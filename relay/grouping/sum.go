package grouping

import (
	"crypto/md5"
	"encoding/hex"
	"strings"
	"sync"
	"unsafe"

	"github.com/baton-relay/baton/relay/event"
)

// Brief is what Sum computes: the primary hash (empty when no variant has
// one), the variant it comes from, and whether it is final, with the
// reason when it is not. They equal Hash's Primary, PrimaryVariant, Final
// and Reason.
type Brief struct {
	Primary        string
	PrimaryVariant string
	Final          bool
	Reason         string
}

// Sum is Hash for ingest: the primary hash and Final without component
// trees or variants. It streams each variant's contributing values into a
// pooled buffer and hashes only the variant that wins, so a typical event
// costs a few allocations. The explaining path (Hash, `baton grouping
// hash`) and Sum share the per-frame rules (frameParts, the stack-trace
// rules, parameterize); TestSumAgrees and FuzzHash hold them equal.
//
// Strings Sum reads stay in the tree (no copies): root's tree must not
// change during the call.
func Sum(root *event.Node) Brief {
	s := summers.Get().(*summer)
	b := s.run(root)
	s.reset()
	summers.Put(s)
	return b
}

var summers = sync.Pool{New: func() any { return new(summer) }}

// maxScratch bounds the buffers a pooled summer keeps: one huge event does
// not pin its scratch for ever.
const maxScratch = 64 << 10

type summer struct {
	g              grouper
	app, sys, def  []byte // hash input per variant of the strategy that wins
	salt           []byte // fingerprint values
	exs, frames, o []*event.Node
	ins            []frameIn
	views          []frameView
}

func (s *summer) reset() {
	s.g.reasons = s.g.reasons[:0]
	s.app, s.sys, s.def, s.salt = trim(s.app), trim(s.sys), trim(s.def), trim(s.salt)
	clear(s.exs[:cap(s.exs)])
	clear(s.frames[:cap(s.frames)])
	clear(s.o[:cap(s.o)])
	clear(s.ins[:cap(s.ins)]) // strings point into the caller's tree
	clear(s.views[:cap(s.views)])
}

func trim(b []byte) []byte {
	if cap(b) > maxScratch {
		return nil
	}
	return b[:0]
}

// variants is which variants of one strategy contribute; the inputs are
// in the summer's app, sys and def buffers.
type variants struct{ app, sys, def bool }

func (v variants) any() bool { return v.app || v.sys || v.def }

func (s *summer) run(root *event.Node) Brief {
	g := &s.g
	g.platform = view(get(root, "platform"))
	if g.platform == "" {
		g.platform = "other"
	}
	if cs := view(get(root, "checksum")); cs != "" {
		return Brief{Primary: strings.Clone(cs), PrimaryVariant: "checksum", Final: true}
	}
	// Strategies in score order; the first with a contributing variant
	// wins every variant (assemble). Later ones still run for their
	// finality notes, without building hash input.
	var win variants
	if s.exs = s.list(s.exs[:0], get(root, "exception")); len(s.exs) > 0 {
		win = s.exceptions(s.exs)
	}
	if th := get(root, "threads"); !th.IsNull() {
		if v := s.threads(th, !win.any()); !win.any() {
			win = v
		}
	}
	if st := get(root, "stacktrace"); hasFrames(st) {
		s.resetInput(!win.any())
		a, y := s.stack(st, !win.any())
		if v := removeNonStack(variants{app: a, sys: y}, a, y, true); !win.any() {
			win = v
		}
	}
	for _, sec := range []struct{ key, id string }{{"csp", "csp"}, {"hpkp", "hpkp"}, {"expectstaple", "expect-staple"}, {"expectct", "expect-ct"}} {
		if n := get(root, sec.key); n.Kind() == event.Object {
			if c := g.security(sec.id, n); !win.any() && c.Contributes {
				s.def = feed(s.def[:0], c)
				win = variants{def: true}
			}
		}
	}
	if !get(root, "template").IsNull() {
		g.notFinal("template interface: not implemented at the edge")
	}
	if !win.any() {
		if c := message(root); c != nil && c.Contributes {
			g.drift(c.Value)
			s.def = feed(s.def[:0], c)
			win = variants{def: true}
		}
	}
	g.builtinFingerprints(root)
	s.o = s.list(s.o[:0], get(get(root, "debug_meta"), "images"))
	for _, img := range s.o {
		switch view(get(img, "type")) {
		case "proguard", "jvm":
			g.notFinal("ProGuard/R8 mapping: Sentry deobfuscates Java frames first")
		case "macho", "elf", "pe", "pe_dotnet", "symbolic", "apple", "wasm", "sourcemap", "bcsymbolmap", "il2cpp", "breakpad":
			g.notFinal("debug images: Sentry symbolicates or source-maps frames first")
		}
	}

	// Primary: the first hashed variant in rank order (app, default,
	// system); dedupSystem cannot change it.
	var in []byte
	b := Brief{}
	switch {
	case win.app:
		in, b.PrimaryVariant = s.app, "app"
	case win.def:
		in, b.PrimaryVariant = s.def, "default"
	case win.sys:
		in, b.PrimaryVariant = s.sys, "system"
	}
	switch custom, hybrid := s.fingerprint(root); {
	case custom:
		b.Primary, b.PrimaryVariant = md5String(s.salt), "custom-fingerprint"
	case win.any():
		if hybrid {
			in = append(in, s.salt...)
		}
		b.Primary = md5String(in)
	}
	b.Final = len(g.reasons) == 0
	b.Reason = strings.Join(g.reasons, "; ")
	return b
}

// resetInput empties the app and system inputs before a stack strategy
// builds them (only while no strategy has won).
func (s *summer) resetInput(need bool) {
	if need {
		s.app, s.sys = s.app[:0], s.sys[:0]
	}
}

// removeNonStack is removeNonStacktrace on flags: when both variants exist
// and one has a contributing stack trace, a variant without one does not
// contribute.
func removeNonStack(v variants, appStack, sysStack, hasSys bool) variants {
	if hasSys && (appStack || sysStack) {
		v.app = v.app && appStack
		v.sys = v.sys && sysStack
	}
	return v
}

// stack reads a stack trace's frames (for finality) and, when need is
// set, appends each contributing frame's values to the system input and,
// for in-app frames, to the app input. It reports which of the two
// stack traces contribute.
func (s *summer) stack(st *event.Node, need bool) (app, sys bool) {
	s.frames = s.list(s.frames[:0], get(st, "frames"))
	s.readFrames(s.frames)
	s.g.finality(s.ins, s.views)
	if !need {
		return false, false
	}
	s.g.cand = builtin.apply(s.views, s.g.cand)
	var ps [4]part
	for i := range s.ins {
		f := &s.ins[i]
		n, off := frameParts(f, &ps)
		on := false
		for j := range n {
			on = on || ps[j].contributes
		}
		if !on || off != "" || (i > 0 && sameFrame(f, &s.ins[i-1])) || !s.views[i].group {
			continue
		}
		if len(s.ins) == 1 && f.family == "javascript" && f.function == "" && hasURLOrigin(f.absPath, false) {
			continue // "ignored single non-URL JavaScript frame"
		}
		mark := len(s.sys)
		for j := range n {
			switch p := &ps[j]; {
			case !p.contributes:
			case p.id == "context-line":
				s.sys = appendFields(s.sys, p.value)
			default:
				s.sys = append(s.sys, p.value...)
			}
		}
		sys = true
		if s.views[i].inApp {
			s.app = append(s.app, s.sys[mark:]...)
			app = true
		}
	}
	return app, sys
}

// readFrames is grouper.readFrames without copies: the strings stay in
// the tree, which outlives the call.
func (s *summer) readFrames(frames []*event.Node) {
	s.ins = grow(s.ins, len(frames))
	s.views = grow(s.views, len(frames))
	for fi, n := range frames {
		f := &s.ins[fi]
		*f = frameIn{}
		var lineno, colno, inAppN *event.Node
		for i := range n.Len() {
			v := n.Index(i)
			switch string(n.Key(i)) {
			case "platform":
				f.platform = view(v)
			case "abs_path":
				f.absPath = view(v)
			case "filename":
				f.filename = view(v)
			case "module":
				f.module = view(v)
			case "function":
				f.function = view(v)
			case "raw_function":
				f.rawFunction = view(v)
			case "context_line":
				f.contxt = view(v)
			case "package":
				f.pkg = view(v)
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
		f.inApp, _ = inAppN.Bool()
		s.views[fi] = s.g.frameFacts(f)
	}
}

// exceptions is chained-exception:v1 on flags: per exception its stack
// trace, type, ns-error and value, in that order, into the app input and
// (for exceptions with a stack trace) the system input.
func (s *summer) exceptions(exs []*event.Node) variants {
	s.app, s.sys = s.app[:0], s.sys[:0]
	var v variants
	hasSys, appStack, sysStack := false, false, false
	for _, ex := range exs {
		mech := get(ex, "mechanism")
		if b, _ := get(mech, "is_exception_group").Bool(); b {
			s.g.notFinal("exception group: Sentry's child selection is not reproduced")
		}
		typ := view(get(ex, "type"))
		if b, _ := get(mech, "synthetic").Bool(); b {
			typ = ""
		}
		var domain, code string
		if ns := get(get(mech, "meta"), "ns_error"); ns.Kind() == event.Object {
			domain, code = lenient(get(ns, "domain")), lenient(get(ns, "code"))
			s.g.notFinal("NSError exception: cocoa events need symbolication")
		}
		nsOn := domain != "" || code != ""
		st := get(ex, "stacktrace")
		withStack := hasFrames(st)
		a, y := false, false
		if withStack {
			a, y = s.stack(st, true)
			hasSys = true
		}
		appStack, sysStack = appStack || a, sysStack || y
		raw := lenient(get(ex, "value"))
		value, done := "", false
		tail := func(dst []byte, stackOn bool) ([]byte, bool) {
			dst = append(dst, typ...)
			dst = append(append(dst, domain...), code...)
			on := stackOn || typ != "" || nsOn
			if !stackOn && !nsOn && raw != "" {
				if !done {
					value, done = parameterize(raw), true
					s.g.drift(value)
				}
				dst = append(dst, value...)
				on = on || value != ""
			}
			return dst, on
		}
		var on bool
		s.app, on = tail(s.app, a)
		v.app = v.app || on
		if withStack {
			s.sys, on = tail(s.sys, y)
			v.sys = v.sys || on
		}
	}
	return removeNonStack(v, appStack, sysStack, hasSys)
}

// threads is threads:v1 on flags: the stack of the one thread.
func (s *summer) threads(th *event.Node, need bool) variants {
	s.o = s.list(s.o[:0], th)
	if len(s.o) != 1 {
		for _, t := range s.o {
			if hasFrames(get(t, "stacktrace")) {
				s.g.notFinal("several threads: Sentry's thread selection is not reproduced")
				break
			}
		}
		return variants{}
	}
	st := get(s.o[0], "stacktrace")
	if !hasFrames(st) {
		return variants{}
	}
	s.resetInput(need)
	a, y := s.stack(st, need)
	return removeNonStack(variants{app: a, sys: y}, a, y, true)
}

// fingerprint reads the event's fingerprint into s.salt: custom (it
// replaces the variants) or hybrid (its values salt them), as
// grouper.fingerprint.
func (s *summer) fingerprint(root *event.Node) (custom, hybrid bool) {
	fp := get(root, "fingerprint")
	if fp.Kind() != event.Array || fp.Len() == 0 {
		return false, false
	}
	s.salt = s.salt[:0]
	values, hasDefault := 0, false
	for i := range fp.Len() {
		e := fp.Index(i)
		if e.Kind() != event.String {
			s.g.notFinal("fingerprint entry that is not a string")
		}
		v := lenient(e)
		if strings.HasPrefix(v, "{{") {
			if m := fingerprintVar.FindStringSubmatch(v); m != nil {
				if m[1] == "default" {
					hasDefault = true
					continue
				}
				s.g.notFinal("fingerprint variable " + v + ": not resolved at the edge")
			}
		}
		s.salt = append(s.salt, v...)
		values++
	}
	switch {
	case hasDefault && values == 0:
		return false, false
	case hasDefault:
		return false, true
	}
	return true, false
}

// list is the package's list appending to dst (no allocation once dst is
// big enough).
func (s *summer) list(dst []*event.Node, n *event.Node) []*event.Node {
	if n.Kind() == event.Object {
		n = get(n, "values")
	}
	if n.Kind() != event.Array {
		return dst
	}
	for i := range n.Len() {
		if e := n.Index(i); e.Kind() == event.Object {
			dst = append(dst, e)
		}
	}
	return dst
}

func grow[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}

// view is a string node's content without a copy (valid while the tree
// is); "" for other kinds.
func view(n *event.Node) string {
	b := n.Bytes()
	return unsafe.String(unsafe.SliceData(b), len(b))
}

// lenient is text without a copy.
func lenient(n *event.Node) string {
	b, _ := n.Lenient()
	return unsafe.String(unsafe.SliceData(b), len(b))
}

func md5String(b []byte) string {
	sum := md5.Sum(b)
	return hex.EncodeToString(sum[:])
}
