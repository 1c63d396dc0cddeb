package integration

import (
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/baton-relay/baton/envelope"
)

// clientReportLine is one line of a client report the fake Sentry got.
type clientReportLine struct {
	Field, Reason, Category string
}

// clientReports sums the client_report items project pid received, by
// field, reason and category.
func clientReports(t *testing.T, s *fakeSentry, pid uint64) map[clientReportLine]int64 {
	t.Helper()
	sum := map[clientReportLine]int64{}
	for _, e := range s.envelopes() {
		if e.ProjectID != fmt.Sprint(pid) || e.Status != 200 {
			continue
		}
		env, err := envelope.Parse(e.Body)
		if err != nil {
			t.Fatalf("fake sentry got an unparsable envelope: %v", err)
		}
		for _, it := range env.Items {
			if it.Type != envelope.ItemClientReport {
				continue
			}
			var cr map[string]json.RawMessage
			if err := json.Unmarshal(it.Payload, &cr); err != nil {
				t.Fatalf("client report %s: %v", it.Payload, err)
			}
			for field, raw := range cr {
				if field == "timestamp" {
					continue
				}
				var lines []struct {
					Reason, Category string
					Quantity         int64
				}
				if err := json.Unmarshal(raw, &lines); err != nil {
					t.Fatalf("client report field %s: %v", field, err)
				}
				for _, l := range lines {
					sum[clientReportLine{field, l.Reason, l.Category}] += l.Quantity
				}
			}
		}
	}
	return sum
}

// A managed Baton reports what its project's filters and quotas dropped
// to Sentry as client reports, merged per project key, with Relay's
// fields, reasons, categories and quantities (docs/relay-protocol.md,
// section 7.2); the reports pass through the buffer and the stats stay
// balanced.
func TestManagedDropsReachSentryAsClientReports(t *testing.T) {
	settleDialer(t)
	s := newFakeSentry(t)
	s.setProject(managedKey, fakeSentryProjectState(42, managedKey, "r1", func(m map[string]any) {
		cfg := m["config"].(map[string]any)
		cfg["filterSettings"] = map[string]any{
			"webCrawlers": map[string]any{"isEnabled": true},
			"releases":    map[string]any{"releases": []any{"0.9.*"}},
		}
		cfg["quotas"] = []any{map[string]any{"id": "tx", "categories": []any{"transaction"}, "limit": 0, "reasonCode": "tx_off"}}
	}))
	n := startNode(t, managedYAML(s.url(), ""))

	send := func(want int, body string) {
		t.Helper()
		if status, resp, _ := postEnvelope(t, n, 42, managedKey, []byte(body), nil); status != want {
			t.Fatalf("%d %s, want %d", status, resp, want)
		}
	}
	dsn := fmt.Sprintf(`{"dsn":"http://%s@h/42"}`, managedKey)
	// A filtered event with two attachments (3 and 5 bytes): 1 error, 8
	// attachment bytes, 2 attachment items, as Relay counts them. Sent
	// before the config is known, it waits and is dropped on release.
	send(200, dsn+"\n{\"type\":\"event\"}\n{\"message\":\"f-release\",\"release\":\"0.9.1\"}\n"+
		"{\"type\":\"attachment\",\"length\":3}\nabc\n{\"type\":\"attachment\",\"length\":5}\nabcde\n")
	send(200, dsn+"\n{\"type\":\"event\"}\n{\"message\":\"kept-first\"}\n")
	fakeWaitFor(t, 10*time.Second, func() bool { return deliveredTo(s, 42, "kept-first") == 1 },
		func() string { return "the config was not fetched" })
	send(200, dsn+"\n{\"type\":\"event\"}\n{\"message\":\"f-release-2\",\"release\":\"0.9.2\"}\n")
	send(200, dsn+"\n{\"type\":\"event\"}\n{\"message\":\"f-crawler\",\"request\":{\"headers\":{\"User-Agent\":\"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)\"}}}\n")
	// Transactions over a quota of 0: refused with 429, still reported.
	for range 2 {
		send(429, dsn+"\n{\"type\":\"transaction\"}\n{\"type\":\"transaction\",\"transaction\":\"/x\","+txValid+"}\n")
	}
	send(200, dsn+"\n{\"type\":\"event\"}\n{\"message\":\"kept-last\"}\n")

	want := map[clientReportLine]int64{
		{"filtered_events", "release-version", "error"}:           2,
		{"filtered_events", "release-version", "attachment"}:      8,
		{"filtered_events", "release-version", "attachment_item"}: 2,
		{"filtered_events", "web-crawlers", "error"}:              1,
		{"rate_limited_events", "tx_off", "transaction"}:          2,
		{"rate_limited_events", "tx_off", "transaction_indexed"}:  2,
	}
	var got map[clientReportLine]int64
	fakeWaitFor(t, 15*time.Second, func() bool {
		got = clientReports(t, s, 42)
		return reflect.DeepEqual(got, want)
	}, func() string { return fmt.Sprintf("client reports at Sentry:\n got %v\nwant %v", got, want) })

	st := waitBalanced(t, n, 15*time.Second)
	if deliveredTo(s, 42, "kept-last") != 1 {
		t.Error("the kept event was not delivered")
	}
	cr := st.Classes["client_report"]
	if cr.Produced.Records == 0 || cr.Delivered.Records != cr.Produced.Records {
		t.Errorf("client_report class %+v: want its produced records delivered", cr)
	}
	if st.Reports == nil || st.Reports.Reported != 17 || st.Reports.Lost != 0 {
		t.Errorf("reports %+v, want 17 reported and none lost", st.Reports)
	}
}

// With outcomes.emit_outcomes false nothing is reported.
func TestManagedDropsNotReportedWhenOff(t *testing.T) {
	settleDialer(t)
	s := newFakeSentry(t)
	s.setProject(managedKey, fakeSentryProjectState(42, managedKey, "r1", func(m map[string]any) {
		m["config"].(map[string]any)["filterSettings"] = map[string]any{"releases": map[string]any{"releases": []any{"0.9.*"}}}
	}))
	n := startNode(t, managedYAML(s.url(), "outcomes:\n  emit_outcomes: \"false\"\n  batch_interval: 10ms\n"))
	dsn := fmt.Sprintf(`{"dsn":"http://%s@h/42"}`, managedKey)
	for _, body := range []string{
		dsn + "\n{\"type\":\"event\"}\n{\"message\":\"f\",\"release\":\"0.9.1\"}\n",
		dsn + "\n{\"type\":\"event\"}\n{\"message\":\"kept\"}\n",
	} {
		if status, resp, _ := postEnvelope(t, n, 42, managedKey, []byte(body), nil); status != 200 {
			t.Fatalf("%d %s", status, resp)
		}
	}
	fakeWaitFor(t, 15*time.Second, func() bool { return deliveredTo(s, 42, "kept") == 1 },
		func() string { return "the kept event was not delivered" })
	st := waitBalanced(t, n, 15*time.Second)
	if got := clientReports(t, s, 42); len(got) != 0 || st.Reports != nil || st.Classes["client_report"].Produced.Records != 0 {
		t.Errorf("outcomes off, yet reported: %v, %+v", got, st.Reports)
	}
}
