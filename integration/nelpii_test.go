package integration

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"
)

// nelReport is a NEL report batch of one report of a failed request to a
// URL with an e-mail address in its query, referred from referrer.
func nelReport(referrer string) string {
	return `[{"age":0,"type":"network-error","url":"https://example.com/u?email=jane@example.com",` +
		`"body":{"type":"http.error","status_code":500,"elapsed_time":9,"method":"GET","phase":"application",` +
		`"protocol":"http/1.1","server_ip":"192.0.2.1","sampling_fraction":1,"referrer":"` + referrer + `"}}]`
}

// A NEL report becomes a log item, and Relay scrubs logs with the
// project's PII config (processing/logs scrub_log): the converted log
// reaches Sentry scrubbed by the project's piiConfig, with its _meta, at
// ingest and when it waited for the config; a project without the rule
// gets the URL as it was.
func TestNELLogScrubbed(t *testing.T) {
	settleDialer(t)
	s := newFakeSentry(t)
	s.setPending(managedKey, 3)
	s.setProject(managedKey, fakeSentryProjectState(42, managedKey, "r1", func(m map[string]any) {
		m["config"].(map[string]any)["piiConfig"] = json.RawMessage(`{"applications":{"$string":["@email:replace"]}}`)
	}))
	s.setProject(managedKey2, fakeSentryProjectState(43, managedKey2, "r1", nil))
	n := startNode(t, managedYAML(s.url(), ""))

	send := func(pid uint64, key, referrer string) {
		t.Helper()
		url := fmt.Sprintf("%s/api/%d/nel/?sentry_key=%s", n.url, pid, key)
		if code, body, _ := post(t, url, []byte(nelReport(referrer)), map[string]string{"Content-Type": "application/reports+json"}); code != 200 {
			t.Fatalf("%s: %d %s", referrer, code, body)
		}
	}
	log := func(referrer string) map[string]any {
		t.Helper()
		fakeWaitFor(t, 15*time.Second, func() bool { _, _, ok := deliveredItem(t, s, referrer, "log"); return ok },
			func() string { return "no log referred from " + referrer + " reached the fake" })
		_, payload, _ := deliveredItem(t, s, referrer, "log")
		var c struct{ Items []map[string]any }
		if err := json.Unmarshal(payload, &c); err != nil || len(c.Items) != 1 {
			t.Fatalf("log container %s: %v", payload, err)
		}
		return c.Items[0]
	}
	urlOf := func(l map[string]any) any {
		a, _ := l["attributes"].(map[string]any)["url.full"].(map[string]any)
		return a["value"]
	}

	send(42, managedKey, "https://ref-waited.example/")
	if st := n.r.Stats(); st.Waiting == 0 {
		t.Fatal("nothing waits for the config: the release path is not exercised")
	}
	send(43, managedKey2, "https://ref-plain.example/")
	if u := urlOf(log("https://ref-plain.example/")); u != "https://example.com/u?email=jane@example.com" {
		t.Errorf("url of a project without the rule: %v", u)
	}
	check := func(referrer string) {
		t.Helper()
		l := log(referrer)
		meta, _ := l["_meta"].(map[string]any)
		attrs, _ := meta["attributes"].(map[string]any)
		if u := urlOf(l); u != "https://[email]" || attrs["url.full"] == nil {
			t.Errorf("%s: url %v, _meta %v; want the address replaced, with its remark", referrer, u, meta)
		}
	}
	check("https://ref-waited.example/")
	if st := n.r.Stats(); st.Waiting != 0 {
		t.Fatalf("%d records still wait", st.Waiting)
	}
	send(42, managedKey, "https://ref-ingest.example/")
	check("https://ref-ingest.example/")
	waitBalanced(t, n, 15*time.Second)
}
