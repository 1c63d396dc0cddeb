package integration

import (
	"encoding/json"
	"fmt"
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
// type in the batch is skipped. The request is accepted whole: a batch
// over the endpoint's bound is refused (413) and nothing of it is kept.
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
	if sc := st.Classes["security"]; sc.Accepted.Records != 3 || sc.Delivered.Records != 3 {
		t.Errorf("security class %+v: want the 3 reports accepted and delivered as 3 records", sc)
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
	if sc := n.r.Stats().Classes["security"]; sc.Accepted.Records != 3 {
		t.Errorf("security class after the refused batch %+v: want still 3 accepted", sc)
	}
}
