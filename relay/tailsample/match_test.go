package tailsample

import (
	"errors"
	"testing"
)

// Each rule form against the item shapes SDKs send: transaction tags
// (object and pair list), span data, span items (v1 with sentry_tags, v2
// containers with typed attributes); numbers compare as their JSON text.
func TestMatchRules(t *testing.T) {
	for _, c := range []struct {
		name    string
		m       Match
		payload string
		want    bool
	}{
		{"tag object", Match{Attribute: "tier", Equals: "gold"}, `{"tags":{"tier":"gold"}}`, true},
		{"tag other value", Match{Attribute: "tier", Equals: "gold"}, `{"tags":{"tier":"silver"}}`, false},
		{"tag pair list", Match{Attribute: "tier", Equals: "gold"}, `{"tags":[["tier","gold"]]}`, true},
		{"span data number", Match{Attribute: "http.status_code", Equals: "503"}, `{"spans":[{"data":{"http.status_code":503}}]}`, true},
		{"trace context data", Match{Attribute: "cart", Equals: "true"}, `{"contexts":{"trace":{"data":{"cart":true}}}}`, true},
		{"transaction glob", Match{Transaction: "/api/*/pay"}, `{"transaction":"/api/v2/pay"}`, true},
		{"transaction glob miss", Match{Transaction: "/api/*/pay"}, `{"transaction":"/api/v2/payment"}`, false},
		{"transaction exact", Match{Transaction: "home"}, `{"transaction":"home"}`, true},
		{"release glob", Match{Release: "2.*"}, `{"release":"2.4.1"}`, true},
		{"release and tag, tag misses", Match{Release: "2.*", Attribute: "region", Equals: "eu"}, `{"release":"2.4.1","tags":{"region":"us"}}`, false},
		{"span v1 segment and release", Match{Transaction: "checkout", Release: "1.0"}, `{"sentry_tags":{"transaction":"checkout","release":"1.0"}}`, true},
		{"span v2 attribute", Match{Attribute: "tier", Equals: "gold"}, `{"items":[{"name":"a"},{"name":"b","attributes":{"tier":{"type":"string","value":"gold"}}}]}`, true},
		{"span v2 segment name", Match{Transaction: "check*"}, `{"items":[{"name":"db","attributes":{"sentry.segment.name":{"type":"string","value":"checkout"}}}]}`, true},
		{"not JSON", Match{Transaction: "*"}, `nope`, false},
	} {
		if got := matchItem([]Match{c.m}, []byte(c.payload)); got != c.want {
			t.Errorf("%s: %+v on %s = %v, want %v", c.name, c.m, c.payload, got, c.want)
		}
	}
}

func TestMatchValidate(t *testing.T) {
	if err := (Match{}).Validate(); !errors.Is(err, ErrEmptyMatch) {
		t.Errorf("empty rule: %v, want ErrEmptyMatch", err)
	}
	if err := (Match{Equals: "x"}).Validate(); !errors.Is(err, ErrMatchEquals) {
		t.Errorf("equals alone: %v, want ErrMatchEquals", err)
	}
	if err := (Match{Attribute: "a"}).Validate(); err != nil {
		t.Errorf("attribute alone (equals \"\"): %v", err)
	}
}
