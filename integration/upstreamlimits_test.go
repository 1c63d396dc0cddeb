package integration

import (
	"bytes"
	"fmt"
	"net/http"
	"regexp"
	"sync/atomic"
	"testing"
	"time"
)

// TestUpstreamLimitsAtTheEdge: the upstream answers one error envelope 429
// with X-Sentry-Rate-Limits for the project's errors. Until that limit
// expires the edge answers the SDK's errors 429 with the same limit
// (rate_limited), instead of buffering what the upstream would refuse,
// while the project's transactions are still accepted; afterwards errors
// are accepted again. The first error is delivered once the limit ends.
func TestUpstreamLimitsAtTheEdge(t *testing.T) {
	settleDialer(t)
	up := newFakeUpstream(t)
	var limited atomic.Bool
	up.setAnswer(func(r *fakeRequest) fakeAnswer {
		if r.RequestURI == "/api/42/envelope/" && bytes.Contains(r.Body, []byte(`"type":"event"`)) && limited.CompareAndSwap(false, true) {
			return fakeAnswer{Status: http.StatusTooManyRequests, Header: map[string]string{"X-Sentry-Rate-Limits": "3:error:project"}}
		}
		return fakeAnswer{Status: http.StatusOK, Body: "{}"}
	})
	n := startNode(t, fakeUpstreamYAML("up", up.url(), "default"))
	const key = "e12d836b15bb49d7bbf99e64295d995b"
	url := fmt.Sprintf("%s/api/42/envelope/", n.url)
	event := func(msg string) []byte {
		return fmt.Appendf(nil, "{}\n{\"type\":\"event\"}\n{\"message\":%q}\n", msg)
	}

	if status, body, _ := post(t, url, event("first"), authHeader(key)); status != 200 {
		t.Fatalf("first error: %d %s", status, body)
	}
	// The first error's 429 teaches the edge the limit: poll until the door
	// refuses an error (accepted ones before that are counted).
	accepted, refused := 1, 0
	var hdr http.Header
	deadline := time.Now().Add(10 * time.Second)
	for {
		status, body, h := post(t, url, event("probe"), authHeader(key))
		if status == http.StatusTooManyRequests {
			refused, hdr = 1, h
			break
		}
		if status != 200 {
			t.Fatalf("error while learning the limit: %d %s", status, body)
		}
		accepted++
		if time.Now().After(deadline) {
			t.Fatalf("after 10s no error refused; upstream saw %d requests", len(up.requests()))
		}
		time.Sleep(10 * time.Millisecond)
	}
	m := regexp.MustCompile(`^([123]):error:project$`).FindStringSubmatch(hdr.Get("X-Sentry-Rate-Limits"))
	if m == nil {
		t.Fatalf("X-Sentry-Rate-Limits = %q, want the upstream's limit on errors of the project", hdr.Get("X-Sentry-Rate-Limits"))
	}
	if hdr.Get("Retry-After") != m[1] {
		t.Fatalf("Retry-After = %q, want %s", hdr.Get("Retry-After"), m[1])
	}
	// Another category of the project is not limited.
	tx := []byte("{}\n{\"type\":\"transaction\"}\n{\"type\":\"transaction\",\"transaction\":\"/t\"}\n")
	if status, body, _ := post(t, url, tx, authHeader(key)); status != 200 {
		t.Fatalf("transaction under an error limit: %d %s", status, body)
	}
	// An envelope with an error and a check-in: the check-in is kept, the
	// error dropped, and the client told which limit applied.
	mixed := []byte("{}\n{\"type\":\"event\"}\n{\"message\":\"mixed\"}\n{\"type\":\"check_in\"}\n{\"check_in_id\":\"83a7c03ed0a04e1b97e2e3b18d38f244\",\"monitor_slug\":\"m\",\"status\":\"ok\"}\n")
	if status, body, h := post(t, url, mixed, authHeader(key)); status != 200 || !regexp.MustCompile(`^[123]:error:project$`).MatchString(h.Get("X-Sentry-Rate-Limits")) {
		t.Fatalf("error and check-in under an error limit: %d %s, X-Sentry-Rate-Limits %q", status, body, h.Get("X-Sentry-Rate-Limits"))
	}
	// Once the limit ended, errors are accepted again.
	deadline = time.Now().Add(10 * time.Second)
	for {
		status, body, _ := post(t, url, event("after"), authHeader(key))
		if status == 200 {
			accepted++
			break
		}
		if status != http.StatusTooManyRequests {
			t.Fatalf("error after the limit: %d %s", status, body)
		}
		refused++
		if time.Now().After(deadline) {
			t.Fatal("errors still refused 10s after a 3s limit")
		}
		time.Sleep(10 * time.Millisecond)
	}

	fakeWaitFor(t, 10*time.Second, func() bool {
		return countDelivered(up, "event") == accepted && countDelivered(up, "transaction") == 1 && countDelivered(up, "check_in") == 1
	},
		func() string {
			return fmt.Sprintf("upstream got %d errors (want %d), %d transactions and %d check-ins (want 1 each)",
				countDelivered(up, "event"), accepted, countDelivered(up, "transaction"), countDelivered(up, "check_in"))
		})
	st := waitBalanced(t, n, 10*time.Second)
	// Refused requests count as rejected; the error of the mixed envelope
	// as a dropped item (as for the project's own quotas).
	if got := st.Classes["error"].Dropped["rate_limited"].Records; got != 1 {
		t.Errorf("errors dropped rate_limited = %d, want 1 (the mixed envelope's)", got)
	}
	if got := st.Rejected["rate_limited"]; got != int64(refused) {
		t.Errorf("requests rejected rate_limited = %d, want %d", got, refused)
	}
	if got := st.Classes["transaction"].Dropped["rate_limited"].Records; got != 0 {
		t.Errorf("transactions dropped rate_limited = %d, want 0", got)
	}
}

// countDelivered counts the envelopes the upstream took (2xx) with an item
// of type typ.
func countDelivered(up *fakeUpstream, typ string) int {
	n := 0
	for _, r := range up.delivered() {
		if bytes.Contains(r.Body, fmt.Appendf(nil, "{\"type\":%q", typ)) {
			n++
		}
	}
	return n
}
