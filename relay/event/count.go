package event

import "unsafe"

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
// are at most as many as '{', '[' and ',' outside strings, plus one; every
// ':' outside strings is a key. It allocates nothing, so a caller can
// charge a memory budget before it parses (TestCost measures it against
// Parse on hostile shapes). Processing the tree adds Meta records and nodes
// on top.
func Cost(src []byte) int {
	nodes, keys := 1, 0
	for i := 0; i < len(src); i++ {
		switch src[i] {
		case '{', '[', ',':
			nodes++
		case ':':
			keys++
		case '"':
			for i++; i < len(src) && src[i] != '"'; i++ {
				if src[i] == '\\' {
					i++
				}
			}
		}
	}
	return nodes*nodeCost + keys*keyCost + len(src)*byteCost
}
