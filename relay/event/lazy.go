package event

import "encoding/binary"

// Lazy frames. Stack frames are most of an error event (BENCHMARKS.md,
// issue 17, session 12), and most are flat objects of plain scalars
// (filename, function, lineno, ...) that processing only reads a key or
// two of, if any. The parser checks such an object in one pass over its
// bytes, as strictly as parsing it, and keeps it as its span: a lazy node,
// written back as that span. Its members are parsed into the arena the
// first time anything reads or changes them (load), so a reader sees the
// same tree either way; Find answers a key the object does not have from
// the span, and ScalarKeys lists the keys without parsing. Only objects
// that are elements of an array under a key "frames" are tried, so other
// objects, which processing reads, are not scanned twice.
// TestLazyMatchesEager checks trees, outputs and errors against the eager
// parse (ParseEager).

// lazyKey is the key whose array's elements the parser tries to keep lazy.
const lazyKey = "frames"

// flatObject parses, at '{', a compact object whose members are all
// printable-ASCII keys and scalars (strings of printable ASCII without
// escapes, numbers, literals) as a lazy node, which has its keys but not
// its values; nil, pos unchanged, when the object is anything else (the
// caller parses it in full).
func (p *parser) flatObject() *Node {
	src, i := p.src, p.pos+1
	if i < len(src) && src[i] == '}' {
		return nil
	}
	kmark := len(p.ks)
	n := p.flatMembers(i)
	p.ks = p.ks[:kmark]
	return n
}

func (p *parser) flatMembers(i int) *Node {
	src, kmark := p.src, len(p.ks)
	// Sibling frames mostly have the same keys: while each key is the
	// same bytes as the last lazy object's key at its place (m of them so
	// far), the object shares that list instead of scanning and copying
	// its keys; a key that differs ends the sharing.
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
			if j >= len(src) || src[j] != '"' {
				return nil
			}
			i = j + 1
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
		n.raw, n.lazy, n.lazyA = src[p.pos:i], true, p.a
		if shared && m == len(last) {
			n.keys = last
		} else {
			if shared {
				p.ks = append(p.ks, last[:m]...)
			}
			n.keys = p.a.keyList(p.ks[kmark:])
		}
		p.lastFlat = n.keys
		p.pos = i
		return n
	}
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
	n.lazy, n.lazyA = false, nil
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

// ScalarKeys is the keys of n, without parsing n, when n is a lazy object:
// every member's value is then a scalar and every key printable ASCII
// without escapes. ok is false for any other node. The slice belongs to
// the tree: do not change it.
func (n *Node) ScalarKeys() (keys [][]byte, ok bool) {
	if n == nil || !n.lazy {
		return nil, false
	}
	return n.keys, true
}
