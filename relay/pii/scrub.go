package pii

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"unicode/utf8"

	"github.com/baton-relay/baton/relay/event"
)

// ErrInvalidJSON is returned by ScrubEvent for a body that is not one JSON
// object.
var ErrInvalidJSON = errors.New("pii: event is not a JSON object")

// scrubber is the pooled scratch of one ScrubTree call.
type scrubber struct {
	t      *event.Tree
	keys   *keyIDs // the Config's; nil: the reference matching
	path   []state
	search []byte
	chunks []chunk
	out    []chunk
	repl   []chunk
}

var scrubbers = sync.Pool{New: func() any { return new(scrubber) }}

func (s *scrubber) reset() {
	s.t, s.keys = nil, nil
	clear(s.path)
	s.path = s.path[:0]
	clear(s.chunks[:cap(s.chunks)])
	clear(s.out[:cap(s.out)])
	clear(s.repl[:cap(s.repl)])
}

// ScrubEvent appends the scrubbed event JSON to dst: values replaced,
// masked, hashed or removed (set to null) as the rules say, and a remark for
// each change under "_meta", merged into the event's own. An event nothing
// matched is appended byte for byte. A nil Config appends src unchanged.
// dst must not overlap src.
func (c *Config) ScrubEvent(dst, src []byte) ([]byte, error) {
	if c == nil {
		return append(dst, src...), nil
	}
	parse := event.Parse
	if c.WalksAll() { // no frame would be passed over: parse each once
		parse = event.ParseEager
	}
	t, err := parse(src)
	if err != nil {
		return dst, fmt.Errorf("%w: %v", ErrInvalidJSON, err)
	}
	defer t.Release()
	if err := c.ScrubTree(t); err != nil {
		return dst, err
	}
	if !t.Dirty() {
		return append(dst, src...), nil
	}
	return t.AppendJSON(dst), nil
}

// ScrubTree scrubs a parsed event in place: what ScrubEvent does, for a
// caller that also normalizes the tree and writes it once. The remarks are
// recorded as the tree's Meta and written by its AppendJSON. A nil Config
// changes nothing.
func (c *Config) ScrubTree(t *event.Tree) error {
	if c == nil {
		return nil
	}
	root := t.Root()
	if root.Kind() != event.Object {
		return ErrInvalidJSON
	}
	s := scrubbers.Get().(*scrubber)
	defer func() { s.reset(); scrubbers.Put(s) }()
	s.t, s.keys = t, c.keys
	for i := range c.passes {
		s.walkChildren(&c.passes[i], root, eventSchema)
	}
	return nil
}

func kindType(k event.Kind) vtype {
	switch k {
	case event.String:
		return tString
	case event.Number:
		return tNumber
	case event.Bool:
		return tBoolean
	case event.Array:
		return tArray
	case event.Object:
		return tObject
	}
	return 0
}

// state is the path state of n, reached by key (nil: an array element at
// index) in a container whose schema gave f; no is key's number in
// schemaNames when f is a named field of a record, else -1.
func (s *scrubber) state(key []byte, index int, n *event.Node, f *field, no int32) state {
	t := typesOf(f, n.Kind())
	var id int32
	if s.keys != nil && key != nil {
		if no >= 0 {
			id = s.keys.names[no]
		} else {
			id = s.keys.of(key)
		}
	}
	return state{key: key, id: id, index: index, types: t, pii: f.pii}
}

// typesOf is the value types of a value of kind k whose schema is f.
func typesOf(f *field, k event.Kind) vtype {
	t := f.types | kindType(k)
	if f.record && k == event.Object {
		t &^= tObject
	}
	if f.pairs { // Relay's pair lists are maps, whatever their JSON form
		t = t&^tArray | tObject
	}
	return t
}

func (s *scrubber) push(key []byte, index int, n *event.Node, f *field) {
	s.path = append(s.path, s.state(key, index, n, f, -1))
}

// visit pushes the state of n and walks it, unless n is a string or a
// number no application can select (applyAll would reject it): most
// values of a stack trace are passed over without a push.
func (s *scrubber) visit(p *pass, key []byte, index int, n *event.Node, f *field, no int32) {
	st := s.state(key, index, n, f, no)
	if k := n.Kind(); (k == event.String || k == event.Number) &&
		(st.pii == piiFalse || p.filter != nil && !p.filter.may(&st)) {
		return
	}
	s.path = append(s.path, st)
	s.walk(p, n, f)
	s.pop()
}

func (s *scrubber) pop() { s.path = s.path[:len(s.path)-1] }

// walkChildren processes the children of container n, whose schema is f;
// children no rule can change (dead fields) are not visited.
func (s *scrubber) walkChildren(p *pass, n *event.Node, f *field) {
	switch n.Kind() {
	case event.Object:
		if g := p.flatAt(f); g != nil && s.quietObject(p, g, f, n) {
			return
		}
		top := len(s.path) == 0
		for i := range n.Len() {
			k, v := n.Key(i), n.Index(i)
			if top && string(k) == "_meta" || inert(v) {
				continue
			}
			cf, no := f.childNo(k, false)
			if cf.dead {
				continue
			}
			if no >= 0 && p.quietAt(no) {
				if k := v.Kind(); k == event.String || k == event.Number {
					continue // what visit would find at once
				}
			}
			s.visit(p, k, 0, v, cf, no)
		}
	case event.Array:
		ef := f.child(nil, true)
		if ef.dead {
			return
		}
		if f.pairs {
			for i := range n.Len() {
				v := n.Index(i)
				if v.Kind() == event.Array && v.Len() == 2 && v.Index(0).Kind() == event.String {
					if inert(v.Index(1)) {
						continue
					}
					s.push(v.Index(0).Bytes(), 0, v.Index(1), ef)
					s.walk(p, v.Index(1), ef)
					s.pop()
					continue
				}
				if inert(v) {
					continue
				}
				s.push(nil, i, v, ef)
				s.walk(p, v, ef)
				s.pop()
			}
			return
		}
		// Relay treats a two-element array with a string first as a key/value
		// pair, and scrubs elements one by one only if that changed nothing.
		if n.Len() == 2 && n.Index(0).Kind() == event.String && !inert(n.Index(1)) {
			v := n.Index(1)
			before := v.Meta() == nil
			s.push(n.Index(0).Bytes(), 0, v, ef)
			s.walk(p, v, ef)
			s.pop()
			if before && v.Meta() != nil {
				return
			}
		}
		g := p.flatAt(ef)
		// Sibling lazy frames mostly share one key list, or a prefix of it
		// (relay/event): a list is judged once, quietObject depending only
		// on p, g, ef, the keys and what the members are. Quiet holds for
		// fewer keys and fewer kinds of members too (each key is judged
		// alone, arrays and pairs only add tests).
		var judged [][]byte
		var judgedMem event.Members
		var quiet bool
		for i := range n.Len() {
			v := n.Index(i)
			if inert(v) {
				continue
			}
			if g != nil && g.elemOK && v.Kind() == event.Object {
				if ks, mem, ok := v.LazyKeys(); ok && len(ks) > 0 && len(judged) >= len(ks) && &judged[0] == &ks[0] &&
					(mem == judgedMem && len(judged) == len(ks) || quiet && mem&^judgedMem == 0) {
					if quiet {
						continue
					}
				} else if q := s.quietObject(p, g, ef, v); ok {
					judged, judgedMem, quiet = ks, mem, q
					if q {
						continue
					}
				} else if q {
					continue // what visit would find, without its state
				}
			}
			s.visit(p, nil, i, v, ef, -1)
		}
	}
}

// inert reports whether walk would do nothing with v, so that its state
// (two table lookups) need not be pushed: null, booleans (never PII) and
// the strings walk passes over.
func inert(v *event.Node) bool {
	switch v.Kind() {
	case event.Null, event.Bool:
		return true
	case event.String:
		switch string(v.Bytes()) {
		case "", "true", "false", "null", "undefined":
			return true
		}
	}
	return false
}

// walk applies the rules to n (its state is on top of the path), then
// descends unless n was removed. n is not inert: callers pass over those.
func (s *scrubber) walk(p *pass, n *event.Node, f *field) {
	if n.Kind() == event.String {
		s.applyAll(p, n)
		return
	}
	if s.path[len(s.path)-1].pii != piiFalse && s.applyAll(p, n) {
		return
	}
	if k := n.Kind(); k == event.Object || k == event.Array {
		s.walkChildren(p, n, f)
	}
}

// applyAll runs every application whose selector matches the current path;
// true when the value was removed.
func (s *scrubber) applyAll(p *pass, n *event.Node) bool {
	leaf := &s.path[len(s.path)-1]
	if leaf.pii == piiFalse || p.filter != nil && !p.filter.may(leaf) {
		return false
	}
	key := leaf.key
	for i := range p.apps {
		a := &p.apps[i]
		if !a.sel.matches(s.path) {
			continue
		}
		for j := range a.rules {
			if s.applyRule(&a.rules[j], key, n) {
				return true
			}
		}
	}
	return false
}

func (s *scrubber) remove(n *event.Node, rule string) {
	m := s.t.MetaOf(n)
	m.Remarks = append(m.Remarks, event.Remark{Rule: rule, Type: 'x', Start: -1, End: -1})
	s.t.SetNull(n)
}

// applyRule is Relay's apply_rule_to_value; true when n was removed.
func (s *scrubber) applyRule(r *ruleRef, key []byte, n *event.Node) bool {
	chunked := r.redaction.method != methodDefault && r.redaction.method != methodRemove
	isString := n.Kind() == event.String
	if r.spec.ty == rAnything && (!isString || !chunked) {
		s.remove(n, r.origin)
		return true
	}
	for i := range r.patterns {
		pt := &r.patterns[i]
		if pt.kind == onKeyValue {
			if s.may(pt, key) && pt.re.Match(key) {
				if isString && chunked {
					s.applyRegex(n, r, &wholeValue)
					continue
				}
				s.remove(n, r.origin)
				return true
			}
		}
		if isString {
			s.applyRegex(n, r, pt)
		}
	}
	return false
}

// may is pt's prefilter on b: false when pt's regex cannot match.
func (s *scrubber) may(pt *pattern, b []byte) bool {
	return pt.may == nil || s.keys == nil || pt.may.may(b)
}

// wholeValue redacts a whole string whose key matched.
var wholeValue = pattern{kind: onValue, re: anythingRe, groups: whole}

type chunk struct {
	text []byte
	red  bool
	rule string
	ty   byte
}

// splitChunks cuts a value into text and the redactions its remarks
// record, as Relay's split_chunks.
func splitChunks(dst []chunk, v []byte, m *event.Meta) []chunk {
	pos := 0
	if m != nil {
		for _, r := range m.Remarks {
			if r.Start < pos || r.End < r.Start || r.End > len(v) {
				continue
			}
			if r.Start > pos {
				dst = append(dst, chunk{text: v[pos:r.Start]})
			}
			dst = append(dst, chunk{text: v[r.Start:r.End], red: true, rule: r.Rule, ty: r.Type})
			pos = r.End
		}
	}
	if pos < len(v) {
		dst = append(dst, chunk{text: v[pos:]})
	}
	return dst
}

// applyRegex redacts the matches (groups) of re in a string value, leaving
// earlier redactions alone, and records remarks: Relay's
// apply_regex_to_chunks under process_chunked_value.
func (s *scrubber) applyRegex(n *event.Node, r *ruleRef, pt *pattern) {
	re, groups := pt.re, pt.groups
	str := n.Bytes()
	s.chunks = splitChunks(s.chunks[:0], str, n.Meta())
	var search []byte
	hasText := false
	if len(s.chunks) == 1 && !s.chunks[0].red && bytes.IndexByte(str, 0) < 0 {
		search, hasText = str, true
	} else {
		s.search = s.search[:0]
		for _, c := range s.chunks {
			if c.red {
				s.search = append(s.search, 0)
				continue
			}
			hasText = true
			for _, b := range c.text {
				if b != 0 {
					s.search = append(s.search, b)
				}
			}
		}
		search = s.search
	}
	if !hasText || !s.may(pt, search) {
		return
	}
	isWhole := len(groups) == 1 && groups[0] == -1
	var found [][]int
	if isWhole {
		if !re.Match(search) {
			return
		}
	} else if found = re.FindAllSubmatchIndex(search, -1); found == nil {
		return // one search, not a Match and then the same search again
	}
	s.repl = s.repl[:0]
	for _, c := range s.chunks {
		if c.red {
			s.repl = append(s.repl, c)
		}
	}
	s.out = s.out[:0]
	if isWhole {
		s.out = append(s.out, s.redact(r, search))
	} else {
		pos := 0
		for _, m := range found {
			for g := 0; 2*g+1 < len(m); g++ {
				st, en := m[2*g], m[2*g+1]
				if st < 0 || st < pos || !containsInt(groups, g) {
					continue
				}
				s.text(search[pos:st])
				s.out = append(s.out, s.redact(r, search[st:en]))
				pos = en
			}
		}
		s.text(search[pos:])
	}
	s.join(n)
}

func containsInt(xs []int, x int) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

// text appends search text to out, putting back the earlier redactions
// where their placeholders (NUL) are.
func (s *scrubber) text(t []byte) {
	for {
		i := bytes.IndexByte(t, 0)
		if i < 0 {
			break
		}
		if i > 0 {
			s.out = append(s.out, chunk{text: t[:i]})
		}
		if len(s.repl) > 0 {
			s.out = append(s.out, s.repl[0])
			s.repl = s.repl[1:]
		}
		t = t[i+1:]
	}
	if len(t) > 0 {
		s.out = append(s.out, chunk{text: t})
	}
}

func (s *scrubber) redact(r *ruleRef, matched []byte) chunk {
	c := chunk{red: true, rule: r.origin}
	switch r.redaction.method {
	case methodMask:
		c.ty = 'm'
		c.text = bytes.Repeat([]byte{'*'}, utf8.RuneCount(matched))
	case methodHash:
		c.ty = 'p'
		c.text = hashValue(matched)
	case methodReplace:
		c.ty = 's'
		c.text = []byte(r.redaction.text)
	case methodOther:
		// Relay logs "not supported" and inserts nothing: the match vanishes
		// without a remark.
		c.red, c.text = false, nil
	default:
		c.ty = 'x'
	}
	return c
}

// hashValue is Relay's hash redaction: HMAC-SHA1 with an empty key, in
// upper-case hex.
func hashValue(b []byte) []byte {
	m := hmac.New(sha1.New, nil)
	m.Write(b)
	sum := m.Sum(nil)
	out := make([]byte, hex.EncodedLen(len(sum)))
	hex.Encode(out, sum)
	return bytes.ToUpper(out)
}

// join writes out back into n when the value changed: the new string, its
// range remarks (byte offsets) and the original length in characters.
func (s *scrubber) join(n *event.Node) {
	size := 0
	for _, c := range s.out {
		size += len(c.text)
	}
	v := make([]byte, 0, size)
	var rem []event.Remark
	for _, c := range s.out {
		if c.red {
			rem = append(rem, event.Remark{Rule: c.rule, Type: c.ty, Start: len(v), End: len(v) + len(c.text)})
		}
		v = append(v, c.text...)
	}
	if bytes.Equal(v, n.Bytes()) {
		return
	}
	m := s.t.MetaOf(n)
	if m.Len == 0 {
		m.Len = utf8.RuneCount(n.Bytes())
	}
	// Remarks without a range (removals) stay; range remarks are rewritten.
	kept := m.Remarks[:0]
	for _, r := range m.Remarks {
		if r.Start < 0 {
			kept = append(kept, r)
		}
	}
	m.Remarks = append(kept, rem...)
	s.t.SetString(n, v)
}
