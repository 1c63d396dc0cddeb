package aggregate

import (
	"cmp"
	"slices"
)

// streamState tracks, for one source stream, which seqs still have buckets
// held: q[head:] is ordered by strictly increasing seq, and each node counts
// the held buckets whose smallest contributing seq of this stream it is.
// Nodes are popped from the front when their count drops to zero, so the
// front is the smallest seq still held.
type streamState struct {
	last uint64 // highest seq inserted
	seen bool
	q    []qnode
	head int
}

type qnode struct {
	seq  uint64
	refs int
}

// observe notes that seq was inserted.
func (st *streamState) observe(seq uint64) {
	if !st.seen || seq > st.last {
		st.last, st.seen = seq, true
	}
}

// hold counts one more bucket held for seq and returns the seq it was
// counted under: seq itself, or for a seq that arrives out of order, the
// largest queued seq below it (which holds the watermark at least as low).
func (st *streamState) hold(seq uint64) uint64 {
	if n := len(st.q); n > st.head {
		t := &st.q[n-1]
		if t.seq == seq {
			t.refs++
			return seq
		}
		if t.seq > seq {
			return st.holdOld(seq)
		}
	}
	st.q = append(st.q, qnode{seq, 1})
	return seq
}

func (st *streamState) holdOld(seq uint64) uint64 {
	live := st.q[st.head:]
	i, _ := slices.BinarySearchFunc(live, seq+1, func(n qnode, s uint64) int { return cmp.Compare(n.seq, s) })
	if i > 0 { // live[i-1].seq ≤ seq
		live[i-1].refs++
		return live[i-1].seq
	}
	if st.head > 0 {
		st.head--
		st.q[st.head] = qnode{seq, 1}
	} else {
		st.q = slices.Insert(st.q, 0, qnode{seq, 1})
	}
	return seq
}

// release drops one bucket held for seq (as returned by hold).
func (st *streamState) release(seq uint64) {
	live := st.q[st.head:]
	i, ok := slices.BinarySearchFunc(live, seq, func(n qnode, s uint64) int { return cmp.Compare(n.seq, s) })
	if !ok || live[i].refs <= 0 {
		panic("BUG: aggregate: release of a seq that is not held")
	}
	live[i].refs--
	for st.head < len(st.q) && st.q[st.head].refs == 0 {
		st.head++
	}
	switch {
	case st.head == len(st.q):
		st.q, st.head = st.q[:0], 0
	case st.head >= 64 && 2*st.head >= len(st.q):
		n := copy(st.q, st.q[st.head:])
		st.q, st.head = st.q[:n], 0
	}
}

// watermark is the highest seq with nothing at or below it held.
func (st *streamState) watermark() (uint64, bool) {
	if st.head < len(st.q) {
		if f := st.q[st.head].seq; f > 0 {
			return f - 1, true
		}
		return 0, false
	}
	return st.last, st.seen
}
