package integration

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// SIGHUP re-reads the config files: a key added to a static project file
// is admitted without a restart, and a broken file keeps the projects in
// force.
func TestReloadStaticProjectsOnSIGHUP(t *testing.T) {
	bin := crashBuildBaton(t)
	dir := t.TempDir()
	const keyA, keyB = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	projects := filepath.Join(dir, "projects.yaml")
	writeProjects := func(keys string) {
		if err := os.WriteFile(projects, fmt.Appendf(nil, "\"42\": {public_keys: [%s]}\n", keys), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeProjects(keyA)
	cfg := filepath.Join(dir, "baton.yaml")
	if err := os.WriteFile(cfg, fmt.Appendf(nil, `mode: static
project_files: [projects.yaml]
server: {listen: 127.0.0.1:0}
buffer: {dir: %s, reserve_bytes: 1MiB}
kafka: {embedded: {listen: 127.0.0.1:0}}
`, filepath.Join(dir, "data")), 0o600); err != nil {
		t.Fatal(err)
	}
	p := crashStart(t, bin, cfg)
	p.waitReady(t, http.DefaultClient, 10*time.Second)

	send := func(key string) int {
		status, _, _ := post(t, p.base+"/api/42/envelope/", []byte("{}\n{\"type\":\"event\"}\n{}\n"), authHeader(key))
		return status
	}
	if a, b := send(keyA), send(keyB); a != 200 || b != 401 {
		t.Fatalf("before reload: key A %d, key B %d; want 200, 401", a, b)
	}

	writeProjects(keyA + ", " + keyB)
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	fakeWaitFor(t, 10*time.Second, func() bool { return send(keyB) == 200 },
		func() string {
			return "key B still refused after SIGHUP; stderr:\n" + crashTail(p.stderr.String(), 2000)
		})

	// A broken file is reported and changes nothing.
	if err := os.WriteFile(projects, []byte("\"42\": {public_keys: [not-hex]}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	fakeWaitFor(t, 10*time.Second, func() bool { return strings.Contains(p.stderr.String(), "reload failed") },
		func() string { return "no reload failure logged:\n" + crashTail(p.stderr.String(), 2000) })
	if a, b := send(keyA), send(keyB); a != 200 || b != 200 {
		t.Fatalf("after a failed reload: key A %d, key B %d; want both 200", a, b)
	}
	if code := p.stop(t, 10*time.Second); code != 0 {
		t.Fatalf("exit code %d", code)
	}
}
