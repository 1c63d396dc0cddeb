package testutil

import (
	"sync"
	"testing"
	"time"
)

// Clock is a clock that moves only when told. Now and Advance drive code
// that reads the time; After hands each wait to the test, which fires it
// (Next, Wait.Fire), or, with Auto, fires it at once and only records it
// (Waited). It is safe for concurrent use.
type Clock struct {
	mu    sync.Mutex
	now   time.Time
	auto  bool
	waits chan *Wait
	log   []time.Duration
}

// Wait is one After call waiting to be fired.
type Wait struct {
	D time.Duration // what the code asked to wait for
	c chan time.Time
}

// Fire ends the wait.
func (w *Wait) Fire() { w.c <- time.Time{} }

// NewClock returns a Clock at start; auto makes every wait fire at once.
func NewClock(start time.Time, auto bool) *Clock {
	return &Clock{now: start, auto: auto, waits: make(chan *Wait, 256)}
}

// Now is the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d. It fires no wait: tests fire the
// waits they expect.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// After records a wait of d and returns its channel.
func (c *Clock) After(d time.Duration) <-chan time.Time {
	w := &Wait{D: d, c: make(chan time.Time, 1)}
	c.mu.Lock()
	c.log = append(c.log, d)
	c.mu.Unlock()
	if c.auto {
		w.Fire()
	} else {
		c.waits <- w
	}
	return w.c
}

// Waited is every wait asked for so far, in order.
func (c *Clock) Waited() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.log...)
}

// Waits delivers the waits asked for (without Auto), for tests that
// select on them beside other signals.
func (c *Clock) Waits() <-chan *Wait { return c.waits }

// Next returns the next wait asked for, failing t if none comes within
// guard (a bound on a hung test, not a synchronisation).
func (c *Clock) Next(t testing.TB, guard time.Duration) *Wait {
	t.Helper()
	select {
	case w := <-c.waits:
		return w
	case <-time.After(guard):
		t.Fatal("the code under test asked for no wait")
		return nil
	}
}
