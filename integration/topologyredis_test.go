package integration

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// topoRedisFleet is the fleet of TestTopologyRedis: two managed edge
// groups of one region that count quotas in the region's Redis, whose
// password is a ${NAME} reference. %[1]s is the fake Sentry, %[2]s the
// Redis address, %[3]s the data directory, %[4]d.. the ports.
const topoRedisFleet = `version: 1
settings:
  buffer: {reserve_bytes: 1MiB}
  server: {shutdown_timeout: 1s}
  managed: {fetch: {batch_interval: 10ms}}
regions: {eu: {}}
tiers: {edge: {entry: true}}
external:
  sentry: {urls: ["%[1]s"]}
redis:
  quota-eu:
    region: eu
    addresses: ["%[2]s"]
    password: "${TOPO_REDIS_PASSWORD}"
templates:
  edge: &edge
    region: eu
    tier: edge
    mode: managed
    listen: 127.0.0.1:3000
    data_dir: %[3]s/{node}
    redis: quota-eu
    routes:
      default: {external: sentry}
groups:
  edge-a:
    <<: *edge
    addresses: ["127.0.0.1:%[4]d"]
    identity: {credentials_file: %[3]s/edge-a.json}
    settings:
      telemetry: {metrics_listen: "127.0.0.1:%[5]d"}
  edge-b:
    <<: *edge
    addresses: ["127.0.0.1:%[6]d"]
    identity: {credentials_file: %[3]s/edge-b.json}
    settings:
      telemetry: {metrics_listen: "127.0.0.1:%[7]d"}
`

// TestTopologyRedis: `baton topology check` reports Redis mistakes with
// file:line; the rendered nodes, accepted by `baton config check`, run
// with the declared Redis (password from the environment) and admit a
// quota's limit once across both groups.
func TestTopologyRedis(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the baton binary and redis-server")
	}
	start := time.Now()
	rs := startFleetRedis(t, "--requirepass", "topo-s3cret")
	t.Setenv("TOPO_REDIS_PASSWORD", "topo-s3cret")
	bin := crashBuildBaton(t)
	t.Logf("redis-server and the baton build: %v", time.Since(start).Round(time.Millisecond))
	s := newFakeSentry(t)
	const pid, key = 64, "64646464646464646464646464646464"
	fleetQuota(s, pid, key, "topo_errs", 10)

	dir := t.TempDir()
	ports := []any{faultFreePort(t), faultFreePort(t), faultFreePort(t), faultFreePort(t)}
	file := filepath.Join(dir, "fleet.yml")
	good := fmt.Appendf(nil, topoRedisFleet, append([]any{s.url(), rs.addr, filepath.Join(dir, "data")}, ports...)...)
	must(t, os.WriteFile(file, good, 0o600))
	if out := batonCLI(t, bin, "topology", "check", file); !strings.Contains(out, "ok (2 nodes)") {
		t.Fatalf("topology check: %q", out)
	}

	// Mistakes: an unknown Redis, a password written as the value, a
	// proxy group with Redis and groups of one pool on different Redis.
	bad := bytes.Replace(good, []byte(`password: "${TOPO_REDIS_PASSWORD}"`), []byte("password: topo-s3cret"), 1)
	bad = bytes.Replace(bad, []byte("    <<: *edge\n    addresses: [\"127.0.0.1:"+fmt.Sprint(ports[2])), []byte("    <<: *edge\n    redis: quota-us\n    addresses: [\"127.0.0.1:"+fmt.Sprint(ports[2])), 1)
	bad = append(bad, []byte("  edge-c:\n    <<: *edge\n    mode: proxy\n    redis: quota-eu\n    listen: 127.0.0.1:3001\n")...)
	broken := filepath.Join(dir, "broken.yml")
	must(t, os.WriteFile(broken, bad, 0o600))
	lineOf := func(s string, nth int) int {
		i := 0
		for range nth {
			j := bytes.Index(bad[i:], []byte(s))
			if j < 0 {
				t.Fatalf("broken.yml has no %q", s)
			}
			i += j + 1
		}
		return bytes.Count(bad[:i], []byte("\n")) + 1
	}
	got, err := exec.Command(bin, "topology", "check", broken).CombinedOutput()
	for _, want := range []string{
		fmt.Sprintf("%s:%d: redis.quota-eu.password: a secret written into the topology", broken, lineOf("password: topo-s3cret", 1)),
		fmt.Sprintf("%s:%d: groups.edge-b.redis: no Redis named \"quota-us\" (did you mean \"quota-eu\"?)", broken, lineOf("redis: quota-us", 1)),
		fmt.Sprintf("%s:%d: groups.edge-c.redis: edge-c is in proxy mode, which enforces no quotas", broken, lineOf("redis: quota-eu", 2)),
		fmt.Sprintf("%s:%d: groups.edge-b.redis: edge-b counts quotas in Redis quota-us, but edge-a, of the same tier (edge) and region eu, counts them in Redis quota-eu", broken, lineOf("redis: quota-us", 1)),
	} {
		if err == nil || !strings.Contains(string(got), want) {
			t.Errorf("topology check of a broken fleet: %v; want\n  %s\ngot:\n%s", err, want, got)
		}
	}

	out := filepath.Join(dir, "out")
	batonCLI(t, bin, "topology", "render", file, "--out", out)
	var manifest struct {
		Nodes []struct {
			Name    string
			Configs []string
		}
	}
	raw, err := os.ReadFile(filepath.Join(out, "nodes.yml"))
	must(t, err)
	must(t, yaml.Unmarshal(raw, &manifest))
	var nodes []*fleetNode
	for i, n := range manifest.Nodes {
		own, err := os.ReadFile(filepath.Join(out, "nodes", n.Name+".yml"))
		must(t, err)
		if !strings.Contains(string(own), "fallback_share: 2") || strings.Contains(string(own), "topo-s3cret") {
			t.Errorf("%s: want the reference, not the password, and fallback_share 2 (two nodes count in quota-eu):\n%s", n.Name, own)
		}
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
		t.Cleanup(p.kill)
		nodes = append(nodes, &fleetNode{crashProc: p, metrics: fmt.Sprintf("http://127.0.0.1:%d", ports[2*i+1])})
	}
	if len(nodes) != 2 {
		t.Fatalf("nodes.yml lists %d nodes, want 2:\n%s", len(nodes), raw)
	}
	for _, n := range nodes {
		n.waitReady(t, http.DefaultClient, 10*time.Second)
	}
	t.Logf("checked, rendered, two nodes ready: %v", time.Since(start).Round(time.Millisecond))
	fleetWarm(t, nodes, pid, key, 1)
	t.Logf("project configs cached: %v", time.Since(start).Round(time.Millisecond))
	c := crashClient(t)
	accepted := 0
	for i := range 20 {
		if fleetSend(c, nodes[i%2].base, pid, key, fmt.Sprintf("topo-%d", i)) == 200 {
			accepted++
		}
	}
	if accepted != 10 {
		t.Errorf("%d of 20 accepted by the two edge groups with a quota of 10 in their Redis, want 10", accepted)
	}
	for _, n := range nodes {
		if up, l := n.metric(t, "baton_redis_up"), n.metric(t, "baton_quota_leases_total"); up != 1 || l == 0 {
			t.Errorf("%s: baton_redis_up %v, %v leases; want up with leases (the password from the environment)", n.base, up, l)
		}
	}
}
