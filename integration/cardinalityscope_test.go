package integration

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/baton-relay/baton/envelope"
	"github.com/baton-relay/baton/relay"
)

// A project config with two limits on one namespace: a name scoped limit
// of 2 series per metric name limits the name with 5 series to 2 while
// another name's 2 series all pass, and a passive project limit of 1
// (which would have limited 6 of the 7) rejects nothing but is counted.
func TestManagedCardinalityScopes(t *testing.T) {
	settleDialer(t)
	s := newFakeSentry(t)
	s.setProject(managedKey, fakeSentryProjectState(42, managedKey, "r1", func(m map[string]any) {
		m["config"].(map[string]any)["metrics"] = map[string]any{"cardinalityLimits": []any{
			map[string]any{"id": "per-name", "limit": 2, "namespace": "custom", "scope": "name",
				"window": map[string]any{"windowSeconds": 3600, "granularitySeconds": 600}},
			map[string]any{"id": "watch", "limit": 1, "scope": "project", "passive": true,
				"window": map[string]any{"windowSeconds": 3600, "granularitySeconds": 600}},
		}}
	}))
	n := startNode(t, managedYAML(s.url(), "")+fastMetrics)
	post1 := func(ls []string) {
		payload := strings.Join(ls, "\n")
		env := fmt.Appendf(nil, "{\"dsn\":\"http://%s@h/42\"}\n{\"type\":\"statsd\",\"length\":%d}\n%s\n", managedKey, len(payload), payload)
		if status, body, _ := postEnvelope(t, n, 42, managedKey, env, nil); status != 200 {
			t.Fatalf("statsd: %d %s", status, body)
		}
	}
	post1([]string{"learn:1|c"}) // learns the config; counted by the passive limit only
	fakeWaitFor(t, 10*time.Second, func() bool { return n.r.Stats().Waiting == 0 && n.r.Stats().Projects.Fetched == 1 },
		func() string { return "config not learned" })
	var lines []string
	for i := range 5 {
		lines = append(lines, fmt.Sprintf("busy:1|c|#k:v%d", i))
	}
	for i := range 2 {
		lines = append(lines, fmt.Sprintf("quiet:1|c|#k:v%d", i))
	}
	post1(lines)
	st := waitBalanced(t, n, 15*time.Second)
	if got := st.Classes["metric"].Dropped["cardinality_limited"].Items; got != 3 {
		t.Fatalf("cardinality_limited = %d, want 3 (busy: 5 series, 2 per name); %+v", got, st.Classes["metric"])
	}
	if st.Cardinality == nil || st.Cardinality.Passive != 7 {
		t.Fatalf("cardinality stats %+v, want 7 series over the passive limit (8 seen, limit 1)", st.Cardinality)
	}
	// Upstream got learn, 2 busy series and both quiet ones.
	names := map[string]int{}
	fakeWaitFor(t, 10*time.Second, func() bool {
		clear(names)
		for _, e := range s.envelopes() {
			env, err := envelope.Parse(e.Body)
			if err != nil {
				continue
			}
			for _, it := range env.Items {
				if it.Type != envelope.ItemMetricBuckets {
					continue
				}
				bs, err := envelope.ParseBuckets(it.Payload)
				if err != nil {
					t.Fatalf("parse buckets: %v", err)
				}
				for _, b := range bs {
					names[b.Name]++
				}
			}
		}
		return names["c:custom/busy@none"] == 2 && names["c:custom/quiet@none"] == 2 && names["c:custom/learn@none"] == 1
	}, func() string { return fmt.Sprintf("buckets upstream by name: %v", names) })
}

// With Redis, a name scoped limit counts each metric name fleet-wide: two
// Batons share the 2 series of "busy" (a third is limited on the other
// Baton, which alone would have admitted it), while "quiet" still passes.
func TestManagedCardinalityScopesRedis(t *testing.T) {
	settleDialer(t)
	rs := startFleetRedis(t)
	s := newFakeSentry(t)
	s.setProject(managedKey, fakeSentryProjectState(42, managedKey, "r1", func(m map[string]any) {
		m["config"].(map[string]any)["metrics"] = map[string]any{"cardinalityLimits": []any{
			map[string]any{"id": "per-name", "limit": 2, "namespace": "custom", "scope": "name",
				"window": map[string]any{"windowSeconds": 3600, "granularitySeconds": 600}},
		}}
	}))
	cfg := managedYAML(s.url(), "") + fastMetrics + fmt.Sprintf("redis: {addresses: [%q], probe_interval: 50ms, max_wait: 1s}\n", rs.addr) // a loaded machine: no fallback
	limited := func(n *node, lines ...string) relay.Stats {
		payload := strings.Join(lines, "\n")
		env := fmt.Appendf(nil, "{\"dsn\":\"http://%s@h/42\"}\n{\"type\":\"statsd\",\"length\":%d}\n%s\n", managedKey, len(payload), payload)
		if status, body, _ := postEnvelope(t, n, 42, managedKey, env, nil); status != 200 {
			t.Fatalf("statsd: %d %s", status, body)
		}
		return waitBalanced(t, n, 15*time.Second)
	}
	a, b := startNode(t, cfg), startNode(t, cfg)
	for _, n := range []*node{a, b} { // learn the config (one series of "learn" each)
		limited(n, "learn:1|c")
	}
	if st := limited(a, "busy:1|c|#k:v0", "busy:1|c|#k:v1", "busy:1|c|#k:v2"); st.Classes["metric"].Dropped["cardinality_limited"].Items != 1 {
		t.Fatalf("a: %+v, want 1 of 3 busy series limited", st.Classes["metric"])
	}
	st := limited(b, "busy:1|c|#k:v0", "busy:1|c|#k:v3", "quiet:1|c|#k:v0", "quiet:1|c|#k:v1")
	if got := st.Classes["metric"].Dropped["cardinality_limited"].Items; got != 1 {
		t.Fatalf("b: cardinality_limited = %d, want 1 (busy v3: the fleet's 2 busy series are v0, v1); %+v", got, st.Classes["metric"])
	}
	if c := st.Cardinality; c == nil || c.Stored == 0 || c.Fallbacks != 0 {
		t.Fatalf("b: cardinality stats %+v, want Redis deciding, no fallback", c)
	}
}
