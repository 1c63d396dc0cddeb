package normalize

import (
	"bytes"
	"unicode/utf8"

	"github.com/baton-relay/baton/relay/event"
)

// Trimming follows Relay's TrimmingProcessor (relay-event-normalization
// trimming.rs), which a first relay runs too (enable_trimming: true):
//
//   - A string longer than its field's max_chars plus max_chars_allowance
//     (relay-event-schema attributes) is cut to max_chars: max_chars-3
//     characters and "...", with the remark ["!limit", "s", start, end] and
//     the original length in characters as `len`.
//   - A data bag (a field with max_depth / max_bytes, formerly bag_size) is
//     walked in Relay's order (object keys sorted): every value costs its flat
//     JSON size + 1 byte; a string is cut to what is left of the bag; once
//     nothing is left the remaining members are dropped and the container
//     records its original `len`; an array or object one level above the
//     depth limit is replaced by its JSON text.
//   - A stack trace keeps its newest 250 frames (`len` on frames), and beyond
//     50 frames the middle ones lose vars, pre_context and post_context
//     (slim_frame_data).
//
// Relay keeps no count limit on breadcrumbs in normalization, so neither
// does this.

// limit is a string field's max_chars and max_chars_allowance.
type limit struct{ chars, allowance int }

// Relay's field limits (relay-event-schema protocol attributes).
var (
	limMessage  = limit{8192, 200} // logentry, exception value, breadcrumb message
	limSymbol   = limit{256, 20}   // exception type and module, server_name, site
	limPath     = limit{256, 40}   // request url
	limSummary  = limit{1024, 100} // request fragment
	limEnumLike = limit{128, 0}    // breadcrumb type and category, user id/username/name
	limTag      = 200              // tag keys and values (MAX_TAG_KEY/VALUE_LENGTH)
)

// bagSize is a data bag's max_depth and max_bytes.
type bagSize struct{ depth, size int }

var (
	bagSmall   = bagSize{3, 1024}
	bagMedium  = bagSize{5, 2048}
	bagLarge   = bagSize{7, 8192}
	bagMassive = bagSize{7, 262144}
)

// Frame limits of trimming.rs.
const (
	maxFrames      = 250 // enforce_frame_hard_limit: the newest are kept
	frameAllowance = 50  // slim_frame_data
)

// trim visits the root's members once, dispatching by key (a Get per field
// would scan the root about twenty times). Only a key's first member is
// trimmed, the one Get finds; the fields are distinct subtrees, so the
// order does not matter.
func (e *norm) trim() {
	ev := e.ev
	var done uint32
	for i := range ev.Len() {
		f := trimField(ev.Key(i))
		if f < 0 || done&(1<<f) != 0 {
			continue
		}
		done |= 1 << f
		e.trimAt(f, ev.Index(i))
	}
}

// The fields trim handles besides topLimits, numbered after them.
const (
	fLogentry = len(topLimits) + iota
	fTags
	fException
	fThreads
	fStacktrace
	fBreadcrumbs
	fRequest
	fUser
	fContexts
	fExtra
	fModules
)

// topLimits as a Go array, so that its length is a constant.
var topLimits = [...]struct {
	key string
	l   limit
}{
	{"culprit", limit{200, 0}},
	{"transaction", limit{200, 0}},
	{"logger", limit{64, 0}},
	{"server_name", limSymbol},
	{"release", limit{200, 0}},
	{"environment", limit{64, 0}},
	{"site", limSymbol},
	{"checksum", limit{128, 0}},
}

// trimField numbers the root key k for trimAt; -1 when trim ignores it.
func trimField(k []byte) int {
	switch string(k) {
	case "culprit":
		return 0
	case "transaction":
		return 1
	case "logger":
		return 2
	case "server_name":
		return 3
	case "release":
		return 4
	case "environment":
		return 5
	case "site":
		return 6
	case "checksum":
		return 7
	case "logentry":
		return fLogentry
	case "tags":
		return fTags
	case "exception":
		return fException
	case "threads":
		return fThreads
	case "stacktrace":
		return fStacktrace
	case "breadcrumbs":
		return fBreadcrumbs
	case "request":
		return fRequest
	case "user":
		return fUser
	case "contexts":
		return fContexts
	case "extra":
		return fExtra
	case "modules":
		return fModules
	}
	return -1
}

// trimAt trims v, the root's field f.
func (e *norm) trimAt(f int, v *event.Node) {
	switch f {
	case fLogentry:
		e.trimString(v.Get("message"), limMessage)
		e.trimString(v.Get("formatted"), limMessage)
		e.bag(v.Get("params"), bagMedium)
	case fTags:
		e.trimTags(v)
	case fException:
		eachObject(v, e.trimException)
	case fThreads:
		eachObject(v, e.trimThread)
	case fStacktrace:
		e.stacktrace(v)
	case fBreadcrumbs:
		eachObject(v, e.trimBreadcrumb)
	case fRequest:
		if v.Kind() == event.Object {
			e.trimString(v.Get("url"), limPath)
			e.trimString(v.Get("fragment"), limSummary)
			e.bag(v.Get("data"), bagLarge)
			e.bag(v.Get("query_string"), bagSmall)
			e.bag(v.Get("cookies"), bagMedium)
			e.bag(v.Get("headers"), bagLarge)
		}
	case fUser:
		if v.Kind() == event.Object {
			e.trimString(v.Get("id"), limEnumLike)
			e.trimString(v.Get("email"), limit{75, 0})
			e.trimString(v.Get("username"), limEnumLike)
			e.trimString(v.Get("name"), limEnumLike)
		}
	case fContexts:
		if v.Kind() == event.Object {
			for i := range v.Len() {
				e.bag(v.Index(i), bagLarge) // ContextInner
			}
		}
	case fExtra:
		e.bag(v, bagMassive)
	case fModules:
		e.bag(v, bagLarge)
	default:
		e.trimString(v, topLimits[f].l)
	}
}

func (e *norm) trimException(x *event.Node) {
	e.trimString(x.Get("type"), limSymbol)
	e.trimString(x.Get("value"), limMessage)
	e.trimString(x.Get("module"), limSymbol)
	e.stacktrace(x.Get("stacktrace"))
	e.stacktrace(x.Get("raw_stacktrace"))
}

func (e *norm) trimThread(x *event.Node) { e.stacktrace(x.Get("stacktrace")) }

func (e *norm) trimBreadcrumb(b *event.Node) {
	e.trimString(b.Get("type"), limEnumLike)
	e.trimString(b.Get("category"), limEnumLike)
	e.trimString(b.Get("message"), limMessage)
	e.bag(b.Get("data"), bagMedium)
}

// eachObject calls f for each object in the list under v's "values".
func eachObject(v *event.Node, f func(x *event.Node)) {
	l := v.Get("values")
	if l.Kind() != event.Array {
		return
	}
	for i := range l.Len() {
		if x := l.Index(i); x.Kind() == event.Object {
			f(x)
		}
	}
}

// trimString cuts string node n to l (see the top of this file).
func (e *norm) trimString(n *event.Node, l limit) {
	if n.Kind() != event.String || len(n.Bytes()) <= l.chars+l.allowance {
		return // a string of at most that many bytes has at most that many characters
	}
	e.cut(n, l.chars, l.allowance)
}

// cut shortens string n to soft characters when it has more than
// soft+allowance, recording Relay's !limit remark and the original length.
func (e *norm) cut(n *event.Node, soft, allowance int) {
	s := n.Bytes()
	if len(s) <= soft+allowance {
		return // no more characters than bytes
	}
	chars := utf8.RuneCount(s)
	if chars <= soft+allowance {
		return
	}
	keep := max(soft-3, 0)
	if keep == 0 && string(s) == "..." {
		return // already cut to nothing by a bag with less than 3 bytes left
	}
	i := 0
	for range keep {
		_, size := utf8.DecodeRune(s[i:])
		i += size
	}
	out := make([]byte, 0, i+3)
	out = append(append(out, s[:i]...), "..."...)
	t := e.t
	m := t.MetaOf(n)
	m.Remarks = append(m.Remarks, event.Remark{Rule: "!limit", Type: 's', Start: keep, End: keep + 3})
	if m.Len == 0 {
		m.Len = chars
	}
	t.SetString(n, out)
}

// stacktrace applies the frame limits to a stack trace object.
func (e *norm) stacktrace(st *event.Node) {
	fr := st.Get("frames")
	if fr.Kind() != event.Array {
		return
	}
	t := e.t
	if n := fr.Len(); n > maxFrames {
		t.Slice(fr, n-maxFrames, n)
		if m := t.MetaOf(fr); m.Len == 0 {
			m.Len = n
		}
	}
	if sp := fr.Span(); sp == nil || bytes.Contains(sp, []byte(`vars":`)) {
		// A compact span holds every key as written (an escaped key makes
		// it loose): without "vars": no frame has vars.
		for i := range fr.Len() {
			e.bag(fr.Index(i).Get("vars"), bagMedium)
		}
	}
	e.slimFrames(fr)
}

// slimFrames drops vars, pre_context and post_context of the middle frames
// beyond frameAllowance, system frames first (slim_frame_data).
func (e *norm) slimFrames(fr *event.Node) {
	n := fr.Len()
	if n <= frameAllowance {
		return
	}
	var app, sys []int
	for i := range n {
		f := fr.Index(i)
		if f.Kind() != event.Object {
			continue
		}
		if v, _ := f.Get("in_app").Bool(); v {
			app = append(app, i)
		} else {
			sys = append(sys, i)
		}
	}
	middle := func(idx []int, half int) []int {
		if half > len(idx)-half {
			return nil
		}
		return idx[half : len(idx)-half]
	}
	sysDrop := middle(sys, max(frameAllowance-len(app), 0)/2)
	left := max(n-frameAllowance-len(sysDrop), 0)
	appDrop := middle(app, max(len(app)-left, 0)/2)
	for _, drop := range [][]int{sysDrop, appDrop} {
		for _, i := range drop {
			f := fr.Index(i)
			for _, k := range []string{"vars", "pre_context", "post_context"} {
				e.t.Delete(f, k)
			}
		}
	}
}

// bag limits the data bag rooted at n to b.
func (e *norm) bag(n *event.Node, b bagSize) {
	switch n.Kind() {
	case event.String:
		e.cut(n, b.size, 0)
	case event.Array, event.Object:
		if spanFits(n.Span(), b) {
			return
		}
		if cost, deep := bagCost(n, 0, b.depth); !deep && cost <= b.size {
			return // fits: nothing would change, whatever the order
		}
		w := bagWalk{e: e, depth: b.depth, left: b.size}
		w.children(n, 0)
	}
}

// spanFits reports whether a container whose unchanged compact source is
// span fits bag b, without walking it. The bag cost of its descendants is
// at most len(span) plus its '[' count: a scalar's flat size is at most its
// token (the source escapes at least what writing escapes), a container
// counts 2 for its brackets, and each value's +1 is its comma, its colon
// and key, or (last in an array) one byte over. It nests at most as deep
// as it has brackets, and Relay's walk turns into text only containers
// depth-1 levels down.
func spanFits(span []byte, b bagSize) bool {
	if span == nil || len(span) > b.size {
		return false
	}
	arrays := bytes.Count(span, []byte("["))
	if len(span)+arrays > b.size {
		return false
	}
	return arrays+bytes.Count(span, []byte("{")) < b.depth
}

// bagCost is the sum of the bag costs of n's descendants; deep is true
// when one of them is a container Relay would turn into text.
func bagCost(n *event.Node, d, maxDepth int) (cost int, deep bool) {
	for i := range n.Len() {
		c := n.Index(i)
		cost += flatSize(c) + 1
		if k := c.Kind(); k == event.Array || k == event.Object {
			if maxDepth-(d+1) <= 1 {
				return cost, true
			}
			sub, dp := bagCost(c, d+1, maxDepth)
			cost += sub
			if dp {
				return cost, true
			}
		}
	}
	return cost, false
}

// flatSize is Relay's estimate_size_flat: the JSON size of a value with
// containers counted as empty.
func flatSize(n *event.Node) int {
	switch n.Kind() {
	case event.String:
		s := n.Bytes()
		size := len(s) + 2
		for _, c := range s {
			switch {
			case c == '"' || c == '\\' || c == '\n' || c == '\r' || c == '\t' || c == '\b' || c == '\f':
				size++
			case c < 0x20:
				size += 5
			}
		}
		return size
	case event.Number, event.Bool:
		return len(n.Raw())
	case event.Array, event.Object:
		return 2
	}
	return 4 // null
}

// bagWalk is the slow path of bag: Relay's walk, for a bag that does not fit.
type bagWalk struct {
	e     *norm
	depth int // max_depth
	left  int // bytes left
}

func (w *bagWalk) children(n *event.Node, d int) {
	t := w.e.t
	orig := n.Len()
	var order []int
	if n.Kind() == event.Object {
		order = append(order, t.SortedKeys(n)...)
	} else {
		order = make([]int, orig)
		for i := range order {
			order[i] = i
		}
	}
	cut := -1
	for pos, i := range order {
		if w.left == 0 {
			cut = pos
			break
		}
		w.value(n, i, d+1)
	}
	if cut < 0 {
		return
	}
	if n.Kind() == event.Array {
		t.Slice(n, 0, order[cut])
	} else {
		t.DeleteAt(n, order[cut:])
	}
	if m := t.MetaOf(n); m.Len == 0 {
		m.Len = orig
	}
}

// value processes child i of n, at depth d of the bag.
func (w *bagWalk) value(n *event.Node, i, d int) {
	t := w.e.t
	c := n.Index(i)
	if k := c.Kind(); k == event.Array || k == event.Object {
		if w.depth-d <= 1 {
			s := t.NewStringBytes(c.AppendJSON(nil))
			t.SetIndex(n, i, s)
			c = s
		} else {
			w.children(c, d)
		}
	}
	if c.Kind() == event.String {
		w.e.cut(c, w.left, 0)
	}
	w.left = max(w.left-flatSize(c)-1, 0)
}
