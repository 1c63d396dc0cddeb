package project

import "testing"

// TestMatchesAnyOrigin is Relay's own table for its origin matcher,
// which allowedDomains (relay/policy) and the csp filter share
// (relay-filter csp.rs test_matches_any_origin, and the allowed-origins
// cases of its integration tests): origin, patterns, allowed.
func TestMatchesAnyOrigin(t *testing.T) {
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
		// an Any pattern matches even no URL; otherwise no URL matches nothing
		// integration tests: a security report from http://valid.com
		{"http://valid.com", []string{"valid.com"}, true},
		{"http://valid.com", []string{"invalid.com"}, false},
	} {
		var origins []Origin
		for _, d := range c.domains {
			origins = append(origins, ParseOrigin(d))
		}
		if got := MatchesAnyOrigin(c.origin, true, origins); got != c.want {
			t.Errorf("MatchesAnyOrigin(%q, %q) = %v, want %v", c.origin, c.domains, got, c.want)
		}
	}
}

// An Any pattern matches even a missing URL, as in Relay; other patterns
// need one. An empty pattern is an empty domain, not "any".
func TestMatchesAnyOriginEdges(t *testing.T) {
	if !MatchesAnyOrigin("", false, []Origin{ParseOrigin("*")}) {
		t.Error("* did not match a missing URL")
	}
	if MatchesAnyOrigin("", false, []Origin{ParseOrigin("x.com")}) {
		t.Error("x.com matched a missing URL")
	}
	if MatchesAnyOrigin("http://x.com", true, []Origin{ParseOrigin("")}) {
		t.Error("an empty pattern matched http://x.com")
	}
}
