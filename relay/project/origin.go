package project

import (
	"bytes"
	"strings"
)

// Origin is a source pattern as Relay's SchemeDomainPort: scheme, domain
// and port, each lowercased, "*" for any (written "*" or left out). One
// matcher serves allowedDomains (policy) and the csp filter's
// disallowedSources, as in Relay (docs/relay-protocol.md §1.3).
type Origin struct {
	Scheme, Domain, Port string
}

// ParseOrigin cuts a pattern into its parts as Relay does: the scheme ends
// at "://", the domain at the first '/' or ':', the port at the next '/'.
// It allocates only for a pattern with upper-case letters.
func ParseOrigin(pattern string) Origin {
	o := Origin{Scheme: "*", Port: "*"}
	rest := pattern
	if i := strings.Index(rest, "://"); i >= 0 {
		o.Scheme, rest = strings.ToLower(rest[:i]), rest[i+3:]
	}
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		rest = rest[:i]
	}
	if i := strings.IndexByte(rest, ':'); i >= 0 {
		rest, o.Port = rest[:i], strings.ToLower(rest[i+1:])
	}
	o.Domain = strings.ToLower(rest)
	return o
}

// Any reports whether o matches every origin, even none ("*", "*:*",
// "*://*:*").
func (o Origin) Any() bool { return o.Scheme == "*" && o.Domain == "*" && o.Port == "*" }

// Match reports whether an origin's parts match o. A domain "*.x.com" (or
// "*x.com") matches x.com and every name ending in it; a port in o needs the
// same port in the origin. Comparisons ignore ASCII case and allocate
// nothing.
func (o Origin) Match(scheme, host, port []byte) bool {
	if o.Scheme != "*" && !foldEq(scheme, o.Scheme) {
		return false
	}
	if o.Port != "*" && !foldEq(port, o.Port) {
		return false
	}
	d := o.Domain
	if d == "*" || foldEq(host, d) {
		return true
	}
	return len(d) > 0 && d[0] == '*' && (foldSuffix(host, d[1:]) || len(d) >= 2 && foldEq(host, d[2:]))
}

// MatchesAnyOrigin reports whether url (present: has) matches one of the
// origins, its parts cut as ParseOrigin cuts a pattern; an Any origin
// matches even no url, as in Relay's matches_any_origin.
func MatchesAnyOrigin(url string, has bool, origins []Origin) bool {
	for _, o := range origins {
		if o.Any() {
			return true
		}
	}
	if !has {
		return false
	}
	u := []byte(url)
	var scheme, port []byte
	if i := bytes.Index(u, []byte("://")); i >= 0 {
		scheme, u = u[:i], u[i+3:]
	}
	if i := bytes.IndexByte(u, '/'); i >= 0 {
		u = u[:i]
	}
	host := u
	if i := bytes.IndexByte(u, ':'); i >= 0 {
		host, port = u[:i], u[i+1:]
	}
	for _, o := range origins {
		if o.Match(scheme, host, port) {
			return true
		}
	}
	return false
}

// foldEq reports whether b equals s, ASCII case-insensitively, without
// allocating.
func foldEq(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		if lower(b[i]) != lower(s[i]) {
			return false
		}
	}
	return true
}

// foldSuffix reports whether b ends with s, ASCII case-insensitively.
func foldSuffix(b []byte, s string) bool {
	return len(b) >= len(s) && foldEq(b[len(b)-len(s):], s)
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}
