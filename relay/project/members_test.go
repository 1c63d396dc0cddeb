package project

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/baton-relay/baton/relay/internal/testutil"
)

// members agrees with json.Unmarshal into a map of raw members on every
// valid input, whatever the whitespace, escapes, nesting or duplicates.
func TestMembersLikeUnmarshal(t *testing.T) {
	inputs := []string{
		`{}`, ` { } `, `null`, ` null`, `[]`, `"s"`, `17`, `true`, `[{"a":1}]`,
		`{"a":1}`, `{"a":1,"b":"x","c":null,"d":true,"e":false,"f":-1.5e3}`,
		"{\n\t\"a\" :\r\n [1, {\"b\": [\"]}\\\"{\"]}] ,\"c\":{\"d\":{}}\n}",
		`{"a\"b":1,"\u0061":2,"a":3}`, `{"x":"\\","y":"\"}"}`, `{"":""}`,
		`{"a":[[[]]],"b":{"c":[{"d":"}"}]}}`,
		`{"projectId":42,"config":{"allowedDomains":["*"],"piiConfig":null}}`,
	}
	for _, b := range testutil.Fixtures(t, filepath.Join("testdata", "*.json")) {
		inputs = append(inputs, string(b))
	}
	for _, in := range inputs {
		var want map[string]json.RawMessage
		wantErr := json.Unmarshal([]byte(in), &want)
		got, ok := members([]byte(in))
		if ok != (wantErr == nil) {
			t.Errorf("members(%.60q) ok %v, json.Unmarshal %v", in, ok, wantErr)
			continue
		}
		if (got == nil) != (want == nil) || len(got) != len(want) {
			t.Errorf("members(%.60q) = %d members (nil %v), want %d (nil %v)", in, len(got), got == nil, len(want), want == nil)
			continue
		}
		for k, v := range want {
			if !bytes.Equal(got[k], v) {
				t.Errorf("members(%.60q)[%q] = %s, want %s", in, k, got[k], v)
			}
		}
	}
}

func FuzzMembers(f *testing.F) {
	f.Add(`{"a":{"b":[1,"]"]},"c":"\"","a":2}`)
	f.Fuzz(func(t *testing.T, in string) {
		if !json.Valid([]byte(in)) {
			return
		}
		var want map[string]json.RawMessage
		wantErr := json.Unmarshal([]byte(in), &want)
		got, ok := members([]byte(in))
		if ok != (wantErr == nil) || len(got) != len(want) || (got == nil) != (want == nil) {
			t.Fatalf("members(%q) = %v %v, json.Unmarshal %v %v", in, got, ok, want, wantErr)
		}
		for k, v := range want {
			if !bytes.Equal(got[k], v) {
				t.Fatalf("members(%q)[%q] = %s, want %s", in, k, got[k], v)
			}
		}
	})
}
