package clientopts

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
)

const doc = `{
  "version": 1,
  "options": {"traces_sample_rate": 0.1, "profiles_sample_rate": 0, "send_default_pii": false},
  "rules": [
    {"id": "prod-js", "match": {"environments": ["production"], "sdks": ["sentry.javascript.*"]},
     "options": {"replays_session_sample_rate": 0.05}},
    {"id": "canary", "match": {"releases": ["app@2.*-rc*", "app@3.0"]}, "options": {"traces_sample_rate": 1}},
    {"id": "old-cocoa", "match": {"platforms": ["cocoa"], "sdk_version": ">=8.0.0, <8.20"},
     "options": {"enable_minidumps": false}},
    {"id": "profile-5pct", "match": {"percentage": 5}, "options": {"profiles_sample_rate": 1}}
  ]
}`

type answer struct {
	Version  int            `json:"version"`
	Revision string         `json:"revision"`
	Options  map[string]any `json:"options"`
	Rules    []string       `json:"rules"`
}

func resolve(t *testing.T, d *Document, c Client) answer {
	t.Helper()
	var a answer
	if err := json.Unmarshal(d.Resolve(&c).Body, &a); err != nil {
		t.Fatal(err)
	}
	return a
}

func b(s string) []byte { return []byte(s) }

func TestResolve(t *testing.T) {
	d, err := Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	// A device inside and one outside the 5% of profile-5pct.
	var in, out []byte
	for i := 0; in == nil || out == nil; i++ {
		id := b(fmt.Sprintf("device-%d", i))
		if Bucket("profile-5pct", id) < 5000 {
			in = id
		} else {
			out = id
		}
	}
	for _, c := range []struct {
		name   string
		client Client
		rules  []string
		want   map[string]any
	}{
		{"defaults", Client{}, []string{}, map[string]any{"traces_sample_rate": 0.1, "profiles_sample_rate": 0.0, "send_default_pii": false}},
		{"environment and sdk", Client{Environment: b("production"), SDK: b("sentry.javascript.browser")}, []string{"prod-js"},
			map[string]any{"replays_session_sample_rate": 0.05}},
		{"environment, wrong sdk", Client{Environment: b("production"), SDK: b("sentry.go")}, []string{}, nil},
		{"sdk, wrong environment", Client{Environment: b("staging"), SDK: b("sentry.javascript.browser")}, []string{}, nil},
		{"release glob", Client{Release: b("app@2.4.0-rc1")}, []string{"canary"}, map[string]any{"traces_sample_rate": 1.0}},
		{"release exact", Client{Release: b("app@3.0")}, []string{"canary"}, map[string]any{"traces_sample_rate": 1.0}},
		{"release not matching", Client{Release: b("app@2.4.0")}, []string{}, nil},
		{"release prefix only", Client{Release: b("app@3.0.1")}, []string{}, nil},
		{"sdk version in range", Client{Platform: b("cocoa"), SDKVersion: b("8.19.3")}, []string{"old-cocoa"}, map[string]any{"enable_minidumps": false}},
		{"sdk version at lower bound (suffix ignored)", Client{Platform: b("cocoa"), SDKVersion: b("8.0.0-beta.1")}, []string{"old-cocoa"}, map[string]any{"enable_minidumps": false}},
		{"sdk version at upper bound", Client{Platform: b("cocoa"), SDKVersion: b("8.20")}, []string{}, nil},
		{"sdk version below", Client{Platform: b("cocoa"), SDKVersion: b("7.99.0")}, []string{}, nil},
		{"sdk version missing", Client{Platform: b("cocoa")}, []string{}, nil},
		{"sdk version garbage", Client{Platform: b("cocoa"), SDKVersion: b("eight")}, []string{}, nil},
		{"wrong platform", Client{Platform: b("android"), SDKVersion: b("8.1.0")}, []string{}, nil},
		{"device in percentage", Client{DeviceID: in}, []string{"profile-5pct"}, map[string]any{"profiles_sample_rate": 1.0}},
		{"device out of percentage", Client{DeviceID: out}, []string{}, nil},
		{"no device id", Client{}, []string{}, nil},
		{"later rules win", Client{Release: b("app@3.0"), DeviceID: in, Environment: b("production"), SDK: b("sentry.javascript.react")},
			[]string{"prod-js", "canary", "profile-5pct"},
			map[string]any{"traces_sample_rate": 1.0, "profiles_sample_rate": 1.0, "replays_session_sample_rate": 0.05}},
	} {
		t.Run(c.name, func(t *testing.T) {
			a := resolve(t, d, c.client)
			if fmt.Sprint(a.Rules) != fmt.Sprint(c.rules) {
				t.Errorf("rules %v, want %v", a.Rules, c.rules)
			}
			if a.Version != 1 || a.Revision != d.Revision() {
				t.Errorf("version %d revision %q, want 1 %q", a.Version, a.Revision, d.Revision())
			}
			want := map[string]any{"traces_sample_rate": 0.1, "profiles_sample_rate": 0.0, "send_default_pii": false}
			for k, v := range c.want {
				want[k] = v
			}
			if fmt.Sprint(a.Options) != fmt.Sprint(want) {
				t.Errorf("options %v, want %v", a.Options, want)
			}
		})
	}
}

// TestPercentageStable pins that a device's membership is a function of
// rule id and device id alone (same at every Baton, every request), that
// the share is close to the percentage, and that rules pick independent
// cohorts.
func TestPercentageStable(t *testing.T) {
	d, err := Parse([]byte(`{"version":1,"rules":[
		{"id":"a","match":{"percentage":25},"options":{"traces_sample_rate":1}},
		{"id":"b","match":{"percentage":25},"options":{"profiles_sample_rate":1}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	d2, _ := Parse([]byte(`{"version":1,"rules":[
		{"id":"a","match":{"percentage":25},"options":{"traces_sample_rate":1}},
		{"id":"b","match":{"percentage":25},"options":{"profiles_sample_rate":1}}]}`))
	const n = 20000
	var inA, inB, both int
	for i := range n {
		c := Client{DeviceID: b(fmt.Sprintf("%08x-device", i*7919))}
		ans := d.Resolve(&c)
		if again := d2.Resolve(&c); !bytes.Equal(ans.Body, again.Body) || !bytes.Equal(ans.ETag, again.ETag) {
			t.Fatalf("device %s: answers differ between two copies of the document", c.DeviceID)
		}
		a, bb := bytes.Contains(ans.Body, b(`"a"`)), bytes.Contains(ans.Body, b(`"b"`))
		if a {
			inA++
		}
		if bb {
			inB++
		}
		if a && bb {
			both++
		}
	}
	for name, got := range map[string]int{"a": inA, "b": inB} {
		if got < n*23/100 || got > n*27/100 {
			t.Errorf("rule %s matched %d of %d devices, want about 25%%", name, got, n)
		}
	}
	// Independent cohorts overlap in about 25% of 25%.
	if both < n*5/100 || both > n*8/100 {
		t.Errorf("%d devices in both rules, want about 6.25%% of %d", both, n)
	}
}

func TestETag(t *testing.T) {
	d, _ := Parse([]byte(doc))
	a1 := d.Resolve(&Client{Release: b("app@3.0")})
	a2 := d.Resolve(&Client{Release: b("app@3.0")})
	a3 := d.Resolve(&Client{})
	if a1 != a2 {
		t.Error("the same combination of rules was rendered twice")
	}
	if bytes.Equal(a1.ETag, a3.ETag) {
		t.Error("different answers share an ETag")
	}
	changed, _ := Parse(bytes.Replace([]byte(doc), b(`"traces_sample_rate": 0.1`), b(`"traces_sample_rate": 0.2`), 1))
	if changed.Revision() == d.Revision() || bytes.Equal(changed.Resolve(&Client{}).ETag, a3.ETag) {
		t.Error("a changed document kept its revision or ETag")
	}
	// Whitespace and key order do not change the revision.
	var v any
	json.Unmarshal([]byte(doc), &v)
	compact, _ := json.Marshal(v)
	if again, _ := Parse(compact); again.Revision() != d.Revision() {
		t.Error("the revision depends on formatting")
	}
}

func TestResolveAllocs(t *testing.T) {
	d, _ := Parse([]byte(doc))
	c := Client{Environment: b("production"), SDK: b("sentry.javascript.browser"), Release: b("app@2.1-rc2"),
		Platform: b("cocoa"), SDKVersion: b("8.3.1"), DeviceID: b("abc")}
	d.Resolve(&c)
	if n := testing.AllocsPerRun(100, func() { d.Resolve(&c) }); n != 0 {
		t.Errorf("Resolve allocates %v times per call from cache", n)
	}
}

func TestValidate(t *testing.T) {
	for _, c := range []struct{ doc, path, msg string }{
		{`{"version":2}`, "version", "must be 1"},
		{`{}`, "version", "must be 1"},
		{`{"version":1,"options":{"traces_sample_rate":1.5}}`, "options.traces_sample_rate", "0 to 1"},
		{`{"version":1,"options":{"send_default_pii":true}}`, "options.send_default_pii", "only be false"},
		{`{"version":1,"rules":[{"match":{}}]}`, "rules[0].id", "required"},
		{`{"version":1,"rules":[{"id":"x"},{"id":"x"}]}`, "rules[1].id", "also the id of rules[0]"},
		{`{"version":1,"rules":[{"id":"x","match":{"percentage":101}}]}`, "rules[0].match.percentage", "0 to 100"},
		{`{"version":1,"rules":[{"id":"x","match":{"sdk_version":">=x"}}]}`, "rules[0].match.sdk_version", "not a version"},
		{`{"version":1,"rules":[{"id":"x","match":{"releases":[""]}}]}`, "rules[0].match.releases[0]", "empty"},
		{`{"version":1,"rules":[{"id":"x","options":{"profiles_sample_rate":-1}}]}`, "rules[0].options.profiles_sample_rate", "0 to 1"},
		{`{"version":1,"sample":1}`, "", "unknown field"},
		{`[]`, "", "not a client options document"},
	} {
		_, err := Parse([]byte(c.doc))
		var fe *FieldError
		if !errors.As(err, &fe) || !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: error %v, want a FieldError", c.doc, err)
			continue
		}
		if fe.Path != c.path || !bytes.Contains(b(fe.Msg), b(c.msg)) {
			t.Errorf("%s: %q at %q, want %q at %q", c.doc, fe.Msg, fe.Path, c.msg, c.path)
		}
	}
}

// BenchmarkResolve is the endpoint's evaluation from a cached answer: four
// rules, each kind of match.
func BenchmarkResolve(b *testing.B) {
	d, _ := Parse([]byte(doc))
	c := Client{Environment: []byte("production"), SDK: []byte("sentry.javascript.browser"), Release: []byte("app@2.1-rc2"),
		Platform: []byte("cocoa"), SDKVersion: []byte("8.3.1"), DeviceID: []byte("abc")}
	b.ReportAllocs()
	for b.Loop() {
		d.Resolve(&c)
	}
}
