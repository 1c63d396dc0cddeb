package relay

import (
	"fmt"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/baton-relay/baton/relay/internal/testutil"
)

// TestCardinalityRedisStatic: metrics.cardinality_limit with redis set is
// one limit for two Batons (in one process, one redis-server): 3 series
// to each against a limit of 3 admit 3 in all, the other 3 are
// cardinality_limited, decided in Redis (the default window, one granule).
func TestCardinalityRedisStatic(t *testing.T) {
	rs := testutil.StartRedis(t)
	const key = "a7c3e9f1b5d24680ace13579bdf02468"
	yml := "mode: static\nprojects: {\"1\": {public_keys: [" + key + "]}}\n" +
		"metrics: {cardinality_limit: 3}\nredis: {addresses: [" + rs.Addr + "], max_wait: 1s}\n"
	var relays []*Relay
	for i := range 2 {
		r, c := startTestRelayWith(t, "relaxed", yml, nil)
		relays = append(relays, r)
		payload := fmt.Sprintf("card.%d.a:1|c\ncard.%d.b:1|c\ncard.%d.c:1|c", i, i, i)
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		req.SetRequestURI("http://baton/api/1/envelope/")
		req.Header.SetMethod(fasthttp.MethodPost)
		req.Header.Set("X-Sentry-Auth", "Sentry sentry_key="+key+", sentry_version=7, sentry_client=test/1.0")
		req.SetBodyString(fmt.Sprintf("{}\n{\"type\":\"statsd\",\"length\":%d}\n%s\n", len(payload), payload))
		if err := c.Do(req, resp); err != nil || resp.StatusCode() != 200 {
			t.Fatalf("relay %d: statsd: %v %d", i, err, resp.StatusCode())
		}
		// One after the other, so the first has its 3 before the second asks.
		deadline := time.Now().Add(10 * time.Second)
		for st := r.Stats().Cardinality; st == nil || st.Admitted+st.Limited < 3; st = r.Stats().Cardinality {
			if time.Now().After(deadline) {
				t.Fatalf("relay %d: limiter stats %+v, want 3 decisions", i, st)
			}
			time.Sleep(5 * time.Millisecond) // polling an observable condition, with a deadline
		}
	}
	var admitted, limited, stored uint64
	for _, r := range relays {
		st := r.Stats().Cardinality
		admitted, limited, stored = admitted+st.Admitted, limited+st.Limited, stored+st.Stored
		if st.Fallbacks != 0 {
			t.Errorf("stats %+v: fallbacks with Redis up", st)
		}
	}
	if admitted != 3 || limited != 3 || stored != 6 {
		t.Fatalf("two Batons, limit 3, 3 series each: %d admitted, %d limited, %d decided in Redis; want 3, 3, 6", admitted, limited, stored)
	}
	if got := relays[1].Stats().Classes["metric"].Dropped["cardinality_limited"].Items; got != 3 {
		t.Errorf("second Baton: %d cardinality_limited, want 3", got)
	}
}
