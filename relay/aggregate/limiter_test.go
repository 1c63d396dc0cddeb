package aggregate

import (
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/baton-relay/baton/envelope"
)

// TestLimiterFlood: 1M distinct tag values of one metric against a limit of
// 1000 admit exactly 1000, remember only those, and keep admitting them.
func TestLimiterFlood(t *testing.T) {
	clk := newClock(base)
	l := NewLimiter(LimitOptions{Limit: 1000, Now: clk.Now})
	b := counter("flood", base, 1, "v", "")
	var admitted []uint64
	const n = 1_000_000
	for i := range n {
		b.Tags[0].Value = strconv.Itoa(i)
		h := b.KeyHash()
		if admit(l, 42, Namespace(b.Name), h) {
			admitted = append(admitted, h)
		}
	}
	st := l.Stats()
	if len(admitted) != 1000 || st.Admitted != 1000 || st.Limited != n-1000 || st.Scopes != 1 {
		t.Fatalf("admitted %d, stats %+v", len(admitted), st)
	}
	// One scope of 1000 hashes: a 2048-slot table (16 KiB) plus overhead.
	if st.Bytes > 17_000 {
		t.Errorf("Bytes = %d, want ≤ 17000 for 1000 admitted hashes", st.Bytes)
	}
	for _, h := range admitted {
		if !admit(l, 42, "custom", h) {
			t.Fatalf("admitted hash %x refused later", h)
		}
	}
	if admit(l, 42, "custom", 12345) {
		t.Error("a new hash was admitted over the limit")
	}
	// Other scopes are unaffected.
	if !admit(l, 42, "transactions", admitted[0]^1) || !admit(l, 43, "custom", 1) {
		t.Error("another scope was limited")
	}
}

func TestLimiterWindow(t *testing.T) {
	clk := newClock(7200) // start of an hour window
	l := NewLimiter(LimitOptions{Limit: 2, Now: clk.Now})
	admit := func(h uint64, want bool) {
		t.Helper()
		if got := admit(l, 1, "custom", h); got != want {
			t.Errorf("Admit(%d) at %v = %v, want %v", h, clk.t.Unix(), got, want)
		}
	}
	admit(1, true)
	admit(0, true) // zero is a valid hash
	admit(3, false)
	admit(0, true)
	clk.t = clk.t.Add(time.Hour - time.Second)
	admit(3, false) // same fixed window
	clk.t = clk.t.Add(time.Second)
	admit(3, true) // new window: the set starts empty
	admit(4, true)
	admit(1, false)
	admit(0, false)
	if b := l.Stats().Bytes; b > 2*limitScopeOverhead+16*8 {
		t.Errorf("Bytes = %d after a rollover", b)
	}
}

func TestLimiterMaxScopes(t *testing.T) {
	clk := newClock(base)
	l := NewLimiter(LimitOptions{Limit: 1, MaxScopes: 3, Now: clk.Now})
	for p := range uint64(3) {
		admit(l, p, "custom", 100+p)
	}
	admit(l, 0, "custom", 100) // touch project 0: project 1 is now the oldest
	admit(l, 3, "custom", 103) // evicts project 1
	st := l.Stats()
	if st.Scopes != 3 || st.Evicted != 1 {
		t.Fatalf("stats %+v", st)
	}
	if admit(l, 0, "custom", 999) || admit(l, 2, "custom", 999) {
		t.Error("a kept scope forgot its admissions")
	}
	if !admit(l, 1, "custom", 999) { // evicts project 3 in turn
		t.Error("the evicted scope still remembers its admissions")
	}
	if st := l.Stats(); st.Scopes != 3 || st.Evicted != 2 {
		t.Errorf("stats %+v", st)
	}

	// Bounded memory over many scopes.
	l = NewLimiter(LimitOptions{Limit: 100, MaxScopes: 50, Now: clk.Now})
	for p := range uint64(10_000) {
		for h := range uint64(150) {
			admit(l, p, "custom", h+1)
		}
	}
	st = l.Stats()
	perScope := limitScopeOverhead + int64(len("custom")) + 256*8 // 100 hashes fit 256 slots
	if st.Scopes != 50 || st.Bytes != 50*perScope {
		t.Errorf("stats %+v, want 50 scopes of %d bytes", st, perScope)
	}
}

func TestLimiterUnlimited(t *testing.T) {
	l := NewLimiter(LimitOptions{})
	for h := range uint64(10_000) {
		if !admit(l, 1, "custom", h) {
			t.Fatal("unlimited limiter refused")
		}
	}
	if st := l.Stats(); st.Admitted != 10_000 || st.Bytes != 0 || st.Scopes != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestLimiterConcurrent(t *testing.T) {
	l := NewLimiter(LimitOptions{Limit: 500})
	var wg sync.WaitGroup
	for g := range uint64(8) {
		wg.Go(func() {
			for h := range uint64(1000) {
				admit(l, g%2, "custom", h*8+g)
			}
		})
	}
	wg.Wait()
	if st := l.Stats(); st.Admitted != 1000 || st.Limited != 7000 {
		t.Errorf("stats %+v", st)
	}
}

func TestNamespace(t *testing.T) {
	for mri, want := range map[string]string{
		"d:transactions/duration@millisecond": "transactions",
		"c:custom/a/b@none":                   "custom",
		"s:sessions/user@none":                "sessions",
		"c:hits@none":                         "custom",
		"spans/exclusive_time":                "spans",
		"c:x@odd/unit":                        "custom",
		"":                                    "custom",
	} {
		if got := Namespace(mri); got != want {
			t.Errorf("Namespace(%q) = %q, want %q", mri, got, want)
		}
	}
	// Statsd names parse to MRIs Namespace understands.
	bs, _ := envelope.ParseStatsd(nil, []byte("foo:1|c\ntransactions/bar:1|d\nweird/baz:1|s"), time.Unix(base, 0))
	for i, want := range []string{"custom", "transactions", "unsupported"} {
		if got := Namespace(bs[i].Name); got != want {
			t.Errorf("Namespace(%q) = %q, want %q", bs[i].Name, got, want)
		}
	}
}
