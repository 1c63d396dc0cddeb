package project

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// readFixture reads one of Relay's sampling fixtures (testdata/README.md).
func readFixture(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// decodeSampling decodes a sampling part the way DecodeState does.
func decodeSampling(t *testing.T, raw string) *Sampling {
	t.Helper()
	st := mustDecode(t, []byte(`{"publicKeys":[],"config":{"sampling":`+raw+`}}`))
	if why, ok := st.Broken[PartSampling]; ok {
		t.Fatalf("sampling broken: %s\n%s", why, raw)
	}
	if st.Sampling == nil {
		t.Fatalf("no sampling decoded from %s", raw)
	}
	return st.Sampling
}

// rules builds a sampling config from rule JSON objects.
func rules(rs ...string) string {
	return `{"version":2,"rules":[` + strings.Join(rs, ",") + `]}`
}

// rule builds one rule JSON object; extra is appended raw (e.g. a timeRange).
func rule(id int, typ, valueType string, value float64, cond string, extra ...string) string {
	s := fmt.Sprintf(`{"id":%d,"type":%q,"samplingValue":{"type":%q,"value":%v},"condition":%s`, id, typ, valueType, value, cond)
	for _, e := range extra {
		s += "," + e
	}
	return s + "}"
}

const matchAll = `{"op":"and","inner":[]}`

var (
	fixtureNowIn  = time.Date(2022, 10, 15, 0, 0, 0, 0, time.UTC) // inside the fixture's timeRange
	fixtureNowOut = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
)

func TestSamplingFixture(t *testing.T) {
	cfg := readFixture(t, "sampling_config.json")
	dscData := readFixture(t, "dynamic_sampling_context.json")

	s := decodeSampling(t, string(cfg))
	if len(s.Rules) != 2 || s.RulesV2 != nil {
		t.Fatalf("rulesV2 not taken as rules: %d rules, RulesV2 %v", len(s.Rules), s.RulesV2)
	}
	if r := s.Rules[0]; r.ID != 2 || r.Type != "transaction" || r.SamplingValue.Type != "sampleRate" || r.SamplingValue.Value != 0.7 {
		t.Errorf("rule 0 = %+v", r)
	}
	r := s.Rules[1]
	if r.ID != 1 || r.Type != "trace" || r.SamplingValue.Type != "factor" || r.SamplingValue.Value != 5 {
		t.Errorf("rule 1 = %+v", r)
	}
	if r.TimeRange.Start == nil || r.TimeRange.End == nil ||
		!r.TimeRange.Start.Equal(time.Date(2022, 10, 10, 0, 0, 0, 0, time.UTC)) ||
		!r.TimeRange.End.Equal(time.Date(2022, 10, 20, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("rule 1 timeRange = %v..%v", r.TimeRange.Start, r.TimeRange.End)
	}

	var dsc DSC
	if err := json.Unmarshal(dscData, &dsc); err != nil {
		t.Fatalf("DSC fixture: %v", err)
	}
	if dsc.Transaction != "/foo" || dsc.Environment != "dev" || dsc.UserSegment != "all" || dsc.UserID != "some-id" {
		t.Errorf("DSC = %+v", dsc)
	}

	// A factor alone decides nothing, and the transaction rule is not the
	// edge's: keep at rate 1.
	for _, now := range []time.Time{fixtureNowIn, fixtureNowOut} {
		if d := s.Decide(&dsc, now); d != (Decision{Keep: true, Rate: 1}) {
			t.Errorf("Decide at %v = %+v, want keep at 1", now, d)
		}
	}

	// With a sampleRate rule after it, the factor applies inside its time
	// range only.
	var m map[string]any
	if err := json.Unmarshal(cfg, &m); err != nil {
		t.Fatal(err)
	}
	var extra any
	if err := json.Unmarshal([]byte(rule(9, "trace", "sampleRate", 0.1, matchAll)), &extra); err != nil {
		t.Fatal(err)
	}
	m["rulesV2"] = append(m["rulesV2"].([]any), extra)
	b, _ := json.Marshal(m)
	s = decodeSampling(t, string(b))
	if d := s.Decide(&dsc, fixtureNowIn); d.Rule != 9 || !near(d.Rate, 0.5) {
		t.Errorf("inside the time range: %+v, want rule 9 at 0.5", d)
	}
	if d := s.Decide(&dsc, fixtureNowOut); d.Rule != 9 || !near(d.Rate, 0.1) {
		t.Errorf("outside the time range: %+v, want rule 9 at 0.1", d)
	}
}

func near(a, b float64) bool { return a-b < 1e-9 && b-a < 1e-9 }

func TestSamplingRulesOverRulesV2(t *testing.T) {
	s := decodeSampling(t, `{"rules":[`+rule(1, "trace", "sampleRate", 0, matchAll)+`],"rulesV2":[`+rule(2, "trace", "sampleRate", 1, matchAll)+`]}`)
	if len(s.Rules) != 1 || s.Rules[0].ID != 1 {
		t.Errorf("rules = %+v, want only rule 1", s.Rules)
	}
}

func TestDecide(t *testing.T) {
	const (
		envProd  = `{"op":"eq","name":"trace.environment","value":"production"}`
		globProd = `{"op":"glob","name":"trace.environment","value":["prod*"]}`
	)
	base := DSC{
		TraceID:     "3f1c6a2b-4d5e-4f60-8a71-92b3c4d5e6f7",
		PublicKey:   "e12d836b15bb49d7bbf99e64295d995b",
		Release:     "backend@1.2.3",
		Environment: "production",
		Transaction: "/api/checkout",
		UserSegment: "vip",
		UserID:      "42",
		SampleRand:  "0.3",
	}
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	with := func(f func(*DSC)) DSC { d := base; f(&d); return d }

	for _, tc := range []struct {
		name  string
		rules []string
		dsc   DSC
		want  Decision
	}{
		{"no rules", nil, base, Decision{Keep: true, Rate: 1}},
		{"rate 0 matching environment drops",
			[]string{rule(7, "trace", "sampleRate", 0, envProd)}, base, Decision{Keep: false, Rate: 0, Rule: 7}},
		{"rate 1 keeps",
			[]string{rule(7, "trace", "sampleRate", 1, envProd)}, base, Decision{Keep: true, Rate: 1, Rule: 7}},
		{"rate 0 not matching keeps",
			[]string{rule(7, "trace", "sampleRate", 0, envProd)}, with(func(d *DSC) { d.Environment = "staging" }), Decision{Keep: true, Rate: 1}},
		{"missing field does not match",
			[]string{rule(7, "trace", "sampleRate", 0, envProd)}, with(func(d *DSC) { d.Environment = "" }), Decision{Keep: true, Rate: 1}},
		{"sample_rand 0.3 vs 0.25 drops",
			[]string{rule(1000, "trace", "sampleRate", 0.25, globProd)}, base, Decision{Keep: false, Rate: 0.25, Rule: 1000}},
		{"sample_rand 0.2 vs 0.25 keeps",
			[]string{rule(1000, "trace", "sampleRate", 0.25, globProd)}, with(func(d *DSC) { d.SampleRand = "0.2" }), Decision{Keep: true, Rate: 0.25, Rule: 1000}},
		{"sample_rand equal to rate drops",
			[]string{rule(1000, "trace", "sampleRate", 0.25, globProd)}, with(func(d *DSC) { d.SampleRand = "0.25" }), Decision{Keep: false, Rate: 0.25, Rule: 1000}},
		{"factor before sampleRate multiplies",
			[]string{rule(1, "trace", "factor", 2, envProd), rule(2, "trace", "sampleRate", 0.1, matchAll)}, base, Decision{Keep: false, Rate: 0.2, Rule: 2}},
		{"factors compound",
			[]string{rule(1, "trace", "factor", 2, envProd), rule(3, "trace", "factor", 1.5, matchAll), rule(2, "trace", "sampleRate", 0.1, matchAll)},
			base, Decision{Keep: true, Rate: 0.1 * 2 * 1.5, Rule: 2}},
		{"factor capped at 1",
			[]string{rule(1, "trace", "factor", 10, envProd), rule(2, "trace", "sampleRate", 0.5, matchAll)}, base, Decision{Keep: true, Rate: 1, Rule: 2}},
		{"factor after sampleRate ignored",
			[]string{rule(2, "trace", "sampleRate", 0.25, matchAll), rule(1, "trace", "factor", 4, matchAll)}, base, Decision{Keep: false, Rate: 0.25, Rule: 2}},
		{"non-matching factor ignored",
			[]string{rule(1, "trace", "factor", 4, `{"op":"eq","name":"trace.environment","value":"dev"}`), rule(2, "trace", "sampleRate", 0.25, matchAll)},
			base, Decision{Keep: false, Rate: 0.25, Rule: 2}},
		{"first matching sampleRate wins",
			[]string{rule(1, "trace", "sampleRate", 0.9, envProd), rule(2, "trace", "sampleRate", 0, matchAll)}, base, Decision{Keep: true, Rate: 0.9, Rule: 1}},
		{"glob on release",
			[]string{rule(4, "trace", "sampleRate", 0, `{"op":"glob","name":"trace.release","value":["backend@1.*"]}`)}, base, Decision{Rate: 0, Rule: 4}},
		{"glob is case-sensitive",
			[]string{rule(4, "trace", "sampleRate", 0, `{"op":"glob","name":"trace.release","value":["Backend@*"]}`)}, base, Decision{Keep: true, Rate: 1}},
		{"glob list, second matches",
			[]string{rule(4, "trace", "sampleRate", 0, `{"op":"glob","name":"trace.transaction","value":["/health*","/api/*"]}`)}, base, Decision{Rate: 0, Rule: 4}},
		{"eq list",
			[]string{rule(5, "trace", "sampleRate", 0, `{"op":"eq","name":"trace.environment","value":["staging","production"]}`)}, base, Decision{Rate: 0, Rule: 5}},
		{"eq is case-sensitive by default",
			[]string{rule(5, "trace", "sampleRate", 0, `{"op":"eq","name":"trace.environment","value":"PRODUCTION"}`)}, base, Decision{Keep: true, Rate: 1}},
		{"eq ignoreCase",
			[]string{rule(5, "trace", "sampleRate", 0, `{"op":"eq","name":"trace.environment","value":"PRODUCTION","options":{"ignoreCase":true}}`)}, base, Decision{Rate: 0, Rule: 5}},
		{"eq without trace. prefix",
			[]string{rule(5, "trace", "sampleRate", 0, `{"op":"eq","name":"environment","value":"production"}`)}, base, Decision{Rate: 0, Rule: 5}},
		{"user.segment",
			[]string{rule(5, "trace", "sampleRate", 0, `{"op":"eq","name":"trace.user.segment","value":"vip"}`)}, base, Decision{Rate: 0, Rule: 5}},
		{"user.id gte",
			[]string{rule(5, "trace", "sampleRate", 0, `{"op":"gte","name":"trace.user.id","value":42}`)}, base, Decision{Rate: 0, Rule: 5}},
		{"user.id gt not met",
			[]string{rule(5, "trace", "sampleRate", 0, `{"op":"gt","name":"trace.user.id","value":42}`)}, base, Decision{Keep: true, Rate: 1}},
		{"lt on a non-number never matches",
			[]string{rule(5, "trace", "sampleRate", 0, `{"op":"lt","name":"trace.environment","value":42}`)}, base, Decision{Keep: true, Rate: 1}},
		{"unknown field never matches",
			[]string{rule(5, "trace", "sampleRate", 0, `{"op":"eq","name":"event.tags.x","value":"production"}`)}, base, Decision{Keep: true, Rate: 1}},
		{"or of nothing is false",
			[]string{rule(5, "trace", "sampleRate", 0, `{"op":"or","inner":[]}`)}, base, Decision{Keep: true, Rate: 1}},
		{"and/or/not nesting matches",
			[]string{rule(6, "trace", "sampleRate", 0, `{"op":"and","inner":[
				{"op":"or","inner":[{"op":"eq","name":"trace.environment","value":"staging"},{"op":"glob","name":"trace.environment","value":["prod*"]}]},
				{"op":"not","inner":{"op":"glob","name":"trace.transaction","value":["/health*"]}}]}`)},
			base, Decision{Rate: 0, Rule: 6}},
		{"and/or/not nesting: not excludes",
			[]string{rule(6, "trace", "sampleRate", 0, `{"op":"and","inner":[
				{"op":"or","inner":[{"op":"eq","name":"trace.environment","value":"staging"},{"op":"glob","name":"trace.environment","value":["prod*"]}]},
				{"op":"not","inner":{"op":"glob","name":"trace.transaction","value":["/health*"]}}]}`)},
			with(func(d *DSC) { d.Transaction = "/healthz" }), Decision{Keep: true, Rate: 1}},
		{"and/or/not nesting: or unmet",
			[]string{rule(6, "trace", "sampleRate", 0, `{"op":"and","inner":[
				{"op":"or","inner":[{"op":"eq","name":"trace.environment","value":"staging"},{"op":"glob","name":"trace.environment","value":["prod*"]}]},
				{"op":"not","inner":{"op":"glob","name":"trace.transaction","value":["/health*"]}}]}`)},
			with(func(d *DSC) { d.Environment = "dev" }), Decision{Keep: true, Rate: 1}},
		{"not of a missing field is true",
			[]string{rule(6, "trace", "sampleRate", 0, `{"op":"not","inner":{"op":"eq","name":"trace.replay_id","value":"x"}}`)}, base, Decision{Rate: 0, Rule: 6}},
		{"timeRange in the future skipped",
			[]string{rule(8, "trace", "sampleRate", 0, matchAll, `"timeRange":{"start":"2030-01-01T00:00:00Z","end":"2031-01-01T00:00:00Z"}`),
				rule(9, "trace", "sampleRate", 1, matchAll)}, base, Decision{Keep: true, Rate: 1, Rule: 9}},
		{"timeRange in the past skipped",
			[]string{rule(8, "trace", "sampleRate", 0, matchAll, `"timeRange":{"start":"2020-01-01T00:00:00Z","end":"2026-03-01T12:00:00Z"}`),
				rule(9, "trace", "sampleRate", 1, matchAll)}, base, Decision{Keep: true, Rate: 1, Rule: 9}},
		{"timeRange containing now applies",
			[]string{rule(8, "trace", "sampleRate", 0, matchAll, `"timeRange":{"start":"2026-03-01T12:00:00Z","end":"2026-03-02T00:00:00Z"}`),
				rule(9, "trace", "sampleRate", 1, matchAll)}, base, Decision{Rate: 0, Rule: 8}},
		{"open-ended timeRange applies",
			[]string{rule(8, "trace", "sampleRate", 0, matchAll, `"timeRange":{"start":"2020-01-01T00:00:00Z"}`)}, base, Decision{Rate: 0, Rule: 8}},
		{"transaction rules ignored",
			[]string{rule(1, "transaction", "sampleRate", 0, matchAll), rule(2, "transaction", "factor", 0, matchAll)}, base, Decision{Keep: true, Rate: 1}},
		{"transaction factor does not multiply a trace rate",
			[]string{rule(1, "transaction", "factor", 0, matchAll), rule(2, "trace", "sampleRate", 0.5, matchAll)}, base, Decision{Keep: true, Rate: 0.5, Rule: 2}},
		{"project rules ignored",
			[]string{rule(1, "project", "sampleRate", 0, matchAll)}, base, Decision{Keep: true, Rate: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := decodeSampling(t, rules(tc.rules...))
			d := tc.dsc
			got := s.Decide(&d, now)
			if got.Keep != tc.want.Keep || got.Rule != tc.want.Rule || !near(got.Rate, tc.want.Rate) {
				t.Errorf("Decide = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestSamplingInvalid(t *testing.T) {
	deep := matchAll
	for range 40 {
		deep = `{"op":"not","inner":` + deep + `}`
	}
	for _, tc := range []struct{ name, raw, why string }{
		{"unknown op", rules(rule(1, "trace", "sampleRate", 0.5, `{"op":"regex","name":"trace.release","value":"x"}`)), "unknown op"},
		{"unknown op nested", rules(rule(1, "trace", "sampleRate", 0.5, `{"op":"and","inner":[{"op":"or","inner":[{"op":"matches"}]}]}`)), "unknown op"},
		{"rate above 1", rules(rule(1, "trace", "sampleRate", 2.0, matchAll)), "outside"},
		{"rate negative", rules(rule(1, "trace", "sampleRate", -0.1, matchAll)), "outside"},
		{"minimum rate above 1", rules(rule(1, "trace", "minimumSampleRate", 1.5, matchAll)), "outside"},
		{"negative factor", rules(rule(1, "trace", "factor", -1, matchAll)), "factor"},
		{"unknown value type", rules(rule(1, "trace", "reservoir", 10, matchAll)), "samplingValue"},
		{"unknown rule type", rules(rule(1, "span", "sampleRate", 0.5, matchAll)), "unknown type"},
		{"eq without name", rules(rule(1, "trace", "sampleRate", 0.5, `{"op":"eq","value":"x"}`)), "without name"},
		{"eq value an object", rules(rule(1, "trace", "sampleRate", 0.5, `{"op":"eq","name":"trace.release","value":{"a":1}}`)), "value"},
		{"gt value a string", rules(rule(1, "trace", "sampleRate", 0.5, `{"op":"gt","name":"trace.user.id","value":"x"}`)), "value"},
		{"and inner an object", rules(rule(1, "trace", "sampleRate", 0.5, `{"op":"and","inner":{"op":"eq"}}`)), "inner"},
		{"not without inner", rules(rule(1, "trace", "sampleRate", 0.5, `{"op":"not"}`)), "not inner"},
		{"nested too deep", rules(rule(1, "trace", "sampleRate", 0.5, deep)), "too deep"},
		{"rules not a list", `{"rules":{}}`, "sampling"},
		{"rate a string", `{"rules":[{"id":1,"type":"trace","samplingValue":{"type":"sampleRate","value":"0.5"},"condition":{"op":"and"}}]}`, "sampling"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := mustDecode(t, []byte(`{"publicKeys":[],"config":{"sampling":`+tc.raw+`}}`))
			why, ok := st.Broken[PartSampling]
			if !ok || st.Sampling != nil {
				t.Fatalf("sampling not broken: Broken %v Sampling %+v", st.Broken, st.Sampling)
			}
			if !strings.Contains(why, tc.why) {
				t.Errorf("why = %q, want it to mention %q", why, tc.why)
			}
		})
	}
}

func TestTraceRandDeterministic(t *testing.T) {
	ids := []string{
		"3f1c6a2b-4d5e-4f60-8a71-92b3c4d5e6f7",
		"3F1C6A2B-4D5E-4F60-8A71-92B3C4D5E6F7",
		"3f1c6a2b4d5e4f608a7192b3c4d5e6f7",
	}
	want := traceRand(&DSC{TraceID: ids[0]})
	if !(want >= 0 && want < 1) {
		t.Fatalf("traceRand = %v, outside [0, 1)", want)
	}
	for _, id := range ids {
		for range 3 {
			if got := traceRand(&DSC{TraceID: id}); got != want {
				t.Errorf("traceRand(%q) = %v, want %v (case and dashes must not matter)", id, got, want)
			}
		}
	}
	// An unusable sample_rand falls back to the trace id.
	for _, sr := range []string{"", "abc", "1", "1.5", "-0.1", "NaN"} {
		if got := traceRand(&DSC{TraceID: ids[0], SampleRand: sr}); got != want {
			t.Errorf("sample_rand %q: traceRand = %v, want the trace id's %v", sr, got, want)
		}
	}
	if got := traceRand(&DSC{TraceID: ids[0], SampleRand: "0.123456"}); got != 0.123456 {
		t.Errorf("sample_rand 0.123456: traceRand = %v", got)
	}
	if got := traceRand(&DSC{TraceID: ids[0], SampleRand: "0"}); got != 0 {
		t.Errorf("sample_rand 0: traceRand = %v", got)
	}
	if traceRand(&DSC{TraceID: "00000000000000000000000000000001"}) == traceRand(&DSC{TraceID: "00000000000000000000000000000002"}) {
		t.Error("neighbouring trace ids give the same random number")
	}
}

func TestTraceRandUniform(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const n = 10000
	var buckets [10]int
	s := decodeSampling(t, rules(rule(1, "trace", "sampleRate", 0.5, matchAll)))
	kept := 0
	now := time.Now()
	for range n {
		var b [16]byte
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		id := fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
		d := DSC{TraceID: id}
		dec := s.Decide(&d, now)
		if dec.Keep {
			kept++
		}
		if again := s.Decide(&d, now); again != dec {
			t.Fatalf("Decide not deterministic for %s: %+v then %+v", id, dec, again)
		}
		buckets[int(traceRand(&d)*10)]++
	}
	if f := float64(kept) / n; f < 0.45 || f > 0.55 {
		t.Errorf("kept fraction %.3f at rate 0.5, want 0.45..0.55", f)
	}
	for i, c := range buckets {
		if c < 850 || c > 1150 { // expected 1000, sd ~30
			t.Errorf("bucket [%.1f, %.1f) has %d of %d, want about %d", float64(i)/10, float64(i+1)/10, c, n, n/10)
		}
	}
}

func TestFiltersBlockedIP(t *testing.T) {
	st := mustDecode(t, []byte(fullStateJSON))
	f := &st.Filters
	for _, tc := range []struct {
		addr    string
		blocked bool
	}{
		{"127.0.0.1", true},
		{"127.0.0.2", false},
		{"10.0.0.0", true},
		{"10.255.255.255", true},
		{"10.20.30.40", true},
		{"11.0.0.1", false},
		{"9.255.255.255", false},
		{"2001:db8::1", true},
		{"2001:db8:ffff::1", true},
		{"2001:db9::1", false},
		{"::1", false},
	} {
		if got := f.BlockedIP(netip.MustParseAddr(tc.addr)); got != tc.blocked {
			t.Errorf("BlockedIP(%s) = %v, want %v", tc.addr, got, tc.blocked)
		}
	}
	if (&Filters{}).BlockedIP(netip.MustParseAddr("127.0.0.1")) {
		t.Error("empty filter blocks")
	}
	// Note: an IPv4-mapped IPv6 address (::ffff:10.1.2.3, as a dual-stack
	// listener may report) does not match an IPv4 entry; callers must Unmap.
	if f.BlockedIP(netip.MustParseAddr("::ffff:10.1.2.3")) {
		t.Log("BlockedIP now unmaps IPv4-mapped addresses")
	}
}

func TestFiltersBlockedRelease(t *testing.T) {
	st := mustDecode(t, []byte(fullStateJSON)) // releases: "1.0.*", "*-beta"
	f := &st.Filters
	for _, tc := range []struct {
		release string
		blocked bool
	}{
		{"1.0.0", true},
		{"1.0.", true},
		{"1.0.17-rc1", true},
		{"1.0", false},
		{"1.1.0", false},
		{"2.0-beta", true},
		{"-beta", true},
		{"2.0-beta.1", false},
		{"2.0-BETA", false}, // case-sensitive
		{"", false},
	} {
		if got := f.BlockedRelease(tc.release); got != tc.blocked {
			t.Errorf("BlockedRelease(%q) = %v, want %v", tc.release, got, tc.blocked)
		}
	}
	var star Filters
	star.Releases.Releases = []string{"*"}
	if !star.BlockedRelease("anything") || star.BlockedRelease("") {
		t.Error(`"*" must block every non-empty release`)
	}
}
