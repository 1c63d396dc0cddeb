package integration

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"
)

// Trace steering (issue 22, routes.<class>.steer: trace).

// otherKey is a second DSN public key: items of one trace from two projects.
const otherKey = "b7c3e9f1b5d24680ace13579bdf02468"

// traceEnvelope is a transaction envelope whose header carries the dynamic
// sampling context of trace id (and the transaction's trace context too).
func traceEnvelope(eventID, id, key, name string) []byte {
	tx := fmt.Sprintf(`{"type":"transaction","transaction":%q,"start_timestamp":1700000000,"timestamp":1700000001,"contexts":{"trace":{"trace_id":%q,"span_id":"fa90fdead5f74052"}}}`, name, id)
	return fmt.Appendf(nil, "{\"event_id\":%q,\"trace\":{\"trace_id\":%q,\"public_key\":%q,\"sample_rate\":\"1\"}}\n{\"type\":\"transaction\",\"length\":%d}\n%s\n",
		eventID, id, key, len(tx), tx)
}

// headerTraceID is the trace.trace_id of a forwarded envelope's header.
func headerTraceID(env []byte) string {
	line, _, _ := bytes.Cut(env, []byte("\n"))
	_, rest, ok := bytes.Cut(line, []byte(`"trace_id":"`))
	if !ok {
		return ""
	}
	id, _, _ := bytes.Cut(rest, []byte(`"`))
	return string(id)
}

// Two edge Batons with steer: trace for transactions in front of a
// two-node upstream pool: 50 traces whose transactions enter through both
// edges, from two projects each, land so that every trace is on one node.
func TestTraceSteeringOverUpstreamPool(t *testing.T) {
	settleDialer(t)
	const traces = 50
	ups := []*fakeUpstream{newFakeUpstream(t), newFakeUpstream(t)}
	cfg := fmt.Sprintf(`upstreams:
  pool:
    urls: [%q, %q]
    timeout: 5s
routes:
  default: {upstream: pool}
  transaction: {upstream: pool, steer: trace}
`, ups[0].url(), ups[1].url())
	edges := []*node{startNode(t, cfg), startNode(t, cfg)}

	n := 0
	for tr := range traces {
		id := fmt.Sprintf("%032x", 0x5eed0000+tr*7919)
		for e, edge := range edges {
			for _, key := range []string{testKey, otherKey} {
				n++
				env := traceEnvelope(fmt.Sprintf("%032x", n), id, key, fmt.Sprintf("tx-%d-%d", tr, e))
				if code, body, _ := post(t, edge.url+"/api/42/envelope/", env, authHeader(key)); code != 200 {
					t.Fatalf("trace %d via edge %d: %d %s", tr, e, code, body)
				}
			}
		}
	}
	fakeWaitFor(t, 20*time.Second, func() bool {
		return len(ups[0].delivered())+len(ups[1].delivered()) >= n
	}, func() string {
		return fmt.Sprintf("%d + %d of %d envelopes delivered", len(ups[0].delivered()), len(ups[1].delivered()), n)
	})
	owner := map[string]int{}
	per := make([]int, len(ups))
	keys := map[string]map[string]bool{} // trace id → public keys seen
	for i, u := range ups {
		for _, r := range u.delivered() {
			id := headerTraceID(r.Body)
			if id == "" {
				t.Fatalf("upstream %d: envelope without the DSC trace id:\n%s", i, r.Body)
			}
			if prev, ok := owner[id]; ok && prev != i {
				t.Fatalf("trace %s on upstreams %d and %d", id, prev, i)
			}
			if _, ok := owner[id]; !ok {
				per[i]++
			}
			owner[id] = i
			if keys[id] == nil {
				keys[id] = map[string]bool{}
			}
			keys[id][sentryKey(r.Header.Get("X-Sentry-Auth"))] = true
		}
	}
	if len(owner) != traces {
		t.Fatalf("%d traces delivered, want %d", len(owner), traces)
	}
	for i, c := range per {
		if c == 0 {
			t.Errorf("upstream %d got no trace: steering does not spread", i)
		}
	}
	for id, ks := range keys {
		if len(ks) != 2 {
			t.Fatalf("trace %s arrived with keys %v, want both projects' keys", id, ks)
		}
	}
	t.Logf("traces per upstream %v", per)
	waitBalanced(t, edges[0], 10*time.Second)
	waitBalanced(t, edges[1], 10*time.Second)
}

// sentryKey is the sentry_key of an X-Sentry-Auth header.
func sentryKey(auth string) string {
	_, rest, _ := strings.Cut(auth, "sentry_key=")
	key, _, _ := strings.Cut(rest, ",")
	return key
}

// On Kafka a route with steer: trace keys each record by the trace id (one
// partition per trace); a route with the default steer: project keys it by
// the project id.
func TestTraceSteeringKafkaKey(t *testing.T) {
	n := startNode(t, `routes:
  default: {kafka: embedded}
  transaction: {kafka: embedded, steer: trace}
`)
	const traces = 5
	ids := map[string]bool{}
	for tr := range traces {
		id := fmt.Sprintf("%032x", 0xabc000+tr)
		ids[id] = true
		for j, key := range []string{testKey, otherKey} {
			env := traceEnvelope(fmt.Sprintf("%030x%02x", tr, j), id, key, "kafka-tx")
			if code, body, _ := post(t, n.url+"/api/42/envelope/", env, authHeader(key)); code != 200 {
				t.Fatalf("transaction: %d %s", code, body)
			}
		}
	}
	// The same DSC on an error: its route steers by project.
	ev := `{"message":"steer-by-project"}`
	errEnv := fmt.Appendf(nil, "{\"event_id\":\"%032x\",\"trace\":{\"trace_id\":\"%032x\"}}\n{\"type\":\"event\",\"length\":%d}\n%s\n", 99, 0xabc000, len(ev), ev)
	if code, body, _ := post(t, n.url+"/api/42/envelope/", errEnv, authHeader(testKey)); code != 200 {
		t.Fatalf("error: %d %s", code, body)
	}

	recs := consume(t, n.kafka, "baton.transaction", 2*traces, 15*time.Second)
	perKey := map[string]int{}
	for _, r := range recs {
		id := headerTraceID(r.Value)
		if string(r.Key) != id || !ids[id] {
			t.Fatalf("transaction record key %q, want its trace id %q", r.Key, id)
		}
		perKey[id]++
	}
	for id, c := range perKey {
		if c != 2 {
			t.Errorf("trace %s: %d records, want 2", id, c)
		}
	}
	errs := consume(t, n.kafka, "baton.error", 1, 15*time.Second)
	if got := string(errs[0].Key); got != "42" {
		t.Errorf("error record key %q, want the project id 42 (steer: project)", got)
	}
}
