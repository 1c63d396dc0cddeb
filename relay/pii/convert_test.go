package pii

import (
	"strings"
	"testing"
)

var defaults = DataScrubbingSettings{ScrubData: true, ScrubDefaults: true, ScrubIPAddresses: true}

// TestConvertEachSetting shows what each datascrubbingSettings field changes.
func TestConvertEachSetting(t *testing.T) {
	const ev = `{"extra":{"password":"hello","foo":"bar","card":"4571234567890111","my_field":"v","ssn":"078-05-1120","url":"https://user:pass@example.com/"},` +
		`"user":{"ip_address":"73.133.27.120","username":"me at 10.0.0.1"},"request":{"cookies":{"session":"s3cr3t","theme":"dark"}}}`
	for _, c := range []struct {
		name     string
		settings DataScrubbingSettings
		want     string
	}{
		{"zero value scrubs nothing", DataScrubbingSettings{}, ev},
		{"scrubData without defaults scrubs nothing", DataScrubbingSettings{ScrubData: true}, ev},
		{"scrubData and scrubDefaults: @common:filter and cookies", DataScrubbingSettings{ScrubData: true, ScrubDefaults: true},
			`{"extra":{"password":"[Filtered]","foo":"bar","card":"[Filtered]","my_field":"v","ssn":"[Filtered]","url":"https://user:[Filtered]@example.com/"},
			"user":{"ip_address":"73.133.27.120","username":"me at 10.0.0.1"},"request":{"cookies":{"session":"[Filtered]","theme":"dark"}},
			"_meta":{"extra":{"password":{"":{"rem":[["@password:filter","s",0,10]],"len":5}},"card":{"":{"rem":[["@creditcard:filter","s",0,10]],"len":16}},
			"ssn":{"":{"rem":[["@usssn:filter","s",0,10]],"len":11}},"url":{"":{"rem":[["@urlauth:legacy","s",13,23]],"len":30}}},
			"request":{"cookies":{"session":{"":{"rem":[["@anything:filter","s",0,10]],"len":6}}}}}}`},
		// The content rule runs first: Relay orders applications by selector (And < Or).
		{"scrubIpAddresses alone", DataScrubbingSettings{ScrubIPAddresses: true},
			`{"extra":{"password":"hello","foo":"bar","card":"4571234567890111","my_field":"v","ssn":"078-05-1120","url":"https://user:pass@example.com/"},
			"user":{"ip_address":null,"username":"me at [ip]"},"request":{"cookies":{"session":"s3cr3t","theme":"dark"}},
			"_meta":{"user":{"ip_address":{"":{"rem":[["@ip:replace","s",0,4],["@anything:remove","x"]],"len":13}},"username":{"":{"rem":[["@ip:replace","s",6,10]],"len":14}}}}}`},
		{"sensitiveFields", DataScrubbingSettings{ScrubData: true, SensitiveFields: []string{" My_Field ", ""}},
			`{"extra":{"password":"hello","foo":"bar","card":"4571234567890111","my_field":"[Filtered]","ssn":"078-05-1120","url":"https://user:pass@example.com/"},
			"user":{"ip_address":"73.133.27.120","username":"me at 10.0.0.1"},"request":{"cookies":{"session":"s3cr3t","theme":"dark"}},
			"_meta":{"extra":{"my_field":{"":{"rem":[["strip-fields","s",0,10]],"len":1}}}}}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			expectJSON(t, scrub(t, c.settings, "", ev), c.want)
		})
	}
}

// TestConvertExcludeFields: safe fields are selectors, or keys when they do
// not parse.
func TestConvertExcludeFields(t *testing.T) {
	const ev = `{"extra":{"password":"a","token":"b","api key":"c"}}`
	got := scrub(t, DataScrubbingSettings{ScrubData: true, ScrubDefaults: true, ExcludeFields: []string{"password", "api key"}}, "", ev)
	expectJSON(t, got, `{"extra":{"password":"a","token":"[Filtered]","api key":"c"},"_meta":{"extra":{"token":{"":{"rem":[["@password:filter","s",0,10]],"len":1}}}}}`)
	got = scrub(t, DataScrubbingSettings{ScrubData: true, ScrubDefaults: true, ExcludeFields: []string{"extra.**"}}, "", ev)
	if got != ev {
		t.Errorf("extra.** excluded, still scrubbed: %s", got)
	}
}

// TestConvertNeverScrubbed: the legacy scrubber leaves some fields alone,
// and only substitutes in logentry.formatted.
func TestConvertNeverScrubbed(t *testing.T) {
	const ev = `{"logentry":{"formatted":"card 4571234567890111 mail a@b.io password"},` +
		`"exception":{"values":[{"value":"secret 4571234567890111"}]},` +
		`"request":{"headers":[["User-Agent","10.0.0.1"],["Authorization","Bearer abc"]]}}`
	got := scrub(t, defaults, "", ev)
	expectJSON(t, got, `{"logentry":{"formatted":"card [creditcard] mail [email] password"},
		"exception":{"values":[{"value":"secret 4571234567890111"}]},
		"request":{"headers":[["User-Agent","10.0.0.1"],["Authorization","[Filtered]"]]},
		"_meta":{"logentry":{"formatted":{"":{"rem":[["@creditcard:replace","s",5,17],["@email:replace","s",23,30]],"len":42}}},
		"request":{"headers":{"1":{"1":{"":{"rem":[["@password:filter","s",0,10]],"len":10}}}}}}}`)
}

// TestConvertRelayOriginalValue is relay-pii's scrub_original_value input:
// user fields are scrubbed by content, ip_address removed as a known field.
func TestConvertUserAndFrameVars(t *testing.T) {
	const ev = `{"user":{"username":"hey  man 73.133.27.120","ip_address":"is this an ip address? 73.133.27.120"},` +
		`"stacktrace":{"frames":[{"vars":{"foo":"bar","password":"hello","the_secret":"hello","a_password_here":"hello","api_key":"secret_key","apiKey":"secret_key"}}]}}`
	got := scrub(t, defaults, "", ev)
	for _, want := range []string{`"username":"hey  man [ip]"`, `"ip_address":null`, `"foo":"bar"`, `"password":"[Filtered]"`, `"the_secret":"[Filtered]"`,
		`"a_password_here":"[Filtered]"`, `"api_key":"[Filtered]"`, `"apiKey":"[Filtered]"`} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %s in %s", want, got)
		}
	}
}

// TestPiiConfigThenDatascrubbing: both configs apply, piiConfig first.
func TestPiiConfigThenDatascrubbing(t *testing.T) {
	got := scrub(t, DataScrubbingSettings{ScrubIPAddresses: true}, `{"applications":{"extra.v":["@email:mask"]}}`, `{"extra":{"v":"a@b.io 10.0.0.1"}}`)
	expectJSON(t, got, `{"extra":{"v":"****** [ip]"},"_meta":{"extra":{"v":{"":{"rem":[["@email:mask","m",0,6],["@ip:replace","s",7,11]],"len":15}}}}}`)
}

// TestExistingMetaMerged keeps the event's own _meta and adds to it.
func TestExistingMetaMerged(t *testing.T) {
	got := scrub(t, DataScrubbingSettings{ScrubIPAddresses: true}, "", `{"extra":{"v":"10.0.0.1"},"_meta":{"extra":{"w":{"":{"err":["x"]}}}}}`)
	expectJSON(t, got, `{"extra":{"v":"[ip]"},"_meta":{"extra":{"w":{"":{"err":["x"]}},"v":{"":{"rem":[["@ip:replace","s",0,4]],"len":8}}}}}`)
}
