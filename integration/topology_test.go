package integration

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.yaml.in/yaml/v3"

	"github.com/baton-relay/baton/envelope"
	"github.com/baton-relay/baton/relay"
)

// topoFleet is the fleet of TestTopologyFleet: two regions, three tiers;
// each region's sessions and metrics go to its own health pool and
// straight to Kafka, errors, transactions and the rest up the chain
// through the regional pool to the global processing tier and Kafka.
// %[1]s is the kfake broker, %[2]s the data directory, %[3]d.. the ports.
const topoFleet = `version: 1
settings:
  buffer: {reserve_bytes: 1MiB}
  metrics: {bucket_interval: 1s, initial_delay: 0s}
  server: {shutdown_timeout: 3s}
regions:
  eu: {}
  us:
    settings:
      telemetry: {log_level: warn}
tiers:
  edge: {entry: true}
  regional: {}
  processing: {}
kafka:
  main:
    brokers: ["%[1]s"]
    topics: [ingest.error, ingest.transaction, ingest.session, ingest.metric, ingest.check_in, ingest.client_report, ingest.other]
templates:
  node: &node
    listen: 127.0.0.1:3000
    data_dir: %[2]s/{node}
    resources: {buffer: 256MiB, memtable: 1MiB}
groups:
  edge-eu:
    <<: *node
    region: eu
    tier: edge
    addresses: ["127.0.0.1:%[3]d"]
    routes:
      session: {pool: health-eu}
      metric: {pool: health-eu, steer: metric_key}
      transaction: {pool: regional-eu, steer: trace}
      default: {pool: regional-eu}
  edge-us:
    <<: *node
    region: us
    tier: edge
    addresses: ["127.0.0.1:%[4]d"]
    routes:
      session: {pool: health-us}
      metric: {pool: health-us, steer: metric_key}
      transaction: {pool: regional-us, steer: trace}
      default: {pool: regional-us}
  health-eu:
    <<: *node
    region: eu
    tier: regional
    addresses: ["127.0.0.1:%[5]d"]
    routes:
      session: {kafka: main, topic: ingest.session}
      default: {kafka: main, topic: ingest.metric}
  health-us:
    <<: *node
    region: us
    tier: regional
    addresses: ["127.0.0.1:%[6]d"]
    routes:
      session: {kafka: main, topic: ingest.session}
      default: {kafka: main, topic: ingest.metric}
  regional-eu:
    <<: *node
    region: eu
    tier: regional
    addresses: ["127.0.0.1:%[7]d"]
    routes:
      transaction: {pool: processing, steer: trace}
      default: {pool: processing}
  regional-us:
    <<: *node
    region: us
    tier: regional
    addresses: ["127.0.0.1:%[8]d"]
    routes:
      transaction: {pool: processing, steer: trace}
      default: {pool: processing}
  processing:
    <<: *node
    tier: processing
    addresses: ["127.0.0.1:%[9]d"]
    routes:
      error: {kafka: main, topic: ingest.error}
      transaction: {kafka: main, topic: ingest.transaction}
      check_in: {kafka: main, topic: ingest.check_in}
      client_report: {kafka: main, topic: ingest.client_report}
      default: {kafka: main, topic: ingest.other}
`

// topoTopicOf is where the declaration sends each item type.
var topoTopicOf = map[string]string{
	"event":         "ingest.error",
	"attachment":    "ingest.error",
	"transaction":   "ingest.transaction",
	"check_in":      "ingest.check_in",
	"session":       "ingest.session",
	"sessions":      "ingest.session",
	"client_report": "ingest.client_report",
	"statsd":        "ingest.metric",
}

// TestTopologyFleet declares a two-region, three-tier fleet, checks and
// renders it with the baton binary, starts every node as a baton process
// from its rendered files (nodes.yml), sends SDK traffic into both
// regions' edges, and finds every item in the topic the declaration
// names, having passed the pools it names, with the accounting identity
// balanced on every node.
func TestTopologyFleet(t *testing.T) {
	if testing.Short() {
		t.Skip("starts seven baton processes")
	}
	bin := crashBuildBaton(t)
	start := time.Now()
	topics := []string{"ingest.error", "ingest.transaction", "ingest.session", "ingest.metric", "ingest.check_in", "ingest.client_report", "ingest.other"}
	kc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, topics...))
	if err != nil {
		t.Fatal(err)
	}
	defer kc.Close()
	brokers := kc.ListenAddrs()[0]

	dir := t.TempDir()
	ports := make([]any, 7)
	for i := range ports {
		ports[i] = faultFreePort(t)
	}
	file := filepath.Join(dir, "fleet.yml")
	must(t, os.WriteFile(file, fmt.Appendf(nil, topoFleet, append([]any{brokers, filepath.Join(dir, "data")}, ports...)...), 0o600))

	if out := batonCLI(t, bin, "topology", "check", file); !strings.Contains(out, "ok (7 nodes)") {
		t.Fatalf("topology check: %q", out)
	}
	// A broken declaration: a pool that does not exist, and a tier
	// forwarding back down, both reported, with file:line, exit 1.
	good, err := os.ReadFile(file)
	must(t, err)
	broken := filepath.Join(dir, "broken.yml")
	bad := bytes.Replace(bytes.Replace(good, []byte("session: {pool: health-us}"), []byte("session: {pool: health-uss}"), 1),
		[]byte("      default: {pool: processing}\n  processing"), []byte("      default: {pool: edge-us}\n  processing"), 1)
	must(t, os.WriteFile(broken, bad, 0o600))
	lineOf := func(s string) int { return bytes.Count(bad[:bytes.Index(bad, []byte(s))], []byte("\n")) + 1 }
	if got, err := exec.Command(bin, "topology", "check", broken).CombinedOutput(); err == nil ||
		!strings.Contains(string(got), fmt.Sprintf("%s:%d: groups.edge-us.routes.session.pool: no group named \"health-uss\"", broken, lineOf("health-uss"))) ||
		!strings.Contains(string(got), fmt.Sprintf("%s:%d: groups.regional-us.routes.default.pool: class unknown loops: edge-us → regional-us → edge-us", broken, lineOf("{pool: edge-us}"))) {
		t.Errorf("topology check of a broken fleet: %v\n%s", err, got)
	}

	out := filepath.Join(dir, "out")
	if got := batonCLI(t, bin, "topology", "render", file, "--out", out); !strings.Contains(got, "wrote nodes/edge-eu-0.yml") {
		t.Fatalf("topology render: %q", got)
	}
	if got := batonCLI(t, bin, "topology", "render", file, "--out", out); !strings.HasPrefix(got, "0 files written, 0 removed") {
		t.Errorf("a second render wrote files: %q", got)
	}
	var manifest struct {
		Nodes []struct {
			Name, Group, URL string
			Configs          []string
		}
	}
	raw, err := os.ReadFile(filepath.Join(out, "nodes.yml"))
	must(t, err)
	must(t, yaml.Unmarshal(raw, &manifest))
	if len(manifest.Nodes) != 7 {
		t.Fatalf("nodes.yml lists %d nodes, want 7:\n%s", len(manifest.Nodes), raw)
	}

	// Every node from its rendered files, as they are: `config check`
	// accepts them and `run` serves on the declared address.
	procs := map[string]*crashProc{}
	c := crashClient(t)
	for _, n := range manifest.Nodes {
		args := []string{"config", "check"}
		run := []string{"run"}
		for _, f := range n.Configs {
			args = append(args, filepath.Join(out, f))
			run = append(run, "--config", filepath.Join(out, f))
		}
		if got := batonCLI(t, bin, args...); !strings.Contains(got, ": ok") {
			t.Fatalf("%s: config check: %q", n.Name, got)
		}
		p := crashStartCmd(t, exec.Command(bin, run...))
		if p.base+"/" != n.URL {
			t.Fatalf("%s listens on %s, declared %s", n.Name, p.base, n.URL)
		}
		procs[n.Group] = p
	}
	for _, p := range procs {
		p.waitReady(t, c, 20*time.Second)
	}
	t.Logf("%d nodes ready after %s", len(procs), time.Since(start).Round(time.Millisecond))

	// SDK traffic into both regions' edges, and raw sessions and metrics.
	rec := &chainRecorder{next: &http.Transport{}}
	defer rec.next.CloseIdleConnections()
	now := time.Now().Unix()
	metricNames := map[string]string{}
	for _, region := range []string{"eu", "us"} {
		edge := procs["edge-"+region]
		runSDKScenario(t, sdkScenario{
			dsn:        strings.Replace(edge.base, "http://", "http://"+testKey+"@", 1) + "/42",
			transport:  rec,
			prefix:     "topo-" + region,
			attachment: "fleet state " + region + "\n",
			tx:         "GET /fleet/" + region,
			ops:        []string{"db.query"},
			monitor:    "fleet-" + region,
		})
		metric := "fleet_" + region + "_requests"
		metricNames[region] = metric
		raws := [][]byte{
			fmt.Appendf(nil, "{\"sent_at\":\"%s\"}\n{\"type\":\"session\"}\n{\"sid\":\"5d0c1e4b8a2f4c6e9b3a7d1f0e2c4a%02x\",\"did\":\"fleet-%s\",\"status\":\"ok\",\"init\":true,\"started\":\"%s\",\"attrs\":{\"release\":\"fleet@1\"}}\n",
				time.Now().UTC().Format(time.RFC3339), len(region), region, time.Now().UTC().Format(time.RFC3339)),
			statsdEnvelope([]string{fmt.Sprintf("%s@none:3|c|#region:%s|T%d", metric, region, now)}),
		}
		for i, body := range raws {
			req, err := http.NewRequest(http.MethodPost, edge.base+"/api/42/envelope/", bytes.NewReader(body))
			must(t, err)
			for k, v := range authHeader(testKey) {
				req.Header.Set(k, v)
			}
			res, err := rec.RoundTrip(req)
			must(t, err)
			_ = res.Body.Close()
			if res.StatusCode != http.StatusOK {
				t.Fatalf("raw envelope %d to edge-%s: %d", i, region, res.StatusCode)
			}
		}
	}
	if len(rec.errs) > 0 {
		t.Fatalf("could not decode SDK requests: %v", rec.errs)
	}

	// What must arrive where: every item, by payload, in its topic.
	type want struct {
		typ, topic string
		payload    []byte
	}
	var wants []want
	for _, s := range rec.sent {
		env, err := envelope.Parse(s.body)
		if err != nil {
			t.Fatalf("a sent envelope does not parse: %v", err)
		}
		for _, it := range env.Items {
			topic, ok := topoTopicOf[it.TypeName]
			if !ok {
				t.Fatalf("the test does not know where item type %q goes", it.TypeName)
			}
			if it.TypeName != "statsd" { // aggregated into buckets on the way
				wants = append(wants, want{it.TypeName, topic, bytes.Clone(it.Payload)})
			}
		}
	}

	// Every node drains, balanced, tier by tier: a node is drained only
	// once its senders are.
	stats := map[string]relay.Stats{}
	for _, name := range []string{"edge-eu", "edge-us", "health-eu", "health-us", "regional-eu", "regional-us", "processing"} {
		p := procs[name]
		deadline := time.Now().Add(20 * time.Second)
		for {
			st := crashStats(t, c, p.base)
			if st.Pending == 0 && st.Balanced && st.Aggregator == nil || st.Pending == 0 && st.Balanced && st.Aggregator.Buckets == 0 {
				stats[name] = st
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: not drained and balanced after 20s: %+v\nstderr:\n%s", name, st, crashTail(p.stderr.String(), 3000))
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	// The classes went through the pools the declaration names, and no
	// other: sessions and metrics never reach the regional pools or the
	// processing tier; errors and transactions never the health pools.
	for _, region := range []string{"eu", "us"} {
		health, regional := stats["health-"+region], stats["regional-"+region]
		for _, class := range []string{"session", "metric"} {
			if health.Classes[class].Delivered.Records == 0 || regional.Classes[class].Accepted.Records != 0 {
				t.Errorf("%s: %s delivered by health-%s %+v, accepted by regional-%s %+v", region, class, region, health.Classes[class], region, regional.Classes[class])
			}
		}
		for _, class := range []string{"error", "transaction", "check_in"} {
			if regional.Classes[class].Delivered.Records == 0 || health.Classes[class].Accepted.Records != 0 {
				t.Errorf("%s: %s delivered by regional-%s %+v, accepted by health-%s %+v", region, class, region, regional.Classes[class], region, health.Classes[class])
			}
		}
	}
	proc := stats["processing"]
	for _, class := range []string{"session", "metric"} {
		if proc.Classes[class].Accepted.Records != 0 {
			t.Errorf("processing accepted %s: %+v", class, proc.Classes[class])
		}
	}
	for name, st := range stats {
		if st.Dropped != 0 {
			t.Errorf("%s dropped %d records: %+v", name, st.Dropped, st.Classes)
		}
	}

	// Every item in its declared topic, exactly once.
	records := map[string][]*kgo.Record{}
	seen := make([]int, len(wants))
	for _, topic := range topics {
		delivered := 0
		for _, name := range []string{"health-eu", "health-us", "processing"} {
			for class, co := range stats[name].Classes {
				if topicOfNode(name, class) == topic {
					delivered += int(co.Delivered.Records)
				}
			}
		}
		if delivered == 0 {
			continue
		}
		recs := consume(t, brokers, topic, delivered, 15*time.Second)
		records[topic] = recs
		for _, r := range recs {
			env, err := envelope.Parse(r.Value)
			if err != nil {
				t.Errorf("%s: a record is not an envelope: %v", topic, err)
				continue
			}
			for _, it := range env.Items {
				for i, w := range wants {
					if w.topic == topic && w.typ == it.TypeName && bytes.Equal(w.payload, it.Payload) {
						seen[i]++
					}
				}
			}
		}
	}
	for i, w := range wants {
		if seen[i] != 1 {
			t.Errorf("%s item (%d bytes) arrived %d times in %s, want once", w.typ, len(w.payload), seen[i], w.topic)
		}
	}
	for region, metric := range metricNames {
		found := false
		for _, r := range records["ingest.metric"] {
			found = found || bytes.Contains(r.Value, []byte(metric))
		}
		if !found {
			t.Errorf("%s: metric %s is not in ingest.metric", region, metric)
		}
	}
	for _, typ := range []string{"event", "attachment", "transaction", "check_in", "session"} {
		n := 0
		for _, w := range wants {
			if w.typ == typ {
				n++
			}
		}
		if n < 2 {
			t.Errorf("%d %s items sent, want one per region: the test lost coverage", n, typ)
		}
	}
	t.Logf("every item found after %s", time.Since(start).Round(time.Millisecond))
	stopping := time.Now()
	for _, p := range procs {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
	}
	for name, p := range procs {
		if code := p.stop(t, 20*time.Second); code != 0 {
			t.Errorf("%s exit %d", name, code)
		}
	}
	t.Logf("stopped in %s", time.Since(stopping).Round(time.Millisecond))
}

// topicOfNode is the topic the fleet's Kafka-facing node name sends class
// to, as topoFleet declares it.
func topicOfNode(name, class string) string {
	if strings.HasPrefix(name, "health-") {
		if class == "session" {
			return "ingest.session"
		}
		return "ingest.metric"
	}
	switch class {
	case "error", "transaction", "check_in", "client_report":
		return "ingest." + class
	}
	return "ingest.other"
}
