package fleet

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/baton-relay/baton/relay/internal/testutil"
)

func seriesBatch(project uint64, ns string, limit int, window, gran time.Duration, hashes ...uint64) []Series {
	s := make([]Series, len(hashes))
	for i, h := range hashes {
		s[i] = Series{Project: project, Namespace: ns, Hash: h, Limit: limit, Window: window, Granularity: gran}
	}
	return s
}

// TestSeriesGlobalLimit: three Counters on one Redis, each sending batches
// of its own and shared series concurrently, admit exactly the limit of
// distinct series between them, one round trip per batch; admitted series
// stay admitted on every Counter, and other scopes are apart.
func TestSeriesGlobalLimit(t *testing.T) {
	rs := testutil.StartRedis(t)
	var cs [3]*Counter
	for i := range cs {
		cs[i] = open(t, Options{Addresses: []string{rs.Addr}, MaxWait: patientMaxWait})
	}
	now := time.Now()
	const limit = 100
	var mu sync.Mutex
	admitted := map[uint64]bool{}
	var wg sync.WaitGroup
	for i, c := range cs {
		wg.Go(func() {
			for b := range 10 {
				var hs []uint64
				for j := range 20 {
					hs = append(hs, uint64(i*1000+b*20+j+1)) // its own
				}
				hs = append(hs, 1<<63|uint64(b)) // shared by the three, and a hash over MaxInt64
				batch := seriesBatch(7, "custom", limit, time.Hour, 10*time.Minute, hs...)
				ok := make([]bool, len(batch))
				if err := c.AdmitSeries(now, batch, ok); err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				for k, yes := range ok {
					if yes {
						admitted[batch[k].Hash] = true
					}
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(admitted) != limit {
		t.Fatalf("%d distinct series admitted by 3 Counters, want exactly %d", len(admitted), limit)
	}
	for i, c := range cs {
		if st := c.Stats(); st.SeriesCalls != 10 || st.SeriesFallbacks != 0 {
			t.Errorf("counter %d: %+v, want 10 round trips for 10 batches, no fallback", i, st)
		}
	}
	// Every admitted series passes on any Counter; a new one does not;
	// another namespace has its own limit.
	var hs []uint64
	for h := range admitted {
		hs = append(hs, h)
	}
	batch := append(seriesBatch(7, "custom", limit, time.Hour, 10*time.Minute, hs...),
		seriesBatch(7, "custom", limit, time.Hour, 10*time.Minute, 99999)...)
	batch = append(batch, seriesBatch(7, "spans", limit, time.Hour, 10*time.Minute, 99999)...)
	ok := make([]bool, len(batch))
	if err := cs[2].AdmitSeries(now, batch, ok); err != nil {
		t.Fatal(err)
	}
	for k := range hs {
		if !ok[k] {
			t.Fatalf("admitted series %d refused later", batch[k].Hash)
		}
	}
	if ok[len(hs)] || !ok[len(hs)+1] {
		t.Fatalf("new series: custom %v (want refused), spans %v (want admitted)", ok[len(hs)], ok[len(hs)+1])
	}
}

// TestSeriesSlidingWindow: a window of 60s in granules of 20s (Relay's
// sliding window): series admitted in a granule count for a window from
// then, so the limit frees up granule by granule; sets expire.
func TestSeriesSlidingWindow(t *testing.T) {
	rs := testutil.StartRedis(t)
	c := open(t, Options{Addresses: []string{rs.Addr}, MaxWait: patientMaxWait})
	t0 := time.Unix(1_800_000_000-1_800_000_000%60, 0)
	admit := func(at time.Duration, h uint64) bool {
		t.Helper()
		ok := make([]bool, 1)
		if err := c.AdmitSeries(t0.Add(at), seriesBatch(1, "custom", 2, time.Minute, 20*time.Second, h), ok); err != nil {
			t.Fatal(err)
		}
		return ok[0]
	}
	if !admit(0, 1) || !admit(25*time.Second, 2) || admit(25*time.Second, 3) {
		t.Fatal("want 1 and 2 admitted, 3 over the limit of 2")
	}
	// At 60s, 1 (admitted in the first granule) has left the window; 2 has not.
	if !admit(60*time.Second, 3) || admit(60*time.Second, 4) {
		t.Fatal("at 60s: want 3 admitted in 1's place, 4 over")
	}
	// At 80s, 2 has left too, but 3 renews itself by being seen.
	if !admit(80*time.Second, 3) || !admit(80*time.Second, 4) || admit(80*time.Second, 5) {
		t.Fatal("at 80s: want 3 and 4 admitted, 5 over")
	}
	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr, DisableIdentity: true})
	defer rdb.Close()
	keys, err := rdb.Keys(context.Background(), "baton:c:{1:custom}:60:20:*").Result()
	if err != nil || len(keys) == 0 {
		t.Fatalf("keys %v %v", keys, err)
	}
	for _, k := range keys {
		ttl, err := rdb.TTL(context.Background(), k).Result()
		if err != nil || ttl <= 0 || ttl > (60+20+60)*time.Second {
			t.Errorf("%s: ttl %v %v, want at most window+granularity+1m", k, ttl, err)
		}
	}
}

// TestSeriesFallback: with Redis killed a batch fails within MaxWait and
// the next ones return ErrDown at once, counted as fallbacks; once Redis
// is back (empty, scripts gone) the probe finds it and batches go to it.
func TestSeriesFallback(t *testing.T) {
	rs := testutil.StartRedis(t)
	c := open(t, Options{Addresses: []string{rs.Addr}, ProbeInterval: 20 * time.Millisecond, MaxWait: slowMaxWait})
	now := time.Now()
	batch := seriesBatch(3, "custom", 10, time.Hour, time.Hour, 1, 2, 3)
	ok := make([]bool, 3)
	if err := c.AdmitSeries(now, batch, ok); err != nil || !ok[0] {
		t.Fatalf("%v %v", ok, err)
	}
	rs.Kill()
	for range 3 {
		start := time.Now()
		err := c.AdmitSeries(now, batch, ok)
		if err == nil {
			t.Fatal("no error with Redis down")
		}
		if d := time.Since(start); d > 8*slowMaxWait {
			t.Fatalf("a batch waited %v with Redis down", d)
		}
	}
	if err := c.AdmitSeries(now, batch, ok); !errors.Is(err, ErrDown) {
		t.Fatalf("err %v, want ErrDown once Redis is known down", err)
	}
	if st := c.Stats(); st.Up || st.SeriesFallbacks != 12 || st.LastError == "" {
		t.Fatalf("stats %+v: want down, 12 series decided locally, an error", st)
	}
	rs.Start(t)
	deadline := time.Now().Add(5 * time.Second)
	for !c.Stats().Up {
		if time.Now().After(deadline) {
			t.Fatal("the probe did not find Redis again")
		}
		time.Sleep(5 * time.Millisecond) // polling an observable condition, with a deadline
	}
	if err := c.AdmitSeries(now, batch, ok); err != nil || !ok[0] || !ok[1] || !ok[2] {
		t.Fatalf("after recovery: %v %v, want all admitted by Redis", ok, err)
	}
}

// BenchmarkSeriesBatch is one cardinality batch through Redis: 256 series
// (a read batch of buckets), new each time, over 4 scopes of a limit of
// 1M in a 1h window of 6 granules: one pipelined round trip of 4 script
// calls, each adding every series to 6 sets.
func BenchmarkSeriesBatch(b *testing.B) {
	rs := testutil.StartRedis(b)
	c, err := Open(Options{Addresses: []string{rs.Addr}, MaxWait: patientMaxWait})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	now := time.Now()
	batch := make([]Series, 256)
	ok := make([]bool, len(batch))
	var n uint64
	b.ReportAllocs()
	for b.Loop() {
		for i := range batch {
			n++
			batch[i] = Series{Project: 1, Namespace: [4]string{"custom", "spans", "transactions", "sessions"}[i%4],
				Hash: n * 0x9e3779b97f4a7c15, Limit: 1 << 20, Window: time.Hour, Granularity: 10 * time.Minute}
		}
		if err := c.AdmitSeries(now, batch, ok); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(batch)), "ns/series")
}

// TestSeriesCluster: with Options.Cluster, a batch of two scopes is one
// pipeline on a one-node Redis Cluster (a scope's sets share a slot: its
// script would fail with CROSSSLOT otherwise).
func TestSeriesCluster(t *testing.T) {
	rs := testutil.StartRedis(t, "--cluster-enabled", "yes", "--cluster-config-file", t.TempDir()+"/nodes.conf")
	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr, DisableIdentity: true})
	defer rdb.Close()
	ctx := context.Background()
	if err := rdb.Do(ctx, "CLUSTER", "ADDSLOTSRANGE", "0", "16383").Err(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		info, _ := rdb.ClusterInfo(ctx).Result()
		if strings.Contains(info, "cluster_state:ok") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("cluster not ok: %s", info)
		}
		time.Sleep(10 * time.Millisecond) // polling the cluster's state, with a deadline
	}
	c := open(t, Options{Addresses: []string{rs.Addr}, Cluster: true, MaxWait: patientMaxWait})
	batch := append(seriesBatch(1, "custom", 2, time.Hour, 10*time.Minute, 1, 2, 3),
		seriesBatch(2, "spans", 1, time.Hour, 10*time.Minute, 1, 2)...)
	ok := make([]bool, len(batch))
	if err := c.AdmitSeries(time.Now(), batch, ok); err != nil {
		t.Fatal(err)
	}
	if want := []bool{true, true, false, true, false}; !slices.Equal(ok, want) {
		t.Fatalf("%v, want %v", ok, want)
	}
	if st := c.Stats(); st.SeriesCalls != 1 {
		t.Fatalf("stats %+v: want one call", st)
	}
}

// TestSeriesSlowRedis: a Redis that stops answering (SIGSTOP) costs a
// batch at most about MaxWait, then the batch is local; once it answers
// again (SIGCONT) the probe brings the batches back to it.
func TestSeriesSlowRedis(t *testing.T) {
	rs := testutil.StartRedis(t)
	c := open(t, Options{Addresses: []string{rs.Addr}, ProbeInterval: 20 * time.Millisecond, MaxWait: slowMaxWait})
	batch := seriesBatch(4, "custom", 10, time.Hour, time.Hour, 1, 2)
	ok := make([]bool, 2)
	if err := c.AdmitSeries(time.Now(), batch, ok); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(rs.Pid(), syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	stopped := true
	defer func() {
		if stopped {
			_ = syscall.Kill(rs.Pid(), syscall.SIGCONT)
		}
	}()
	start := time.Now()
	err := c.AdmitSeries(time.Now(), batch, ok)
	if d := time.Since(start); err == nil || d > 8*slowMaxWait {
		t.Fatalf("a batch against a stopped Redis: %v after %v, want an error within about MaxWait", err, d)
	}
	if st := c.Stats(); st.Up || st.SeriesFallbacks != 2 {
		t.Fatalf("stats %+v: want down, 2 series decided locally", st)
	}
	_ = syscall.Kill(rs.Pid(), syscall.SIGCONT)
	stopped = false
	deadline := time.Now().Add(5 * time.Second)
	for !c.Stats().Up {
		if time.Now().After(deadline) {
			t.Fatal("the probe did not find Redis again")
		}
		time.Sleep(5 * time.Millisecond) // polling an observable condition, with a deadline
	}
	if err := c.AdmitSeries(time.Now(), batch, ok); err != nil || !ok[0] || !ok[1] {
		t.Fatalf("after SIGCONT: %v %v", ok, err)
	}
}

// TestSeriesScopes: a configured limit's sets are named by its scope, id
// and scope value, so a name scoped limit counts each metric name apart
// (the same hashes under two names both pass a limit of 1 each), and an
// organization limit counts in the organization's id.
func TestSeriesScopes(t *testing.T) {
	rs := testutil.StartRedis(t)
	c := open(t, Options{Addresses: []string{rs.Addr}, MaxWait: patientMaxWait})
	now := time.Unix(1_700_000_000, 0)
	mk := func(scope, value string, project, hash uint64) Series {
		return Series{Project: project, Namespace: "custom", Hash: hash, Limit: 1, Window: time.Minute, Granularity: 20 * time.Second,
			ID: "lim", Scope: scope, Value: value}
	}
	batch := []Series{
		mk("name", "c:custom/a@none", 3, 1), mk("name", "c:custom/a@none", 3, 2), // one name: 1 of 2
		mk("name", "c:custom/b@none", 3, 2), // another name: its own set
		mk("type", "c", 3, 5), mk("type", "d", 3, 6),
		mk("organization", "", 9, 7), mk("organization", "", 9, 8),
	}
	ok := make([]bool, len(batch))
	if err := c.AdmitSeries(now, batch, ok); err != nil {
		t.Fatal(err)
	}
	if want := []bool{true, false, true, true, true, true, false}; !slices.Equal(ok, want) {
		t.Fatalf("admitted %v, want %v", ok, want)
	}
	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr, DisableIdentity: true})
	defer rdb.Close()
	for _, pat := range []string{
		"baton:c:{name:3:custom:lim:c:custom/a@none}:60:20:*", "baton:c:{name:3:custom:lim:c:custom/b@none}:60:20:*",
		"baton:c:{type:3:custom:lim:c}:60:20:*", "baton:c:{organization:9:custom:lim}:60:20:*",
	} {
		keys, err := rdb.Keys(context.Background(), pat).Result()
		if err != nil || len(keys) != 3 {
			t.Errorf("keys %s: %v %v, want 3 granule sets", pat, keys, err)
		}
	}
}
