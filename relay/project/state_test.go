package project

import (
	"encoding/json"
	"errors"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/baton-relay/baton/relay/pii"
)

// fullStateJSON is a realistic project state (docs/relay-protocol.md §4.3)
// with every part present and valid.
const fullStateJSON = `{
  "projectId": 42,
  "lastChange": "2026-01-01T00:00:00Z",
  "rev": "5ceaea8c919811e8ae7daae9fe877901",
  "disabled": false,
  "slug": "python",
  "organizationId": 7,
  "publicKeys": [
    {"publicKey": "e12d836b15bb49d7bbf99e64295d995b", "numericId": 123},
    {"publicKey": "0123456789abcdef0123456789abcdef", "numericId": 124, "isEnabled": false},
    {"publicKey": "fedcba9876543210fedcba9876543210", "isEnabled": true}
  ],
  "config": {
    "allowedDomains": ["example.com", "*.example.org"],
    "trustedRelays": ["K3ZiaTLn7mFqtRD-JOIz8a4fCoi4tJFiZ3LuB8ZKbU4"],
    "trustedRelaySettings": {"verifySignature": "enabled"},
    "piiConfig": null,
    "datascrubbingSettings": {"scrubData": true, "scrubDefaults": true, "sensitiveFields": [], "excludeFields": []},
    "groupingConfig": {"id": "newstyle:2023-01-11", "enhancements": "eJybzDRxY3J-bm5-nhUAF"},
    "filterSettings": {
      "browserExtensions": {"isEnabled": true},
      "clientIps": {"blacklistedIps": ["127.0.0.1", "10.0.0.0/8", "2001:db8::/32"]},
      "releases": {"releases": ["1.0.*", "*-beta"]}
    },
    "eventRetention": 90,
    "retentions": {"log": {"standard": 30, "downsampled": 30}},
    "quotas": [
      {"id": "q1", "categories": ["error"], "scope": "project", "limit": 1000, "window": 60, "reasonCode": "project_quota"},
      {"categories": ["attachment"], "limit": 0, "reasonCode": "disabled"}
    ],
    "sampling": {"version": 2, "rules": [
      {"id": 1000, "type": "trace", "samplingValue": {"type": "sampleRate", "value": 0.25},
       "condition": {"op": "and", "inner": [{"op": "glob", "name": "trace.environment", "value": ["prod*"]}]}}
    ]},
    "metrics": {"cardinalityLimits": [
      {"id": "transactions", "limit": 10000, "namespace": "transactions", "scope": "organization",
       "window": {"windowSeconds": 3600, "granularitySeconds": 600}}
    ]},
    "sessionMetrics": {"version": 1},
    "features": ["organizations:session-replay", "projects:span-metrics-extraction"],
    "grouping": {"discardedHashes": ["4b8bbc500bd2cabfcadc1f1be867e0bb", "legacy-checksum"], "storm": {"limit": 100, "window": 60}},
    "clientOptions": {"version": 1, "options": {"traces_sample_rate": 0.25}, "rules": [{"id": "canary", "match": {"releases": ["2.*"]}, "options": {"traces_sample_rate": 1}}]},
    "tailSampling": {"enabled": true, "decisionWait": 10, "rootGrace": 1.5, "keepRate": 0.5, "durationThreshold": 2.5, "rules": [{"attribute": "tier", "equals": "gold"}, {"transaction": "/api/*"}]},
    "txNameRules": []
  }
}`

// stateWith returns fullStateJSON with config keys replaced by the given raw
// JSON values; an empty value removes the key.
func stateWith(t testing.TB, overrides map[string]string) []byte {
	t.Helper()
	var top map[string]json.RawMessage
	if err := json.Unmarshal([]byte(fullStateJSON), &top); err != nil {
		t.Fatal(err)
	}
	var cfg map[string]json.RawMessage
	if err := json.Unmarshal(top["config"], &cfg); err != nil {
		t.Fatal(err)
	}
	for k, v := range overrides {
		if v == "" {
			delete(cfg, k)
			continue
		}
		cfg[k] = json.RawMessage(v)
	}
	b, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	top["config"] = b
	out, err := json.Marshal(top) // compact: RawMessages are compacted by Marshal
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func mustDecode(t testing.TB, data []byte) *State {
	t.Helper()
	st, err := DecodeState(data)
	if err != nil {
		t.Fatalf("DecodeState: %v\n%s", err, data)
	}
	return st
}

// checkPart asserts that part p of st holds what fullStateJSON has.
func checkPart(t *testing.T, st *State, p Part) {
	t.Helper()
	switch p {
	case PartKeys:
		if st.ProjectID != 42 || st.OrganizationID != 7 || st.Rev != "5ceaea8c919811e8ae7daae9fe877901" || st.Disabled {
			t.Errorf("top level: id %d org %d rev %q disabled %v", st.ProjectID, st.OrganizationID, st.Rev, st.Disabled)
		}
		if len(st.Keys) != 3 || st.Keys[0].PublicKey != "e12d836b15bb49d7bbf99e64295d995b" || st.Keys[0].NumericID != 123 {
			t.Errorf("keys: %+v", st.Keys)
		}
	case PartClient:
		if !slices.Equal(st.AllowedDomains, []string{"example.com", "*.example.org"}) {
			t.Errorf("AllowedDomains = %q", st.AllowedDomains)
		}
		if !slices.Equal(st.TrustedRelays, []string{"K3ZiaTLn7mFqtRD-JOIz8a4fCoi4tJFiZ3LuB8ZKbU4"}) {
			t.Errorf("TrustedRelays = %q", st.TrustedRelays)
		}
		if !st.VerifySignature {
			t.Error("VerifySignature = false, want true")
		}
	case PartQuotas:
		if len(st.Quotas) != 2 {
			t.Fatalf("Quotas = %+v", st.Quotas)
		}
		q := st.Quotas[0]
		if q.ID != "q1" || q.Scope != "project" || q.Limit == nil || *q.Limit != 1000 || q.Window != 60 ||
			q.ReasonCode != "project_quota" || !slices.Equal(q.Categories, []string{"error"}) {
			t.Errorf("quota 0 = %+v", q)
		}
		if !q.Covers("error") || q.Covers("transaction") {
			t.Error("quota 0 Covers wrong")
		}
		if q := st.Quotas[1]; q.Limit == nil || *q.Limit != 0 || q.ID != "" {
			t.Errorf("quota 1 = %+v", q)
		}
	case PartFilters:
		if !slices.Equal(st.Filters.ClientIPs.BlacklistedIPs, []string{"127.0.0.1", "10.0.0.0/8", "2001:db8::/32"}) {
			t.Errorf("clientIps = %q", st.Filters.ClientIPs.BlacklistedIPs)
		}
		if !slices.Equal(st.Filters.Releases.Releases, []string{"1.0.*", "*-beta"}) {
			t.Errorf("releases = %q", st.Filters.Releases.Releases)
		}
	case PartSampling:
		if st.Sampling == nil || len(st.Sampling.Rules) != 1 || st.Sampling.Rules[0].ID != 1000 ||
			st.Sampling.Rules[0].SamplingValue.Value != 0.25 {
			t.Errorf("Sampling = %+v", st.Sampling)
		}
	case PartMetrics:
		cl := st.Metrics.CardinalityLimits
		if len(cl) != 1 || cl[0].ID != "transactions" || cl[0].Limit != 10000 || cl[0].Window.WindowSeconds != 3600 ||
			cl[0].Window.GranularitySeconds != 600 || cl[0].Scope != "organization" {
			t.Errorf("Metrics = %+v", st.Metrics)
		}
	case PartFeatures:
		if !slices.Equal(st.Features, []string{"organizations:session-replay", "projects:span-metrics-extraction"}) {
			t.Errorf("Features = %q", st.Features)
		}
		if !st.HasFeature("organizations:session-replay") || st.HasFeature("organizations:nope") {
			t.Error("HasFeature wrong")
		}
	case PartGrouping:
		if st.Grouping == nil || !st.Grouping.Discards("4b8bbc500bd2cabfcadc1f1be867e0bb") || !st.Grouping.Discards("legacy-checksum") ||
			st.Grouping.Discards("") || st.Grouping.Discards("348fc4026c9fa11ffba8fbfa80a134c9") {
			t.Errorf("Grouping = %+v", st.Grouping)
		}
		if limit, window := st.Grouping.StormLimit(); limit != 100 || window != time.Minute {
			t.Errorf("Grouping = %+v", st.Grouping)
		}
	case PartClientOptions:
		if st.ClientOptions == nil || len(st.ClientOptions.Rules) != 1 || *st.ClientOptions.Options.TracesSampleRate != 0.25 {
			t.Errorf("ClientOptions = %+v", st.ClientOptions)
		}
	case PartTailSampling:
		ts := st.TailSampling
		if !st.TailSampled() || Seconds(ts.DecisionWait) != 10*time.Second || ts.RootGrace == nil || Seconds(*ts.RootGrace) != 1500*time.Millisecond || *ts.KeepRate != 0.5 || Seconds(ts.DurationThreshold) != 2500*time.Millisecond ||
			len(ts.Rules) != 2 || ts.Rules[0] != (TailRule{Attribute: "tier", Equals: "gold"}) || ts.Rules[1].Transaction != "/api/*" {
			t.Errorf("TailSampling = %+v", ts)
		}
	case PartOther:
		for _, k := range []string{"groupingConfig", "eventRetention", "retentions", "txNameRules"} {
			if _, ok := st.config[k]; !ok {
				t.Errorf("other config key %q not kept", k)
			}
		}
	}
}

func TestDecodeStateFull(t *testing.T) {
	st := mustDecode(t, []byte(fullStateJSON))
	if len(st.Broken) != 0 {
		t.Fatalf("Broken = %v, want none", st.Broken)
	}
	if st.Present != AllParts {
		t.Errorf("Present = %v, want %v", st.Present.Names(), AllParts.Names())
	}
	for p := range NumParts {
		t.Run(p.String(), func(t *testing.T) { checkPart(t, st, p) })
	}
	if got := st.KeyID([]byte("e12d836b15bb49d7bbf99e64295d995b")); got != 123 {
		t.Errorf("KeyID = %d", got)
	}
	if got := st.KeyID([]byte("ffffffffffffffffffffffffffffffff")); got != 0 {
		t.Errorf("KeyID(unknown) = %d", got)
	}
}

func TestKeyEnabled(t *testing.T) {
	st := mustDecode(t, []byte(fullStateJSON))
	for _, tc := range []struct {
		key            string
		known, enabled bool
	}{
		{"e12d836b15bb49d7bbf99e64295d995b", true, true},  // isEnabled absent
		{"0123456789abcdef0123456789abcdef", true, false}, // isEnabled false
		{"fedcba9876543210fedcba9876543210", true, true},  // isEnabled true
		{"ffffffffffffffffffffffffffffffff", false, false},
		{"e12d836b15bb49d7bbf99e64295d995", false, false}, // prefix
		{"", false, false},
	} {
		known, enabled := st.KeyEnabled([]byte(tc.key))
		if known != tc.known || enabled != tc.enabled {
			t.Errorf("KeyEnabled(%q) = (%v, %v), want (%v, %v)", tc.key, known, enabled, tc.known, tc.enabled)
		}
	}
}

func TestDecodeStateBrokenPart(t *testing.T) {
	for _, tc := range []struct {
		name      string
		overrides map[string]string
		part      Part
		why       string // substring of Broken[part]
	}{
		{"sampling a string", map[string]string{"sampling": `"garbage"`}, PartSampling, "sampling"},
		{"sampling unknown op", map[string]string{"sampling": `{"version":2,"rules":[{"id":1,"type":"trace","samplingValue":{"type":"sampleRate","value":0.5},"condition":{"op":"regex","name":"trace.release","value":"x"}}]}`}, PartSampling, "unknown op"},
		{"sampling rate 2.0", map[string]string{"sampling": `{"version":2,"rules":[{"id":1,"type":"trace","samplingValue":{"type":"sampleRate","value":2.0},"condition":{"op":"and","inner":[]}}]}`}, PartSampling, "outside"},
		{"dynamicSampling alias broken", map[string]string{"sampling": "", "dynamicSampling": `{"rules":[{"id":3,"type":"nope","samplingValue":{"type":"sampleRate","value":0.5},"condition":{"op":"and","inner":[]}}]}`}, PartSampling, "dynamicSampling"},
		{"quotas not a list", map[string]string{"quotas": `{"id":"q1"}`}, PartQuotas, "quotas"},
		{"quota unknown scope", map[string]string{"quotas": `[{"id":"q1","scope":"galaxy","limit":1,"window":60}]`}, PartQuotas, "unknown scope"},
		{"quota negative limit", map[string]string{"quotas": `[{"id":"q1","scope":"project","limit":-1,"window":60}]`}, PartQuotas, "negative"},
		{"filters bad CIDR", map[string]string{"filterSettings": `{"clientIps":{"blacklistedIps":["10.0.0.0/33"]}}`}, PartFilters, "clientIps"},
		{"filters bad IP", map[string]string{"filterSettings": `{"clientIps":{"blacklistedIps":["not-an-ip"]}}`}, PartFilters, "clientIps"},
		{"filters not an object", map[string]string{"filterSettings": `[]`}, PartFilters, "filterSettings"},
		{"allowedDomains a number", map[string]string{"allowedDomains": `5`}, PartClient, "allowedDomains"},
		{"trustedRelays an object", map[string]string{"trustedRelays": `{}`}, PartClient, "trustedRelays"},
		{"trustedRelaySettings a list", map[string]string{"trustedRelaySettings": `[1]`}, PartClient, "trustedRelaySettings"},
		{"features a map", map[string]string{"features": `{"organizations:session-replay":true}`}, PartFeatures, "features"},
		{"metrics negative limit", map[string]string{"metrics": `{"cardinalityLimits":[{"id":"x","limit":-5,"window":{"windowSeconds":60}}]}`}, PartMetrics, "negative limit"},
		{"metrics not an object", map[string]string{"metrics": `"x"`}, PartMetrics, "metrics"},
		{"grouping hashes a string", map[string]string{"grouping": `{"discardedHashes":"abc"}`}, PartGrouping, "grouping"},
		{"grouping empty hash", map[string]string{"grouping": `{"discardedHashes":["abc",""]}`}, PartGrouping, "discardedHashes 1: empty hash"},
		{"clientOptions rate 2", map[string]string{"clientOptions": `{"version":1,"options":{"traces_sample_rate":2}}`}, PartClientOptions, "clientOptions: options.traces_sample_rate: must be 0 to 1"},
		{"clientOptions version 9", map[string]string{"clientOptions": `{"version":9}`}, PartClientOptions, "clientOptions: version"},
		{"tailSampling keepRate 2", map[string]string{"tailSampling": `{"enabled":true,"keepRate":2}`}, PartTailSampling, "tailSampling: keepRate must be between 0 and 1"},
		{"tailSampling negative wait", map[string]string{"tailSampling": `{"enabled":true,"decisionWait":-1}`}, PartTailSampling, "tailSampling: decisionWait: -1"},
		{"tailSampling negative rootGrace", map[string]string{"tailSampling": `{"enabled":true,"rootGrace":-1}`}, PartTailSampling, "tailSampling: rootGrace: -1"},
		{"tailSampling empty rule", map[string]string{"tailSampling": `{"enabled":true,"rules":[{}]}`}, PartTailSampling, "rules 0: a rule needs"},
		{"tailSampling enabled a string", map[string]string{"tailSampling": `{"enabled":"yes"}`}, PartTailSampling, "tailSampling: json"},
		{"grouping storm negative limit", map[string]string{"grouping": `{"storm":{"limit":-1,"window":60}}`}, PartGrouping, "storm.limit"},
		{"grouping storm without window", map[string]string{"grouping": `{"storm":{"limit":100}}`}, PartGrouping, "storm.window"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := mustDecode(t, stateWith(t, tc.overrides))
			if len(st.Broken) != 1 {
				t.Fatalf("Broken = %v, want only %v", st.Broken, tc.part)
			}
			why, ok := st.Broken[tc.part]
			if !ok {
				t.Fatalf("Broken = %v, want %v", st.Broken, tc.part)
			}
			if !strings.Contains(why, tc.why) {
				t.Errorf("Broken[%v] = %q, want it to mention %q", tc.part, why, tc.why)
			}
			if !st.Present.Has(tc.part) {
				t.Errorf("Present %v lacks the broken part %v", st.Present.Names(), tc.part)
			}
			// The broken part is off...
			switch tc.part {
			case PartClient:
				if !slices.Equal(st.AllowedDomains, []string{"*"}) || st.TrustedRelays != nil || st.VerifySignature {
					t.Errorf("broken client: AllowedDomains %q TrustedRelays %q VerifySignature %v, want [*] nil false",
						st.AllowedDomains, st.TrustedRelays, st.VerifySignature)
				}
			case PartQuotas:
				if st.Quotas != nil {
					t.Errorf("broken quotas: Quotas = %+v", st.Quotas)
				}
			case PartFilters:
				if !reflect.DeepEqual(st.Filters, Filters{}) {
					t.Errorf("broken filters: Filters = %+v", st.Filters)
				}
			case PartSampling:
				if st.Sampling != nil {
					t.Errorf("broken sampling: Sampling = %+v", st.Sampling)
				}
			case PartMetrics:
				if !reflect.DeepEqual(st.Metrics, Metrics{}) {
					t.Errorf("broken metrics: Metrics = %+v", st.Metrics)
				}
			case PartFeatures:
				if st.Features != nil {
					t.Errorf("broken features: Features = %q", st.Features)
				}
			case PartGrouping:
				if st.Grouping != nil {
					t.Errorf("broken grouping: Grouping = %+v", st.Grouping)
				}
			case PartTailSampling:
				if st.TailSampling != nil || st.TailSampled() || st.Sampling == nil {
					t.Errorf("broken tailSampling: TailSampling = %+v, head Sampling %v; want tail off and head sampling kept", st.TailSampling, st.Sampling)
				}
			}
			// ...and every other part still decoded.
			for p := range NumParts {
				if p != tc.part {
					t.Run(p.String(), func(t *testing.T) { checkPart(t, st, p) })
				}
			}
		})
	}
}

// TestDecodeStateBrokenParts: a part its source could not read
// (top-level brokenParts) is off even when its keys are in the config,
// every part alike, and every other part stays in force.
func TestDecodeStateBrokenParts(t *testing.T) {
	off := map[Part]func(st *State) bool{
		PartClient: func(st *State) bool {
			return slices.Equal(st.AllowedDomains, []string{"*"}) && st.TrustedRelays == nil && !st.VerifySignature &&
				errors.Is(st.PIIErr, pii.ErrInvalidConfig) && st.PII == nil && st.Attachments == nil && st.ViewHierarchy == nil
		},
		PartQuotas:        func(st *State) bool { return st.Quotas == nil },
		PartFilters:       func(st *State) bool { return reflect.DeepEqual(st.Filters, Filters{}) },
		PartSampling:      func(st *State) bool { return st.Sampling == nil },
		PartMetrics:       func(st *State) bool { return reflect.DeepEqual(st.Metrics, Metrics{}) },
		PartFeatures:      func(st *State) bool { return st.Features == nil },
		PartGrouping:      func(st *State) bool { return st.Grouping == nil },
		PartClientOptions: func(st *State) bool { return st.ClientOptions == nil },
		PartTailSampling:  func(st *State) bool { return st.TailSampling == nil && !st.TailSampled() },
		PartOther:         func(st *State) bool { return st.Breakdowns == nil },
	}
	full := stateWith(t, map[string]string{"breakdownsV2": `{"ops":{"type":"spanOperations","matches":["db"]}}`})
	if st := mustDecode(t, full); st.Breakdowns == nil || st.PII == nil || st.PIIErr != nil {
		t.Fatalf("full state: Breakdowns %v PII %v PIIErr %v, want breakdowns and PII on", st.Breakdowns, st.PII, st.PIIErr)
	}
	for p := PartClient; p < NumParts; p++ {
		t.Run(p.String(), func(t *testing.T) {
			isOff, ok := off[p]
			if !ok {
				t.Fatalf("no check that part %v is off when broken", p)
			}
			var top map[string]json.RawMessage
			if err := json.Unmarshal(full, &top); err != nil {
				t.Fatal(err)
			}
			top[brokenPartsKey], _ = json.Marshal(map[string]string{p.String(): "unreadable"})
			data, _ := json.Marshal(top)
			st := mustDecode(t, data)
			if len(st.Broken) != 1 || st.Broken[p] != "unreadable" {
				t.Fatalf("Broken = %v, want only %v", st.Broken, p)
			}
			if !isOff(st) {
				t.Errorf("part %v listed broken is still on", p)
			}
			for q := range NumParts {
				if q != p {
					t.Run(q.String(), func(t *testing.T) { checkPart(t, st, q) })
				}
			}
		})
	}
}

func TestDecodeStateAbsentParts(t *testing.T) {
	st := mustDecode(t, []byte(`{"publicKeys":[{"publicKey":"abc","isEnabled":true}],"config":{"allowedDomains":["*"]}}`))
	if len(st.Broken) != 0 {
		t.Fatalf("Broken = %v", st.Broken)
	}
	if want := PartSet(0).With(PartKeys).With(PartClient); st.Present != want {
		t.Errorf("Present = %v, want %v", st.Present.Names(), want.Names())
	}
	if st.Sampling != nil || st.Quotas != nil || st.Features != nil {
		t.Errorf("absent parts decoded to %+v %+v %+v", st.Sampling, st.Quotas, st.Features)
	}

	// No config at all, and null parts: nothing broken, allow all.
	for _, data := range []string{
		`{"publicKeys":[]}`,
		`{"publicKeys":null,"config":null}`,
		`{"config":{"sampling":null,"quotas":null,"features":null,"allowedDomains":null}}`,
	} {
		st := mustDecode(t, []byte(data))
		if len(st.Broken) != 0 {
			t.Errorf("%s: Broken = %v", data, st.Broken)
		}
		if st.Sampling != nil || st.Quotas != nil {
			t.Errorf("%s: Sampling %v Quotas %v", data, st.Sampling, st.Quotas)
		}
	}
	st = mustDecode(t, []byte(`{"config":{"trustedRelays":[]}}`))
	if !slices.Equal(st.AllowedDomains, []string{"*"}) {
		t.Errorf("absent allowedDomains = %q, want [*]", st.AllowedDomains)
	}
}

func TestDecodeStateConfigNotObject(t *testing.T) {
	for _, cfg := range []string{`"garbage"`, `[1,2]`, `17`, `true`} {
		t.Run(cfg, func(t *testing.T) {
			data := strings.Replace(`{"projectId":42,"rev":"r1","publicKeys":[{"publicKey":"abc","numericId":1}],"config":CFG}`, "CFG", cfg, 1)
			st := mustDecode(t, []byte(data))
			for p := PartClient; p < NumParts; p++ {
				if _, ok := st.Broken[p]; !ok {
					t.Errorf("part %v not broken", p)
				}
			}
			if _, ok := st.Broken[PartKeys]; ok {
				t.Error("keys part broken")
			}
			if st.ProjectID != 42 || st.Rev != "r1" || len(st.Keys) != 1 || st.Keys[0].PublicKey != "abc" {
				t.Errorf("keys part not decoded: %+v", st)
			}
			if known, enabled := st.KeyEnabled([]byte("abc")); !known || !enabled {
				t.Errorf("KeyEnabled = %v %v", known, enabled)
			}
			if !slices.Equal(st.AllowedDomains, []string{"*"}) {
				t.Errorf("AllowedDomains = %q, want [*]", st.AllowedDomains)
			}
			if st.Sampling != nil || st.Quotas != nil {
				t.Error("parts decoded from a broken config")
			}
		})
	}
}

func TestDecodeStateInvalid(t *testing.T) {
	for _, data := range []string{
		``,
		`garbage`,
		`null`,
		`[]`,
		`"state"`,
		`42`,
		`{"publicKeys":"e12d836b15bb49d7bbf99e64295d995b"}`,
		`{"publicKeys":{"publicKey":"abc"}}`,
		`{"publicKeys":[1,2]}`,
		`{"publicKeys":[{"publicKey":5}]}`,
		`{"publicKeys":[{"publicKey":"abc","isEnabled":"yes"}]}`,
		`{"publicKeys":[],"config":{}`, // truncated
	} {
		st, err := DecodeState([]byte(data))
		if !errors.Is(err, ErrInvalidState) {
			t.Errorf("DecodeState(%s) = %v, %v; want ErrInvalidState", data, st, err)
		}
		if st != nil {
			t.Errorf("DecodeState(%s) returned a state with an error", data)
		}
	}
}

func TestParts(t *testing.T) {
	for p := range NumParts {
		got, ok := ParsePart(p.String())
		if !ok || got != p {
			t.Errorf("ParsePart(%q) = %v, %v", p.String(), got, ok)
		}
	}
	if _, ok := ParsePart("bogus"); ok {
		t.Error("ParsePart(bogus) ok")
	}
	if got := Part(200).String(); got != "part(200)" {
		t.Errorf("Part(200) = %q", got)
	}
	if got := AllParts.Names(); len(got) != int(NumParts) {
		t.Errorf("AllParts.Names() = %q", got)
	}
	s := PartSet(0).With(PartSampling).With(PartKeys)
	if !slices.Equal(s.Names(), []string{"keys", "sampling"}) || s.Has(PartQuotas) {
		t.Errorf("PartSet = %q", s.Names())
	}
	for key, want := range map[string]Part{
		"allowedDomains": PartClient, "piiConfig": PartClient, "quotas": PartQuotas, "filterSettings": PartFilters,
		"sampling": PartSampling, "dynamicSampling": PartSampling, "sessionMetrics": PartMetrics,
		"features": PartFeatures, "grouping": PartGrouping, "groupingConfig": PartOther, "": PartOther,
	} {
		if got := PartOf(key); got != want {
			t.Errorf("PartOf(%q) = %v, want %v", key, got, want)
		}
	}
}

func TestAppendJSONParts(t *testing.T) {
	// Compact, so that the raw values kept verbatim compare equal after
	// AppendJSON (which compacts them).
	orig := mustDecode(t, stateWith(t, nil))
	var origTop map[string]json.RawMessage
	if err := json.Unmarshal([]byte(fullStateJSON), &origTop); err != nil {
		t.Fatal(err)
	}
	delete(origTop, "config")

	for p := PartKeys; p < NumParts; p++ {
		t.Run(p.String(), func(t *testing.T) {
			parts := PartSet(0).With(PartKeys).With(p)
			prefix := []byte("prefix:")
			out := orig.AppendJSON(prefix, parts)
			if !strings.HasPrefix(string(out), "prefix:") {
				t.Fatalf("AppendJSON dropped dst: %q", out)
			}
			out = out[len(prefix):]

			var top map[string]json.RawMessage
			if err := json.Unmarshal(out, &top); err != nil {
				t.Fatalf("AppendJSON output is not JSON: %v\n%s", err, out)
			}
			var cfg map[string]json.RawMessage
			if err := json.Unmarshal(top["config"], &cfg); err != nil {
				t.Fatalf("config: %v", err)
			}
			delete(top, "config")
			// Top-level fields are kept whatever the parts.
			if !slices.Equal(slices.Sorted(maps.Keys(top)), slices.Sorted(maps.Keys(origTop))) {
				t.Errorf("top-level keys %q, want %q", slices.Sorted(maps.Keys(top)), slices.Sorted(maps.Keys(origTop)))
			}
			// Only p's config keys, and all of them.
			var want []string
			for k := range orig.config {
				if PartOf(k) == p {
					want = append(want, k)
				}
			}
			if got := slices.Sorted(maps.Keys(cfg)); !slices.Equal(got, slices.Sorted(slices.Values(want))) {
				t.Errorf("config keys %q, want %q", got, want)
			}

			// Round trip: the part decodes as before, nothing is broken.
			back := mustDecode(t, out)
			if len(back.Broken) != 0 {
				t.Errorf("round trip Broken = %v", back.Broken)
			}
			wantPresent := PartSet(0).With(PartKeys)
			if len(want) > 0 {
				wantPresent = wantPresent.With(p)
			}
			if back.Present != wantPresent {
				t.Errorf("round trip Present = %v, want %v", back.Present.Names(), wantPresent.Names())
			}
			checkPart(t, back, PartKeys)
			checkPart(t, back, p)
		})
	}

	t.Run("all", func(t *testing.T) {
		out := orig.AppendJSON(nil, AllParts)
		back := mustDecode(t, out)
		if !reflect.DeepEqual(back, orig) {
			t.Errorf("round trip of AllParts differs:\n got %+v\nwant %+v", back, orig)
		}
		// And it is stable.
		if again := back.AppendJSON(nil, AllParts); string(again) != string(out) {
			t.Errorf("second round trip differs:\n%s\n%s", out, again)
		}
	})

	t.Run("broken part passed through", func(t *testing.T) {
		// A part Baton cannot decode is still served verbatim downstream;
		// the downstream relay decides what to do with it.
		st := mustDecode(t, stateWith(t, map[string]string{"sampling": `"garbage"`}))
		back := mustDecode(t, st.AppendJSON(nil, AllParts))
		if _, ok := back.Broken[PartSampling]; !ok || len(back.Broken) != 1 {
			t.Errorf("Broken after round trip = %v", back.Broken)
		}
	})
}

// TestStatePII: a state compiles its piiConfig and datascrubbingSettings
// once, when it is decoded; one that does not compile is recorded (the
// caller drops events, fail closed) without breaking the client part.
func TestStatePII(t *testing.T) {
	for _, c := range []struct {
		name, config string
		scrubs, bad  bool
	}{
		{"none", `{}`, false, false},
		{"legacy defaults", `{"datascrubbingSettings": {"scrubData": true, "scrubDefaults": true}}`, true, false},
		{"piiConfig", `{"piiConfig": {"applications": {"password": ["@password"]}}}`, true, false},
		{"bad regex", `{"allowedDomains": ["a.com"], "piiConfig": {"rules": {"r": {"type": "pattern", "pattern": "("}}, "applications": {"$string": ["r"]}}}`, false, true},
		{"bad settings", `{"datascrubbingSettings": {"scrubData": "yes"}}`, false, true},
		{"broken client part", `{"allowedDomains": 3, "piiConfig": {"applications": {"password": ["@password"]}}}`, true, false},
		{"config not an object", `[]`, false, true},
	} {
		st, err := DecodeState([]byte(`{"projectId": 1, "publicKeys": [], "config": ` + c.config + `}`))
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got := st.PII != nil; got != c.scrubs {
			t.Errorf("%s: PII compiled = %v, want %v", c.name, got, c.scrubs)
		}
		if got := st.PIIErr != nil; got != c.bad {
			t.Errorf("%s: PIIErr = %v, want an error %v", c.name, st.PIIErr, c.bad)
		}
		if c.bad && !errors.Is(st.PIIErr, pii.ErrInvalidConfig) {
			t.Errorf("%s: PIIErr %v does not wrap pii.ErrInvalidConfig", c.name, st.PIIErr)
		}
		if c.name == "bad regex" && (len(st.Broken) != 0 || !slices.Equal(st.AllowedDomains, []string{"a.com"})) {
			t.Errorf("%s: the rest of the client part must stay in force: broken %v, allowedDomains %v", c.name, st.Broken, st.AllowedDomains)
		}
	}
}
