package grouping

import (
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/baton-relay/baton/relay/event"
)

// ConfigID is the Sentry grouping configuration Hash reproduces.
const ConfigID = "newstyle:2023-01-11"

// Component is one node of a variant's component tree. A leaf carries a
// Value (written as Sentry's one-element "values"); an inner node carries
// Children. Only contributing nodes feed the hash.
type Component struct {
	ID          string
	Contributes bool
	Hint        string
	Value       string
	Children    []*Component
}

// MarshalJSON writes c as Sentry shows a component: id, contributes, hint,
// values, children.
func (c *Component) MarshalJSON() ([]byte, error) {
	var values []string
	if c.Value != "" {
		values = []string{c.Value}
	}
	return json.Marshal(struct {
		ID          string       `json:"id"`
		Contributes bool         `json:"contributes"`
		Hint        string       `json:"hint,omitempty"`
		Values      []string     `json:"values,omitempty"`
		Children    []*Component `json:"children,omitempty"`
	}{c.ID, c.Contributes, c.Hint, values, c.Children})
}

// Variant is one way Sentry hashes the event ("app", "system", "default",
// "custom-fingerprint", "checksum", ...). Hash is empty when the variant
// has nothing contributing (Sentry's null hash).
type Variant struct {
	Name        string       `json:"name"`
	Type        string       `json:"type"`
	Hash        string       `json:"hash,omitempty"`
	Contributes bool         `json:"contributes"`
	Hint        string       `json:"hint,omitempty"`
	Values      []string     `json:"values,omitempty"` // fingerprint, checksum or salt values
	Components  []*Component `json:"components,omitempty"`
}

// MarshalJSON writes an empty Hash as null, as Sentry shows a variant that
// has nothing contributing.
func (v Variant) MarshalJSON() ([]byte, error) {
	type plain Variant
	var h any
	if v.Hash != "" {
		h = v.Hash
	}
	return json.Marshal(struct {
		plain
		Hash any `json:"hash"`
	}{plain(v), h})
}

// Result is what Hash computed. Primary is the hash Sentry files the event
// under (empty when no variant has one). Final is false when Sentry would
// compute a different hash after steps Baton does not run (symbolication,
// source maps, ProGuard, ...); Reason then says which.
type Result struct {
	Config   string    `json:"config"`
	Rules    string    `json:"rules"`
	Variants []Variant `json:"variants"`
	Primary  string    `json:"primary,omitempty"`
	// PrimaryVariant names the variant Primary comes from ("app",
	// "system", "default", "custom-fingerprint", "checksum").
	PrimaryVariant string `json:"primary_variant,omitempty"`
	Final          bool   `json:"final"`
	Reason         string `json:"reason,omitempty"`
}

// Hash computes the grouping variants of a normalized event (the root
// object of its tree). It reads the event only.
func Hash(root *event.Node) Result {
	g := grouper{platform: str(get(root, "platform"))}
	if g.platform == "" {
		g.platform = "other"
	}
	return g.run(root)
}

type grouper struct {
	platform string
	reasons  []string
	cand     []int  // rule-index scratch
	in       []byte // hash input scratch
	comps    []Component
	ptrs     []*Component
}

// drift marks the result not final when parameterized text that feeds
// the hash holds a value Sentry versions parameterize differently.
func (g *grouper) drift(parameterized string) {
	if why := paramDrift(parameterized); why != "" {
		g.notFinal(why)
	}
}

// contributes reports whether some variant of a strategy contributes.
func contributes(outs []strategyOut) bool {
	for _, o := range outs {
		for _, c := range o.variants {
			if c.Contributes {
				return true
			}
		}
	}
	return false
}

func (g *grouper) notFinal(why string) {
	if !slices.Contains(g.reasons, why) {
		g.reasons = append(g.reasons, why)
	}
}

// strategyOut is what one strategy produced, by variant name.
type strategyOut struct {
	name     string
	variants map[string]*Component
}

func (g *grouper) run(root *event.Node) Result {
	if cs := str(get(root, "checksum")); cs != "" {
		return checksumResult(cs)
	}
	var outs []strategyOut
	if ex := list(get(root, "exception")); len(ex) > 0 {
		outs = append(outs, strategyOut{"exception", g.exceptions(ex)})
	}
	if th := get(root, "threads"); !th.IsNull() {
		if v := g.threads(list(th)); v != nil {
			outs = append(outs, strategyOut{"threads", v})
		}
	}
	if st := get(root, "stacktrace"); hasFrames(st) {
		outs = append(outs, strategyOut{"stacktrace", removeNonStacktrace(g.stacktrace(st))})
	}
	for _, sec := range []struct{ key, id string }{{"csp", "csp"}, {"hpkp", "hpkp"}, {"expectstaple", "expect-staple"}, {"expectct", "expect-ct"}} {
		if n := get(root, sec.key); n.Kind() == event.Object {
			outs = append(outs, strategyOut{sec.id, map[string]*Component{"default": g.security(sec.id, n)}})
		}
	}
	if !get(root, "template").IsNull() {
		g.notFinal("template interface: not implemented at the edge")
	}
	if c := message(root); c != nil {
		if c.Contributes && !contributes(outs) { // the message is what the event groups by
			g.drift(c.Value)
		}
		outs = append(outs, strategyOut{"message", map[string]*Component{"default": c}})
	}
	g.builtinFingerprints(root)
	for _, img := range list(get(get(root, "debug_meta"), "images")) {
		switch str(get(img, "type")) {
		case "proguard", "jvm":
			g.notFinal("ProGuard/R8 mapping: Sentry deobfuscates Java frames first")
		case "macho", "elf", "pe", "pe_dotnet", "symbolic", "apple", "wasm", "sourcemap", "bcsymbolmap", "il2cpp", "breakpad":
			g.notFinal("debug images: Sentry symbolicates or source-maps frames first")
		}
	}

	variants := assemble(outs)
	res := Result{Config: ConfigID, Rules: RulesVersion}
	for _, name := range variantOrder(variants) {
		cs := variants[name]
		v := Variant{Name: name, Type: "component", Components: cs}
		for _, c := range cs {
			v.Contributes = v.Contributes || c.Contributes
		}
		if v.Contributes {
			g.in = g.in[:0]
			for _, c := range cs {
				g.in = feed(g.in, c)
			}
			v.Hash = md5Hex(g.in)
		}
		res.Variants = append(res.Variants, v)
	}
	dedupSystem(res.Variants)
	g.fingerprint(root, &res)
	res.Primary, res.PrimaryVariant = primary(res.Variants)
	res.Final = len(g.reasons) == 0
	res.Reason = strings.Join(g.reasons, "; ")
	return res
}

// assemble builds each variant's component list from the strategies in
// score order: the first contributing strategy of a variant wins; a later
// one stays in the tree non-contributing, also when a higher strategy won
// in another variant (Sentry's "exception of system takes precedence").
func assemble(outs []strategyOut) map[string][]*Component {
	res := map[string][]*Component{}
	winner := map[string]string{}
	for _, o := range outs {
		prev := make(map[string]string, len(winner)) // winners of higher-score strategies
		for k, v := range winner {
			prev[k] = v
		}
		for _, vn := range sortedNames(o.variants) {
			c := o.variants[vn]
			if w, ok := prev[vn]; ok {
				if c.Contributes {
					c = offCopy(c, "ignored because "+w+" takes precedence")
				}
			} else if ow, other := anyWinner(prev); other && c.Contributes {
				c = offCopy(c, "ignored because "+prev[ow]+" of "+ow+" takes precedence")
			} else if c.Contributes {
				winner[vn] = o.name
			}
			res[vn] = append(res[vn], c)
		}
	}
	return res
}

func anyWinner(w map[string]string) (string, bool) {
	best := ""
	for k := range w {
		if best == "" || k < best {
			best = k
		}
	}
	return best, best != ""
}

func sortedNames[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.SortFunc(out, func(a, b string) int { return rank(a) - rank(b) })
	return out
}

// rank orders variants the way Sentry picks the primary hash.
func rank(name string) int {
	switch name {
	case "custom-fingerprint", "built-in-fingerprint":
		return 0
	case "checksum", "hashed-checksum":
		return 1
	case "app":
		return 2
	case "default":
		return 3
	case "system":
		return 4
	}
	return 5
}

func variantOrder(m map[string][]*Component) []string { return sortedNames(m) }

// dedupSystem nulls the system hash when it equals the app hash (Sentry's
// "ignored because hash matches app variant", snapshot javascript_polyfills).
func dedupSystem(vs []Variant) {
	app, sys := -1, -1
	for i, v := range vs {
		switch v.Name {
		case "app":
			app = i
		case "system":
			sys = i
		}
	}
	if app < 0 || sys < 0 || vs[app].Hash == "" || vs[sys].Hash != vs[app].Hash {
		return
	}
	v := &vs[sys]
	v.Hash, v.Contributes, v.Hint = "", false, "ignored because hash matches app variant"
}

func primary(vs []Variant) (hash, name string) {
	for _, v := range vs {
		if v.Hash != "" {
			return v.Hash, v.Name
		}
	}
	return "", ""
}

// feed appends the contributing leaf values of c, depth first, with no
// separator: the hash input of Sentry's component variant.
func feed(dst []byte, c *Component) []byte {
	if !c.Contributes {
		return dst
	}
	dst = append(dst, c.Value...)
	for _, ch := range c.Children {
		dst = feed(dst, ch)
	}
	return dst
}

// md5Hex is the lower-case hex MD5 of b.
func md5Hex(b []byte) string {
	sum := md5.Sum(b)
	return hex.EncodeToString(sum[:])
}

// Tree helpers. The grouper's versions take components and child slices
// from chunks (slabs), a few allocations per event instead of several per
// frame; the chunks belong to the Result.

// slabSize is the first chunk's length; later chunks double, up to
// maxSlab, so a small event allocates little and a large one few times.
const (
	slabSize = 16
	maxSlab  = 256
)

func nextCap(cur int) int { return min(max(slabSize, 2*cur), maxSlab) }

func (g *grouper) comp(id string) *Component {
	if len(g.comps) == cap(g.comps) {
		g.comps = make([]Component, 0, nextCap(cap(g.comps)))
	}
	g.comps = g.comps[:len(g.comps)+1]
	c := &g.comps[len(g.comps)-1]
	c.ID = id
	return c
}

func (g *grouper) children(cs ...*Component) []*Component {
	if len(g.ptrs)+len(cs) > cap(g.ptrs) {
		g.ptrs = make([]*Component, 0, max(nextCap(cap(g.ptrs)), len(cs)))
	}
	n := len(g.ptrs)
	g.ptrs = append(g.ptrs, cs...)
	return g.ptrs[n : n+len(cs) : n+len(cs)]
}

func (g *grouper) node(id string, children ...*Component) *Component {
	c := g.comp(id)
	c.Children = g.children(children...)
	for _, ch := range children {
		if ch != nil && ch.Contributes {
			c.Contributes = true
		}
	}
	return c
}

func (g *grouper) offCopy(c *Component, hint string) *Component {
	cp := g.comp("")
	*cp = *c
	cp.off(hint)
	return cp
}

func leaf(id, v string) *Component {
	if v == "" {
		return &Component{ID: id}
	}
	return &Component{ID: id, Contributes: true, Value: v}
}

func node(id string, children ...*Component) *Component {
	c := &Component{ID: id, Children: children}
	for _, ch := range children {
		if ch != nil && ch.Contributes {
			c.Contributes = true
		}
	}
	return c
}

func (c *Component) off(hint string) {
	c.Contributes = false
	if hint != "" {
		c.Hint = hint
	}
}

// offCopy is c marked non-contributing without touching c (trees share
// subtrees between variants).
func offCopy(c *Component, hint string) *Component {
	cp := *c
	cp.off(hint)
	return &cp
}

// hasContributingStacktrace reports whether a stacktrace component under c
// contributes.
func hasContributingStacktrace(c *Component) bool {
	if c.ID == "stacktrace" && c.Contributes {
		return true
	}
	for _, ch := range c.Children {
		if hasContributingStacktrace(ch) {
			return true
		}
	}
	return false
}

// removeNonStacktrace marks the variants without a contributing stacktrace
// non-contributing when another variant has one (Sentry's
// remove_non_stacktrace_variants).
func removeNonStacktrace(vs map[string]*Component) map[string]*Component {
	if len(vs) <= 1 {
		return vs
	}
	var with []string
	for k, c := range vs {
		if hasContributingStacktrace(c) {
			with = append(with, k)
		}
	}
	if len(with) == 0 {
		return vs
	}
	suffix := "but other variants do"
	if len(with) == 1 {
		suffix = "but the " + with[0] + " variant does"
	}
	for k, c := range vs {
		if !slices.Contains(with, k) {
			vs[k] = offCopy(c, "ignored because this variant does not have a contributing stacktrace, "+suffix)
		}
	}
	return vs
}

// Event readers.

// get is the value of key in object n; of a repeated key the last, as a
// JSON decoder keeps it.
func get(n *event.Node, key string) *event.Node {
	if n.Kind() != event.Object {
		return nil
	}
	var v *event.Node
	for i := range n.Len() {
		if string(n.Key(i)) == key {
			v = n.Index(i)
		}
	}
	return v
}

func str(n *event.Node) string {
	s, _ := n.Str()
	return s
}

// text is a lenient string: numbers and booleans as their JSON text.
func text(n *event.Node) string {
	b, _ := n.Lenient()
	return string(b)
}

// hasFrames reports whether stacktrace st has at least one frame object.
func hasFrames(st *event.Node) bool {
	fs := get(st, "frames")
	if fs.Kind() != event.Array {
		return false
	}
	for i := range fs.Len() {
		if fs.Index(i).Kind() == event.Object {
			return true
		}
	}
	return false
}

// list is the elements of an array, or of the "values" array of an object
// (Sentry's {"values": [...]} interfaces), without nulls.
func list(n *event.Node) []*event.Node {
	if n.Kind() == event.Object {
		n = get(n, "values")
	}
	if n.Kind() != event.Array {
		return nil
	}
	out := make([]*event.Node, 0, n.Len())
	for i := range n.Len() {
		if e := n.Index(i); e.Kind() == event.Object {
			out = append(out, e)
		}
	}
	return out
}

// ErrNotObject is returned by HashJSON for JSON that is not an object.
var ErrNotObject = errors.New("grouping: event is not a JSON object")

// HashJSON is Hash over the JSON text of a normalized event.
func HashJSON(src []byte) (Result, error) {
	t, err := event.ParseEager(src) // Hash reads every frame
	if err != nil {
		return Result{}, fmt.Errorf("grouping: %w", err)
	}
	defer t.Release()
	if t.Root().Kind() != event.Object {
		return Result{}, ErrNotObject
	}
	return Hash(t.Root()), nil
}
