package lanes

import (
	"context"

	"github.com/twmb/franz-go/pkg/kgo"
)

// partTrack is one assigned partition's records in hand, in offset order.
// Records finish out of order; the commit mark only moves past a prefix of
// finished ones, so a committed offset never skips unfinished work.
type partTrack struct {
	pending []int64        // offsets taken, in order, up to the first unfinished
	done    map[int64]bool // finished offsets still behind an unfinished one
	gone    bool           // revoked or lost: finishing marks nothing
}

// track registers r as taken, before it is handled.
func (l *lane) track(r *kgo.Record) *partTrack {
	l.mu.Lock()
	defer l.mu.Unlock()
	pt := l.parts[r.Partition]
	if pt == nil {
		pt = &partTrack{done: map[int64]bool{}}
		l.parts[r.Partition] = pt
	}
	pt.pending = append(pt.pending, r.Offset)
	return pt
}

// finish marks r handed off and, when that completes a prefix, marks the
// offset after it for the next commit.
func (l *lane) finish(r *kgo.Record, pt *partTrack) {
	l.mu.Lock()
	next := pt.finishLocked(r.Offset)
	gone := pt.gone
	l.mu.Unlock()
	if next >= 0 && !gone {
		l.cl.MarkCommitOffsets(map[string]map[int32]kgo.EpochOffset{
			r.Topic: {r.Partition: {Epoch: r.LeaderEpoch, Offset: next}},
		})
	}
}

// finishLocked records off as finished and returns the offset to commit
// next, or -1 when the finished prefix did not grow. l.mu is held.
func (pt *partTrack) finishLocked(off int64) int64 {
	pt.done[off] = true
	next := int64(-1)
	for len(pt.pending) > 0 && pt.done[pt.pending[0]] {
		delete(pt.done, pt.pending[0])
		next = pt.pending[0] + 1
		pt.pending = pt.pending[1:]
	}
	return next
}

// forget drops the trackers of partitions this worker no longer owns;
// their records in hand are redelivered to the new owner (duplicates,
// counted by the handler's side, never loss).
func (l *lane) forget(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, ps := range lost {
		for _, p := range ps {
			if pt := l.parts[p]; pt != nil {
				pt.gone = true
				delete(l.parts, p)
			}
		}
	}
}
