package integration

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"
)

// A managed Baton applies the project's inbound filters and the global
// config's generic filters to events at the door and to an envelope that
// waited for its config: filtered events never reach Sentry, and are
// counted as dropped "filtered", per filter.
func TestManagedInboundFilters(t *testing.T) {
	settleDialer(t)
	s := newFakeSentry(t)
	s.mu.Lock()
	s.global = json.RawMessage(`{"measurements":{},"filters":{"version":1,"filters":[
		{"id":"globalHello","isEnabled":true,"condition":{"op":"eq","name":"event.transaction","value":"/hello-global"}}]}}`)
	s.mu.Unlock()
	s.setProject(managedKey, fakeSentryProjectState(42, managedKey, "r1", func(m map[string]any) {
		m["config"].(map[string]any)["filterSettings"] = map[string]any{
			"browserExtensions":  map[string]any{"isEnabled": true},
			"webCrawlers":        map[string]any{"isEnabled": true},
			"localhost":          map[string]any{"isEnabled": true},
			"legacyBrowsers":     map[string]any{"isEnabled": true, "options": []any{"ie_pre_9"}},
			"errorMessages":      map[string]any{"patterns": []any{"*ResizeObserver loop*"}},
			"csp":                map[string]any{"disallowedSources": []any{"chrome-extension://*"}},
			"releases":           map[string]any{"releases": []any{"0.9.*"}},
			"ignoreTransactions": map[string]any{"isEnabled": true, "patterns": []any{"*/health"}},
			"generic": map[string]any{"version": 1, "filters": []any{map[string]any{
				"id": "betaUsers", "isEnabled": true,
				"condition": map[string]any{"op": "eq", "name": "event.user.segment", "value": "beta"},
			}}},
		}
	}))
	n := startNode(t, managedYAML(s.url(), ""))

	item := func(typ, payload string) []byte {
		return fmt.Appendf(nil, "{\"dsn\":\"http://%s@h/42\"}\n{\"type\":\"%s\"}\n%s\n", managedKey, typ, payload)
	}
	sendFrom := func(body []byte, hdr map[string]string) {
		t.Helper()
		if status, resp, _ := postEnvelope(t, n, 42, managedKey, body, hdr); status != 200 {
			t.Fatalf("%d %s", status, resp)
		}
	}
	send := func(body []byte) { t.Helper(); sendFrom(body, nil) }
	// Before the config is known: the envelope waits, and is filtered when
	// it is released.
	send(item("event", `{"message":"waited-old-release","release":"0.9.1"}`))
	send(item("event", `{"message":"waited-kept"}`))
	fakeWaitFor(t, 10*time.Second, func() bool { return n.r.Stats().Waiting == 0 && deliveredTo(s, 42, "waited-kept") == 1 },
		func() string { return "the waiting envelopes were not released" })

	filtered := []struct {
		typ, payload, filter string
	}{
		{"event", `{"message":"f-ext","exception":{"values":[{"type":"TypeError","value":"Extension context invalidated"}]}}`, "browser-extensions"},
		{"event", `{"message":"f-crawler","request":{"headers":{"User-Agent":"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"}}}`, "web-crawlers"},
		{"event", `{"message":"f-local","request":{"url":"http://localhost:3000/app"}}`, "localhost"},
		{"event", `{"message":"f-legacy","request":{"headers":{"User-Agent":"Mozilla/4.0 (compatible; MSIE 8.0; Windows NT 6.0; Trident/4.0)"}}}`, "legacy-browsers"},
		{"event", `{"message":"f-msg ResizeObserver loop limit exceeded"}`, "error-message"},
		{"event", `{"message":"f-release","release":"0.9.3"}`, "release-version"},
		{"event", `{"message":"f-generic","user":{"segment":"beta"}}`, "betaUsers"},
		{"transaction", `{"type":"transaction","transaction":"/api/health",` + txValid + `,"message":"f-health"}`, "filtered-transaction"},
		{"transaction", `{"type":"transaction","transaction":"/hello-global",` + txValid + `,"message":"f-global"}`, "globalHello"},
		{"raw_security", `{"csp-report":{"document-uri":"https://example.com/","effective-directive":"script-src","blocked-uri":"chrome-extension://abcdef/f-csp.js"}}`, "invalid-csp"},
	}
	for _, f := range filtered {
		send(item(f.typ, f.payload))
	}
	send(item("event", `{"message":"kept-error","release":"1.0.0","request":{"url":"https://example.com/","headers":{"User-Agent":"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"}}}`))
	send(item("transaction", `{"type":"transaction","transaction":"/api/orders",`+txValid+`,"message":"kept-tx"}`))
	// Normalized, a security event's user is the client: from 127.0.0.1
	// the localhost filter would drop it (TestInboundFiltersNormalized).
	sendFrom(item("raw_security", `{"csp-report":{"document-uri":"https://example.com/","effective-directive":"script-src","blocked-uri":"https://cdn.example.com/kept-csp.js"}}`),
		map[string]string{"X-Forwarded-For": "203.0.113.7"})

	st := waitBalanced(t, n, 15*time.Second)
	for _, marker := range []string{"kept-error", "kept-tx", "kept-csp", "waited-kept"} {
		if got := deliveredTo(s, 42, marker); got != 1 {
			t.Errorf("%s delivered %d times, want 1", marker, got)
		}
	}
	for _, f := range filtered {
		var m struct {
			Message string `json:"message"`
		}
		_ = json.Unmarshal([]byte(f.payload), &m)
		marker := m.Message
		if marker == "" {
			marker = "f-csp"
		}
		if got := deliveredTo(s, 42, marker); got != 0 {
			t.Errorf("%s (%s) reached Sentry", marker, f.filter)
		}
	}
	if got := deliveredTo(s, 42, "waited-old-release"); got != 0 {
		t.Error("the waiting envelope of a filtered release reached Sentry")
	}
	for class, want := range map[string]int64{"error": 8, "transaction": 2, "security": 1} {
		if got := st.Classes[class].Dropped["filtered"].Records; got != want {
			t.Errorf("%s dropped filtered = %d, want %d", class, got, want)
		}
	}
	counts := st.Filtered
	for _, f := range filtered {
		want := int64(1)
		if f.filter == "release-version" {
			want = 2 // and the envelope that waited
		}
		if counts[f.filter] != want {
			t.Errorf("filter %s counted %d, want %d (all: %v)", f.filter, counts[f.filter], want, counts)
		}
	}
}

// Inbound filters judge the event as Relay's do: normalized, before
// quotas and PII scrubbing, at ingest and when an envelope that waited for
// its config is released; with normalization disabled they judge it as
// received. The cases below are filtered only when normalized, or in
// both; quotas are not charged for filtered events (the project's error
// quota is exactly what is kept, and the kept event comes last).
func TestInboundFiltersNormalized(t *testing.T) {
	const (
		firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
		msie8   = "Mozilla/4.0 (compatible; MSIE 8.0; Windows NT 6.0; Trident/4.0)"
	)
	remote := map[string]string{"X-Forwarded-For": "203.0.113.7"} // not localhost
	cases := []struct {
		name, typ, payload, marker string
		hdr                        map[string]string
		filter                     string // when normalized; "" kept
		raw                        string // with normalization disabled
	}{
		{"{{auto}} from 127.0.0.1", "event", `{"message":"c-auto","user":{"ip_address":"{{auto}}"}}`, "c-auto", nil, "localhost", "localhost"},
		{"javascript infers the client's address", "event", `{"message":"c-js","platform":"javascript"}`, "c-js", nil, "localhost", ""},
		{"message string", "event", `{"message":"c-msg ResizeObserver loop limit exceeded"}`, "c-msg", remote, "error-message", "error-message"},
		{"logentry formatted with params", "event", `{"logentry":{"message":"c-params %s","params":["ResizeObserver loop limit exceeded"]}}`, "c-params", remote, "error-message", ""},
		{"browser context from the User-Agent", "event", `{"message":"c-firefox","request":{"headers":{"User-Agent":"` + firefox + `"}}}`, "c-firefox", remote, "firefoxUsers", ""},
		{"legacy browser of a CSP report", "raw_security", `{"csp-report":{"document-uri":"https://example.com/","effective-directive":"script-src","blocked-uri":"https://cdn.example.com/c-legacy.js"}}`, "c-legacy",
			map[string]string{"X-Forwarded-For": "203.0.113.7", "User-Agent": msie8}, "legacy-browsers", ""},
	}
	for _, mode := range []struct {
		name, yaml string
		normalized bool
	}{
		{"normalized", "", true},
		{"normalization disabled", "normalization: {level: disabled}\n", false},
	} {
		t.Run(mode.name, func(t *testing.T) {
			settleDialer(t)
			want := func(filtered, raw string) string {
				if mode.normalized {
					return filtered
				}
				return raw
			}
			// Kept errors: the waiting and the last event, and those only
			// the normalized event's filters catch.
			kept := 2
			for _, c := range cases {
				if c.typ == "event" && want(c.filter, c.raw) == "" {
					kept++
				}
			}
			if !mode.normalized {
				kept++ // w-firefox
			}
			s := newFakeSentry(t)
			s.setProject(managedKey, fakeSentryProjectState(42, managedKey, "r1", func(m map[string]any) {
				cfg := m["config"].(map[string]any)
				cfg["filterSettings"] = map[string]any{
					"localhost":      map[string]any{"isEnabled": true},
					"legacyBrowsers": map[string]any{"isEnabled": true, "options": []any{"ie_pre_9"}},
					"errorMessages":  map[string]any{"patterns": []any{"*ResizeObserver loop*"}},
					"generic": map[string]any{"version": 1, "filters": []any{map[string]any{
						"id": "firefoxUsers", "isEnabled": true,
						"condition": map[string]any{"op": "eq", "name": "event.contexts.browser.name", "value": "Firefox"},
					}}},
				}
				cfg["quotas"] = []any{map[string]any{"id": "errs", "categories": []any{"error"}, "scope": "project",
					"limit": kept, "window": 3600, "reasonCode": "errs_over"}}
			}))
			n := startNode(t, managedYAML(s.url(), mode.yaml))
			item := func(typ, payload string) []byte {
				return fmt.Appendf(nil, "{\"dsn\":\"http://%s@h/42\"}\n{\"type\":\"%s\"}\n%s\n", managedKey, typ, payload)
			}
			send := func(body []byte, hdr map[string]string) {
				t.Helper()
				if status, resp, _ := postEnvelope(t, n, 42, managedKey, body, hdr); status != 200 {
					t.Fatalf("%d %s", status, resp)
				}
			}
			// Sent before the config is known: judged when released.
			send(item("event", `{"message":"w-firefox","request":{"headers":{"User-Agent":"`+firefox+`"}}}`), remote)
			send(item("event", `{"message":"w-kept"}`), remote)
			fakeWaitFor(t, 10*time.Second, func() bool { return n.r.Stats().Waiting == 0 && deliveredTo(s, 42, "w-kept") == 1 },
				func() string { return "the waiting envelopes were not released" })
			for _, c := range cases {
				send(item(c.typ, c.payload), c.hdr)
			}
			send(item("event", `{"message":"c-kept"}`), remote)

			st := waitBalanced(t, n, 15*time.Second)
			wantCounts := map[string]int64{}
			check := func(name, marker, filter string) {
				t.Helper()
				got := deliveredTo(s, 42, marker)
				if filter == "" && got != 1 || filter != "" && got != 0 {
					t.Errorf("%s: %s delivered %d times, want it filtered by %q (\"\": kept)", name, marker, got, filter)
				}
				if filter != "" {
					wantCounts[filter]++
				}
			}
			for _, c := range cases {
				check(c.name, c.marker, want(c.filter, c.raw))
			}
			check("waited, browser context", "w-firefox", want("firefoxUsers", ""))
			check("waited", "w-kept", "")
			check("last", "c-kept", "")
			for name, n := range wantCounts {
				if st.Filtered[name] != n {
					t.Errorf("filter %s counted %d, want %d (all: %v)", name, st.Filtered[name], n, st.Filtered)
				}
			}
			if len(st.Filtered) != len(wantCounts) {
				t.Errorf("filters counted %v, want %v", st.Filtered, wantCounts)
			}
			if got := st.Classes["error"].Dropped["rate_limited"].Records; got != 0 {
				t.Errorf("%d errors rate limited: filtered events were charged to the quota", got)
			}
		})
	}
}
