package integration

import (
	"fmt"
	"testing"
	"time"
)

// txValid makes a transaction pass Relay's validation (validate_transaction):
// both timestamps in order and a trace context with its ids.
const txValid = `"start_timestamp":1700000000,"timestamp":1700000001,"contexts":{"trace":{"trace_id":"4c79f60c11214eb38604f4ae0781bfb2","span_id":"fa90fdead5f74052"}}`

// TestNormalizeTransactionManaged: a managed Baton delivers a transaction
// whose request, breadcrumbs and spans Relay's first relay would normalize
// in that form (method upper-cased, query string and fragment out of the
// URL, cookies out of the Cookie header, breadcrumb and span timestamps as
// seconds, an unreadable breadcrumb timestamp removed with _meta, the
// trace context's op and status), and drops a transaction that ends before
// it starts with outcome invalid, reason invalid_transaction, reported to
// Sentry.
func TestNormalizeTransactionManaged(t *testing.T) {
	settleDialer(t)
	s := newFakeSentry(t)
	s.setProject(managedKey, fakeSentryProjectState(42, managedKey, "r1", nil))
	n := startNode(t, managedYAML(s.url(), "outcomes:\n  emit_outcomes: \"true\"\n  batch_interval: 10ms\n  source: edge-1\n"))

	now := time.Now().UTC()
	start, end := now.Add(-2*time.Second), now.Add(-time.Second)
	iso := func(t time.Time) string { return t.Format("2006-01-02T15:04:05.000000Z") }
	secs := func(t time.Time) float64 { return float64(t.UnixMicro()) / 1e6 }
	const trace = `"contexts":{"trace":{"trace_id":"4C79F60C11214EB38604F4AE0781BFB2","span_id":"fa90fdead5f74053"}}`
	good := fmt.Sprintf(`{"type":"transaction","transaction":"checkout-tx-norm","start_timestamp":%q,"timestamp":%q,%s,`+
		`"request":{"method":"post","url":"https://Shop.example.com/cart?item=42&q=a+b#pay","headers":{"Cookie":"sid=abc; theme=dark","Accept":"*/*"}},`+
		`"breadcrumbs":[{"timestamp":%q,"message":"ok"},{"timestamp":"not a time","message":"bad"}],`+
		`"spans":[{"start_timestamp":%q,"timestamp":%q,"trace_id":"4c79f60c11214eb38604f4ae0781bfb2","span_id":"aa90fdead5f74053"}]}`,
		iso(start), iso(end), trace, iso(start), iso(start), iso(end))
	const goodID, badID = "3f1e2d3c4b5a69788796a5b4c3d2e1f0", "4f1e2d3c4b5a69788796a5b4c3d2e1f0"
	env := func(id, payload string) []byte {
		return fmt.Appendf(nil, "{\"event_id\":%q,\"dsn\":\"http://%s@h/42\"}\n{\"type\":\"transaction\"}\n%s\n", id, managedKey, payload)
	}
	hdr := map[string]string{"X-Forwarded-For": "203.0.113.7"}
	if code, body, _ := postEnvelope(t, n, 42, managedKey, env(goodID, good), hdr); code != 200 {
		t.Fatalf("transaction: %d %s", code, body)
	}
	_, ev, raw := waitItem(t, s, "checkout-tx-norm", "transaction")
	req, _ := ev["request"].(map[string]any)
	if req["method"] != "POST" || req["url"] != "https://shop.example.com/cart" || req["fragment"] != "pay" ||
		fmt.Sprint(req["query_string"]) != "[[item 42] [q a b]]" || fmt.Sprint(req["cookies"]) != "[[sid abc] [theme dark]]" ||
		fmt.Sprint(req["headers"]) != "[[Accept */*]]" {
		t.Errorf("request %v: want it normalized as Relay does\n%s", req, raw)
	}
	crumbs, _ := ev["breadcrumbs"].(map[string]any)["values"].([]any)
	if len(crumbs) != 2 || crumbs[0].(map[string]any)["timestamp"] != secs(start) || crumbs[1].(map[string]any)["timestamp"] != nil {
		t.Errorf("breadcrumbs %v: want the first timestamp in seconds (%v), the second removed", crumbs, secs(start))
	}
	if m := fmt.Sprint(ev["_meta"]); m != "map[breadcrumbs:map[values:map[1:map[timestamp:map[:map[err:[[invalid_data map[reason:expected a timestamp]]] val:not a time]]]]]]" {
		t.Errorf("_meta %s: want the removed breadcrumb timestamp recorded", m)
	}
	spans, _ := ev["spans"].([]any)
	if len(spans) != 1 || spans[0].(map[string]any)["op"] != "default" || spans[0].(map[string]any)["timestamp"] != secs(end) {
		t.Errorf("spans %v: want op default and the timestamp in seconds", spans)
	}
	tc, _ := ev["contexts"].(map[string]any)["trace"].(map[string]any)
	if tc["trace_id"] != "4c79f60c11214eb38604f4ae0781bfb2" || tc["op"] != "default" || tc["status"] != "unknown" || tc["type"] != "trace" {
		t.Errorf("trace context %v", tc)
	}
	if info, _ := ev["transaction_info"].(map[string]any); info["source"] != "unknown" {
		t.Errorf("transaction_info %v, want source unknown", ev["transaction_info"])
	}

	bad := fmt.Sprintf(`{"type":"transaction","transaction":"backwards-tx","start_timestamp":%q,"timestamp":%q,%s}`, iso(end), iso(start), trace)
	if code, body, _ := postEnvelope(t, n, 42, managedKey, env(badID, bad), hdr); code != 200 {
		t.Fatalf("transaction: %d %s", code, body)
	}
	fakeWaitFor(t, 15*time.Second, func() bool {
		for _, o := range sentryOutcomes(s) {
			if o["event_id"] == badID && o["outcome"] == float64(3) && o["reason"] == "invalid_transaction" && o["category"] == float64(2) {
				return true
			}
		}
		return false
	}, func() string {
		return fmt.Sprintf("no invalid_transaction outcome for %s at Sentry: %v", badID, sentryOutcomes(s))
	})
	if deliveredTo(s, 42, "backwards-tx") != 0 {
		t.Error("the transaction that ends before it starts reached the upstream")
	}
	st := waitBalanced(t, n, 15*time.Second)
	if tx := st.Classes["transaction"]; tx.Delivered.Records != 1 || tx.Dropped["invalid"].Records != 1 {
		t.Errorf("transaction class %+v: want one delivered, one dropped invalid", tx)
	}
}
