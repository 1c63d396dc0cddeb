package intake

import (
	"errors"
	"sync/atomic"
)

var (
	// ErrBusy means the budget is held by other requests right now; the
	// same request may fit later (HTTP 503 with Retry-After).
	ErrBusy = errors.New("intake: memory budget for request bodies is in use; retry later")
	// ErrOverBudget means the request alone needs more memory than the
	// budget can ever give one request (HTTP 413).
	ErrOverBudget = errors.New("intake: request needs more memory than the budget for request bodies allows")
)

// SmallRequest is the most a request may hold and still draw on the floor
// of the budget that large requests leave alone.
const SmallRequest = 256 << 10

// Budget bounds the bytes that all request bodies hold at once. It is safe
// for concurrent use; the zero value is not usable, use NewBudget.
type Budget struct {
	max   int64 // small requests may fill it
	large int64 // what requests over SmallRequest may fill together
	used  atomic.Int64
	peak  atomic.Int64
}

// NewBudget returns a budget of max bytes. An eighth of it (at most what
// the rest leaves) is kept for requests of at most SmallRequest bytes.
func NewBudget(max int64) *Budget {
	if max <= 0 {
		panic("BUG: intake.NewBudget with a non-positive budget")
	}
	return &Budget{max: max, large: max - max/8}
}

// Max is the budget in bytes.
func (b *Budget) Max() int64 { return b.max }

// Used is the bytes held by requests now.
func (b *Budget) Used() int64 { return b.used.Load() }

// Peak is the most bytes ever held at once.
func (b *Budget) Peak() int64 { return b.peak.Load() }

// Lease is one request's share of a Budget. The zero value holds nothing
// and fails every Grow; get one with Budget.Lease. A Lease is used by one
// goroutine.
type Lease struct {
	b    *Budget
	held int64
}

// Lease starts a request's share, holding nothing yet.
func (b *Budget) Lease() Lease { return Lease{b: b} }

// Held is what the lease holds.
func (l *Lease) Held() int64 { return l.held }

// couldGrow reports whether n more bytes could ever fit the lease, however
// little of the budget others held.
func (l *Lease) couldGrow(n int) bool {
	if l.b == nil {
		return n <= 0
	}
	total := l.held + int64(n)
	return total <= SmallRequest && total <= l.b.max || total <= l.b.large
}

// Grow reserves n more bytes for the request, before they are allocated.
// It fails with ErrOverBudget when the request's total could never fit
// and with ErrBusy when it does not fit now; nothing is reserved then.
func (l *Lease) Grow(n int) error {
	if n <= 0 {
		return nil
	}
	if l.b == nil {
		return ErrOverBudget
	}
	total := l.held + int64(n)
	limit := l.b.max
	if total > SmallRequest {
		limit = l.b.large
	}
	if total > limit {
		return ErrOverBudget
	}
	for {
		// Compare and swap, not add and undo: an overshoot, however
		// brief, would turn other requests away.
		used := l.b.used.Load()
		if used+int64(n) > limit {
			return ErrBusy
		}
		if l.b.used.CompareAndSwap(used, used+int64(n)) {
			if p := l.b.peak.Load(); used+int64(n) > p {
				// A lost race only under-reports a peak by one request.
				l.b.peak.CompareAndSwap(p, used+int64(n))
			}
			l.held = total
			return nil
		}
	}
}

// Shrink hands back n bytes of the lease (at most what it holds).
func (l *Lease) Shrink(n int) {
	d := min(int64(max(n, 0)), l.held)
	if d > 0 {
		l.held -= d
		l.b.used.Add(-d)
	}
}

// Release hands back everything the lease holds. The lease stays usable.
func (l *Lease) Release() {
	if l.held > 0 {
		l.b.used.Add(-l.held)
		l.held = 0
	}
}
