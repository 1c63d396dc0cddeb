package pii

import (
	"errors"
	"fmt"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// ErrInvalidJSON is returned by ScrubEvent for a body that is not one JSON
// object.
var ErrInvalidJSON = errors.New("pii: event is not a JSON object")

// maxDepth bounds nesting so a hostile event cannot exhaust the stack; Relay
// itself trims events deeper than this during normalization.
const maxDepth = 256

type kind uint8

const (
	kNull kind = iota
	kBool
	kNumber
	kString
	kArray
	kObject
)

// node is one JSON value. Unchanged scalars keep their source bytes (raw) so
// they are written back as they came; strings also carry their decoded text.
type node struct {
	kind kind
	raw  []byte   // source token (nil once a string is rewritten)
	str  []byte   // decoded string content (kString)
	keys [][]byte // decoded object keys (kObject)
	vals []*node  // object values or array elements
	meta *meta    // remarks written by scrubbing, nil if untouched
}

// meta is what Relay writes under "_meta" for one value: its remarks and,
// for a rewritten string, the original length in characters.
type meta struct {
	rem    []remark
	length int // -1: not recorded
}

type remark struct {
	rule       string
	ty         byte // x removed, s substituted, m masked, p pseudonymized
	start, end int  // character range in the new value; -1 for none
}

// arena hands out nodes in chunks so a parse makes a few allocations, not
// one per value; chunks are never reallocated, so pointers stay valid.
type arena struct {
	chunks [][]node
	cur    []node
	keys   [][]byte // slab of object keys
	vals   []*node  // slab of children
	ks     [][]byte // the parser's child stacks, kept between parses
	vs     []*node
}

// children copies a finished container's children into the slabs; the
// results are capped so appending to them never overwrites a neighbour.
func (a *arena) children(keys [][]byte, vals []*node) ([][]byte, []*node) {
	if len(vals) == 0 {
		return nil, nil
	}
	if cap(a.vals)-len(a.vals) < len(vals) {
		a.vals = make([]*node, 0, max(1024, len(vals)))
	}
	i := len(a.vals)
	a.vals = append(a.vals, vals...)
	v := a.vals[i:len(a.vals):len(a.vals)]
	if keys == nil {
		return nil, v
	}
	if cap(a.keys)-len(a.keys) < len(keys) {
		a.keys = make([][]byte, 0, max(1024, len(keys)))
	}
	j := len(a.keys)
	a.keys = append(a.keys, keys...)
	return a.keys[j:len(a.keys):len(a.keys)], v
}

func (a *arena) new() *node {
	if len(a.cur) == cap(a.cur) {
		a.cur = make([]node, 0, 256)
		a.chunks = append(a.chunks, a.cur)
	}
	a.cur = a.cur[:len(a.cur)+1]
	n := &a.cur[len(a.cur)-1]
	*n = node{}
	return n
}

type parser struct {
	src   []byte
	pos   int
	a     *arena
	ks    [][]byte // children of the containers being parsed
	vs    []*node
	rawOK bool // the last string's source token is valid UTF-8 and can be written back
}

func parse(src []byte, a *arena) (*node, error) {
	p := parser{src: src, a: a, ks: a.ks[:0], vs: a.vs[:0]}
	defer func() { a.ks, a.vs = p.ks[:0], p.vs[:0] }()
	p.ws()
	n, err := p.value(0)
	if err != nil {
		return nil, err
	}
	p.ws()
	if p.pos != len(p.src) {
		return nil, p.errf("trailing data")
	}
	return n, nil
}

func (p *parser) errf(what string) error {
	return fmt.Errorf("%w: %s at offset %d", ErrInvalidJSON, what, p.pos)
}

func (p *parser) ws() {
	for p.pos < len(p.src) {
		switch p.src[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

func (p *parser) value(depth int) (*node, error) {
	if depth > maxDepth {
		return nil, p.errf("nested too deeply")
	}
	if p.pos >= len(p.src) {
		return nil, p.errf("unexpected end")
	}
	start := p.pos
	switch c := p.src[p.pos]; {
	case c == '{':
		return p.object(depth)
	case c == '[':
		return p.array(depth)
	case c == '"':
		s, err := p.string()
		if err != nil {
			return nil, err
		}
		n := p.a.new()
		n.kind, n.str = kString, s
		if p.rawOK {
			n.raw = p.src[start:p.pos]
		}
		return n, nil
	case c == 't':
		return p.literal("true", kBool)
	case c == 'f':
		return p.literal("false", kBool)
	case c == 'n':
		return p.literal("null", kNull)
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number()
	default:
		return nil, p.errf("unexpected character")
	}
}

func (p *parser) literal(lit string, k kind) (*node, error) {
	if len(p.src)-p.pos < len(lit) || string(p.src[p.pos:p.pos+len(lit)]) != lit {
		return nil, p.errf("invalid literal")
	}
	n := p.a.new()
	n.kind, n.raw = k, p.src[p.pos:p.pos+len(lit)]
	p.pos += len(lit)
	return n, nil
}

func (p *parser) number() (*node, error) {
	start := p.pos
	if p.src[p.pos] == '-' {
		p.pos++
	}
	digits := func() int {
		s := p.pos
		for p.pos < len(p.src) && p.src[p.pos] >= '0' && p.src[p.pos] <= '9' {
			p.pos++
		}
		return p.pos - s
	}
	if n := digits(); n == 0 || (n > 1 && p.src[p.pos-n] == '0') {
		return nil, p.errf("invalid number")
	}
	if p.pos < len(p.src) && p.src[p.pos] == '.' {
		p.pos++
		if digits() == 0 {
			return nil, p.errf("invalid number")
		}
	}
	if p.pos < len(p.src) && (p.src[p.pos] == 'e' || p.src[p.pos] == 'E') {
		p.pos++
		if p.pos < len(p.src) && (p.src[p.pos] == '+' || p.src[p.pos] == '-') {
			p.pos++
		}
		if digits() == 0 {
			return nil, p.errf("invalid number")
		}
	}
	n := p.a.new()
	n.kind, n.raw = kNumber, p.src[start:p.pos]
	return n, nil
}

// string decodes the string at pos. Without escapes the result aliases src.
func (p *parser) string() ([]byte, error) {
	p.pos++ // opening quote
	start := p.pos
	for p.pos < len(p.src) {
		c := p.src[p.pos]
		if c == '"' {
			s := p.src[start:p.pos]
			p.pos++
			p.rawOK = utf8.Valid(s)
			if !p.rawOK {
				return []byte(string([]rune(string(s)))), nil // replace invalid bytes
			}
			return s, nil
		}
		if c == '\\' {
			return p.stringSlow(start)
		}
		if c < 0x20 {
			return nil, p.errf("control character in string")
		}
		p.pos++
	}
	return nil, p.errf("unterminated string")
}

func (p *parser) stringSlow(start int) ([]byte, error) {
	out := append([]byte(nil), p.src[start:p.pos]...)
	for p.pos < len(p.src) {
		c := p.src[p.pos]
		switch {
		case c == '"':
			p.pos++
			p.rawOK = utf8.Valid(out)
			if !p.rawOK {
				out = []byte(string([]rune(string(out))))
			}
			return out, nil
		case c < 0x20:
			return nil, p.errf("control character in string")
		case c != '\\':
			out = append(out, c)
			p.pos++
			continue
		}
		p.pos++
		if p.pos >= len(p.src) {
			break
		}
		e := p.src[p.pos]
		p.pos++
		switch e {
		case '"', '\\', '/':
			out = append(out, e)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, ok := p.hex4()
			if !ok {
				return nil, p.errf("invalid \\u escape")
			}
			if utf16.IsSurrogate(r) {
				r2 := utf8.RuneError
				if p.pos+1 < len(p.src) && p.src[p.pos] == '\\' && p.src[p.pos+1] == 'u' {
					save := p.pos
					p.pos += 2
					if lo, ok := p.hex4(); ok {
						r2 = utf16.DecodeRune(r, lo)
						if r2 == utf8.RuneError {
							p.pos = save
						}
					} else {
						return nil, p.errf("invalid \\u escape")
					}
				}
				r = r2
			}
			out = utf8.AppendRune(out, r)
		default:
			return nil, p.errf("invalid escape")
		}
	}
	return nil, p.errf("unterminated string")
}

func (p *parser) hex4() (rune, bool) {
	if len(p.src)-p.pos < 4 {
		return 0, false
	}
	v, err := strconv.ParseUint(string(p.src[p.pos:p.pos+4]), 16, 32)
	if err != nil {
		return 0, false
	}
	p.pos += 4
	return rune(v), true
}

func (p *parser) object(depth int) (*node, error) {
	n := p.a.new()
	n.kind = kObject
	p.pos++
	p.ws()
	if p.pos < len(p.src) && p.src[p.pos] == '}' {
		p.pos++
		return n, nil
	}
	mark, kmark := len(p.vs), len(p.ks)
	for {
		p.ws()
		if p.pos >= len(p.src) || p.src[p.pos] != '"' {
			return nil, p.errf("expected object key")
		}
		k, err := p.string()
		if err != nil {
			return nil, err
		}
		p.ws()
		if p.pos >= len(p.src) || p.src[p.pos] != ':' {
			return nil, p.errf("expected ':'")
		}
		p.pos++
		p.ws()
		v, err := p.value(depth + 1)
		if err != nil {
			return nil, err
		}
		p.ks = append(p.ks, k)
		p.vs = append(p.vs, v)
		p.ws()
		if p.pos >= len(p.src) {
			return nil, p.errf("unterminated object")
		}
		switch p.src[p.pos] {
		case ',':
			p.pos++
		case '}':
			p.pos++
			n.keys, n.vals = p.a.children(p.ks[kmark:], p.vs[mark:])
			p.ks, p.vs = p.ks[:kmark], p.vs[:mark]
			return n, nil
		default:
			return nil, p.errf("expected ',' or '}'")
		}
	}
}

func (p *parser) array(depth int) (*node, error) {
	n := p.a.new()
	n.kind = kArray
	p.pos++
	p.ws()
	if p.pos < len(p.src) && p.src[p.pos] == ']' {
		p.pos++
		return n, nil
	}
	mark := len(p.vs)
	for {
		p.ws()
		v, err := p.value(depth + 1)
		if err != nil {
			return nil, err
		}
		p.vs = append(p.vs, v)
		p.ws()
		if p.pos >= len(p.src) {
			return nil, p.errf("unterminated array")
		}
		switch p.src[p.pos] {
		case ',':
			p.pos++
		case ']':
			p.pos++
			_, n.vals = p.a.children(nil, p.vs[mark:])
			p.vs = p.vs[:mark]
			return n, nil
		default:
			return nil, p.errf("expected ',' or ']'")
		}
	}
}

// get returns the value of key in an object node, or nil.
func (n *node) get(key string) *node {
	if n == nil || n.kind != kObject {
		return nil
	}
	for i, k := range n.keys {
		if string(k) == key {
			return n.vals[i]
		}
	}
	return nil
}

// write appends n as JSON.
func write(dst []byte, n *node) []byte {
	switch n.kind {
	case kNull:
		return append(dst, "null"...)
	case kBool, kNumber:
		return append(dst, n.raw...)
	case kString:
		if n.raw != nil {
			return append(dst, n.raw...)
		}
		return appendString(dst, n.str)
	case kArray:
		dst = append(dst, '[')
		for i, v := range n.vals {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = write(dst, v)
		}
		return append(dst, ']')
	default:
		dst = append(dst, '{')
		for i, v := range n.vals {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendString(dst, n.keys[i])
			dst = append(dst, ':')
			dst = write(dst, v)
		}
		return append(dst, '}')
	}
}

const hexDigits = "0123456789abcdef"

func appendString(dst, s []byte) []byte {
	dst = append(dst, '"')
	for _, c := range s {
		switch {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case c == '\n':
			dst = append(dst, '\\', 'n')
		case c == '\r':
			dst = append(dst, '\\', 'r')
		case c == '\t':
			dst = append(dst, '\\', 't')
		case c < 0x20:
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		default:
			dst = append(dst, c)
		}
	}
	return append(dst, '"')
}
