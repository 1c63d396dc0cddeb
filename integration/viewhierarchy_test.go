package integration

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

// vhPII is Relay's test_attachment_scrubbing_with_fallback config with an
// IP rule added: `$string` rules for the JSON of a view hierarchy, a
// password rule for the file as a plain attachment.
const vhPII = `{"rules":{"0":{"type":"password","redaction":{"method":"remove"}}},` +
	`"applications":{"$string":["@password:remove","@ip:mask"],"$attachments.'view-hierarchy.json'":["0"]}}`

// vhKey3 is a third project's key (44).
const vhKey3 = "00112233445566778899aabbccddeeff"

// A view hierarchy attachment sent to a managed Baton is scrubbed as
// Relay scrubs it: as JSON (its strings, by the `$string` rules) for a
// project with the view-hierarchy-scrubbing feature, at ingest and when
// released after its config came; as a plain attachment (all of it
// masked, the password rule matching) without the feature; and forwarded
// byte for byte, whitespace kept, when no rule matched.
func TestViewHierarchyScrubbing(t *testing.T) {
	settleDialer(t)
	s := newFakeSentry(t)
	withVH := func(pii string, features ...any) func(m map[string]any) {
		return func(m map[string]any) {
			c := m["config"].(map[string]any)
			c["piiConfig"] = json.RawMessage(pii)
			c["features"] = features
		}
	}
	s.setPending(managedKey, 3) // the first envelope waits for the config
	s.setProject(managedKey, fakeSentryProjectState(42, managedKey, "r1", withVH(vhPII, "organizations:view-hierarchy-scrubbing")))
	s.setProject(managedKey2, fakeSentryProjectState(43, managedKey2, "r1", withVH(vhPII)))
	s.setProject(vhKey3, fakeSentryProjectState(44, vhKey3, "r1",
		withVH(`{"applications":{"$string":["@creditcard"]}}`, "organizations:view-hierarchy-scrubbing")))
	n := startNode(t, managedYAML(s.url(), ""))

	const vh = `{"rendering_system":"UIKIT","password":"hunter42","windows":[{"type":"UIWindow","identifier":"129.16.41.92","width":414,"alpha":1.0,"children":[]}]}`
	const pretty = "{\n  \"rendering_system\": \"UIKIT\",\n  \"identifier\": \"129.16.41.92\",\n  \"width\": 4.14E2\n}"
	send := func(pid uint64, key, marker, payload string) {
		t.Helper()
		body := fmt.Appendf(nil, "{\"dsn\":\"http://%s@h/%d\"}\n{\"type\":\"event\"}\n{\"message\":%q}\n"+
			"{\"type\":\"attachment\",\"length\":%d,\"filename\":\"view-hierarchy.json\",\"attachment_type\":\"event.view_hierarchy\",\"content_type\":\"application/json\"}\n%s\n",
			key, pid, marker, len(payload), payload)
		if code, resp, _ := postEnvelope(t, n, pid, key, body, nil); code != 200 {
			t.Fatalf("%s: %d %s", marker, code, resp)
		}
	}
	attachment := func(marker string) string {
		t.Helper()
		fakeWaitFor(t, 15*time.Second, func() bool { _, _, ok := deliveredItem(t, s, marker, "attachment"); return ok },
			func() string { return "no attachment with " + marker + " reached the fake" })
		_, payload, _ := deliveredItem(t, s, marker, "attachment")
		return string(payload)
	}

	send(42, managedKey, "VH-WAITED", vh) // the config is pending: scrubbed on release
	if st := n.r.Stats(); st.Waiting == 0 {
		t.Fatal("nothing waits for the config: the release path is not exercised")
	}
	// As Relay writes it (the input is compact): the password removed to
	// "", the IP masked, everything else as sent.
	const scrubbed = `{"rendering_system":"UIKIT","password":"","windows":[{"type":"UIWindow","identifier":"************","width":414,"alpha":1.0,"children":[]}]}`
	if got := attachment("VH-WAITED"); got != scrubbed {
		t.Errorf("view hierarchy released once the config came:\n got %s\nwant %s", got, scrubbed)
	}
	send(42, managedKey, "VH-INGEST", vh)
	if got := attachment("VH-INGEST"); got != scrubbed {
		t.Errorf("view hierarchy scrubbed at ingest:\n got %s\nwant %s", got, scrubbed)
	}
	// Without the feature: a plain attachment, which the password rule of
	// `$attachments.'view-hierarchy.json'` masks whole, length kept.
	send(43, managedKey2, "VH-NOFEATURE", vh)
	if got, want := attachment("VH-NOFEATURE"), strings.Repeat("*", len(vh)); got != want {
		t.Errorf("view hierarchy without the feature:\n got %s\nwant %s", got, want)
	}
	// Beside a minidump too (each attachment is judged on its own, as
	// Relay does now): the view hierarchy masked, the minidump untouched.
	const dump = "MDMP 192.168.1.20 dump"
	body := fmt.Appendf(nil, "{\"dsn\":\"http://%s@h/43\"}\n{\"type\":\"event\"}\n{\"message\":\"VH-DUMP\"}\n"+
		"{\"type\":\"attachment\",\"length\":%d,\"filename\":\"view-hierarchy.json\",\"attachment_type\":\"event.view_hierarchy\"}\n%s\n"+
		"{\"type\":\"attachment\",\"length\":%d,\"filename\":\"crash.dmp\",\"attachment_type\":\"event.minidump\"}\n%s\n",
		managedKey2, len(vh), vh, len(dump), dump)
	if code, resp, _ := postEnvelope(t, n, 43, managedKey2, body, nil); code != 200 {
		t.Fatalf("VH-DUMP: %d %s", code, resp)
	}
	fakeWaitFor(t, 15*time.Second, func() bool { _, _, ok := deliveredItem(t, s, "VH-DUMP", "attachment"); return ok },
		func() string { return "no attachment with VH-DUMP reached the fake" })
	for _, e := range s.envelopes() {
		if !strings.Contains(string(e.Body), "VH-DUMP") {
			continue
		}
		if !strings.Contains(string(e.Body), "\n"+strings.Repeat("*", len(vh))+"\n") || !strings.Contains(string(e.Body), "\n"+dump+"\n") {
			t.Errorf("view hierarchy beside a minidump: want it masked whole and the minidump untouched:\n%s", e.Body)
		}
	}
	// The feature, but no rule matches: byte for byte.
	send(44, vhKey3, "VH-UNTOUCHED", pretty)
	if got := attachment("VH-UNTOUCHED"); got != pretty {
		t.Errorf("view hierarchy no rule matched:\n got %q\nwant %q", got, pretty)
	}
	waitBalanced(t, n, 15*time.Second)
}
