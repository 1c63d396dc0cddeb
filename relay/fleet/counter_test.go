package fleet

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/baton-relay/baton/relay/internal/testutil"
)

// slowMaxWait is the MaxWait of the tests that stop or kill Redis: long
// enough for a first call (dial, script load) on a loaded machine under
// the race detector, and a batch against a dead Redis must end within 8×
// it, far below the client's 5 s read timeout that would apply without
// MaxWait.
const slowMaxWait = 250 * time.Millisecond

// patientMaxWait is the MaxWait of the tests that count exactly with Redis
// up: a lease slower than the 50 ms default on a loaded machine (CI runs
// the race detector beside the plain run) would fall back to local
// counting and the exact count would be off.
const patientMaxWait = 5 * time.Second

func open(t *testing.T, o Options) *Counter {
	t.Helper()
	c, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestCounterGlobalLimit: three Counters on one Redis, driven concurrently,
// admit exactly the limit between them, mostly from leases. Each driver
// adds until its Counter refuses: a Counter refuses only once its lease is
// spent and Redis has none left, so no lease is left over. (A fixed number
// of adds per driver let a Counter that got ahead keep part of a lease it
// had no adds left to spend, and the count came short of the limit: CI saw
// 293.)
func TestCounterGlobalLimit(t *testing.T) {
	rs := testutil.StartRedis(t)
	var cs [3]*Counter
	for i := range cs {
		cs[i] = open(t, Options{Addresses: []string{rs.Addr}, MaxWait: patientMaxWait})
	}
	now := time.Now().Unix()
	var admitted atomic.Int64
	var wg sync.WaitGroup
	for i := range 6 {
		c := cs[i%3]
		wg.Go(func() {
			for range 1000 { // a bound, should refusal never come
				if c.Add([]byte("q\x00p42"), 300, 60, 1, now) {
					return
				}
				admitted.Add(1)
			}
		})
	}
	wg.Wait()
	if got := admitted.Load(); got != 300 {
		t.Fatalf("admitted %d, want exactly the limit, 300", got)
	}
	var leases int64
	for _, c := range cs {
		st := c.Stats()
		if !st.Up || st.Fallbacks != 0 {
			t.Fatalf("stats %+v: want up, no fallback", st)
		}
		leases += st.Leases
	}
	// Leases of 300/32 = 9: about 34 round trips for 300 decisions.
	if leases < 300/9 || leases > 300/9+6 {
		t.Errorf("%d leases for 300 admitted, want about %d", leases, 300/9)
	}
	// A decision in a full window costs no round trip.
	before := cs[0].Stats().Leases
	if !cs[0].Add([]byte("q\x00p42"), 300, 60, 1, now) {
		t.Fatal("admitted past the limit")
	}
	if cs[0].Stats().Leases != before {
		t.Error("a refusal took a lease")
	}
}

// TestCounterFallback: with Redis killed, decisions are local within
// limit/FallbackShare and never wait more than MaxWait; once Redis is back
// the probe finds it and what was admitted meanwhile is added to Redis.
func TestCounterFallback(t *testing.T) {
	rs := testutil.StartRedis(t)
	c := open(t, Options{Addresses: []string{rs.Addr}, FallbackShare: 2, ProbeInterval: 20 * time.Millisecond, MaxWait: slowMaxWait})
	key := []byte("q\x00p7")
	now := time.Now().Unix()
	for range 10 {
		if c.Add(key, 100, 3600, 1, now) {
			t.Fatal("refused under the limit")
		}
	}
	rs.Kill()
	admitted := 10
	for range 100 {
		start := time.Now()
		if !c.Add(key, 100, 3600, 1, now) {
			admitted++
		}
		if d := time.Since(start); d > 8*slowMaxWait {
			t.Fatalf("a decision waited %v with Redis down", d)
		}
	}
	// 10 counted in Redis, a lease of 3 in hand; 100/2 in all here.
	if admitted != 50 {
		t.Fatalf("admitted %d in fallback, want 50 (limit 100 / share 2)", admitted)
	}
	st := c.Stats()
	if st.Up || st.Fallbacks == 0 || st.LastError == "" {
		t.Fatalf("stats %+v: want down, fallbacks, an error", st)
	}
	rs.Start(t)
	deadline := time.Now().Add(5 * time.Second)
	for !c.Stats().Up {
		if time.Now().After(deadline) {
			t.Fatal("the probe did not find Redis again")
		}
		time.Sleep(5 * time.Millisecond) // polling an observable condition, with a deadline
	}
	leases := c.Stats().Leases
	if c.Add(key, 100, 3600, 1, now) {
		t.Fatal("refused after recovery")
	}
	if c.Stats().Leases != leases+1 {
		t.Fatal("no lease after recovery")
	}
	// Redis lost the first 12 with its restart (no persistence); the 38
	// admitted locally are in it now, with the new lease.
	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr, DisableIdentity: true})
	defer rdb.Close()
	n, err := rdb.Get(context.Background(), c.redisKey(0, now/3600, key)).Int64()
	if err != nil {
		t.Fatal(err)
	}
	if n != 38+3 {
		t.Errorf("redis counts %d, want 41 (38 unsynced + a lease of 3)", n)
	}
}

// BenchmarkCounterAdd is one quota decision through the Redis counter:
// a lease of 256 (limit/32, clamped) every 256 decisions, the rest local.
func BenchmarkCounterAdd(b *testing.B) {
	rs := testutil.StartRedis(b)
	c, err := Open(Options{Addresses: []string{rs.Addr}})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	key := []byte("bench\x00p1")
	now := time.Now().Unix()
	b.ReportAllocs()
	for b.Loop() {
		if c.Add(key, 1<<40, 3600, 1, now) {
			b.Fatal("over")
		}
	}
}

// TestCounterBounded: past MaxKeys a new window is not counted (as the
// local counters), and windows that ended are let go.
func TestCounterBounded(t *testing.T) {
	rs := testutil.StartRedis(t)
	c := open(t, Options{Addresses: []string{rs.Addr}, MaxKeys: 4, MaxWait: patientMaxWait})
	now := time.Now().Unix()
	for i := range 4 {
		if c.Add([]byte{'k', byte(i)}, 1, 10, 1, now) || !c.Add([]byte{'k', byte(i)}, 1, 10, 1, now) {
			t.Fatalf("key %d: want the first admitted, the second over", i)
		}
	}
	leases := c.Stats().Leases
	for range 3 {
		if c.Add([]byte("k5"), 1, 10, 1, now) {
			t.Fatal("a window past the bound was counted")
		}
	}
	if st := c.Stats(); st.Windows != 4 || st.Leases != leases {
		t.Fatalf("stats %+v: want 4 windows, no lease for the fifth key", st)
	}
	// Once the windows ended, the fifth key is counted.
	later := now + 10
	if c.Add([]byte("k5"), 1, 10, 1, later) || !c.Add([]byte("k5"), 1, 10, 1, later) {
		t.Fatal("fifth key after the sweep: want the first admitted, the second over")
	}
	if st := c.Stats(); st.Windows != 1 {
		t.Fatalf("%d windows after the sweep, want 1", st.Windows)
	}
}

// evalCalls is how many script calls (EVALSHA, EVAL) the server ran.
func evalCalls(t *testing.T, rdb *redis.Client) int {
	t.Helper()
	info, err := rdb.Info(context.Background(), "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, cmd := range []string{"cmdstat_evalsha:calls=", "cmdstat_eval:calls="} {
		if i := strings.Index(info, cmd); i >= 0 {
			v, _, _ := strings.Cut(info[i+len(cmd):], ",")
			c, err := strconv.Atoi(v)
			if err != nil {
				t.Fatal(err)
			}
			n += c
		}
	}
	return n
}

// TestCountChecksFirst: as Relay's script, a group is counted in its
// windows only when every quota admits it. A project quota beside a key
// quota that refuses is not charged for the refused items (in Redis or in
// its lease); the groups of one decision see each other in order; and a
// decision short of lease in several windows takes one round trip.
func TestCountChecksFirst(t *testing.T) {
	rs := testutil.StartRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr, DisableIdentity: true})
	defer rdb.Close()
	c := open(t, Options{Addresses: []string{rs.Addr}, MaxWait: patientMaxWait})
	now := time.Now().Unix()
	// Limits under 32 lease one item at a time: Redis counts exactly
	// what is admitted.
	charges := func(key string) []Charge {
		return []Charge{
			{Key: []byte("proj\x00p1"), Org: 5, Limit: 10, Window: 60, N: 1},
			{Key: []byte("key\x00k" + key), Org: 5, Limit: 1, Window: 60, N: 1},
		}
	}
	c.Add([]byte("warm"), 1, 60, 1, now) // loads the script
	calls := evalCalls(t, rdb)
	admitted := 0
	for range 5 {
		cs := charges("a")
		if c.Count(cs, now); !cs[0].Over && !cs[1].Over {
			admitted++
		} else if cs[0].Over || !cs[1].Over {
			t.Fatalf("over %v %v, want the key quota alone", cs[0].Over, cs[1].Over)
		}
	}
	if admitted != 1 {
		t.Fatalf("%d of 5 admitted, want the key quota's 1", admitted)
	}
	// One round trip for the first, both windows short of lease; then
	// the key quota is known spent and refuses with no round trip.
	if n := evalCalls(t, rdb) - calls; n != 1 {
		t.Errorf("%d script calls for 5 decisions, want 1", n)
	}
	for i := range 12 {
		cs := charges(strconv.Itoa(i))
		if c.Count(cs, now); !cs[0].Over && !cs[1].Over {
			admitted++
		}
	}
	if admitted != 10 {
		t.Fatalf("%d admitted in all, want the project quota's 10", admitted)
	}
	if n, err := rdb.Get(context.Background(), c.redisKey(5, (now-5)/60, []byte("proj\x00p1"))).Int64(); err != nil || n != 10 {
		t.Fatalf("redis counts %d (%v) for the project quota, want 10", n, err)
	}

	// One quota over two groups: the first fits, the second would not
	// and takes nothing; a later, smaller one fits.
	all := func(n1, n2 int64) []Charge {
		return []Charge{
			{Key: []byte("all\x00p2"), Org: 5, Limit: 3, Window: 60, N: n1, Group: 1},
			{Key: []byte("all\x00p2"), Org: 5, Limit: 3, Window: 60, N: n2, Group: 2},
		}
	}
	cs := all(1, 3)
	if c.Count(cs, now); cs[0].Over || !cs[1].Over {
		t.Fatalf("over %v %v, want the second group alone", cs[0].Over, cs[1].Over)
	}
	cs = all(1, 1)
	if c.Count(cs, now); cs[0].Over || cs[1].Over {
		t.Fatalf("over %v %v, want both admitted (3 of 3)", cs[0].Over, cs[1].Over)
	}
	if st := c.Stats(); !st.Up || st.Fallbacks != 0 {
		t.Fatalf("stats %+v: want up, no fallback", st)
	}
}

// TestCountShifted: as Relay, an organization's windows start at its id
// modulo the window, a global quota's (org 0) at multiples of it; the
// Redis key names the shifted slot.
func TestCountShifted(t *testing.T) {
	rs := testutil.StartRedis(t)
	c := open(t, Options{Addresses: []string{rs.Addr}, MaxWait: patientMaxWait})
	const minute = 1_800_000_000 // a multiple of 60
	add := func(key string, org uint64, now int64) bool {
		cs := []Charge{{Key: []byte(key), Org: org, Limit: 1, Window: 60, N: 1}}
		c.Count(cs, now)
		return !cs[0].Over
	}
	if !add("o", 5, minute+4) || add("o", 5, minute+4) {
		t.Fatal("want one admitted, then refused")
	}
	if !add("o", 5, minute+5) {
		t.Fatal("refused at second 5: organization 5's window starts there")
	}
	if !add("g", 0, minute-1) || !add("g", 0, minute) {
		t.Fatal("a global quota's window does not start at the minute")
	}
	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr, DisableIdentity: true})
	defer rdb.Close()
	if n, err := rdb.Exists(context.Background(), c.redisKey(5, minute/60-1, []byte("o")), c.redisKey(5, minute/60, []byte("o"))).Result(); err != nil || n != 2 {
		t.Fatalf("%d (%v) of the two shifted windows' keys in redis, want 2", n, err)
	}
}

// TestCountReservesDuringCall: while a decision waits on a lease for one
// window, the other windows of its envelope are reserved, not locked: a
// decision on one of them (an organization's window every envelope
// shares) answers from its lease without waiting for that round trip.
func TestCountReservesDuringCall(t *testing.T) {
	rs := testutil.StartRedis(t)
	const maxWait = 3 * time.Second
	c := open(t, Options{Addresses: []string{rs.Addr}, MaxWait: maxWait})
	now := time.Now().Unix()
	org := Charge{Key: []byte("org\x00o1"), Org: 1, Limit: 3200, Window: 3600, N: 1} // leases of 100
	one := func(chs ...Charge) bool {
		cs := append([]Charge(nil), chs...)
		c.Count(cs, now)
		return !slices.ContainsFunc(cs, func(ch Charge) bool { return ch.Over })
	}
	if !one(org) {
		t.Fatal("refused with Redis up")
	}
	left := func() int64 {
		c.mu.Lock()
		w := c.m[string(org.Key)]
		c.mu.Unlock()
		w.mu.Lock()
		defer w.mu.Unlock()
		return w.left
	}
	before := left()
	if err := syscall.Kill(rs.Pid(), syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	defer syscall.Kill(rs.Pid(), syscall.SIGCONT)
	done := make(chan bool)
	go func() {
		done <- one(org, Charge{Key: []byte("key\x00k1"), Org: 1, Limit: 320, Window: 3600, N: 1})
	}()
	// The hung call holds the key's window; the organization's share is
	// reserved (its lease one lower) and its lock let go.
	deadline := time.Now().Add(maxWait)
	for left() != before-1 {
		if time.Now().After(deadline) {
			t.Fatal("the organization's window was not reserved while the call hung")
		}
		runtime.Gosched()
	}
	start := time.Now()
	if !one(org) {
		t.Fatal("refused from the lease")
	}
	if d := time.Since(start); d > maxWait/3 {
		t.Errorf("a decision on the reserved window took %v: it waited on the other window's call", d)
	}
	if err := syscall.Kill(rs.Pid(), syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	<-done
}

// BenchmarkCountEnvelope is one envelope's decision as ingest makes it
// with a real project's quotas: its key's (320: leases of 10, over 1000
// keys, so under 320,000 decisions never spend one), its project's and its
// organization's (10^9: leases of 256). Sequential: ns/op is mostly the
// round trip every ~10 decisions.
func BenchmarkCountEnvelope(b *testing.B) {
	rs := testutil.StartRedis(b)
	c, err := Open(Options{Addresses: []string{rs.Addr}, MaxWait: time.Second})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	keys := make([][]byte, 1000)
	for i := range keys {
		keys[i] = fmt.Appendf(nil, "key\x00k%032x", i)
	}
	now := time.Now().Unix()
	cs := make([]Charge, 3)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		cs[0] = Charge{Key: []byte("proj\x00p1"), Org: 1, Limit: 1e9, Window: 3600, N: 1}
		cs[1] = Charge{Key: keys[i%len(keys)], Org: 1, Limit: 320, Window: 3600, N: 1}
		cs[2] = Charge{Key: []byte("org\x00o1"), Org: 1, Limit: 1e9, Window: 3600, N: 1}
		c.Count(cs, now)
		if cs[0].Over || cs[1].Over || cs[2].Over {
			b.Fatal("over")
		}
	}
}

// TestCountSweptBetweenLookupAndLock: the sweep can run between a
// decision's lookup of its windows and its locks. A window not started yet
// (created by that lookup) is not let go, and one that ended and was let
// go is looked up again: what the decision counts is in the windows the
// Counter holds, not in orphans.
func TestCountSweptBetweenLookupAndLock(t *testing.T) {
	rs := testutil.StartRedis(t)
	c := open(t, Options{Addresses: []string{rs.Addr}, MaxWait: patientMaxWait})
	const now = 1_800_000_000
	ended, fresh := []byte("ended"), []byte("fresh")
	if c.Add(ended, 100, 10, 1, now) {
		t.Fatal("refused")
	}
	later := int64(now + 20) // the window of ended is over; no sweep due yet
	swept := 0
	testAfterLookup = func() {
		if swept++; swept == 1 {
			c.mu.Lock()
			c.sweep(later)
			c.mu.Unlock()
		}
	}
	defer func() { testAfterLookup = nil }()
	cs := []Charge{{Key: ended, Limit: 100, Window: 10, N: 1}, {Key: fresh, Limit: 100, Window: 10, N: 1}}
	c.Count(cs, later)
	if cs[0].Over || cs[1].Over {
		t.Fatal("refused")
	}
	if swept != 2 {
		t.Errorf("%d lookups, want 2 (the swept window looked up again)", swept)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, k := range [][]byte{ended, fresh} {
		w := c.m[string(k)]
		if w == nil {
			t.Fatalf("window %q not held: its count went to an orphan", k)
		}
		if w.used != 1 || w.slot != later/10 {
			t.Errorf("window %q: used %d in slot %d, want 1 in %d", k, w.used, w.slot, later/10)
		}
	}
}

// crc16 is Redis Cluster's key hash (CRC16-CCITT, XMODEM).
func crc16(s string) uint16 {
	var crc uint16
	for i := 0; i < len(s); i++ {
		crc ^= uint16(s[i]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}

// TestCountNoScriptOnOneNode: in a Cluster an envelope's windows of two
// hash tags are two script calls in one pipeline, on two nodes. When one
// node answers NOSCRIPT (restarted: its script cache is empty) and the
// other runs its call, only the first is run again (with EVAL): running
// both again charged the second node's window twice. The "cluster" is two
// standalone servers, half the slots each (go-redis's ClusterSlots).
func TestCountNoScriptOnOneNode(t *testing.T) {
	a, b := testutil.StartRedis(t), testutil.StartRedis(t)
	c := open(t, Options{Addresses: []string{a.Addr}, MaxWait: patientMaxWait})
	c.rdb.Close()
	c.opts.Cluster = true
	c.rdb = redis.NewClusterClient(&redis.ClusterOptions{
		ClusterSlots: func(context.Context) ([]redis.ClusterSlot, error) {
			return []redis.ClusterSlot{
				{Start: 0, End: 8191, Nodes: []redis.ClusterNode{{Addr: a.Addr}}},
				{Start: 8192, End: 16383, Nodes: []redis.ClusterNode{{Addr: b.Addr}}},
			}, nil
		},
		MaxRetries: -1, DisableIdentity: true, PipelinePoolSize: -1,
	})
	// Two organizations whose hash tags are on a and on b.
	var orgs [2]uint64
	for org, found := uint64(1), 0; found != 3; org++ {
		n := 0
		if crc16(strconv.FormatUint(org, 10))%16384 >= 8192 {
			n = 1
		}
		if found&(1<<n) == 0 {
			orgs[n], found = org, found|1<<n
		}
	}
	ra := redis.NewClient(&redis.Options{Addr: a.Addr, DisableIdentity: true})
	defer ra.Close()
	rb := redis.NewClient(&redis.Options{Addr: b.Addr, DisableIdentity: true})
	defer rb.Close()
	ctx := context.Background()
	for _, r := range []*redis.Client{ra, rb} {
		if err := leaseScript.Load(ctx, r).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if err := rb.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	now := time.Now().Unix()
	cs := []Charge{
		{Key: []byte("q\x00o"), Org: orgs[0], Limit: 320, Window: 3600, N: 1}, // leases of 10
		{Key: []byte("q\x00p"), Org: orgs[1], Limit: 320, Window: 3600, N: 1, Group: 1},
	}
	c.Count(cs, now)
	if cs[0].Over || cs[1].Over {
		t.Fatal("refused")
	}
	if st := c.Stats(); st.Fallbacks != 0 || st.Leases != 2 {
		t.Fatalf("stats %+v: want two leases, no fallback", st)
	}
	for n, r := range []*redis.Client{ra, rb} {
		slot, _ := windowSlot(orgs[n], 3600, now)
		got, err := r.Get(ctx, c.redisKey(orgs[n], slot, cs[n].Key)).Int64()
		if err != nil || got != 10 {
			t.Errorf("node %d counts %d (%v) for its window, want one lease of 10", n, got, err)
		}
	}
	// Both windows under half a lease: refilled in the background, a
	// call per node.
	for range 5 {
		if c.Count(cs, now); cs[0].Over || cs[1].Over {
			t.Fatal("refused")
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for leftOf(c, cs[0].Key) != 14 || leftOf(c, cs[1].Key) != 14 {
		if time.Now().After(deadline) {
			t.Fatalf("lease left %d and %d, want 14 each (4 and a prefetched lease of 10)", leftOf(c, cs[0].Key), leftOf(c, cs[1].Key))
		}
		time.Sleep(time.Millisecond) // polling the refill, with a deadline
	}
	for n, r := range []*redis.Client{ra, rb} {
		slot, _ := windowSlot(orgs[n], 3600, now)
		if got, err := r.Get(ctx, c.redisKey(orgs[n], slot, cs[n].Key)).Int64(); err != nil || got != 20 {
			t.Errorf("node %d counts %d (%v) for its window, want two leases of 10", n, got, err)
		}
	}
}

// leftOf is the lease left in key's window.
func leftOf(c *Counter, key []byte) int64 {
	c.mu.Lock()
	w := c.m[string(key)]
	c.mu.Unlock()
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.left
}

// TestCountPrefetch: a window whose lease falls under half a lease is
// refilled in the background, so the decisions after it take no round
// trip; Redis counts the lease taken ahead.
func TestCountPrefetch(t *testing.T) {
	rs := testutil.StartRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr, DisableIdentity: true})
	defer rdb.Close()
	c := open(t, Options{Addresses: []string{rs.Addr}, MaxWait: patientMaxWait})
	key := []byte("q\x00k1")
	now := time.Now().Unix()
	add := func() {
		t.Helper()
		if c.Add(key, 320, 3600, 1, now) { // leases of 10
			t.Fatal("refused")
		}
	}
	add()
	calls := evalCalls(t, rdb)
	for range 5 {
		add() // 4 left: under half a lease
	}
	deadline := time.Now().Add(5 * time.Second)
	for leftOf(c, key) != 14 {
		if time.Now().After(deadline) {
			t.Fatalf("lease left %d, want 14 (4 and a prefetched lease of 10)", leftOf(c, key))
		}
		time.Sleep(time.Millisecond) // polling the refill, with a deadline
	}
	if n := evalCalls(t, rdb) - calls; n != 1 {
		t.Errorf("%d script calls, want the prefetch's 1", n)
	}
	for range 9 {
		add() // 5 left: no refill yet
	}
	if n, err := rdb.Get(context.Background(), c.redisKey(0, now/3600, key)).Int64(); err != nil || n != 20 {
		t.Errorf("redis counts %d (%v), want two leases of 10", n, err)
	}
	if st := c.Stats(); st.Leases != 2 || st.Fallbacks != 0 {
		t.Errorf("stats %+v: want 2 leases, no fallback", st)
	}
}

// TestCountWaitsForRefill: a decision short of lease on a window whose
// refill is in flight waits for it, within MaxWait; with Redis hung it
// then decides locally.
func TestCountWaitsForRefill(t *testing.T) {
	rs := testutil.StartRedis(t)
	c := open(t, Options{Addresses: []string{rs.Addr}, MaxWait: slowMaxWait, ProbeInterval: time.Hour})
	key := []byte("q\x00k1")
	now := time.Now().Unix()
	if c.Add(key, 320, 3600, 1, now) {
		t.Fatal("refused")
	}
	if err := syscall.Kill(rs.Pid(), syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	defer syscall.Kill(rs.Pid(), syscall.SIGCONT)
	for range 9 {
		if c.Add(key, 320, 3600, 1, now) { // the lease; a refill hangs
			t.Fatal("refused from the lease")
		}
	}
	start := time.Now()
	if c.Add(key, 320, 3600, 1, now) {
		t.Fatal("refused: want the fallback's share")
	}
	if d := time.Since(start); d > 4*slowMaxWait {
		t.Errorf("a decision waited %v for a hung refill, MaxWait %v", d, slowMaxWait)
	}
	if st := c.Stats(); st.Fallbacks != 1 || st.Leases != 1 {
		t.Errorf("stats %+v: want 1 fallback, 1 lease", st)
	}
}
