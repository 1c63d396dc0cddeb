package relay

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
)

// TestTrimChain: a long forwarded-for chain loses whole addresses from its
// middle; the first (the client filters judge) and the last (the peer)
// stay, and a short chain is kept as it came.
func TestTrimChain(t *testing.T) {
	var in []string
	for i := range 100 {
		in = append(in, fmt.Sprintf("2001:db8::%x", 0x1000+i))
	}
	in = append(in, "127.0.0.1")
	chain := strings.Join(in, ", ")
	got := string(trimChain([]byte("prefix"+chain), len("prefix"), maxForwardedFor))
	if !strings.HasPrefix(got, "prefix") {
		t.Fatalf("bytes before the chain changed: %q", got)
	}
	got = got[len("prefix"):]
	if len(got) > maxForwardedFor || len(got) < maxForwardedFor-30 {
		t.Fatalf("trimmed to %d bytes, want just under %d", len(got), maxForwardedFor)
	}
	out := strings.Split(got, ", ")
	if out[0] != in[0] || firstAddr([]byte(got)) != netip.MustParseAddr(in[0]) {
		t.Fatalf("first address %q, want %q", out[0], in[0])
	}
	tail := in[len(in)-(len(out)-1):]
	for i, a := range out[1:] {
		if a != tail[i] {
			t.Fatalf("kept %q where the chain's tail has %q: %q", a, tail[i], got)
		}
	}
	for _, short := range []string{"10.0.0.1, 127.0.0.1", "127.0.0.1", chain[:maxForwardedFor-40] + ", 127.0.0.1"} {
		if got := string(trimChain([]byte(short), 0, maxForwardedFor)); got != short {
			t.Fatalf("%q trimmed to %q", short, got)
		}
	}
	// A first address too long to leave room still keeps the peer.
	long := strings.Repeat("x", 600) + ", 10.0.0.1, 127.0.0.1"
	if got := string(trimChain([]byte(long), 0, maxForwardedFor)); got != strings.Repeat("x", 600)+", 127.0.0.1" {
		t.Fatalf("got %q", got)
	}
}
