package integration

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// TestLongHeaderFieldsKeptWhole: header fields longer than the record's old
// 255-byte fields reach the sink whole — sentry_client as sent, the
// forwarded-for chain trimmed by whole addresses with its first address
// (client_ip) and the peer kept — and a long Referer does not stop the
// envelope.
func TestLongHeaderFieldsKeptWhole(t *testing.T) {
	n := startNode(t, "")
	var hops []string
	for i := range 80 {
		hops = append(hops, fmt.Sprintf("198.51.100.%d", i))
	}
	client := "sentry.javascript.browser/11.12.0 " + strings.Repeat("integration/1.0 ", 25)
	status, body, _ := post(t, n.url+"/api/1/envelope/",
		[]byte(`{"event_id":"9ec79c33ec9942ab8353589fcb2e04dc"}`+"\n"+`{"type":"event"}`+"\n"+`{"message":"hi"}`+"\n"),
		map[string]string{
			"X-Sentry-Auth":   "Sentry sentry_key=a7c3e9f1b5d24680ace13579bdf02468, sentry_version=7, sentry_client=" + client,
			"X-Forwarded-For": strings.Join(hops, ", "),
			"Referer":         "https://app.example/checkout?session=" + strings.Repeat("s", 600),
		})
	if status != 200 {
		t.Fatalf("status %d: %s", status, body)
	}
	recs := consume(t, n.kafka, "baton.error", 1, 30*time.Second)
	r := recs[0]
	if got := header(r, "client"); got != strings.TrimSpace(client) {
		t.Fatalf("client header %d bytes %q, want the %d-byte sentry_client", len(got), got, len(client))
	}
	if got := header(r, "client_ip"); got != hops[0] {
		t.Fatalf("client_ip %q, want %q", got, hops[0])
	}
	chain := strings.Split(header(r, "forwarded_for"), ", ")
	if len(chain) < 3 || len(chain) > len(hops) || chain[0] != hops[0] || chain[len(chain)-1] != "127.0.0.1" {
		t.Fatalf("forwarded_for %q", header(r, "forwarded_for"))
	}
	for i, a := range chain[1 : len(chain)-1] {
		if want := hops[len(hops)-(len(chain)-2)+i]; a != want {
			t.Fatalf("forwarded_for keeps %q where the chain's tail has %q", a, want)
		}
		if _, err := netip.ParseAddr(a); err != nil {
			t.Fatalf("forwarded_for has a cut address %q", a)
		}
	}
}
