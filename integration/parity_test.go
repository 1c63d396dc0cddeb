package integration

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Relay parity (issue 18): each test drives one of Relay's answers through
// the HTTP surface of a running Baton, against a fake upstream.

// TestParityAllowedDomains: allowedDomains patterns with a scheme, a
// wildcard or a port admit and refuse browser origins as Relay's matcher
// does; an admitted envelope reaches the upstream, a refused one gets 403.
func TestParityAllowedDomains(t *testing.T) {
	settleDialer(t)
	up := newFakeUpstream(t)
	cases := []struct {
		domains, origin string
		want            int
	}{
		{`["http://valid.com"]`, "http://valid.com", 200},
		{`["http://*"]`, "http://valid.com", 200},
		{`["http://*"]`, "https://valid.com", 403},
		{`["valid.com"]`, "http://valid.com", 200},
		{`["invalid.com"]`, "http://valid.com", 403},
		{`["*.example.com"]`, "https://a.b.example.com", 200},
		{`["*.example.com"]`, "https://example.com", 200},
		{`["*.example.com"]`, "https://example.org", 403},
		{`["https://app.example:8443"]`, "https://app.example:8443", 200},
		{`["https://app.example:8443"]`, "https://app.example:9443", 403},
		{`["*:8443"]`, "https://any.example:8443", 200},
		{`["http://abc13.com:8080"]`, "http://abc13.com:80", 403},
	}
	var projects strings.Builder
	projects.WriteString("mode: static\nprojects:\n")
	for i, c := range cases {
		fmt.Fprintf(&projects, "  %q: {public_keys: [%032x], allowed_domains: %s}\n", fmt.Sprint(i+1), i+1, c.domains)
	}
	n := startNode(t, fakeUpstreamYAML("up", up.url(), "default")+projects.String())
	wantDelivered, wantRefused := 0, int64(0)
	for i, c := range cases {
		key := fmt.Sprintf("%032x", i+1)
		h := authHeader(key)
		h["Origin"] = c.origin
		status, body, _ := post(t, fmt.Sprintf("%s/api/%d/envelope/", n.url, i+1), []byte("{}\n{\"type\":\"event\"}\n{}\n"), h)
		if status != c.want {
			t.Errorf("allowedDomains %s, Origin %s: %d %s, want %d", c.domains, c.origin, status, body, c.want)
		}
		if c.want == 200 {
			wantDelivered++
		} else {
			wantRefused++
		}
	}
	fakeWaitFor(t, 10*time.Second, func() bool { return len(up.delivered()) >= wantDelivered },
		func() string {
			return fmt.Sprintf("upstream got %d envelopes, want %d", len(up.delivered()), wantDelivered)
		})
	st := waitBalanced(t, n, 5*time.Second)
	if st.Rejected["cors"] != wantRefused {
		t.Errorf("rejections %v, want %d cors", st.Rejected, wantRefused)
	}
}

// TestParityReadyUntilRegistered: in managed mode /ready is 503 until Baton
// has registered with its upstream, and again while a registration fails;
// Baton registers at start, without traffic, retrying with backoff, and
// ingest is never blocked by it (envelopes wait on disk).
func TestParityReadyUntilRegistered(t *testing.T) {
	settleDialer(t)
	s := newFakeSentry(t)
	s.setProject(managedKey, fakeSentryProjectState(42, managedKey, "r1", nil))
	s.setRegisterStatus(http.StatusServiceUnavailable)
	n := startNode(t, managedYAML(s.url(), ""))
	ready := func() int {
		status, _, _ := sendRequest(t, http.MethodGet, n.url+"/api/relay/healthcheck/ready/", "", nil)
		return status
	}
	challenges := func() int {
		c := 0
		for _, r := range s.requests() {
			if strings.HasPrefix(r.RequestURI, "/api/0/relays/register/challenge/") {
				c++
			}
		}
		return c
	}
	// Registration is tried at start, with no traffic, and retried.
	fakeWaitFor(t, 10*time.Second, func() bool { return challenges() >= 2 },
		func() string { return fmt.Sprintf("%d registration attempts, want a retry", challenges()) })
	if got := ready(); got != http.StatusServiceUnavailable {
		t.Fatalf("ready before registration: %d, want 503", got)
	}
	if status, _, _ := sendRequest(t, http.MethodGet, n.url+"/api/relay/healthcheck/live/", "", nil); status != 200 {
		t.Errorf("live before registration: %d, want 200", status)
	}
	if status, body, _ := postEnvelope(t, n, 42, managedKey, envelopeFor(42, managedKey, "event"), nil); status != 200 {
		t.Fatalf("envelope before registration: %d %s, want 200 (ingest is not blocked)", status, body)
	}

	s.setRegisterStatus(0)
	fakeWaitFor(t, 10*time.Second, func() bool { return ready() == http.StatusOK },
		func() string { return "ready still not 200 after the upstream accepts registration" })
	fakeWaitFor(t, 10*time.Second, func() bool { return deliveredTo(s, 42, "hello") == 1 },
		func() string { return fmt.Sprintf("envelope not delivered; stats %+v", n.r.Stats()) })

	// The upstream forgets Baton and refuses it: the next signed request gets
	// 401, registering again fails, and /ready says so until it succeeds.
	var id string
	for rid := range s.registered() {
		id = rid
	}
	s.setRegisterStatus(http.StatusServiceUnavailable)
	s.unregister(id)
	if status, body, _ := postEnvelope(t, n, 43, managedKey2, envelopeFor(43, managedKey2, "event"), nil); status != 200 {
		t.Fatalf("envelope while registration fails: %d %s, want 200", status, body)
	}
	fakeWaitFor(t, 10*time.Second, func() bool { return ready() == http.StatusServiceUnavailable },
		func() string { return "ready still 200 after the upstream forgot Baton and refuses it" })
	s.setRegisterStatus(0)
	fakeWaitFor(t, 10*time.Second, func() bool { return ready() == http.StatusOK && len(s.registered()) == 1 },
		func() string { return "ready not back to 200 after registration succeeds again" })
	waitBalanced(t, n, 10*time.Second)
}

// TestParityForwardedAPI: a forwarded API request whose upstream does not
// answer within its timeout is 504 (502 stays for a failed connection); a
// bare /api/ is 404 and never forwarded; a release-file upload is capped by
// limits.max_api_file_upload_size, even above limits.max_envelope_size.
func TestParityForwardedAPI(t *testing.T) {
	settleDialer(t)
	up := newFakeUpstream(t)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) }) // before the fake closes (cleanups run last-in first)
	up.setAnswer(func(r *fakeRequest) fakeAnswer {
		if strings.HasPrefix(r.RequestURI, "/api/0/slow/") {
			<-release
		}
		return fakeAnswer{Status: 201, Body: "{}"}
	})
	n := startNode(t, fmt.Sprintf(`upstreams:
  up:
    urls: [%q]
    timeout: 300ms
routes:
  default: {upstream: up}
limits:
  max_envelope_size: 1MiB
  max_api_file_upload_size: 3MiB
`, up.url()))

	if status, body, _ := sendRequest(t, http.MethodGet, n.url+"/api/0/slow/", "", nil); status != http.StatusGatewayTimeout {
		t.Errorf("upstream too slow: %d %s, want 504", status, body)
	}
	before := len(up.requests())
	for _, path := range []string{"/api/", "/api"} {
		if status, body, _ := sendRequest(t, http.MethodGet, n.url+path, "", nil); status != http.StatusNotFound {
			t.Errorf("GET %s: %d %s, want 404", path, status, body)
		}
	}
	if got := len(up.requests()) - before; got != 0 {
		t.Errorf("/api/ reached the upstream (%d requests)", got)
	}
	files := "/api/0/projects/acme/web/releases/1.0/files/"
	for _, c := range []struct {
		size, status int
	}{{2 << 20, 201}, {4 << 20, 413}} {
		// rawPost reads the answer even when Baton refuses before the end.
		status, body, err := rawPost(n.url+files, nil, strings.NewReader(strings.Repeat("f", c.size)), int64(c.size))
		if err != nil {
			t.Fatalf("release file of %d bytes: %v", c.size, err)
		}
		if status != c.status {
			t.Errorf("release file of %d bytes: %d %.200s, want %d", c.size, status, body, c.status)
		}
	}
}

// TestParityCORSPreflight: every SDK route answers a preflight as Relay's
// CORS layer does, allowing POST only, so a browser refuses a preflight
// for any other method; paths that are no SDK route are forwarded, their
// preflights too.
func TestParityCORSPreflight(t *testing.T) {
	settleDialer(t)
	up := newFakeUpstream(t)
	n := startNode(t, fakeUpstreamYAML("up", up.url(), "default"))
	preflight := func(path, method string) (int, http.Header) {
		status, _, h := sendRequest(t, http.MethodOptions, n.url+path, "", map[string]string{
			"Origin": "https://app.example", "Access-Control-Request-Method": method,
			"Access-Control-Request-Headers": "content-type"})
		return status, h
	}
	for _, path := range []string{"/api/42/envelope/", "/api/42/store/", "/api/42/minidump/", "/api/42/minidump",
		"/api/42/security/", "/api/42/csp-report/", "/api/42/nel/", "/api/42/events/" + strings.Repeat("a", 32) + "/attachments/"} {
		for _, method := range []string{"POST", "PUT", "GET"} {
			status, h := preflight(path, method)
			if status != 200 || h.Get("Access-Control-Allow-Methods") != "POST" ||
				!strings.Contains(h.Get("Access-Control-Allow-Headers"), "content-type") || h.Get("Access-Control-Max-Age") != "3600" {
				t.Errorf("preflight %s for %s: %d %v, want 200 allowing POST only", path, method, status, h)
			}
		}
	}
	before := len(up.requests())
	if status, _ := preflight("/api/42/unknown-endpoint/", "PUT"); status != 200 {
		t.Errorf("preflight of an unknown endpoint: %d, want the upstream's 200", status)
	}
	if got := up.requests()[before:]; len(got) != 1 || got[0].Method != http.MethodOptions {
		t.Errorf("preflight of an unknown endpoint was not forwarded: %v", got)
	}
}

// TestParityLegacyStoreAndEmpty: POST /api/store/ without a project id takes
// the project from the key, as Relay's legacy route does; an empty body or
// an envelope without items is 400.
func TestParityLegacyStoreAndEmpty(t *testing.T) {
	settleDialer(t)
	up := newFakeUpstream(t)
	n := startNode(t, fakeUpstreamYAML("up", up.url(), "default")+
		"mode: static\nprojects:\n  \"42\": {public_keys: ["+testKey+"]}\n")
	for _, body := range []string{"", "{}\n", "{\"event_id\":\"" + strings.Repeat("a", 32) + "\"}\n"} {
		status, detail, _ := post(t, n.url+"/api/42/envelope/", []byte(body), authHeader(testKey))
		if status != http.StatusBadRequest {
			t.Errorf("envelope %q: %d %s, want 400", body, status, detail)
		}
	}
	status, body, _ := post(t, n.url+"/api/store/", []byte(`{"message":"legacy store"}`), authHeader(testKey))
	if status != 200 || !strings.Contains(body, `"id"`) {
		t.Fatalf("POST /api/store/: %d %s, want 200 with an id", status, body)
	}
	fakeWaitFor(t, 10*time.Second, func() bool {
		for _, r := range up.delivered() {
			if strings.HasPrefix(r.RequestURI, "/api/42/envelope/") && strings.Contains(string(r.Body), "legacy store") {
				return true
			}
		}
		return false
	}, func() string { return fmt.Sprintf("legacy store event not delivered to project 42: %v", up.requests()) })
	if status, body, _ := post(t, n.url+"/api/store/", []byte(`{"message":"x"}`), authHeader(strings.Repeat("b", 32))); status != 401 && status != 403 {
		t.Errorf("POST /api/store/ with a key of no project: %d %s, want a refusal", status, body)
	}
}
