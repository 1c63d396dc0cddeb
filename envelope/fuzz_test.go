package envelope

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

// fuzzSeeds are hand-written edge cases for FuzzParse.
var fuzzSeeds = []string{
	"",
	"{}",
	"{}\n",
	"\n\n{}\n\n",
	testHeader + "\n{\"type\":\"event\"}\n{\"a\":1}",
	testHeader + "\n{\"type\":\"attachment\",\"length\":11}\nhello\nworld\n",
	"{}\n{\"type\":\"attachment\",\"length\":0}\n\n{\"type\":\"attachment\",\"length\":0}",
	"{}\n{\"type\":\"attachment\"}",
	"{}\n{\"type\":\"attachment\"}\n\n{\"type\":\"attachment\"}\nx",
	"{} \r\n{\"type\":\"session\"}\t\r\n{}\r\n",
	"{}\n{\"type\":\"event\",\"length\":null}\n{}\n",
	"{}\n{\"typ\\u0065\":\"ev\\u0065nt\",\"l\\u0065ngth\":2}\n{}\n",
	"{\n\"event_id\":\n\"9ec79c33ec9942ab8353589fcb2e04dc\"}\n{\"type\":\n\"event\"}\n{}\n",
	"{}\n{\"type\":\"future\",\"length\":3,\"x\":{\"y\":[1,2]}}\nabc\n",
	"{}\n{\"type\":\"attachment\",\"attachment_type\":\"event.minidump\"}\nMDMP\n{\"type\":\"attachment\"}\nx\n{\"type\":\"form_data\"}\n\n",
	"{}\n{\"type\":\"transaction\"}\n{}\n{\"type\":\"profile\"}\n{}\n{\"type\":\"attachment\"}\n{}\n",
	"{}\n{\"type\":\"feedback\"}\n{}\n{\"type\":\"attachment\",\"length\":1}\nx",
	"{}\n{\"type\":\"log\",\"item_count\":2,\"content_type\":\"application/vnd.sentry.items.log+json\"}\n{\"items\":[{},{}]}\n",
	"{}\n{\"type\":\"attachment\",\"length\":10}\nabc",
	"{}\n{\"type\":\"event\",\"length\":-1}\n{}\n",
	"{}\n{\"type\":\"event\",\"length\":4294967296}\n{}\n",
	"{}\n{\"length\":2}\n{}\n",
	"[]\n",
	"{\"event_id\":\"d2c39c40-25c9-44c0-8f1b-6b2f0ad1e0c4\",\"sent_at\":\"2026-11-24T18:18:21Z\",\"dsn\":\"http://a7c3e9f1b5d24680ace13579bdf02468@127.0.0.1:9001/17\"}",
	"{\"a\":\"\\ud800\\udc00\\ud800\"}\n{\"type\":\"raw_security\",\"sentry_release\":\"x\"}\n{}\n{\"type\":\"nel\"}\n[]",
	"{}\n{\"type\":\"integration\"}\n{}\n",
}

// addFixtureSeeds adds every file matching pattern as a seed; a pattern that
// matches nothing fails, so the seeds cannot go missing unnoticed.
func addFixtureSeeds(f *testing.F, pattern string, add func([]byte)) {
	f.Helper()
	files, _ := filepath.Glob(pattern)
	if len(files) == 0 {
		f.Fatalf("no fuzz seeds match %s", pattern)
	}
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		add(b)
	}
}

// FuzzParse checks that Parse never panics and that whatever it accepts
// survives serialization: parse(AppendTo(x)) equals x's parse, AppendTo is
// stable after one round, and every AppendClass part parses back to the
// items of that class.
func FuzzParse(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	addFixtureSeeds(f, filepath.Join(sdkFixtures, "*.envelope"), func(b []byte) { f.Add(b) })
	tight := &Limits{MaxEnvelopeSize: 300, MaxItems: 4, MaxHeaderLine: 60, MaxEventSize: 20,
		MaxAttachmentSize: 10, MaxAttachmentsSize: 15, MaxAttachmentCount: 2, MaxSessionCount: 2, MaxSessionsSize: 10}
	f.Fuzz(func(t *testing.T, b []byte) {
		var e Envelope
		// Tight limits exercise the limit paths; errors must be classified.
		if err := e.Parse(b, tight); err != nil && !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrTooLarge) {
			t.Fatalf("unclassified error %v", err)
		}
		err := e.Parse(b, nil)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) || (!errors.Is(err, ErrInvalid) && !errors.Is(err, ErrTooLarge)) {
				t.Fatalf("error %v (%T) is not a classified *ParseError", err, err)
			}
			if pe.Offset < 0 || pe.Offset > len(b) {
				t.Fatalf("offset %d outside the input (%d bytes)", pe.Offset, len(b))
			}
			return
		}
		// Re-framing adds length fields: allow the headers to grow.
		lim := DefaultLimits()
		lim.MaxHeaderLine += 32
		out := e.AppendTo(nil)
		var e2 Envelope
		if err := e2.Parse(out, &lim); err != nil {
			t.Fatalf("AppendTo output does not parse: %v\nin:  %q\nout: %q", err, b, out)
		}
		assertSameEnvelope(t, &e, &e2)
		if out2 := e2.AppendTo(nil); !bytes.Equal(out, out2) {
			t.Fatalf("AppendTo not stable:\n%q\n%q", out, out2)
		}
		total := 0
		for c := range e.Classes().All() {
			part := e.AppendClass(nil, c)
			var p Envelope
			if err := p.Parse(part, &lim); err != nil {
				t.Fatalf("AppendClass(%v) does not parse: %v\n%q", c, err, part)
			}
			for i := range p.Items {
				if p.Items[i].Class != c {
					t.Fatalf("AppendClass(%v) item %d re-classified as %v\n%q", c, i, p.Items[i].Class, b)
				}
			}
			total += len(p.Items)
		}
		if total != len(e.Items) {
			t.Fatalf("class parts hold %d items, envelope %d", total, len(e.Items))
		}
	})
}

// FuzzFromStore checks that FromStore never panics and that its output is a
// valid envelope carrying the returned id.
func FuzzFromStore(f *testing.F) {
	for _, s := range []string{
		`{"event_id":"9ec79c33ec9942ab8353589fcb2e04dc","message":"x"}`,
		`{"type":"transaction"}`, `{"a":NaN,"b":[-Infinity]}`, `eyJhIjoxfQ==`, "{}\n{\"type\":\"session\"}\n{}",
		"{}\n{\"type\":\"attachment\"}\nx", `[1]`, ``, `{"event_id":5}`,
	} {
		f.Add([]byte(s))
	}
	addFixtureSeeds(f, filepath.Join(sdkFixtures, "*.store"), func(b []byte) { f.Add(b) })
	addFixtureSeeds(f, filepath.Join(relayFixtures, "events", "*.json"), func(b []byte) { f.Add(b) })
	f.Fuzz(func(t *testing.T, b []byte) {
		env, id, err := FromStore(nil, b)
		if err != nil {
			if !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("unclassified error %v", err)
			}
			return
		}
		e, err := Parse(env)
		if err != nil {
			t.Fatalf("output does not parse: %v\n%q", err, env)
		}
		if e.Header.EventID != id {
			t.Fatalf("header id %v, returned %v", e.Header.EventID, id)
		}
		if e.NeedsEventID() && id.IsZero() {
			t.Fatalf("no event id for %q", env)
		}
	})
}

// FuzzParseDSN checks that ParseDSN never panics and that String gives a
// DSN that parses to the same value.
func FuzzParseDSN(f *testing.F) {
	for _, s := range []string{
		"https://e12d836b15bb49d7bbf99e64295d995b@sentry.example/42",
		"http://a7c3e9f1b5d24680ace13579bdf02468:secret@127.0.0.1:9001/base/17/",
		"https://x@y/1", "ftp://e12d836b15bb49d7bbf99e64295d995b@h/1", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDSN(s)
		if err != nil {
			return
		}
		d2, err := ParseDSN(d.String())
		if err != nil || d2 != d {
			t.Fatalf("ParseDSN(%q) = %+v; String %q parses to %+v, %v", s, d, d.String(), d2, err)
		}
	})
}

// FuzzJSONScan checks the validating scanner against encoding/json: it
// accepts a subset of what json.Valid accepts (it also rejects invalid UTF-8
// in strings and nesting deeper than 128), and the same set on short valid
// UTF-8 inputs.
func FuzzJSONScan(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":[1,2.5e-3,true,null,"\u00e9\n"]}`, `[`, `"\ud800"`, `-0`, `01`, `1.`, `{"a" 1}`, "\"\xff\"", ` 5 `} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		mine := validJSON(b) == nil
		std := json.Valid(b)
		if mine && !std {
			t.Fatalf("scanner accepts %q, encoding/json does not", b)
		}
		if std && !mine && utf8.Valid(b) && len(b) <= maxJSONDepth {
			t.Fatalf("scanner rejects %q: %v", b, validJSON(b))
		}
		// The object iterator agrees with the validator on objects.
		if mine && strings.HasPrefix(strings.TrimLeft(string(b), " \t\r\n"), "{") {
			var it objIter
			if it.init(b, 0) != nil {
				t.Fatal("init failed on a valid object")
			}
			for it.next() {
			}
			if it.err != nil || skipWS(b, it.end) != len(b) {
				t.Fatalf("iterator failed on %q: %v", b, it.err)
			}
		}
	})
}
