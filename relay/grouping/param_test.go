package grouping

import (
	"strings"
	"testing"
	"time"

	"github.com/baton-relay/baton/relay/internal/testutil"
)

func TestParameterizeTable(t *testing.T) {
	if len(patterns) != numPatterns {
		t.Fatalf("patterns has %d entries, numPatterns is %d: keep them equal", len(patterns), numPatterns)
	}
}

// TestParameterize runs cases of Sentry's parameterization tests
// (docs/grouping.md "Parameterization") alone and with a prefix and a
// suffix, as Sentry's test does.
func TestParameterize(t *testing.T) {
	cases := []struct{ name, in, want string }{
		{"email", "maisey@dogsaregreat.com", "<email>"},
		{"email with period", "maisey.thedog@dogsaregreat.com", "<email>"},
		{"email with plus", "maisey+thedog@dogsaregreat.com", "<email>"},
		{"url", "http://dogsaregreat.com", "<url>"},
		{"url with path", "http://dogsaregreat.com/adopt/dont/shop.js?command=sit&trick=spin", "<url>"},
		{"url with credentials", "http://charlie:s3cretSqu1rrel@dogsaregreat.com:10", "<url>"},
		{"url localhost", "http://localhost:8000", "<url>"},
		{"url ipv6", "http://[2001:db8::1]:80", "<url>"},
		{"url tcp", "tcp://user:pass@email.com:10", "tcp://user:<email>:<int>"},
		{"hostname", "dogsaregreat.com", "<hostname>"},
		{"hostname subdomain", "dogs.squirrelchasers.net", "<hostname>"},
		{"ip v4", "11.21.12.31", "<ip>"},
		{"ip v6 unspecified", "::", "<ip>"},
		{"ip v6 loopback", "::1", "<ip>"},
		// Sentry's newest tests expect "<ip>" for "2012:d157::cbe:908:2013"
		// and "::ffff:192.168.1.1"; the pattern table Baton follows stops
		// at the first alternative whose look-ahead holds (docs/grouping.md).
		{"ip v6 compressed, first alternative", "2012:d157::cbe:908:2013", "<ip>:<int>:<int>"},
		{"ip v6 full", "1121:0c03:1231:130d:0000:16da:0908:da07", "<ip>"},
		{"double colon method", "Option::unwrap()", "Option::unwrap()"},
		{"double colon hex class", "Bee::buzz()", "Bee::buzz()"},
		{"ip too many initial", "12345:6:789", "<int>:<int>:<int>"},
		{"traceparent", "traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "traceparent: <traceparent>"},
		{"traceparent aws", "1-67891233-abcdef012345678912345678", "<traceparent>"},
		{"uuid", "7c1811ed-e98f-4c9c-a9f9-58c757ff494f", "<uuid>"},
		{"uuids", "bea691f2-2e25-4bec-6838-e0c44b03d60a/7c1811ed-e98f-4c9c-a9f9-58c757ff494f", "<uuid>/<uuid>"},
		{"sha1", "5fc35719b9cf96ec602dbc748ff31c587a46961d", "<sha1>"},
		{"md5", "0751007cd28df267e8e051b51f918c60", "<md5>"},
		{"date iso", "2024-02-20T22:16:36", "<date>"},
		{"date RFC822", "Mon, 02 Jan 06 15:04 MST", "<date>"},
		{"date RFC822Z", "Mon, 02 Jan 06 15:04 -0700", "<date>"},
		{"date RFC850", "Monday, 02-Jan-06 15:04:05 MST", "<date>"},
		{"date RFC1123", "Mon, 02 Jan 2006 15:04:05 MST", "<date>"},
		{"date JS", "Mon Jan 02 2006 14:04:05 GMT-0800 (Pacific Standard Time)", "<date>"},
		{"date RFC3339", "2006-01-02T15:04:05Z07:00", "<date>"},
		{"date RFC3339Nano", "2006-01-02T15:04:05.999999999Z", "<date>"},
		{"date plain", "2006-01-02", "<date>"},
		{"date long", "Jan 18, 2019", "<date>"},
		{"datetime space", "2006-01-02 15:04:05+01:00", "<date>"},
		{"datetime compressed", "20060102T150405+0100", "<date>"},
		{"kitchen", "11:21", "<date>"},
		{"kitchen seconds AM", "11:21:12 AM", "<date>"},
		{"kitchen pm no space", "11:21pm", "<date>"},
		{"kitchen 24h", "23:21:12", "<date>"},
		{"kitchen midnight", "0:12", "<date>"},
		{"kitchen too many initial digits", "908:31", "<int>:<int>"},
		{"kitchen too many final digits", "11:2112", "<int>:<int>"},
		{"kitchen hour too big", "31:21", "<int>:<int>"},
		{"kitchen second too big", "12:31:99", "<int>:<int>:<int>"},
		{"date basic", "Mon Jan 02, 1999", "<date>"},
		{"datestamp", "2024-02-23 02:13:53.418", "<date>"},
		{"datetime object", "datetime.datetime(2025, 6, 24, 18, 33, 0, 447640)", "<date>"},
		{"duration ms", "1000000ms", "<duration>"},
		{"duration s", "1.234s", "<duration>"},
		{"swift_txn_id", "tx274a77a8975c4a66aeb24-0052d95365", "<swift_txn_id>"},
		{"swift_txn_id with suffix", "tx274a77a8975c4a66aeb24-0052d95365-cluster01", "<swift_txn_id>"},
		{"swift_txn_id missing prefix", "ab274a77a8975c4a66aeb24-0052d95365", "<hex>-<hex>"},
		{"git sha", "commit a93c7d2", "commit <git_sha>"},
		{"git sha all letters", "commit cabcafe", "commit cabcafe"},
		{"git sha all numbers", "commit 4150908", "commit <int>"},
		{"hex prefix", "0x9af8", "<hex>"},
		{"hex prefix no digits", "0xDEADBEEF", "<hex>"},
		{"hex 8 lower", "9af8c3be", "<hex>"},
		{"hex 24 upper", "9AF8C3BE3A1231FE1121ACB1", "<hex>"},
		{"hex short", "9af", "9af"},
		{"hex letters only short", "deadbee", "deadbee"},
		{"hex not until later", "cafe 123", "cafe <int>"},
		{"int 7 digits", "1234567", "<int>"},
		{"int 7 digits negative", "-1234567", "<int>"},
		{"int 8 digits is hex", "12345678", "<hex>"},
		{"float", "0.23", "<float>"},
		{"int", "23", "<int>"},
		{"int negative", "-23", "<int>"},
		{"int separator", "0:17502", "<int>:<int>"},
		{"int separator negative", "value:-17502", "value:<int>"},
		{"int dashed numbers", "415-908", "<int>-<int>"},
		{"int dashed letters", "maisey-908", "maisey-<int>"},
		{"int parens", `{"msg" => "(#239323)`, `{"msg" => "(#<int>)`},
		{"invalid day", "2006-01-40", "<int>-<int>-<int>"},
		{"missing day", "2006-01", "<int>-<int>"},
		{"quoted int with spaces", "b = '1'", "b = '<int>'"},
		{"quoted_str single", "b='1'", "b=<quoted_str>"},
		{"quoted_str double", `b="1"`, "b=<quoted_str>"},
		{"quoted_str complex", `b="0.0.0.0 1 a=True"`, "b=<quoted_str>"},
		{"quoted_str mismatch", `b='value"`, `b='value"`},
		{"bool", "a=false", "a=<bool>"},
		{"bool True", "a=True", "a=<bool>"},
		{"bool bare", "False", "False"},
		{"bool spaced", "a = true", "a = true"},
		{"none", "A quick brown fox", "A quick brown fox"},
		{"ip:port", "0.0.0.0:80", "<ip>:<int>"},
		{"number in word", "Encoding: utf-8", "Encoding: utf-<int>"},
		{"commas", "4,150,908", "<int>,<int>,<int>"},
		{"hex-only class method", "Fee::add() called too early", "<ip>() called too early"},
	}
	for _, c := range cases {
		for _, w := range [][2]string{{"", ""}, {"prefix ", ""}, {"", " suffix"}, {"prefix ", " suffix"}} {
			in, want := w[0]+c.in+w[1], w[0]+c.want+w[1]
			if got := parameterize(in); got != want {
				t.Errorf("%s: parameterize(%q) = %q, want %q", c.name, in, got, want)
			}
		}
	}
}

// TestParamDrift: the cases where Sentry's newest parameterization tests,
// its source and older releases (docs/grouping.md "Version drift") give
// different text are flagged, as what they parameterize to here; the
// cases all agree on are not.
func TestParamDrift(t *testing.T) {
	drifts := []string{
		"9af8", "9AF8", "abc1-67891233-abcdef012345678912345678", "1a2b3c", // 4-7 hex digits
		"deadbeef", "DEADBEEF", // letters-only hex
		"-12345678",                                                               // negative 8+ digits
		"2012:d157::cbe:908:2013", "::ffff:192.168.1.1", "fc00::/7", "10.0.0.0/8", // IPv6 forms, prefixes
		"HTTP/1.1-8080",                                        // older int absorbed the '-'
		"commit a93c7d2", "tx274a77a8975c4a66aeb24-0052d95365", // recent patterns
	}
	stable := []string{
		"A quick brown fox", "0.0.0.0:80", "415-908", "maisey-908", "value:-17502", "cafe 123", "deadbee", "CAFE 123",
		"12345678", "1234567", "0x9af8", "9af8c3be", "7c1811ed-e98f-4c9c-a9f9-58c757ff494f", "::1", "1121:0c03:1231:130d:0000:16da:0908:da07",
		"Fee::add() called too early", "2024-02-20T22:16:36", "1.234s", "b='1'", "utf-8", "0xDEADBEEF", "face", "added",
		"HTTP/1.1", "Mon, 02 Jan 2006 15:04:05 MST", "11:21", "Object 123 of user 456 at 10.1.2.3 failed",
		"dial tcp 10.0.0.1:5432: connect: connection refused", "read tcp 127.0.0.1:80:", // port, then a colon
	}
	for _, in := range drifts {
		for _, w := range [][2]string{{"", ""}, {"prefix ", " suffix"}} {
			if p := parameterize(w[0] + in + w[1]); paramDrift(p) == "" {
				t.Errorf("%q (parameterized %q): no drift, want one", w[0]+in+w[1], p)
			}
		}
	}
	for _, in := range stable {
		if p := parameterize(in); paramDrift(p) != "" {
			t.Errorf("%q (parameterized %q): drift %q, want none", in, p, paramDrift(p))
		}
	}
}

func TestTrimLines(t *testing.T) {
	for in, want := range map[string]string{
		"one line":                 "one line",
		"a\nb":                     "a\nb",
		"a\n\n  \nb\nc":            "a\nb...",
		"first\r\nsecond\r\nthird": "first\nsecond...",
		"trailing\n":               "trailing...",
	} {
		if got := trimLines(in); got != want {
			t.Errorf("trimLines(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestParameterizeLinear: long runs that once made parameterization
// quadratic (a 5 KB dotted token took 39 s) stay fast. 20 KB of any run
// takes under 25 ms here; the bound is 40x that, for a loaded machine, and a
// quadratic scan takes far longer still.
func TestParameterizeLinear(t *testing.T) {
	if testutil.RaceEnabled {
		// The race detector's bookkeeping grows with the run and makes
		// long scans super-linear by itself (measured 70-150x at 16x).
		t.Skip("timing is meaningless under the race detector")
	}
	for _, unit := range []string{"1", "a", "a.", ":", "1:", "a@", "abcd:", "1.", "datetime.datetime(", "Jan ", "-1", "ab-", "0x", "1-", "=\"", "Mon, ", "tx", "tx0", "a1b2c3d "} {
		s := strings.Repeat(unit, 20000/len(unit))
		start := time.Now()
		parameterize(s)
		if d := time.Since(start); d > time.Second {
			t.Errorf("%q x %d: %v", unit, 20000/len(unit), d)
		}
	}
}
