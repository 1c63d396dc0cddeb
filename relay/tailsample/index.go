package tailsample

import (
	"cmp"
	"math"
	"sync"
	"time"
)

// Index is the state of the traces waiting for a decision, shared by the
// Samplers of a relay (one per class) and the ingest path that marks traces
// with errors. Safe for concurrent use.
type Index struct {
	mu     sync.Mutex
	m      map[string]*trace
	bytes  int64 // values of the records held (observed, not released)
	o      IndexOptions
	stats  Stats
	sweepd time.Time // last sweep of remembered decisions and marks
}

// IndexOptions configures an Index.
type IndexOptions struct {
	Rules Rules
	// DecisionWait: a trace is due once none of its items arrived for this
	// long. Required.
	DecisionWait time.Duration
	// MaxTraceWait: a trace is due this long after its first item.
	// Required.
	MaxTraceWait time.Duration
	// MaxTraces bounds the traces indexed at once. Default 100000.
	MaxTraces int
	// MaxTraceItems decides a trace at once when it has this many items.
	// Default 1000.
	MaxTraceItems int
	// MaxBytes is the budget of the records held undecided (their stored
	// values): over it, the Samplers decide the oldest traces at once.
	// Default 0: no budget.
	MaxBytes int64
}

// Stats counts an Index's decisions.
type Stats struct {
	Kept    int64 `json:"kept_traces"`
	Dropped int64 `json:"dropped_traces"`
	// Early are traces decided at once because the index was full.
	Early int64 `json:"early_traces"`
	// Capped are traces decided at once when they reached MaxTraceItems.
	Capped int64 `json:"capped_traces"`
	// OverBudget are traces decided early because the records held were
	// over MaxBytes.
	OverBudget int64 `json:"over_budget_traces"`
	// Bytes are the bytes of the records held now.
	Bytes int64 `json:"held_bytes"`
	// Waiting are the traces indexed now (undecided, or decided and
	// remembered for late items).
	Waiting int `json:"indexed_traces"`
}

type trace struct {
	// first and last are the received times of its first and last item,
	// unix ns; once rooted, last is the root's and later items leave it.
	first, last int64
	// wait is the decision wait of its rules, ns, 0 until an item came;
	// once rooted, at most the root grace: due at last + wait either way.
	wait  int64
	rate  float64
	left  int64 // when the last record left (unix ns), for forgetting
	refs  int32 // records of it still in a stream
	items int32 // items seen, for MaxTraceItems
	// rule is the sampling rule rate came from (Rules.RateRule), for the
	// outcome of a drop.
	rule uint32
	// durable and recorded are when a durable mark of it and its durable
	// decision were last appended (Marks), as secs. Seconds in 4 bytes, and
	// the flags in one, keep the entry in the 64 B size class.
	durable, recorded uint32
	flags             traceFlags
}

type traceFlags uint8

const (
	tInteresting traceFlags = 1 << iota
	tDue                    // decide at the next verdict: capped or over budget
	tDecided
	tKeep
	tRooted // its root transaction arrived (Rules.RootGrace)
)

func (t *trace) is(f traceFlags) bool { return t.flags&f != 0 }

func (t *trace) set(f traceFlags, on bool) {
	if on {
		t.flags |= f
	} else {
		t.flags &^= f
	}
}

// NewIndex returns an empty Index.
func NewIndex(o IndexOptions) *Index {
	if o.MaxTraces <= 0 {
		o.MaxTraces = 100000
	}
	if o.MaxTraceItems <= 0 {
		o.MaxTraceItems = 1000
	}
	return &Index{m: map[string]*trace{}, o: o}
}

// Mark records that trace id had an error: it will be kept.
func (x *Index) Mark(id string, now time.Time) {
	if id == "" {
		return
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	t := x.m[id]
	if t == nil {
		if len(x.m) >= x.o.MaxTraces {
			x.sweep(now) // marks of traces whose items never came must not fill the index
		}
		if len(x.m) >= x.o.MaxTraces {
			return // full: the trace falls back to the other rules
		}
		// A mark alone: its items may follow; forgotten after MaxTraceWait.
		t = &trace{first: now.UnixNano(), last: now.UnixNano(), left: now.UnixNano()}
		x.m[id] = t
	}
	t.set(tInteresting, true)
}

// HasDurableMark reports whether a durable mark of trace id was appended
// less than MaxTraceWait before now, so another one is not needed: the
// trace's first item is no later than that mark, so it is due before the
// mark expires (MaxTraceWait + MarkSlack after it was appended), after a
// restart as before it.
func (x *Index) HasDurableMark(id string, now time.Time) bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	t := x.m[id]
	return t != nil && t.durable != 0 && now.UnixNano()-t.at(t.durable) < int64(x.o.MaxTraceWait)
}

// MarkDurable is Mark for a mark that was also appended to the buffer.
func (x *Index) MarkDurable(id string, now time.Time) {
	x.Mark(id, now)
	x.mu.Lock()
	defer x.mu.Unlock()
	if t := x.m[id]; t != nil {
		t.durable = t.secs(now.UnixNano())
	}
}

// Remember puts back the decision of trace id (keep) that a durable
// decision record appended at at holds (Marks.Load): late items of the
// trace follow it, as before the restart. The trace is forgotten like one
// decided here, MaxTraceWait after at.
func (x *Index) Remember(id string, keep bool, rule uint32, at time.Time) {
	if id == "" {
		return
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	n := at.UnixNano()
	t := x.m[id]
	if t == nil {
		if len(x.m) >= x.o.MaxTraces {
			x.sweep(at)
		}
		if len(x.m) >= x.o.MaxTraces {
			return // full: a late item of it is decided afresh
		}
		t = &trace{first: n, last: n}
		x.m[id] = t
	}
	t.set(tDecided, true)
	t.set(tKeep, keep)
	t.rule = rule
	t.left = max(t.left, n)
	t.recorded = t.secs(n)
}

// secs is the time n (unix ns) as whole seconds after first, plus 1; 0
// is none (at).
func (t *trace) secs(n int64) uint32 {
	return uint32(min(max(n-t.first, 0)/int64(time.Second), math.MaxUint32-1) + 1)
}

// at is the time of secs v, rounded down to the second, and earlier
// still if first moved back since: a durable record is renewed early,
// never late. 0 for none.
func (t *trace) at(v uint32) int64 {
	if v == 0 {
		return 0
	}
	return t.first + int64(v-1)*int64(time.Second)
}

// record calls add, under one lock, for each trace of prefix, decided,
// that needs a durable decision record appended at now (none yet, or the
// last one is MaxTraceWait old, so it would expire before the trace is
// forgotten), and notes it as appended; unrecord undoes that when the
// append failed. add must not call the Index.
func (x *Index) record(prefix []heldRecord, now time.Time, add func(id string, keep, interesting bool, rule uint32)) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for i := range prefix {
		id := prefix[i].id
		if id == "" {
			continue
		}
		t := x.m[id]
		if t == nil || !t.is(tDecided) || (t.recorded != 0 && now.UnixNano()-t.at(t.recorded) < int64(x.o.MaxTraceWait)) {
			continue
		}
		t.recorded = t.secs(now.UnixNano())
		add(id, t.is(tKeep), t.is(tInteresting), t.rule)
	}
}

func (x *Index) unrecord(id string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if t := x.m[id]; t != nil {
		t.recorded = 0
	}
}

// observe indexes one record of trace id received at at under rules r
// (nil: the Index's); interesting when the record itself keeps its trace,
// root when it holds the trace's root transaction. The first item of a
// trace fixes its keep rate and decision wait, so a trace whose items
// disagree (a DSC changed mid-trace) still gets one decision; the root
// makes the trace due r.RootGrace after it (the first root, if several),
// whatever comes later. It returns the verdict already made for the record
// (decided) when its trace was decided before, or when the index is full
// and the trace is new (decided at once by the rate).
func (x *Index) observe(id string, at time.Time, interesting, root bool, r *Rules, items, size int) (decided, keep bool) {
	decided, keep, _ = x.add(id, at, interesting, root, r, items, size)
	return decided, keep
}

// add is observe; indexed false means the record was decided early and
// left out of the index: it must not be released.
func (x *Index) add(id string, at time.Time, interesting, root bool, r *Rules, items, size int) (decided, keep, indexed bool) {
	if r == nil {
		r = &x.o.Rules
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	t := x.m[id]
	if t == nil {
		if len(x.m) >= x.o.MaxTraces {
			x.sweep(at)
		}
		if len(x.m) >= x.o.MaxTraces {
			x.stats.Early++
			keep = interesting || r.KeepByRate(id)
			x.count(keep)
			return true, keep, false
		}
		t = &trace{first: at.UnixNano(), last: at.UnixNano()}
		x.m[id] = t
	}
	t.refs++
	x.bytes += int64(size)
	if t.is(tDecided) {
		return true, t.is(tKeep), true // a late item follows its trace
	}
	t.items = int32(min(int(t.items)+items, math.MaxInt32))
	if int(t.items) >= x.o.MaxTraceItems && !t.is(tDue) {
		t.set(tDue, true)
		x.stats.Capped++
	}
	if t.wait == 0 {
		t.wait, t.rate, t.rule = int64(cmp.Or(r.DecisionWait, x.o.DecisionWait)), r.KeepRate, r.RateRule
	}
	t.first = min(t.first, at.UnixNano())
	switch {
	case root && r.RootGrace > 0 && !t.is(tRooted):
		// Due at the root + grace: every item so far has a quiet time
		// ending no earlier (the root is one of them, and the grace is at
		// most the wait), and later items must not move it.
		t.set(tRooted, true)
		t.last, t.wait = at.UnixNano(), min(t.wait, int64(r.RootGrace))
	case !t.is(tRooted):
		t.last = max(t.last, at.UnixNano())
	}
	t.set(tInteresting, t.is(tInteresting) || interesting)
	return false, false, true
}

// decide gives the records at the head of a Sampler's queue their
// verdicts at now, under one lock, and returns how many lead the queue
// decided: it stops at the first whose rules are not known yet or whose
// trace still waits.
func (x *Index) decide(held []heldRecord, now time.Time) int {
	x.mu.Lock()
	defer x.mu.Unlock()
	for n := range held {
		h := &held[n]
		if h.noRules {
			return n
		}
		if !h.decided {
			if h.decided, h.keep = x.verdict(h.id, now); !h.decided {
				return n
			}
		}
	}
	return len(held)
}

// verdict decides trace id if it is due at now; decided false while it
// still waits. x.mu is held.
func (x *Index) verdict(id string, now time.Time) (decided, keep bool) {
	t := x.m[id]
	if t == nil { // cannot happen while a record of it is held
		return true, x.o.Rules.KeepByRate(id)
	}
	if t.is(tDecided) {
		return true, t.is(tKeep)
	}
	n := now.UnixNano()
	wait, rate := t.wait, t.rate
	if wait == 0 { // cannot happen: a held record set them
		wait, rate = int64(x.o.DecisionWait), x.o.Rules.KeepRate
	}
	if !t.is(tDue) && n-t.last < wait && n-t.first < int64(x.o.MaxTraceWait) {
		return false, false
	}
	keep = t.is(tInteresting) || Hash(id) < rate
	t.set(tDecided, true)
	t.set(tKeep, keep)
	x.count(keep)
	return true, keep
}

// rule is the sampling rule whose keep rate decided trace id (Rules.RateRule).
func (x *Index) rule(id string) uint32 {
	x.mu.Lock()
	defer x.mu.Unlock()
	if t := x.m[id]; t != nil {
		return t.rule
	}
	return 0
}

func (x *Index) count(keep bool) {
	if keep {
		x.stats.Kept++
	} else {
		x.stats.Dropped++
	}
}

// overBy is how many bytes the records held are over MaxBytes (≤ 0 when
// they are not, or when there is no MaxBytes).
func (x *Index) overBy() int64 {
	if x.o.MaxBytes <= 0 {
		return 0
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.bytes - x.o.MaxBytes
}

// hurry makes trace id, if still undecided, due at once (the held
// records are over budget).
func (x *Index) hurry(id string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if t := x.m[id]; t != nil && !t.is(tDecided|tDue) {
		t.set(tDue, true)
		x.stats.OverBudget++
	}
}

// release records that the records of prefix, settled, left their stream
// at now; those without an id were never indexed.
func (x *Index) release(prefix []heldRecord, now time.Time) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for i := range prefix {
		h := &prefix[i]
		if h.id == "" {
			continue
		}
		x.bytes -= int64(h.size)
		if t := x.m[h.id]; t != nil {
			t.refs--
			t.left = now.UnixNano()
		}
	}
	x.sweep(now)
}

// sweep forgets, at most once a second, the decided traces whose records
// all left more than MaxTraceWait ago, and marks nothing followed.
func (x *Index) sweep(now time.Time) {
	if now.Sub(x.sweepd) < time.Second {
		return
	}
	x.sweepd = now
	cut := now.Add(-x.o.MaxTraceWait).UnixNano()
	for id, t := range x.m {
		if t.refs <= 0 && t.left < cut {
			delete(x.m, id)
		}
	}
}

// Stats returns the decisions so far.
func (x *Index) Stats() Stats {
	x.mu.Lock()
	defer x.mu.Unlock()
	s := x.stats
	s.Waiting = len(x.m)
	s.Bytes = x.bytes
	return s
}
