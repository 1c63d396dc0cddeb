package envelope

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// benchErrorEnvelope is a 5 KB error envelope the way the JavaScript SDKs
// send it: header with sdk and trace, one event item without length.
func benchErrorEnvelope() []byte {
	var b strings.Builder
	b.WriteString(`{"event_id":"cfeb358676ff4ee895a4f4025d394343","sent_at":"2026-11-24T18:18:21.422Z","sdk":{"name":"sentry.javascript.node","version":"11.12.0"},"trace":{"environment":"prod","release":"app@1.0.0","public_key":"a7c3e9f1b5d24680ace13579bdf02468","trace_id":"5e0dd5f00529477cbbc866f9aee0373f","sample_rate":"1","sampled":"true"}}` + "\n")
	b.WriteString(`{"type":"event"}` + "\n")
	b.WriteString(`{"exception":{"values":[{"type":"Error","value":"charge failed","stacktrace":{"frames":[`)
	for i := 0; b.Len() < 5000; i++ {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `{"filename":"/app/src/payments/charge.js","function":"chargeCard%d","lineno":%d,"colno":17,"in_app":true,"context_line":"    throw new PaymentError('charge failed');"}`, i, 40+i)
	}
	b.WriteString(`]}}]},"level":"error","platform":"node","timestamp":1764008301.422}`)
	return []byte(b.String())
}

// benchAttachmentEnvelope is a 1 MB attachment envelope: a small event and a
// 1 MiB attachment, every item with length (sentry-go / python style).
func benchAttachmentEnvelope() []byte {
	event := `{"message":"crash with a big log","level":"error","platform":"go"}`
	line := []byte("0123456789abcdef log line with some text\n")
	att := bytes.Repeat(line, (1<<20)/len(line)+1)[:1<<20]
	var b bytes.Buffer
	b.WriteString(`{"event_id":"33d0775047fd41d3a777492c50a2ec92","sent_at":"2026-11-24T18:18:04.123456789Z","dsn":"http://a7c3e9f1b5d24680ace13579bdf02468@127.0.0.1:9001/17","sdk":{"name":"sentry.go","version":"0.50.0"}}` + "\n")
	fmt.Fprintf(&b, `{"type":"event","length":%d}`+"\n%s\n", len(event), event)
	fmt.Fprintf(&b, `{"type":"attachment","length":%d,"filename":"app.log","content_type":"text/plain"}`+"\n", len(att))
	b.Write(att)
	b.WriteString("\n")
	b.WriteString(`{"type":"client_report"}` + "\n" + `{"timestamp":1764008301,"discarded_events":[]}` + "\n")
	return b.Bytes()
}

var benchCases = []struct {
	name string
	body func() []byte
}{
	{"error-5KB", benchErrorEnvelope},
	{"attachment-1MB", benchAttachmentEnvelope},
}

func BenchmarkParse(b *testing.B) {
	for _, bc := range benchCases {
		body := bc.body()
		b.Run(bc.name, func(b *testing.B) {
			var e Envelope
			lim := DefaultLimits()
			if err := e.Parse(body, &lim); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if err := e.Parse(body, &lim); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSplit measures writing one envelope per class (AppendClass into a
// reused buffer), after the parse.
func BenchmarkSplit(b *testing.B) {
	for _, bc := range benchCases {
		body := bc.body()
		e, err := Parse(body)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(bc.name+"/AppendClass", func(b *testing.B) {
			var dst []byte
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				for c := range e.Classes().All() {
					dst = e.AppendClass(dst[:0], c)
				}
			}
		})
		b.Run(bc.name+"/Split", func(b *testing.B) {
			var dst []byte
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				e.Split(func(_ Class, part *Envelope) {
					dst = part.AppendTo(dst[:0])
				})
			}
		})
	}
}

// BenchmarkParseAndSplit is the ingest path: parse, then one envelope per
// class.
func BenchmarkParseAndSplit(b *testing.B) {
	for _, bc := range benchCases {
		body := bc.body()
		b.Run(bc.name, func(b *testing.B) {
			var e Envelope
			var dst []byte
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if err := e.Parse(body, nil); err != nil {
					b.Fatal(err)
				}
				for c := range e.Classes().All() {
					dst = e.AppendClass(dst[:0], c)
				}
			}
		})
	}
}

// BenchmarkScanHeader compares the header scanner (validation plus key
// extraction) with json.Valid alone on a typical envelope header line.
func BenchmarkScanHeader(b *testing.B) {
	body := benchErrorEnvelope()
	line := body[:bytes.IndexByte(body, '\n')]
	b.Run("objIter", func(b *testing.B) {
		b.SetBytes(int64(len(line)))
		b.ReportAllocs()
		for b.Loop() {
			var it objIter
			if it.init(line, 0) != nil {
				b.Fatal("init")
			}
			n := 0
			for it.next() {
				if headerKey(&it) != "" {
					n++
				}
			}
			if it.err != nil || n != 2 {
				b.Fatal(it.err, n)
			}
		}
	})
	b.Run("json.Valid", func(b *testing.B) {
		b.SetBytes(int64(len(line)))
		b.ReportAllocs()
		for b.Loop() {
			if !json.Valid(line) {
				b.Fatal("invalid")
			}
		}
	})
}

func BenchmarkFromStore(b *testing.B) {
	body := benchErrorEnvelope()
	event := body[bytes.LastIndexByte(body[:len(body)-1], '\n')+1:]
	var dst []byte
	b.ReportAllocs()
	b.SetBytes(int64(len(event)))
	for b.Loop() {
		var err error
		if dst, _, err = FromStore(dst[:0], event); err != nil {
			b.Fatal(err)
		}
	}
}
