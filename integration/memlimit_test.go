package integration

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/KimMachineGun/automemlimit/memlimit"
)

// TestMemoryLimit runs the baton binary and checks the Go runtime's soft
// memory limit it runs with, as printed at start and as /metrics reports it
// (read back from the runtime): runtime.memory_limit, GOMEMLIMIT over it, and,
// where this test may create a memory cgroup, the limit derived from it.
func TestMemoryLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the baton binary")
	}
	bin := crashBuildBaton(t)
	c := crashClient(t)

	start := func(t *testing.T, memtable, extraYAML string, wrap func(cmd *exec.Cmd) *exec.Cmd) (line string, gauge int64) {
		t.Helper()
		dir := t.TempDir()
		cfg := filepath.Join(dir, "baton.yml")
		yaml := fmt.Sprintf("server: {listen: 127.0.0.1:0}\nbuffer: {dir: %s, memtable_size: %s}\n"+
			"kafka: {embedded: {listen: 127.0.0.1:0}}\ntelemetry: {metrics_listen: 127.0.0.1:0}\n%s",
			filepath.Join(dir, "data"), memtable, extraYAML)
		if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin, "run", "--config", cfg)
		cmd.Env = slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "GOMEMLIMIT=") })
		if wrap != nil {
			cmd = wrap(cmd)
		}
		p := crashStartCmd(t, cmd)
		defer p.stop(t, 20*time.Second)
		var metrics string
		for deadline := time.Now().Add(10 * time.Second); line == "" || metrics == ""; time.Sleep(20 * time.Millisecond) {
			for _, l := range strings.Split(p.stdout.String(), "\n") {
				if rest, ok := strings.CutPrefix(l, "  memory limit "); ok {
					line = rest
				}
				if rest, ok := strings.CutPrefix(l, "  metrics on "); ok {
					metrics = rest
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("no memory limit or metrics line on stdout:\n%s", p.stdout.String())
			}
		}
		code, body, err := crashGet(c, metrics)
		if err != nil || code != http.StatusOK {
			t.Fatalf("GET /metrics: %d %v", code, err)
		}
		for _, l := range strings.Split(string(body), "\n") {
			if v, ok := strings.CutPrefix(l, "baton_memory_limit_bytes "); ok {
				f, err := strconv.ParseFloat(v, 64) // the text format writes 1.048576e+08
				if err != nil {
					t.Fatalf("baton_memory_limit_bytes %q: %v", v, err)
				}
				gauge = int64(f)
			}
		}
		return line, gauge
	}

	t.Run("configured", func(t *testing.T) {
		line, gauge := start(t, "48MiB", "runtime: {memory_limit: 100MiB}\n", nil)
		if line != "100MiB (runtime.memory_limit)" || gauge != 100<<20 {
			t.Errorf("memory limit %q, gauge %d; want 100MiB from runtime.memory_limit", line, gauge)
		}
	})
	t.Run("GOMEMLIMIT wins", func(t *testing.T) {
		line, gauge := start(t, "48MiB", "runtime: {memory_limit: 100MiB}\n", func(cmd *exec.Cmd) *exec.Cmd {
			cmd.Env = append(cmd.Env, "GOMEMLIMIT=80MiB")
			return cmd
		})
		if line != "80MiB (GOMEMLIMIT=80MiB)" || gauge != 80<<20 {
			t.Errorf("memory limit %q, gauge %d; want 80MiB from GOMEMLIMIT", line, gauge)
		}
	})
	t.Run("derived from the cgroup", func(t *testing.T) {
		cg := newMemoryCgroup(t, 512<<20)
		line, gauge := start(t, "16MiB", "", func(cmd *exec.Cmd) *exec.Cmd {
			// Join the cgroup before exec, so baton starts inside it.
			args := append([]string{"-c", `echo $$ > "$0" && exec "$@"`, filepath.Join(cg, "cgroup.procs")}, cmd.Args...)
			sh := exec.Command("/bin/sh", args...)
			sh.Env = cmd.Env
			return sh
		})
		// 0.9 × 512 MiB = 460.8 MiB; a cgo build also leaves room for
		// 3 memtables of 16 MiB and the 8 MiB block cache outside the Go heap.
		want, why := int64(460<<20), "90% of the cgroup's 512MiB)"
		if strings.Contains(line, "outside the Go heap") {
			want, why = 404<<20, "90% of the cgroup's 512MiB, less 56MiB that Pebble keeps outside the Go heap)"
		}
		if gauge != want || !strings.HasSuffix(line, why) {
			t.Errorf("memory limit %q, gauge %d; want %d and a reason ending %q", line, gauge, want, why)
		}
	})
}

// newMemoryCgroup creates a memory cgroup limited to limit bytes under this
// process's own (cgroup v2, else v1) and removes it after the test. It skips
// the test where cgroups cannot be created (not root, read-only cgroupfs).
func newMemoryCgroup(t *testing.T, limit int64) string {
	t.Helper()
	// The derived limit is the lowest of the cgroup's ancestors.
	if cur, err := memlimit.FromCgroup(); err == nil && cur < 2*uint64(limit) {
		t.Skipf("this process's cgroup already limits memory to %d bytes: cannot test a %d-byte cgroup under it", cur, limit)
	}
	self, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Skipf("no /proc/self/cgroup (%v): cannot test the cgroup-derived memory limit here", err)
	}
	var dir, limitFile string
	for _, l := range strings.Split(strings.TrimSpace(string(self)), "\n") {
		parts := strings.SplitN(l, ":", 3)
		if len(parts) != 3 {
			continue
		}
		switch {
		case parts[0] == "0" && parts[1] == "" && fileExists("/sys/fs/cgroup/cgroup.controllers"):
			dir, limitFile = filepath.Join("/sys/fs/cgroup", parts[2]), "memory.max"
		case strings.Contains(","+parts[1]+",", ",memory,") && dir == "":
			dir, limitFile = filepath.Join("/sys/fs/cgroup/memory", parts[2]), "memory.limit_in_bytes"
		}
	}
	if dir == "" {
		t.Skip("no memory cgroup found in /proc/self/cgroup: cannot test the cgroup-derived memory limit here")
	}
	cg := filepath.Join(dir, fmt.Sprintf("baton-test-%d", os.Getpid()))
	if err := os.Mkdir(cg, 0o755); err != nil {
		t.Skipf("cannot create a memory cgroup (%v): cannot test the cgroup-derived memory limit here", err)
	}
	t.Cleanup(func() {
		// The process has exited by now (cleanups run in reverse order).
		var err error
		for i := 0; i < 50; i++ {
			if err = os.Remove(cg); err == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Errorf("test cgroup %s left behind: %v", cg, err)
	})
	// On cgroup v2 the memory controller must be enabled for children by a
	// parent without processes of its own, which this test's parent is not
	// (unless it is the root): then memory.max does not exist.
	if err := os.WriteFile(filepath.Join(cg, limitFile), []byte(strconv.FormatInt(limit, 10)), 0o644); err != nil {
		t.Skipf("cannot limit the memory cgroup %s (%v): cannot test the cgroup-derived memory limit here", cg, err)
	}
	return cg
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
