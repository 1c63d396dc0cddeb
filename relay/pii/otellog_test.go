package pii

import (
	"encoding/json"
	"strings"
	"testing"
)

// otelRecord is an OTLP/JSON LogRecord as an otel_log item holds it, in
// the shape of Relay's tests (test_ourlogs.py), with personal data in the
// body, in a password-like attribute, in a key-value list and an array.
const otelRecord = `{"timeUnixNano":"1764064800500000000","severityNumber":9,"severityText":"Information",` +
	`"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174",` +
	`"body":{"stringValue":"order 7 for jane@example.com"},"attributes":[` +
	`{"key":"password","value":{"stringValue":"hunter2"}},` +
	`{"key":"sentry.release","value":{"stringValue":"web@1"}},` +
	`{"key":"secret","value":{"intValue":"1234"}},` +
	`{"key":"retries","value":{"intValue":"3"}},` +
	`{"key":"ok","value":{"boolValue":true}},` +
	`{"key":"user","value":{"kvlistValue":{"values":[{"key":"email","value":{"stringValue":"joe@example.com"}}]}}},` +
	`{"key":"to","value":{"arrayValue":{"values":[{"stringValue":"ann@example.com"},{"doubleValue":1.5}]}}}]}`

func scrubOtel(t *testing.T, settings DataScrubbingSettings, config, src string) (string, map[string]any) {
	t.Helper()
	c, err := Compile(settings, []byte(config))
	if err != nil {
		t.Fatal(err)
	}
	out, err := c.ScrubOtelLog(nil, []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	var rec map[string]any
	if err := json.Unmarshal(out, &rec); err != nil {
		t.Fatalf("%s: %v", out, err)
	}
	return string(out), rec
}

// otelAttr is the AnyValue of the attribute key of record rec.
func otelAttr(rec map[string]any, key string) map[string]any {
	for _, a := range rec["attributes"].([]any) {
		if a := a.(map[string]any); a["key"] == key {
			v, _ := a["value"].(map[string]any)
			return v
		}
	}
	return nil
}

// A piiConfig reaches an OTLP record's body and attribute values as it
// reaches a log's (`$string` over body and values, nested lists too), and
// the record keeps its OTLP shape: ids, times, severity and pii-false
// attributes as they were.
func TestScrubOtelLogPIIConfig(t *testing.T) {
	out, rec := scrubOtel(t, DataScrubbingSettings{}, `{"applications":{"$string":["@email:replace"]}}`, otelRecord)
	if b := rec["body"].(map[string]any); b["stringValue"] != "order 7 for [email]" {
		t.Errorf("body %v", b)
	}
	if strings.Contains(out, "@example.com") {
		t.Errorf("an address is left: %s", out)
	}
	if !strings.Contains(out, `"traceId":"5b8efff798038103d269b633813fc60c"`) || rec["timeUnixNano"] != "1764064800500000000" || rec["severityNumber"] != 9.0 {
		t.Errorf("fields changed: %s", out)
	}
	if v := otelAttr(rec, "sentry.release"); v["stringValue"] != "web@1" {
		t.Errorf("sentry.release %v", v)
	}
	if v := otelAttr(rec, "to"); !strings.Contains(out, `{"arrayValue":{"values":[{"stringValue":"[email]"},{"doubleValue":1.5}]}}`) {
		t.Errorf("array %v", v)
	}
	if _, ok := rec["_meta"]; ok {
		t.Errorf("_meta written into an OTLP record: %s", out)
	}
	// A selector on the attribute's value path of the log view.
	_, rec = scrubOtel(t, DataScrubbingSettings{}, `{"applications":{"attributes.password.value":["@anything:replace"]}}`, otelRecord)
	if v := otelAttr(rec, "password"); v["stringValue"] != "[Filtered]" {
		t.Errorf("password %v", v)
	}
}

// The legacy settings filter password-like attributes by name: a string
// is replaced, a number removed, leaving an empty AnyValue; other numbers
// and booleans are kept. Nothing matched: byte for byte; a record that is
// no JSON object is an error.
func TestScrubOtelLogDataScrubbingSettings(t *testing.T) {
	out, rec := scrubOtel(t, DataScrubbingSettings{ScrubData: true, ScrubDefaults: true}, "", otelRecord)
	if v := otelAttr(rec, "password"); v["stringValue"] != "[Filtered]" {
		t.Errorf("password %v", v)
	}
	if v := otelAttr(rec, "secret"); len(v) != 0 {
		t.Errorf("secret %v, want an empty AnyValue", v)
	}
	if v := otelAttr(rec, "retries"); v["intValue"] != "3" {
		t.Errorf("retries %v", v)
	}
	if v := otelAttr(rec, "ok"); v["boolValue"] != true {
		t.Errorf("ok %v", v)
	}
	if strings.Contains(out, "hunter2") || strings.Contains(out, "1234") {
		t.Errorf("a secret is left: %s", out)
	}

	c, _ := Compile(DataScrubbingSettings{}, []byte(`{"applications":{"$string":["@creditcard"]}}`))
	pretty := "{\n  \"body\": {\"stringValue\": \"hello\"},\n  \"attributes\": []\n}"
	for _, src := range []string{otelRecord, pretty, `{}`} {
		if out, err := c.ScrubOtelLog(nil, []byte(src)); err != nil || string(out) != src {
			t.Errorf("unchanged record: %s %v", out, err)
		}
	}
	for _, src := range []string{`[1]`, `{"body":`} {
		if _, err := c.ScrubOtelLog(nil, []byte(src)); err == nil {
			t.Errorf("%s scrubbed", src)
		}
	}
	// Proto field names, which protobuf's JSON readers accept too.
	_, rec = scrubOtel(t, DataScrubbingSettings{}, `{"applications":{"$string":["@email:replace"]}}`,
		`{"body":{"string_value":"to jane@example.com"}}`)
	if b := rec["body"].(map[string]any); b["string_value"] != "to [email]" {
		t.Errorf("snake_case body %v", b)
	}
}

// FuzzScrubOtelLog: never panics, output is valid JSON.
func FuzzScrubOtelLog(f *testing.F) {
	f.Add([]byte(otelRecord))
	f.Add([]byte(`{"body":{"kvlistValue":{"values":[{"key":"password","value":{"arrayValue":{"values":[{"intValue":7},3]}}}]}},"attributes":[1,{"key":2},{"key":"secret","value":{"doubleValue":"NaN"}}]}`))
	cfg, err := Compile(defaults, []byte(`{"applications":{"**":["@common","@anything:remove"],"$string":["@email"]}}`))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		out, err := cfg.ScrubOtelLog(nil, in)
		if err != nil {
			return
		}
		if !json.Valid(out) {
			t.Fatalf("invalid JSON output %q for %q", out, in)
		}
	})
}
