package integration

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/baton-relay/baton/relay/auth"
)

// Managed mode against a fake upstream Sentry that registers relays and
// serves project configs (docs/relay-protocol.md §3–4).

const (
	managedKey  = "0123456789abcdef0123456789abcdef"
	managedKey2 = "fedcba9876543210fedcba9876543210"
)

// managedYAML is a managed Baton whose configs and envelopes both go to
// url, with a fast fetch loop.
func managedYAML(url, extra string) string {
	return managedCacheYAML(url, "", "batch_interval: 10ms") + extra
}

// managedCacheYAML is a managed Baton whose configs and envelopes both go
// to url, with the given managed.cache (none when empty) and managed.fetch
// settings; managed is the last section, so more of its keys may follow.
func managedCacheYAML(url, cache, fetch string) string {
	if cache != "" {
		cache = "  cache: {" + cache + "}\n"
	}
	return fmt.Sprintf(`mode: managed
upstreams:
  up:
    urls: [%s]
    max_retry_interval: 200ms
routes:
  default: {upstream: up}
managed:
  upstream: up
%s  fetch: {%s}
`, url, cache, fetch)
}

func envelopeFor(pid uint64, key, eventType string) []byte {
	return fmt.Appendf(nil, "{\"dsn\":\"http://%s@h/%d\"}\n{\"type\":\"%s\"}\n{\"message\":\"hello\"}\n", key, pid, eventType)
}

func postEnvelope(t *testing.T, n *node, pid uint64, key string, body []byte, hdr map[string]string) (int, string, http.Header) {
	t.Helper()
	h := authHeader(key)
	for k, v := range hdr {
		h[k] = v
	}
	return post(t, fmt.Sprintf("%s/api/%d/envelope/", n.url, pid), body, h)
}

// delivered counts envelopes the fake received for project pid whose body
// contains marker.
func deliveredTo(s *fakeSentry, pid uint64, marker string) int {
	n := 0
	for _, e := range s.envelopes() {
		if e.ProjectID == fmt.Sprint(pid) && strings.Contains(string(e.Body), marker) {
			n++
		}
	}
	return n
}

func TestManagedWaitsOnDiskUntilConfigArrives(t *testing.T) {
	settleDialer(t)
	s := newFakeSentry(t)
	s.setPending(managedKey, 3) // the upstream computes the config for a while
	s.setProject(managedKey, fakeSentryProjectState(42, managedKey, "r1", nil))
	n := startNode(t, managedYAML(s.url(), ""))

	status, body, _ := postEnvelope(t, n, 42, managedKey, envelopeFor(42, managedKey, "event"), nil)
	if status != 200 {
		t.Fatalf("while the config is pending: %d %s, want 200 (accepted, waiting on disk)", status, body)
	}
	if st := n.r.Stats(); st.Waiting != 1 {
		t.Fatalf("waiting records = %d, want 1 (the envelope waits in a pending stream)", st.Waiting)
	}
	fakeWaitFor(t, 15*time.Second, func() bool { return deliveredTo(s, 42, "hello") == 1 },
		func() string { return fmt.Sprintf("envelope not delivered; stats %+v", n.r.Stats()) })
	st := waitBalanced(t, n, 5*time.Second)
	if st.Waiting != 0 || st.Classes["error"].Delivered.Records != 1 {
		t.Fatalf("after release: %+v", st)
	}
	// Registration happened, and every config request was signed by it.
	if len(s.registered()) != 1 {
		t.Fatalf("registered relays: %v", s.registered())
	}
	pendingAnswers := 0
	for _, r := range s.configRequests() {
		if !r.SignedOK {
			t.Errorf("config request not signed correctly: %+v", r)
		}
		pendingAnswers += len(r.Pending)
	}
	if pendingAnswers != 3 {
		t.Errorf("pending answers = %d, want 3", pendingAnswers)
	}
	// The envelope went upstream signed by this relay over an empty body.
	for _, e := range s.envelopes() {
		if !e.SigOK || e.SigOver != "empty" {
			t.Errorf("forwarded envelope signature: ok=%v over=%q err=%s", e.SigOK, e.SigOver, e.SigErr)
		}
	}
}

func TestManagedUnknownAndDisabled(t *testing.T) {
	settleDialer(t)
	s := newFakeSentry(t)
	s.setProject(managedKey, fakeSentryProjectState(42, managedKey, "r1", func(m map[string]any) {
		m["publicKeys"] = []any{map[string]any{"publicKey": managedKey, "isEnabled": false}}
	}))
	n := startNode(t, managedYAML(s.url(), "telemetry: {metrics_listen: 127.0.0.1:0}\n"))

	// Unknown key: the first envelope waits, the upstream says null, it is
	// dropped with an outcome; once known as unknown, the door says 403.
	unknown := "99999999999999999999999999999999"
	if status, body, _ := postEnvelope(t, n, 7, unknown, envelopeFor(7, unknown, "event"), nil); status != 200 {
		t.Fatalf("first envelope of an unknown key: %d %s", status, body)
	}
	fakeWaitFor(t, 10*time.Second, func() bool {
		return n.r.Stats().Classes["error"].Dropped["project_unknown"].Records == 1
	}, func() string { return fmt.Sprintf("no project_unknown outcome: %+v", n.r.Stats()) })
	status, body, _ := postEnvelope(t, n, 7, unknown, envelopeFor(7, unknown, "event"), nil)
	if status != 403 || !strings.Contains(body, "ProjectId") {
		t.Fatalf("known-unknown key: %d %s, want 403 ProjectId", status, body)
	}

	// Disabled key: 403, counted.
	postEnvelope(t, n, 42, managedKey, envelopeFor(42, managedKey, "event"), nil) // learns the config
	fakeWaitFor(t, 10*time.Second, func() bool {
		st := n.r.Stats()
		return st.Classes["error"].Dropped["project_disabled"].Records == 1
	}, func() string { return fmt.Sprintf("no project_disabled outcome: %+v", n.r.Stats()) })
	status, body, _ = postEnvelope(t, n, 42, managedKey, envelopeFor(42, managedKey, "event"), nil)
	if status != 403 || !strings.Contains(body, "DisabledKey") {
		t.Fatalf("disabled key: %d %s, want 403 DisabledKey", status, body)
	}
	if got := n.r.Stats().Rejected["disabled"]; got != 1 {
		t.Fatalf("rejected[disabled] = %d, want 1", got)
	}
	if deliveredTo(s, 42, "hello")+deliveredTo(s, 7, "hello") != 0 {
		t.Fatal("an envelope of an unknown or disabled key was delivered")
	}
	waitBalanced(t, n, 5*time.Second)
	expectMetrics(t, n,
		`baton_dropped_records_total{class="error",reason="project_unknown"} 1`,
		`baton_rejected_requests_total{reason="disabled"} 1`,
		"baton_waiting_records 0",
		"baton_projects_cached 1",
	)
	// The cache's own instruments: lookups by result and fetch latency.
	text := metricsText(t, n)
	for _, series := range []string{`baton_project_cache_lookups_total{result="hit"}`, `baton_project_cache_lookups_total{result="miss"}`,
		`baton_project_fetch_latency_seconds_count{result="ok"}`} {
		if v, ok := seriesValue(text, series); !ok || v < 1 {
			t.Errorf("%s = %v (present %v), want ≥ 1", series, v, ok)
		}
	}
	// The status page's JSON shows the cache, the registration and the
	// drops (it is sampled once a second).
	var page struct {
		Managed *struct {
			Registered bool     `json:"registered"`
			Configs    int      `json:"configs"`
			Misses     int      `json:"misses"`
			Requests   int64    `json:"requests"`
			FetchP50MS *float64 `json:"fetch_p50_ms"`
		} `json:"managed"`
		Drops []struct {
			Class, Reason string
			Records       int64
		} `json:"drops"`
		Identity struct {
			Balanced bool `json:"balanced"`
		} `json:"identity"`
	}
	fakeWaitFor(t, 5*time.Second, func() bool {
		resp, err := http.Get("http://" + n.r.MetricsAddr().String() + "/api/status")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		if json.NewDecoder(resp.Body).Decode(&page) != nil || page.Managed == nil {
			return false
		}
		m := page.Managed
		return m.Registered && m.Configs == 1 && m.Misses == 1 && m.Requests >= 2 && m.FetchP50MS != nil &&
			len(page.Drops) == 2 && page.Identity.Balanced
	}, func() string { return fmt.Sprintf("status page: managed %+v, drops %+v", page.Managed, page.Drops) })
}

func TestManagedUpstreamDownServesThroughGrace(t *testing.T) {
	settleDialer(t)
	s := newFakeSentry(t)
	s.setProject(managedKey, fakeSentryProjectState(42, managedKey, "r1", nil))
	s.setProject(managedKey2, fakeSentryProjectState(43, managedKey2, "r1", nil))
	n := startNode(t, managedYAML(s.url(), "  cache: {expiry: 500ms, grace: 60s}\n"))

	postEnvelope(t, n, 42, managedKey, envelopeFor(42, managedKey, "event"), nil)
	fakeWaitFor(t, 10*time.Second, func() bool { return deliveredTo(s, 42, "hello") == 1 },
		func() string { return "first envelope not delivered" })

	s.setDown(true) // the config endpoint fails; envelopes still get through
	sent := 1
	send42 := func() {
		t.Helper()
		if status, body, _ := postEnvelope(t, n, 42, managedKey, envelopeFor(42, managedKey, "event"), nil); status != 200 {
			t.Fatalf("known project while upstream is down: %d %s", status, body)
		}
		sent++
	}
	// Baton asks for a config again only once it is past expiry: until it
	// has, envelopes (accepted with the fresh config) keep asking.
	for deadline := time.Now().Add(10 * time.Second); s.askedWhileDown(managedKey) == 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the expired config was not refreshed in 10s")
		}
		send42()
	}
	for range 3 { // stale but within grace: accepted and forwarded
		send42()
	}
	// A new project waits on disk while the config endpoint is down.
	if status, body, _ := postEnvelope(t, n, 43, managedKey2, envelopeFor(43, managedKey2, "event"), nil); status != 200 {
		t.Fatalf("new project while upstream is down: %d %s", status, body)
	}
	fakeWaitFor(t, 10*time.Second, func() bool { return deliveredTo(s, 42, "hello") == sent },
		func() string {
			return fmt.Sprintf("stale-config envelopes not delivered: %d of %d", deliveredTo(s, 42, "hello"), sent)
		})
	// A second failed fetch of the new key is asked for only after the first
	// failure came back and the waiting envelope was looked at again: it was
	// kept, not delivered or dropped.
	fakeWaitFor(t, 20*time.Second, func() bool { return s.askedWhileDown(managedKey2) >= 2 },
		func() string {
			return fmt.Sprintf("new key asked for %d times while down", s.askedWhileDown(managedKey2))
		})
	if deliveredTo(s, 43, "hello") != 0 || n.r.Stats().Waiting != 1 {
		t.Fatalf("new project: delivered %d, waiting %d; want 0 and 1", deliveredTo(s, 43, "hello"), n.r.Stats().Waiting)
	}
	if n.r.Stats().Projects.Failures == 0 {
		t.Fatal("no failed fetch counted while the upstream was down")
	}

	s.setDown(false)
	fakeWaitFor(t, 20*time.Second, func() bool { return deliveredTo(s, 43, "hello") == 1 },
		func() string { return fmt.Sprintf("waiting envelope not delivered after recovery: %+v", n.r.Stats()) })
	waitBalanced(t, n, 5*time.Second)
}

func TestManagedBrokenSamplingPartStillDeliversErrors(t *testing.T) {
	settleDialer(t)
	s := newFakeSentry(t)
	s.setProject(managedKey, fakeSentryProjectState(42, managedKey, "r1", func(m map[string]any) {
		m["config"].(map[string]any)["sampling"] = map[string]any{"version": 2, "rules": "garbage"}
	}))
	// A healthy sampling part drops every trace of another project, and its
	// releases filter drops the events of release 0.9.*.
	s.setProject(managedKey2, fakeSentryProjectState(43, managedKey2, "r1", func(m map[string]any) {
		m["config"].(map[string]any)["filterSettings"] = map[string]any{"releases": map[string]any{"releases": []any{"0.9.*"}}}
		m["config"].(map[string]any)["sampling"] = map[string]any{"version": 2, "rules": []any{map[string]any{
			"id": 7, "type": "trace",
			"samplingValue": map[string]any{"type": "sampleRate", "value": 0.0},
			"condition":     map[string]any{"op": "and", "inner": []any{}},
		}}}
	}))
	n := startNode(t, managedYAML(s.url(), ""))

	tx := func(pid uint64, key string) []byte {
		return fmt.Appendf(nil, "{\"dsn\":\"http://%s@h/%d\",\"trace\":{\"trace_id\":\"4c79f60c11214eb38604f4ae0781bfb2\",\"public_key\":\"%s\"}}\n{\"type\":\"transaction\"}\n{\"transaction\":\"t\"}\n", key, pid, key)
	}
	for _, c := range []struct {
		pid uint64
		key string
	}{{42, managedKey}, {43, managedKey2}} {
		for _, env := range [][]byte{tx(c.pid, c.key), envelopeFor(c.pid, c.key, "event")} {
			if status, body, _ := postEnvelope(t, n, c.pid, c.key, env, nil); status != 200 {
				t.Fatalf("project %d: %d %s", c.pid, status, body)
			}
		}
	}
	oldRelease := fmt.Appendf(nil, "{\"dsn\":\"http://%s@h/43\",\"trace\":{\"trace_id\":\"5c79f60c11214eb38604f4ae0781bfb2\",\"public_key\":\"%s\",\"release\":\"0.9.3\"}}\n{\"type\":\"event\"}\n{\"message\":\"old\"}\n", managedKey2, managedKey2)
	if status, body, _ := postEnvelope(t, n, 43, managedKey2, oldRelease, nil); status != 200 {
		t.Fatalf("filtered release: %d %s", status, body)
	}
	st := waitBalanced(t, n, 15*time.Second)
	if got := st.Classes["error"].Dropped["filtered"].Records; got != 1 {
		t.Errorf("events of a filtered release dropped = %d, want 1", got)
	}
	// Project 42: sampling broken → off; error and transaction delivered.
	// Project 43: its trace is sampled out; the error still goes.
	if got := st.Classes["error"].Delivered.Records; got != 2 {
		t.Errorf("errors delivered = %d, want 2", got)
	}
	if got := st.Classes["transaction"].Delivered.Records; got != 1 {
		t.Errorf("transactions delivered = %d, want 1 (project 42's)", got)
	}
	if got := st.Classes["transaction"].Dropped["sampled"].Records; got != 1 {
		t.Errorf("transactions sampled out = %d, want 1 (project 43's)", got)
	}
	if st.Projects == nil || st.Projects.Broken != 1 {
		t.Errorf("broken parts counted: %+v", st.Projects)
	}
}

func TestManagedQuotaZeroAnswers429(t *testing.T) {
	settleDialer(t)
	s := newFakeSentry(t)
	s.setProject(managedKey, fakeSentryProjectState(42, managedKey, "r1", func(m map[string]any) {
		m["config"].(map[string]any)["quotas"] = []any{map[string]any{
			"categories": []any{"error"}, "scope": "project", "limit": 0, "reasonCode": "disabled_errors",
		}, map[string]any{ // another key's quota: must not apply to this key
			"categories": []any{"monitor"}, "scope": "key", "scopeId": "999", "limit": 0, "reasonCode": "other_key",
		}}
	}))
	n := startNode(t, managedYAML(s.url(), ""))
	postEnvelope(t, n, 42, managedKey, envelopeFor(42, managedKey, "transaction"), nil) // learn the config
	fakeWaitFor(t, 10*time.Second, func() bool { return n.r.Stats().Waiting == 0 && deliveredTo(s, 42, "hello") == 1 },
		func() string { return "config not learned" })

	status, body, hdr := postEnvelope(t, n, 42, managedKey, envelopeFor(42, managedKey, "event"), nil)
	if status != 429 {
		t.Fatalf("error under a zero quota: %d %s, want 429", status, body)
	}
	if got := hdr.Get("X-Sentry-Rate-Limits"); got != "60:error:project:disabled_errors" {
		t.Fatalf("X-Sentry-Rate-Limits = %q", got)
	}
	if hdr.Get("Retry-After") == "" {
		t.Fatal("no Retry-After")
	}
	// Mixed envelope: the check-in passes, the error is dropped and the
	// client is told which category is limited.
	mixed := fmt.Appendf(nil, "{\"dsn\":\"http://%s@h/42\"}\n{\"type\":\"event\"}\n{\"message\":\"x\"}\n{\"type\":\"check_in\"}\n{\"check_in_id\":\"83a7c03ed0a04e1b97e2e3b18d38f244\",\"monitor_slug\":\"m\",\"status\":\"ok\"}\n", managedKey)
	status, _, hdr = postEnvelope(t, n, 42, managedKey, mixed, nil)
	if status != 200 || !strings.Contains(hdr.Get("X-Sentry-Rate-Limits"), ":error:") {
		t.Fatalf("mixed envelope: %d, limits %q", status, hdr.Get("X-Sentry-Rate-Limits"))
	}
	if strings.Contains(hdr.Get("X-Sentry-Rate-Limits"), "other_key") {
		t.Fatalf("another key's quota applied: %q", hdr.Get("X-Sentry-Rate-Limits"))
	}
	st := waitBalanced(t, n, 10*time.Second)
	if st.Classes["error"].Dropped["rate_limited"].Records != 1 || st.Rejected["rate_limited"] != 1 {
		t.Fatalf("rate limit outcomes: %+v", st)
	}
	if st.Classes["check_in"].Delivered.Records != 1 {
		t.Fatalf("the check-in was not delivered: %+v", st.Classes["check_in"])
	}
}

// An inner Baton registers with the fake Sentry and serves configs to an
// outer Baton, which registers with it; signatures are verified at every
// hop, and a replayed old signature is refused.
func TestManagedChainOfTwo(t *testing.T) {
	settleDialer(t)
	s := newFakeSentry(t)
	s.setProject(managedKey, fakeSentryProjectState(42, managedKey, "r1", nil))

	outerCreds, err := auth.Generate()
	if err != nil {
		t.Fatal(err)
	}
	outerDir := t.TempDir()
	credPath := filepath.Join(outerDir, "credentials.json")
	if err := outerCreds.Save(credPath); err != nil {
		t.Fatal(err)
	}
	inner := startNode(t, managedYAML(s.url(), fmt.Sprintf(`auth:
  static_relays:
    %s: {public_key: %s}
`, outerCreds.ID, auth.FormatPublicKey(outerCreds.PublicKey))))
	outer := startNode(t, managedYAML(inner.url, "  credentials: "+credPath+"\n  parts: [keys, client, quotas, sampling]\n"))

	if status, body, _ := postEnvelope(t, outer, 42, managedKey, envelopeFor(42, managedKey, "event"), nil); status != 200 {
		t.Fatalf("outer: %d %s", status, body)
	}
	fakeWaitFor(t, 20*time.Second, func() bool { return deliveredTo(s, 42, "hello") == 1 },
		func() string {
			return fmt.Sprintf("not delivered through the chain; outer %+v inner %+v", outer.r.Stats(), inner.r.Stats())
		})
	if st := inner.r.Stats(); st.Rejected["relay_auth"] != 0 {
		t.Fatalf("inner refused the outer relay: %+v", st.Rejected)
	}
	if len(s.registered()) != 1 {
		t.Fatalf("the fake Sentry should know only the inner relay: %v", s.registered())
	}

	// Replay: a projectconfigs request signed 10 minutes ago is refused.
	body, _ := json.Marshal(map[string]any{"publicKeys": []string{managedKey}})
	old := outerCreds.Sign(body, time.Now().Add(-10*time.Minute))
	status, resp, _ := post(t, inner.url+"/api/0/relays/projectconfigs/?version=3", body, map[string]string{
		auth.HeaderRelayID: outerCreds.ID, auth.HeaderRelaySignature: old, "Content-Type": "application/json",
	})
	if status != 401 || !strings.Contains(resp, "expired") {
		t.Fatalf("replayed old signature: %d %s, want 401 expired", status, resp)
	}
	// A fresh signature is served.
	status, resp, _ = post(t, inner.url+"/api/0/relays/projectconfigs/?version=3", body, map[string]string{
		auth.HeaderRelayID: outerCreds.ID, auth.HeaderRelaySignature: outerCreds.Sign(body, time.Now()), "Content-Type": "application/json",
	})
	if status != 200 || !strings.Contains(resp, `"projectId":42`) {
		t.Fatalf("fresh signature: %d %s", status, resp)
	}
	// The parts extension: only the asked parts' config keys come back.
	partsBody, _ := json.Marshal(map[string]any{"publicKeys": []string{managedKey}, "parts": []string{"quotas"}})
	status, resp, _ = post(t, inner.url+"/api/0/relays/projectconfigs/?version=3", partsBody, map[string]string{
		auth.HeaderRelayID: outerCreds.ID, auth.HeaderRelaySignature: outerCreds.Sign(partsBody, time.Now()),
	})
	if status != 200 || !strings.Contains(resp, `"quotas"`) || strings.Contains(resp, `"sampling"`) || !strings.Contains(resp, `"publicKeys"`) {
		t.Fatalf("parts [quotas]: %d %s", status, resp)
	}
	// The outer asked the inner for its configured parts; the fake Sentry
	// got the inner's request without parts.
	for _, r := range s.configRequests() {
		if r.Parts != nil {
			t.Errorf("the inner Baton sent parts %s to Sentry; it asks for everything", r.Parts)
		}
	}
	// A relay the inner does not know may still send envelopes: it is
	// treated as a client (as Relay does), while its API requests are refused.
	stranger, _ := auth.Generate()
	if status, body, _ := postEnvelope(t, inner, 42, managedKey, envelopeFor(42, managedKey, "event"), map[string]string{
		auth.HeaderRelayID: stranger.ID, auth.HeaderRelaySignature: stranger.Sign(nil, time.Now()),
	}); status != 200 {
		t.Fatalf("envelope signed by an unknown relay: %d %s", status, body)
	}
	// A trusted relay's envelope with a bad signature is refused.
	if status, _, _ := postEnvelope(t, inner, 42, managedKey, envelopeFor(42, managedKey, "event"), map[string]string{
		auth.HeaderRelayID: outerCreds.ID, auth.HeaderRelaySignature: stranger.Sign(nil, time.Now()),
	}); status != 401 {
		t.Fatalf("trusted relay id with a forged signature: %d, want 401", status)
	}
	status, _, _ = post(t, inner.url+"/api/0/relays/projectconfigs/?version=3", body, map[string]string{
		auth.HeaderRelayID: stranger.ID, auth.HeaderRelaySignature: stranger.Sign(body, time.Now()),
	})
	if status != 401 {
		t.Fatalf("unknown relay: %d, want 401", status)
	}
	waitBalanced(t, outer, 5*time.Second)
	waitBalanced(t, inner, 5*time.Second)
}

// A project's metrics part sets its cardinality limit: over it, buckets are
// dropped as cardinality_limited.
func TestManagedCardinalityLimitFromProjectConfig(t *testing.T) {
	settleDialer(t)
	s := newFakeSentry(t)
	s.setProject(managedKey, fakeSentryProjectState(42, managedKey, "r1", func(m map[string]any) {
		m["config"].(map[string]any)["metrics"] = map[string]any{"cardinalityLimits": []any{map[string]any{
			"id": "custom-limit", "limit": 10, "namespace": "custom", "scope": "project",
			"window": map[string]any{"windowSeconds": 3600, "granularitySeconds": 600},
		}}}
	}))
	n := startNode(t, managedYAML(s.url(), "")+fastMetrics)
	lines := make([]string, 50)
	for i := range lines {
		lines[i] = fmt.Sprintf("card.k%d:1|c", i)
	}
	post1 := func(ls []string) {
		payload := strings.Join(ls, "\n")
		env := fmt.Appendf(nil, "{\"dsn\":\"http://%s@h/42\"}\n{\"type\":\"statsd\",\"length\":%d}\n%s\n", managedKey, len(payload), payload)
		if status, body, _ := postEnvelope(t, n, 42, managedKey, env, nil); status != 200 {
			t.Fatalf("statsd: %d %s", status, body)
		}
	}
	post1(lines[:1]) // learns the config
	fakeWaitFor(t, 10*time.Second, func() bool { return n.r.Stats().Waiting == 0 && n.r.Stats().Projects.Fetched == 1 },
		func() string { return "config not learned" })
	post1(lines[1:])
	st := waitBalanced(t, n, 15*time.Second)
	if got := st.Classes["metric"].Dropped["cardinality_limited"].Items; got != 40 {
		t.Fatalf("cardinality_limited = %d, want 40 (limit 10 of 50 keys); %+v", got, st.Classes["metric"])
	}
}

// With the config lookups at their cap (the upstream hangs), new unknown
// keys are shed with 503 while known keys flow; nothing parked is lost.
func TestManagedLookupCapSheds(t *testing.T) {
	settleDialer(t)
	s := newFakeSentry(t)
	s.setProject(managedKey, fakeSentryProjectState(42, managedKey, "r1", nil))
	n := startNode(t, strings.Replace(managedYAML(s.url(), ""), "fetch: {batch_interval: 10ms}", "fetch: {batch_size: 1, concurrency: 1, batch_interval: 10ms}", 1))
	postEnvelope(t, n, 42, managedKey, envelopeFor(42, managedKey, "event"), nil) // learn the known key
	fakeWaitFor(t, 10*time.Second, func() bool { return deliveredTo(s, 42, "hello") == 1 },
		func() string { return "known key not delivered" })

	hold := make(chan struct{})
	s.setConfigAnswer(func(fakeSentryConfigRequest) *fakeAnswer { <-hold; return nil })
	released := false
	defer func() {
		if !released {
			close(hold)
		}
	}()
	parked, shed := 0, 0
	for i := range 40 {
		key := fmt.Sprintf("%032x", 1000+i)
		status, body, hdr := postEnvelope(t, n, 7, key, envelopeFor(7, key, "event"), nil)
		switch {
		case status == 200:
			parked++
		case status == 503 && hdr.Get("Retry-After") != "":
			shed++
		default:
			t.Fatalf("unknown key %d: %d %s", i, status, body)
		}
	}
	// Lookups outstanding are capped at 4 × batch_size × concurrency = 4,
	// plus the batch being gathered and the one in flight.
	if parked > 8 || shed < 30 {
		t.Fatalf("parked %d, shed %d: the lookup cap did not hold", parked, shed)
	}
	if status, body, _ := postEnvelope(t, n, 42, managedKey, envelopeFor(42, managedKey, "event"), nil); status != 200 {
		t.Fatalf("known key during the flood: %d %s", status, body)
	}
	close(hold)
	released = true
	st := waitBalanced(t, n, 30*time.Second)
	if got := st.Classes["error"].Dropped["project_unknown"].Records; got != int64(parked) {
		t.Fatalf("parked %d, dropped as unknown %d: %+v", parked, got, st.Classes["error"])
	}
	if st.Rejected["overload"] != int64(shed) {
		t.Fatalf("shed %d, counted %d", shed, st.Rejected["overload"])
	}
}

// An upstream that forgot this relay answers 401 once: Baton registers
// again and delivers; nothing is dropped.
func TestManaged401ReRegisters(t *testing.T) {
	settleDialer(t)
	s := newFakeSentry(t)
	s.setProject(managedKey, fakeSentryProjectState(42, managedKey, "r1", nil))
	n := startNode(t, managedYAML(s.url(), ""))
	postEnvelope(t, n, 42, managedKey, envelopeFor(42, managedKey, "event"), nil)
	fakeWaitFor(t, 10*time.Second, func() bool { return deliveredTo(s, 42, "hello") == 1 },
		func() string { return "first envelope not delivered" })
	challenges := func() int {
		c := 0
		for _, r := range s.requests() {
			if strings.Contains(r.RequestURI, "register/challenge") {
				c++
			}
		}
		return c
	}
	before := challenges()

	s.setEnvelopeStatus(401)
	postEnvelope(t, n, 42, managedKey, envelopeFor(42, managedKey, "event"), nil)
	fakeWaitFor(t, 10*time.Second, func() bool { return challenges() > before },
		func() string { return "no new registration after a 401" })
	s.setEnvelopeStatus(0)
	fakeWaitFor(t, 10*time.Second, func() bool {
		ok := 0
		for _, e := range s.envelopes() {
			if e.Status == 200 {
				ok++
			}
		}
		return ok == 2
	}, func() string { return fmt.Sprintf("second envelope not delivered: %+v", n.r.Stats()) })
	st := waitBalanced(t, n, 5*time.Second)
	if st.Dropped != 0 {
		t.Fatalf("dropped after a 401: %+v", st.Classes)
	}
}

// One key's envelopes waiting for its config are capped in bytes: past the
// cap the key gets 503, other keys are unaffected, and what waited is
// delivered once the config arrives.
func TestManagedWaitingBytesCapPerKey(t *testing.T) {
	settleDialer(t)
	s := newFakeSentry(t)
	s.setPending(managedKey, 1_000_000) // the upstream keeps computing
	s.setProject(managedKey, fakeSentryProjectState(42, managedKey, "r1", nil))
	s.setProject(managedKey2, fakeSentryProjectState(43, managedKey2, "r1", nil))
	n := startNode(t, managedYAML(s.url(), "  max_waiting_bytes_per_key: 2KiB\n"))

	parked := 0
	for i := range 100 {
		status, body, hdr := postEnvelope(t, n, 42, managedKey, envelopeFor(42, managedKey, "event"), nil)
		if status == 503 {
			if hdr.Get("Retry-After") == "" || !strings.Contains(body, "waiting") {
				t.Fatalf("503 without Retry-After or reason: %s", body)
			}
			break
		}
		if status != 200 {
			t.Fatalf("envelope %d: %d %s", i, status, body)
		}
		parked++
	}
	if parked == 0 || parked >= 100 {
		t.Fatalf("parked %d envelopes under a 2 KiB cap", parked)
	}
	if status, body, _ := postEnvelope(t, n, 43, managedKey2, envelopeFor(43, managedKey2, "event"), nil); status != 200 {
		t.Fatalf("another key while the first is capped: %d %s", status, body)
	}
	s.setPending(managedKey, 0) // the config arrives
	fakeWaitFor(t, 20*time.Second, func() bool { return deliveredTo(s, 42, "hello") == parked },
		func() string { return fmt.Sprintf("delivered %d of %d parked", deliveredTo(s, 42, "hello"), parked) })
	// Known now: accepted directly.
	if status, body, _ := postEnvelope(t, n, 42, managedKey, envelopeFor(42, managedKey, "event"), nil); status != 200 {
		t.Fatalf("after release: %d %s", status, body)
	}
	waitBalanced(t, n, 10*time.Second)
}

// Replays need the project's session-replay feature, as in Relay; a
// project whose features part says nothing of it drops them.
func TestManagedReplayNeedsFeature(t *testing.T) {
	settleDialer(t)
	s := newFakeSentry(t)
	s.setProject(managedKey, fakeSentryProjectState(42, managedKey, "r1", nil)) // features: []
	s.setProject(managedKey2, fakeSentryProjectState(43, managedKey2, "r1", func(m map[string]any) {
		m["config"].(map[string]any)["features"] = []any{"organizations:session-replay"}
	}))
	n := startNode(t, managedYAML(s.url(), ""))
	replay := func(pid uint64, key string) []byte {
		return fmt.Appendf(nil, "{\"dsn\":\"http://%s@h/%d\"}\n{\"type\":\"replay_event\"}\n{\"replay_id\":\"ab3d4f5e6a7b4c8d9e0f1a2b3c4d5e6f\"}\n", key, pid)
	}
	for _, c := range []struct {
		pid uint64
		key string
	}{{42, managedKey}, {43, managedKey2}} {
		if status, body, _ := postEnvelope(t, n, c.pid, c.key, replay(c.pid, c.key), nil); status != 200 {
			t.Fatalf("replay for %d: %d %s", c.pid, status, body)
		}
	}
	st := waitBalanced(t, n, 10*time.Second)
	r := st.Classes["replay"]
	if r.Delivered.Records != 1 || r.Dropped["feature_disabled"].Records != 1 {
		t.Fatalf("replay outcomes: %+v", r)
	}
}

// An envelope that waited for its config still gets the origin check: the
// Origin it came with is kept in its record.
func TestManagedWaitingKeepsOriginCheck(t *testing.T) {
	settleDialer(t)
	s := newFakeSentry(t)
	s.setPending(managedKey, 2)
	s.setProject(managedKey, fakeSentryProjectState(42, managedKey, "r1", func(m map[string]any) {
		m["config"].(map[string]any)["allowedDomains"] = []any{"app.example"}
	}))
	n := startNode(t, managedYAML(s.url(), ""))
	for _, origin := range []string{"https://evil.example", "https://app.example"} {
		if status, body, _ := postEnvelope(t, n, 42, managedKey, envelopeFor(42, managedKey, "event"), map[string]string{"Origin": origin}); status != 200 {
			t.Fatalf("while pending, from %s: %d %s", origin, status, body)
		}
	}
	st := waitBalanced(t, n, 15*time.Second)
	if e := st.Classes["error"]; e.Delivered.Records != 1 || e.Dropped["cors"].Records != 1 {
		t.Fatalf("released with their origins: %+v", e)
	}
}
