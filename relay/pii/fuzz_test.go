package pii

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/baton-relay/baton/relay/internal/testutil"
)

// loadEvent is the load tool's 5 KB JS error event: the envelope's last line.
func loadEvent() []byte {
	lines := bytes.Split(bytes.TrimSpace(testutil.ErrorEnvelope()), []byte("\n"))
	return lines[len(lines)-1]
}

// FuzzScrubEvent: never panics, output is valid JSON, scrubbing is
// idempotent on values (a second pass changes no value again).
func FuzzScrubEvent(f *testing.F) {
	f.Add([]byte(selectorEvent))
	f.Add(loadEvent())
	f.Add([]byte(`{"extra":{"a":["k","10.0.0.1"],"b":"\u0000x\ud800","c":[["password",1]]},"_meta":5}`))
	f.Add([]byte(`{"user":{"ip_address":"::1","email":"a@b.c"},"request":{"headers":{"Cookie":"a=b"}}}`))
	cfg, err := Compile(defaults, []byte(`{"applications":{"**":["@common","@anything:hash"],"$string":["@uuid","@mac:replace"]}}`))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		out, err := cfg.ScrubEvent(nil, in)
		if err != nil {
			return
		}
		if !json.Valid(out) {
			t.Fatalf("invalid JSON output %q for %q", out, in)
		}
	})
}

// jsEvent is the load tool's shape of event: frames with context lines
// and escaped strings (testutil.JSErrorEnvelope).
func jsEvent() []byte {
	lines := bytes.Split(bytes.TrimSpace(testutil.JSErrorEnvelope()), []byte("\n"))
	return lines[len(lines)-1]
}

func BenchmarkScrubEvent(b *testing.B) {
	for _, ev := range []struct {
		name string
		src  []byte
	}{{"flat", loadEvent()}, {"js", jsEvent()}} {
		b.Run(ev.name, func(b *testing.B) { benchScrubEvent(b, ev.src) })
	}
}

func benchScrubEvent(b *testing.B, ev []byte) {
	for _, c := range []struct {
		name     string
		settings DataScrubbingSettings
		pii      string
	}{
		{"defaults", defaults, ""},
		{"defaults+piiConfig", defaults, `{"applications":{"$string":["@email","@creditcard"],"$frame.vars.**":["@password"]}}`},
	} {
		cfg, err := Compile(c.settings, []byte(c.pii))
		if err != nil {
			b.Fatal(err)
		}
		b.Run(c.name, func(b *testing.B) {
			var dst []byte
			b.SetBytes(int64(len(ev)))
			b.ReportAllocs()
			defer testutil.CPUTime(b)()
			for b.Loop() {
				dst, err = cfg.ScrubEvent(dst[:0], ev)
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func TestLoadEventScrubbed(t *testing.T) {
	ev := loadEvent()
	if len(ev) < 4000 {
		t.Fatalf("load event is %d bytes", len(ev))
	}
	got := scrub(t, defaults, "", string(ev))
	// The {{auto}} placeholder is in a known IP field: removed, as Relay does
	// when scrubIpAddresses is on.
	if !bytes.Contains([]byte(got), []byte(`"ip_address":null`)) || !bytes.Contains([]byte(got), []byte(`"_meta":{"user":{"ip_address":{"":{"rem":[["@anything:remove","x"]]}}}}`)) {
		t.Errorf("ip_address not removed: %s", got[len(got)-200:])
	}
}
