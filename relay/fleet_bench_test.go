package relay

import (
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/baton-relay/baton/config"
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
