package lanes

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// partTrack is one assigned partition's records in hand, in offset order.
// Records finish out of order; the commit mark only moves past a prefix of
// finished ones, so a committed offset never skips unfinished work.
type partTrack struct {
	pending []int64        // offsets taken, in order, up to the first unfinished
	done    map[int64]bool // finished offsets still behind an unfinished one
	// gone: revoked or lost. Finishing marks nothing, and a record not yet
	// handed to the handler is left to the new owner.
	gone atomic.Bool
}

// pollEpoch is the revocation count to pass to track for the records of
// a poll that starts now.
func (l *lane) pollEpoch() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.revokes
}

// track registers r, from a poll begun at revocation count polled, as
// taken, before it is handled. It returns nil when r's partition was
// revoked since: a tracker made for it would mark offsets this worker no
// longer owns, out of order with the ones it gets if the partition comes
// back.
func (l *lane) track(r *kgo.Record, polled uint64) *partTrack {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.revokedAt[r.Partition] > polled {
		return nil
	}
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
	gone := pt.gone.Load()
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

// revoke commits what was handed off in the partitions taken away by a
// rebalance, then forgets them, so their new owner resumes after the last
// handed-off prefix rather than at the last periodic commit. Setting
// OnPartitionsRevoked replaces franz-go's default revoke, which commits;
// this is its AutoCommitMarks form. The commit covers every marked
// partition, which is what the periodic commit would do anyway.
func (l *lane) revoke(ctx context.Context, cl *kgo.Client, revoked map[string][]int32) {
	// Forget first: a record finishing now marks nothing more for a
	// partition whose commit is on its way (it is redone by the new owner,
	// a duplicate within the window).
	l.forget(ctx, cl, revoked)
	// The rebalance waits for this; a broker that does not answer must not
	// hold the group past its rebalance timeout.
	cctx, cancel := context.WithTimeout(ctx, revokeCommitTimeout)
	defer cancel()
	if err := cl.CommitMarkedOffsets(cctx); err != nil && ctx.Err() == nil {
		l.m.commitErrors.Add(1)
		l.w.log.Warn("lanes: cannot commit on revocation; the new owner redoes what was handed off since the last commit",
			"lane", l.o.Topic, "partitions", revoked, "err", err)
	}
}

// revokeCommitTimeout bounds the commit in revoke.
const revokeCommitTimeout = 5 * time.Second

// forget drops the trackers of partitions this worker no longer owns;
// their records in hand are redelivered to the new owner (duplicates,
// counted by the handler's side, never loss). It is also the
// OnPartitionsLost callback: a lost partition (the member was fenced out
// of the group) commits nothing, its commit would be refused and another
// member may own it already.
func (l *lane) forget(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.revokes++
	for _, ps := range lost {
		for _, p := range ps {
			l.revokedAt[p] = l.revokes
			// Without a tracker nothing was taken since the last revoke,
			// whose resumeAt still holds.
			if pt := l.parts[p]; pt != nil {
				delete(l.resumeAt, p)
				if len(pt.pending) > 0 {
					l.resumeAt[p] = pt.pending[0]
				}
				pt.gone.Store(true)
				delete(l.parts, p)
			}
		}
	}
}

// rewind moves the consumer of r's partition, which track refused, back to
// r, or to resumeAt if that is earlier: r may be from the revoked
// assignment (polled before the revoke), and the new one must not skip
// what the revoked tracker had not handed off. Nothing before the offset
// set is unhanded, so at worst this redoes records. franz-go skips a
// partition this client does not consume; one it consumes has no tracker
// yet (track refused all of it since the revoke), so nothing is tracked
// twice.
func (l *lane) rewind(r *kgo.Record) {
	l.cl.SetOffsets(map[string]map[int32]kgo.EpochOffset{r.Topic: {r.Partition: {Epoch: -1, Offset: l.rewindOffset(r)}}})
}

func (l *lane) rewindOffset(r *kgo.Record) int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	if m, ok := l.resumeAt[r.Partition]; ok && m < r.Offset {
		return m
	}
	return r.Offset
}
