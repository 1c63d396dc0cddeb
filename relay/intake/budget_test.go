package intake

import (
	"errors"
	"sync"
	"testing"
)

func TestLeaseArithmetic(t *testing.T) {
	b := NewBudget(8 << 20) // large requests may hold 7 MiB together
	l := b.Lease()
	grow := func(l *Lease, n int, want error) {
		t.Helper()
		if err := l.Grow(n); !errors.Is(err, want) || (err == nil) != (want == nil) {
			t.Fatalf("Grow(%d) with %d held, %d used: err %v, want %v", n, l.Held(), b.Used(), err, want)
		}
	}
	grow(&l, 1<<20, nil)
	grow(&l, 6<<20, nil)
	if l.Held() != 7<<20 || b.Used() != 7<<20 {
		t.Fatalf("held %d used %d", l.Held(), b.Used())
	}
	grow(&l, 1, ErrOverBudget) // past what large requests may ever hold
	if l.Held() != 7<<20 || b.Used() != 7<<20 {
		t.Fatalf("a refused Grow reserved: held %d used %d", l.Held(), b.Used())
	}

	// The floor is left to small requests.
	other := b.Lease()
	grow(&other, SmallRequest, nil)
	grow(&other, 1, ErrBusy) // now large, and the large share is taken
	l.Shrink(2 << 20)
	grow(&other, 1, nil)
	l.Release()
	other.Release()
	if b.Used() != 0 {
		t.Fatalf("used %d after every lease was released", b.Used())
	}
	if b.Peak() != 7<<20+SmallRequest {
		t.Fatalf("peak %d", b.Peak())
	}
	var zero Lease
	grow(&zero, 1, ErrOverBudget)
	grow(&zero, 0, nil)
}

func TestSmallRequestsKeepTheirFloor(t *testing.T) {
	b := NewBudget(8 << 20)
	var large []Lease
	for {
		l := b.Lease()
		if err := l.Grow(1 << 20); err != nil {
			if !errors.Is(err, ErrBusy) {
				t.Fatalf("large lease %d: %v", len(large), err)
			}
			break
		}
		large = append(large, l)
	}
	if len(large) != 7 {
		t.Fatalf("%d large leases of 1 MiB fit in 7 MiB", len(large))
	}
	// Four small requests of SmallRequest fill the floor (1 MiB), the fifth
	// waits.
	for i := range 5 {
		l := b.Lease()
		err := l.Grow(SmallRequest)
		if want := i < 4; (err == nil) != want {
			t.Fatalf("small lease %d: err %v", i, err)
		}
	}
}

// TestBudgetNeverExceeded races leases against one budget: whatever they
// do, the bytes held never pass it.
func TestBudgetNeverExceeded(t *testing.T) {
	b := NewBudget(4 << 20)
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			for i := range 2000 {
				l := b.Lease()
				for step := range 4 {
					if l.Grow((g*7919+i*104729+step*31)%(600<<10)) != nil {
						break
					}
					if u := b.Used(); u > b.Max() {
						t.Errorf("used %d > budget %d", u, b.Max())
					}
				}
				l.Release()
			}
		})
	}
	wg.Wait()
	if b.Used() != 0 || b.Peak() > b.Max() {
		t.Fatalf("used %d, peak %d of %d", b.Used(), b.Peak(), b.Max())
	}
}
