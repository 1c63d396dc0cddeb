package integration

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/baton-relay/baton/envelope"
)

// Metric aggregation, cardinality limits and traffic steering (issue 8).

// fastMetrics flushes a bucket about a second after its window.
const fastMetrics = "metrics: {bucket_interval: 1s, initial_delay: 0s}\n"

// statsdEnvelope is one envelope with one statsd item of lines.
func statsdEnvelope(lines []string) []byte {
	payload := strings.Join(lines, "\n")
	return fmt.Appendf(nil, "{}\n{\"type\":\"statsd\",\"length\":%d}\n%s\n", len(payload), payload)
}

// sendStatsd posts lines in envelopes of at most per lines each.
func sendStatsd(t *testing.T, n *node, lines []string, per int) {
	t.Helper()
	for len(lines) > 0 {
		k := min(per, len(lines))
		status, body, _ := post(t, n.url+"/api/42/envelope/", statsdEnvelope(lines[:k]), authHeader(testKey))
		if status != 200 {
			t.Fatalf("statsd envelope: %d %s", status, body)
		}
		lines = lines[k:]
	}
}

// recordBuckets decodes the metric_buckets items of an envelope.
func recordBuckets(t *testing.T, env []byte) []envelope.Bucket {
	t.Helper()
	e, err := envelope.Parse(env)
	if err != nil {
		t.Fatalf("parse forwarded envelope: %v", err)
	}
	var out []envelope.Bucket
	for _, it := range e.Items {
		if it.Type != envelope.ItemMetricBuckets {
			t.Fatalf("forwarded item of type %s, want metric_buckets", it.TypeName)
		}
		bs, err := envelope.ParseBuckets(it.Payload)
		if err != nil {
			t.Fatalf("parse buckets: %v", err)
		}
		out = append(out, bs...)
	}
	return out
}

func TestMetricsAggregated(t *testing.T) {
	n := startNode(t, fastMetrics+"telemetry: {metrics_listen: 127.0.0.1:0}\n")
	var lines []string
	for i := range 20 {
		lines = append(lines, "app.requests@none:1|c|#route:a", fmt.Sprintf("app.latency@millisecond:%d|d|#route:a", i), "app.users:u"+fmt.Sprint(i%5)+"|s")
	}
	lines = append(lines, "not a metric line", "app.requests:1|c|#route:"+strings.Repeat("x", 201))
	sendStatsd(t, n, lines, 3) // 21 envelopes: aggregation merges them

	var buckets []envelope.Bucket
	consumeUntil(t, n.kafka, "baton.metric", 15*time.Second, func(recs []*kgo.Record) bool {
		buckets = buckets[:0]
		for _, r := range recs {
			buckets = append(buckets, recordBuckets(t, r.Value)...)
		}
		total := 0.0
		for _, b := range buckets {
			if b.Type == envelope.MetricCounter {
				total += b.Value.Counter
			}
		}
		return total == 20
	})
	dist, set := 0, map[uint32]bool{} // the buckets of a key may span two windows
	for _, b := range buckets {
		switch b.Type {
		case envelope.MetricDistribution:
			dist += len(b.Value.Distribution)
		case envelope.MetricSet:
			for _, v := range b.Value.Set {
				set[v] = true
			}
		}
	}
	if dist != 20 {
		t.Errorf("distribution values = %d, want 20", dist)
	}
	if len(set) != 5 {
		t.Errorf("set values = %d, want 5 (u0..u4)", len(set))
	}
	if len(buckets) > 3*3 { // three keys, at most a few windows each
		t.Errorf("%d buckets for 3 metric keys: not aggregated", len(buckets))
	}
	st := waitBalanced(t, n, 10*time.Second)
	m := st.Classes["metric"]
	if m.Accepted.Records != 21 || m.Aggregated.Records != 21 || m.Produced.Records != m.Delivered.Records {
		t.Fatalf("metric outcomes: %+v", m)
	}
	if m.Dropped["invalid"].Items != 2 {
		t.Fatalf("invalid statsd line and oversized tag not counted: %+v", m.Dropped)
	}
	expectMetrics(t, n,
		`baton_aggregated_records_total{class="metric"} 21`,
		fmt.Sprintf(`baton_produced_records_total{class="metric"} %d`, m.Produced.Records),
		`baton_dropped_items_total{class="metric",reason="invalid"} 2`,
		"baton_metric_buckets 0",
	)
}

// consumeBuckets reads baton.metric from n's embedded broker until at
// least want buckets arrived, and returns how many did.
func consumeBuckets(t *testing.T, n *node, want int, timeout time.Duration) int {
	t.Helper()
	got := 0
	consumeUntil(t, n.kafka, "baton.metric", timeout, func(recs []*kgo.Record) bool {
		got = 0
		for _, r := range recs {
			got += len(recordBuckets(t, r.Value))
		}
		return got >= want
	})
	return got
}

// steeringKeys are n statsd lines of distinct metric keys, timestamped ts
// (Unix seconds), so that a test picks their window.
func steeringKeys(n int, ts int64) []string {
	lines := make([]string, n)
	for i := range lines {
		lines[i] = fmt.Sprintf("steer.k%d:1|c|T%d", i, ts)
	}
	return lines
}

// Three upstream Batons in a pool behind an edge Baton that steers metric
// partitions: each key lands on exactly one upstream; ejecting one moves
// only its keys.
func TestMetricsSteeringOverUpstreamPool(t *testing.T) {
	settleDialer(t)
	const keys = 10000
	var ups [3]*node
	var urls []string
	for i := range ups {
		ups[i] = startNode(t, "metrics: {aggregate: false}\n")
		urls = append(urls, ups[i].url)
	}
	edge := startNode(t, fmt.Sprintf(`metrics: {bucket_interval: 1s, initial_delay: 0s, flush_partitions: 64}
upstreams:
  pool:
    urls: [%s]
    max_failures: 1
    probe_interval: 1h
    max_retry_interval: 200ms
routes:
  default: {upstream: pool}
`, strings.Join(urls, ", ")))

	// Two rounds of the same keys, told apart by their window: explicit
	// timestamps a minute apart.
	now := time.Now().Unix()
	t1, t2 := now-120, now-60
	round := func(ts int64) []string {
		lines := make([]string, keys)
		for i := range lines {
			lines[i] = fmt.Sprintf("steer.k%d:1|c|T%d", i, ts)
		}
		return lines
	}
	// owners reads the live upstreams' Kafka and maps each metric name of
	// window ts to the upstream that got it.
	owners := func(ts int64, live []int) map[string]int {
		t.Helper()
		out := map[string]int{}
		deadline := time.Now().Add(30 * time.Second)
		for {
			clear(out)
			for _, i := range live {
				for _, r := range consumeAll(t, ups[i].kafka, "baton.metric") {
					for _, b := range recordBuckets(t, r.Value) {
						if b.Timestamp != ts {
							continue
						}
						if prev, ok := out[b.Name]; ok && prev != i {
							t.Fatalf("%s of window %d on upstreams %d and %d", b.Name, ts, prev, i)
						}
						out[b.Name] = i
					}
				}
			}
			if len(out) == keys {
				return out
			}
			if time.Now().After(deadline) {
				t.Fatalf("window %d: %d of %d keys arrived; edge %+v", ts, len(out), keys, edge.r.Stats())
			}
			time.Sleep(200 * time.Millisecond)
		}
	}

	sendStatsd(t, edge, round(t1), 2000)
	first := owners(t1, []int{0, 1, 2})
	per := [3]int{}
	for _, o := range first {
		per[o]++
	}
	for i, c := range per {
		if c < keys/10 {
			t.Errorf("upstream %d got only %d of %d keys: partitions not spread", i, c, keys)
		}
	}

	// One upstream goes away (the one with the fewest keys, so that the
	// share that must move is at most a third whatever the hash gave
	// each); the same keys again.
	gone := 0
	for i := range per {
		if per[i] < per[gone] {
			gone = i
		}
	}
	ups[gone].close()
	live := []int{}
	for i := range ups {
		if i != gone {
			live = append(live, i)
		}
	}
	sendStatsd(t, edge, round(t2), 2000)
	second := owners(t2, live)
	moved := 0
	for name, o := range second {
		if was := first[name]; was != o {
			moved++
			if was != gone {
				t.Errorf("%s moved from healthy upstream %d to %d", name, was, o)
			}
		}
	}
	if moved != per[gone] {
		t.Errorf("%d keys moved, want exactly the %d of the ejected upstream", moved, per[gone])
	}
	share := float64(moved) / keys
	t.Logf("keys per upstream %v; after ejecting upstream %d, %.1f%% of keys moved", per, gone, 100*share)
	if share > 1.0/3+0.05 {
		t.Errorf("moved share %.3f > 1/3 + 5%%", share)
	}
	waitBalanced(t, edge, 10*time.Second)
}

// consumeAll reads everything a topic holds now.
func consumeAll(t *testing.T, brokers, topic string) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var recs []*kgo.Record
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		fs := cl.PollFetches(ctx)
		cancel()
		got := fs.Records()
		if len(got) == 0 {
			return recs
		}
		recs = append(recs, got...)
	}
}

// Kafka mode: the record key is the flush partition, so each metric key
// always lands in one Kafka partition.
func TestMetricsSteeringKafkaPartitions(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(8, "baton.metric"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	brokers := c.ListenAddrs()[0]
	n := startNode(t, fmt.Sprintf(`metrics: {bucket_interval: 1s, initial_delay: 0s, flush_partitions: 32}
kafka:
  clusters:
    k: {brokers: [%q], compression: none}
routes:
  default: {kafka: k}
`, brokers))
	// The same keys in two windows, told apart by explicit timestamps.
	now := time.Now().Unix()
	lines := steeringKeys(2000, now-120)
	sendStatsd(t, n, lines, 1000)
	sendStatsd(t, n, steeringKeys(2000, now-60), 1000)

	where := map[string]int32{}
	shards := map[string]int32{}
	windows := map[int64]int{} // buckets per window
	total := 0
	consumeUntil(t, brokers, "baton.metric", 20*time.Second, func(recs []*kgo.Record) bool {
		clear(where)
		clear(shards)
		clear(windows)
		total = 0
		for _, r := range recs {
			if p, ok := shards[string(r.Key)]; ok && p != r.Partition {
				t.Fatalf("shard %q in Kafka partitions %d and %d", r.Key, p, r.Partition)
			}
			shards[string(r.Key)] = r.Partition
			for _, b := range recordBuckets(t, r.Value) {
				total += int(b.Value.Counter)
				windows[b.Timestamp]++
				if p, ok := where[b.Name]; ok && p != r.Partition {
					t.Fatalf("%s in Kafka partitions %d and %d", b.Name, p, r.Partition)
				}
				where[b.Name] = r.Partition
			}
		}
		return total == 2*len(lines)
	})
	if len(where) != len(lines) || len(shards) < 16 {
		t.Fatalf("%d keys over %d shards", len(where), len(shards))
	}
	if windows[now-120] != len(lines) || windows[now-60] != len(lines) {
		t.Fatalf("buckets per window %v, want %d in each of %d and %d", windows, len(lines), now-120, now-60)
	}
	parts := map[int32]bool{}
	for _, p := range shards {
		parts[p] = true
	}
	if len(parts) < 4 {
		t.Fatalf("shards used only %d of 8 Kafka partitions", len(parts))
	}
	for k := range shards {
		if bytes.ContainsFunc([]byte(k), func(r rune) bool { return r < '0' || r > '9' }) {
			t.Fatalf("record key %q is not a flush partition", k)
		}
	}
}

// One metric with 1M distinct tag values: the limiter admits its limit,
// counts the rest as cardinality_limited, and memory stays bounded.
func TestMetricsCardinalityLimit(t *testing.T) {
	const values, limit = 1_000_000, 1000
	// The limiter's windows are aligned to the epoch: an hour-long one
	// rolled over at 18:00 during a CI run and admitted 1,000 more. One
	// window of 114 years does not roll over while the test runs.
	n := startNode(t, fmt.Sprintf("metrics: {bucket_interval: 1s, initial_delay: 0s, cardinality_limit: %d, cardinality_window: 1000000h, max_bytes: 4MiB}\n", limit))
	lines := make([]string, 0, 30000)
	for i := range values {
		lines = append(lines, fmt.Sprintf("card.m:1|c|#v:%d", i))
		if len(lines) == cap(lines) || i == values-1 {
			sendStatsd(t, n, lines, len(lines))
			lines = lines[:0]
			st := n.r.Stats()
			if st.Aggregator.Bytes > 4<<20 {
				t.Fatalf("aggregator holds %d bytes, over its 4 MiB budget", st.Aggregator.Bytes)
			}
		}
	}
	st := waitBalanced(t, n, 60*time.Second)
	limited := st.Classes["metric"].Dropped["cardinality_limited"].Items
	if limited != values-limit {
		t.Fatalf("cardinality_limited = %d, want %d", limited, values-limit)
	}
	if st.Cardinality.Admitted != limit || st.Cardinality.Bytes > 64<<10 {
		t.Fatalf("limiter: %+v", st.Cardinality)
	}
	if got := consumeBuckets(t, n, limit, 10*time.Second); got != limit {
		t.Fatalf("%d buckets delivered, want %d", got, limit)
	}
	t.Logf("limiter %+v; aggregator %+v", *st.Cardinality, *st.Aggregator)
}

// A project flooding new metric keys stays within its share of the
// aggregator: its own oldest buckets are flushed early, and every bucket is
// still delivered once.
func TestMetricsProjectBudget(t *testing.T) {
	const keys = 20000
	n := startNode(t, "metrics: {bucket_interval: 10s, initial_delay: 1s, max_project_bytes: 256KiB}\n")
	lines := make([]string, keys)
	for i := range lines {
		lines[i] = fmt.Sprintf("budget.k%d:1|c", i)
	}
	sendStatsd(t, n, lines, keys) // one item: one Insert of 20k buckets
	got := consumeBuckets(t, n, keys, 30*time.Second)
	st := waitBalanced(t, n, 30*time.Second)
	if got != keys {
		t.Fatalf("%d buckets delivered, want %d", got, keys)
	}
	if st.Aggregator.FlushedEarlyScope == 0 || st.Aggregator.FlushedEarly != 0 {
		t.Fatalf("the project budget did not act (or the total one did): %+v", *st.Aggregator)
	}
	// 20k buckets do not fit one Kafka record: they were split, none lost.
	if m := st.Classes["metric"]; m.Produced.Records < 2 || m.Dropped != nil {
		t.Fatalf("flushed records: %+v", m)
	}
}
