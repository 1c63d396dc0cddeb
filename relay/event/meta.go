package event

import (
	"encoding/binary"
	"strconv"
)

// Meta is what Relay writes under "_meta" for one value: {"": {"rem":
// [[rule, type, start, end]], "err": [[kind, data]], "len": n, "val": v}}.
type Meta struct {
	// Remarks say which rule changed the value and how.
	Remarks []Remark
	// Errors are [kind, data] pairs, e.g. ["invalid_data", {"reason": …}].
	Errors []MetaError
	// Len is the original length in characters of a rewritten string; 0: not
	// recorded.
	Len int
	// Val is the original value of one that was removed; nil: not recorded.
	Val *Node
}

// Remark is one entry of "rem".
type Remark struct {
	Rule string
	// Type is Relay's remark type: 'x' removed, 's' substituted, 'm' masked,
	// 'p' pseudonymized, 'a' annotated.
	Type byte
	// Start and End are the byte range of the change in the new value;
	// Start < 0: no range (the whole value).
	Start, End int
}

// MetaError is one entry of "err": its kind and optional data (an object);
// written as [kind, data], or as kind alone without data.
type MetaError struct {
	Kind string
	Data *Node
}

type pathMeta struct {
	path []string
	m    *Meta
}

// MetaOf returns n's Meta, creating it. n is touched, so that AppendJSON's
// search for Meta can pass over containers still as parsed.
func (t *Tree) MetaOf(n *Node) *Meta {
	if n.meta == nil {
		n.meta = &Meta{}
		t.noded++
		t.touch(n)
	}
	t.dirty = true
	return n.meta
}

// MetaAt returns the Meta recorded for the value at path (object keys and
// array indexes from the root), creating it; for a value that was removed,
// which has no node to hold it. The path is kept: do not change it.
func (t *Tree) MetaAt(path ...string) *Meta {
	t.dirty = true
	if len(t.paths) < indexFrom {
		for _, p := range t.paths {
			if equalPath(p.path, path) {
				return p.m
			}
		}
	} else {
		// normalize records one path per bad list element: a scan of
		// the earlier ones would make that quadratic.
		if t.pathIdx == nil {
			t.pathIdx = make(map[string]*Meta)
		}
		for ; t.pathN < len(t.paths); t.pathN++ {
			p := t.paths[t.pathN]
			t.pathIdx[string(t.pathKey(p.path))] = p.m
		}
		if m, ok := t.pathIdx[string(t.pathKey(path))]; ok {
			return m
		}
	}
	m := &Meta{}
	t.paths = append(t.paths, pathMeta{path: path, m: m})
	return m
}

// indexFrom is the number of records (MetaAt paths, children of a _meta
// node) from which lookups go through a map instead of a scan; a var so
// that tests can compare both ways.
var indexFrom = 16

// pathKey encodes path in t.key, each element prefixed by its length: keys
// may hold any byte, so a separator alone could make two paths one.
func (t *Tree) pathKey(path []string) []byte {
	k := t.key[:0]
	for _, e := range path {
		k = binary.AppendUvarint(k, uint64(len(e)))
		k = append(k, e...)
	}
	t.key = k
	return k
}

// resetIndexes drops the lookup maps of attachMeta and MetaAt, keeping
// moderate ones for the next records.
func (t *Tree) resetIndexes() {
	if len(t.pathIdx) > maxKeepIndex {
		t.pathIdx = nil
	}
	clear(t.pathIdx)
	t.pathN = 0
	for _, x := range t.kids {
		if len(x.at) <= maxKeepIndex && len(t.kidsFree) < maxKeepIndexes {
			clear(x.at)
			x.n = 0
			t.kidsFree = append(t.kidsFree, x)
		}
	}
	clear(t.kids)
}

// maxKeepIndex bounds the maps a pooled tree keeps, like the arena's slabs.
const (
	maxKeepIndex   = 1 << 12
	maxKeepIndexes = 64
)

// childIndex maps the keys of a _meta node to their first position, as a
// scan finds them; n keys are indexed so far (keys are only appended while
// _meta is built).
type childIndex struct {
	at map[string]int
	n  int
}

func equalPath(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

var ownKey = []byte{}

type pathElem struct {
	key   []byte // nil for an array element
	index int
}

// AppendJSON appends the tree as JSON, with every recorded Meta merged into
// the root object's "_meta" (created at the end when missing); remarks and
// errors are added to what "_meta" holds, len only when it has none, val
// replaces. The records are then dropped, so a second call appends the same.
func (t *Tree) AppendJSON(dst []byte) []byte {
	if t.root.Kind() == Object && (len(t.paths) > 0 || t.noded > 0) {
		t.attachMeta()
	}
	return write(dst, t.root)
}

func (t *Tree) attachMeta() {
	mroot := t.root.Get("_meta")
	if mroot.Kind() != Object {
		mroot = t.NewObject()
		t.Set(t.root, "_meta", mroot)
	}
	for _, p := range t.paths {
		m := mroot
		for _, k := range p.path {
			m = t.metaChild(m, t.a.copyString(k))
		}
		t.mergeMeta(t.metaChild(m, nil), p.m)
	}
	clear(t.paths)
	t.paths = t.paths[:0]
	if t.noded > 0 {
		t.stack = t.stack[:0]
		t.walkMeta(t.root, mroot, true)
		t.noded = 0
	}
	t.resetIndexes()
}

// walkMeta merges the Meta of n's descendants, under their paths; the
// path is built in t.stack and turned into "_meta" nodes only for a node
// that has a Meta.
func (t *Tree) walkMeta(n, mroot *Node, top bool) {
	for i, c := range n.vals {
		if top && string(n.keys[i]) == "_meta" {
			continue
		}
		e := pathElem{index: i}
		if n.kind == Object {
			e.key = n.keys[i]
		}
		t.stack = append(t.stack, e)
		if c.meta != nil {
			m := mroot
			for _, e := range t.stack {
				k := e.key
				if k == nil {
					var b [20]byte
					k = t.a.copyBytes(strconv.AppendInt(b[:0], int64(e.index), 10))
				}
				m = t.metaChild(m, k)
			}
			t.mergeMeta(t.metaChild(m, nil), c.meta)
			c.meta = nil
		}
		if len(c.vals) > 0 && (c.raw == nil || c.dirty) { // else no Meta below (MetaOf touches)
			t.walkMeta(c, mroot, false)
		}
		t.stack = t.stack[:len(t.stack)-1]
	}
}

// metaChild returns the object under key in meta node m (the first, if the
// key repeats), creating it; key nil is "", the node's own entry.
func (t *Tree) metaChild(m *Node, key []byte) *Node {
	if i := t.findChild(m, key); i >= 0 {
		c := m.vals[i]
		if c.kind != Object {
			c.lazy, c.lazyA = false, nil
			c.kind, c.raw, c.str, c.keys, c.vals = Object, nil, nil, nil, nil
			t.touch(c)
		}
		return c
	}
	c := t.NewObject()
	if key == nil {
		key = ownKey
	}
	t.a.push(m, key, c)
	t.touch(m)
	return c
}

// findChild is the position of key in m's keys, or -1. Past indexFrom keys
// it uses m's childIndex: many siblings with Meta, or a client _meta with
// many keys, would make a scan per insert quadratic.
func (t *Tree) findChild(m *Node, key []byte) int {
	m.load()
	if len(m.keys) < indexFrom {
		for i, k := range m.keys {
			if string(k) == string(key) {
				return i
			}
		}
		return -1
	}
	x := t.kids[m]
	if x == nil {
		if n := len(t.kidsFree); n > 0 {
			x, t.kidsFree = t.kidsFree[n-1], t.kidsFree[:n-1]
		} else {
			x = &childIndex{at: make(map[string]int)}
		}
		if t.kids == nil {
			t.kids = make(map[*Node]*childIndex)
		}
		t.kids[m] = x
	}
	if len(m.keys) < x.n { // not while _meta is built; rebuild to be safe
		clear(x.at)
		x.n = 0
	}
	for ; x.n < len(m.keys); x.n++ {
		k := m.keys[x.n]
		if _, ok := x.at[string(k)]; !ok {
			x.at[string(k)] = x.n
		}
	}
	if i, ok := x.at[string(key)]; ok {
		return i
	}
	return -1
}

// mergeMeta adds md to e, the "" object of a value's _meta.
func (t *Tree) mergeMeta(e *Node, md *Meta) {
	if len(md.Remarks) > 0 {
		rem := t.list(e, "rem")
		for _, r := range md.Remarks {
			a := t.NewArray(t.NewString(r.Rule), t.NewStringBytes(t.a.copyBytes([]byte{r.Type})))
			if r.Start >= 0 {
				t.Push(a, t.NewInt(int64(r.Start)))
				t.Push(a, t.NewInt(int64(r.End)))
			}
			t.Push(rem, a)
		}
	}
	if len(md.Errors) > 0 {
		errs := t.list(e, "err")
		for _, x := range md.Errors {
			if x.Data == nil { // Relay writes an error without data as its kind alone
				t.Push(errs, t.NewString(x.Kind))
				continue
			}
			t.Push(errs, t.NewArray(t.NewString(x.Kind), x.Data))
		}
	}
	if md.Len > 0 && !e.Has("len") {
		t.Set(e, "len", t.NewInt(int64(md.Len)))
	}
	if md.Val != nil {
		t.Set(e, "val", md.Val)
	}
}

// list returns the array under key of object e, replacing another value.
func (t *Tree) list(e *Node, key string) *Node {
	l := e.Get(key)
	if l.Kind() != Array {
		l = t.NewArray()
		t.Set(e, key, l)
	}
	return l
}
