package integration

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/baton-relay/baton/envelope"
)

// cspReport is one csp-violation report of a Reporting API batch
// (application/reports+json), blocking https://<host>/x.js.
func cspReport(host string) string {
	return `{"type":"csp-violation","age":10,"url":"https://example.com/page","user_agent":"` + normUA + `",` +
		`"body":{"documentURL":"https://example.com/page","blockedURL":"https://` + host + `/x.js","effectiveDirective":"script-src-elem",` +
		`"originalPolicy":"script-src 'self'; report-to csp","disposition":"enforce","statusCode":200}}`
}

// A Reporting API batch of CSP reports posted to the security endpoint
// becomes one security event per report, each in an envelope of its own
// with its own event id (an envelope holds one event); a report of another
// type in the batch is dropped with outcome filtered, as Relay drops it. A
// batch over the endpoint's bound is refused (413) and nothing of it is
// kept.
func TestSecurityReportBatch(t *testing.T) {
	settleDialer(t)
	s := newFakeSentry(t)
	s.setProject(managedKey, fakeSentryProjectState(42, managedKey, "r1", nil))
	n := startNode(t, managedYAML(s.url(), ""))
	// The project's config is known before the batch comes.
	if code, body, _ := postEnvelope(t, n, 42, managedKey, envelopeFor(42, managedKey, "event"), nil); code != 200 {
		t.Fatalf("event: %d %s", code, body)
	}
	fakeWaitFor(t, 15*time.Second, func() bool { return n.r.Stats().Classes["error"].Delivered.Records == 1 },
		func() string { return "the first event was not delivered" })

	hosts := []string{"one.evil.example", "two.evil.example", "three.evil.example"}
	batch := "[" + cspReport(hosts[0]) + `,{"type":"deprecation","url":"https://example.com/page","body":{"id":"x","message":"old"}},` +
		cspReport(hosts[1]) + "," + cspReport(hosts[2]) + "]"
	url := fmt.Sprintf("%s/api/42/security/?sentry_key=%s&sentry_release=web@1", n.url, managedKey)
	hdr := map[string]string{"Content-Type": "application/reports+json", "User-Agent": normUA}
	if code, body, _ := post(t, url, []byte(batch), hdr); code != 200 {
		t.Fatalf("batch: %d %s", code, body)
	}
	ids := map[string]string{}
	for _, host := range hosts {
		_, sec, _ := waitItem(t, s, host, "security")
		csp, _ := sec["csp"].(map[string]any)
		if csp == nil || csp["blocked_uri"] != "https://"+host+"/x.js" || sec["release"] != "web@1" {
			t.Errorf("security event of %s: %v; want its csp with its blocked uri and the release", host, sec)
		}
		id, _ := sec["event_id"].(string)
		if other, dup := ids[id]; dup || len(id) != 32 {
			t.Errorf("security event of %s: event id %q (also %q's)", host, id, other)
		}
		ids[id] = host
	}
	for _, e := range s.envelopes() {
		env, err := envelope.Parse(e.Body)
		if err != nil {
			t.Fatalf("envelope at the fake: %v", err)
		}
		if n := strings.Count(string(e.Body), `"type":"security"`); n > 1 || len(env.Items) > 1 && n == 1 {
			t.Errorf("an envelope holds %d items, %d of them security: %s", len(env.Items), n, e.Body)
		}
		if strings.Contains(string(e.Body), "deprecation") {
			t.Errorf("the deprecation report reached the upstream: %s", e.Body)
		}
	}
	st := waitBalanced(t, n, 10*time.Second)
	if sc := st.Classes["security"]; sc.Accepted.Records != 4 || sc.Delivered.Records != 3 || sc.Dropped["filtered"].Records != 1 {
		t.Errorf("security class %+v: want the 4 reports accepted, 3 delivered and the deprecation one filtered", sc)
	}
	if got := st.Filtered["invalid-csp"]; got != 1 {
		t.Errorf("Stats.Filtered %v: want the deprecation report counted under invalid-csp, as Relay counts it", st.Filtered)
	}

	// A batch over the bound: refused whole, nothing accepted.
	big := make([]string, 101)
	for i := range big {
		big[i] = cspReport(fmt.Sprintf("h%d.evil.example", i))
	}
	code, body, _ := post(t, url, []byte("["+strings.Join(big, ",")+"]"), hdr)
	var msg map[string]any
	_ = json.Unmarshal([]byte(body), &msg)
	if code != 413 || !strings.Contains(fmt.Sprint(msg["detail"]), "101 reports") {
		t.Errorf("batch of 101 reports: %d %s; want 413 naming the count", code, body)
	}
	if sc := n.r.Stats().Classes["security"]; sc.Accepted.Records != 4 {
		t.Errorf("security class after the refused batch %+v: want still 4 accepted", sc)
	}
}

// Each report of a batch is judged on its own, as Relay judges each: with
// a quota that admits 2 security events, a batch of a CSP report naming a
// directive Relay does not know, 3 CSP reports, one deprecation report and
// one that is no known report delivers the first 2 CSP reports as security
// events; the third is dropped rate_limited, the deprecation one filtered
// (Relay's invalid-csp), the unknown one invalid (security_report_type)
// and the one with the unknown directive invalid (security_report), each
// reported to Sentry as a raw outcome. As some reports were kept, the
// request is answered 200 with X-Sentry-Rate-Limits and no Retry-After; a
// batch whose reports are all refused is answered 429 (docs/
// relay-protocol.md §1.5). A single report is judged the same way.
func TestSecurityReportBatchJudgedPerReport(t *testing.T) {
	settleDialer(t)
	s := newFakeSentry(t)
	s.setProject(managedKey, fakeSentryProjectState(42, managedKey, "r1", func(m map[string]any) {
		m["config"].(map[string]any)["quotas"] = []any{map[string]any{"id": "csp", "categories": []any{"security"},
			"scope": "project", "limit": 2, "window": 3600, "reasonCode": "csp_over"}}
	}))
	n := startNode(t, managedYAML(s.url(), "outcomes:\n  emit_outcomes: \"true\"\n  batch_interval: 10ms\n"))
	if code, body, _ := postEnvelope(t, n, 42, managedKey, envelopeFor(42, managedKey, "event"), nil); code != 200 {
		t.Fatalf("event: %d %s", code, body)
	}
	fakeWaitFor(t, 15*time.Second, func() bool { return n.r.Stats().Classes["error"].Delivered.Records == 1 },
		func() string { return "the first event was not delivered" })

	bogus := strings.Replace(cspReport("bogus.evil.example"), "script-src-elem", "bogus-src", 1)
	batch := "[" + bogus + "," + cspReport("one.evil.example") + "," + cspReport("two.evil.example") + "," + cspReport("three.evil.example") +
		`,{"type":"deprecation","url":"https://example.com/page","body":{"id":"x","message":"old"}},{"hello":"world"}]`
	url := fmt.Sprintf("%s/api/42/security/?sentry_key=%s", n.url, managedKey)
	code, body, h := post(t, url, []byte(batch), map[string]string{"Content-Type": "application/reports+json", "User-Agent": normUA})
	if code != 200 || !strings.Contains(h.Get("X-Sentry-Rate-Limits"), "security") || !strings.Contains(h.Get("X-Sentry-Rate-Limits"), "csp_over") ||
		h.Get("Retry-After") != "" {
		t.Errorf("batch: %d %s, limits %q, Retry-After %q; want 200 naming the security quota, without Retry-After", code, body,
			h.Get("X-Sentry-Rate-Limits"), h.Get("Retry-After"))
	}
	for _, host := range []string{"one.evil.example", "two.evil.example"} {
		waitItem(t, s, host, "security")
	}
	// A single report is judged the same: one of another type is accepted
	// and filtered; a CSP report over the quota is refused with 429.
	hdr := map[string]string{"Content-Type": "application/json", "User-Agent": normUA}
	if code, body, _ := post(t, url, []byte(`{"type":"intervention","url":"https://example.com/","body":{"id":"y"}}`), hdr); code != 200 {
		t.Errorf("single unsupported report: %d %s, want 200 (dropped as filtered, as Relay)", code, body)
	}
	if code, body, h := post(t, url, []byte(`{"csp-report":{"document-uri":"https://example.com/","effective-directive":"img-src","blocked-uri":"https://four.evil.example/x.png"}}`), hdr); code != 429 || h.Get("Retry-After") == "" {
		t.Errorf("single CSP report over the quota: %d %s, want 429", code, body)
	}
	// A batch whose every report a quota refuses is refused: 429.
	all := "[" + cspReport("five.evil.example") + "," + cspReport("six.evil.example") + "]"
	if code, body, h := post(t, url, []byte(all), map[string]string{"Content-Type": "application/reports+json", "User-Agent": normUA}); code != 429 ||
		!strings.Contains(h.Get("X-Sentry-Rate-Limits"), "csp_over") || h.Get("Retry-After") == "" {
		t.Errorf("batch refused whole: %d %s, limits %q; want 429 with the limits and Retry-After", code, body, h.Get("X-Sentry-Rate-Limits"))
	}
	want := map[string]int{"2/csp_over": 4, "1/invalid-csp": 2, "3/security_report_type": 1, "3/security_report": 1}
	var got map[string]int
	fakeWaitFor(t, 15*time.Second, func() bool {
		got = map[string]int{}
		for _, o := range s.outcomes() {
			if fmt.Sprint(o.Outcome["category"]) == "3" {
				got[fmt.Sprintf("%v/%v", o.Outcome["outcome"], o.Outcome["reason"])] += int(o.Outcome["quantity"].(float64))
			}
		}
		return reflect.DeepEqual(got, want)
	}, func() string { return fmt.Sprintf("security outcomes at Sentry %v, want %v", got, want) })
	st := waitBalanced(t, n, 15*time.Second)
	for _, e := range s.envelopes() {
		for _, marker := range []string{"three.evil.example", "four.evil.example", "five.evil.example", "six.evil.example", "bogus.evil.example", "deprecation", "intervention", `"hello":"world"`} {
			if strings.Contains(string(e.Body), marker) {
				t.Errorf("%s reached the upstream: %s", marker, e.Body)
			}
		}
	}
	sc := st.Classes["security"]
	if sc.Delivered.Records != 2 || sc.Dropped["filtered"].Records != 2 || sc.Dropped["invalid"].Records != 2 || sc.Accepted.Records != 6 {
		t.Errorf("security class %+v: want 6 accepted (the rate-limited ones refused at the door), 2 delivered, 2 filtered, 2 invalid", sc)
	}
}
