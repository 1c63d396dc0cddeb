package integration

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestStartupFailures runs the real binary into each start-up failure a new
// user meets in the first minutes. Each must end with exit code 1 and one
// line on stderr that names the resource (config field and value) and says
// what to do; no stack trace.
func TestStartupFailures(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the baton binary")
	}
	bin := crashBuildBaton(t)
	// config writes a config whose listeners take free ports, overlaid
	// with extra, and returns its path.
	config := func(t *testing.T, dir, extra string) string {
		t.Helper()
		base := fmt.Sprintf("server:\n  listen: 127.0.0.1:0\nbuffer:\n  dir: %s\n  reserve_bytes: 1MiB\nkafka:\n  embedded:\n    listen: 127.0.0.1:0\n", dir)
		basePath, extraPath := filepath.Join(t.TempDir(), "base.yml"), filepath.Join(t.TempDir(), "extra.yml")
		if err := errors.Join(os.WriteFile(basePath, []byte(base), 0o600), os.WriteFile(extraPath, []byte(extra), 0o600)); err != nil {
			t.Fatal(err)
		}
		return basePath + "," + extraPath
	}
	// busy is a listener the test owns, for a port Baton must find taken.
	busy := func(t *testing.T) string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		return ln.Addr().String()
	}
	run := func(t *testing.T, cfg string) string {
		t.Helper()
		files := strings.Split(cfg, ",")
		return startupFails(t, bin, "run", "--config", files[0], "--config", files[1])
	}

	t.Run("http port busy", func(t *testing.T) {
		addr := busy(t)
		line := run(t, config(t, t.TempDir(), "server:\n  listen: "+addr+"\n"))
		want := "baton: server.listen " + addr + ": the address is in use by another process; stop that process, or set server.listen to a free port"
		if line != want {
			t.Errorf("stderr %q\nwant   %q", line, want)
		}
	})
	t.Run("telemetry port busy", func(t *testing.T) {
		addr := busy(t)
		line := run(t, config(t, t.TempDir(), "telemetry:\n  metrics_listen: "+addr+"\n"))
		want := "baton: telemetry.metrics_listen " + addr + ": the address is in use by another process; stop that process, or set telemetry.metrics_listen to a free port"
		if line != want {
			t.Errorf("stderr %q\nwant   %q", line, want)
		}
	})
	t.Run("data dir locked by another baton", func(t *testing.T) {
		dir := t.TempDir()
		cfg := config(t, dir, "telemetry:\n  log_level: warn\n")
		files := strings.Split(cfg, ",")
		first := crashStartCmd(t, exec.Command(bin, "run", "--config", files[0], "--config", files[1]))
		line := run(t, cfg)
		want := fmt.Sprintf("baton: buffer.dir %s: in use by another Baton (pid %d); stop that one first, or set buffer.dir to another directory", dir, first.cmd.Process.Pid)
		if line != want {
			t.Errorf("stderr %q\nwant   %q", line, want)
		}
		// buffer inspect says the same instead of a lock error.
		if line := startupFails(t, bin, "buffer", "inspect", "--data-dir", dir); line != want {
			t.Errorf("buffer inspect: stderr %q\nwant   %q", line, want)
		}
		if code := first.stop(t, 10*time.Second); code != 0 {
			t.Errorf("first baton exited %d", code)
		}
	})
	t.Run("data dir under a regular file", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "not-a-dir")
		if err := os.WriteFile(file, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(file, "data")
		line := run(t, config(t, dir, ""))
		want := "baton: buffer.dir " + dir + ": cannot be written (mkdir " + file + ": not a directory); set buffer.dir to a directory Baton can create and write"
		if line != want {
			t.Errorf("stderr %q\nwant   %q", line, want)
		}
	})
	t.Run("data dir without write permission", func(t *testing.T) {
		// Root writes through mode 0500: as root, run baton as nobody.
		var asUser *syscall.Credential
		top := t.TempDir()
		if os.Geteuid() == 0 {
			asUser = &syscall.Credential{Uid: 65534, Gid: 65534}
		}
		parent := filepath.Join(top, "ro")
		if err := os.Mkdir(parent, 0o500); err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(parent, "data")
		cfg := filepath.Join(top, "baton.yml")
		yaml := fmt.Sprintf("server:\n  listen: 127.0.0.1:0\nbuffer:\n  dir: %s\n  reserve_bytes: 1MiB\nkafka:\n  embedded:\n    listen: 127.0.0.1:0\n", dir)
		if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
			t.Fatal(err)
		}
		nbin := bin
		if asUser != nil { // nobody must reach the binary and the config
			nbin = filepath.Join(top, "baton")
			data, err := os.ReadFile(bin)
			if err == nil {
				err = errors.Join(os.WriteFile(nbin, data, 0o755), os.Chmod(top, 0o755), os.Chmod(filepath.Dir(top), 0o755))
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		line := startupFailsAs(t, asUser, nbin, "run", "--config", cfg)
		want := "baton: buffer.dir " + dir + ": cannot be written (mkdir " + dir + ": permission denied); set buffer.dir to a directory Baton can create and write"
		if line != want {
			t.Errorf("stderr %q\nwant   %q", line, want)
		}
	})
	for _, tc := range []struct{ name, file, problem string }{
		{"credentials not JSON", "{not json", "invalid relay credentials: invalid character 'n' looking for beginning of object key string"},
		{"credentials missing a field", `{"secret_key":"x"}`, `invalid relay credentials: field "public_key": missing`},
		{"credentials empty object", `{}`, `invalid relay credentials: field "secret_key": missing`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			creds := filepath.Join(dir, "credentials.json")
			if err := os.WriteFile(creds, []byte(tc.file), 0o600); err != nil {
				t.Fatal(err)
			}
			line := run(t, config(t, dir, `mode: managed
upstreams:
  sentry:
    urls: ["http://127.0.0.1:1"]
managed:
  upstream: sentry
routes:
  default:
    upstream: sentry
`))
			want := "baton: managed.credentials " + creds + ": " + tc.problem + "; fix the file, or replace it with `baton credentials generate --overwrite` (the upstream must then trust the new key)"
			if line != want {
				t.Errorf("stderr %q\nwant   %q", line, want)
			}
		})
	}
	// A combination that each field allows but a run refuses: config check
	// says so at file:line, and run refuses it before starting anything.
	t.Run("config check refuses what run refuses", func(t *testing.T) {
		cfg := filepath.Join(t.TempDir(), "small.yml")
		if err := os.WriteFile(cfg, []byte(fmt.Sprintf("buffer:\n  dir: %s\n  max_bytes: 100MiB\n", t.TempDir())), 0o600); err != nil {
			t.Fatal(err)
		}
		want := cfg + ":3: buffer.reserve_bytes: 512MiB leaves nothing of buffer.max_bytes (100MiB) for records; lower reserve_bytes or raise max_bytes"
		if line := startupFails(t, bin, "config", "check", cfg); line != want {
			t.Errorf("config check: %q\nwant %q", line, want)
		}
		code, _, stderr := startupRun(t, bin, "run", "--config", cfg)
		if code != 1 || !strings.Contains(stderr, want) {
			t.Errorf("run: exit %d, stderr %q; want 1 and %q", code, stderr, want)
		}
	})
}

// startupFails runs bin with args, which must fail at start-up: exit code 1
// and exactly one line on stderr, which it returns.
func startupFails(t *testing.T, bin string, args ...string) string {
	t.Helper()
	return startupFailsAs(t, nil, bin, args...)
}

// startupFailsAs is startupFails as another user (nil: this one).
func startupFailsAs(t *testing.T, user *syscall.Credential, bin string, args ...string) string {
	t.Helper()
	code, stdout, stderr := startupRunAs(t, user, bin, args...)
	lines := strings.Split(strings.TrimRight(stderr, "\n"), "\n")
	if code != 1 || len(lines) != 1 || stderr == "" {
		t.Fatalf("baton %s: exit %d and %d stderr lines, want 1 and 1\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, len(lines), stdout, stderr)
	}
	if stackTrace.MatchString(stderr) {
		t.Errorf("stack trace on stderr:\n%s", stderr)
	}
	return lines[0]
}

var stackTrace = regexp.MustCompile(`panic:|goroutine \d+ \[|\.go:\d+`)

func startupRun(t *testing.T, bin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	return startupRunAs(t, nil, bin, args...)
}

func startupRunAs(t *testing.T, user *syscall.Credential, bin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	if user != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: user}
		cmd.Dir = "/"
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		t.Fatalf("baton %s: %v", strings.Join(args, " "), err)
	}
	if ctx.Err() != nil {
		t.Fatalf("baton %s did not exit within 30s (it should have failed at start-up)\nstderr:\n%s", strings.Join(args, " "), errb.String())
	}
	return code, out.String(), errb.String()
}
