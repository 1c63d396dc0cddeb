package pii

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/hex"
	"regexp"
	"strconv"
	"sync"
	"unicode/utf8"
)

// scrubber is the pooled scratch of one ScrubEvent call.
type scrubber struct {
	arena   arena
	path    []state
	changed bool
	search  []byte
	chunks  []chunk
	out     []chunk
	repl    []chunk
}

var scrubbers = sync.Pool{New: func() any { return new(scrubber) }}

func (s *scrubber) reset() {
	for _, c := range s.arena.chunks {
		clear(c[:cap(c)]) // drop references into the last event
	}
	clear(s.arena.keys[:cap(s.arena.keys)])
	clear(s.arena.vals[:cap(s.arena.vals)])
	s.arena.keys, s.arena.vals = s.arena.keys[:0], s.arena.vals[:0]
	if len(s.arena.chunks) > 0 {
		s.arena.chunks = s.arena.chunks[:1]
		s.arena.cur = s.arena.chunks[0][:0]
	}
	s.path = s.path[:0]
	s.changed = false
}

// ScrubEvent appends the scrubbed event JSON to dst: values replaced,
// masked, hashed or removed (set to null) as the rules say, and a remark for
// each change under "_meta", merged into the event's own. An event nothing
// matched is appended byte for byte. A nil Config appends src unchanged.
func (c *Config) ScrubEvent(dst, src []byte) ([]byte, error) {
	if c == nil {
		return append(dst, src...), nil
	}
	s := scrubbers.Get().(*scrubber)
	defer func() { s.reset(); scrubbers.Put(s) }()
	root, err := parse(src, &s.arena)
	if err != nil {
		return dst, err
	}
	if root.kind != kObject {
		return dst, ErrInvalidJSON
	}
	for i := range c.passes {
		s.walkChildren(&c.passes[i], root, eventSchema)
	}
	if !s.changed {
		return append(dst, src...), nil
	}
	s.attachMeta(root)
	return write(dst, root), nil
}

func kindType(k kind) vtype {
	switch k {
	case kString:
		return tString
	case kNumber:
		return tNumber
	case kBool:
		return tBoolean
	case kArray:
		return tArray
	case kObject:
		return tObject
	}
	return 0
}

func (s *scrubber) push(key []byte, index int, n *node, f *field) {
	t := f.types | kindType(n.kind)
	if f.record && n.kind == kObject {
		t &^= tObject
	}
	if f.pairs { // Relay's pair lists are maps, whatever their JSON form
		t = t&^tArray | tObject
	}
	s.path = append(s.path, state{key: key, index: index, types: t, pii: f.pii})
}

func (s *scrubber) pop() { s.path = s.path[:len(s.path)-1] }

// walkChildren processes the children of container n, whose schema is f.
func (s *scrubber) walkChildren(p *pass, n *node, f *field) {
	switch n.kind {
	case kObject:
		top := len(s.path) == 0
		for i, k := range n.keys {
			if top && string(k) == "_meta" {
				continue
			}
			cf := f.child(k, false)
			s.push(k, 0, n.vals[i], cf)
			s.walk(p, n.vals[i], cf)
			s.pop()
		}
	case kArray:
		ef := f.child(nil, true)
		if f.pairs {
			for i, v := range n.vals {
				if v.kind == kArray && len(v.vals) == 2 && v.vals[0].kind == kString {
					s.push(v.vals[0].str, 0, v.vals[1], ef)
					s.walk(p, v.vals[1], ef)
					s.pop()
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
		if len(n.vals) == 2 && n.vals[0].kind == kString && n.vals[1].kind != kNull {
			v := n.vals[1]
			before := v.meta == nil
			s.push(n.vals[0].str, 0, v, ef)
			s.walk(p, v, ef)
			s.pop()
			if before && v.meta != nil {
				return
			}
		}
		for i, v := range n.vals {
			s.push(nil, i, v, ef)
			s.walk(p, v, ef)
			s.pop()
		}
	}
}

// walk applies the rules to n (its state is on top of the path), then
// descends unless n was removed.
func (s *scrubber) walk(p *pass, n *node, f *field) {
	switch n.kind {
	case kNull, kBool: // booleans cannot be PII
		return
	case kString:
		switch string(n.str) {
		case "", "true", "false", "null", "undefined":
			return
		}
		s.applyAll(p, n)
		return
	}
	if s.path[len(s.path)-1].pii != piiFalse && s.applyAll(p, n) {
		return
	}
	if n.kind == kObject || n.kind == kArray {
		s.walkChildren(p, n, f)
	}
}

// applyAll runs every application whose selector matches the current path;
// true when the value was removed.
func (s *scrubber) applyAll(p *pass, n *node) bool {
	if s.path[len(s.path)-1].pii == piiFalse {
		return false
	}
	key := s.path[len(s.path)-1].key
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

func (s *scrubber) remove(n *node, rule string) {
	if n.meta == nil {
		n.meta = &meta{length: -1}
	}
	n.meta.rem = append(n.meta.rem, remark{rule: rule, ty: 'x', start: -1, end: -1})
	n.kind, n.raw, n.str, n.keys, n.vals = kNull, nil, nil, nil, nil
	s.changed = true
}

// applyRule is Relay's apply_rule_to_value; true when n was removed.
func (s *scrubber) applyRule(r *ruleRef, key []byte, n *node) bool {
	chunked := r.redaction.method != methodDefault && r.redaction.method != methodRemove
	isString := n.kind == kString
	if r.spec.ty == rAnything && (!isString || !chunked) {
		s.remove(n, r.origin)
		return true
	}
	for _, pt := range r.patterns {
		if pt.kind == onKeyValue {
			if pt.re.Match(key) {
				if isString && chunked {
					s.applyRegex(n, r, anythingRe, whole)
					continue
				}
				s.remove(n, r.origin)
				return true
			}
		}
		if isString {
			s.applyRegex(n, r, pt.re, pt.groups)
		}
	}
	return false
}

type chunk struct {
	text []byte
	red  bool
	rule string
	ty   byte
}

// splitChunks cuts a value into text and the redactions its remarks
// record, as Relay's split_chunks.
func splitChunks(dst []chunk, v []byte, m *meta) []chunk {
	pos := 0
	if m != nil {
		for _, r := range m.rem {
			if r.start < pos || r.end < r.start || r.end > len(v) {
				continue
			}
			if r.start > pos {
				dst = append(dst, chunk{text: v[pos:r.start]})
			}
			dst = append(dst, chunk{text: v[r.start:r.end], red: true, rule: r.rule, ty: r.ty})
			pos = r.end
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
func (s *scrubber) applyRegex(n *node, r *ruleRef, re *regexp.Regexp, groups []int) {
	s.chunks = splitChunks(s.chunks[:0], n.str, n.meta)
	var search []byte
	hasText := false
	if len(s.chunks) == 1 && !s.chunks[0].red && bytes.IndexByte(n.str, 0) < 0 {
		search, hasText = n.str, true
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
	if !hasText || !re.Match(search) {
		return
	}
	s.repl = s.repl[:0]
	for _, c := range s.chunks {
		if c.red {
			s.repl = append(s.repl, c)
		}
	}
	s.out = s.out[:0]
	if len(groups) == 1 && groups[0] == -1 {
		s.out = append(s.out, s.redact(r, search))
	} else {
		pos := 0
		for _, m := range re.FindAllSubmatchIndex(search, -1) {
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
func (s *scrubber) join(n *node) {
	size := 0
	for _, c := range s.out {
		size += len(c.text)
	}
	v := make([]byte, 0, size)
	var rem []remark
	for _, c := range s.out {
		if c.red {
			rem = append(rem, remark{rule: c.rule, ty: c.ty, start: len(v), end: len(v) + len(c.text)})
		}
		v = append(v, c.text...)
	}
	if bytes.Equal(v, n.str) {
		return
	}
	if n.meta == nil {
		n.meta = &meta{length: -1}
	}
	if n.meta.length < 0 {
		n.meta.length = utf8.RuneCount(n.str)
	}
	// Remarks without a range (removals) stay; range remarks are rewritten.
	kept := n.meta.rem[:0]
	for _, r := range n.meta.rem {
		if r.start < 0 {
			kept = append(kept, r)
		}
	}
	n.meta.rem = append(kept, rem...)
	n.str, n.raw = v, nil
	s.changed = true
}

// attachMeta merges the remarks of every changed value into root's "_meta".
func (s *scrubber) attachMeta(root *node) {
	mroot := root.get("_meta")
	if mroot == nil || mroot.kind != kObject {
		if mroot == nil {
			mroot = s.arena.new()
			root.keys = append(root.keys, []byte("_meta"))
			root.vals = append(root.vals, mroot)
		}
		mroot.kind, mroot.raw, mroot.keys, mroot.vals = kObject, nil, nil, nil
	}
	var walk func(n, m *node)
	walk = func(n, m *node) {
		visit := func(key []byte, c *node) {
			if c.meta == nil && c.kind != kObject && c.kind != kArray {
				return
			}
			if c.meta == nil && !hasMeta(c) {
				return
			}
			mc := s.metaChild(m, key)
			if c.meta != nil {
				s.writeMeta(mc, c.meta)
			}
			walk(c, mc)
		}
		switch n.kind {
		case kObject:
			for i, k := range n.keys {
				if n == root && string(k) == "_meta" {
					continue
				}
				visit(k, n.vals[i])
			}
		case kArray:
			for i, c := range n.vals {
				visit(strconv.AppendInt(nil, int64(i), 10), c)
			}
		}
	}
	walk(root, mroot)
}

func hasMeta(n *node) bool {
	if n.meta != nil {
		return true
	}
	for _, c := range n.vals {
		if hasMeta(c) {
			return true
		}
	}
	return false
}

// metaChild returns the object under key in meta node m, creating it.
func (s *scrubber) metaChild(m *node, key []byte) *node {
	for i, k := range m.keys {
		if bytes.Equal(k, key) {
			c := m.vals[i]
			if c.kind != kObject {
				c.kind, c.raw, c.keys, c.vals = kObject, nil, nil, nil
			}
			return c
		}
	}
	c := s.arena.new()
	c.kind = kObject
	m.keys = append(m.keys, key)
	m.vals = append(m.vals, c)
	return c
}

// writeMeta adds the remarks of one value under "" in its meta node.
func (s *scrubber) writeMeta(m *node, md *meta) {
	e := s.metaChild(m, nil)
	rem := e.get("rem")
	if rem == nil || rem.kind != kArray {
		if rem == nil {
			rem = s.arena.new()
			e.keys = append(e.keys, []byte("rem"))
			e.vals = append(e.vals, rem)
		}
		rem.kind, rem.raw, rem.vals = kArray, nil, nil
	}
	for _, r := range md.rem {
		a := s.arena.new()
		a.kind = kArray
		a.vals = append(a.vals, s.str(r.rule), s.str(string(r.ty)))
		if r.start >= 0 {
			a.vals = append(a.vals, s.num(r.start), s.num(r.end))
		}
		rem.vals = append(rem.vals, a)
	}
	if md.length >= 0 && e.get("len") == nil {
		e.keys = append(e.keys, []byte("len"))
		e.vals = append(e.vals, s.num(md.length))
	}
}

func (s *scrubber) str(v string) *node {
	n := s.arena.new()
	n.kind, n.str = kString, []byte(v)
	return n
}

func (s *scrubber) num(v int) *node {
	n := s.arena.new()
	n.kind, n.raw = kNumber, strconv.AppendInt(nil, int64(v), 10)
	return n
}
