package aggregate

import (
	"cmp"
	"container/heap"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/baton-relay/baton/envelope"
)

// Defaults of Options.
const (
	DefaultBucketInterval  = 10 * time.Second
	DefaultInitialDelay    = 30 * time.Second
	DefaultMaxBytes        = 64 << 20
	DefaultMaxSecsInPast   = 5 * 24 * time.Hour
	DefaultMaxSecsInFuture = 60 * time.Second
)

// Errors returned by New for invalid options.
var (
	ErrBucketInterval = errors.New("aggregate: BucketInterval must be a positive whole number of seconds")
	ErrNegativeOption = errors.New("aggregate: option must not be negative")
)

// Options configures an Aggregator. A zero field selects its default.
type Options struct {
	// BucketInterval is the window width (default 10s); a whole number of
	// seconds. Bucket timestamps are aligned down to it and Width is set to
	// it in seconds.
	BucketInterval time.Duration
	// InitialDelay is how long after its window ends a bucket is held for
	// late data (default 30s), plus a per-scope jitter in [0,
	// BucketInterval). Negative means no delay.
	InitialDelay time.Duration
	// MaxBytes is the memory budget of held buckets, those made due early
	// and those being written (default 64 MiB). Past it the oldest buckets
	// are made due at once, and Full tells the caller to stop inserting
	// until written buckets bring the total back under it (see the package
	// doc).
	MaxBytes int64
	// MaxScopeBytes is the memory budget of one scope's held buckets
	// (default 0: no per-scope limit). Past it that scope's own oldest
	// buckets are made due at once, so one project flooding new keys
	// flushes its own buckets early rather than other projects'.
	MaxScopeBytes int64
	// MaxSecsInPast rejects buckets older than now minus it (default 5
	// days).
	MaxSecsInPast time.Duration
	// MaxSecsInFuture rejects buckets newer than now plus it (default 60s).
	MaxSecsInFuture time.Duration
	// Partitions is the number of flush partitions (default 1): a bucket's
	// partition is its KeyHash mod Partitions.
	Partitions int
	// Now is the clock for time-range checks and debounced slots (default
	// time.Now).
	Now func() time.Time
}

// Scope is who owns a bucket; buckets of different scopes never merge.
type Scope struct {
	ProjectID uint64
	PublicKey string
}

// Source is the durable record buckets came from: a buffer stream and the
// record's sequence number in it.
type Source struct {
	Stream uint32
	Seq    uint64
}

// Batch is the flushed buckets of one scope and partition, ordered by
// timestamp, then by bucket key (type, then name and tags by length and
// bytes): a deterministic order, not a sorted-by-name one.
type Batch struct {
	Scope     Scope
	Partition int
	Buckets   []envelope.Bucket
}

// Stats is a snapshot of an Aggregator's gauges and counters.
type Stats struct {
	Buckets      int    `json:"buckets"`       // buckets held, including those made due early
	Bytes        int64  `json:"bytes"`         // estimated memory of the held buckets
	Inserted     uint64 `json:"inserted"`      // buckets accepted by Insert (new or merged)
	Merged       uint64 `json:"merged"`        // accepted buckets merged into a held bucket
	Rejected     uint64 `json:"rejected"`      // buckets refused: out of the time range or invalid
	Flushed      uint64 `json:"flushed"`       // buckets returned by Flush
	FlushedEarly uint64 `json:"flushed_early"` // buckets made due early by the MaxBytes budget
	// FlushedEarlyScope counts buckets made due early by the MaxScopeBytes
	// budget (not included in FlushedEarly).
	FlushedEarlyScope uint64 `json:"flushed_early_scope"`
	// Writing is the estimated memory of buckets Flush returned that the
	// caller has not yet reported written (Written); with Bytes it is
	// what Full compares to MaxBytes.
	Writing int64 `json:"writing_bytes"`
}

// Aggregator merges metric buckets per scope and time window and releases
// them when their window is due. See the package doc.
type Aggregator struct {
	mu sync.Mutex

	intervalNs int64
	widthSecs  int64
	delayNs    int64
	maxBytes   int64
	maxScope   int64 // MaxScopeBytes; 0: no per-scope limit
	pastSecs   int64
	futureSecs int64
	partitions uint64
	now        func() time.Time

	scopes  map[Scope]*scopeState
	streams map[uint32]*streamState
	due     slotHeap // slots by due time
	slotSeq uint64   // creation counter, breaks ties between equal due times

	ready      []*entry // made due early by the budget, returned by the next Flush
	readyBytes int64
	readySince int64 // unix ns when ready became non-empty

	bytes   int64
	writing int64 // of buckets returned by Flush, until Written
	entries int
	stats   Stats

	scratch []byte   // key of the bucket being inserted
	out     []*entry // flush scratch
}

// scopeState holds one scope's open slots.
type scopeState struct {
	scope  Scope
	jitter int64 // ns in [0, interval)
	slots  map[int64]*slot
	bytes  int64 // of its open slots and the buckets in them, for MaxScopeBytes
}

// slot is the buckets of one scope and window.
type slot struct {
	ss    *scopeState
	ts    int64 // window start, unix seconds
	due   int64 // unix ns
	seq   uint64
	idx   int // in Aggregator.due; -1 once removed
	m     map[string]*entry
	order []*entry // creation order; order[head:] are in m
	head  int
}

// entry is one held bucket.
type entry struct {
	ss   *scopeState
	key  string // map key; b.Name and tag strings are substrings of it
	part int
	size int64
	b    envelope.Bucket
	m0   mark   // first stream that contributed (the usual single one)
	ms   []mark // further streams
}

// mark is the smallest seq of one stream that contributed to an entry.
type mark struct {
	st  *streamState
	seq uint64
}

// Memory estimates, in bytes, beyond the strings and slices counted exactly:
// the struct itself, its map slot (key header, pointer, control byte at the
// map's load factor) and its pointer in the slot's order or the heap.
const (
	entryOverhead = int64(unsafe.Sizeof(entry{})) + 48
	slotOverhead  = int64(unsafe.Sizeof(slot{})) + 96
	scopeOverhead = int64(unsafe.Sizeof(scopeState{})) + 96
	tagSize       = int64(unsafe.Sizeof(envelope.Tag{}))
	markSize      = int64(unsafe.Sizeof(mark{}))
)

// New validates opts, fills in defaults and returns an empty Aggregator.
func New(opts Options) (*Aggregator, error) {
	if opts.BucketInterval == 0 {
		opts.BucketInterval = DefaultBucketInterval
	}
	if opts.BucketInterval < time.Second || opts.BucketInterval%time.Second != 0 {
		return nil, fmt.Errorf("%w: %v", ErrBucketInterval, opts.BucketInterval)
	}
	for _, o := range []struct {
		name string
		v    int64
	}{
		{"MaxBytes", opts.MaxBytes},
		{"MaxScopeBytes", opts.MaxScopeBytes},
		{"MaxSecsInPast", int64(opts.MaxSecsInPast)},
		{"MaxSecsInFuture", int64(opts.MaxSecsInFuture)},
		{"Partitions", int64(opts.Partitions)},
	} {
		if o.v < 0 {
			return nil, fmt.Errorf("%w: %s is %d", ErrNegativeOption, o.name, o.v)
		}
	}
	switch {
	case opts.InitialDelay == 0:
		opts.InitialDelay = DefaultInitialDelay
	case opts.InitialDelay < 0:
		opts.InitialDelay = 0
	}
	if opts.MaxBytes == 0 {
		opts.MaxBytes = DefaultMaxBytes
	}
	if opts.MaxSecsInPast == 0 {
		opts.MaxSecsInPast = DefaultMaxSecsInPast
	}
	if opts.MaxSecsInFuture == 0 {
		opts.MaxSecsInFuture = DefaultMaxSecsInFuture
	}
	if opts.Partitions == 0 {
		opts.Partitions = 1
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Aggregator{
		intervalNs: int64(opts.BucketInterval),
		widthSecs:  int64(opts.BucketInterval / time.Second),
		delayNs:    int64(opts.InitialDelay),
		maxBytes:   opts.MaxBytes,
		maxScope:   opts.MaxScopeBytes,
		pastSecs:   int64(opts.MaxSecsInPast / time.Second),
		futureSecs: int64(opts.MaxSecsInFuture / time.Second),
		partitions: uint64(opts.Partitions),
		now:        opts.Now,
		scopes:     make(map[Scope]*scopeState),
		streams:    make(map[uint32]*streamState),
	}, nil
}

// Insert aggregates bs for scope sc, recording src as their origin for
// Watermark. It copies what it keeps, so the caller may reuse bs and its
// value slices afterwards. Each bucket's timestamp is aligned down to the
// bucket interval and its metadata merged. Buckets are rejected, and
// counted in the result, when their timestamp is more than MaxSecsInPast
// before or MaxSecsInFuture after now, their type is invalid, their name is
// empty, a float is not finite, or a set is not ascending without
// duplicates.
func (a *Aggregator) Insert(sc Scope, src Source, bs []envelope.Bucket) (rejected int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.now()
	nowSecs, nowNs := now.Unix(), now.UnixNano()
	minTs, maxTs := nowSecs-a.pastSecs, nowSecs+a.futureSecs
	st := a.stream(src.Stream)
	st.observe(src.Seq)

	var ss *scopeState
	var cur *slot
	for i := range bs {
		b := &bs[i]
		if b.Timestamp < minTs || b.Timestamp > maxTs || !validBucket(b) {
			rejected++
			continue
		}
		ts := b.Timestamp - b.Timestamp%a.widthSecs
		if ts > b.Timestamp { // negative: align down, not toward zero
			ts -= a.widthSecs
		}
		if ss == nil {
			ss = a.scope(sc)
		}
		if cur == nil || cur.ts != ts || cur.idx < 0 {
			if cur = ss.slots[ts]; cur == nil {
				cur = a.newSlot(ss, ts, nowNs)
			}
		}
		a.scratch = appendKey(a.scratch[:0], b)
		e := cur.m[string(a.scratch)]
		if e != nil {
			before := valueBytes(&e.b)
			_ = e.b.Merge(b) // the key includes the type, so types match
			a.grow(e, valueBytes(&e.b)-before)
			a.stats.Merged++
		} else {
			e = a.newEntry(cur, b, ts)
		}
		a.attach(e, st, src.Seq)
		a.stats.Inserted++
		if a.maxScope > 0 && ss.bytes > a.maxScope {
			a.shedScope(ss, nowNs)
		}
		if a.bytes-a.readyBytes > a.maxBytes {
			a.shed(nowNs)
		}
	}
	a.stats.Rejected += uint64(rejected)
	return rejected
}

// validBucket checks what the aggregator relies on: a valid type, a name,
// finite floats (so merges stay finite) and a canonical set.
func validBucket(b *envelope.Bucket) bool {
	if b.Name == "" {
		return false
	}
	v := &b.Value
	switch b.Type {
	case envelope.MetricCounter:
		return finite(v.Counter)
	case envelope.MetricDistribution:
		for _, f := range v.Distribution {
			if !finite(f) {
				return false
			}
		}
		return true
	case envelope.MetricSet:
		for i := 1; i < len(v.Set); i++ {
			if v.Set[i-1] >= v.Set[i] {
				return false
			}
		}
		return true
	case envelope.MetricGauge:
		g := &v.Gauge
		return finite(g.Last) && finite(g.Min) && finite(g.Max) && finite(g.Sum)
	}
	return false
}

func finite(f float64) bool { return !math.IsInf(f, 0) && !math.IsNaN(f) }

// appendKey appends b's aggregation key within a slot: the type, then the
// name and each tag key and value, each prefixed with its uvarint length.
// newEntry relies on this layout to cut the bucket's strings out of the key.
func appendKey(dst []byte, b *envelope.Bucket) []byte {
	dst = append(dst, byte(b.Type))
	dst = binary.AppendUvarint(dst, uint64(len(b.Name)))
	dst = append(dst, b.Name...)
	for i := range b.Tags {
		t := &b.Tags[i]
		dst = binary.AppendUvarint(dst, uint64(len(t.Key)))
		dst = append(dst, t.Key...)
		dst = binary.AppendUvarint(dst, uint64(len(t.Value)))
		dst = append(dst, t.Value...)
	}
	return dst
}

// cut returns the n bytes of key after the uvarint length at off, and the
// offset after them.
func cut(key string, off, n int) (string, int) {
	off += uvarintLen(uint64(n))
	return key[off : off+n], off + n
}

func uvarintLen(x uint64) int {
	n := 1
	for ; x >= 0x80; x >>= 7 {
		n++
	}
	return n
}

// valueBytes is the memory of a bucket's value slices.
func valueBytes(b *envelope.Bucket) int64 {
	return int64(cap(b.Value.Distribution))*8 + int64(cap(b.Value.Set))*4
}

func (a *Aggregator) grow(e *entry, delta int64) {
	e.size += delta
	e.ss.bytes += delta
	a.bytes += delta
}

// stream returns the state of stream id, creating it.
func (a *Aggregator) stream(id uint32) *streamState {
	st := a.streams[id]
	if st == nil {
		st = &streamState{}
		a.streams[id] = st
	}
	return st
}

// scope returns the state of sc, creating it.
func (a *Aggregator) scope(sc Scope) *scopeState {
	ss := a.scopes[sc]
	if ss == nil {
		sc.PublicKey = strings.Clone(sc.PublicKey) // the caller's string may alias a request
		ss = &scopeState{scope: sc, jitter: int64(scopeHash(sc) % uint64(a.intervalNs)), slots: make(map[int64]*slot)}
		a.scopes[sc] = ss
		a.bytes += scopeOverhead + int64(len(sc.PublicKey))
	}
	return ss
}

// scopeHash is FNV-1a over the public key and the project id: stable across
// restarts, so a project keeps its place in the flush interval.
func scopeHash(sc Scope) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(sc.PublicKey); i++ {
		h = (h ^ uint64(sc.PublicKey[i])) * 1099511628211
	}
	for i := 0; i < 8; i++ {
		h = (h ^ (sc.ProjectID >> (8 * i) & 0xff)) * 1099511628211
	}
	return h
}

// newSlot opens the slot of window ts for ss.
func (a *Aggregator) newSlot(ss *scopeState, ts, nowNs int64) *slot {
	due := (ts+a.widthSecs)*int64(time.Second) + a.delayNs
	if due > nowNs {
		due += ss.jitter
	} else {
		due = nowNs + a.intervalNs // backdated: debounce instead of flushing at once
	}
	a.slotSeq++
	s := &slot{ss: ss, ts: ts, due: due, seq: a.slotSeq, m: make(map[string]*entry)}
	ss.slots[ts] = s
	heap.Push(&a.due, s)
	a.bytes += slotOverhead
	ss.bytes += slotOverhead
	return s
}

// newEntry adds a copy of b (window ts) to slot s under the key in
// a.scratch.
func (a *Aggregator) newEntry(s *slot, b *envelope.Bucket, ts int64) *entry {
	key := string(a.scratch)
	e := &entry{ss: s.ss, key: key}
	if a.partitions > 1 {
		e.part = int(b.KeyHash() % a.partitions)
	}
	e.b = envelope.Bucket{
		Timestamp: ts,
		Width:     a.widthSecs,
		Type:      b.Type,
		Value: envelope.BucketValue{
			Counter:      b.Value.Counter,
			Distribution: slices.Clone(b.Value.Distribution),
			Set:          slices.Clone(b.Value.Set),
			Gauge:        b.Value.Gauge,
		},
		Metadata: b.Metadata,
	}
	off := 1 // after the type
	e.b.Name, off = cut(key, off, len(b.Name))
	if len(b.Tags) > 0 {
		e.b.Tags = make([]envelope.Tag, len(b.Tags))
		for i := range b.Tags {
			e.b.Tags[i].Key, off = cut(key, off, len(b.Tags[i].Key))
			e.b.Tags[i].Value, off = cut(key, off, len(b.Tags[i].Value))
		}
	}
	e.size = entryOverhead + int64(len(key)) + int64(len(e.b.Tags))*tagSize + valueBytes(&e.b)
	s.m[key] = e
	s.order = append(s.order, e)
	a.bytes += e.size
	s.ss.bytes += e.size
	a.entries++
	return e
}

// attach records that seq of st contributed to e.
func (a *Aggregator) attach(e *entry, st *streamState, seq uint64) {
	m := &e.m0
	if m.st != st {
		m = nil
		for i := range e.ms {
			if e.ms[i].st == st {
				m = &e.ms[i]
				break
			}
		}
	}
	switch {
	case m == nil && e.m0.st == nil:
		e.m0 = mark{st, st.hold(seq)}
	case m == nil:
		c := cap(e.ms)
		e.ms = append(e.ms, mark{st, st.hold(seq)})
		a.grow(e, int64(cap(e.ms)-c)*markSize)
	case seq < m.seq: // out of order: keep the smallest seq
		st.release(m.seq)
		m.seq = st.hold(seq)
	}
}

// shed makes the oldest held buckets due until the rest fits MaxBytes.
func (a *Aggregator) shed(nowNs int64) {
	for a.bytes-a.readyBytes > a.maxBytes && len(a.due) > 0 {
		a.makeReady(a.due[0], nowNs)
		a.stats.FlushedEarly++
	}
}

// shedScope makes the oldest buckets of ss due until the rest of ss fits
// MaxScopeBytes. It scans ss's slots for the one due first, once per slot
// it empties; a scope has few open slots unless it sends much backdated
// data.
func (a *Aggregator) shedScope(ss *scopeState, nowNs int64) {
	var s *slot
	for ss.bytes > a.maxScope {
		if s == nil || s.idx < 0 {
			s = nil
			for _, c := range ss.slots {
				if s == nil || c.due < s.due || c.due == s.due && c.seq < s.seq {
					s = c
				}
			}
			if s == nil {
				return
			}
		}
		a.makeReady(s, nowNs)
		a.stats.FlushedEarlyScope++
	}
}

// makeReady moves the oldest bucket of s out of it into a.ready, for the
// next Flush, and drops s when it is left empty.
func (a *Aggregator) makeReady(s *slot, nowNs int64) {
	e := s.order[s.head]
	s.order[s.head] = nil
	s.head++
	delete(s.m, e.key)
	if len(a.ready) == 0 {
		a.readySince = nowNs
	}
	a.ready = append(a.ready, e)
	a.readyBytes += e.size
	s.ss.bytes -= e.size
	if s.head == len(s.order) {
		heap.Remove(&a.due, s.idx)
		a.dropSlot(s)
	}
}

// dropSlot forgets a slot that left the heap. Its scope stays registered
// (Insert may hold it); Flush deletes empty scopes.
func (a *Aggregator) dropSlot(s *slot) {
	delete(s.ss.slots, s.ts)
	a.bytes -= slotOverhead
	s.ss.bytes -= slotOverhead
}

// NextDue returns when the next bucket is due, for the owner loop's timer; a
// time in the past means Flush has buckets to return now. ok is false when
// nothing is held.
func (a *Aggregator) NextDue() (t time.Time, ok bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	var ns int64
	switch {
	case len(a.ready) > 0:
		ns, ok = a.readySince, true
		if len(a.due) > 0 {
			ns = min(ns, a.due[0].due)
		}
	case len(a.due) > 0:
		ns, ok = a.due[0].due, true
	}
	if !ok {
		return time.Time{}, false
	}
	return time.Unix(0, ns), true
}

// Flush removes every bucket due at now, and every bucket made due early by
// the memory budget, and appends them to dst as one Batch per (scope,
// partition), ordered by project id, public key and partition. The caller
// owns the returned buckets. After writing the batches durably it may ack
// up to Watermark.
func (a *Aggregator) Flush(now time.Time, dst []Batch) []Batch {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.flush(now.UnixNano(), dst)
}

// FlushAll removes and returns every held bucket, as Flush does; for
// shutdown.
func (a *Aggregator) FlushAll(dst []Batch) []Batch {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.flush(math.MaxInt64, dst)
}

func (a *Aggregator) flush(nowNs int64, dst []Batch) []Batch {
	out := append(a.out[:0], a.ready...)
	nReady := len(a.ready) // their size was taken off their scope's bytes already
	clear(a.ready)
	a.ready, a.readyBytes = a.ready[:0], 0
	for len(a.due) > 0 && a.due[0].due <= nowNs {
		s := heap.Pop(&a.due).(*slot)
		out = append(out, s.order[s.head:]...)
		a.dropSlot(s)
	}
	if len(out) == 0 {
		a.out = out
		return dst
	}
	var last *scopeState
	for i, e := range out {
		e.m0.st.release(e.m0.seq)
		for _, m := range e.ms {
			m.st.release(m.seq)
		}
		a.bytes -= e.size
		a.writing += e.size
		if i >= nReady {
			e.ss.bytes -= e.size
		}
		if e.ss != last {
			last = e.ss
			if len(last.slots) == 0 && a.scopes[last.scope] == last {
				delete(a.scopes, last.scope)
				a.bytes -= scopeOverhead + int64(len(last.scope.PublicKey))
			}
		}
	}
	a.entries -= len(out)
	a.stats.Flushed += uint64(len(out))

	slices.SortFunc(out, cmpEntry)
	buckets := make([]envelope.Bucket, len(out))
	start := 0
	for i, e := range out {
		buckets[i] = e.b
		if i+1 == len(out) || out[i+1].part != e.part || out[i+1].ss.scope != e.ss.scope {
			dst = append(dst, Batch{Scope: e.ss.scope, Partition: e.part, Buckets: buckets[start : i+1 : i+1]})
			start = i + 1
		}
	}
	clear(out)
	a.out = out[:0]
	return dst
}

// cmpEntry orders flushed buckets by scope, partition, timestamp and key.
// Comparing the interned key (type, then length-prefixed name and tags) is
// one memory comparison, much cheaper than walking names and tags.
func cmpEntry(x, y *entry) int {
	if x.ss != y.ss {
		if c := cmp.Compare(x.ss.scope.ProjectID, y.ss.scope.ProjectID); c != 0 {
			return c
		}
		if c := strings.Compare(x.ss.scope.PublicKey, y.ss.scope.PublicKey); c != 0 {
			return c
		}
	}
	if c := cmp.Compare(x.part, y.part); c != 0 {
		return c
	}
	if c := cmp.Compare(x.b.Timestamp, y.b.Timestamp); c != 0 {
		return c
	}
	return strings.Compare(x.key, y.key)
}

// Full reports that the memory budget is spent: buckets made due early,
// and those Flush returned that are not yet Written, take the held total
// over MaxBytes. Insert never refuses for memory; a caller that keeps
// inserting while Full grows the aggregator past its budget, so it should
// flush, write, call Written and wait until Full is false (the metrics
// stage holds its readers so). Full is false when nothing is made due
// early or being written: then shedding alone keeps the open buckets
// under MaxBytes.
func (a *Aggregator) Full() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.readyBytes+a.writing > 0 && a.bytes+a.writing > a.maxBytes
}

// Written reports that every batch returned by the Flush and FlushAll
// calls so far has been written: their buckets no longer count against
// MaxBytes.
func (a *Aggregator) Written() {
	a.mu.Lock()
	a.writing = 0
	a.mu.Unlock()
}

// Watermark returns the highest seq S of stream such that no record with
// seq ≤ S contributed to a bucket still held: the caller may ack the stream
// up to S once the batches of earlier Flush calls are written durably. ok is
// false if nothing of the stream was inserted, or if its smallest held seq
// is 0 (no S exists).
func (a *Aggregator) Watermark(stream uint32) (seq uint64, ok bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	st := a.streams[stream]
	if st == nil {
		return 0, false
	}
	return st.watermark()
}

// Stats returns a snapshot of the counters.
func (a *Aggregator) Stats() Stats {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := a.stats
	s.Buckets, s.Bytes, s.Writing = a.entries, a.bytes, a.writing
	return s
}

// slotHeap orders slots by due time, then creation.
type slotHeap []*slot

func (h slotHeap) Len() int { return len(h) }
func (h slotHeap) Less(i, j int) bool {
	return h[i].due < h[j].due || h[i].due == h[j].due && h[i].seq < h[j].seq
}
func (h slotHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].idx, h[j].idx = i, j
}
func (h *slotHeap) Push(x any) {
	s := x.(*slot)
	s.idx = len(*h)
	*h = append(*h, s)
}
func (h *slotHeap) Pop() any {
	old := *h
	s := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	s.idx = -1
	return s
}
