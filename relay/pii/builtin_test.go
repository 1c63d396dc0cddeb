package pii

import (
	"encoding/json"
	"fmt"
	"testing"
)

type remarkCase struct {
	rule       string
	ty         string
	start, end int
}

// TestBuiltinRules drives each built-in rule through ScrubEvent on a string
// in extra, with the outputs and remarks of Relay's builtin.rs tests.
func TestBuiltinRules(t *testing.T) {
	pem := "This is a comment I left on my key\n\n            -----BEGIN EC PRIVATE KEY-----\nMIHbAgEBBEFbLvIaAaez3q0u6BQYMHZ28B7iSdMPPaODUMGkdorl3ShgTbYmzqGL\nfojr3jkJIxFS07AoLQpsawOFZipxSQHieaAHBgUrgQQAI6GBiQOBhgAEAdaBHsBo\nKBuPVQL2F6z57Xb034TRlpaarne/XGWaCsohtl3YYcFll3A7rV+wHudcKFSvrgjp\nsoH5cUhpnhOL9ujuAM7Ldk1G+11Mf7EZ5sjrLe81fSB8S16D2vjtxkf/+mmwwhlM\nHdmUCGvfKiF2CodxyLon1XkK8pX+Ap86MbJhluqK\n-----END EC PRIVATE KEY-----"
	pemOut := "This is a comment I left on my key\n\n            -----BEGIN EC PRIVATE KEY-----\n%s\n-----END EC PRIVATE KEY-----"
	for _, c := range []struct {
		rule, in, out string
		rem           remarkCase
	}{
		{"@ip", "before 127.0.0.1 after", "before [ip] after", remarkCase{"@ip", "s", 7, 11}},
		{"@ip:replace", "before 127.0.0.1 after", "before [ip] after", remarkCase{"@ip:replace", "s", 7, 11}},
		{"@ip:hash", "before 127.0.0.1 after", "before AE12FE3B5F129B5CC4CDD2B136B7B7947C4D2741 after", remarkCase{"@ip:hash", "p", 7, 47}},
		{"@ip:mask", "before 127.0.0.1 after", "before ********* after", remarkCase{"@ip:mask", "m", 7, 16}},
		{"@ip:remove", "before 127.0.0.1 after", "before  after", remarkCase{"@ip:remove", "x", 7, 7}},
		{"@ip", "before ::1 after", "before [ip] after", remarkCase{"@ip", "s", 7, 11}},
		{"@ip:replace", "[2001:0db8:85a3:0000:0000:8a2e:0370:7334]", "[[ip]]", remarkCase{"@ip:replace", "s", 1, 5}},
		{"@ip:hash", "before 2001:0db8:85a3:0000:0000:8a2e:0370:7334 after", "before 8C3DC9BEED9ADE493670547E24E4E45EDE69FF03 after", remarkCase{"@ip:hash", "p", 7, 47}},
		{"@imei", "before 356938035643809 after", "before [imei] after", remarkCase{"@imei", "s", 7, 13}},
		{"@imei:hash", "before 356938035643809 after", "before 3888108AA99417402969D0B47A2CA4ECD2A1AAD3 after", remarkCase{"@imei:hash", "p", 7, 47}},
		{"@mac", "ether 4a:00:04:10:9b:50", "ether *****************", remarkCase{"@mac", "m", 6, 23}},
		{"@mac:replace", "ether 4a:00:04:10:9b:50", "ether [mac]", remarkCase{"@mac:replace", "s", 6, 11}},
		{"@mac:hash", "ether 4a:00:04:10:9b:50", "ether 6220F3EE59BF56B32C98323D7DE43286AAF1F8F1", remarkCase{"@mac:hash", "p", 6, 46}},
		{"@uuid", "user id ceee0822-ed8f-4622-b2a3-789e73e75cd1", "user id ************************************", remarkCase{"@uuid", "m", 8, 44}},
		{"@uuid:hash", "user id ceee0822-ed8f-4622-b2a3-789e73e75cd1", "user id EBFA4DBDAA4A619F10B6DE2ABB630DE0122F5CDB", remarkCase{"@uuid:hash", "p", 8, 48}},
		{"@uuid:replace", "user id ceee0822-ed8f-4622-b2a3-789e73e75cd1", "user id [uuid]", remarkCase{"@uuid:replace", "s", 8, 14}},
		{"@email", "John Appleseed <john@appleseed.com>", "John Appleseed <[email]>", remarkCase{"@email", "s", 16, 23}},
		{"@email:mask", "John Appleseed <john@appleseed.com>", "John Appleseed <******************>", remarkCase{"@email:mask", "m", 16, 34}},
		{"@email:hash", "John Appleseed <john@appleseed.com>", "John Appleseed <33835528AC0FFF1B46D167C35FEAAA6F08FD3F46>", remarkCase{"@email:hash", "p", 16, 56}},
		{"@iban", "some iban: DE89370400440532013000!", "some iban: [iban]!", remarkCase{"@iban", "s", 11, 17}},
		{"@iban:mask", "some iban: DE89370400440532013000!", "some iban: **********************!", remarkCase{"@iban:mask", "m", 11, 33}},
		{"@iban:hash", "some iban: DE89370400440532013000!", "some iban: 8A1248B6F40D38FBC59ADE6AD0DF69C7BB9C936A!", remarkCase{"@iban:hash", "p", 11, 51}},
		{"@iban:filter", "some iban: NO9386011117945!", "some iban: [Filtered]!", remarkCase{"@iban:filter", "s", 11, 21}},
		{"@creditcard", "John Appleseed 4571234567890111!", "John Appleseed [creditcard]!", remarkCase{"@creditcard", "s", 15, 27}},
		{"@creditcard", "John Appleseed 4571 2345 6789 0111!", "John Appleseed [creditcard]!", remarkCase{"@creditcard", "s", 15, 27}},
		{"@creditcard:mask", "John Appleseed 4571234567890111!", "John Appleseed ****************!", remarkCase{"@creditcard:mask", "m", 15, 31}},
		{"@creditcard:hash", "John Appleseed 4571234567890111!", "John Appleseed 68C796A9ED3FB51BF850A11140FCADD8E2D88466!", remarkCase{"@creditcard:hash", "p", 15, 55}},
		{"@creditcard:filter", "John Appleseed 4571234567890111!", "John Appleseed [Filtered]!", remarkCase{"@creditcard:filter", "s", 15, 25}},
		{"@pemkey", pem, fmt.Sprintf(pemOut, "[pemkey]"), remarkCase{"@pemkey", "s", 79, 87}},
		{"@pemkey:hash", pem, fmt.Sprintf(pemOut, "291134FEC77C62B11E2DC6D89910BB43157294BC"), remarkCase{"@pemkey:hash", "p", 79, 119}},
		{"@urlauth", "https://username:password@example.com/", "https://[auth]@example.com/", remarkCase{"@urlauth", "s", 8, 14}},
		{"@urlauth:hash", "https://username:password@example.com/", "https://2F82AB8A5E3FAD655B5F81E3BEA30D2A14FEF2AC@example.com/", remarkCase{"@urlauth:hash", "p", 8, 48}},
		{"@urlauth:legacy", "https://username:password@example.com/", "https://username:[Filtered]@example.com/", remarkCase{"@urlauth:legacy", "s", 17, 27}},
		{"@usssn", "Hi I'm Hilda and my SSN is 078-05-1120", "Hi I'm Hilda and my SSN is ***********", remarkCase{"@usssn", "m", 27, 38}},
		{"@usssn:replace", "Hi I'm Hilda and my SSN is 078-05-1120", "Hi I'm Hilda and my SSN is [us-ssn]", remarkCase{"@usssn:replace", "s", 27, 35}},
		{"@usssn:hash", "Hi I'm Hilda and my SSN is 078-05-1120", "Hi I'm Hilda and my SSN is 01328BB9C55B35F354FBC7B60CADAC789DC2035C", remarkCase{"@usssn:hash", "p", 27, 67}},
		{"@userpath", `C:\Users\mitsuhiko\Desktop`, `C:\Users\[user]\Desktop`, remarkCase{"@userpath", "s", 9, 15}},
		{"@userpath:replace", "File in /Users/mitsuhiko/Development/sentry-stripping", "File in /Users/[user]/Development/sentry-stripping", remarkCase{"@userpath:replace", "s", 15, 21}},
		{"@userpath:replace", `C:\Windows\Profiles\Armin\Temp`, `C:\Windows\Profiles\[user]\Temp`, remarkCase{"@userpath:replace", "s", 20, 26}},
		{"@userpath:hash", "File in /Users/mitsuhiko/Development/sentry-stripping", "File in /Users/A8791A1A8D11583E0200CC1B9AB971B4D78B8A69/Development/sentry-stripping", remarkCase{"@userpath:hash", "p", 15, 55}},
		{"@anything", "foobar", "[Filtered]", remarkCase{"@anything", "s", 0, 10}},
		{"@anything:hash", "foobar", "168197CA3A9D4FE60EDE05116B0A125DA1AB3BD0", remarkCase{"@anything:hash", "p", 0, 40}},
		{"@anything:mask", "foobar", "******", remarkCase{"@anything:mask", "m", 0, 6}},
		{"@bearer", "Authorization: Bearer abc.def", "Authorization: Bearer [token]", remarkCase{"@bearer", "s", 22, 29}},
		// @common: one rule of the collection suffices; the remark names it.
		{"@common", "mail john@appleseed.com", "mail [email]", remarkCase{"@email", "s", 5, 12}},
		{"@common:filter", "card 4571234567890111", "card [Filtered]", remarkCase{"@creditcard:filter", "s", 5, 15}},
	} {
		t.Run(c.rule+"/"+c.in[:min(len(c.in), 12)], func(t *testing.T) {
			ev, _ := json.Marshal(map[string]any{"extra": map[string]string{"v": c.in}})
			got := scrub(t, DataScrubbingSettings{}, `{"applications":{"$string":["`+c.rule+`"]}}`, string(ev))
			var out struct {
				Extra map[string]string
				Meta  map[string]map[string]map[string]struct {
					Rem [][]any
					Len int
				} `json:"_meta"`
			}
			if err := json.Unmarshal([]byte(got), &out); err != nil {
				t.Fatal(err)
			}
			if out.Extra["v"] != c.out {
				t.Errorf("value %q, want %q", out.Extra["v"], c.out)
			}
			m := out.Meta["extra"]["v"][""]
			want := []any{c.rem.rule, c.rem.ty, float64(c.rem.start), float64(c.rem.end)}
			if len(m.Rem) != 1 || fmt.Sprint(m.Rem[0]) != fmt.Sprint(want) {
				t.Errorf("remarks %v, want [%v]", m.Rem, want)
			}
			if m.Len != len([]rune(c.in)) {
				t.Errorf("len %d, want %d", m.Len, len([]rune(c.in)))
			}
		})
	}
}

// TestBuiltinRulesNotApplied are Relay's negative cases.
func TestBuiltinRulesNotApplied(t *testing.T) {
	for _, c := range []struct{ rule, in string }{
		{"@ip", "foo::1"},
		{"@iban", "fooNO9386011117945bar"},
		{"@iban", "some iban: NO938601111794!"},
		{"@iban", "some iban: N19386011117945!"},
		{"@creditcard", "order 1234567890123456"},
		{"@email", "not an email"},
	} {
		ev, _ := json.Marshal(map[string]any{"extra": map[string]string{"v": c.in}})
		if got := scrub(t, DataScrubbingSettings{}, `{"applications":{"$string":["`+c.rule+`"]}}`, string(ev)); got != string(ev) {
			t.Errorf("%s on %q changed the event: %s", c.rule, c.in, got)
		}
	}
}

// TestCustomRules covers configured rules: type plus redaction method,
// replace without text ([Filtered]), pattern groups, redact_pair, alias and
// multiple with and without hideInner.
func TestCustomRules(t *testing.T) {
	for _, c := range []struct {
		name, rules, app, event, want string
	}{
		{"ip replace default text", `{"0":{"type":"ip","redaction":{"method":"replace"}}}`, `"0"`,
			`{"extra":{"v":"before 127.0.0.1 after"}}`,
			`{"extra":{"v":"before [Filtered] after"},"_meta":{"extra":{"v":{"":{"rem":[["0","s",7,17]],"len":22}}}}}`},
		{"pattern replace text", `{"myrule":{"type":"pattern","pattern":"foo","redaction":{"method":"replace","text":"asd"}}}`, `"myrule"`,
			`{"extra":{"myvalue":"foobar"}}`,
			`{"extra":{"myvalue":"asdbar"},"_meta":{"extra":{"myvalue":{"":{"rem":[["myrule","s",0,3]],"len":6}}}}}`},
		{"pattern groups", `{"g":{"type":"pattern","pattern":"(key=)(\\w+)","replaceGroups":[2],"redaction":{"method":"mask"}}}`, `"g"`,
			`{"extra":{"v":"a key=secret b"}}`,
			`{"extra":{"v":"a key=****** b"},"_meta":{"extra":{"v":{"":{"rem":[["g","m",6,12]],"len":14}}}}}`},
		{"redact_pair removes", `{"rp":{"type":"redact_pair","keyPattern":"^sess","redaction":{"method":"remove"}}}`, `"rp"`,
			`{"extra":{"session":"abc","other":"abc"}}`,
			`{"extra":{"session":null,"other":"abc"},"_meta":{"extra":{"session":{"":{"rem":[["rp","x"]]}}}}}`},
		{"alias hides inner", `{"a":{"type":"alias","rule":"@email:mask","hideInner":true}}`, `"a"`,
			`{"extra":{"v":"x@y.io"}}`,
			`{"extra":{"v":"******"},"_meta":{"extra":{"v":{"":{"rem":[["a","m",0,6]],"len":6}}}}}`},
		{"alias shows inner", `{"a":{"type":"alias","rule":"@email:mask"}}`, `"a"`,
			`{"extra":{"v":"x@y.io"}}`,
			`{"extra":{"v":"******"},"_meta":{"extra":{"v":{"":{"rem":[["@email:mask","m",0,6]],"len":6}}}}}`},
		{"multiple overrides method", `{"m":{"type":"multiple","rules":["@email","@ip"],"hideInner":true,"redaction":{"method":"hash"}}}`, `"m"`,
			`{"extra":{"v":"1.2.3.4"}}`,
			`{"extra":{"v":"` + string(hashValue([]byte("1.2.3.4"))) + `"},"_meta":{"extra":{"v":{"":{"rem":[["m","p",0,40]],"len":7}}}}}`},
		{"unknown rule ignored", `{}`, `"nope"`, `{"extra":{"v":"1.2.3.4"}}`, `{"extra":{"v":"1.2.3.4"}}`},
		{"password key removes", `{}`, `"@password"`,
			`{"extra":{"db_password":"hunter2","n":{"api_key":1}}}`,
			`{"extra":{"db_password":null,"n":{"api_key":null}},"_meta":{"extra":{"db_password":{"":{"rem":[["@password","x"]]}},"n":{"api_key":{"":{"rem":[["@password","x"]]}}}}}}`},
		{"password filter replaces", `{}`, `"@password:filter"`,
			`{"extra":{"secret":"hunter2"}}`,
			`{"extra":{"secret":"[Filtered]"},"_meta":{"extra":{"secret":{"":{"rem":[["@password:filter","s",0,10]],"len":7}}}}}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := scrub(t, DataScrubbingSettings{}, `{"rules":`+c.rules+`,"applications":{"**":[`+c.app+`]}}`, c.event)
			expectJSON(t, got, c.want)
		})
	}
}

func TestAnythingOnContainers(t *testing.T) {
	got := scrub(t, DataScrubbingSettings{}, `{"applications":{"$object":["@anything"]}}`, `{"extra":{"foo":"bar"}}`)
	expectJSON(t, got, `{"extra":null,"_meta":{"extra":{"":{"rem":[["@anything","x"]]}}}}`)
	got = scrub(t, DataScrubbingSettings{}, `{"applications":{"$object":["@anything:hash"]}}`, `{"extra":{"foo":"bar"}}`)
	expectJSON(t, got, `{"extra":null,"_meta":{"extra":{"":{"rem":[["@anything:hash","x"]]}}}}`)
	got = scrub(t, DataScrubbingSettings{}, `{"applications":{"$number":["@anything:remove"]}}`, `{"extra":{"n":5,"b":true,"s":"x"}}`)
	expectJSON(t, got, `{"extra":{"n":null,"b":true,"s":"x"},"_meta":{"extra":{"n":{"":{"rem":[["@anything:remove","x"]]}}}}}`)
}

// TestRelaySnapshots replays relay-pii processor snapshots.
func TestRelaySnapshots(t *testing.T) {
	got := scrub(t, DataScrubbingSettings{},
		`{"rules":{"remove_bad_headers":{"type":"redact_pair","keyPattern":"(?i)cookie|secret[-_]?key"}},"applications":{"$string":["@ip"],"$object.**":["remove_bad_headers"]}}`,
		`{"logentry":{"formatted":"Hello world!"},"request":{"env":{"SECRET_KEY":"134141231231231231231312"},"headers":[["Cookie","super secret"],["X-Forwarded-For","127.0.0.1"]]},"tags":[["forwarded_for","127.0.0.1"]]}`)
	expectJSON(t, got, `{"logentry":{"formatted":"Hello world!"},"request":{"env":{"SECRET_KEY":null},"headers":[["Cookie",null],["X-Forwarded-For","[ip]"]]},"tags":[["forwarded_for","127.0.0.1"]],
		"_meta":{"request":{"env":{"SECRET_KEY":{"":{"rem":[["remove_bad_headers","x"]]}}},"headers":{"0":{"1":{"":{"rem":[["remove_bad_headers","x"]]}}},"1":{"1":{"":{"rem":[["@ip","s",0,4]],"len":9}}}}}}}`)

	// no_field_upsert: ** removes existing values and adds no fields.
	got = scrub(t, DataScrubbingSettings{}, `{"applications":{"**":["@anything:remove"]}}`, `{"extra":{"myvalue":"foobar"}}`)
	expectJSON(t, got, `{"extra":{"myvalue":null},"_meta":{"extra":{"myvalue":{"":{"rem":[["@anything:remove","x"]]}}}}}`)

	// debug_meta paths are pii maybe: reachable by a specific path only.
	ev := `{"debug_meta":{"images":[{"code_file":"C:\\Windows\\System32\\ntdll.dll","debug_file":"wntdll.pdb","arch":"arm64"}]}}`
	got = scrub(t, DataScrubbingSettings{}, `{"applications":{"debug_meta.images.*.code_file":["@anything:replace"]}}`, ev)
	expectJSON(t, got, `{"debug_meta":{"images":[{"code_file":"[Filtered]","debug_file":"wntdll.pdb","arch":"arm64"}]},"_meta":{"debug_meta":{"images":{"0":{"code_file":{"":{"rem":[["@anything:replace","s",0,10]],"len":29}}}}}}}`)
	if got := scrub(t, DataScrubbingSettings{}, `{"applications":{"debug_meta.**":["@anything:replace"]}}`, ev); got != ev {
		t.Errorf("a deep wildcard reached a pii-maybe field: %s", got)
	}
}
