package policy

import (
	"strings"
	"testing"
)

// TestRefererOrigin: a Referer is kept as its origin, which allowedDomains
// judge exactly as the whole Referer.
func TestRefererOrigin(t *testing.T) {
	domains := [][]string{{"app.example"}, {"*.example"}, {"*"}, {"other.test"}, {"y"}}
	for _, tc := range []struct{ ref, want string }{
		{"https://app.example/checkout?session=" + strings.Repeat("a", 400) + "#top", "https://app.example"},
		{"https://app.example:8443/x", "https://app.example:8443"},
		{"http://[::1]:8080/path", "http://[::1]:8080"},
		{"https://app.example", "https://app.example"},
		{"app.example/path", "app.example"},
		{"https://app.example?q=http://y/z", "https://app.example"},
		{"weird?x=http://y/z", "weird?x=http://y"},
		{"", ""},
	} {
		got := refererOrigin([]byte(tc.ref))
		if string(got) != tc.want {
			t.Fatalf("refererOrigin(%q) = %q, want %q", tc.ref, got, tc.want)
		}
		for _, d := range domains {
			if originAllowed(d, got) != originAllowed(d, []byte(tc.ref)) {
				t.Fatalf("%q and its origin %q judged differently by %q", tc.ref, got, d)
			}
		}
	}
}

func TestOriginAllowed(t *testing.T) {
	cases := []struct {
		domains []string
		origin  string
		want    bool
	}{
		{[]string{"*"}, "https://any.example", true},
		{[]string{}, "https://any.example", false},
		{[]string{}, "", true},
		{[]string{"app.example"}, "https://app.example:8443", true},
		{[]string{"app.example"}, "https://evil.example", false},
		{[]string{"*.example"}, "https://a.b.example/path?q", true},
		{[]string{"*.example"}, "https://example.com", false},
		{[]string{"*.example"}, "https://example", true},
		{[]string{"App.Example"}, "HTTPS://app.EXAMPLE", true},
		{[]string{"app.example:80"}, "http://app.example:80", false}, // a default port is no port
		{[]string{"app.example:443"}, "http://app.example:443", true},
	}
	for _, c := range cases {
		if got := originAllowed(c.domains, Origin([]byte(c.origin), nil)); got != c.want {
			t.Errorf("originAllowed(%v, %q) = %v", c.domains, c.origin, got)
		}
	}
}

// TestOriginAllowedRelay is Relay's own table for its origin matcher
// (relay-filter csp.rs test_matches_any_origin, and the allowed-origins
// cases of its integration tests): origin, patterns, allowed.
func TestOriginAllowedRelay(t *testing.T) {
	for _, c := range []struct {
		origin  string
		domains []string
		want    bool
	}{
		// generic matches
		{"http://abc1.com", []string{"*://*:*", "bbc.com"}, true},
		{"http://abc2.com", []string{"*:*", "bbc.com"}, true},
		{"http://abc3.com", []string{"*", "bbc.com"}, true},
		{"http://abc4.com", []string{"http://*", "bbc.com"}, true},
		{"http://abc5.com", []string{"http://abc5.com:*", "bbc.com"}, true},
		{"http://abc.com:80", []string{"*://*:*", "bbc.com"}, true},
		{"http://abc.com:81", []string{"*:*", "bbc.com"}, true},
		{"http://abc.com:82", []string{"*:82", "bbc.com"}, true},
		{"http://abc.com:83", []string{"http://*:83", "bbc.com"}, true},
		{"http://abc.com:84", []string{"abc.com:*", "bbc.com"}, true},
		// partial domain matches
		{"http://abc.com:85", []string{"*.abc.com:85", "bbc.com"}, true},
		{"http://abc.com:86", []string{"*.com:86"}, true},
		{"http://abc.com:86", []string{"*.com:86", "bbc.com"}, true},
		{"http://abc.def.ghc.com:87", []string{"*.com:87"}, true},
		{"http://abc.def.ghc.com:88", []string{"*.ghc.com:88"}, true},
		{"http://abc.def.ghc.com:89", []string{"*.def.ghc.com:89"}, true},
		// exact matches
		{"http://abc.com:90", []string{"abc.com", "bbc.com"}, true},
		{"http://abc.com:91", []string{"abc.com:91", "bbc.com"}, true},
		{"http://abc.com:92", []string{"http://abc.com:92"}, true},
		{"http://abc.com:93", []string{"http://abc.com", "bbc.com"}, true},
		// matches in various positions
		{"http://abc6.com", []string{"abc6.com", "bbc.com"}, true},
		{"http://abc7.com", []string{"bbc.com", "abc7.com"}, true},
		{"http://abc8.com", []string{"bbc.com", "abc8.com", "def"}, true},
		// different domain
		{"http://abc9.com", []string{"http://other.com", "bbc.com"}, false},
		{"http://abc10.com", []string{"http://*.other.com", "bbc"}, false},
		{"abc11.com", []string{"*.other.com", "bbc"}, false},
		// different scheme
		{"https://abc12.com", []string{"http://abc12.com", "bbc.com"}, false},
		// different port
		{"http://abc13.com:80", []string{"http://abc13.com:8080", "bbc.com"}, false},
		{"http://y:80", []string{"http://x"}, false},
		// integration tests: a security report from http://valid.com
		{"http://valid.com", []string{"valid.com"}, true},
		{"http://valid.com", []string{"invalid.com"}, false},
	} {
		if got := originAllowed(c.domains, []byte(c.origin)); got != c.want {
			t.Errorf("originAllowed(%q, %q) = %v, want %v", c.domains, c.origin, got, c.want)
		}
	}
}

// BenchmarkOriginAllowed: the door check allocates nothing.
func BenchmarkOriginAllowed(b *testing.B) {
	domains := []string{"http://other.com", "*.example.com:8443", "https://app.example.com"}
	origin := []byte("https://App.Example.com")
	b.ReportAllocs()
	for b.Loop() {
		if !originAllowed(domains, origin) {
			b.Fatal("not allowed")
		}
	}
}
