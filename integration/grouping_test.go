package integration

import (
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"
)

// A managed Baton hashes the error events of a project with a grouping
// part (docs/grouping.md "At the edge"): an event whose issue hash the part
// discards never reaches Sentry and is reported filtered, reason
// discarded_hash, at ingest and when it waited for the config; another
// event arrives with grouping_hash and grouping_final in its item header.
func TestManagedDiscardedHash(t *testing.T) {
	settleDialer(t)
	md5hex := func(s string) string { h := md5.Sum([]byte(s)); return hex.EncodeToString(h[:]) }
	// A message event hashes md5 of its (parameterized) message.
	discarded := md5hex("grouping-discard-me")
	s := newFakeSentry(t)
	s.setProject(managedKey, fakeSentryProjectState(42, managedKey, "r1", func(m map[string]any) {
		m["config"].(map[string]any)["grouping"] = map[string]any{"discardedHashes": []any{discarded}}
	}))
	n := startNode(t, managedYAML(s.url(), "outcomes:\n  emit_outcomes: \"true\"\n  batch_interval: 10ms\n"))
	send := func(msg string) {
		t.Helper()
		body := fmt.Appendf(nil, "{\"dsn\":\"http://%s@h/42\"}\n{\"type\":\"event\"}\n{\"message\":%q}\n", managedKey, msg)
		if status, resp, _ := postEnvelope(t, n, 42, managedKey, body, nil); status != 200 {
			t.Fatalf("%d %s", status, resp)
		}
	}
	// Before the config is known both wait; the release judges them.
	send("grouping-discard-me")
	send("waited-kept")
	fakeWaitFor(t, 15*time.Second, func() bool { return n.r.Stats().Waiting == 0 && deliveredTo(s, 42, "waited-kept") == 1 },
		func() string { return "the waiting envelopes were not released" })
	// Config known: judged at ingest.
	send("grouping-discard-me")
	send("kept-grouped")
	st := waitBalanced(t, n, 15*time.Second)

	if got := deliveredTo(s, 42, "grouping-discard-me"); got != 0 {
		t.Errorf("discarded event delivered %d times", got)
	}
	for marker, hash := range map[string]string{"kept-grouped": md5hex("kept-grouped"), "waited-kept": md5hex("waited-kept")} {
		if got := deliveredTo(s, 42, marker); got != 1 {
			t.Fatalf("%s delivered %d times, want 1", marker, got)
		}
		want := `"grouping_hash":"` + hash + `"`
		for _, e := range s.envelopes() {
			if body := string(e.Body); strings.Contains(body, marker) &&
				(!strings.Contains(body, want) || !strings.Contains(body, `"grouping_final":true`)) {
				t.Errorf("%s: item header lacks %s and grouping_final true:\n%s", marker, want, body)
			}
		}
	}
	if got := st.Classes["error"].Dropped["filtered"].Records; got != 2 {
		t.Errorf("error dropped filtered = %d, want 2", got)
	}
	if got := st.Filtered["discarded_hash"]; got != 2 {
		t.Errorf("filtered discarded_hash = %d, want 2 (all: %v)", got, st.Filtered)
	}
	fakeWaitFor(t, 15*time.Second, func() bool {
		k := 0
		for _, o := range sentryOutcomes(s) {
			if o["reason"] == "discarded_hash" && o["outcome"] == float64(1) && o["category"] == float64(1) && o["quantity"] == float64(1) {
				k++
			}
		}
		return k == 2
	}, func() string {
		return fmt.Sprintf("want 2 filtered discarded_hash outcomes, Sentry has %v", sentryOutcomes(s))
	})
}

// A static project's grouping part comes from baton.yml: the same discard
// and header as a managed project's.
func TestStaticDiscardedHash(t *testing.T) {
	md5hex := func(s string) string { h := md5.Sum([]byte(s)); return hex.EncodeToString(h[:]) }
	s := newFakeSentry(t)
	n := startNode(t, fmt.Sprintf("upstreams: {up: {urls: [%s], max_retry_interval: 200ms}}\nroutes: {default: {upstream: up}}\n", s.url())+
		fmt.Sprintf("mode: static\nprojects: {\"42\": {public_keys: [%s], grouping: {discarded_hashes: [%s]}}}\n", managedKey, md5hex("static-discard-me")))
	for _, msg := range []string{"static-discard-me", "static-kept"} {
		body := fmt.Appendf(nil, "{\"dsn\":\"http://%s@h/42\"}\n{\"type\":\"event\"}\n{\"message\":%q}\n", managedKey, msg)
		if status, resp, _ := postEnvelope(t, n, 42, managedKey, body, nil); status != 200 {
			t.Fatalf("%d %s", status, resp)
		}
	}
	st := waitBalanced(t, n, 15*time.Second)
	if got := deliveredTo(s, 42, "static-discard-me"); got != 0 {
		t.Errorf("discarded event delivered %d times", got)
	}
	if got := deliveredTo(s, 42, `"grouping_hash":"`+md5hex("static-kept")+`","grouping_final":true`); got != 1 {
		t.Errorf("kept event with its grouping header delivered %d times, want 1: %v", got, s.envelopes())
	}
	if got := st.Filtered["discarded_hash"]; got != 1 {
		t.Errorf("filtered discarded_hash = %d, want 1", got)
	}
}

// An event whose hash is discarded uses none of the project's quota,
// whether it waited for the config (judged when released) or not (judged
// at ingest): the quota's N ordinary events all pass, the N+1th is limited.
func TestManagedDiscardedHashNoQuota(t *testing.T) {
	settleDialer(t)
	const quota = 2
	md5hex := func(s string) string { h := md5.Sum([]byte(s)); return hex.EncodeToString(h[:]) }
	s := newFakeSentry(t)
	s.setProject(managedKey, fakeSentryProjectState(42, managedKey, "r1", func(m map[string]any) {
		cfg := m["config"].(map[string]any)
		cfg["grouping"] = map[string]any{"discardedHashes": []any{md5hex("quota-discard-me")}}
		cfg["quotas"] = []any{map[string]any{"id": "errs", "categories": []any{"error"}, "scope": "project",
			"limit": quota, "window": 3600, "reasonCode": "errs_over"}}
	}))
	n := startNode(t, managedYAML(s.url(), ""))
	send := func(msg string) int {
		t.Helper()
		body := fmt.Appendf(nil, "{\"dsn\":\"http://%s@h/42\"}\n{\"type\":\"event\"}\n{\"message\":%q}\n", managedKey, msg)
		status, _, _ := postEnvelope(t, n, 42, managedKey, body, nil)
		return status
	}
	discard := func(k int) {
		t.Helper()
		for range quota {
			if status := send("quota-discard-me"); status != 200 {
				t.Fatalf("discarded event: %d, want 200", status)
			}
		}
		fakeWaitFor(t, 15*time.Second, func() bool {
			st := n.r.Stats()
			return st.Waiting == 0 && st.Filtered["discarded_hash"] == int64(k)
		}, func() string { return fmt.Sprintf("want %d discarded_hash, have %v", k, n.r.Stats().Filtered) })
	}
	discard(quota)     // sent while the config is pending: judged when released
	discard(2 * quota) // config cached: judged at ingest
	for i := range quota {
		if status := send(fmt.Sprintf("quota-kept-%d", i)); status != 200 {
			t.Fatalf("ordinary event %d of a quota of %d: %d, want 200", i+1, quota, status)
		}
	}
	if status := send("quota-over"); status != 429 {
		t.Fatalf("event past the quota: %d, want 429", status)
	}
	st := waitBalanced(t, n, 15*time.Second)
	for i := range quota {
		if got := deliveredTo(s, 42, fmt.Sprintf("quota-kept-%d", i)); got != 1 {
			t.Errorf("quota-kept-%d delivered %d times, want 1", i, got)
		}
	}
	if got := deliveredTo(s, 42, "quota-discard-me") + deliveredTo(s, 42, "quota-over"); got != 0 {
		t.Errorf("discarded or limited events delivered %d times", got)
	}
	if got := st.Rejected["rate_limited"]; got != 1 {
		t.Errorf("requests rejected rate_limited = %d, want 1", got)
	}
}

// A project with rules of its own (static custom_rules; managed: a
// groupingConfig other than the one Baton reproduces) gets its events
// hashed, but the hash travels as not final: Sentry may group them
// differently. TestStaticDiscardedHash is the same event shape claimed
// final.
func TestGroupingNotFinalRules(t *testing.T) {
	md5hex := func(s string) string { h := md5.Sum([]byte(s)); return hex.EncodeToString(h[:]) }
	t.Run("static", func(t *testing.T) {
		s := newFakeSentry(t)
		n := startNode(t, fmt.Sprintf("upstreams: {up: {urls: [%s], max_retry_interval: 200ms}}\nroutes: {default: {upstream: up}}\n", s.url())+
			fmt.Sprintf("mode: static\nprojects: {\"42\": {public_keys: [%s], grouping: {custom_rules: true}}}\n", managedKey))
		body := fmt.Appendf(nil, "{\"dsn\":\"http://%s@h/42\"}\n{\"type\":\"event\"}\n{\"message\":\"custom-rules\"}\n", managedKey)
		if status, resp, _ := postEnvelope(t, n, 42, managedKey, body, nil); status != 200 {
			t.Fatalf("%d %s", status, resp)
		}
		waitBalanced(t, n, 15*time.Second)
		if got := deliveredTo(s, 42, `"grouping_hash":"`+md5hex("custom-rules")+`","grouping_final":false`); got != 1 {
			t.Errorf("event with a non-final grouping header delivered %d times, want 1: %v", got, s.envelopes())
		}
	})
	t.Run("managed", func(t *testing.T) {
		settleDialer(t)
		s := newFakeSentry(t)
		s.setProject(managedKey, fakeSentryProjectState(42, managedKey, "r1", func(m map[string]any) {
			cfg := m["config"].(map[string]any)
			cfg["grouping"] = map[string]any{"count": true}
			cfg["groupingConfig"] = map[string]any{"id": "legacy:2019-03-12", "enhancements": "x"}
		}))
		n := startNode(t, managedYAML(s.url(), ""))
		body := fmt.Appendf(nil, "{\"dsn\":\"http://%s@h/42\"}\n{\"type\":\"event\"}\n{\"message\":\"other-config\"}\n", managedKey)
		if status, resp, _ := postEnvelope(t, n, 42, managedKey, body, nil); status != 200 {
			t.Fatalf("%d %s", status, resp)
		}
		fakeWaitFor(t, 15*time.Second, func() bool { return deliveredTo(s, 42, "other-config") == 1 },
			func() string { return "the event was not delivered" })
		if got := deliveredTo(s, 42, `"grouping_hash":"`+md5hex("other-config")+`","grouping_final":false`); got != 1 {
			t.Errorf("event with a non-final grouping header delivered %d times, want 1: %v", got, s.envelopes())
		}
	})
}

// Security reports are hashed at the edge as error events are (Sentry
// groups them by the report: directive and blocked host for CSP): a CSP
// report whose hash the project discards is dropped, filtered
// discarded_hash, in the security class; another arrives with its hash in
// the item header.
func TestStaticSecurityReportHash(t *testing.T) {
	md5hex := func(s string) string { h := md5.Sum([]byte(s)); return hex.EncodeToString(h[:]) }
	s := newFakeSentry(t)
	n := startNode(t, fmt.Sprintf("upstreams: {up: {urls: [%s], max_retry_interval: 200ms}}\nroutes: {default: {upstream: up}}\n", s.url())+
		fmt.Sprintf("mode: static\nprojects: {\"42\": {public_keys: [%s], grouping: {discarded_hashes: [%s]}}}\n",
			managedKey, md5hex("script-src-elemdiscard.evil.example")))
	batch := "[" + cspReport("discard.evil.example") + "," + cspReport("kept.evil.example") + "]"
	url := fmt.Sprintf("%s/api/42/security/?sentry_key=%s", n.url, managedKey)
	if code, body, _ := post(t, url, []byte(batch), map[string]string{"Content-Type": "application/reports+json", "User-Agent": normUA}); code != 200 {
		t.Fatalf("batch: %d %s", code, body)
	}
	hdr, _, _ := waitItem(t, s, "kept.evil.example", "security")
	if want := `"grouping_hash":"` + md5hex("script-src-elemkept.evil.example") + `"`; !strings.Contains(string(hdr), want) {
		t.Errorf("kept report's item header %s lacks %s", hdr, want)
	}
	st := waitBalanced(t, n, 15*time.Second)
	if got := deliveredTo(s, 42, "discard.evil.example"); got != 0 {
		t.Errorf("discarded report delivered %d times", got)
	}
	if sc := st.Classes["security"]; sc.Delivered.Records != 1 || sc.Dropped["filtered"].Records != 1 {
		t.Errorf("security class %+v: want 1 delivered, 1 filtered", sc)
	}
	if got := st.Filtered["discarded_hash"]; got != 1 {
		t.Errorf("filtered discarded_hash = %d, want 1 (all: %v)", got, st.Filtered)
	}
}
