package topology

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/baton-relay/baton/config"
)

func loadExample(t *testing.T, src []byte) *Topology {
	t.Helper()
	top, err := Parse("example.yml", src)
	if err == nil {
		err = top.Check()
	}
	if err != nil {
		t.Fatal(err)
	}
	return top
}

// TestRenderLoads: every node's files, as nodes.yml lists them, load as an
// ordinary Baton config, and the config says what the topology declared.
func TestRenderLoads(t *testing.T) {
	t.Setenv("KAFKA_PASSWORD", "secret")
	for _, v := range []string{"EDGE_EU", "EDGE_US", "REGIONAL_EU", "REGIONAL_US"} {
		t.Setenv(v+"_SECRET_KEY", "secret-of-"+v) // checked by the node when it signs, not at load
	}
	src, err := os.ReadFile("testdata/example.yml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if _, _, err := loadExample(t, src).Render(dir); err != nil {
		t.Fatal(err)
	}
	var m Manifest
	raw, err := os.ReadFile(filepath.Join(dir, ManifestFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	if len(m.Nodes) != 16 {
		t.Fatalf("%d nodes, want 16", len(m.Nodes))
	}
	for _, n := range m.Nodes {
		paths := make([]string, len(n.Configs))
		for i, c := range n.Configs {
			paths[i] = filepath.Join(dir, c)
		}
		cfg, err := config.Load(paths...)
		if err != nil {
			t.Fatalf("%s: %v", n.Name, err)
		}
		switch n.Name {
		case "edge-eu-1":
			if u, ok := cfg.Upstreams["health-eu"]; !ok || len(u.URLs) != 2 || cfg.Metrics.FlushPartitions != 16 ||
				cfg.Telemetry.MetricsListen != "127.0.0.1:9090" || cfg.Telemetry.LogFormat != "json" || cfg.Buffer.Dir != "/var/lib/baton/edge-eu-1" {
				t.Errorf("edge-eu-1: %+v %+v %+v", cfg.Upstreams, cfg.Metrics, cfg.Telemetry)
			}
		case "edge-us-0":
			if cfg.Telemetry.MetricsListen != "" || cfg.Telemetry.LogFormat != "json" {
				t.Errorf("edge-us-0 took the eu overlay: %+v", cfg.Telemetry)
			}
		case "regional-us-1":
			// Managed: configs from processing, which its edges ask it for.
			if cfg.Mode != config.ModeManaged || cfg.Managed.Upstream != "processing" || cfg.Managed.SecretKey != "secret-of-REGIONAL_US" ||
				len(cfg.Auth.StaticRelays) != 1 || cfg.Auth.StaticRelays["c288b15b-ca57-49b5-a7d9-e3332502bd32"].PublicKey == "" {
				t.Errorf("regional-us-1: mode %s managed %+v static_relays %+v", cfg.Mode, cfg.Managed, cfg.Auth.StaticRelays)
			}
		case "processing-1":
			if len(cfg.Auth.StaticRelays) != 2 || cfg.Kafka.Clusters["main"].SASL.Password != "secret" || cfg.Server.Listen != ":3000" {
				t.Errorf("processing-1: %+v", cfg.Auth.StaticRelays)
			}
			// Project configs from Sentry, an upstream no route uses.
			if cfg.Managed.Upstream != "sentry" || cfg.Managed.Credentials != "/etc/baton/credentials.json" ||
				!slices.Equal(cfg.Upstreams["sentry"].URLs, []string{"https://sentry.example.com/"}) {
				t.Errorf("processing-1: managed %+v upstreams %+v", cfg.Managed, cfg.Upstreams)
			}
			if _, ok := cfg.Routes["default"].Dest.(config.KafkaDest); !ok {
				t.Errorf("processing-1 routes %+v", cfg.Routes)
			}
		}
	}
}

// TestRenderSkipsUnchanged: a re-render writes nothing; a change to one
// group rewrites only its nodes' files, and the others keep their mtime.
func TestRenderSkipsUnchanged(t *testing.T) {
	src, err := os.ReadFile("testdata/example.yml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	first, _, err := loadExample(t, src).Render(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(first) != 20 {
		t.Fatalf("first render wrote %d files: %v", len(first), first)
	}
	// Age every file, so a rewrite shows in its mtime.
	old := time.Now().Add(-time.Hour).Truncate(time.Second)
	for _, f := range first {
		if err := os.Chtimes(filepath.Join(dir, f), old, old); err != nil {
			t.Fatal(err)
		}
	}
	if again, removed, err := loadExample(t, src).Render(dir); err != nil || len(again)+len(removed) != 0 {
		t.Fatalf("re-render wrote %v (%v)", again, err)
	}
	changed := strings.Replace(string(src), "resources: {buffer: 100GiB, memtable: 64MiB}", "resources: {buffer: 200GiB, memtable: 64MiB}", 1)
	if changed == string(src) {
		t.Fatal("the example has no processing resources line")
	}
	written, removed, err := loadExample(t, []byte(changed)).Render(dir)
	if err != nil || len(removed) != 0 {
		t.Fatal(err, removed)
	}
	want := []string{"nodes/processing-0.yml", "nodes/processing-1.yml"}
	if !slices.Equal(written, want) {
		t.Errorf("wrote %v, want %v", written, want)
	}
	for _, f := range first {
		st, err := os.Stat(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if rewritten := !st.ModTime().Equal(old); rewritten != slices.Contains(want, f) {
			t.Errorf("%s: mtime %v, rewritten %v", f, st.ModTime(), rewritten)
		}
	}
	b, _ := os.ReadFile(filepath.Join(dir, "nodes/processing-0.yml"))
	if !strings.Contains(string(b), "max_bytes: 200GiB") {
		t.Errorf("processing-0.yml:\n%s", b)
	}
}

func TestGraphFormats(t *testing.T) {
	src, err := os.ReadFile("testdata/example.yml")
	if err != nil {
		t.Fatal(err)
	}
	top := loadExample(t, src)
	dot, err := top.Graph(FormatDOT)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"digraph fleet {", `edge_eu -> health_eu [label="metric, session"];`, `regional_us -> processing [label="transaction, other classes"];`, `processing -> kafka_main_ingest__class_ [label="all classes"];`, "subgraph cluster_eu {",
		`processing -> ext_sentry [label="project configs", style=dashed];`, `ext_sentry [label="sentry", shape=cylinder];`, `regional_eu [label="regional-eu\nregional, managed, 2 nodes"];`} {
		if !strings.Contains(dot, want) {
			t.Errorf("dot lacks %q:\n%s", want, dot)
		}
	}
	if _, err := top.Graph("svg"); err == nil {
		t.Error("graph svg: no error")
	}
}

// TestRenderRemovesUndeclared: a node no longer declared loses its config;
// its senders' configs (their upstream URLs) and the manifest change, the
// others stay untouched.
func TestRenderRemovesUndeclared(t *testing.T) {
	src, err := os.ReadFile("testdata/example.yml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if _, _, err := loadExample(t, src).Render(dir); err != nil {
		t.Fatal(err)
	}
	fewer := strings.Replace(string(src), "addresses: [proc-1.internal, proc-2.internal]", "addresses: [proc-1.internal]", 1)
	written, removed, err := loadExample(t, []byte(fewer)).Render(dir)
	if err != nil {
		t.Fatal(err)
	}
	senders := []string{ManifestFile, "nodes/regional-eu-0.yml", "nodes/regional-eu-1.yml", "nodes/regional-us-0.yml", "nodes/regional-us-1.yml"}
	if !slices.Equal(written, senders) || !slices.Equal(removed, []string{"nodes/processing-1.yml"}) {
		t.Errorf("wrote %v, removed %v", written, removed)
	}
	if _, err := os.Stat(filepath.Join(dir, "nodes/processing-1.yml")); !os.IsNotExist(err) {
		t.Errorf("processing-1.yml: %v", err)
	}
}

// TestRenderRedis: a group's Redis becomes its nodes' redis: section,
// which Baton loads with the password from the environment, and
// fallback_share is the number of nodes counting in that Redis; a group
// without Redis gets none.
func TestRenderRedis(t *testing.T) {
	t.Setenv("REDIS_PASSWORD", "pw")
	src := strings.Replace(fleet, "addresses: [h2:3000]", "addresses: [h2:3000, h3:3000]", 1)
	src = strings.Replace(src, `password: ${REDIS_PASSWORD}`, "password: ${REDIS_PASSWORD}\n    cluster: true\n    key_prefix: fleet-eu\n    tls: {enabled: true, ca_file: /etc/redis/ca.pem}", 1)
	top, err := Parse("fleet.yml", []byte(src))
	if err == nil {
		err = top.Check()
	}
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if _, _, err := top.Render(dir); err != nil {
		t.Fatal(err)
	}
	load := func(node string) config.Config {
		t.Helper()
		cfg, err := config.Load(filepath.Join(dir, BaseFile), filepath.Join(dir, RegionsDir, "eu.yml"), filepath.Join(dir, NodesDir, node+".yml"))
		if err != nil {
			t.Fatalf("%s: %v", node, err)
		}
		return cfg
	}
	for _, node := range []string{"core-0", "core-1"} {
		r := load(node).Redis
		if !slices.Equal(r.Addresses, []string{"r1:6379"}) || string(r.Password) != "pw" || !r.Cluster || r.KeyPrefix != "fleet-eu" ||
			!r.TLS.Enabled || r.TLS.CAFile != "/etc/redis/ca.pem" || r.FallbackShare != 2 {
			t.Errorf("%s: redis %+v", node, r)
		}
	}
	if r := load("edge-0").Redis; r.Enabled() {
		t.Errorf("edge-0 (no redis declared) has redis %+v", r)
	}
	b, _ := os.ReadFile(filepath.Join(dir, NodesDir, "core-0.yml"))
	if !strings.Contains(string(b), "password: ${REDIS_PASSWORD}") {
		t.Errorf("core-0.yml does not keep the reference:\n%s", b)
	}
}
