package integration

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// Relay parity (issue 18): each test drives one of Relay's answers through
// the HTTP surface of a running Baton, against a fake upstream.

// TestParityAllowedDomains: allowedDomains patterns with a scheme, a
// wildcard or a port admit and refuse browser origins as Relay's matcher
// does; an admitted envelope reaches the upstream, a refused one gets 403.
func TestParityAllowedDomains(t *testing.T) {
	settleDialer(t)
	up := newFakeUpstream(t)
	cases := []struct {
		domains, origin string
		want            int
	}{
		{`["http://valid.com"]`, "http://valid.com", 200},
		{`["http://*"]`, "http://valid.com", 200},
		{`["http://*"]`, "https://valid.com", 403},
		{`["valid.com"]`, "http://valid.com", 200},
		{`["invalid.com"]`, "http://valid.com", 403},
		{`["*.example.com"]`, "https://a.b.example.com", 200},
		{`["*.example.com"]`, "https://example.com", 200},
		{`["*.example.com"]`, "https://example.org", 403},
		{`["https://app.example:8443"]`, "https://app.example:8443", 200},
		{`["https://app.example:8443"]`, "https://app.example:9443", 403},
		{`["*:8443"]`, "https://any.example:8443", 200},
		{`["http://abc13.com:8080"]`, "http://abc13.com:80", 403},
	}
	var projects strings.Builder
	projects.WriteString("mode: static\nprojects:\n")
	for i, c := range cases {
		fmt.Fprintf(&projects, "  %q: {public_keys: [%032x], allowed_domains: %s}\n", fmt.Sprint(i+1), i+1, c.domains)
	}
	n := startNode(t, fakeUpstreamYAML("up", up.url(), "default")+projects.String())
	wantDelivered, wantRefused := 0, int64(0)
	for i, c := range cases {
		key := fmt.Sprintf("%032x", i+1)
		h := authHeader(key)
		h["Origin"] = c.origin
		status, body, _ := post(t, fmt.Sprintf("%s/api/%d/envelope/", n.url, i+1), []byte("{}\n{\"type\":\"event\"}\n{}\n"), h)
		if status != c.want {
			t.Errorf("allowedDomains %s, Origin %s: %d %s, want %d", c.domains, c.origin, status, body, c.want)
		}
		if c.want == 200 {
			wantDelivered++
		} else {
			wantRefused++
		}
	}
	fakeWaitFor(t, 10*time.Second, func() bool { return len(up.delivered()) >= wantDelivered },
		func() string {
			return fmt.Sprintf("upstream got %d envelopes, want %d", len(up.delivered()), wantDelivered)
		})
	st := waitBalanced(t, n, 5*time.Second)
	if st.Rejected["cors"] != wantRefused {
		t.Errorf("rejections %v, want %d cors", st.Rejected, wantRefused)
	}
}
