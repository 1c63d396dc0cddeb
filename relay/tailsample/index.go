package tailsample

import (
	"cmp"
	"sync"
	"time"
)

// Index is the state of the traces waiting for a decision, shared by the
// Samplers of a relay (one per class) and the ingest path that marks traces
// with errors. Safe for concurrent use.
type Index struct {
	mu     sync.Mutex
	m      map[string]*trace
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
}

// Stats counts an Index's decisions.
type Stats struct {
	Kept    int64 `json:"kept_traces"`
	Dropped int64 `json:"dropped_traces"`
	// Early are traces decided at once because the index was full.
	Early int64 `json:"early_traces"`
	// Waiting are the traces indexed now (undecided, or decided and
	// remembered for late items).
	Waiting int `json:"indexed_traces"`
}

type trace struct {
	first, last int64 // received time of its first and last item, unix ns
	wait        int64 // decision wait of its rules, ns; 0 until an item came
	rate        float64
	refs        int // records of it still in a stream
	interesting bool
	decided     bool
	keep        bool
	left        int64 // when the last record left (unix ns), for forgetting
}

// NewIndex returns an empty Index.
func NewIndex(o IndexOptions) *Index {
	if o.MaxTraces <= 0 {
		o.MaxTraces = 100000
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
	t.interesting = true
}

// observe indexes one record of trace id received at at under rules r
// (nil: the Index's); interesting when the record itself keeps its trace.
// The first item of a trace fixes its keep rate and decision wait, so a
// trace whose items disagree (a DSC changed mid-trace) still gets one
// decision. It returns the verdict already made
// for the record (decided) when its trace was decided before, or when the
// index is full and the trace is new (decided at once by the rate).
func (x *Index) observe(id string, at time.Time, interesting bool, r *Rules) (decided, keep bool) {
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
			return true, keep
		}
		t = &trace{first: at.UnixNano(), last: at.UnixNano()}
		x.m[id] = t
	}
	t.refs++
	if t.decided {
		return true, t.keep // a late item follows its trace
	}
	if t.wait == 0 {
		t.wait, t.rate = int64(cmp.Or(r.DecisionWait, x.o.DecisionWait)), r.KeepRate
	}
	t.first = min(t.first, at.UnixNano())
	t.last = max(t.last, at.UnixNano())
	t.interesting = t.interesting || interesting
	return false, false
}

// verdict decides trace id if it is due at now; decided false while it
// still waits.
func (x *Index) verdict(id string, now time.Time) (decided, keep bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	t := x.m[id]
	if t == nil { // cannot happen while a record of it is held
		return true, x.o.Rules.KeepByRate(id)
	}
	if t.decided {
		return true, t.keep
	}
	n := now.UnixNano()
	wait, rate := t.wait, t.rate
	if wait == 0 { // cannot happen: a held record set them
		wait, rate = int64(x.o.DecisionWait), x.o.Rules.KeepRate
	}
	if n-t.last < wait && n-t.first < int64(x.o.MaxTraceWait) {
		return false, false
	}
	t.decided = true
	t.keep = t.interesting || Hash(id) < rate
	x.count(t.keep)
	return true, t.keep
}

func (x *Index) count(keep bool) {
	if keep {
		x.stats.Kept++
	} else {
		x.stats.Dropped++
	}
}

// release records that a record of trace id left its stream at now.
func (x *Index) release(id string, now time.Time) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if t := x.m[id]; t != nil {
		t.refs--
		t.left = now.UnixNano()
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
	return s
}
