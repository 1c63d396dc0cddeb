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

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.yaml.in/yaml/v3"

	"github.com/baton-relay/baton/relay/auth"
)

// topoTrustFleet is the fleet of TestTopologyTrustChain: two managed
// edges under the managed regional tier, which trusts both and fetches
// project configs from Sentry (project_configs), sending items to Kafka.
// edge fetches its configs from regional directly (its default route);
// edge2 through mid, a static pool, which serves none and passes the
// requests on to its upstream. %[1]s is the kfake broker, %[2]s the data
// directory, %[3]s the fake Sentry, %[4]s the project's public key,
// %[5]d.. the ports, %[9]s.. the credentials of edge, edge2 and regional.
const topoTrustFleet = `version: 1
settings:
  buffer: {reserve_bytes: 1MiB}
  server: {shutdown_timeout: 3s}
  managed: {fetch: {batch_interval: 10ms}}
tiers:
  edge: {entry: true}
  regional: {}
kafka:
  main:
    brokers: ["%[1]s"]
    topics: [ingest.error, ingest.other]
external:
  sentry:
    urls: ["%[3]s"]
templates:
  node: &node
    listen: 127.0.0.1:3000
    data_dir: %[2]s/{node}
    resources: {buffer: 256MiB, memtable: 1MiB}
groups:
  edge:
    <<: *node
    tier: edge
    mode: managed
    addresses: ["127.0.0.1:%[5]d"]
    identity: {relay_id: %[9]s, public_key: %[10]s, credentials_file: %[11]s}
    routes:
      default: {pool: regional}
  edge2:
    <<: *node
    tier: edge
    mode: managed
    addresses: ["127.0.0.1:%[6]d"]
    identity: {relay_id: %[12]s, public_key: %[13]s, credentials_file: %[14]s}
    routes:
      default: {pool: mid}
  mid:
    <<: *node
    tier: regional
    mode: static
    addresses: ["127.0.0.1:%[7]d"]
    settings:
      projects: {"42": {public_keys: [%[4]s]}}
    routes:
      default: {pool: regional}
  regional:
    <<: *node
    tier: regional
    mode: managed
    addresses: ["127.0.0.1:%[8]d"]
    identity: {relay_id: %[15]s, public_key: %[16]s, credentials_file: %[17]s}
    trust: [edge, edge2]
    project_configs: {external: sentry}
    routes:
      error: {kafka: main, topic: ingest.error}
      default: {kafka: main, topic: ingest.other}
`

// TestTopologyTrustChain: a rendered fleet whose managed edges register
// with and fetch project configs from the managed regional node that
// trusts them (auth.static_relays, from trust:), one directly, one
// through a static pool, while the regional node registers with and
// fetches them from a fake Sentry: an SDK event sent to each edge is in
// the Kafka topic the declaration names, Sentry knows the regional relay
// only (a managed Baton that does not trust a relay passes its
// registration up to Sentry), and no node refused or dropped anything.
// Without the trust entry, `topology check` fails at the edge's route,
// file:line.
func TestTopologyTrustChain(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two baton processes")
	}
	bin := crashBuildBaton(t)
	start := time.Now()
	kc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "ingest.error", "ingest.other"))
	must(t, err)
	defer kc.Close()
	brokers := kc.ListenAddrs()[0]
	s := newFakeSentry(t)
	s.setProject(managedKey, fakeSentryProjectState(42, managedKey, "r1", nil))

	dir := t.TempDir()
	var idArgs []any
	ids := map[string]string{}
	for _, name := range []string{"edge", "edge2", "regional"} {
		creds, err := auth.Generate()
		must(t, err)
		path := filepath.Join(dir, name+"-credentials.json")
		must(t, creds.Save(path))
		ids[name] = creds.ID
		idArgs = append(idArgs, creds.ID, auth.FormatPublicKey(creds.PublicKey), path)
	}
	file := filepath.Join(dir, "fleet.yml")
	args := append([]any{brokers, filepath.Join(dir, "data"), s.url(), managedKey,
		faultFreePort(t), faultFreePort(t), faultFreePort(t), faultFreePort(t)}, idArgs...)
	good := fmt.Appendf(nil, topoTrustFleet, args...)
	must(t, os.WriteFile(file, good, 0o600))
	if out := batonCLI(t, bin, "topology", "check", file); !strings.Contains(out, "ok (4 nodes)") {
		t.Fatalf("topology check: %q", out)
	}

	// Without edge2's trust entry its project config requests reach, through
	// mid, a managed node that does not trust it: reported at its route.
	broken := filepath.Join(dir, "untrusted.yml")
	bad := bytes.Replace(good, []byte("    trust: [edge, edge2]\n"), []byte("    trust: [edge]\n"), 1)
	must(t, os.WriteFile(broken, bad, 0o600))
	line := bytes.Count(bad[:bytes.Index(bad, []byte("default: {pool: mid}"))], []byte("\n")) + 1
	want := fmt.Sprintf("%s:%d: groups.edge2.routes.default.pool: regional (mode managed) does not trust edge2, which fetches project configs from it through mid: add edge2 to groups.regional.trust", broken, line)
	if got, err := exec.Command(bin, "topology", "check", broken).CombinedOutput(); err == nil || !strings.Contains(string(got), want) {
		t.Errorf("topology check without the trust entry: %v\n%s\nwant %s", err, got, want)
	}

	out := filepath.Join(dir, "out")
	batonCLI(t, bin, "topology", "render", file, "--out", out)
	raw, err := os.ReadFile(filepath.Join(out, "nodes.yml"))
	must(t, err)
	var manifest struct {
		Nodes []struct {
			Name, Group string
			Configs     []string
		}
	}
	must(t, yaml.Unmarshal(raw, &manifest))
	procs := map[string]*crashProc{}
	c := crashClient(t)
	for _, n := range manifest.Nodes {
		run := []string{"run"}
		for _, f := range n.Configs {
			run = append(run, "--config", filepath.Join(out, f))
		}
		procs[n.Group] = crashStartCmd(t, exec.Command(bin, run...))
	}
	if len(procs) != 4 {
		t.Fatalf("nodes.yml lists %v, want one node per group", manifest.Nodes)
	}
	for _, p := range procs {
		p.waitReady(t, c, 15*time.Second)
	}

	// An SDK event into each edge, which waits for the project's config
	// from the regional node, which waits for Sentry's.
	regional := procs["regional"]
	markers := map[string]string{}
	for _, name := range []string{"edge", "edge2"} {
		markers[name] = fmt.Sprintf("topology trust chain %s %d", name, time.Now().UnixNano())
		body := fmt.Appendf(nil, "{}\n{\"type\":\"event\"}\n{\"message\":%q}\n", markers[name])
		req, err := http.NewRequest(http.MethodPost, procs[name].base+"/api/42/envelope/", bytes.NewReader(body))
		must(t, err)
		for k, v := range authHeader(managedKey) {
			req.Header.Set(k, v)
		}
		res, err := c.Do(req)
		must(t, err)
		_ = res.Body.Close()
		if res.StatusCode != http.StatusOK {
			t.Fatalf("envelope to %s: %d", name, res.StatusCode)
		}
	}
	recs := consumeUntil(t, brokers, "ingest.error", 15*time.Second, func(recs []*kgo.Record) bool {
		n := 0
		for _, r := range recs {
			for _, m := range markers {
				if bytes.Contains(r.Value, []byte(m)) {
					n++
				}
			}
		}
		return n == len(markers)
	})
	if n := len(recs); n != len(markers) {
		t.Errorf("%d records in ingest.error, want the %d events", n, len(markers))
	}

	// The edges registered with the regional node (it trusts them), not
	// with Sentry; Sentry served the regional node's signed requests.
	if reg := s.registered(); len(reg) != 1 || reg[ids["regional"]] == "" {
		t.Errorf("Sentry registered %v, want the regional relay %s only", reg, ids["regional"])
	}
	if len(s.configRequests()) == 0 {
		t.Error("Sentry served no project configs")
	}
	for name, p := range procs {
		st := crashStats(t, c, p.base)
		if st.Rejected["relay_auth"] != 0 || st.Dropped != 0 {
			t.Errorf("%s: rejected %v, dropped %d", name, st.Rejected, st.Dropped)
		}
	}
	if st := crashStats(t, c, regional.base); st.Classes["error"].Delivered.Records != 2 {
		t.Errorf("regional delivered %+v errors, want 2", st.Classes["error"])
	}
	t.Logf("event in Kafka through the chain after %s", time.Since(start).Round(time.Millisecond))
	stopping := time.Now()
	for name, p := range procs {
		if code := p.stop(t, 10*time.Second); code != 0 {
			t.Errorf("%s exit %d", name, code)
		}
	}
	t.Logf("stopped in %s", time.Since(stopping).Round(time.Millisecond))
}
