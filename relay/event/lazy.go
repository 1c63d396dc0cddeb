package event

import (
	"encoding/binary"
	"unicode/utf8"
)

// Lazy frames. Stack frames are most of an error event (BENCHMARKS.md,
// issue 17, session 12), and processing reads a key or two of them, if
// any. The parser checks a frame that is a flat object in one pass over
// its bytes, as strictly as parsing it, and keeps it as its span: a lazy
// node, written back as that span. Flat means compact (no whitespace),
// printable-ASCII keys without escapes, and values that are scalars or
// arrays of scalars (pre_context, post_context), strings with any valid
// escape and valid UTF-8: what real SDKs' frames are. Its members are
// parsed into the arena the first time anything reads or changes them
// (load), so a reader sees the same tree either way; Find answers a key
// the object does not have from the keys, and LazyKeys lists the keys and
// what the members are (Members) without parsing. Only objects that are
// elements of an array under a key "frames" are tried, so other objects,
// which processing reads, are not scanned twice. TestLazyMatchesEager
// checks trees, outputs and errors against the eager parse (ParseEager).

// lazyKey is the key whose array's elements the parser tries to keep lazy.
const lazyKey = "frames"

// Members says what the members of a lazy object are besides scalars,
// known without parsing them (LazyKeys).
type Members uint8

const (
	// HasArrays: some member is an array (whose elements are scalars).
	HasArrays Members = 1 << iota
	// HasPairs: some member is an array of two elements, the first a
	// string, which a walk may take for a key and its value.
	HasPairs
)

// flatObject parses, at '{', a flat object (see above; arrays only when
// they are not nested too deeply to parse) as a lazy node, which has its
// keys but not its values; nil, pos unchanged, when the object is anything
// else, valid or not (the caller parses it in full, and reports the error).
func (p *parser) flatObject(arrays bool) *Node {
	src, i := p.src, p.pos+1
	if i < len(src) && src[i] == '}' {
		return nil
	}
	kmark := len(p.ks)
	n := p.flatMembers(i, arrays)
	p.ks = p.ks[:kmark]
	return n
}

func (p *parser) flatMembers(i int, arrays bool) *Node {
	src, kmark := p.src, len(p.ks)
	var mem Members
	// Sibling frames mostly have the same keys: while each key is the
	// same bytes as the last lazy object's key at its place (m of them so
	// far), the object shares that list, or its first m, instead of
	// scanning and copying its keys; a key that differs ends the sharing.
	last, m, shared := p.lastFlat, 0, len(p.lastFlat) > 0
	for {
		if i >= len(src) || src[i] != '"' {
			return nil
		}
		if shared {
			if m < len(last) {
				k := last[m]
				if e := i + 1 + len(k); e+1 < len(src) && src[e] == '"' && src[e+1] == ':' && sameKey(src, i+1, k) {
					m++
					i = e + 2
				} else {
					shared = false
				}
			} else {
				shared = false
			}
			if !shared {
				p.ks = append(p.ks, last[:m]...)
			}
		}
		if !shared {
			j := plainEnd(src, i+1)
			if j+1 >= len(src) || src[j] != '"' || src[j+1] != ':' {
				return nil
			}
			p.ks = append(p.ks, src[i+1:j])
			i = j + 2
		}
		if i >= len(src) {
			return nil
		}
		switch c := src[i]; {
		case c == '"':
			j := plainEnd(src, i+1)
			if j < len(src) && src[j] == '"' {
				i = j + 1
			} else if i = stringRest(src, j); i < 0 {
				return nil
			}
		case c-'1' < 9: // most often a positive integer: lineno, colno
			j := digitsEnd(src, i+1)
			if j < len(src) && (src[j] == ',' || src[j] == '}') {
				i = j
				break
			}
			e, ok := numberEnd(src, i)
			if !ok {
				return nil
			}
			i = e
		case c == '-' || c == '0':
			e, ok := numberEnd(src, i)
			if !ok {
				return nil
			}
			i = e
		case c == 't':
			if i = litEnd(src, i, "true"); i < 0 {
				return nil
			}
		case c == 'f':
			if i = litEnd(src, i, "false"); i < 0 {
				return nil
			}
		case c == 'n':
			if i = litEnd(src, i, "null"); i < 0 {
				return nil
			}
		case c == '[' && arrays:
			e, pair := scalarsEnd(src, i)
			if e < 0 {
				return nil
			}
			mem |= HasArrays
			if pair {
				mem |= HasPairs
			}
			i = e
		default:
			return nil
		}
		if i >= len(src) {
			return nil
		}
		if src[i] == ',' {
			i++
			continue
		}
		if src[i] != '}' {
			return nil
		}
		i++
		n := p.a.node(Object)
		n.raw, n.lazy, n.lazyA, n.members = src[p.pos:i], true, p.a, mem
		if shared {
			// The list or a prefix of it: a frame without context lines
			// after one with them. The list stays the one to share, for
			// the next frame, which may have them again.
			n.keys = last[:m:m]
		} else {
			n.keys = p.a.keyList(p.ks[kmark:])
			p.lastFlat = n.keys
		}
		p.pos = i
		return n
	}
}

// stringRest is the end, past the closing quote, of a string whose
// content is plain up to src[i]: escapes as stringSlow accepts them (a
// \u with four hex digits; a surrogate needs nothing more, since an
// unpaired one is decoded as U+FFFD) and non-ASCII bytes that are valid
// UTF-8, so that the parser keeps the string's token as raw; -1 for
// anything else, valid or not.
func stringRest(src []byte, i int) int {
	for i < len(src) {
		switch c := src[i]; {
		case c == '"':
			return i + 1
		case c == '\\':
			if i+1 >= len(src) {
				return -1
			}
			switch src[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if len(src)-i < 6 || !isHex(src[i+2]) || !isHex(src[i+3]) || !isHex(src[i+4]) || !isHex(src[i+5]) {
					return -1
				}
				i += 6
			default:
				return -1
			}
		case c >= utf8.RuneSelf:
			r, size := utf8.DecodeRune(src[i:])
			if r == utf8.RuneError && size == 1 {
				return -1 // invalid: the parser replaces it and writes the string anew
			}
			i += size
		default: // a control character (any other byte is plain)
			return -1
		}
		i = plainEnd(src, i)
	}
	return -1
}

func isHex(c byte) bool { return c-'0' < 10 || (c|0x20)-'a' < 6 }

// scalarsEnd is the end of the compact array of scalars at src[i], '[',
// or -1; pair: it has two elements, the first a string.
func scalarsEnd(src []byte, i int) (end int, pair bool) {
	i++
	if i < len(src) && src[i] == ']' {
		return i + 1, false
	}
	first := i < len(src) && src[i] == '"'
	for n := 1; ; n++ {
		if i = scalarEnd(src, i); i < 0 || i >= len(src) {
			return -1, false
		}
		switch src[i] {
		case ',':
			i++
		case ']':
			return i + 1, n == 2 && first
		default:
			return -1, false
		}
	}
}

// scalarEnd is the end of the scalar at src[i] that the parser would keep
// as its token, or -1.
func scalarEnd(src []byte, i int) int {
	if i >= len(src) {
		return -1
	}
	switch c := src[i]; {
	case c == '"':
		j := plainEnd(src, i+1)
		if j < len(src) && src[j] == '"' {
			return j + 1
		}
		return stringRest(src, j)
	case c == '-' || c-'0' < 10:
		if e, ok := numberEnd(src, i); ok {
			return e
		}
	case c == 't':
		return litEnd(src, i, "true")
	case c == 'f':
		return litEnd(src, i, "false")
	case c == 'n':
		return litEnd(src, i, "null")
	}
	return -1
}

// sameKey reports whether src[i:i+len(k)] is k, a key that aliases the
// same source: a word compare when both have eight bytes to load (k's from
// its capacity), instead of a call.
func sameKey(src []byte, i int, k []byte) bool {
	if len(k) <= 8 && cap(k) >= 8 && i+8 <= len(src) {
		x := binary.LittleEndian.Uint64(src[i:]) ^ binary.LittleEndian.Uint64(k[:8])
		return x&(1<<(8*uint(len(k)))-1) == 0
	}
	return string(src[i:i+len(k)]) == string(k)
}

// litEnd is the end of literal lit at src[i:], or -1.
func litEnd(src []byte, i int, lit string) int {
	if len(src)-i < len(lit) || string(src[i:i+len(lit)]) != lit {
		return -1
	}
	return i + len(lit)
}

// load parses the members of a lazy n.
func (n *Node) load() {
	if n != nil && n.lazy {
		n.expand()
	}
}

func (n *Node) expand() {
	a := n.lazyA
	p := parser{src: n.raw, a: a, ks: a.ks[:0], vs: a.vs[:0]}
	m, err := p.object(0)
	a.ks, a.vs = p.ks[:0], p.vs[:0]
	if err != nil { // flatObject checked it as strictly as object does
		panic("event: lazy object does not parse: " + err.Error())
	}
	n.keys, n.vals = m.keys, m.vals
	for _, c := range n.vals {
		c.parent = n
	}
	n.lazy, n.lazyA, n.members = false, nil, 0
}

// flatHas reports whether lazy object n has key.
func (n *Node) flatHas(key string) bool {
	for _, k := range n.keys {
		if string(k) == key {
			return true
		}
	}
	return false
}

// LazyKeys is the keys of n, without parsing n, when n is a lazy object:
// every key is then printable ASCII without escapes, and every member's
// value a scalar or, as mem says, an array of scalars. ok is false for any
// other node. The slice belongs to the tree: do not change it.
func (n *Node) LazyKeys() (keys [][]byte, mem Members, ok bool) {
	if n == nil || !n.lazy {
		return nil, 0, false
	}
	return n.keys, n.members, true
}
