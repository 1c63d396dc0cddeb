package pii

import (
	"bytes"
	"encoding/json"
	"testing"
)

// scrub compiles and scrubs, failing the test on errors.
func scrub(t testing.TB, settings DataScrubbingSettings, config, event string) string {
	t.Helper()
	c, err := Compile(settings, []byte(config))
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	out, err := c.ScrubEvent(nil, []byte(event))
	if err != nil {
		t.Fatalf("ScrubEvent: %v", err)
	}
	if !json.Valid(out) {
		t.Fatalf("invalid JSON: %s", out)
	}
	return string(out)
}

// canon re-encodes JSON with sorted keys so tests compare values, not layout.
func canon(t testing.TB, s string) string {
	t.Helper()
	var v any
	d := json.NewDecoder(bytes.NewReader([]byte(s)))
	d.UseNumber()
	if err := d.Decode(&v); err != nil {
		t.Fatalf("bad JSON %q: %v", s, err)
	}
	b, _ := json.Marshal(v)
	return string(b)
}

func expectJSON(t testing.TB, got, want string) {
	t.Helper()
	if canon(t, got) != canon(t, want) {
		t.Errorf("got  %s\nwant %s", canon(t, got), canon(t, want))
	}
}
