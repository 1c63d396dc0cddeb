package glob

import (
	"strings"
	"testing"
	"time"
)

func TestMatch(t *testing.T) {
	for _, tc := range []struct {
		pattern, s string
		want       bool
	}{
		{"", "", true},
		{"", "a", false},
		{"*", "", true},
		{"*", "abc", true},
		{"**", "abc", true},
		{"abc", "abc", true},
		{"abc", "abcd", false},
		{"abc*", "abcd", true},
		{"*bcd", "abcd", true},
		{"a*d", "abcd", true},
		{"a*d", "abdc", false},
		{"a*b*c", "aXbYc", true},
		{"a*b*c", "aXcYb", false},
		{"*a*", "bab", true},
		{"a*a", "a", false},
		{"a*a", "aa", true},
		{"*.*.*", "1.2.3", true},
		{"*.*.*", "1.2", false},
		{"*ab", "aab", true},
		{"*ab*ab", "xabyabab", true},
		{"prod*", "production", true},
		{"Prod*", "production", false},
		{"?", "a", false}, // only '*' is special
		{"é*", "éclair", true},
		{"a**b", "ab", true},
		{"a*c", "abcd", false},
		{"a*b*c", "axxbyy", false},
		{"sentry.javascript.*", "sentry.javascript.browser", true},
		{"sentry.javascript.*", "sentry.go", false},
	} {
		if got := Match(tc.pattern, tc.s); got != tc.want {
			t.Errorf("Match(%q, %q) = %v, want %v", tc.pattern, tc.s, got, tc.want)
		}
		if got := Match(tc.pattern, []byte(tc.s)); got != tc.want {
			t.Errorf("Match(%q, []byte(%q)) = %v, want %v", tc.pattern, tc.s, got, tc.want)
		}
	}
}

// TestMatchPathological guards against backtracking blow-up: a pattern
// with k stars that fails to match costs O(len(s)^k) in a recursive
// matcher, and releases and DSC fields are client-controlled.
func TestMatchPathological(t *testing.T) {
	pattern := strings.Repeat("*a", 8) + "*b"
	s := strings.Repeat("a", 200) // a release may be 200 bytes
	done := make(chan bool, 1)
	go func() { done <- Match(pattern, s) }()
	select {
	case got := <-done:
		if got {
			t.Error("matched")
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Match took over 2s")
	}
}
