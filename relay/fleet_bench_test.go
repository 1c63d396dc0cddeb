package relay

import (
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/baton-relay/baton/config"
	"github.com/baton-relay/baton/relay/aggregate"
	"github.com/baton-relay/baton/relay/fleet"
	"github.com/baton-relay/baton/relay/internal/testutil"
)

// BenchmarkIngestQuota is BenchmarkIngest (relaxed) in static mode with a
// project whose error quota (never reached) is counted in memory
// (quota=local) or in Redis through relay/fleet (quota=redis, a
// redis-server on loopback): the ratio of the two is what global quotas
// cost the ingest path. -count N interleaves the two.
func BenchmarkIngestQuota(b *testing.B) {
	quota := func(cfg *config.Config) {
		p := cfg.Projects["1"] // as a projects/1.json with one counted quota
		p.Relay = []byte(`{"config": {"quotas": [{"id": "bench", "categories": ["error"], "scope": "project", "limit": 1000000000000, "window": 3600}]}}`)
		cfg.Projects["1"] = p
	}
	const static = "mode: static\nprojects: {\"1\": {public_keys: [a7c3e9f1b5d24680ace13579bdf02468]}}\n"
	b.Run("quota=local", func(b *testing.B) { benchIngestWith(b, "relaxed", static, quota) })
	b.Run("quota=redis", func(b *testing.B) {
		rs := testutil.StartRedis(b)
		benchIngestWith(b, "relaxed", static+"redis: {addresses: ["+rs.Addr+"]}\n", quota)
	})
}

// BenchmarkIngestQuotaLease is BenchmarkIngestQuota with the quotas of a
// real project: each error envelope is charged to three quotas, its key's
// (320 an hour: leases of 10, a round trip every ~10 envelopes of a key),
// its project's and its organization's (10^9: leases of 256), in one
// Count. Requests cycle through 100 public keys, 200 per key at
// 20000x, so the key quotas are never spent: every decision admits.
func BenchmarkIngestQuotaLease(b *testing.B) {
	const nkeys = 100
	keys := make([]string, nkeys)
	for i := range keys {
		keys[i] = fmt.Sprintf("%032x", i+1)
	}
	static := "mode: static\nprojects: {\"1\": {public_keys: [" + strings.Join(keys, ", ") + "]}}\n"
	quota := func(cfg *config.Config) {
		p := cfg.Projects["1"]
		p.Relay = []byte(`{"config": {"quotas": [
			{"id": "key", "categories": ["error"], "scope": "key", "limit": 320, "window": 3600},
			{"id": "proj", "categories": ["error"], "scope": "project", "limit": 1000000000, "window": 3600},
			{"id": "org", "categories": ["error"], "scope": "organization", "limit": 1000000000, "window": 3600}]}}`)
		cfg.Projects["1"] = p
	}
	run := func(b *testing.B, extra string) {
		if b.N > nkeys*320 {
			b.Fatalf("b.N %d would spend the key quotas (%d)", b.N, nkeys*320)
		}
		r, c := startTestRelayWith(b, "relaxed", static+extra, quota)
		body := testutil.ErrorEnvelope()
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		b.SetParallelism(32) // 64 concurrent requests on 2 cores
		var next atomic.Int64
		b.ResetTimer()
		cpu := cpuTime()
		defer func() {
			b.ReportMetric(float64((cpuTime()-cpu).Microseconds())/float64(b.N), "cpu-us/op")
			if r.fleet != nil {
				// A decision Redis did not make would flatter the ratio.
				st := r.fleet.Stats()
				b.ReportMetric(float64(st.Leases)/float64(b.N), "leases/op")
				b.ReportMetric(float64(st.Fallbacks), "fallbacks")
			}
		}()
		b.RunParallel(func(pb *testing.PB) {
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			req.SetRequestURI("http://baton/api/1/envelope/")
			req.Header.SetMethod(fasthttp.MethodPost)
			req.SetBodyRaw(body)
			for pb.Next() {
				k := keys[next.Add(1)%nkeys]
				req.Header.Set("X-Sentry-Auth", "Sentry sentry_key="+k+", sentry_version=7, sentry_client=bench/1.0")
				if err := c.Do(req, resp); err != nil {
					b.Error(err)
					return
				}
				if resp.StatusCode() != 200 {
					b.Errorf("status %d: %s", resp.StatusCode(), resp.Body())
					return
				}
			}
		})
	}
	b.Run("quota=local", func(b *testing.B) { run(b, "") })
	b.Run("quota=redis", func(b *testing.B) {
		rs := testutil.StartRedis(b)
		run(b, "redis: {addresses: ["+rs.Addr+"], max_wait: 1s}\n")
	})
}

// TestIngestQuotasCheckedFirst: through ingest, with Redis, an error is
// counted only when every quota admits it: key A's third error, refused
// by its key quota (2), is not charged to the project quota (4), so key B
// still gets its 2.
func TestIngestQuotasCheckedFirst(t *testing.T) {
	rs := testutil.StartRedis(t)
	const keyA, keyB = "a7c3e9f1b5d24680ace13579bdf02468", "b7c3e9f1b5d24680ace13579bdf02468"
	_, c := startTestRelayWith(t, "relaxed", "mode: static\nprojects: {\"1\": {public_keys: ["+keyA+", "+keyB+"]}}\nredis: {addresses: ["+rs.Addr+"], max_wait: 1s}\n", func(cfg *config.Config) {
		p := cfg.Projects["1"]
		p.Relay = []byte(`{"config": {"quotas": [
			{"id": "p", "categories": ["error"], "scope": "project", "limit": 4, "window": 3600},
			{"id": "k", "categories": ["error"], "scope": "key", "limit": 2, "window": 3600}]}}`)
		cfg.Projects["1"] = p
	})
	var codes []int
	for _, key := range []string{keyA, keyA, keyA, keyB, keyB, keyB} {
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		req.SetRequestURI("http://baton/api/1/envelope/")
		req.Header.SetMethod(fasthttp.MethodPost)
		req.Header.Set("X-Sentry-Auth", "Sentry sentry_key="+key+", sentry_version=7, sentry_client=test/1.0")
		req.SetBodyRaw(testutil.ErrorEnvelope())
		if err := c.Do(req, resp); err != nil {
			t.Fatal(err)
		}
		codes = append(codes, resp.StatusCode())
		fasthttp.ReleaseRequest(req)
		fasthttp.ReleaseResponse(resp)
	}
	if want := []int{200, 200, 429, 200, 200, 429}; !slices.Equal(codes, want) {
		t.Fatalf("statuses %v, want %v (counted quota by quota, key B would get one)", codes, want)
	}
}

// TestIngestQuotaRedis checks the benchmark's premise: with redis set, the
// quota is counted there (leases taken), not locally.
func TestIngestQuotaRedis(t *testing.T) {
	rs := testutil.StartRedis(t)
	r, c := startTestRelayWith(t, "relaxed", "mode: static\nprojects: {\"1\": {public_keys: [a7c3e9f1b5d24680ace13579bdf02468]}}\nredis: {addresses: ["+rs.Addr+"]}\n", func(cfg *config.Config) {
		p := cfg.Projects["1"]
		p.Relay = []byte(`{"config": {"quotas": [{"id": "q", "categories": ["error"], "scope": "project", "limit": 2, "window": 3600}]}}`)
		cfg.Projects["1"] = p
	})
	var codes []int
	for range 3 {
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		req.SetRequestURI("http://baton/api/1/envelope/")
		req.Header.SetMethod(fasthttp.MethodPost)
		req.Header.Set("X-Sentry-Auth", "Sentry sentry_key=a7c3e9f1b5d24680ace13579bdf02468, sentry_version=7, sentry_client=bench/1.0")
		req.SetBodyRaw(testutil.ErrorEnvelope())
		if err := c.Do(req, resp); err != nil {
			t.Fatal(err)
		}
		codes = append(codes, resp.StatusCode())
	}
	if codes[0] != 200 || codes[1] != 200 || codes[2] != 429 {
		t.Fatalf("statuses %v, want 200 200 429", codes)
	}
	if st := r.fleet.Stats(); !st.Up || st.Leases == 0 {
		t.Fatalf("fleet stats %+v: want up, with leases", st)
	}
}

// BenchmarkCardinalityBatch is one read batch of 256 series through the
// cardinality limiter (aggregate.Limiter.AdmitBatch), local or with its
// store in Redis (relay/fleet, a redis-server on loopback): series=new
// are all new (each batch a pipelined round trip), series=known repeat
// one batch (answered from the per-granule cache, no round trip).
func BenchmarkCardinalityBatch(b *testing.B) {
	for _, store := range []string{"local", "redis"} {
		for _, kind := range []string{"new", "known"} {
			b.Run("store="+store+"/series="+kind, func(b *testing.B) {
				o := aggregate.LimitOptions{Limit: 1 << 22}
				if store == "redis" {
					rs := testutil.StartRedis(b)
					fc, err := fleet.Open(fleet.Options{Addresses: []string{rs.Addr}, MaxWait: time.Second})
					if err != nil {
						b.Fatal(err)
					}
					defer fc.Close()
					o.Store = &seriesStore{c: fc}
				}
				l := aggregate.NewLimiter(o)
				l.SetProjectLimits(1, 0, []aggregate.ProjectLimit{{ID: "bench", Limit: 1 << 22, Window: time.Hour, Granularity: 10 * time.Minute}})
				batch := make([]aggregate.Series, 256)
				ok := make([]bool, len(batch))
				var n uint64
				fill := func() {
					for i := range batch {
						n++
						batch[i] = aggregate.Series{Project: 1, Namespace: [4]string{"custom", "spans", "transactions", "sessions"}[i%4], Hash: n * 0x9e3779b97f4a7c15}
					}
				}
				fill()
				b.ReportAllocs()
				for b.Loop() {
					if kind == "new" {
						fill()
					}
					l.AdmitBatch(batch, ok)
					if !ok[0] {
						b.Fatal("refused")
					}
				}
				if st := l.Stats(); st.Fallbacks != 0 {
					b.Fatalf("%d fallbacks", st.Fallbacks)
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(batch)), "ns/series")
			})
		}
	}
}
