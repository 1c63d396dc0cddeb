package event

import (
	"bytes"
	"unsafe"
)

// What Parse holds per node and per object key: a Node in an arena chunk
// and its slot in the children slab and in the parser's stack; a key's
// slice header in the keys slab and the parser's stack. The stacks grow by
// append, 1.25 times when large, so a long array has allocated ~5 times
// its final stack; the slabs double (2 times). slots counts both, with
// room.
const (
	slots    = 10
	nodeCost = int(unsafe.Sizeof(Node{})) + slots*int(unsafe.Sizeof((*Node)(nil)))
	keyCost  = slots * int(unsafe.Sizeof([]byte(nil)))
	// byteCost covers decoded strings (escaped ones are copied into the
	// byte slab, grown by doubling) and the parser's unescaping scratch.
	byteCost = 3
)

// Cost is an upper bound, in bytes, of what Parse holds for src, found
// by counting structure without parsing: every value is a node, and there
// are at most as many as '{', '[' and ',' plus one; every ':' may be a
// key. The counts include those inside strings, which only makes the bound
// looser, so each is a vectorised bytes.Count instead of a byte-at-a-time
// scan that tracks strings (13 times faster on the load event). Strings
// full of such characters are capped by the shape of JSON: a node other
// than the root needs a byte of its own and the '[', ',' or ':' before it,
// and only an array's '[' is both, paid back by its ']' unless the input
// ends (or fails) inside it, at most MaxDepth+1 deep: at most
// (len+MaxDepth+2)/2 nodes; a key needs its quotes, its ':' and a value,
// so there are at most len/4. It allocates nothing, so a caller can charge a
// memory budget before it parses (TestCost measures it against Parse on
// hostile shapes). Processing the tree adds Meta records and nodes on top.
func Cost(src []byte) int {
	nodes := 1 + bytes.Count(src, open) + bytes.Count(src, list) + bytes.Count(src, comma)
	keys := bytes.Count(src, colon)
	nodes = min(nodes, (len(src)+MaxDepth+2)/2)
	keys = min(keys, len(src)/4)
	return nodes*nodeCost + keys*keyCost + len(src)*byteCost
}

var (
	open  = []byte{'{'}
	list  = []byte{'['}
	comma = []byte{','}
	colon = []byte{':'}
)
