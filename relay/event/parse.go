package event

import (
	"errors"
	"fmt"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// ErrSyntax is wrapped by Parse's errors: the input is not one JSON value.
var ErrSyntax = errors.New("invalid JSON")

// MaxDepth bounds nesting so a hostile event cannot exhaust the stack;
// Relay itself trims events deeper than this during normalization.
const MaxDepth = 256

type parser struct {
	src   []byte
	pos   int
	a     *arena
	ks    [][]byte // children of the containers being parsed
	vs    []*Node
	rawOK bool // the last string's source token is valid UTF-8 and can be written back
	// loose counts what write would not reproduce from the source:
	// whitespace, a key with an escape or invalid UTF-8, a string with
	// invalid UTF-8. A container whose parse leaves it unchanged keeps its
	// source span as raw.
	loose int
	// lazyNext: the next array parsed is under lazyKey, its flat
	// objects are kept lazy (lazy.go).
	lazyNext bool
	eager    bool // no lazy objects: ParseEager
	// lastFlat is the keys of the last lazy object, which the next one,
	// most often a sibling frame with the same keys, shares when its keys
	// are the same bytes (lazy.go).
	lastFlat [][]byte
}

func parse(src []byte, a *arena, eager bool) (*Node, error) {
	p := parser{src: src, a: a, ks: a.ks[:0], vs: a.vs[:0], eager: eager}
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
	return fmt.Errorf("%w: %s at offset %d", ErrSyntax, what, p.pos)
}

// ws skips whitespace; compact JSON has none, so the usual call returns
// at once, inlined.
func (p *parser) ws() {
	if p.pos < len(p.src) && p.src[p.pos] > ' ' {
		return
	}
	p.wsSlow()
}

func (p *parser) wsSlow() {
	start := p.pos
	for p.pos < len(p.src) {
		switch p.src[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
			continue
		}
		break
	}
	if p.pos != start {
		p.loose++
	}
}

func (p *parser) value(depth int) (*Node, error) {
	if p.lazyNext && (p.pos >= len(p.src) || p.src[p.pos] != '[') {
		p.lazyNext = false
	}
	if depth > MaxDepth {
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
		src := p.src
		i := plainEnd(src, start+1)
		if i < len(src) && src[i] == '"' { // printable ASCII, no escapes
			p.pos = i + 1
			n := p.a.node(String)
			n.str, n.raw = src[start+1:i], src[start:p.pos]
			return n, nil
		}
		s, err := p.string()
		if err != nil {
			return nil, err
		}
		n := p.a.node(String)
		n.str = s
		if p.rawOK {
			n.raw = p.src[start:p.pos]
		} else {
			p.loose++
		}
		return n, nil
	case c == 't':
		return p.literal("true", Bool)
	case c == 'f':
		return p.literal("false", Bool)
	case c == 'n':
		return p.literal("null", Null)
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number()
	default:
		return nil, p.errf("unexpected character")
	}
}

func (p *parser) literal(lit string, k Kind) (*Node, error) {
	if len(p.src)-p.pos < len(lit) || string(p.src[p.pos:p.pos+len(lit)]) != lit {
		return nil, p.errf("invalid literal")
	}
	n := p.a.node(k)
	n.raw = p.src[p.pos : p.pos+len(lit)]
	p.pos += len(lit)
	return n, nil
}

func (p *parser) number() (*Node, error) {
	start := p.pos
	i, ok := numberEnd(p.src, start)
	p.pos = i
	if !ok {
		return nil, p.errf("invalid number")
	}
	n := p.a.node(Number)
	n.raw = p.src[start:i]
	return n, nil
}

// numberEnd is the end of the JSON number at src[i:]; false, with the
// offset where it went wrong, when it is not one.
func numberEnd(src []byte, i int) (int, bool) {
	if src[i] == '-' {
		i++
	}
	d := i
	i = digitsEnd(src, i)
	if i == d || (i-d > 1 && src[d] == '0') {
		return i, false
	}
	if i < len(src) && src[i] == '.' {
		d = i + 1
		if i = digitsEnd(src, d); i == d {
			return i, false
		}
	}
	if i < len(src) && (src[i] == 'e' || src[i] == 'E') {
		i++
		if i < len(src) && (src[i] == '+' || src[i] == '-') {
			i++
		}
		d = i
		if i = digitsEnd(src, d); i == d {
			return i, false
		}
	}
	return i, true
}

func digitsEnd(src []byte, i int) int {
	for i < len(src) && src[i]-'0' < 10 {
		i++
	}
	return i
}

// plain marks the bytes a string scan passes over: ASCII other than the
// quote, the backslash and control characters.
var plain = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// plainEnd is the index of the first byte from i on that is not plain, or
// len(src). (Eight bytes at a time (SWAR) was no faster: keys and most
// values are short.)
func plainEnd(src []byte, i int) int {
	for i < len(src) && plain[src[i]] {
		i++
	}
	return i
}

// string decodes the string at pos. Without escapes the result aliases src.
func (p *parser) string() ([]byte, error) {
	src := p.src
	i := p.pos + 1 // opening quote
	start := i
	ascii := true
	for {
		for i < len(src) && plain[src[i]] {
			i++
		}
		if i >= len(src) {
			break
		}
		c := src[i]
		switch {
		case c == '"':
			s := src[start:i]
			p.pos = i + 1
			p.rawOK = ascii || utf8.Valid(s)
			if !p.rawOK {
				return []byte(string([]rune(string(s)))), nil // replace invalid bytes
			}
			return s, nil
		case c == '\\':
			p.pos = i
			return p.stringSlow(start)
		case c < 0x20:
			p.pos = i
			return nil, p.errf("control character in string")
		}
		ascii = false // c >= 0x80
		i++
	}
	p.pos = i
	return nil, p.errf("unterminated string")
}

func (p *parser) stringSlow(start int) ([]byte, error) {
	out := append(p.a.esc[:0], p.src[start:p.pos]...)
	defer func() { p.a.esc = out[:0] }()
	for p.pos < len(p.src) {
		c := p.src[p.pos]
		switch {
		case c == '"':
			p.pos++
			p.rawOK = utf8.Valid(out)
			if !p.rawOK {
				return []byte(string([]rune(string(out)))), nil
			}
			return p.a.copyBytes(out), nil
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

func (p *parser) object(depth int) (*Node, error) {
	n := p.a.node(Object)
	start, loose := p.pos, p.loose
	p.pos++
	p.ws()
	if p.pos < len(p.src) && p.src[p.pos] == '}' {
		p.pos++
		p.keep(n, start, loose)
		return n, nil
	}
	mark, kmark := len(p.vs), len(p.ks)
	for {
		p.ws()
		if p.pos >= len(p.src) || p.src[p.pos] != '"' {
			return nil, p.errf("expected object key")
		}
		k, ok := p.plainKey()
		if !ok {
			ks := p.pos
			var err error
			if k, err = p.string(); err != nil {
				return nil, err
			}
			if !p.rawOK || len(k) != p.pos-ks-2 { // invalid UTF-8 or an escape (which shortens): write re-escapes it
				p.loose++
			}
			p.ws()
			if p.pos >= len(p.src) || p.src[p.pos] != ':' {
				return nil, p.errf("expected ':'")
			}
			p.pos++
		}
		p.ws()
		p.lazyNext = string(k) == lazyKey && !p.eager
		v, err := p.value(depth + 1)
		if err != nil {
			return nil, err
		}
		v.parent = n
		p.ks = append(p.ks, k)
		p.vs = append(p.vs, v)
		if p.pos < len(p.src) && p.src[p.pos] == ',' { // compact JSON
			p.pos++
			continue
		}
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
			p.keep(n, start, loose)
			return n, nil
		default:
			return nil, p.errf("expected ',' or '}'")
		}
	}
}

// plainKey is the usual key: printable ASCII without escapes, its ':'
// right after the closing quote. It moves past the ':' and aliases src;
// false leaves pos alone for the general path.
func (p *parser) plainKey() ([]byte, bool) {
	src := p.src
	i := plainEnd(src, p.pos+1)
	if i+1 >= len(src) || src[i] != '"' || src[i+1] != ':' {
		return nil, false
	}
	k := src[p.pos+1 : i]
	p.pos = i + 2
	return k, true
}

// keep finishes container n parsed from src[start:pos] (its children got
// n as parent as they were parsed): n keeps its span as raw when nothing
// in it was loose (loose is p.loose before n).
func (p *parser) keep(n *Node, start, loose int) {
	if p.loose == loose {
		n.raw = p.src[start:p.pos]
	}
}

func (p *parser) array(depth int) (*Node, error) {
	n := p.a.node(Array)
	start, loose := p.pos, p.loose
	lazy := p.lazyNext
	p.lazyNext = false
	p.pos++
	p.ws()
	if p.pos < len(p.src) && p.src[p.pos] == ']' {
		p.pos++
		p.keep(n, start, loose)
		return n, nil
	}
	mark := len(p.vs)
	for {
		p.ws()
		var v *Node
		if lazy && p.pos < len(p.src) && p.src[p.pos] == '{' && depth+2 <= MaxDepth { // as deep as value would accept
			v = p.flatObject(depth+3 <= MaxDepth) // an array member's elements are at depth+3
		}
		if v == nil {
			var err error
			if v, err = p.value(depth + 1); err != nil {
				return nil, err
			}
		}
		v.parent = n
		p.vs = append(p.vs, v)
		if p.pos < len(p.src) && p.src[p.pos] == ',' { // compact JSON
			p.pos++
			continue
		}
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
			p.keep(n, start, loose)
			return n, nil
		default:
			return nil, p.errf("expected ',' or ']'")
		}
	}
}
