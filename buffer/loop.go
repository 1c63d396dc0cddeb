package buffer

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

type opKind uint8

const (
	opAppend     opKind = iota
	opAck               // stream, to
	opDrop              // stream, (from, to], reason: records a Read found expired
	opQuarantine        // stream, corrupt
	opMove              // entries, then ack of stream up to to, in one batch
)

// request is one unit of work for the commit loop. Requests are pooled; done
// has capacity 1 so the loop never blocks on a waiter.
type request struct {
	kind    opKind
	ctx     context.Context
	entries []Entry
	bytes   int // payload bytes, for group caps
	stream  Stream
	from    Seq
	to      Seq
	reason  string
	corrupt []corruptRecord
	err     error
	done    chan error
}

type corruptRecord struct {
	seq Seq
	raw []byte
}

var requestPool = sync.Pool{New: func() any { return &request{done: make(chan error, 1)} }}

func getRequest(k opKind) *request {
	r := requestPool.Get().(*request)
	r.kind = k
	return r
}

func putRequest(r *request) {
	done := r.done
	*r = request{done: done}
	requestPool.Put(r)
}

// stream is the in-memory state of one stream, guarded by Buffer.mu. m is
// what is committed; the commit loop is its only writer.
type stream struct {
	id Stream
	m  meta
	// cursor is the last seq handed to Read (≥ m.Watermark after
	// normalisation); inflight holds the sizes of records in
	// (m.Watermark, cursor] so Ack can account bytes without reading them.
	cursor   Seq
	inflight ring
	// reading is set while a Read scans (cursor, reserved] without b.mu;
	// drops never touch that range. dropping is set while the commit loop
	// evicts unread records; Read waits for it to clear so it never returns
	// a record that is being dropped.
	reading  bool
	reserved Seq
	dropping bool
	notify   chan struct{} // closed and replaced when records are committed

	quarantined int64 // records stored in the quarantine range

	gen       uint64 // bumped when the oldest pending record may change
	oldestGen uint64
	oldest    time.Time // valid iff oldestGen == gen && gen != 0

	// Owned by the commit loop.
	lm         meta // m including groups applied but not yet durable
	deletedTo  Seq  // records ≤ deletedTo are covered by a DeleteRange
	acksSince  int
	lastDelete time.Time
}

func newStream(id Stream, m meta) *stream {
	return &stream{id: id, m: m, lm: m, cursor: m.Watermark, notify: make(chan struct{}), gen: 1}
}

func (st *stream) last() Seq { return st.m.Next - 1 }

// floor is the highest seq that must not be dropped: everything up to it is
// acked, in flight, being read, or already dropped.
func (st *stream) floor() Seq {
	f := max(st.m.Watermark, st.cursor)
	if st.reading {
		f = max(f, st.reserved)
	}
	return f
}

type inflightRec struct {
	seq    Seq
	size   int64
	weight int64
}

// ring is a FIFO of in-flight record sizes and weights.
type ring struct {
	recs []inflightRec
	head int
}

func (r *ring) push(e inflightRec) { r.recs = append(r.recs, e) }
func (r *ring) reset()             { r.recs, r.head = r.recs[:0], 0 }
func (r *ring) len() int           { return len(r.recs) - r.head }

// sum returns the count, bytes and weight of entries in (lo, hi].
func (r *ring) sum(lo, hi Seq) (n, bytes, weight int64) {
	for _, e := range r.recs[r.head:] {
		if e.seq > lo && e.seq <= hi {
			n++
			bytes += e.size
			weight += e.weight
		}
	}
	return n, bytes, weight
}

// popTo drops entries ≤ seq.
func (r *ring) popTo(seq Seq) {
	for r.head < len(r.recs) && r.recs[r.head].seq <= seq {
		r.head++
	}
	if r.head == len(r.recs) {
		r.reset()
	} else if r.head > 1024 && r.head > len(r.recs)/2 {
		n := copy(r.recs, r.recs[r.head:])
		r.recs, r.head = r.recs[:n], 0
	}
}

// staged is a stream's state as modified by the group being built.
type staged struct {
	st       *stream
	m        meta
	dropped  []seqRange // staged drops, so a staged Ack does not count them
	dropping bool
	appended bool
	touched  bool // meta must be written
	removed  bool // oldest pending may have changed
	quar     int64
}

type seqRange struct{ from, to Seq } // (from, to]

func (g *staged) isDropped(q Seq) bool {
	for _, r := range g.dropped {
		if q > r.from && q <= r.to {
			return true
		}
	}
	return false
}

type dropReport struct {
	s       Stream
	n       int
	bytes   int64
	weight  int64
	reason  string
	digests []byte // Options.Digest of the records, in order
}

// group is a committed batch on its way to durability. The commit loop
// applies it and hands it to the completer, which waits for its fsync,
// publishes it and releases its waiters, in commit order. At most two groups
// are applied but not yet durable: one fsyncing in the completer, the next
// waiting to be handed over. Deeper pipelines measured slower (smaller
// groups, 11-14k vs 16k records/s with 64 writers).
type group struct {
	batch    *pebble.Batch
	sync     bool
	empty    bool
	start    time.Time
	reqs     []*request
	streams  []staged
	drops    []dropReport
	appended int64
	acked    int64
	quar     int64
}

// loopState is owned by the commit loop goroutine.
type loopState struct {
	b          *Buffer
	stage      map[Stream]*staged
	order      []Stream
	reqs       []*request
	carry      *request
	total      int64 // pending bytes as of the last applied group
	delta      int64 // pending bytes added by the group being built
	drops      []dropReport
	appended   int64
	acked      int64
	quar       int64
	metaBuf    []byte
	unsynced   bool
	lastSync   time.Time
	lastDisk   time.Time
	lastExpiry time.Time
	groups     chan *group
	free       chan *group
	// handed counts the fsyncing groups given to the completer, completed
	// those it finished (it signals done after each, without blocking);
	// gEntries and gBytes size the group being gathered.
	handed           int64
	completed        atomic.Int64
	done             chan struct{}
	gEntries, gBytes int
}

func (l *loopState) init(b *Buffer) {
	l.b = b
	l.stage = make(map[Stream]*staged)
	l.lastSync = time.Now()
	l.lastDisk = time.Now()
	l.total = b.pending
	l.groups = make(chan *group) // unbuffered: the handover is the pipeline limit
	l.free = make(chan *group, 3)
	for range 3 {
		l.free <- &group{}
	}
	l.done = make(chan struct{}, 1)
}

// run is the commit loop: it gathers queued requests into one batch and
// applies it; complete waits for the fsync and releases the waiters. The next
// group forms while the previous one fsyncs and takes in everything that
// arrives until that fsync is done (linger); an idle buffer commits at once.
func (b *Buffer) run() {
	l := &b.loop
	completed := make(chan struct{})
	go func() {
		defer close(completed)
		for g := range l.groups {
			synced := g.sync
			l.complete(g)
			if !synced {
				continue
			}
			l.completed.Add(1)
			select {
			case l.done <- struct{}{}:
			default: // a wake-up is already pending
			}
		}
	}()
	defer func() {
		close(l.groups)
		<-completed
		close(b.done)
	}()
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		var r *request
		if l.carry != nil {
			r, l.carry = l.carry, nil
		} else {
			var ok bool
			select {
			case r, ok = <-b.reqs:
				if !ok {
					l.commit(true, true)
					return
				}
			case <-t.C:
				l.commit(true, false)
				continue
			}
		}
		l.gather(r)
		l.linger()
		l.commit(false, false)
	}
}

// linger keeps adding arrivals to the group being gathered while the
// previous group is still fsyncing: they would wait for that fsync anyway,
// and one bigger group costs one fsync instead of several small ones. Groups
// without fsync (acks, relaxed durability) are not waited for.
func (l *loopState) linger() {
	o := l.b.opts
	for l.handed > l.completed.Load() && l.carry == nil {
		select {
		case <-l.done:
		case r, ok := <-l.b.reqs:
			if !ok {
				return // closed; run sees it on the next receive
			}
			if l.gEntries+len(r.entries) > o.MaxGroupEntries || l.gBytes+r.bytes > o.MaxGroupBytes {
				l.carry = r
				return
			}
			l.reqs = append(l.reqs, r)
			l.gEntries += len(r.entries)
			l.gBytes += r.bytes
		}
	}
}

// gather collects r and whatever else is queued, up to the group caps. A
// request that would overflow the caps is carried to the next group.
func (l *loopState) gather(r *request) {
	o := l.b.opts
	l.reqs = append(l.reqs[:0], r)
	entries, bytes := len(r.entries), r.bytes
	for {
		select {
		case r, ok := <-l.b.reqs:
			if !ok {
				return // closed; run sees it on the next receive
			}
			if entries+len(r.entries) > o.MaxGroupEntries || bytes+r.bytes > o.MaxGroupBytes {
				l.carry = r
				l.gEntries, l.gBytes = entries, bytes
				return
			}
			l.reqs = append(l.reqs, r)
			entries += len(r.entries)
			bytes += r.bytes
		default:
			l.gEntries, l.gBytes = entries, bytes
			return
		}
	}
}

func (l *loopState) staged(s Stream) *staged {
	if g := l.stage[s]; g != nil {
		return g
	}
	b := l.b
	b.mu.Lock()
	st := b.streams[s]
	if st == nil {
		st = newStream(s, meta{Next: 1})
		b.streams[s] = st
	}
	b.mu.Unlock()
	g := &staged{st: st, m: st.lm}
	l.stage[s] = g
	l.order = append(l.order, s)
	return g
}

// floor is the highest seq of st a drop must not touch, as the loop sees it.
func (l *loopState) floor(st *stream) Seq { return max(st.floor(), st.lm.Watermark) }

// commit stages the gathered requests (plus housekeeping) into one batch,
// applies it and queues it for completion.
func (l *loopState) commit(housekeep, final bool) {
	b := l.b
	reqs := l.reqs
	l.reqs = l.reqs[:0]
	if err := b.failure(); err != nil {
		for _, r := range reqs {
			r.done <- err
		}
		return
	}
	batch := b.db.NewBatch()
	sync := false
	for _, r := range reqs {
		switch r.kind {
		case opAppend:
			if err := r.ctx.Err(); err != nil {
				r.err = err
				continue
			}
			r.err = l.stageAppend(batch, r)
			sync = sync || (r.err == nil && b.opts.Durability == Strict)
		case opAck:
			r.err = l.stageAck(r)
		case opMove:
			// The ack and the appends land in the same batch: a crash keeps
			// either the old records or the moved ones, so no fsync is
			// needed, and the ack makes the room the appends take.
			if r.err = l.stageAck(r); r.err == nil {
				r.err = l.stageEntries(batch, r)
			}
		case opDrop:
			r.err = l.stageDrop(batch, r.stream, r.from, r.to, r.reason)
			sync = true
		case opQuarantine:
			r.err = l.stageQuarantine(batch, r.stream, r.corrupt)
			sync = true
		}
	}
	now := time.Now()
	if housekeep {
		// Expiry costs a seek per stream; a tenth of MaxAge (at most 1 s)
		// of lateness is fine.
		if b.opts.MaxAge > 0 && !final && now.Sub(l.lastExpiry) >= min(b.opts.MaxAge/10, time.Second) {
			l.lastExpiry = now
			if l.stageExpiry(batch) {
				sync = true
			}
		}
		if now.Sub(l.lastDisk) >= diskCheckInterval {
			l.lastDisk = now
			b.checkDisk()
		}
	}
	l.stageDeletes(batch, housekeep, final, now)
	for _, s := range l.order {
		if g := l.stage[s]; g.touched {
			l.metaBuf = g.m.encode(l.metaBuf)
			_ = batch.Set(metaKey(s), l.metaBuf, nil)
		}
	}
	// Acks, and everything under Relaxed, ride without fsync; a sync is
	// forced once SyncInterval has passed since the last one, and on close.
	if b.opts.Durability == Relaxed {
		sync = false
	}
	if (l.unsynced || !batch.Empty()) && (final || now.Sub(l.lastSync) >= b.opts.SyncInterval) {
		sync = true
	}

	g := <-l.free
	g.batch, g.sync, g.empty, g.start = batch, sync, batch.Empty(), time.Now()
	g.reqs = append(g.reqs[:0], reqs...)
	var err error
	switch {
	case !batch.Empty() && sync:
		err = b.db.ApplyNoSyncWait(batch, pebble.Sync)
	case !batch.Empty():
		err = b.db.Apply(batch, pebble.NoSync)
	case sync && l.unsynced:
		err = b.db.LogData(nil, pebble.Sync)
		g.sync = false // LogData waited for its own fsync
	}
	if err == nil {
		err = b.failure() // a Fatalf that returned
	}
	if err != nil {
		b.fail(err)
		g.sync = false
	} else if sync {
		l.unsynced, l.lastSync = false, now
	} else if !batch.Empty() {
		l.unsynced = true
	}
	// The loop's view moves on now; readers see the group once it is durable.
	g.streams = g.streams[:0]
	for _, s := range l.order {
		st := l.stage[s]
		st.st.lm = st.m
		g.streams = append(g.streams, *st)
	}
	l.total += l.delta
	g.drops = append(g.drops[:0], l.drops...)
	g.appended, g.acked, g.quar = l.appended, l.acked, l.quar
	l.releaseDrops() // deletions are visible in Pebble: Reads may proceed
	l.reset()
	synced := g.sync
	l.groups <- g
	if synced {
		l.handed++
	}
}

func (l *loopState) reset() {
	clear(l.stage)
	l.order = l.order[:0]
	l.drops = l.drops[:0]
	l.delta, l.appended, l.acked, l.quar = 0, 0, 0, 0
}

// releaseDrops clears the dropping flags of the group just applied and wakes
// the Reads that waited for them.
func (l *loopState) releaseDrops() {
	b := l.b
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, s := range l.order {
		if g := l.stage[s]; g.dropping {
			g.st.dropping = false
			close(g.st.notify)
			g.st.notify = make(chan struct{})
		}
	}
}

// complete waits for g's fsync, publishes it to readers and stats, reports
// its drops and releases its waiters.
func (l *loopState) complete(g *group) {
	b := l.b
	err := b.failure()
	if err == nil && g.sync {
		if serr := g.batch.SyncWait(); serr != nil {
			b.fail(serr)
		}
		err = b.failure()
	}
	lat := time.Since(g.start)
	_ = g.batch.Close()
	if err == nil {
		l.install(g, lat)
	}
	b.updateFull()
	// Drops are reported before the Append that caused them returns.
	if err == nil && b.opts.OnDrop != nil {
		for _, d := range g.drops {
			b.opts.OnDrop(d.s, d.n, d.bytes, d.weight, d.reason, d.digests)
		}
	}
	for _, r := range g.reqs {
		if r.err == nil {
			r.err = err
		}
		r.done <- r.err
	}
	g.batch, g.reqs = nil, g.reqs[:0]
	l.free <- g
}

// install publishes a durable group to readers and stats.
func (l *loopState) install(g *group, lat time.Duration) {
	b := l.b
	var notify []chan struct{}
	b.mu.Lock()
	for i := range g.streams {
		gs := &g.streams[i]
		st := gs.st
		b.pending += gs.m.pendingBytes() - st.m.pendingBytes()
		if b.overdraws(st.id) {
			b.overdrawn += gs.m.pendingBytes() - st.m.pendingBytes()
		}
		wasEmpty := st.m.pendingCount() == 0
		st.m = gs.m
		st.inflight.popTo(st.m.Watermark)
		st.cursor = max(st.cursor, st.m.Watermark)
		if gs.removed || (gs.appended && wasEmpty) {
			st.gen++ // the oldest pending record changed
		}
		st.quarantined += gs.quar
		if gs.appended {
			notify = append(notify, st.notify)
			st.notify = make(chan struct{})
		}
	}
	b.stats.appended += g.appended
	b.stats.acked += g.acked
	b.stats.quarantined += g.quar
	for _, d := range g.drops {
		b.stats.dropped[d.reason] += int64(d.n)
	}
	if !g.empty {
		b.stats.commits++
		b.stats.commitLatency.observe(lat)
	}
	b.mu.Unlock()
	if !g.empty && b.opts.OnCommit != nil {
		b.opts.OnCommit(lat)
	}
	for _, c := range notify {
		close(c)
	}
}

// pendingTotal is the budget in use as the loop sees it, including the group
// being built and groups not yet durable.
func (l *loopState) pendingTotal() int64 { return l.total + l.delta }

func (l *loopState) stageAppend(batch *pebble.Batch, r *request) error {
	b := l.b
	var need int64
	for _, e := range r.entries {
		need += recordSize(len(e.Value))
	}
	if b.lowDsk.Load() {
		return ErrFull
	}
	over := l.pendingTotal() + need - b.limit
	if over > 0 && b.opts.Overdraws != nil {
		over = l.overBudget(r, need)
	}
	if over > 0 {
		if err := l.makeRoom(batch, r, over); err != nil {
			if errors.Is(err, ErrFull) {
				b.refused.Store(true)
				b.full.Store(true)
			}
			return err
		}
	}
	return l.stageEntries(batch, r)
}

// overBudget is by how much appending r (need bytes) would exceed the
// budget when the Overdraws streams' first OverdraftBytes are not charged
// (slow path: only once the plain total is over).
func (l *loopState) overBudget(r *request, need int64) int64 {
	b := l.b
	var o int64
	for _, e := range r.entries {
		if b.overdraws(e.Stream) {
			o += recordSize(len(e.Value))
		}
	}
	b.mu.Lock()
	for id, st := range b.streams {
		if !b.overdraws(id) {
			continue
		}
		if g := l.stage[id]; g != nil {
			o += g.m.pendingBytes() // the group being built
		} else {
			o += st.lm.pendingBytes() // applied, maybe not durable yet
		}
	}
	b.mu.Unlock()
	return b.charged(l.pendingTotal()+need, o) - b.limit
}

// stageEntries stages r's records without checking the budget.
func (l *loopState) stageEntries(batch *pebble.Batch, r *request) error {
	now := l.b.opts.Now().UnixNano()
	for i := range r.entries {
		e := &r.entries[i]
		g := l.staged(e.Stream)
		e.Seq = g.m.Next
		g.m.Next++
		g.m.AppendedCount++
		sz := recordSize(len(e.Value))
		g.m.AppendedBytes += sz
		if w := l.b.opts.Weigh; w != nil {
			g.m.AppendedWeight += w(e.Value)
		}
		g.appended, g.touched = true, true
		l.delta += sz
		op := batch.SetDeferred(recordKeyLen, recordHeaderLen+len(e.Value))
		putRecordKey(op.Key, prefixRecord, e.Stream, e.Seq)
		putRecordValue(op.Value, now, e.Value)
		if err := op.Finish(); err != nil {
			return fmt.Errorf("buffer: stage append: %w", err)
		}
	}
	l.appended += int64(len(r.entries))
	return nil
}

// makeRoom evicts the oldest unread records of r's streams if every one of
// them is a DropOldest stream; otherwise, or if they hold too little, ErrFull.
func (l *loopState) makeRoom(batch *pebble.Batch, r *request, over int64) error {
	drop := l.b.opts.DropOldest
	if drop == nil {
		return ErrFull
	}
	var streams []Stream
	for _, e := range r.entries {
		if !drop(e.Stream) || l.b.overdraws(e.Stream) {
			return ErrFull
		}
		if len(streams) == 0 || streams[len(streams)-1] != e.Stream {
			streams = append(streams, e.Stream)
		}
	}
	// Plan before staging anything, so a failed plan changes nothing.
	type plan struct {
		g       *staged
		from    Seq
		to      Seq
		n       int
		bytes   int64
		weight  int64
		corrupt []corruptRecord
		digests []byte
	}
	var plans []plan
	gs := make([]*staged, len(streams))
	for i, s := range streams {
		gs[i] = l.staged(s)
	}
	l.b.mu.Lock()
	defer l.b.mu.Unlock() // held so no Read starts inside a planned range
	for i, s := range streams {
		if over <= 0 {
			break
		}
		g := gs[i]
		from := l.floor(g.st)
		if n := len(g.dropped); n > 0 {
			from = max(from, g.dropped[n-1].to)
		}
		p := plan{g: g, from: from, to: from}
		err := l.scan(s, from, g.m.Next-1, func(q Seq, size int64, v []byte) bool {
			if _, _, ok := decodeRecordValue(v); !ok {
				p.corrupt = append(p.corrupt, corruptRecord{q, append([]byte(nil), v...)})
			} else {
				p.n++
				p.bytes += size
				p.weight += weighValue(l.b.opts.Weigh, v)
				p.digests = l.digest(p.digests, s, v)
				over -= size
			}
			p.to = q
			return over > 0
		})
		if err != nil {
			return err
		}
		if p.to > from {
			plans = append(plans, p)
		}
	}
	if over > 0 {
		return ErrFull
	}
	for _, p := range plans {
		l.applyDrop(batch, p.g, p.from, p.to, p.n, p.bytes, p.weight, DropBufferFull, p.corrupt, p.digests)
		p.g.st.dropping, p.g.dropping = true, true // Reads wait for the commit
	}
	return nil
}

// scan calls fn for every committed record of s in (from, to], in order,
// until fn returns false.
func (l *loopState) scan(s Stream, from, to Seq, fn func(q Seq, size int64, v []byte) bool) error {
	if to <= from {
		return nil
	}
	it, err := l.b.db.NewIter(&pebble.IterOptions{LowerBound: recordKey(s, from+1), UpperBound: recordKey(s, to+1)})
	if err != nil {
		return fmt.Errorf("buffer: scan stream %d: %w", s, err)
	}
	for ok := it.First(); ok; ok = it.Next() {
		_, _, q, _ := decodeRecordKey(it.Key())
		v, err := it.ValueAndErr()
		if err != nil {
			_ = it.Close()
			return fmt.Errorf("buffer: scan stream %d: %w", s, err)
		}
		if !fn(q, int64(len(it.Key())+len(v)), v) {
			break
		}
	}
	if err := it.Close(); err != nil {
		return fmt.Errorf("buffer: scan stream %d: %w", s, err)
	}
	return nil
}

// applyDrop stages the removal of the records of g in (from, to]: n valid
// records of the given bytes, weight and digests are dropped for reason,
// corrupt ones are moved to quarantine. One DeleteRange covers the whole
// range.
func (l *loopState) applyDrop(batch *pebble.Batch, g *staged, from, to Seq, n int, bytes, weight int64, reason string, corrupt []corruptRecord, digests []byte) {
	if to <= from {
		return
	}
	_ = batch.DeleteRange(recordKey(g.st.id, from+1), recordKey(g.st.id, to+1), nil)
	l.quarantine(batch, g, corrupt)
	g.m.RemovedCount += int64(n)
	g.m.RemovedBytes += bytes
	g.m.RemovedWeight += weight
	g.dropped = append(g.dropped, seqRange{from, to})
	g.touched, g.removed = true, true
	l.delta -= bytes
	if n > 0 {
		l.drops = append(l.drops, dropReport{g.st.id, n, bytes, weight, reason, digests})
	}
}

// digest appends Options.Digest of the stored value v of stream s to dst;
// a corrupt value is passed as found, without the buffer's header when it
// is long enough to have one (as weighValue).
func (l *loopState) digest(dst []byte, s Stream, v []byte) []byte {
	d := l.b.opts.Digest
	if d == nil || len(v) < recordHeaderLen {
		return dst
	}
	return d(dst, s, v[recordHeaderLen:])
}

// quarantine stages moving corrupt records out of the record range. The
// caller removes their record keys.
func (l *loopState) quarantine(batch *pebble.Batch, g *staged, corrupt []corruptRecord) {
	s := g.st.id
	for _, c := range corrupt {
		_ = batch.Set(quarantineKey(s, c.seq), c.raw, nil)
		sz := int64(recordKeyLen + len(c.raw))
		w := weighValue(l.b.opts.Weigh, c.raw) // the weight it was appended with, unless the damage hit it
		g.m.RemovedCount++
		g.m.RemovedBytes += sz
		g.m.RemovedWeight += w
		l.delta -= sz
		l.quar++
		l.drops = append(l.drops, dropReport{s, 1, sz, w, DropCorrupt, l.digest(nil, s, c.raw)})
	}
	if len(corrupt) > 0 {
		g.touched, g.removed = true, true
		g.quar += int64(len(corrupt))
	}
}

// stageAck advances the watermark. Bytes of records the consumer has read come
// from the in-flight ring; the rest (acks of unread records) are scanned.
func (l *loopState) stageAck(r *request) error {
	g := l.staged(r.stream)
	if r.to <= g.m.Watermark {
		return nil
	}
	b := l.b
	b.mu.Lock()
	covered := min(max(g.st.cursor, g.m.Watermark), r.to)
	n, bytes, weight := g.st.inflight.sum(g.m.Watermark, covered)
	b.mu.Unlock()
	err := l.scan(r.stream, covered, r.to, func(q Seq, size int64, v []byte) bool {
		if !g.isDropped(q) {
			n++
			bytes += size
			weight += weighValue(b.opts.Weigh, v)
		}
		return true
	})
	if err != nil {
		return err
	}
	g.m.Watermark = r.to
	g.m.RemovedCount += n
	g.m.RemovedBytes += bytes
	g.m.RemovedWeight += weight
	g.touched, g.removed = true, true
	g.st.acksSince++
	l.delta -= bytes
	l.acked += n
	return nil
}

// stageDrop drops the records of s in (from, to] that a Read found expired.
// The range is inside the reader's reservation, so it is stable; records
// already acked or dropped are skipped, which makes the op idempotent.
func (l *loopState) stageDrop(batch *pebble.Batch, s Stream, from, to Seq, reason string) error {
	g := l.staged(s)
	from = max(from, g.m.Watermark)
	var n int
	var bytes, weight int64
	var corrupt []corruptRecord
	var digests []byte
	err := l.scan(s, from, to, func(q Seq, size int64, v []byte) bool {
		switch {
		case g.isDropped(q):
		case !validRecord(v):
			corrupt = append(corrupt, corruptRecord{q, append([]byte(nil), v...)})
		default:
			n++
			bytes += size
			weight += weighValue(l.b.opts.Weigh, v)
			digests = l.digest(digests, s, v)
		}
		return true
	})
	if err != nil {
		return err
	}
	l.applyDrop(batch, g, from, to, n, bytes, weight, reason, corrupt, digests)
	return nil
}

func validRecord(v []byte) bool {
	_, _, ok := decodeRecordValue(v)
	return ok
}

// stageQuarantine moves corrupt records a Read found out of the record range.
// Point deletes are fine here: corruption is rare and off the hot path.
func (l *loopState) stageQuarantine(batch *pebble.Batch, s Stream, corrupt []corruptRecord) error {
	g := l.staged(s)
	live := corrupt[:0:0]
	for _, c := range corrupt {
		if c.seq > g.m.Watermark && !g.isDropped(c.seq) {
			_ = batch.Delete(recordKey(s, c.seq), nil)
			live = append(live, c)
		}
	}
	l.quarantine(batch, g, live)
	return nil
}

// stageExpiry drops, for every stream, the unread records older than MaxAge.
// Append times are monotonic within a process, so expired records form a
// prefix of the unread range and the scan stops at the first live one.
func (l *loopState) stageExpiry(batch *pebble.Batch) bool {
	b := l.b
	cutoff := b.opts.Now().Add(-b.opts.MaxAge)
	b.mu.Lock()
	ids := make([]Stream, 0, len(b.streams))
	for s, st := range b.streams {
		if st.lm.pendingCount() > 0 && l.floor(st) < st.lm.Next-1 {
			ids = append(ids, s)
		}
	}
	b.mu.Unlock()
	dropped := false
	for _, s := range ids {
		g := l.staged(s)
		b.mu.Lock() // held so no Read starts inside the planned range
		from := l.floor(g.st)
		to, n := from, 0
		var bytes, weight int64
		var corrupt []corruptRecord
		var digests []byte
		err := l.scan(s, from, g.m.Next-1, func(q Seq, size int64, v []byte) bool {
			_, at, ok := decodeRecordValue(v)
			switch {
			case !ok:
				corrupt = append(corrupt, corruptRecord{q, append([]byte(nil), v...)})
			case !at.Before(cutoff):
				return false
			default:
				n++
				bytes += size
				weight += weighValue(b.opts.Weigh, v)
				digests = l.digest(digests, s, v)
			}
			to = q
			return true
		})
		if err == nil && to > from {
			g.st.dropping, g.dropping = true, true
			l.applyDrop(batch, g, from, to, n, bytes, weight, DropExpired, corrupt, digests)
			dropped = true
		}
		b.mu.Unlock()
		if err != nil {
			b.opts.Logger.Errorf("buffer: expire stream %d: %v", s, err)
		}
	}
	return dropped
}

// stageDeletes removes acked prefixes with one DeleteRange per stream, after
// deleteEveryAcks acks or deleteInterval, and always on close.
func (l *loopState) stageDeletes(batch *pebble.Batch, housekeep, final bool, now time.Time) {
	b := l.b
	var ids []Stream
	if housekeep {
		b.mu.Lock()
		for s, st := range b.streams {
			if st.lm.Watermark > st.deletedTo && (final || now.Sub(st.lastDelete) >= deleteInterval) {
				ids = append(ids, s)
			}
		}
		b.mu.Unlock()
	}
	for _, s := range l.order {
		if g := l.stage[s]; g.st.acksSince >= deleteEveryAcks {
			ids = append(ids, s)
		}
	}
	for _, s := range ids {
		g := l.staged(s)
		st := g.st
		if g.m.Watermark <= st.deletedTo {
			continue
		}
		_ = batch.DeleteRange(recordKey(s, st.deletedTo+1), recordKey(s, g.m.Watermark+1), nil)
		// Loop-owned fields; if the commit fails the buffer is failed.
		st.deletedTo, st.acksSince, st.lastDelete = g.m.Watermark, 0, now
	}
}
