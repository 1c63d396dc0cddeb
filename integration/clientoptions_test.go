package integration

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Client options (docs/client-options.md): GET /api/{project_id}/client-options/
// served from the project config Baton holds, in each mode.

const (
	coKey      = "c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0"
	coKeyPlain = "d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0"
	coKeyOff   = "e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0"
	coKeyWeb   = "f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0"
)

// coGet asks url's Baton for project pid's options as a client with key
// and query, with extra headers.
func coGet(t *testing.T, base string, pid uint64, query string, hdr map[string]string) (int, string, http.Header) {
	t.Helper()
	return sendRequest(t, http.MethodGet, fmt.Sprintf("%s/api/%d/client-options/?%s", base, pid, query), "", hdr)
}

// coAnswer is a resolved answer.
type coAnswer struct {
	Version  int                `json:"version"`
	Revision string             `json:"revision"`
	Options  map[string]float64 `json:"options"`
	Rules    []string           `json:"rules"`
}

func coDecode(t *testing.T, body string) coAnswer {
	t.Helper()
	var a coAnswer
	if err := json.Unmarshal([]byte(body), &a); err != nil {
		t.Fatalf("answer %q: %v", body, err)
	}
	return a
}

const coStaticYAML = `mode: static
server: {client_options_max_age: 17s}
projects:
  "42":
    public_keys: [` + coKey + `]
    client_options:
      version: 1
      options: {traces_sample_rate: 0.1, profiles_sample_rate: 0}
      rules:
        - id: canary
          match: {releases: ["app@2.*"], environments: [production]}
          options: {traces_sample_rate: 1, profiles_sample_rate: 0.5}
  "43": {public_keys: [` + coKeyPlain + `]}
  "44":
    public_keys: [` + coKeyOff + `]
    disabled: true
    client_options: {version: 1, options: {traces_sample_rate: 1}}
  "45":
    public_keys: [` + coKeyWeb + `]
    allowed_domains: [app.example]
    client_options: {version: 1, options: {replays_session_sample_rate: 0.5}}
`

// TestClientOptionsStatic: a static project's options are resolved per
// client, answered with an ETag (304 on a match) and Cache-Control max-age
// of server.client_options_max_age; auth, CORS, unknown and disabled
// projects are answered like ingest; ingest answers carry the revision.
func TestClientOptionsStatic(t *testing.T) {
	n := startNode(t, coStaticYAML)
	status, body, h := coGet(t, n.url, 42, "sentry_key="+coKey+"&sdk=sentry.go&version=0.50.0", nil)
	if status != 200 {
		t.Fatalf("GET: %d %s", status, body)
	}
	a := coDecode(t, body)
	if a.Version != 1 || a.Options["traces_sample_rate"] != 0.1 || len(a.Rules) != 0 || len(a.Revision) != 16 {
		t.Errorf("default answer %+v", a)
	}
	if got := h.Get("Cache-Control"); got != "private, max-age=17" {
		t.Errorf("Cache-Control %q, want max-age=17 from server.client_options_max_age", got)
	}
	if h.Get("X-Baton-Client-Options") != a.Revision || h.Get("Content-Type") != "application/json" {
		t.Errorf("headers %v", h)
	}
	etag := h.Get("ETag")
	if len(etag) < 10 || etag[0] != '"' {
		t.Fatalf("ETag %q", etag)
	}

	// Targeting: the canary rule by release and environment, the key in
	// X-Sentry-Auth this time.
	status, body, h2 := coGet(t, n.url, 42, "release=app@2.3.1&environment=production", map[string]string{
		"X-Sentry-Auth": "Sentry sentry_version=7, sentry_client=sentry.go/0.50.0, sentry_key=" + coKey})
	if c := coDecode(t, body); status != 200 || c.Options["traces_sample_rate"] != 1 || c.Options["profiles_sample_rate"] != 0.5 ||
		len(c.Rules) != 1 || c.Rules[0] != "canary" || c.Revision != a.Revision {
		t.Errorf("canary answer %d %+v", status, c)
	}
	if h2.Get("ETag") == etag {
		t.Error("two different answers share an ETag")
	}
	if _, body, _ := coGet(t, n.url, 42, "sentry_key="+coKey+"&release=app@2.3.1&environment=staging", nil); len(coDecode(t, body).Rules) != 0 {
		t.Errorf("canary matched another environment: %s", body)
	}

	// If-None-Match: 304 without a body; another tag gets the answer.
	status, body, _ = coGet(t, n.url, 42, "sentry_key="+coKey+"&sdk=sentry.go&version=0.50.0", map[string]string{"If-None-Match": etag})
	if status != 304 || body != "" {
		t.Errorf("If-None-Match with the ETag: %d %q, want 304 and no body", status, body)
	}
	if status, _, _ := coGet(t, n.url, 42, "sentry_key="+coKey, map[string]string{"If-None-Match": `"0000"`}); status != 200 {
		t.Errorf("If-None-Match with another tag: %d, want 200", status)
	}

	// CORS: the origin is echoed and the ETag and revision exposed; the
	// preflight allows GET.
	_, _, h = coGet(t, n.url, 42, "sentry_key="+coKey, map[string]string{"Origin": "https://app.example"})
	if h.Get("Access-Control-Allow-Origin") != "https://app.example" || !strings.Contains(h.Get("Access-Control-Expose-Headers"), "etag") ||
		!strings.Contains(h.Get("Access-Control-Expose-Headers"), "x-baton-client-options") {
		t.Errorf("CORS headers %v", h)
	}
	status, _, h = sendRequest(t, http.MethodOptions, n.url+"/api/42/client-options/", "", map[string]string{
		"Origin": "https://app.example", "Access-Control-Request-Method": "GET"})
	if status != 200 || !strings.Contains(h.Get("Access-Control-Allow-Methods"), "GET") {
		t.Errorf("preflight: %d %v", status, h)
	}

	// allowedDomains: a browser of another origin is refused as ingest
	// refuses it, and still gets the CORS headers to read why.
	status, body, h = coGet(t, n.url, 45, "sentry_key="+coKeyWeb, map[string]string{"Origin": "https://evil.example"})
	if status != 403 || !strings.Contains(h.Get("X-Sentry-Error"), "Cors") || h.Get("Access-Control-Allow-Origin") != "https://evil.example" {
		t.Errorf("disallowed origin: %d %s %v, want 403 Cors readable by the page", status, body, h)
	}
	if status, body, _ := coGet(t, n.url, 45, "sentry_key="+coKeyWeb, map[string]string{"Origin": "https://app.example"}); status != 200 ||
		coDecode(t, body).Options["replays_session_sample_rate"] != 0.5 {
		t.Errorf("allowed origin: %d %s", status, body)
	}

	// HEAD: GET's status and headers without the body; 304 on a match.
	status, body, h = sendRequest(t, http.MethodHead, n.url+"/api/42/client-options/?sentry_key="+coKey+"&sdk=sentry.go&version=0.50.0", "", nil)
	if status != 200 || body != "" || h.Get("ETag") != etag || h.Get("X-Baton-Client-Options") != a.Revision ||
		h.Get("Cache-Control") != "private, max-age=17" {
		t.Errorf("HEAD: %d %q %v, want GET's headers and no body", status, body, h)
	}
	if status, _, _ := sendRequest(t, http.MethodHead, n.url+"/api/42/client-options/?sentry_key="+coKey+"&sdk=sentry.go&version=0.50.0", "",
		map[string]string{"If-None-Match": etag}); status != 304 {
		t.Errorf("HEAD with If-None-Match: %d, want 304", status)
	}

	for _, c := range []struct {
		name   string
		method string
		pid    uint64
		query  string
		status int
		detail string
	}{
		{"no key", http.MethodGet, 42, "", 401, "missing authorization"},
		{"another project's key", http.MethodGet, 42, "sentry_key=" + coKeyPlain, 401, "invalid public key"},
		{"unknown project", http.MethodGet, 99, "sentry_key=" + coKey, 404, "unknown project"},
		{"disabled project", http.MethodGet, 44, "sentry_key=" + coKeyOff, 403, "ProjectDisabled"},
		{"project without options", http.MethodGet, 43, "sentry_key=" + coKeyPlain, 404, "no client options"},
		{"POST", http.MethodPost, 42, "sentry_key=" + coKey, 405, "method not allowed"},
	} {
		status, body, h := sendRequest(t, c.method, fmt.Sprintf("%s/api/%d/client-options/?%s", n.url, c.pid, c.query), "", nil)
		if status != c.status || !strings.Contains(h.Get("X-Sentry-Error"), c.detail) {
			t.Errorf("%s: %d %s, want %d %q", c.name, status, body, c.status, c.detail)
		}
	}

	if st := n.r.Stats(); len(st.Rejected) != 0 {
		t.Errorf("client-options refusals counted as ingest rejections: %v", st.Rejected)
	}

	// The push hint: an ingest answer names the revision, for projects
	// that have options only.
	_, _, h = post(t, n.url+"/api/42/envelope/", envelopeFor(42, coKey, "event"), authHeader(coKey))
	if h.Get("X-Baton-Client-Options") != a.Revision {
		t.Errorf("ingest answer hint %q, want %q", h.Get("X-Baton-Client-Options"), a.Revision)
	}
	_, _, h = post(t, n.url+"/api/43/envelope/", envelopeFor(43, coKeyPlain, "event"), authHeader(coKeyPlain))
	if v, ok := h["X-Baton-Client-Options"]; ok {
		t.Errorf("a project without options got a hint: %q", v)
	}
}

// TestClientOptionsStaticReload: the `baton` binary re-reads a static
// project's options on SIGHUP; the answer, its revision and its ETag
// change, and the old ETag no longer gets 304.
func TestClientOptionsStaticReload(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the baton binary")
	}
	bin := crashBuildBaton(t)
	dir := t.TempDir()
	projects := filepath.Join(dir, "projects.yaml")
	write := func(rate string) {
		if err := os.WriteFile(projects, fmt.Appendf(nil, "\"42\": {public_keys: [%s], client_options: {version: 1, options: {traces_sample_rate: %s}}}\n", coKey, rate), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("0.25")
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
	status, body, h := coGet(t, p.base, 42, "sentry_key="+coKey, nil)
	before := coDecode(t, body)
	if status != 200 || before.Options["traces_sample_rate"] != 0.25 {
		t.Fatalf("before reload: %d %s", status, body)
	}
	etag := h.Get("ETag")

	write("0.75")
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	var after coAnswer
	var h2 http.Header
	fakeWaitFor(t, 10*time.Second, func() bool {
		var body string
		status, body, h2 = coGet(t, p.base, 42, "sentry_key="+coKey, map[string]string{"If-None-Match": etag})
		if status == 200 {
			after = coDecode(t, body)
		}
		return status == 200
	}, func() string { return "the answer did not change after SIGHUP:\n" + crashTail(p.stderr.String(), 2000) })
	if after.Options["traces_sample_rate"] != 0.75 || after.Revision == before.Revision || h2.Get("ETag") == etag {
		t.Errorf("after reload: %+v, ETag %s (was %s, revision %s)", after, h2.Get("ETag"), etag, before.Revision)
	}
	if _, _, h := post(t, p.base+"/api/42/envelope/", envelopeFor(42, coKey, "event"), authHeader(coKey)); h.Get("X-Baton-Client-Options") != after.Revision {
		t.Errorf("ingest hint %q after reload, want %q", h.Get("X-Baton-Client-Options"), after.Revision)
	}
	if code := p.stop(t, 10*time.Second); code != 0 {
		t.Fatalf("exit code %d", code)
	}
}

// TestClientOptionsProxy: proxy mode holds no project configs, so it
// forwards client-options requests to its upstream like any path it does
// not serve (server.forward_unknown): an SDK behind a proxy Baton gets the
// answer of the Baton above, ETag and 304 included. Ingest answers of a
// proxy carry no hint (it acks before the upstream sees the envelope).
func TestClientOptionsProxy(t *testing.T) {
	settleDialer(t)
	top := startNode(t, coStaticYAML)
	proxy := startNode(t, fmt.Sprintf("upstreams:\n  top: {urls: [%s]}\nroutes:\n  default: {upstream: top}\n", top.url))
	_, want, wantH := coGet(t, top.url, 42, "sentry_key="+coKey+"&release=app@2.0&environment=production", nil)
	status, got, h := coGet(t, proxy.url, 42, "sentry_key="+coKey+"&release=app@2.0&environment=production", nil)
	if status != 200 || got != want || h.Get("ETag") != wantH.Get("ETag") || h.Get("Cache-Control") != "private, max-age=17" {
		t.Fatalf("through the proxy: %d %s %v\nwant %s", status, got, h, want)
	}
	if status, _, _ := coGet(t, proxy.url, 42, "sentry_key="+coKey+"&release=app@2.0&environment=production",
		map[string]string{"If-None-Match": h.Get("ETag")}); status != 304 {
		t.Errorf("If-None-Match through the proxy: %d, want 304", status)
	}
	if status, _, _ := coGet(t, proxy.url, 42, "sentry_key="+coKeyPlain, nil); status != 401 {
		t.Errorf("wrong key through the proxy: %d, want the top's 401", status)
	}
	status, _, h = post(t, proxy.url+"/api/42/envelope/", envelopeFor(42, coKey, "event"), authHeader(coKey))
	if status != 200 || h.Get("X-Baton-Client-Options") != "" {
		t.Errorf("proxy ingest: %d hint %q, want 200 and no hint", status, h.Get("X-Baton-Client-Options"))
	}
}

// coState is a managed project state with a clientOptions part (raw JSON,
// "" for none).
func coState(pid uint64, key, rev, clientOptions string) string {
	return fakeSentryProjectState(pid, key, rev, func(m map[string]any) {
		if clientOptions != "" {
			m["config"].(map[string]any)["clientOptions"] = json.RawMessage(clientOptions)
		}
	})
}

// TestClientOptionsBrokenPart: in managed mode the options come in the
// project config's clientOptions part. While the config is being fetched
// the endpoint answers 503; a broken part turns only client options off
// (404 naming why, counted as a broken part) while the project's events
// still flow.
func TestClientOptionsBrokenPart(t *testing.T) {
	settleDialer(t)
	s := newFakeSentry(t)
	s.setProject(managedKey, coState(42, managedKey, "r1", `{"version":1,"options":{"traces_sample_rate":2}}`))
	s.setProject(managedKey2, coState(43, managedKey2, "r1", `{"version":1,"options":{"traces_sample_rate":0.5}}`))
	s.setPending(managedKey2, 2)
	n := startNode(t, managedYAML(s.url(), ""))

	status, _, h := coGet(t, n.url, 43, "sentry_key="+managedKey2, nil)
	if status != 503 || h.Get("Retry-After") == "" {
		t.Errorf("first request, config not here yet: %d %v, want 503 with Retry-After", status, h)
	}
	fakeWaitFor(t, 10*time.Second, func() bool {
		status, _, _ := coGet(t, n.url, 43, "sentry_key="+managedKey2, nil)
		return status == 200
	}, func() string { return "the good project's options never came" })
	_, body, _ := coGet(t, n.url, 43, "sentry_key="+managedKey2, nil)
	if a := coDecode(t, body); a.Options["traces_sample_rate"] != 0.5 {
		t.Errorf("good project: %s", body)
	}

	fakeWaitFor(t, 10*time.Second, func() bool {
		status, _, _ := coGet(t, n.url, 42, "sentry_key="+managedKey, nil)
		return status != 503
	}, func() string { return "the broken project's config never came" })
	status, body, h = coGet(t, n.url, 42, "sentry_key="+managedKey, nil)
	if status != 404 || !strings.Contains(h.Get("X-Sentry-Error"), "broken") ||
		!strings.Contains(h.Get("X-Sentry-Error"), "options.traces_sample_rate: must be 0 to 1") {
		t.Errorf("broken part: %d %s, want 404 naming the bad value", status, body)
	}
	if st := n.r.Stats(); st.Projects == nil || st.Projects.Broken < 1 {
		t.Errorf("broken part not counted: %+v", st.Projects)
	}
	status, body, h = postEnvelope(t, n, 42, managedKey, envelopeFor(42, managedKey, "event"), nil)
	if status != 200 || h.Get("X-Baton-Client-Options") != "" {
		t.Fatalf("envelope of the broken project: %d %s hint %q, want 200 and no hint", status, body, h.Get("X-Baton-Client-Options"))
	}
	fakeWaitFor(t, 10*time.Second, func() bool { return deliveredTo(s, 42, "hello") == 1 },
		func() string { return fmt.Sprintf("not delivered; stats %+v", n.r.Stats()) })
	waitBalanced(t, n, 5*time.Second)
}
