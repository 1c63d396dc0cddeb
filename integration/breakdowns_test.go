package integration

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

// sentryBreakdowns is Sentry's default project config entry.
const sentryBreakdowns = `{"span_ops":{"type":"spanOperations","matches":["http","db","browser","resource","ui"]}}`

// A transaction sent to a managed Baton reaches Sentry with the
// span-operation breakdowns its project's breakdownsV2 asks for, computed
// as Relay's first relay computes them (the union of each op group's
// spans in milliseconds, total.time over every group), replacing those
// the SDK sent: at ingest, and on release for one that waited for its
// project's config. A project without breakdownsV2 keeps the SDK's.
func TestBreakdownsManaged(t *testing.T) {
	settleDialer(t)
	s := newFakeSentry(t)
	withBD := func(m map[string]any) {
		m["config"].(map[string]any)["breakdownsV2"] = json.RawMessage(sentryBreakdowns)
	}
	s.setPending(managedKey, 3) // the first transaction waits for the config
	s.setProject(managedKey, fakeSentryProjectState(42, managedKey, "r1", withBD))
	s.setProject(managedKey2, fakeSentryProjectState(43, managedKey2, "r1", nil))
	n := startNode(t, managedYAML(s.url(), ""))

	base := time.Now().UTC().Add(-time.Second).Truncate(time.Millisecond)
	secs := func(ms int) string {
		return fmt.Sprintf("%.6f", float64(base.Add(time.Duration(ms)*time.Millisecond).UnixMicro())/1e6)
	}
	span := func(op string, from, to int, id string) string {
		return fmt.Sprintf(`{"op":%q,"start_timestamp":%s,"timestamp":%s,"trace_id":"4c79f60c11214eb38604f4ae0781bfb2","span_id":%q}`,
			op, secs(from), secs(to), id)
	}
	tx := func(name string) string {
		return fmt.Sprintf(`{"type":"transaction","transaction":%q,"start_timestamp":%s,"timestamp":%s,`+
			`"contexts":{"trace":{"trace_id":"4c79f60c11214eb38604f4ae0781bfb2","span_id":"fa90fdead5f74052","op":"http.server"}},`+
			`"breakdowns":{"span_ops":{"ops.sdk":{"value":1.0,"unit":"millisecond"}}},"spans":[%s]}`,
			name, secs(0), secs(400), strings.Join([]string{
				span("http.client", 0, 100, "aa90fdead5f74053"),
				span("db.query", 50, 150, "ab90fdead5f74053"),
				span("db.sql", 100, 200, "ac90fdead5f74053"),
				span("custom", 0, 300, "ad90fdead5f74053"),
			}, ","))
	}
	send := func(pid uint64, key, name string) {
		t.Helper()
		body := fmt.Appendf(nil, "{\"dsn\":\"http://%s@h/%d\"}\n{\"type\":\"transaction\"}\n%s\n", key, pid, tx(name))
		if code, resp, _ := postEnvelope(t, n, pid, key, body, nil); code != 200 {
			t.Fatalf("%s: %d %s", name, code, resp)
		}
	}
	breakdowns := func(name string) string {
		t.Helper()
		_, ev, raw := waitItem(t, s, name, "transaction")
		b, err := json.Marshal(ev["breakdowns"])
		if err != nil {
			t.Fatalf("%s: %v\n%s", name, err, raw)
		}
		return string(b)
	}
	// http 100 ms; db.query and db.sql overlap: db 150 ms; custom (no
	// match) 300 ms, counted only in total.time: 550 ms.
	const want = `{"span_ops":{"ops.db":{"unit":"millisecond","value":150},"ops.http":{"unit":"millisecond","value":100},"total.time":{"unit":"millisecond","value":550}}}`

	send(42, managedKey, "bd-waited")
	if st := n.r.Stats(); st.Waiting == 0 {
		t.Fatal("nothing waits for the config: the release path is not exercised")
	}
	if got := breakdowns("bd-waited"); got != want {
		t.Errorf("transaction released once the config came:\n got %s\nwant %s", got, want)
	}
	send(42, managedKey, "bd-ingest")
	if got := breakdowns("bd-ingest"); got != want {
		t.Errorf("transaction at ingest:\n got %s\nwant %s", got, want)
	}
	send(43, managedKey2, "bd-none")
	if got, sdk := breakdowns("bd-none"), `{"span_ops":{"ops.sdk":{"unit":"millisecond","value":1}}}`; got != sdk {
		t.Errorf("transaction of a project without breakdownsV2:\n got %s\nwant the SDK's %s", got, sdk)
	}
	waitBalanced(t, n, 15*time.Second)
}
