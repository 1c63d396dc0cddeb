package event

import (
	"bytes"
	"slices"
	"strconv"
	"sync"
)

// Kind is the JSON type of a node.
type Kind uint8

// The kinds of JSON values.
const (
	Null Kind = iota
	Bool
	Number
	String
	Array
	Object
)

// Node is one JSON value of a Tree. A nil *Node is an absent value: its
// readers return zero values, so lookups chain without checks.
type Node struct {
	kind Kind
	// dirty: n or a descendant changed since Parse, so raw no longer
	// stands for a container; set by touch along parent, never cleared.
	dirty bool
	// lazy: a flat object (lazy.go) whose values are not parsed yet; its
	// raw is its span, keys its keys, members what they are, and lazyA the
	// arena load parses the members into.
	lazy    bool
	members Members  // of a lazy object
	parent  *Node    // the container n was parsed into; nil for built nodes
	raw     []byte   // source token of a scalar (nil once a string is rewritten), or a compact container's source span
	str     []byte   // decoded string content (String)
	keys    [][]byte // decoded object keys (Object)
	vals    []*Node  // object values or array elements
	meta    *Meta    // what processing changed here; see MetaOf
	lazyA   *arena
}

// Tree is a parsed event and the arena its nodes live in. A Tree is not
// safe for concurrent use.
type Tree struct {
	root  *Node
	a     arena
	paths []pathMeta // MetaAt records
	noded int        // nodes with a Meta
	dirty bool
	stack []pathElem // scratch of AppendJSON's meta walk
	ints  []int      // scratch of SortedKeys

	// Indexes of MetaAt's paths and of _meta nodes' children, kept with
	// the tree; see indexFrom.
	pathIdx  map[string]*Meta
	pathN    int    // t.paths[:pathN] are in pathIdx
	key      []byte // scratch of pathKey
	kids     map[*Node]*childIndex
	kidsFree []*childIndex
}

var trees = sync.Pool{New: func() any { return new(Tree) }}

// Parse parses src, one JSON value nested at most MaxDepth deep, into a
// pooled Tree; errors wrap ErrSyntax. src is aliased, not copied. Call
// Release when done.
func Parse(src []byte) (*Tree, error) { return parseTree(src, false) }

// ParseEager is Parse without lazy objects (lazy.go): every value parsed
// at once. The same tree for every reader and writer; the reference of
// the differential tests of Parse's consumers.
func ParseEager(src []byte) (*Tree, error) { return parseTree(src, true) }

func parseTree(src []byte, eager bool) (*Tree, error) {
	t := trees.Get().(*Tree)
	root, err := parse(src, &t.a, eager)
	if err != nil {
		t.Release()
		return nil, err
	}
	t.root = root
	return t, nil
}

// New returns an empty pooled Tree whose root is an empty object, for
// building an event. Call Release when done.
func New() *Tree {
	t := trees.Get().(*Tree)
	t.root = t.NewObject()
	return t
}

// Release returns t and its arena to the pool; neither t nor any of its
// nodes may be used afterwards.
func (t *Tree) Release() {
	t.a.reset()
	clear(t.paths)
	clear(t.stack)
	t.resetIndexes()
	*t = Tree{a: t.a, paths: t.paths[:0], stack: t.stack[:0], ints: t.ints[:0],
		pathIdx: t.pathIdx, key: t.key[:0], kids: t.kids, kidsFree: t.kidsFree}
	trees.Put(t)
}

// Root is the top-level value.
func (t *Tree) Root() *Node { return t.root }

// SetRoot replaces the top-level value.
func (t *Tree) SetRoot(n *Node) { t.root, t.dirty = n, true }

// Dirty reports whether anything was changed since Parse: a value set,
// deleted or rewritten, or a Meta recorded.
func (t *Tree) Dirty() bool { return t.dirty }

// Constructors. Strings and numbers made from Go values are copied into the
// arena.

// NewNull returns a null node.
func (t *Tree) NewNull() *Node { return t.a.node(Null) }

// NewBool returns a boolean node.
func (t *Tree) NewBool(b bool) *Node {
	n := t.a.node(Bool)
	n.raw = boolRaw[b]
	return n
}

var boolRaw = map[bool][]byte{true: []byte("true"), false: []byte("false")}

// NewString returns a string node holding a copy of s.
func (t *Tree) NewString(s string) *Node {
	n := t.a.node(String)
	n.str = t.a.copyString(s)
	return n
}

// NewStringBytes returns a string node holding b itself (not copied).
func (t *Tree) NewStringBytes(b []byte) *Node {
	n := t.a.node(String)
	n.str = b
	return n
}

// NewNumber returns a number node written as the JSON number text raw,
// copied; raw is not validated.
func (t *Tree) NewNumber(raw []byte) *Node {
	n := t.a.node(Number)
	n.raw = t.a.copyBytes(raw)
	return n
}

// NewInt returns an integer number node.
func (t *Tree) NewInt(v int64) *Node {
	n := t.a.node(Number)
	var b [20]byte
	n.raw = t.a.copyBytes(strconv.AppendInt(b[:0], v, 10))
	return n
}

// NewObject returns an empty object.
func (t *Tree) NewObject() *Node { return t.a.node(Object) }

// NewArray returns an array of vals.
func (t *Tree) NewArray(vals ...*Node) *Node {
	n := t.a.node(Array)
	if len(vals) > 0 {
		_, n.vals = t.a.children(nil, vals)
	}
	return n
}

// Readers.

// Kind is n's type; Null for an absent (nil) node.
func (n *Node) Kind() Kind {
	if n == nil {
		return Null
	}
	return n.kind
}

// IsNull reports whether n is absent or null.
func (n *Node) IsNull() bool { return n == nil || n.kind == Null }

// Bytes is the decoded content of a string node, nil for other kinds. The
// bytes belong to the tree: do not change them.
func (n *Node) Bytes() []byte {
	if n == nil || n.kind != String {
		return nil
	}
	return n.str
}

// Str is the content of a string node; ok is false for other kinds.
func (n *Node) Str() (s string, ok bool) {
	if n == nil || n.kind != String {
		return "", false
	}
	return string(n.str), true
}

// Is reports whether n is the string s.
func (n *Node) Is(s string) bool {
	return n != nil && n.kind == String && string(n.str) == s
}

// Lenient is n as text the way Relay's lenient string fields read it: a
// string's content, a number's JSON text, "true" or "false"; ok is false
// for null, arrays and objects.
func (n *Node) Lenient() (b []byte, ok bool) {
	switch n.Kind() {
	case String:
		return n.str, true
	case Number, Bool:
		return n.raw, true
	}
	return nil, false
}

// Raw is the JSON text of a number or boolean (as it came), nil otherwise.
func (n *Node) Raw() []byte {
	if k := n.Kind(); k != Number && k != Bool {
		return nil
	}
	return n.raw
}

// Float is a number node's value; ok is false for other kinds.
func (n *Node) Float() (float64, bool) {
	if n.Kind() != Number {
		return 0, false
	}
	f, err := strconv.ParseFloat(string(n.raw), 64)
	return f, err == nil
}

// Int is a number node's value when it is an integer that fits in int64.
func (n *Node) Int() (int64, bool) {
	if n.Kind() != Number {
		return 0, false
	}
	v, err := strconv.ParseInt(string(n.raw), 10, 64)
	return v, err == nil
}

// Bool is a boolean node's value; ok is false for other kinds.
func (n *Node) Bool() (v, ok bool) {
	if n.Kind() != Bool {
		return false, false
	}
	return n.raw[0] == 't', true
}

// Len is the number of an object's members or an array's elements.
func (n *Node) Len() int {
	if n == nil {
		return 0
	}
	n.load()
	return len(n.vals)
}

// Key is the i-th key of an object.
func (n *Node) Key(i int) []byte {
	n.load()
	return n.keys[i]
}

// Index is the i-th element of an array or value of an object.
func (n *Node) Index(i int) *Node {
	n.load()
	return n.vals[i]
}

// Find is the index of key in object n, or -1.
func (n *Node) Find(key string) int {
	if n == nil || n.kind != Object {
		return -1
	}
	if n.lazy {
		if !n.flatHas(key) {
			return -1 // not parsed for a key it does not have
		}
		n.expand()
	}
	for i, k := range n.keys {
		if string(k) == key {
			return i
		}
	}
	return -1
}

// Get is the value of key in object n (the first, if the key repeats), or
// nil when n is not an object or has no such key.
func (n *Node) Get(key string) *Node {
	if i := n.Find(key); i >= 0 {
		return n.vals[i]
	}
	return nil
}

// Has reports whether object n has key, whatever its value.
func (n *Node) Has(key string) bool { return n.Find(key) >= 0 }

// SortedKeys returns the member indexes of object o in key order (the
// order of Relay's maps); of a repeated key only the last, the one a JSON
// decoder keeps. The slice is the tree's scratch: valid until the next call.
func (t *Tree) SortedKeys(o *Node) []int {
	idx := t.ints[:0]
	for i := range o.Len() {
		idx = append(idx, i)
	}
	slices.SortStableFunc(idx, func(a, b int) int { return bytes.Compare(o.keys[a], o.keys[b]) })
	j := 0
	for i, x := range idx {
		if i+1 < len(idx) && bytes.Equal(o.keys[x], o.keys[idx[i+1]]) {
			continue
		}
		idx[j] = x
		j++
	}
	t.ints = idx
	return idx[:j]
}

// Meta is what processing recorded for n, or nil.
func (n *Node) Meta() *Meta {
	if n == nil {
		return nil
	}
	return n.meta
}

// AppendJSON appends n as JSON, without any Meta (see Tree.AppendJSON).
func (n *Node) AppendJSON(dst []byte) []byte { return write(dst, n) }

// Mutators.

// Set sets key of object obj to v: in place when the key is there, else
// appended. It does nothing when obj is not an object.
func (t *Tree) Set(obj *Node, key string, v *Node) {
	if obj == nil || obj.kind != Object {
		return
	}
	t.touch(obj)
	if i := obj.Find(key); i >= 0 {
		obj.vals[i] = v
		return
	}
	t.a.push(obj, t.a.copyString(key), v)
}

// Add appends member key to object n without looking for one already
// there: for a caller that knows the key is new, where Set's lookup would
// make building a large object quadratic.
func (t *Tree) Add(obj *Node, key []byte, v *Node) {
	if obj == nil || obj.kind != Object {
		return
	}
	t.touch(obj)
	t.a.push(obj, t.a.copyBytes(key), v)
}

// Delete removes every member key of object n; false when there was none.
func (t *Tree) Delete(n *Node, key string) bool {
	if n == nil || n.kind != Object {
		return false
	}
	n.load()
	j := 0
	for i, k := range n.keys {
		if string(k) != key {
			n.keys[j], n.vals[j] = k, n.vals[i]
			j++
		}
	}
	if j == len(n.keys) {
		return false
	}
	clear(n.keys[j:])
	clear(n.vals[j:])
	n.keys, n.vals = n.keys[:j], n.vals[:j]
	t.touch(n)
	return true
}

// DeleteAt removes the members of object n at the indices in idx, in one
// pass: deleting many members one key at a time costs their count times
// the object's length. It sorts idx.
func (t *Tree) DeleteAt(n *Node, idx []int) {
	if n == nil || n.kind != Object || len(idx) == 0 {
		return
	}
	n.load()
	slices.Sort(idx)
	j, next := 0, 0
	for i := range n.keys {
		for next < len(idx) && idx[next] < i {
			next++
		}
		if next < len(idx) && idx[next] == i {
			continue
		}
		n.keys[j], n.vals[j] = n.keys[i], n.vals[i]
		j++
	}
	if j == len(n.keys) {
		return
	}
	clear(n.keys[j:])
	clear(n.vals[j:])
	n.keys, n.vals = n.keys[:j], n.vals[:j]
	t.touch(n)
}

// Rename gives member from of object n the key to, where it is; a member
// already called to is removed. False when n has no member from.
func (t *Tree) Rename(n *Node, from, to string) bool {
	i := n.Find(from)
	if i < 0 {
		return false
	}
	v := n.vals[i]
	t.Delete(n, to)
	i = n.Find(from)
	n.keys[i] = t.a.copyString(to)
	n.vals[i] = v
	t.touch(n)
	return true
}

// Slice keeps only the children [i, j) of an array or object, in place.
func (t *Tree) Slice(n *Node, i, j int) {
	if n == nil || (n.kind != Array && n.kind != Object) {
		return
	}
	n.load()
	if n.kind == Object {
		n.keys = n.keys[i:j]
	}
	n.vals = n.vals[i:j]
	t.touch(n)
}

// Push appends v to array arr; it does nothing when arr is not an array.
func (t *Tree) Push(arr, v *Node) {
	if arr == nil || arr.kind != Array {
		return
	}
	t.touch(arr)
	t.a.push(arr, nil, v)
}

// SetIndex replaces the i-th element of an array or value of an object.
func (t *Tree) SetIndex(n *Node, i int, v *Node) {
	n.load()
	n.vals[i] = v
	t.touch(n)
}

// SetNull turns n into null in place; its Meta stays.
func (t *Tree) SetNull(n *Node) {
	n.lazy, n.lazyA = false, nil
	n.kind, n.raw, n.str, n.keys, n.vals = Null, nil, nil, nil, nil
	t.touch(n)
}

// SetString turns n into the string s (not copied) in place; its Meta
// stays.
func (t *Tree) SetString(n *Node, s []byte) {
	n.lazy, n.lazyA = false, nil
	n.kind, n.raw, n.str, n.keys, n.vals = String, nil, s, nil, nil
	t.touch(n)
}

// touch records that n changed: n and the containers it was parsed into
// can no longer be written as their source span. Every mutator calls it on
// the node whose value or children it changes. A node moved elsewhere
// keeps its old parent, which is safe: its new container was touched when
// it was put there, and a container once touched is always rewritten. The
// walk stops at a dirty node, whose ancestors are dirty already.
func (t *Tree) touch(n *Node) {
	t.dirty = true
	n.load() // a dirty node is never lazy: it is written from its children
	for ; n != nil && !n.dirty; n = n.parent {
		n.dirty = true
	}
}

// Arena.

// arena hands out nodes, child lists and bytes in chunks so that a parse
// makes a few allocations, not one per value; chunks are never moved, so
// pointers stay valid. reset keeps the chunks for the next tree, up to a
// bound, so a pooled tree reaches zero allocations for events of a steady
// size.
type arena struct {
	chunks [][]Node // every chunk has cap chunkNodes
	ci     int      // chunks[:ci] are full
	cur    []Node   // chunks[ci][:used]
	keys   [][]byte // slab of object keys
	vals   []*Node  // slab of children
	buf    []byte   // slab of bytes
	esc    []byte   // scratch of the parser's unescaping
	ks     [][]byte // the parser's child stacks, kept between parses
	vs     []*Node
}

const (
	chunkNodes = 256
	// maxKeep bounds what reset keeps, so one huge event does not pin its
	// arena in the pool for ever.
	maxKeepChunks = 64
	maxKeepSlab   = 1 << 16
)

func (a *arena) node(k Kind) *Node {
	if len(a.cur) == cap(a.cur) {
		if a.cur != nil {
			a.ci++
		}
		if a.ci == len(a.chunks) {
			a.chunks = append(a.chunks, make([]Node, chunkNodes))
		}
		a.cur = a.chunks[a.ci][:0]
	}
	a.cur = a.cur[:len(a.cur)+1]
	n := &a.cur[len(a.cur)-1]
	*n = Node{kind: k}
	return n
}

// keyList copies the keys of a lazy object into the slab.
func (a *arena) keyList(keys [][]byte) [][]byte {
	if len(keys) == 0 {
		return nil
	}
	if cap(a.keys)-len(a.keys) < len(keys) {
		a.keys = make([][]byte, 0, max(1024, 2*cap(a.keys), len(keys)))
	}
	j := len(a.keys)
	a.keys = append(a.keys, keys...)
	return a.keys[j:len(a.keys):len(a.keys)]
}

// children copies a finished container's children into the slabs; the
// results are capped so appending to them never overwrites a neighbour.
func (a *arena) children(keys [][]byte, vals []*Node) ([][]byte, []*Node) {
	if len(vals) == 0 {
		return nil, nil
	}
	if cap(a.vals)-len(a.vals) < len(vals) {
		a.vals = make([]*Node, 0, max(1024, 2*cap(a.vals), len(vals)))
	}
	i := len(a.vals)
	a.vals = append(a.vals, vals...)
	v := a.vals[i:len(a.vals):len(a.vals)]
	if keys == nil {
		return nil, v
	}
	if cap(a.keys)-len(a.keys) < len(keys) {
		a.keys = make([][]byte, 0, max(1024, 2*cap(a.keys), len(keys)))
	}
	j := len(a.keys)
	a.keys = append(a.keys, keys...)
	return a.keys[j:len(a.keys):len(a.keys)], v
}

// push appends one child to n, moving its children to a larger place in
// the slabs when they are full.
func (a *arena) push(n *Node, key []byte, v *Node) {
	obj := n.kind == Object
	if len(n.vals) == cap(n.vals) {
		n.keys, n.vals = a.grow(obj, n.keys, n.vals, max(4, 2*len(n.vals)))
	}
	if obj {
		n.keys = append(n.keys, key)
	}
	n.vals = append(n.vals, v)
}

// grow places keys and vals in the slabs with room for size children.
func (a *arena) grow(obj bool, keys [][]byte, vals []*Node, size int) ([][]byte, []*Node) {
	if cap(a.vals)-len(a.vals) < size {
		a.vals = make([]*Node, 0, max(1024, 2*cap(a.vals), size))
	}
	i := len(a.vals)
	nv := append(a.vals[i:i:i+size], vals...)
	a.vals = a.vals[:i+size]
	if !obj {
		return nil, nv
	}
	if cap(a.keys)-len(a.keys) < size {
		a.keys = make([][]byte, 0, max(1024, 2*cap(a.keys), size))
	}
	j := len(a.keys)
	nk := append(a.keys[j:j:j+size], keys...)
	a.keys = a.keys[:j+size]
	return nk, nv
}

func (a *arena) alloc(n int) []byte {
	if cap(a.buf)-len(a.buf) < n {
		if n > 1024 {
			return make([]byte, n)
		}
		a.buf = make([]byte, 0, max(4096, 2*cap(a.buf)))
	}
	i := len(a.buf)
	a.buf = a.buf[:i+n]
	return a.buf[i : i+n : i+n]
}

func (a *arena) copyString(s string) []byte {
	b := a.alloc(len(s))
	copy(b, s)
	return b
}

func (a *arena) copyBytes(s []byte) []byte {
	b := a.alloc(len(s))
	copy(b, s)
	return b
}

// reset keeps the memory for the next tree. It does not clear it: nodes
// are zeroed when handed out, and what the slabs still point to (the last
// event's bytes) stays reachable only until the slots are reused or the
// pool drops the tree at a garbage collection, so clearing would only cost.
func (a *arena) reset() {
	if len(a.chunks) > maxKeepChunks {
		clear(a.chunks[maxKeepChunks:])
		a.chunks = a.chunks[:maxKeepChunks]
	}
	a.ci, a.cur = 0, nil
	a.keys, a.vals, a.buf = resetSlab(a.keys), resetSlab(a.vals), resetSlab(a.buf)
	a.ks, a.vs = resetSlab(a.ks), resetSlab(a.vs)
}

func resetSlab[T any](s []T) []T {
	if cap(s) > maxKeepSlab {
		return nil
	}
	return s[:0]
}
