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
