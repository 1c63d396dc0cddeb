package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const example = "../../config/topology/testdata/example.yml"

func TestTopologyCommands(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"topology", "check", example}, &out, &errb); code != exitOK || !strings.Contains(out.String(), "ok (16 nodes)") {
		t.Fatalf("check: %d %q %q", code, out.String(), errb.String())
	}

	// Every problem at once, file:line, exit 1.
	src, err := os.ReadFile(example)
	if err != nil {
		t.Fatal(err)
	}
	broken := strings.Replace(strings.Replace(string(src), "{pool: health-us}", "{pool: health-uss}", 1),
		`"${KAFKA_PASSWORD}"`, "hunter2", 1)
	bad := filepath.Join(t.TempDir(), "fleet.yml")
	if err := os.WriteFile(bad, []byte(broken), 0o600); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	errb.Reset()
	if code := run([]string{"topology", "check", bad}, &out, &errb); code != exitError {
		t.Fatalf("check of a broken fleet: exit %d", code)
	}
	lineOf := func(s string) int { return strings.Count(broken[:strings.Index(broken, s)], "\n") + 1 }
	for _, want := range []string{
		fmt.Sprintf("%s:%d: kafka.main.sasl.password: a secret written into the topology", bad, lineOf("hunter2")),
		fmt.Sprintf("%s:%d: groups.edge-us.routes.session.pool: no group named \"health-uss\" (did you mean \"health-us\"?)", bad, lineOf("health-uss")),
	} {
		if !strings.Contains(errb.String(), want) {
			t.Errorf("check output lacks %q:\n%s", want, errb.String())
		}
	}

	// Flags after FILE; re-render writes nothing.
	dir := t.TempDir()
	out.Reset()
	if code := run([]string{"topology", "render", example, "--out", dir}, &out, &errb); code != exitOK || !strings.Contains(out.String(), "20 files written") {
		t.Fatalf("render: %d %q", code, out.String())
	}
	out.Reset()
	if code := run([]string{"topology", "render", "--out", dir, example}, &out, &errb); code != exitOK || out.String() != "0 files written, 0 removed, the others unchanged\n" {
		t.Fatalf("re-render: %d %q", code, out.String())
	}
	out.Reset()
	if code := run([]string{"topology", "graph", example, "--format", "dot"}, &out, &errb); code != exitOK || !strings.HasPrefix(out.String(), "digraph fleet {") {
		t.Fatalf("graph: %d %q", code, out.String())
	}
	errb.Reset()
	if code := run([]string{"topology", "render", example, "--out", dir, "--format", "k8s"}, &out, &errb); code != exitError ||
		!strings.Contains(errb.String(), "groups.processing: Kubernetes manifests need count, not addresses") {
		t.Errorf("render --format k8s of a group of addresses: %d %q", code, errb.String())
	}
	for _, args := range [][]string{{"topology", "render", example, "--out", dir, "--format", "helm"}, {"topology"}, {"topology", "check"}, {"topology", "render", example}, {"topology", "graph", example, "--format", "png"}, {"topology", "draw", example}} {
		if code := run(args, &out, &errb); code != exitUsage {
			t.Errorf("%v: exit %d, want %d", args, code, exitUsage)
		}
	}
}
