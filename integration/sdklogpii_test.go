package integration

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

// sdkLogEnvelope is an envelope of one SDK log item holding one log whose
// body names marker and an e-mail address, with a password attribute.
func sdkLogEnvelope(marker string) []byte {
	log := `{"timestamp":1764064800.5,"trace_id":"5b8efff798038103d269b633813fc60c","level":"info",` +
		`"body":"order ` + marker + ` for jane@example.com","attributes":{` +
		`"password":{"type":"string","value":"hunter2"},"sentry.release":{"type":"string","value":"web@1"}}}`
	payload := `{"items":[` + log + `]}`
	return []byte("{}\n" + fmt.Sprintf(`{"type":"log","length":%d,"item_count":1,"content_type":"application/vnd.sentry.items.log+json"}`, len(payload)) +
		"\n" + payload + "\n")
}

// An SDK's log items are scrubbed like events, as Relay's logs processor
// scrubs each log (processing/logs scrub_log): with the project's
// piiConfig (the address in the body replaced) and its
// datascrubbingSettings (the password attribute filtered), with the
// `_meta` remarks, at ingest and when the log waited for its project's
// config. A project that scrubs nothing gets the log as it was sent.
func TestSDKLogScrubbed(t *testing.T) {
	s, n, send := startLogScrubbing(t, sdkLogEnvelope)
	log := func(marker string) (map[string]any, []byte) {
		t.Helper()
		_, payload, _ := waitItem(t, s, marker, "log")
		items, _ := payload["items"].([]any)
		if len(items) != 1 {
			t.Fatalf("log container %v", payload)
		}
		_, raw, _ := deliveredItem(t, s, marker, "log")
		return items[0].(map[string]any), raw
	}
	attr := func(l map[string]any, name string) any {
		a, _ := l["attributes"].(map[string]any)[name].(map[string]any)
		return a["value"]
	}

	send(42, managedKey, "ref-waited")
	if st := n.r.Stats(); st.Waiting == 0 {
		t.Fatal("nothing waits for the config: the release path is not exercised")
	}
	send(43, managedKey2, "ref-plain")
	if l, raw := log("ref-plain"); l["body"] != "order ref-plain for jane@example.com" || attr(l, "password") != "hunter2" {
		t.Errorf("log of a project without rules: %s; want it as sent", raw)
	}
	check := func(marker string) {
		t.Helper()
		l, raw := log(marker)
		meta, _ := l["_meta"].(map[string]any)
		if l["body"] != "order "+marker+" for [email]" || meta["body"] == nil {
			t.Errorf("%s: body %v, _meta %v; want the address replaced, with its remark", marker, l["body"], meta)
		}
		if attr(l, "password") != "[Filtered]" || attr(l, "sentry.release") != "web@1" {
			t.Errorf("%s: attributes %v; want the password filtered and the release kept", marker, l["attributes"])
		}
		if strings.Contains(string(raw), "hunter2") || strings.Contains(string(raw), "jane@example.com") {
			t.Errorf("%s: personal data reached Sentry: %s", marker, raw)
		}
	}
	check("ref-waited")
	if st := n.r.Stats(); st.Waiting != 0 {
		t.Fatalf("%d records still wait", st.Waiting)
	}
	send(42, managedKey, "ref-ingest")
	check("ref-ingest")
	waitBalanced(t, n, 15*time.Second)
}

// startLogScrubbing runs a managed Baton whose fake Sentry serves project
// 42 (managedKey) scrubbing addresses by piiConfig and passwords by the
// default datascrubbingSettings, its config held back for the first three
// fetches, and project 43 (managedKey2) scrubbing nothing. send posts the
// envelope envelope(marker) makes for a project; it must be accepted.
func startLogScrubbing(t *testing.T, envelope func(marker string) []byte) (*fakeSentry, *node, func(pid uint64, key, marker string)) {
	t.Helper()
	settleDialer(t)
	s := newFakeSentry(t)
	s.setPending(managedKey, 3)
	s.setProject(managedKey, fakeSentryProjectState(42, managedKey, "r1", func(m map[string]any) {
		cfg := m["config"].(map[string]any)
		cfg["piiConfig"] = json.RawMessage(`{"applications":{"$string":["@email:replace"]}}`)
		cfg["datascrubbingSettings"] = json.RawMessage(`{"scrubData":true,"scrubDefaults":true}`)
	}))
	s.setProject(managedKey2, fakeSentryProjectState(43, managedKey2, "r1", func(m map[string]any) {
		m["config"].(map[string]any)["datascrubbingSettings"] = json.RawMessage(`{"scrubData":false}`)
	}))
	n := startNode(t, managedYAML(s.url(), ""))
	return s, n, func(pid uint64, key, marker string) {
		t.Helper()
		if code, body, _ := postEnvelope(t, n, pid, key, envelope(marker), nil); code != 200 {
			t.Fatalf("%s: %d %s", marker, code, body)
		}
	}
}
