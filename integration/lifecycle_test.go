package integration

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// registrationChallenges counts the registration challenges s received.
func registrationChallenges(s *fakeSentry) int {
	c := 0
	for _, r := range s.requests() {
		if strings.HasPrefix(r.RequestURI, "/api/0/relays/register/challenge/") {
			c++
		}
	}
	return c
}

// TestLifecycleReauthInterval: once registered, Baton registers again every
// managed.auth_interval (Relay's http.auth_interval), staying ready and
// delivering meanwhile; with 0 it registers once.
func TestLifecycleReauthInterval(t *testing.T) {
	settleDialer(t)
	s := newFakeSentry(t)
	s.setProject(managedKey, fakeSentryProjectState(42, managedKey, "r1", nil))
	n := startNode(t, managedYAML(s.url(), "  auth_interval: 1s\n"))
	start := time.Now()
	fakeWaitFor(t, 15*time.Second, func() bool { return registrationChallenges(s) >= 4 },
		func() string {
			return fmt.Sprintf("%d registrations, want 4 at a 1s interval", registrationChallenges(s))
		})
	if took := time.Since(start); took < 2*time.Second {
		t.Errorf("4 registrations within %s: faster than a 1s interval", took)
	}
	if status, _, _ := sendRequest(t, http.MethodGet, n.url+"/api/relay/healthcheck/ready/", "", nil); status != http.StatusOK {
		t.Errorf("ready while renewing: %d, want 200", status)
	}
	if status, body, _ := postEnvelope(t, n, 42, managedKey, envelopeFor(42, managedKey, "event"), nil); status != 200 {
		t.Fatalf("envelope: %d %s", status, body)
	}
	fakeWaitFor(t, 10*time.Second, func() bool { return deliveredTo(s, 42, "hello") == 1 },
		func() string { return fmt.Sprintf("envelope not delivered; stats %+v", n.r.Stats()) })

	once := newFakeSentry(t)
	m := startNode(t, managedYAML(once.url(), "  auth_interval: 0s\n"))
	fakeWaitFor(t, 10*time.Second, func() bool {
		status, _, _ := sendRequest(t, http.MethodGet, m.url+"/api/relay/healthcheck/ready/", "", nil)
		return status == http.StatusOK
	}, func() string { return "not ready" })
	// Past the other node's interval, twice over: still one registration.
	at := registrationChallenges(s)
	fakeWaitFor(t, 15*time.Second, func() bool { return registrationChallenges(s) >= at+2 },
		func() string { return "the 1s node stopped renewing" })
	if c := registrationChallenges(once); c != 1 {
		t.Errorf("auth_interval 0: %d registrations, want 1", c)
	}
}

// TestLifecycleRejectedStops: an upstream that rejects Baton for good (403
// with "relay": "stop", Relay's permanent rejection) makes `baton run` exit
// non-zero with one line naming the upstream, the relay and what to do;
// what it accepted before stays in the buffer.
func TestLifecycleRejectedStops(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the baton binary")
	}
	bin := crashBuildBaton(t)
	s := newFakeSentry(t)
	s.denyRegistration()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "baton.yaml")
	yaml := fmt.Sprintf(`server: {listen: 127.0.0.1:0}
buffer: {dir: %s, reserve_bytes: 1MiB}
telemetry: {log_level: warn}
`, filepath.Join(dir, "data")) + managedYAML(s.url(), "")
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	p := crashStart(t, bin, cfg)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		t.Fatalf("baton still runs 15s after a permanent rejection\nstderr:\n%s", crashTail(p.stderr.String(), 4000))
	}
	if code := p.cmd.ProcessState.ExitCode(); code != 1 {
		t.Errorf("exit code %d, want 1", code)
	}
	var last string
	for line := range strings.Lines(p.stderr.String()) {
		if strings.HasPrefix(line, "baton: ") {
			last = line
		}
	}
	t.Logf("%s", last)
	for _, want := range []string{`upstream "up" (` + s.url(), "rejected this relay for good", `"relay":"stop"`,
		"trust relay ", "then start Baton again"} {
		if !strings.Contains(last, want) {
			t.Errorf("error line lacks %q:\n%s\nstderr:\n%s", want, last, crashTail(p.stderr.String(), 4000))
		}
	}
	if c := registrationChallenges(s); c != 1 {
		t.Errorf("%d registration attempts after a permanent rejection, want 1", c)
	}
}
