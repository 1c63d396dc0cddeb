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
		case "processing-1":
			if len(cfg.Auth.StaticRelays) != 2 || cfg.Kafka.Clusters["main"].SASL.Password != "secret" || cfg.Server.Listen != ":3000" {
				t.Errorf("processing-1: %+v", cfg.Auth.StaticRelays)
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
	for _, want := range []string{"digraph fleet {", `edge_eu -> health_eu [label="metric, session"];`, `regional_us -> processing [label="transaction, other classes"];`, `processing -> kafka_main_ingest__class_ [label="all classes"];`, "subgraph cluster_eu {"} {
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
