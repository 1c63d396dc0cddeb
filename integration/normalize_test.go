package integration

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/baton-relay/baton/config"
	"github.com/baton-relay/baton/envelope"
)

// The first-relay processing of events (normalization.level): a managed or
// static Baton normalizes and scrubs what it forwards, a proxy Baton and
// one with normalization disabled forward the bytes they received.

// normEvent is an event in legacy shapes (message, tags as an object, the
// environment as a tag, an internal tag, server_name) with a release Relay
// rejects, a password and a token for the PII rules to find, and a culprit
// over Relay's 200 characters to trim.
var normEvent = `{"message":"hello normalize","level":"error","tags":{"a":"b","environment":"prod","release":"x"},"server_name":"web-1","release":"latest","culprit":"` + strings.Repeat("c", 300) + `","extra":{"password":"hunter2","note":"tok-123456"},"user":{"ip_address":"{{auto}}"}}`

// normCSP is a CSP report as browsers send it to /api/<pid>/security/.
const normCSP = `{"csp-report":{"document-uri":"https://example.com/page","referrer":"","violated-directive":"script-src 'self'","effective-directive":"script-src","original-policy":"script-src 'self'; report-uri /csp","blocked-uri":"https://evil.example.net/x.js","status-code":200}}`

// normPII is a piiConfig replacing tokens anywhere, on top of the fake's
// datascrubbingSettings (scrubData, scrubDefaults: password fields).
const normPII = `{"rules":{"tokens":{"type":"pattern","pattern":"tok-[0-9]+","redaction":{"method":"replace","text":"[token]"}}},"applications":{"$string":["tokens"]}}`

const normUA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"

func normEnvelope(key string, pid uint64, id string) []byte {
	return fmt.Appendf(nil, "{\"event_id\":%q,\"dsn\":\"http://%s@h/%d\",\"sent_at\":%q}\n{\"type\":\"event\"}\n%s\n",
		id, key, pid, time.Now().UTC().Format(time.RFC3339), normEvent)
}

// deliveredItem is the payload and header of the first item of type typ in
// the envelopes the fake received whose body contains marker.
func deliveredItem(t *testing.T, s *fakeSentry, marker, typ string) (hdr, payload []byte, ok bool) {
	t.Helper()
	for _, e := range s.envelopes() {
		if !bytes.Contains(e.Body, []byte(marker)) {
			continue
		}
		env, err := envelope.Parse(e.Body)
		if err != nil {
			t.Fatalf("the fake received an envelope that does not parse: %v\n%s", err, e.Body)
		}
		for _, it := range env.Items {
			if it.TypeName == typ {
				return it.Header, it.Payload, true
			}
		}
	}
	return nil, nil, false
}

// waitItem waits for deliveredItem.
func waitItem(t *testing.T, s *fakeSentry, marker, typ string) (hdr []byte, payload map[string]any, raw []byte) {
	t.Helper()
	fakeWaitFor(t, 15*time.Second, func() bool { _, _, ok := deliveredItem(t, s, marker, typ); return ok },
		func() string { return fmt.Sprintf("no %s item with %q reached the fake", typ, marker) })
	hdr, raw, _ = deliveredItem(t, s, marker, typ)
	if err := json.Unmarshal(raw, &payload); err != nil {
		t.Fatalf("%s payload %q: %v", typ, raw, err)
	}
	return hdr, payload, raw
}

// checkProcessedEvent asserts what Relay's first relay makes of normEvent
// under the fake's scrubbing and normPII.
func checkProcessedEvent(t *testing.T, what string, hdr []byte, ev map[string]any, raw []byte) {
	t.Helper()
	if v, _ := envelope.HeaderField(hdr, "fully_normalized"); string(v) != "true" {
		t.Errorf("%s: item header %s lacks fully_normalized: true", what, hdr)
	}
	if le, _ := ev["logentry"].(map[string]any); le["formatted"] != "hello normalize" || ev["message"] != nil {
		t.Errorf("%s: logentry %v, message %v: want message moved to logentry", what, ev["logentry"], ev["message"])
	}
	if tags, _ := ev["tags"].([]any); fmt.Sprint(tags) != "[[a b] [server_name web-1]]" || ev["server_name"] != nil {
		t.Errorf("%s: tags %v, server_name %v: want [[a b] [server_name web-1]], no server_name", what, ev["tags"], ev["server_name"])
	}
	meta, _ := ev["_meta"].(map[string]any)
	if m, _ := meta["release"].(map[string]any); ev["environment"] != "prod" || ev["release"] != nil || fmt.Sprint(m[""]) != "map[err:[invalid_data] val:latest]" {
		t.Errorf("%s: environment %v, release %v, _meta.release %v: want the environment from the tag and release latest removed", what, ev["environment"], ev["release"], meta["release"])
	}
	extra, _ := ev["extra"].(map[string]any)
	if extra["password"] != "[Filtered]" || extra["note"] != "[token]" {
		t.Errorf("%s: extra %v, want the password filtered and the token replaced", what, extra)
	}
	if m, _ := meta["extra"].(map[string]any); m["password"] == nil || m["note"] == nil {
		t.Errorf("%s: _meta %v lacks the remarks of extra.password and extra.note", what, ev["_meta"])
	}
	if c, _ := ev["culprit"].(string); c != strings.Repeat("c", 197)+"..." {
		t.Errorf("%s: culprit %q, want it trimmed to 200 characters", what, c)
	}
	if m, _ := meta["culprit"].(map[string]any); fmt.Sprint(m[""]) != "map[len:300 rem:[[!limit s 197 200]]]" {
		t.Errorf("%s: _meta.culprit %v, want the !limit remark and len 300", what, meta["culprit"])
	}
	if user, _ := ev["user"].(map[string]any); user["ip_address"] != "127.0.0.1" {
		t.Errorf("%s: user %v: {{auto}} is not the client's address", what, ev["user"])
	}
	if bytes.Contains(raw, []byte("hunter2")) || bytes.Contains(raw, []byte("tok-123456")) {
		t.Errorf("%s: personal data left Baton: %s", what, raw)
	}
}

// TestNormalizeManaged: a managed Baton delivers a normalized, scrubbed
// event both when it knew the project's config at ingest and when the
// envelope waited for it (scrubbed at release), and a security event made
// of a CSP report with the request's headers.
func TestNormalizeManaged(t *testing.T) {
	settleDialer(t)
	s := newFakeSentry(t)
	s.setPending(managedKey, 1) // the first envelope waits for the config
	s.setProject(managedKey, fakeSentryProjectState(42, managedKey, "r1", func(m map[string]any) {
		m["config"].(map[string]any)["piiConfig"] = json.RawMessage(normPII)
	}))
	n := startNode(t, managedYAML(s.url(), ""))

	const waited, known = "0f1e2d3c4b5a69788796a5b4c3d2e1f0", "1f1e2d3c4b5a69788796a5b4c3d2e1f0"
	if code, body, _ := postEnvelope(t, n, 42, managedKey, normEnvelope(managedKey, 42, waited), nil); code != 200 {
		t.Fatalf("event: %d %s", code, body)
	}
	hdr, ev, raw := waitItem(t, s, waited, "event")
	checkProcessedEvent(t, "released after waiting for its config", hdr, ev, raw)

	if code, body, _ := postEnvelope(t, n, 42, managedKey, normEnvelope(managedKey, 42, known), nil); code != 200 {
		t.Fatalf("event: %d %s", code, body)
	}
	hdr, ev, raw = waitItem(t, s, known, "event")
	checkProcessedEvent(t, "config known at ingest", hdr, ev, raw)

	code, body, _ := post(t, fmt.Sprintf("%s/api/42/security/?sentry_key=%s&sentry_release=web@1", n.url, managedKey), []byte(normCSP),
		map[string]string{"Content-Type": "application/csp-report", "User-Agent": normUA, "Origin": "https://example.com"})
	if code != 200 {
		t.Fatalf("csp report: %d %s", code, body)
	}
	hdr, sec, _ := waitItem(t, s, "evil.example.net", "security")
	if v, _ := envelope.HeaderField(hdr, "type"); string(v) != `"security"` {
		t.Errorf("security item header %s", hdr)
	}
	if sec["csp"] == nil || sec["release"] != "web@1" || !strings.Contains(fmt.Sprint(sec["logentry"]), "evil.example.net") {
		t.Errorf("security event %v: want csp, the release and a message naming the blocked uri", sec)
	}
	req, _ := sec["request"].(map[string]any)
	if !strings.Contains(fmt.Sprint(req["headers"]), normUA) {
		t.Errorf("security event request %v: want the User-Agent among its headers", req)
	}
	if _, _, ok := deliveredItem(t, s, "evil.example.net", "raw_security"); ok {
		t.Error("a raw_security item reached the upstream")
	}
	st := waitBalanced(t, n, 5*time.Second)
	if st.Classes["error"].Delivered.Records != 2 || st.Classes["security"].Delivered.Records != 1 {
		t.Errorf("delivered: %+v", st.Classes)
	}
}

// TestNormalizeInvalidPIIConfig: a project whose piiConfig does not compile
// gets its events dropped (outcome invalid), never forwarded unscrubbed;
// its other items flow.
func TestNormalizeInvalidPIIConfig(t *testing.T) {
	settleDialer(t)
	s := newFakeSentry(t)
	s.setProject(managedKey, fakeSentryProjectState(42, managedKey, "r1", func(m map[string]any) {
		m["config"].(map[string]any)["piiConfig"] = json.RawMessage(`{"rules":{"r":{"type":"pattern","pattern":"("}},"applications":{"$string":["r"]}}`)
	}))
	n := startNode(t, managedYAML(s.url(), ""))
	for i := range 2 { // pending at first, then with the config known
		id := fmt.Sprintf("2f1e2d3c4b5a69788796a5b4c3d2e1f%d", i)
		if code, body, _ := postEnvelope(t, n, 42, managedKey, normEnvelope(managedKey, 42, id), nil); code != 200 {
			t.Fatalf("event: %d %s", code, body)
		}
		fakeWaitFor(t, 15*time.Second, func() bool { return n.r.Stats().Classes["error"].Dropped["invalid"].Records == int64(i+1) },
			func() string {
				return fmt.Sprintf("event %d not dropped invalid: %+v", i, n.r.Stats().Classes["error"])
			})
	}
	session := fmt.Sprintf("{\"dsn\":\"http://%s@h/42\"}\n{\"type\":\"session\"}\n{\"sid\":\"7c7b6e5a4d3c2b1a0f9e8d7c6b5a4d3c\",\"status\":\"ok\",\"init\":true,\"started\":\"2026-01-01T00:00:00Z\",\"attrs\":{\"release\":\"r@1\"}}\n", managedKey)
	if code, body, _ := postEnvelope(t, n, 42, managedKey, []byte(session), nil); code != 200 {
		t.Fatalf("session: %d %s", code, body)
	}
	fakeWaitFor(t, 15*time.Second, func() bool { return deliveredTo(s, 42, "7c7b6e5a4d3c2b1a0f9e8d7c6b5a4d3c") == 1 },
		func() string { return "the session of the project was not delivered" })
	if deliveredTo(s, 42, "hunter2") != 0 {
		t.Error("an event of a project with a broken PII config reached the upstream")
	}
	waitBalanced(t, n, 5*time.Second)
}

// TestNormalizeProxyAndDisabled: a proxy Baton, and a static one with
// normalization.level: disabled, deliver the event item byte for byte,
// while the same static Baton with the default level normalizes it.
func TestNormalizeProxyAndDisabled(t *testing.T) {
	settleDialer(t)
	for _, c := range []struct {
		name, yaml string
		same       bool
	}{
		{"proxy", "mode: proxy\n", true},
		{"static disabled", fmt.Sprintf("mode: static\nprojects: {\"42\": {public_keys: [%s]}}\nnormalization: {level: disabled}\n", managedKey), true},
		{"static default", fmt.Sprintf("mode: static\nprojects: {\"42\": {public_keys: [%s]}}\n", managedKey), false},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := newFakeSentry(t)
			n := startNode(t, fmt.Sprintf("upstreams: {up: {urls: [%s], max_retry_interval: 200ms}}\nroutes: {default: {upstream: up}}\n", s.url())+c.yaml)
			sent := normEnvelope(managedKey, 42, "3f1e2d3c4b5a69788796a5b4c3d2e1f0")
			if code, body, _ := postEnvelope(t, n, 42, managedKey, sent, nil); code != 200 {
				t.Fatalf("event: %d %s", code, body)
			}
			hdr, _, raw := waitItem(t, s, "3f1e2d3c4b5a69788796a5b4c3d2e1f0", "event")
			if same := string(raw) == normEvent && string(hdr) == `{"type":"event","length":`+fmt.Sprint(len(normEvent))+`}`; same != c.same {
				t.Errorf("delivered as received: %v, want %v\nheader %s\npayload %s", same, c.same, hdr, raw)
			}
		})
	}
}

// TestNormalizeRelayDirPII: a Relay config directory's projects/<id>.json
// applies its piiConfig (no longer listed as ignored) to what a static
// Baton forwards.
func TestNormalizeRelayDirPII(t *testing.T) {
	settleDialer(t)
	s := newFakeSentry(t)
	proj := fmt.Sprintf(`{"publicKeys": [{"publicKey": %q}], "config": {"allowedDomains": ["*"], "piiConfig": %s,
		"datascrubbingSettings": {"scrubData": true, "scrubDefaults": true}}}`, managedKey, normPII)
	dir := relayDir(t, fmt.Sprintf("relay: {mode: static, upstream: \"%s/\", port: 0}\n", s.url()), map[string]string{"42": proj})
	cfg, d, err := config.LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if i := slices.IndexFunc(d.Ignored, func(k string) bool { return strings.Contains(k, "piiConfig") || strings.Contains(k, "datascrubbing") }); i >= 0 {
		t.Errorf("%q is listed as ignored", d.Ignored[i])
	}
	n := runNode(t, cfg, dir, nil)
	if code, body, _ := postEnvelope(t, n, 42, managedKey, normEnvelope(managedKey, 42, "4f1e2d3c4b5a69788796a5b4c3d2e1f0"), nil); code != http.StatusOK {
		t.Fatalf("event: %d %s", code, body)
	}
	hdr, ev, raw := waitItem(t, s, "4f1e2d3c4b5a69788796a5b4c3d2e1f0", "event")
	checkProcessedEvent(t, "static, projects/42.json", hdr, ev, raw)
}

// TestNormalizeTreeBudget: the tree an event is parsed into for
// normalization is charged to the request before it is built. A 1 MiB
// event of empty objects makes ~65 MB of nodes: with the default
// server.max_inflight_bytes (48 MiB) it gets 413, not the memory, while a
// realistic event still passes.
func TestNormalizeTreeBudget(t *testing.T) {
	s := newFakeSentry(t)
	n := startNode(t, fmt.Sprintf("upstreams: {up: {urls: [%s], max_retry_interval: 200ms}}\nroutes: {default: {upstream: up}}\n", s.url())+
		fmt.Sprintf("mode: static\nprojects: {\"42\": {public_keys: [%s]}}\n", managedKey))
	hostile := `{"extra":{"x":[{}` + strings.Repeat(`,{}`, 340_000) + `]}}`
	env := fmt.Appendf(nil, "{\"event_id\":\"4f1e2d3c4b5a69788796a5b4c3d2e1f0\"}\n{\"type\":\"event\"}\n%s\n", hostile)
	code, body, _ := postEnvelope(t, n, 42, managedKey, env, nil)
	if code != http.StatusRequestEntityTooLarge || !strings.Contains(body, "max_inflight_bytes") {
		t.Errorf("1 MiB of empty objects: %d %s, want 413 naming server.max_inflight_bytes", code, body)
	}
	if code, body, _ := postEnvelope(t, n, 42, managedKey, normEnvelope(managedKey, 42, "5f1e2d3c4b5a69788796a5b4c3d2e1f0"), nil); code != 200 {
		t.Errorf("a realistic event: %d %s", code, body)
	}
	if st := waitBalanced(t, n, 10*time.Second); st.Rejected["too_large"] != 1 || st.Bodies.InUse != 0 {
		t.Errorf("after the requests: rejected %v, bodies %+v", st.Rejected, st.Bodies)
	}
}
