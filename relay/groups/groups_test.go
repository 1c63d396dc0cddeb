package groups

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func TestStormWindow(t *testing.T) {
	c := &clock{time.Unix(1_700_000_000, 0)}
	tb, err := New(Options{Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	key := []byte("k")
	observe := func(n int, hash string) (kept int) {
		for range n {
			if tb.Observe(1, key, hash, 3, time.Minute) {
				kept++
			}
		}
		return kept
	}
	if got := observe(10, "a"); got != 3 {
		t.Fatalf("kept %d of 10 in the first window, want 3", got)
	}
	if got := observe(5, "b"); got != 3 {
		t.Fatalf("another issue kept %d, want its own 3", got)
	}
	c.t = c.t.Add(59 * time.Second)
	if got := observe(5, "a"); got != 0 {
		t.Fatalf("kept %d before the window ended, want 0", got)
	}
	c.t = c.t.Add(time.Second)
	if got := observe(5, "a"); got != 3 {
		t.Fatalf("kept %d in the next window, want 3", got)
	}
	if !tb.Observe(1, key, "a", 0, time.Minute) {
		t.Fatal("limit 0 dropped an event")
	}
	counts := map[string]int64{}
	for _, c := range tb.Drain(nil) {
		counts[c.Hash] += c.Events
	}
	if counts["a"] != 21 || counts["b"] != 5 {
		t.Fatalf("counts %v, want a:21 b:5", counts)
	}
	if got := tb.Drain(nil); len(got) != 0 {
		t.Fatalf("second drain %v, want nothing", got)
	}
}

// Evicted issues keep their counts (spilled) and forget their window.
func TestEvictSpills(t *testing.T) {
	c := &clock{time.Unix(1_700_000_000, 0)}
	tb, err := New(Options{MaxIssues: 4, Shards: 1, Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 6 {
		tb.Observe(uint64(i), []byte("k"), "h", 1, time.Hour)
	}
	st := tb.Stats()
	if st.Issues != 4 || st.Evicted != 2 {
		t.Fatalf("stats %+v, want 4 issues, 2 evicted", st)
	}
	if !tb.Observe(0, []byte("k"), "h", 1, time.Hour) {
		t.Fatal("an evicted issue's window was kept")
	}
	var total int64
	for _, c := range tb.Drain(nil) {
		total += c.Events
	}
	if total != 7 {
		t.Fatalf("drained %d events, want 7", total)
	}
	// Past the spill bound counts are lost, and counted.
	for i := range 20 {
		tb.Observe(uint64(100+i), []byte("k"), "h", 0, time.Hour)
	}
	if st := tb.Stats(); st.Lost == 0 {
		t.Fatalf("stats %+v: nothing lost past the spill bound", st)
	}
}

// Concurrent observers and a drainer: every event is drained once (the
// table holds every issue, so nothing is evicted or lost).
func TestConcurrent(t *testing.T) {
	tb, err := New(Options{MaxIssues: 1024})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var drained int64
	for g := range 4 {
		wg.Go(func() {
			for i := range 1000 {
				tb.Observe(1, []byte("k"), fmt.Sprint(g, i%16), 10, time.Hour)
			}
		})
	}
	wg.Go(func() {
		for range 50 {
			for _, c := range tb.Drain(nil) {
				mu.Lock()
				drained += c.Events
				mu.Unlock()
			}
		}
	})
	wg.Wait()
	for _, c := range tb.Drain(nil) {
		drained += c.Events
	}
	if drained != 4000 {
		t.Fatalf("drained %d, want 4000 (stats %+v)", drained, tb.Stats())
	}
}

func TestOptions(t *testing.T) {
	if _, err := New(Options{MaxIssues: -1}); err == nil {
		t.Fatal("negative MaxIssues accepted")
	}
}

func BenchmarkObserve(b *testing.B) {
	tb, _ := New(Options{})
	hashes := make([]string, 1024)
	for i := range hashes {
		hashes[i] = fmt.Sprintf("%032x", i)
	}
	key := []byte("0123456789abcdef0123456789abcdef")
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		tb.Observe(42, key, hashes[i%len(hashes)], 100, time.Minute)
		i++
	}
}
