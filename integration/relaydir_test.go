package integration

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// relayDir writes a Relay config directory: config.yml and the given
// projects/<id>.json files.
func relayDir(t *testing.T, configYML string, projects map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "config.yml"), []byte(configYML), 0o600); err != nil {
		t.Fatal(err)
	}
	for id, body := range projects {
		must(t, os.MkdirAll(filepath.Join(dir, "projects"), 0o755))
		must(t, os.WriteFile(filepath.Join(dir, "projects", id+".json"), []byte(body), 0o600))
	}
	return dir
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// batonCLI runs the baton binary to completion and returns its stdout.
func batonCLI(t *testing.T, bin string, args ...string) string {
	t.Helper()
	var out, errb bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("baton %s: %v\n%s%s", strings.Join(args, " "), err, out.String(), errb.String())
	}
	return out.String()
}

// TestRelayConfigDirChain runs the binary the way Relay's own test suite
// runs Relay: `baton -c DIR credentials generate`, then `baton -c DIR run`
// on a directory holding only Relay's files. The middle Baton is managed by
// a fake Sentry; a second Baton, also from a Relay directory, is chained
// behind it and trusted through the middle one's auth.static_relays. An
// envelope sent to the bottom one reaches the fake Sentry; the middle one
// reports the Relay keys it ignores once, at start.
func TestRelayConfigDirChain(t *testing.T) {
	bin := crashBuildBaton(t)
	if out := batonCLI(t, bin, "--version"); !strings.Contains(out, "\nrelay ") {
		t.Errorf("--version has no Relay form: %q", out)
	}
	relayDirChain(t, bin, true)
}

// TestTrustChainProcesses is the chain of three processes (the fake Sentry
// in this test, two baton binaries) in which the middle Baton lists no
// static_relays: it learns to trust the bottom one only through its
// upstream (forwarded registration, publickeys lookup), as Relay does, and
// the bottom one's config requests and events flow through it.
func TestTrustChainProcesses(t *testing.T) {
	relayDirChain(t, crashBuildBaton(t), false)
}

// relayDirChain runs fake Sentry ← middle Baton ← bottom Baton, both
// configured by Relay config directories; with static, the middle trusts
// the bottom through auth.static_relays, else through the fake Sentry.
func relayDirChain(t *testing.T, bin string, static bool) {
	sentry := newFakeSentry(t)
	key := crashKey(1)
	sentry.setProject(key, fakeSentryProjectState(1, key, "r1", nil))

	// The bottom relay first: its identity goes into the middle one's config.
	bottom := relayDir(t, "relay: {mode: managed, upstream: \"http://127.0.0.1:1/\", host: 127.0.0.1, port: 0}\n", nil)
	batonCLI(t, bin, "-c", bottom, "credentials", "generate")
	var creds struct {
		ID        string `json:"id"`
		PublicKey string `json:"public_key"`
		SecretKey string `json:"secret_key"`
	}
	raw, err := os.ReadFile(filepath.Join(bottom, "credentials.json"))
	must(t, err)
	must(t, json.Unmarshal(raw, &creds))
	if creds.ID == "" || creds.PublicKey == "" || creds.SecretKey == "" {
		t.Fatalf("credentials.json is not Relay's format: %s", raw)
	}

	trust := ""
	if static {
		trust = fmt.Sprintf("auth:\n  static_relays:\n    %s:\n      public_key: %s\n      internal: true\n", creds.ID, creds.PublicKey)
	}
	middle := relayDir(t, fmt.Sprintf(`relay:
  mode: managed
  upstream: %s/
  host: 127.0.0.1
  port: 0
  tls_identity_path: relay.pfx
http:
  timeout: 5
  encoding: gzip
cache:
  batch_interval: 0
  file_interval: 1
%slogging:
  level: info
metrics:
  statsd: 127.0.0.1:8125
`, sentry.url(), trust), map[string]string{
		// A local project, as Relay's projects/<id>.json: project 2 and its
		// key are unknown to the fake Sentry.
		"2": fmt.Sprintf(`{"publicKeys": [{"publicKey": %q, "isEnabled": true}], "config": {"allowedDomains": ["*"]}}`, crashKey(2)),
	})
	batonCLI(t, bin, "-c", middle, "credentials", "generate")
	if out := batonCLI(t, bin, "-c", middle, "config", "check"); !strings.Contains(out, "ok") || !strings.Contains(out, "metrics.statsd") {
		t.Errorf("config check: %q", out)
	}
	mid := crashStartCmd(t, exec.Command(bin, "-c", middle, "run"))
	c := crashClient(t)
	mid.waitReady(t, c, 20*time.Second)
	if n := strings.Count(mid.stderr.String(), "Relay settings Baton does not use"); n != 1 ||
		!strings.Contains(mid.stderr.String(), "relay.tls_identity_path, metrics.statsd") && !strings.Contains(mid.stderr.String(), "metrics.statsd, relay.tls_identity_path") {
		t.Errorf("ignored keys reported %d times:\n%s", n, mid.stderr.String())
	}

	// Point the bottom relay at the middle one and start it.
	must(t, os.WriteFile(filepath.Join(bottom, "config.yml"), []byte(fmt.Sprintf(
		"relay: {mode: managed, upstream: \"%s/\", host: 127.0.0.1, port: 0}\ncache: {batch_interval: 0}\n", mid.base)), 0o600))
	bot := crashStartCmd(t, exec.Command(bin, "-c", bottom, "run"))
	bot.waitReady(t, c, 20*time.Second)

	code, body, _, err := crashPost(c, bot.base, 1, 16)
	if err != nil || code != http.StatusOK {
		t.Fatalf("post to the bottom relay: %d %s %v\nbottom stderr:\n%s", code, body, err, crashTail(bot.stderr.String(), 3000))
	}
	// Through the middle one's projects/2.json (managed mode).
	req, err := http.NewRequest(http.MethodPost, mid.base+"/api/2/envelope/", bytes.NewReader(crashEnvelope(2, 16)))
	must(t, err)
	for k, v := range authHeader(crashKey(2)) {
		req.Header.Set(k, v)
	}
	res, err := c.Do(req)
	must(t, err)
	_ = res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("post to project 2 of projects/2.json at the middle relay: %d", res.StatusCode)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		found := map[int]bool{}
		for _, e := range sentry.envelopes() {
			if seq, _, ok := crashParse(e.Body); ok {
				found[seq] = true
			}
		}
		if found[1] && found[2] {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the envelopes did not reach the fake Sentry (through two Batons, and through the override): %v\nmiddle:\n%s\nbottom:\n%s",
				found, crashTail(mid.stderr.String(), 3000), crashTail(bot.stderr.String(), 3000))
		}
		time.Sleep(20 * time.Millisecond)
	}
	reg := sentry.registered()
	switch _, bottomKnown := reg[creds.ID]; {
	case static && (len(reg) != 1 || bottomKnown):
		t.Errorf("registered with the fake Sentry: %v, want the middle relay only", reg)
	case !static && (len(reg) != 2 || !bottomKnown):
		t.Errorf("registered with the fake Sentry: %v, want both relays (the bottom one through the middle)", reg)
	}
	if code := bot.stop(t, 20*time.Second); code != 0 {
		t.Errorf("bottom exit %d", code)
	}
	if code := mid.stop(t, 20*time.Second); code != 0 {
		t.Errorf("middle exit %d", code)
	}
}

// TestRelayConfigDirEnvironment: a Relay directory whose config.yml says
// proxy mode on an address Baton cannot bind, run with Relay's environment
// overrides, runs managed on the overriding address and upstream, and
// registers with the credentials of RELAY_SECRET_KEY, RELAY_PUBLIC_KEY and
// RELAY_ID without writing a credentials.json.
func TestRelayConfigDirEnvironment(t *testing.T) {
	bin := crashBuildBaton(t)
	sentry := newFakeSentry(t)
	key := crashKey(1)
	sentry.setProject(key, fakeSentryProjectState(1, key, "r1", nil))

	other := relayDir(t, "relay: {mode: managed}\n", nil)
	batonCLI(t, bin, "-c", other, "credentials", "generate")
	var creds struct {
		ID        string `json:"id"`
		PublicKey string `json:"public_key"`
		SecretKey string `json:"secret_key"`
	}
	raw, err := os.ReadFile(filepath.Join(other, "credentials.json"))
	must(t, err)
	must(t, json.Unmarshal(raw, &creds))

	dir := relayDir(t, "relay: {mode: proxy, upstream: \"http://127.0.0.1:1/\", host: 192.0.2.1, port: 1}\ncache: {batch_interval: 0}\n", nil)
	cmd := exec.Command(bin, "-c", dir, "run")
	cmd.Env = append(os.Environ(),
		"RELAY_MODE=managed", "RELAY_UPSTREAM_URL="+sentry.url()+"/", "RELAY_HOST=127.0.0.1", "RELAY_PORT=0",
		"RELAY_SECRET_KEY="+creds.SecretKey, "RELAY_PUBLIC_KEY="+creds.PublicKey, "RELAY_ID="+creds.ID)
	p := crashStartCmd(t, cmd)
	c := crashClient(t)
	p.waitReady(t, c, 20*time.Second)
	if code, body, _, err := crashPost(c, p.base, 1, 16); err != nil || code != http.StatusOK {
		t.Fatalf("post: %d %s %v\nstderr:\n%s", code, body, err, crashTail(p.stderr.String(), 3000))
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		delivered := false
		for _, e := range sentry.envelopes() {
			if seq, _, ok := crashParse(e.Body); ok && seq == 1 {
				delivered = true
			}
		}
		if delivered {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the envelope did not reach the fake Sentry of RELAY_UPSTREAM_URL\nstderr:\n%s", crashTail(p.stderr.String(), 3000))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, ok := sentry.registered()[creds.ID]; !ok {
		t.Errorf("registered relays %v, want %s (RELAY_ID)", sentry.registered(), creds.ID)
	}
	if _, err := os.Stat(filepath.Join(dir, "credentials.json")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("credentials.json written although the credentials came from the environment: %v", err)
	}
	if code := p.stop(t, 20*time.Second); code != 0 {
		t.Errorf("exit %d", code)
	}
}

// TestRelayConfigDirProjectsPolled: in static mode the projects come from
// projects/<id>.json, and a key added to a file is accepted once Baton has
// re-read the directory (cache.file_interval: 1), without a restart.
func TestRelayConfigDirProjectsPolled(t *testing.T) {
	bin := crashBuildBaton(t)
	sentry := newFakeSentry(t)
	proj := func(keys ...string) string {
		var pk []string
		for _, k := range keys {
			pk = append(pk, fmt.Sprintf(`{"publicKey": %q, "isEnabled": true}`, k))
		}
		return fmt.Sprintf(`{"publicKeys": [%s], "config": {"allowedDomains": ["*"]}}`, strings.Join(pk, ","))
	}
	dir := relayDir(t, fmt.Sprintf("relay: {mode: static, upstream: \"%s/\", port: 0}\ncache: {file_interval: 1}\n", sentry.url()),
		map[string]string{"1": proj(crashKey(1))})
	p := crashStartCmd(t, exec.Command(bin, "-c", dir, "run"))
	c := crashClient(t)
	p.waitReady(t, c, 20*time.Second)
	if code, body, _, err := crashPost(c, p.base, 1, 8); err != nil || code != http.StatusOK {
		t.Fatalf("key from projects/1.json: %d %s %v", code, body, err)
	}
	if code, _, _, err := crashPost(c, p.base, 2, 8); err != nil || code == http.StatusOK {
		t.Fatalf("a key in no project file was accepted: %d %v", code, err)
	}
	must(t, os.WriteFile(filepath.Join(dir, "projects", "1.json"), []byte(proj(crashKey(1), crashKey(2))), 0o600))
	deadline := time.Now().Add(15 * time.Second)
	for {
		code, _, _, err := crashPost(c, p.base, 2, 8)
		if err == nil && code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the key added to projects/1.json is still refused (%d %v)\n%s", code, err, crashTail(p.stderr.String(), 3000))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(p.stderr.String(), `msg="reloaded; applied" settings=projects.1`) {
		t.Errorf("no reload logged:\n%s", p.stderr.String())
	}
}

// TestRelayConfigDirProjectConfig: a static-mode Relay directory's
// projects/1.json applies its whole config, as an upstream's answer would:
// its releases filter drops the events of 1.0.* (counted as filtered,
// never sent to the fake Sentry) while another release's event arrives,
// and its zero quota for check-ins answers 429 with X-Sentry-Rate-Limits.
func TestRelayConfigDirProjectConfig(t *testing.T) {
	bin := crashBuildBaton(t)
	sentry := newFakeSentry(t)
	key := crashKey(1)
	proj := fmt.Sprintf(`{"publicKeys": [{"publicKey": %q, "isEnabled": true}], "config": {"allowedDomains": ["*"],
		"filterSettings": {"releases": {"releases": ["1.0.*"]}},
		"quotas": [{"categories": ["monitor"], "scope": "project", "limit": 0, "reasonCode": "no_monitors"}]}}`, key)
	dir := relayDir(t, fmt.Sprintf("relay: {mode: static, upstream: \"%s/\", port: 0}\n", sentry.url()), map[string]string{"1": proj})
	p := crashStartCmd(t, exec.Command(bin, "-c", dir, "run"))
	c := crashClient(t)
	p.waitReady(t, c, 20*time.Second)
	post := func(env string) (int, string, http.Header) {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, p.base+"/api/1/envelope/", strings.NewReader(env))
		must(t, err)
		for k, v := range authHeader(key) {
			req.Header.Set(k, v)
		}
		res, err := c.Do(req)
		must(t, err)
		defer res.Body.Close()
		var b bytes.Buffer
		_, _ = b.ReadFrom(res.Body)
		return res.StatusCode, b.String(), res.Header
	}
	event := func(release, msg string) string {
		return fmt.Sprintf("{\"trace\":{\"trace_id\":\"4c79f60c11214eb38604f4ae0781bfb2\",\"public_key\":%q,\"release\":%q}}\n{\"type\":\"event\"}\n{\"message\":%q}\n", key, release, msg)
	}
	for _, env := range []string{event("1.0.3", "filtered-release"), event("2.0.0", "kept-release")} {
		if code, body, _ := post(env); code != http.StatusOK {
			t.Fatalf("event: %d %s", code, body)
		}
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		st := crashStats(t, c, p.base)
		if st.Classes["error"].Dropped["filtered"].Records == 1 && deliveredTo(sentry, 1, "kept-release") == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("want 1 event filtered and the other delivered: %+v\n%s", st.Classes["error"], crashTail(p.stderr.String(), 3000))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n := deliveredTo(sentry, 1, "filtered-release"); n != 0 {
		t.Errorf("the event of a filtered release reached the upstream %d times", n)
	}

	checkIn := fmt.Sprintf("{\"dsn\":\"http://%s@h/1\"}\n{\"type\":\"check_in\"}\n{\"check_in_id\":\"83a7c03ed0a04e1b97e2e3b18d38f244\",\"monitor_slug\":\"m\",\"status\":\"ok\"}\n", key)
	code, body, hdr := post(checkIn)
	if code != http.StatusTooManyRequests {
		t.Fatalf("check-in under a zero quota: %d %s, want 429", code, body)
	}
	if got := hdr.Get("X-Sentry-Rate-Limits"); !strings.Contains(got, ":monitor:project:no_monitors") {
		t.Errorf("X-Sentry-Rate-Limits = %q, want the monitor quota", got)
	}
}

// TestRelayConfigDirBrokenProjectFile: a projects/<id>.json whose config
// does not decode stops `config check` and `run` with the file named.
func TestRelayConfigDirBrokenProjectFile(t *testing.T) {
	bin := crashBuildBaton(t)
	dir := relayDir(t, "relay: {mode: static, upstream: \"http://127.0.0.1:1/\", port: 0}\n", map[string]string{
		"7": fmt.Sprintf(`{"publicKeys": [{"publicKey": %q}], "config": {"quotas": "none"}}`, crashKey(1)),
	})
	for _, args := range [][]string{{"-c", dir, "config", "check"}, {"-c", dir, "run"}} {
		var out, errb bytes.Buffer
		cmd := exec.Command(bin, args...)
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		if err == nil || cmd.ProcessState.ExitCode() != 1 {
			t.Fatalf("baton %s: %v, want exit 1\n%s%s", strings.Join(args, " "), err, out.String(), errb.String())
		}
		if msg := errb.String(); !strings.Contains(msg, "projects/7.json: ") || !strings.Contains(msg, "config.quotas") {
			t.Errorf("baton %s: the error does not name the file and key:\n%s", strings.Join(args, " "), msg)
		}
	}
}
