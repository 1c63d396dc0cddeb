package integration

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fleetCardinality serves project pid with key and a cardinality limit of
// limit series per hour (granules of 10 minutes) in namespace custom.
func fleetCardinality(s *fakeSentry, pid uint64, key string, limit int) {
	s.setProject(key, fakeSentryProjectState(pid, key, "r1", func(m map[string]any) {
		m["config"].(map[string]any)["metrics"] = map[string]any{"cardinalityLimits": []any{map[string]any{
			"id": "fleet-card", "limit": limit, "namespace": "custom", "scope": "project",
			"window": map[string]any{"windowSeconds": 3600, "granularitySeconds": 600},
		}}}
	}))
}

// fleetStatsd posts one envelope of statsd lines for project pid and key
// and returns the status (0 for a transport error).
func fleetStatsd(c *http.Client, base string, pid int, key string, lines []string) int {
	payload := strings.Join(lines, "\n")
	return fleetPost(c, base, pid, key, fmt.Sprintf("{\"dsn\":\"http://%s@h/%d\"}\n{\"type\":\"statsd\",\"length\":%d}\n%s\n", key, pid, len(payload), payload))
}

// metricWith returns the value of the series of name whose labels include
// every one of labels (`key="value"`), or 0 when there is none yet.
func (n *fleetNode) metricWith(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	_, b, err := crashGet(http.DefaultClient, n.metrics+"/metrics")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(b)) {
		rest, ok := strings.CutPrefix(line, name+"{")
		if !ok {
			continue
		}
		ls, val, _ := strings.Cut(rest, "} ")
		all := true
		for _, l := range labels {
			all = all && strings.Contains(ls, l)
		}
		if all {
			v, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return v
		}
	}
	return 0
}

// limitedSum is the fleet's metric buckets dropped as cardinality_limited.
func limitedSum(t *testing.T, nodes []*fleetNode) int {
	sum := 0.0
	for _, n := range nodes {
		sum += n.metricWith(t, "baton_dropped_items_total", `class="metric"`, `reason="cardinality_limited"`)
	}
	return int(sum)
}

// seriesDelivered counts the names (custom/<name>@) of which a bucket
// reached the fake Sentry for pid.
func seriesDelivered(s *fakeSentry, pid uint64, names []string) int {
	n := 0
	for _, name := range names {
		if deliveredTo(s, pid, "custom/"+name+"@") > 0 {
			n++
		}
	}
	return n
}

// TestRedisFleetCardinality runs three baton processes sharing one
// redis-server with a project's cardinality limit of 30 series: 90
// distinct series, 30 to each Baton (each alone would admit its 30, 90 in
// all), admit exactly 30 fleet-wide and drop 60 as cardinality_limited.
// Then Redis is killed under load: the limiter falls back to local
// counting (metric, status, one log line), every acked series is
// delivered, and it counts in Redis again once Redis is back.
func TestRedisFleetCardinality(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the baton binary and redis-server")
	}
	rs := startFleetRedis(t)
	bin := crashBuildBaton(t)
	s := newFakeSentry(t)
	const (
		pid1, key1 = 71, "71717171717171717171717171717171"
		pid2, key2 = 72, "72727272727272727272727272727272"
		limit      = 30
	)
	fleetCardinality(s, pid1, key1, limit)
	fleetCardinality(s, pid2, key2, 10_000)
	cfg := fmt.Sprintf("redis: {addresses: [%q], probe_interval: 50ms, max_wait: 1s}\n", rs.addr) + fastMetrics // a loaded machine: no fallback
	var nodes []*fleetNode
	for range 3 {
		nodes = append(nodes, startFleetNode(t, bin, s.url(), cfg))
	}
	c := crashClient(t)

	t.Run("limit holds fleet-wide", func(t *testing.T) {
		fleetWarm(t, nodes, pid1, key1, 1)
		var names []string
		var wg sync.WaitGroup
		for i, n := range nodes {
			var own []string
			for j := range limit {
				own = append(own, fmt.Sprintf("cardg.%d.%d", i, j))
			}
			names = append(names, own...)
			wg.Go(func() {
				for k := 0; k < len(own); k += 5 {
					var lines []string
					for _, name := range own[k : k+5] {
						lines = append(lines, name+":1|c")
					}
					if code := fleetStatsd(c, n.base, pid1, key1, lines); code != 200 {
						t.Errorf("node %d: statsd %d", i, code)
					}
				}
			})
		}
		wg.Wait()
		fakeWaitFor(t, 20*time.Second, func() bool {
			return limitedSum(t, nodes) >= 3*limit-limit && seriesDelivered(s, pid1, names) >= limit
		}, func() string {
			return fmt.Sprintf("%d limited, %d series delivered; want 60 and 30", limitedSum(t, nodes), seriesDelivered(s, pid1, names))
		})
		if l, d := limitedSum(t, nodes), seriesDelivered(s, pid1, names); l != 2*limit || d != limit {
			t.Fatalf("90 series to 3 Batons with a fleet limit of 30: %d limited, %d delivered; want exactly 60 and 30", l, d)
		}
		for i, n := range nodes {
			if v := n.metric(t, "baton_cardinality_redis_calls_total"); v == 0 {
				t.Errorf("node %d: no cardinality batch went to Redis", i)
			}
			if v := n.metric(t, "baton_cardinality_fallbacks_total"); v != 0 {
				t.Errorf("node %d: %v cardinality fallbacks with Redis up", i, v)
			}
		}
	})

	t.Run("redis killed mid-load", func(t *testing.T) {
		fleetWarm(t, nodes, pid2, key2, 2)
		limitedBefore := limitedSum(t, nodes)
		var mu sync.Mutex
		var acked []string
		send := func(phase string, per int) {
			var wg sync.WaitGroup
			for w := range 6 {
				wg.Go(func() {
					for i := range per {
						var lines []string
						for j := range 4 {
							lines = append(lines, fmt.Sprintf("cardout.%s.%d.%d.%d", phase, w, i, j))
						}
						var ls []string
						for _, l := range lines {
							ls = append(ls, l+":1|c")
						}
						if code := fleetStatsd(c, nodes[w%3].base, pid2, key2, ls); code == 200 {
							mu.Lock()
							acked = append(acked, lines...)
							mu.Unlock()
						} else {
							t.Errorf("%s: %d", lines[0], code)
						}
					}
				})
			}
			wg.Wait()
		}
		var wg sync.WaitGroup
		wg.Go(func() { send("before", 10) })
		fakeWaitFor(t, 10*time.Second, func() bool { mu.Lock(); defer mu.Unlock(); return len(acked) >= 40 },
			func() string { return "no load reached the fleet" })
		rs.kill()
		wg.Wait()
		send("down", 10)
		for i, n := range nodes {
			fakeWaitFor(t, 5*time.Second, func() bool {
				st := n.redis(t)
				return !st.Up && st.CardinalityFallbacks > 0 && st.LastError != "" && n.metric(t, "baton_cardinality_fallbacks_total") > 0
			}, func() string { return fmt.Sprintf("node %d with Redis down: %+v", i, n.redis(t)) })
			if v := n.metric(t, "baton_redis_up"); v != 0 {
				t.Errorf("node %d: baton_redis_up = %v with Redis down", i, v)
			}
		}
		if log := nodes[0].stderr.String(); strings.Count(log, "redis unreachable; counting quotas locally (and metric cardinality)") != 1 {
			t.Errorf("want one log line for the fallback:\n%s", crashTail(log, 2000))
		}
		calls := make([]float64, len(nodes))
		for i, n := range nodes {
			calls[i] = n.metric(t, "baton_cardinality_redis_calls_total")
		}
		rs.start(t)
		for i, n := range nodes {
			fakeWaitFor(t, 10*time.Second, func() bool { return n.metric(t, "baton_redis_up") == 1 },
				func() string { return fmt.Sprintf("node %d did not find Redis again: %+v", i, n.redis(t)) })
		}
		send("after", 10)
		for i, n := range nodes {
			fakeWaitFor(t, 10*time.Second, func() bool { return n.metric(t, "baton_cardinality_redis_calls_total") > calls[i] },
				func() string { return fmt.Sprintf("node %d: no cardinality batch in Redis after it returned", i) })
		}
		if len(acked) != 6*30*4 {
			t.Errorf("%d of 720 series acked", len(acked))
		}
		fakeWaitFor(t, 20*time.Second, func() bool { return seriesDelivered(s, pid2, acked) == len(acked) },
			func() string {
				return fmt.Sprintf("%d of %d acked series delivered", seriesDelivered(s, pid2, acked), len(acked))
			})
		if l := limitedSum(t, nodes); l != limitedBefore {
			t.Errorf("%d more buckets limited under a limit of 10000", l-limitedBefore)
		}
	})
}
