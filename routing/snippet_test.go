package routing

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestSnippet(t *testing.T) {
	t.Parallel()
	if got := Snippet([]byte("  relay_not_registered\n")); got != "relay_not_registered" {
		t.Errorf("short body: %q", got)
	}
	// A 3-byte rune straddles the cut: it goes whole, never in half.
	long := []byte(strings.Repeat("a", maxDetail-1) + "€" + strings.Repeat("b", 100))
	got := Snippet(long)
	if len(got) != maxDetail-1 || !utf8.ValidString(got) {
		t.Errorf("long body: %d bytes, valid UTF-8 %v", len(got), utf8.ValidString(got))
	}
}
