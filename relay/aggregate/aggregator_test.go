package aggregate

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/baton-relay/baton/envelope"
)

var sc1 = Scope{ProjectID: 1, PublicKey: "a94ae32be2584e0bbd7a4cbb95971fee"}

func TestNewOptions(t *testing.T) {
	bad := func(o Options, want error) {
		t.Helper()
		if _, err := New(o); !errors.Is(err, want) {
			t.Errorf("New(%+v) = %v, want %v", o, err, want)
		}
	}
	bad(Options{BucketInterval: 500 * time.Millisecond}, ErrBucketInterval)
	bad(Options{BucketInterval: 1500 * time.Millisecond}, ErrBucketInterval)
	bad(Options{BucketInterval: -time.Second}, ErrBucketInterval)
	if a, err := New(Options{InitialDelay: -1}); err != nil || a.delayNs != 0 {
		t.Errorf("a negative InitialDelay means none: %v", err)
	}
	bad(Options{MaxBytes: -1}, ErrNegativeOption)
	bad(Options{MaxScopeBytes: -1}, ErrNegativeOption)
	bad(Options{MaxSecsInPast: -1}, ErrNegativeOption)
	bad(Options{MaxSecsInFuture: -1}, ErrNegativeOption)
	bad(Options{Partitions: -1}, ErrNegativeOption)

	a := newAgg(t, Options{})
	if a.widthSecs != 10 || a.delayNs != int64(30*time.Second) || a.maxBytes != 64<<20 || a.maxScope != 0 ||
		a.pastSecs != 5*86400 || a.futureSecs != 60 || a.partitions != 1 || a.now == nil {
		t.Errorf("defaults not applied: %+v", a)
	}
}

// insertFlush inserts each bucket in its own call and flushes everything.
func insertFlush(t *testing.T, bs ...envelope.Bucket) []envelope.Bucket {
	t.Helper()
	a := newAgg(t, Options{Now: newClock(base + 5).Now})
	for i := range bs {
		if r := a.Insert(sc1, Source{Seq: uint64(i + 1)}, bs[i:i+1]); r != 0 {
			t.Fatalf("bucket %d rejected", i)
		}
	}
	return flat(a.FlushAll(nil))
}

func TestMergeSemantics(t *testing.T) {
	t.Run("counter", func(t *testing.T) {
		a, b := counter("hits", base+1, 1), counter("hits", base+9, 2.5)
		a.Metadata.ReceivedAt, b.Metadata.ReceivedAt = base+3, base+2
		got := insertFlush(t, a, b)
		want := envelope.Bucket{Timestamp: base, Width: 10, Name: "c:custom/hits@none", Type: envelope.MetricCounter,
			Metadata: envelope.BucketMetadata{Merges: 2, ReceivedAt: base + 2}}
		want.Value.Counter = 3.5
		if len(got) != 1 || !reflect.DeepEqual(got[0], want) {
			t.Errorf("got %+v\nwant %+v", got, want)
		}
	})
	t.Run("counter saturates", func(t *testing.T) {
		got := insertFlush(t, counter("x", base, math.MaxFloat64), counter("x", base, math.MaxFloat64))
		if got[0].Value.Counter != math.MaxFloat64 {
			t.Errorf("counter = %v, want MaxFloat64", got[0].Value.Counter)
		}
	})
	t.Run("distribution", func(t *testing.T) {
		got := insertFlush(t, dist("d", base, 3, 1), dist("d", base+2, 2), dist("d", base+4, 1))
		if len(got) != 1 || !slices.Equal(got[0].Value.Distribution, []float64{3, 1, 2, 1}) {
			t.Errorf("got %+v", got)
		}
	})
	t.Run("set", func(t *testing.T) {
		s := func(vs ...uint32) envelope.Bucket {
			b := envelope.Bucket{Timestamp: base, Name: "s:custom/users@none", Type: envelope.MetricSet, Metadata: envelope.BucketMetadata{Merges: 1}}
			b.Value.Set = vs
			return b
		}
		got := insertFlush(t, s(1, 5), s(3, 5, 9), s(), s(0))
		if len(got) != 1 || !slices.Equal(got[0].Value.Set, []uint32{0, 1, 3, 5, 9}) {
			t.Errorf("got %+v", got)
		}
	})
	t.Run("gauge", func(t *testing.T) {
		g := func(v envelope.GaugeValue) envelope.Bucket {
			b := envelope.Bucket{Timestamp: base, Name: "g:custom/q@none", Type: envelope.MetricGauge, Metadata: envelope.BucketMetadata{Merges: 1}}
			b.Value.Gauge = v
			return b
		}
		got := insertFlush(t, g(envelope.GaugeValue{Last: 1, Min: 1, Max: 1, Sum: 1, Count: 1}),
			g(envelope.GaugeValue{Last: 5, Min: 0, Max: 9, Sum: 20, Count: 4}),
			g(envelope.GaugeValue{Last: 2, Min: 2, Max: 2, Sum: 2, Count: 1}))
		want := envelope.GaugeValue{Last: 2, Min: 0, Max: 9, Sum: 23, Count: 6}
		if len(got) != 1 || got[0].Value.Gauge != want {
			t.Errorf("got %+v, want %+v", got, want)
		}
	})
	t.Run("keys", func(t *testing.T) {
		// Tags, type, window and name separate buckets; tag order of
		// construction does not.
		c := counter("a", base, 1, "x", "1", "y", "2")
		c2 := counter("a", base, 1, "y", "2", "x", "1")
		d := c
		d.Type = envelope.MetricGauge // same name, other type
		d.Value.Gauge = envelope.GaugeValue{Last: 1, Min: 1, Max: 1, Sum: 1, Count: 1}
		got := insertFlush(t, c, c2, counter("a", base, 1, "x", "1"), counter("a", base+10, 1, "x", "1", "y", "2"),
			counter("b", base, 1, "x", "1", "y", "2"), d)
		if len(got) != 5 {
			t.Fatalf("got %d buckets, want 5: %+v", len(got), got)
		}
		// Ordered by timestamp, then key: type first, then name and tags.
		if got[0].Name != "c:custom/a@none" || len(got[0].Tags) != 1 || got[1].Value.Counter != 2 ||
			got[2].Name != "c:custom/b@none" || got[3].Type != envelope.MetricGauge || got[4].Timestamp != base+10 {
			t.Errorf("unexpected order or merge: %+v", got)
		}
	})
	t.Run("scopes", func(t *testing.T) {
		a := newAgg(t, Options{Now: newClock(base).Now})
		sc2 := Scope{ProjectID: 2, PublicKey: "b"}
		a.Insert(sc2, Source{}, []envelope.Bucket{counter("a", base, 1)})
		a.Insert(sc1, Source{}, []envelope.Bucket{counter("a", base, 1)})
		a.Insert(sc1, Source{}, []envelope.Bucket{counter("a", base, 1)})
		got := a.FlushAll(nil)
		if len(got) != 2 || got[0].Scope != sc1 || got[1].Scope != sc2 || got[0].Buckets[0].Value.Counter != 2 {
			t.Errorf("got %+v", got)
		}
	})
}

// TestInsertCopies checks that the aggregator keeps nothing of the caller's
// memory: the caller reuses bs.
func TestInsertCopies(t *testing.T) {
	a := newAgg(t, Options{Now: newClock(base).Now})
	bs := []envelope.Bucket{dist("d", base, 1, 2), counter("c", base, 1, "k", "v")}
	a.Insert(sc1, Source{}, bs)
	bs[0].Value.Distribution[0] = 99
	bs[1].Tags[0].Value = "changed"
	bs[1].Name = "c:custom/other@none"
	got := flat(a.FlushAll(nil))
	if got[0].Name != "c:custom/c@none" || got[0].Tags[0].Value != "v" || got[1].Value.Distribution[0] != 1 {
		t.Errorf("aggregator aliases the caller's buckets: %+v", got)
	}
	if bs[0].Timestamp != base || bs[0].Width != 0 {
		t.Errorf("Insert modified its input: %+v", bs[0])
	}
}

func TestTimeRange(t *testing.T) {
	now := int64(base + 5)
	a := newAgg(t, Options{Now: newClock(now).Now})
	past, future := now-5*86400, now+60
	nan := counter("nan", now, math.NaN())
	inf := dist("inf", now, 1, math.Inf(1))
	unsorted := envelope.Bucket{Timestamp: now, Name: "s:custom/s@none", Type: envelope.MetricSet, Value: envelope.BucketValue{Set: []uint32{2, 1}}}
	badType := counter("t", now, 1)
	badType.Type = 'x'
	noName := counter("", now, 1)
	noName.Name = ""
	bs := []envelope.Bucket{
		counter("ok", past, 1), counter("old", past-1, 1),
		counter("ok", future, 1), counter("new", future+1, 1),
		nan, inf, unsorted, badType, noName,
	}
	if r := a.Insert(sc1, Source{}, bs); r != 7 {
		t.Errorf("rejected %d, want 7", r)
	}
	st := a.Stats()
	if st.Rejected != 7 || st.Inserted != 2 || st.Buckets != 2 {
		t.Errorf("stats %+v", st)
	}
	got := flat(a.FlushAll(nil))
	if len(got) != 2 || got[0].Timestamp != past-past%10 || got[1].Timestamp != future-future%10 {
		t.Errorf("got %+v", got)
	}
}

func TestDueTimes(t *testing.T) {
	const interval, delay = 10 * time.Second, 30 * time.Second
	clk := newClock(base + 3)
	a := newAgg(t, Options{BucketInterval: interval, InitialDelay: delay, Now: clk.Now})
	if _, ok := a.NextDue(); ok {
		t.Error("NextDue on an empty aggregator")
	}
	a.Insert(sc1, Source{}, []envelope.Bucket{counter("a", base+3, 1)})
	due, ok := a.NextDue()
	windowDue := time.Unix(base+10, 0).Add(delay)
	if !ok || due.Before(windowDue) || !due.Before(windowDue.Add(interval)) {
		t.Fatalf("NextDue = %v, %v; want in [%v, +%v)", due, ok, windowDue, interval)
	}
	jitter := due.Sub(windowDue)

	// The next window of the same scope has the same jitter; it does not
	// move the earliest due time.
	a.Insert(sc1, Source{}, []envelope.Bucket{counter("a", base+12, 1)})
	if d, _ := a.NextDue(); !d.Equal(due) {
		t.Errorf("NextDue = %v after a later window, want %v", d, due)
	}
	if got := a.Flush(due.Add(-time.Nanosecond), nil); len(got) != 0 {
		t.Errorf("flushed before due: %+v", got)
	}
	got := a.Flush(due, nil)
	if len(got) != 1 || got[0].Buckets[0].Timestamp != base || got[0].Buckets[0].Width != 10 {
		t.Fatalf("Flush at due = %+v", got)
	}
	due2, _ := a.NextDue()
	if want := windowDue.Add(interval + jitter); !due2.Equal(want) {
		t.Errorf("second window due %v, want %v", due2, want)
	}

	// The jitter depends only on the scope: stable across aggregators, and
	// spread across projects.
	seen := map[time.Duration]bool{}
	for p := range uint64(50) {
		b := newAgg(t, Options{Now: clk.Now})
		sc := Scope{ProjectID: p, PublicKey: fmt.Sprintf("key%d", p)}
		b.Insert(sc, Source{}, []envelope.Bucket{counter("a", base, 1)})
		d, _ := b.NextDue()
		j := d.Sub(windowDue)
		if j < 0 || j >= interval {
			t.Fatalf("jitter %v out of [0, %v)", j, interval)
		}
		seen[j] = true
		if p == 1 {
			b2 := newAgg(t, Options{Now: clk.Now})
			b2.Insert(sc, Source{}, []envelope.Bucket{counter("z", base+5, 1)})
			if d2, _ := b2.NextDue(); !d2.Equal(d) {
				t.Errorf("jitter not stable: %v vs %v", d2, d)
			}
		}
	}
	if len(seen) < 40 {
		t.Errorf("only %d distinct jitters for 50 projects", len(seen))
	}

	// Backdated data (its window's flush time has passed) is debounced by
	// one interval from its arrival, and later arrivals join that slot.
	clk.t = time.Unix(base+1000, 0)
	a.Insert(sc1, Source{}, []envelope.Bucket{counter("late", base+100, 1)})
	clk.t = clk.t.Add(3 * time.Second)
	a.Insert(sc1, Source{}, []envelope.Bucket{counter("late", base+105, 1)})
	if d, _ := a.NextDue(); !d.Equal(due2) {
		t.Errorf("NextDue = %v, want the pending window %v", d, due2)
	}
	a.Flush(due2, nil)
	if d, _ := a.NextDue(); !d.Equal(time.Unix(base+1000, 0).Add(interval)) {
		t.Errorf("backdated NextDue = %v, want arrival + interval", d)
	}
	got = a.Flush(time.Unix(base+1010, 0), nil)
	if len(got) != 1 || got[0].Buckets[0].Value.Counter != 2 || got[0].Buckets[0].Timestamp != base+100 {
		t.Errorf("backdated flush = %+v", got)
	}
	if _, ok := a.NextDue(); ok || a.Stats().Buckets != 0 || a.Stats().Bytes != 0 {
		t.Errorf("not empty after flushing everything: %+v", a.Stats())
	}
}

func TestPartitions(t *testing.T) {
	a := newAgg(t, Options{Partitions: 4, Now: newClock(base).Now})
	var bs []envelope.Bucket
	for i := range 200 {
		bs = append(bs, counter("m", base, 1, "i", fmt.Sprint(i)))
	}
	a.Insert(sc1, Source{}, bs)
	batches := a.FlushAll(nil)
	if len(batches) != 4 {
		t.Fatalf("%d batches, want 4", len(batches))
	}
	n := 0
	for i, b := range batches {
		if b.Partition != i || b.Scope != sc1 {
			t.Errorf("batch %d: scope %v partition %d", i, b.Scope, b.Partition)
		}
		for j := range b.Buckets {
			if p := int(b.Buckets[j].KeyHash() % 4); p != b.Partition {
				t.Errorf("bucket in partition %d has KeyHash%%4 = %d", b.Partition, p)
			}
			if j > 0 && string(appendKey(nil, &b.Buckets[j-1])) >= string(appendKey(nil, &b.Buckets[j])) {
				t.Errorf("batch %d not sorted at %d", i, j)
			}
		}
		n += len(b.Buckets)
	}
	if n != 200 {
		t.Errorf("%d buckets flushed, want 200", n)
	}
}

// randomLines returns n statsd lines over a small key space, with integer
// values so sums are exact in any order.
func randomLines(r *rand.Rand, n int) []string {
	types := []string{"c", "d", "s", "g"}
	lines := make([]string, n)
	for i := range lines {
		typ := types[r.IntN(len(types))]
		var vals []string
		for range 1 + r.IntN(3) {
			vals = append(vals, fmt.Sprint(r.IntN(100)-20))
		}
		if typ == "g" && r.IntN(2) == 0 {
			vals = vals[:1]
		} else if typ == "g" {
			lo, hi := r.IntN(10), 10+r.IntN(10)
			vals = []string{fmt.Sprint(lo), fmt.Sprint(lo), fmt.Sprint(hi), fmt.Sprint(lo + hi), fmt.Sprint(1 + r.IntN(5))}
		}
		var tags []string
		for k := range 2 {
			if v := r.IntN(3); v > 0 {
				tags = append(tags, fmt.Sprintf("t%d:v%d", k, v))
			}
		}
		line := fmt.Sprintf("transactions/m%d@millisecond:%s|%s", r.IntN(2), strings.Join(vals, ":"), typ)
		if len(tags) > 0 {
			line += "|#" + strings.Join(tags, ",")
		}
		lines[i] = line + fmt.Sprintf("|T%d", base-10+r.IntN(20))
	}
	return lines
}

// TestOrderIndependence is the property test: any order of the same
// buckets, in any split into Insert calls, flushes the same buckets (up to
// distribution value order and the gauge's last value, which are order
// dependent by definition).
func TestOrderIndependence(t *testing.T) {
	for seed := range uint64(20) {
		r := rand.New(rand.NewPCG(seed, 7))
		lines := randomLines(r, 1000)
		bs, errs := envelope.ParseStatsd(nil, []byte(strings.Join(lines, "\n")), time.Unix(base, 0))
		if len(errs) != 0 || len(bs) != len(lines) {
			t.Fatalf("seed %d: parse errors %v", seed, errs)
		}
		scopes := make([]Scope, len(bs)) // fixed per bucket across runs
		for i := range scopes {
			scopes[i] = Scope{ProjectID: uint64(r.IntN(2)), PublicKey: "k"}
		}
		run := func(order []int) string {
			a := newAgg(t, Options{Partitions: 3, Now: newClock(base).Now})
			for i := 0; i < len(order); {
				n := 1 + r.IntN(10)
				// Calls hold buckets of one scope: cut at a scope change.
				var chunk []envelope.Bucket
				sc := scopes[order[i]]
				for ; i < len(order) && n > 0 && scopes[order[i]] == sc; i, n = i+1, n-1 {
					chunk = append(chunk, bs[order[i]].Clone())
				}
				if rej := a.Insert(sc, Source{}, chunk); rej != 0 {
					t.Fatalf("seed %d: %d rejected", seed, rej)
				}
				clear(chunk) // the caller reuses its memory
			}
			if m := a.Stats().Merged; m < 500 {
				t.Fatalf("seed %d: only %d merges: the key space is too large to test merging", seed, m)
			}
			out := a.FlushAll(nil)
			for _, b := range out {
				for j := range b.Buckets {
					b.Buckets[j].Value.Gauge.Last = 0
				}
			}
			return render(out)
		}
		order := make([]int, len(bs))
		for i := range order {
			order[i] = i
		}
		want := run(order)
		for range 5 {
			r.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
			if got := run(order); got != want {
				t.Fatalf("seed %d: order changes the result\n got %s\nwant %s", seed, got, want)
			}
		}
	}
}

// TestBudget inserts many distinct keys under a small MaxBytes: memory stays
// in budget after each Insert+Flush, and every bucket comes out exactly once.
func TestBudget(t *testing.T) {
	const maxBytes = 32 << 10
	clk := newClock(base)
	a := newAgg(t, Options{MaxBytes: maxBytes, Now: clk.Now})
	r := rand.New(rand.NewPCG(1, 2))
	seen := map[string]int{}
	var total float64
	inserted := 0
	var maxEntry int64
	check := func(batches []Batch) {
		for _, b := range flat(batches) {
			k := fmt.Sprintf("%d %s %v", b.Timestamp, b.Name, b.Tags)
			seen[k]++
			total += b.Value.Counter
		}
	}
	for i := 0; i < 5000; {
		var bs []envelope.Bucket
		for n := 1 + r.IntN(20); n > 0 && i < 5000; n, i = n-1, i+1 {
			bs = append(bs, counter("m", base-int64(r.IntN(60)), 1, "id", fmt.Sprint(i), "pad", strings.Repeat("x", r.IntN(40))))
		}
		a.Insert(sc1, Source{Seq: uint64(i)}, bs)
		inserted += len(bs)
		for _, s := range a.due {
			for _, e := range s.order[s.head:] {
				maxEntry = max(maxEntry, e.size)
			}
		}
		if _, ok := a.NextDue(); !ok {
			t.Fatal("NextDue: nothing due while buckets are held")
		}
		check(a.Flush(clk.t, nil)) // nothing is due by time yet
		if st := a.Stats(); st.Bytes > maxBytes+maxEntry {
			t.Fatalf("after %d inserts: %d bytes > budget %d + one bucket %d", i, st.Bytes, maxBytes, maxEntry)
		}
	}
	st := a.Stats()
	if st.FlushedEarly == 0 || st.Flushed != st.FlushedEarly {
		t.Errorf("stats %+v: want early flushes only", st)
	}
	check(a.FlushAll(nil))
	if len(seen) != inserted || total != float64(inserted) {
		t.Errorf("%d distinct buckets out, counter total %v; want %d", len(seen), total, inserted)
	}
	for k, n := range seen {
		if n != 1 {
			t.Errorf("bucket %s flushed %d times", k, n)
		}
	}
	if st := a.Stats(); st.Buckets != 0 || st.Bytes != 0 || st.Flushed != uint64(inserted) {
		t.Errorf("after FlushAll: %+v", st)
	}
	if w, ok := a.Watermark(0); !ok || w != 5000 {
		t.Errorf("Watermark = %d, %v; want 5000", w, ok)
	}
}

// checkScopeBytes recomputes each scope's bytes from its open slots and
// compares them with the counter MaxScopeBytes is checked against.
func checkScopeBytes(t *testing.T, a *Aggregator) {
	t.Helper()
	for sc, ss := range a.scopes {
		var want int64
		for _, s := range ss.slots {
			want += slotOverhead
			for _, e := range s.order[s.head:] {
				want += e.size
			}
		}
		if ss.bytes != want {
			t.Fatalf("scope %v: bytes counter %d, held %d", sc, ss.bytes, want)
		}
	}
}

// TestScopeBudget: scope A floods distinct keys under a small MaxScopeBytes
// while scope B sends a few. A stays within its budget (plus one bucket)
// after each Insert, only A's buckets are flushed early, B's come out only
// when due, and every bucket comes out exactly once.
func TestScopeBudget(t *testing.T) {
	const maxScope = 4 << 10
	scA := Scope{ProjectID: 1, PublicKey: "aaaa"}
	scB := Scope{ProjectID: 2, PublicKey: "bbbb"}
	clk := newClock(base)
	a := newAgg(t, Options{MaxScopeBytes: maxScope, Now: clk.Now})
	r := rand.New(rand.NewPCG(3, 4))
	seen := map[string]int{}
	var total float64
	inserted := 0
	check := func(batches []Batch, early bool) {
		t.Helper()
		for _, batch := range batches {
			if early && batch.Scope != scA {
				t.Fatalf("scope %v flushed early", batch.Scope)
			}
			for _, b := range batch.Buckets {
				seen[fmt.Sprintf("%d %d %s %v", batch.Scope.ProjectID, b.Timestamp, b.Name, b.Tags)]++
				total += b.Value.Counter
			}
		}
	}
	for i := range 2000 {
		var bs []envelope.Bucket
		for n := 1 + r.IntN(10); n > 0; n-- {
			bs = append(bs, counter("m", base-int64(r.IntN(30)), 1, "id", fmt.Sprint(i, ".", n), "pad", strings.Repeat("x", r.IntN(40))))
		}
		a.Insert(scA, Source{Seq: uint64(i)}, bs)
		inserted += len(bs)
		var maxEntry int64
		for _, s := range a.scopes[scA].slots {
			for _, e := range s.order[s.head:] {
				maxEntry = max(maxEntry, e.size)
			}
		}
		if got := a.scopes[scA].bytes; got > maxScope+maxEntry {
			t.Fatalf("after insert %d: scope A holds %d bytes > budget %d + one bucket %d", i, got, maxScope, maxEntry)
		}
		if i%50 == 0 { // B: a few keys, merged into again and again
			a.Insert(scB, Source{Seq: uint64(i)}, []envelope.Bucket{counter("b", base, 1, "k", fmt.Sprint(i%300))})
			inserted++
		}
		checkScopeBytes(t, a)
		check(a.Flush(clk.t, nil), true) // nothing is due by time yet
	}
	st := a.Stats()
	if st.FlushedEarlyScope == 0 || st.FlushedEarly != 0 || st.Flushed != st.FlushedEarlyScope {
		t.Errorf("stats %+v: want early flushes by the scope budget only", st)
	}
	if n := len(a.scopes[scB].slots); n != 1 || a.scopes[scB].bytes > maxScope {
		t.Errorf("scope B: %d slots, %d bytes; want its one slot held", n, a.scopes[scB].bytes)
	}
	bDue := time.Unix(0, a.scopes[scB].slots[base].due)
	check(a.Flush(bDue.Add(-1), nil), true) // B's slot is not due yet
	bOut := false
	for _, batch := range a.Flush(bDue, nil) {
		bOut = bOut || batch.Scope == scB
		check([]Batch{batch}, false)
	}
	if !bOut {
		t.Errorf("scope B not flushed at its due time %v", bDue)
	}
	check(a.FlushAll(nil), false)
	if st := a.Stats(); st.Buckets != 0 || st.Bytes != 0 || len(a.scopes) != 0 {
		t.Errorf("after the last Flush: %+v, %d scopes", st, len(a.scopes))
	}
	if total != float64(inserted) {
		t.Errorf("counter total %v; want %d", total, inserted)
	}
	for k, n := range seen {
		if n != 1 {
			t.Errorf("bucket %s flushed %d times", k, n)
		}
	}
	if w, ok := a.Watermark(0); !ok || w != 1999 {
		t.Errorf("Watermark = %d, %v; want 1999", w, ok)
	}
}

// TestScopeBudgetSplitsBucket: under the per-scope budget, a key made due
// early and then inserted again starts a new bucket, as under MaxBytes, and
// another scope is untouched.
func TestScopeBudgetSplitsBucket(t *testing.T) {
	a := newAgg(t, Options{MaxScopeBytes: 1, Now: newClock(base).Now})
	sc2 := Scope{ProjectID: 2}
	for range 3 {
		a.Insert(sc1, Source{}, []envelope.Bucket{counter("m", base, 1)})
	}
	got := a.Flush(time.Unix(base, 0), nil)
	if len(got) != 1 || got[0].Scope != sc1 || len(got[0].Buckets) != 3 || a.Stats().FlushedEarlyScope != 3 {
		t.Errorf("got %+v, stats %+v", got, a.Stats())
	}
	// With MaxScopeBytes 0 nothing is forced out of a scope.
	a = newAgg(t, Options{Now: newClock(base).Now})
	for i := range 100 {
		a.Insert(sc2, Source{}, []envelope.Bucket{counter("m", base, 1, "i", fmt.Sprint(i))})
	}
	if got := a.Flush(time.Unix(base, 0), nil); len(got) != 0 || a.Stats().FlushedEarlyScope != 0 {
		t.Errorf("MaxScopeBytes 0: got %+v, stats %+v", got, a.Stats())
	}
}

// TestBudgetSplitsBucket: a key made due early and then inserted again
// starts a new bucket; the counts add up.
func TestBudgetSplitsBucket(t *testing.T) {
	a := newAgg(t, Options{MaxBytes: 1, Now: newClock(base).Now})
	for range 3 {
		a.Insert(sc1, Source{}, []envelope.Bucket{counter("m", base, 1)})
	}
	if d, ok := a.NextDue(); !ok || !d.Equal(time.Unix(base, 0)) {
		t.Errorf("NextDue = %v, %v; want now, as buckets were made due early", d, ok)
	}
	got := flat(a.Flush(time.Unix(base, 0), nil))
	if len(got) != 3 || a.Stats().FlushedEarly != 3 {
		t.Errorf("got %+v, stats %+v", got, a.Stats())
	}
}

// TestConcurrentUse runs Stats, NextDue and Watermark beside the owner; run
// with -race.
func TestConcurrentUse(t *testing.T) {
	a := newAgg(t, Options{MaxBytes: 4096, Now: newClock(base).Now})
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
				a.Stats()
				a.NextDue()
				a.Watermark(0)
			}
		}
	})
	for i := range 2000 {
		a.Insert(sc1, Source{Seq: uint64(i)}, []envelope.Bucket{counter("m", base, 1, "i", fmt.Sprint(i%300))})
		if i%100 == 0 {
			a.Flush(time.Unix(base, 0), nil)
		}
	}
	close(stop)
	wg.Wait()
	a.FlushAll(nil)
}

// TestFullUntilWritten: buckets made due early by the scope budget count
// against MaxBytes while they wait for Flush and, once returned, until
// Written; Full says when the total is past MaxBytes.
func TestFullUntilWritten(t *testing.T) {
	const maxBytes = 16 << 10
	a := newAgg(t, Options{MaxBytes: maxBytes, MaxScopeBytes: maxBytes / 4, Now: newClock(base).Now})
	for i := 0; !a.Full(); i++ {
		if i == 1000 {
			t.Fatalf("never Full: %+v", a.Stats())
		}
		a.Insert(sc1, Source{}, []envelope.Bucket{counter("m", base, 1, "i", fmt.Sprint(i))})
	}
	st := a.Stats()
	if st.Bytes <= maxBytes || st.Bytes > maxBytes+1024 || st.FlushedEarlyScope == 0 {
		t.Fatalf("Full at %+v", st)
	}
	got := a.Flush(time.Unix(base, 0), nil)
	if len(got) == 0 || !a.Full() || a.Stats().Writing == 0 || a.Stats().Bytes+a.Stats().Writing != st.Bytes {
		t.Fatalf("after Flush: %d batches, Full %v, %+v", len(got), a.Full(), a.Stats())
	}
	a.Written()
	if a.Full() || a.Stats().Writing != 0 || a.Stats().Bytes > maxBytes/4+1024 {
		t.Fatalf("after Written: Full %v, %+v", a.Full(), a.Stats())
	}
}
