package integration

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// shutdownConfig writes a config routing every class to upstream "dest" at
// url, with a long drain window, and returns its path.
func shutdownConfig(t *testing.T, dir, url string) string {
	t.Helper()
	cfg := filepath.Join(dir, "baton.yaml")
	body := fmt.Sprintf("server: {listen: 127.0.0.1:0, shutdown_timeout: 60s}\nbuffer: {dir: %s, reserve_bytes: 1MiB}\n",
		filepath.Join(dir, "data")) + fakeUpstreamYAML("dest", url, "default")
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfg
}

var drainLine = regexp.MustCompile(`msg=draining records_left=(\d+) per_destination="([^"]*)" time_left=(\S+)`)

// A shutdown waiting on a dead destination logs, once a second, what is
// left per destination and the time left; a second SIGTERM ends it at once,
// the records stay in the buffer, and the next start delivers them.
func TestShutdownDrainProgressAndSecondSignal(t *testing.T) {
	bin := crashBuildBaton(t)
	dir := t.TempDir()
	p := crashStart(t, bin, shutdownConfig(t, dir, fmt.Sprintf("http://127.0.0.1:%d", faultFreePort(t))))
	p.waitReady(t, http.DefaultClient, 10*time.Second)
	const n = 3
	for i := range n {
		body := fmt.Appendf(nil, "{}\n{\"type\":\"event\"}\n{\"message\":\"drain-%d\"}\n", i)
		if status, resp, _ := post(t, p.base+"/api/1/envelope/", body, authHeader("a7c3e9f1b5d24680ace13579bdf02468")); status != 200 {
			t.Fatalf("envelope %d: %d %s", i, status, resp)
		}
	}

	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	fakeWaitFor(t, 10*time.Second, func() bool { return len(drainLine.FindAllString(p.stderr.String(), -1)) >= 2 },
		func() string { return "no two drain progress lines:\n" + crashTail(p.stderr.String(), 3000) })
	lines := drainLine.FindAllStringSubmatch(p.stderr.String(), -1)
	for _, m := range lines {
		if m[1] != "3" || m[2] != "upstream dest=3" {
			t.Errorf("progress line %q: want 3 records left, all for upstream dest", m[0])
		}
	}
	first, err1 := time.ParseDuration(lines[0][3])
	second, err2 := time.ParseDuration(lines[1][3])
	if err1 != nil || err2 != nil || first > 60*time.Second || second >= first {
		t.Errorf("time left %q then %q: want a countdown from under 60s", lines[0][3], lines[1][3])
	}
	if !strings.Contains(p.stderr.String(), "Ctrl-C again") {
		t.Errorf("the shutdown line does not say that a second signal stops at once:\n%s", crashTail(p.stderr.String(), 2000))
	}

	// The second signal: out within seconds, not the 60s window.
	start := time.Now()
	if code := p.stop(t, 5*time.Second); code != 0 {
		t.Errorf("exit code %d after a second signal, want 0", code)
	}
	t.Logf("second signal to exit: %s", time.Since(start).Round(time.Millisecond))
	if s := p.stderr.String(); !strings.Contains(s, "second signal") || !strings.Contains(s, "drain abandoned") {
		t.Errorf("no second-signal report:\n%s", crashTail(s, 2000))
	}

	// At-least-once: the next start, with the destination back, delivers them.
	up := newFakeUpstream(t)
	q := crashStart(t, bin, shutdownConfig(t, dir, up.url()))
	fakeWaitFor(t, 20*time.Second, func() bool {
		seen := map[string]bool{}
		for _, r := range up.delivered() {
			for i := range n {
				if strings.Contains(string(r.Body), fmt.Sprintf("drain-%d", i)) {
					seen[fmt.Sprint(i)] = true
				}
			}
		}
		return len(seen) == n
	}, func() string {
		return fmt.Sprintf("after restart %d deliveries, want all %d envelopes; stderr:\n%s", len(up.delivered()), n, crashTail(q.stderr.String(), 2000))
	})
	if code := q.stop(t, 10*time.Second); code != 0 {
		t.Errorf("restarted baton exit code %d", code)
	}
}

// SIGHUP reports what changed: the projects it applied on one line, the
// settings that need a restart on another, by name.
func TestReloadReportsAppliedAndRestartSettings(t *testing.T) {
	bin := crashBuildBaton(t)
	dir := t.TempDir()
	const keyA, keyB = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	cfg := filepath.Join(dir, "baton.yaml")
	write := func(keys, timeout, eventSize string) {
		body := fmt.Sprintf(`mode: static
projects: {"42": {public_keys: [%s]}}
server: {listen: 127.0.0.1:0, shutdown_timeout: %s}
limits: {max_event_size: %s}
buffer: {dir: %s, reserve_bytes: 1MiB}
kafka: {embedded: {listen: 127.0.0.1:0}}
`, keys, timeout, eventSize, filepath.Join(dir, "data"))
		if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(keyA, "10s", "1MiB")
	p := crashStart(t, bin, cfg)
	p.waitReady(t, http.DefaultClient, 10*time.Second)
	hup := func(want string) {
		t.Helper()
		if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		fakeWaitFor(t, 10*time.Second, func() bool { return strings.Contains(p.stderr.String(), want) },
			func() string { return "no " + want + " in:\n" + crashTail(p.stderr.String(), 3000) })
	}

	write(keyA+", "+keyB, "5s", "2MiB")
	hup(`msg="reloaded; applied" settings=projects.42.public_keys projects=1`)
	restartLine := `msg="reload: changed settings that need a restart; not applied" settings="limits.max_event_size, server.shutdown_timeout"`
	// The restart list is logged after the reload line: wait for it.
	fakeWaitFor(t, 10*time.Second, func() bool { return strings.Contains(p.stderr.String(), restartLine) },
		func() string { return "no " + restartLine + " in:\n" + crashTail(p.stderr.String(), 3000) })
	if status, _, _ := post(t, p.base+"/api/42/envelope/", []byte("{}\n{\"type\":\"event\"}\n{}\n"), authHeader(keyB)); status != 200 {
		t.Errorf("key B after the reload: %d, want 200", status)
	}

	// Nothing new: the projects are as applied, the restart list stands.
	hup(`msg="reloaded; no applicable setting changed" projects=1`)
	fakeWaitFor(t, 10*time.Second, func() bool { return strings.Count(p.stderr.String(), restartLine) == 2 },
		func() string {
			return fmt.Sprintf("restart line logged %d times after two reloads, want 2:\n%s",
				strings.Count(p.stderr.String(), restartLine), crashTail(p.stderr.String(), 3000))
		})
	if code := p.stop(t, 10*time.Second); code != 0 {
		t.Fatalf("exit code %d", code)
	}
}

// The same with an unreachable Kafka cluster: the records wait inside the
// Kafka client when the second signal comes, and Baton still exits at once
// and cleanly.
func TestShutdownSecondSignalKafkaDown(t *testing.T) {
	bin := crashBuildBaton(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "baton.yaml")
	body := fmt.Sprintf(`server: {listen: 127.0.0.1:0, shutdown_timeout: 60s}
buffer: {dir: %s, reserve_bytes: 1MiB}
kafka: {clusters: {main: {brokers: ["127.0.0.1:%d"]}}}
routes: {default: {kafka: main}}
`, filepath.Join(dir, "data"), faultFreePort(t))
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	p := crashStart(t, bin, cfg)
	for i := range 3 {
		env := fmt.Appendf(nil, "{}\n{\"type\":\"event\"}\n{\"message\":\"kafka-%d\"}\n", i)
		if status, resp, _ := post(t, p.base+"/api/1/envelope/", env, authHeader("a7c3e9f1b5d24680ace13579bdf02468")); status != 200 {
			t.Fatalf("envelope %d: %d %s", i, status, resp)
		}
	}
	if err := p.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	fakeWaitFor(t, 10*time.Second, func() bool { return strings.Contains(p.stderr.String(), `per_destination="kafka main=3"`) },
		func() string { return "no drain progress for kafka main:\n" + crashTail(p.stderr.String(), 3000) })
	_ = p.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		t.Fatalf("still running 5s after the second SIGINT:\n%s", crashTail(p.stderr.String(), 3000))
	}
	if code := p.cmd.ProcessState.ExitCode(); code != 0 || strings.Contains(p.stderr.String(), "baton: shutdown:") {
		t.Errorf("exit code %d after the second SIGINT, want a clean 0:\n%s", code, crashTail(p.stderr.String(), 3000))
	}
	out, err := exec.Command(bin, "buffer", "inspect", "--data-dir", filepath.Join(dir, "data")).CombinedOutput()
	if err != nil {
		t.Fatalf("buffer inspect: %v\n%s", err, out)
	}
	if !regexp.MustCompile(`error\s+0\s+3\s`).Match(out) {
		t.Errorf("the buffer does not hold the 3 error records:\n%s", out)
	}
}
