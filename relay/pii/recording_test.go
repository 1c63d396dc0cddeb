package pii

import (
	"bytes"
	"compress/zlib"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
)

func recConfig(t *testing.T, settings DataScrubbingSettings, piiConfig string) *Config {
	t.Helper()
	c, err := Compile(settings, []byte(piiConfig))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func zlibOf(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := zlib.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

// unrecording is the rrweb JSON of a scrubbed (zlib-compressed) payload.
func unrecording(t *testing.T, payload []byte) string {
	t.Helper()
	nl := bytes.IndexByte(payload, '\n')
	zr, err := zlib.NewReader(bytes.NewReader(payload[nl+1:]))
	if err != nil {
		t.Fatalf("output is not zlib: %v", err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return string(payload[:nl+1]) + string(b)
}

const (
	recHeader = `{"segment_id":3}` + "\n"
	// A snapshot with an email in a text node and an attribute, an
	// input, and custom events: a breadcrumb whose message and data hold
	// an email, a span whose description holds an IP and whose request
	// body has an api_key (Relay's rrweb-request fixture's shape).
	recSample = `[{"type":2,"timestamp":1,"data":{"node":{"type":0,"id":1,"childNodes":[{"type":2,"id":2,"tagName":"p","attributes":{"title":"jane@example.com"},"childNodes":[{"type":3,"id":3,"textContent":"mail jane@example.com"}]}]},"initialOffset":{"left":0,"top":0}}},` +
		`{"type":3,"timestamp":2,"data":{"source":5,"id":4,"text":"jane@example.com","isChecked":false}},` +
		`{"type":5,"timestamp":3,"data":{"tag":"breadcrumb","payload":{"type":"default","category":"ui.click","message":"jane@example.com","data":{"to":"jane@example.com","nested":["x jane@example.com"]}}}},` +
		`{"type":5,"timestamp":4,"data":{"tag":"performanceSpan","payload":{"op":"resource.fetch","description":"https://sentry.io?ip-address=10.0.0.1","startTimestamp":1,"endTimestamp":2,"data":{"method":"POST","request":{"body":{"api_key":"secret-value"}}}}}}]`
)

// Only custom events (type 5) are scrubbed, and in them only what is
// under data.payload.description and data.payload.data, as Relay.
func TestScrubRecordingFields(t *testing.T) {
	c := recConfig(t, DataScrubbingSettings{ScrubData: true, ScrubDefaults: true, ScrubIPAddresses: true},
		`{"applications":{"$string":["@email"]}}`)
	want := strings.NewReplacer(
		`"to":"jane@example.com"`, `"to":"[email]"`,
		`"x jane@example.com"`, `"x [email]"`,
		`ip-address=10.0.0.1`, `ip-address=[ip]`,
		`"api_key":"secret-value"`, `"api_key":"[Filtered]"`,
	).Replace(recSample)
	for name, body := range map[string][]byte{"plain": []byte(recSample), "zlib": zlibOf(t, []byte(recSample))} {
		t.Run(name, func(t *testing.T) {
			in := append([]byte(recHeader), body...)
			out, changed, err := c.ScrubRecording([]byte("prefix"), in, 1<<20)
			if err != nil || !changed {
				t.Fatalf("changed %v, err %v", changed, err)
			}
			if !bytes.HasPrefix(out, []byte("prefix"+recHeader)) {
				t.Fatalf("header not kept: %.40q", out)
			}
			if got := unrecording(t, out[len("prefix"):]); got != recHeader+want {
				t.Errorf("got  %s\nwant %s", got, recHeader+want)
			}
		})
	}
}

// Nothing matched: the payload is to be forwarded as it is.
func TestScrubRecordingUnchanged(t *testing.T) {
	c := recConfig(t, DataScrubbingSettings{}, `{"applications":{"$string":["@creditcard"]}}`)
	for _, body := range [][]byte{[]byte(recSample), zlibOf(t, []byte(recSample))} {
		in := append([]byte(recHeader), body...)
		out, changed, err := c.ScrubRecording(nil, in, 1<<20)
		if err != nil || changed || out != nil {
			t.Errorf("changed %v, err %v, out %d bytes", changed, err, len(out))
		}
	}
	var none *Config
	if _, changed, err := none.ScrubRecording(nil, []byte(recHeader+recSample), 1<<20); changed || err != nil {
		t.Errorf("nil config: changed %v, err %v", changed, err)
	}
}

// Recordings Relay cannot read are errors (the replay is dropped).
func TestScrubRecordingInvalid(t *testing.T) {
	c := recConfig(t, DataScrubbingSettings{}, `{"applications":{"$string":["@email"]}}`)
	big := zlibOf(t, []byte(`[`+strings.Repeat(`{"type":4,"timestamp":1,"data":{}},`, 100)+`{"type":4,"timestamp":1,"data":{}}]`))
	for name, in := range map[string]string{
		"empty":         "",
		"no body":       recHeader,
		"no newline":    `{"segment_id":3}`,
		"not zlib":      recHeader + "\x16garbage",
		"gzip":          recHeader + "\x1f\x8b\x08\x00\x00\x00\x00\x00",
		"not json":      recHeader + `[{"type":5,`,
		"not an array":  recHeader + `{"type":5}`,
		"no type":       recHeader + `[{"timestamp":1}]`,
		"string type":   recHeader + `[{"type":"5"}]`,
		"type too big":  recHeader + `[{"type":256}]`,
		"not an object": recHeader + `[5]`,
		"not utf-8":     recHeader + "[{\"type\":4,\"data\":\"\xff\"}]",
		"over limit":    recHeader + string(big),
	} {
		_, _, err := c.ScrubRecording(nil, []byte(in), 1000)
		if !errors.Is(err, ErrInvalidRecording) {
			t.Errorf("%s: err %v", name, err)
		}
	}
	if _, _, err := c.ScrubRecording(nil, append([]byte(recHeader), big...), 1<<20); err != nil {
		t.Errorf("under the limit: %v", err)
	}
}

// A removed string becomes "".
func TestScrubRecordingRemove(t *testing.T) {
	c := recConfig(t, DataScrubbingSettings{}, `{"applications":{"$string":["@email:remove"]}}`)
	in := recHeader + `[{"type":5,"data":{"payload":{"data":{"to":"jane@example.com"}}}}]`
	out, changed, err := c.ScrubRecording(nil, []byte(in), 1<<20)
	if err != nil || !changed {
		t.Fatalf("changed %v, err %v", changed, err)
	}
	if got, want := unrecording(t, out), recHeader+`[{"type":5,"data":{"payload":{"data":{"to":""}}}}]`; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

// A ~1 MB recording (zlib) of snapshots and custom events, one email in
// every custom event: decompress, walk, rewrite, recompress.
func BenchmarkScrubRecording(b *testing.B) {
	c, err := Compile(DataScrubbingSettings{ScrubData: true, ScrubDefaults: true}, []byte(`{"applications":{"$string":["@email"]}}`))
	if err != nil {
		b.Fatal(err)
	}
	var sb strings.Builder
	sb.WriteString("[")
	for i := 0; sb.Len() < 1<<20; i++ {
		if i > 0 {
			sb.WriteString(",")
		}
		if i%4 == 3 {
			fmt.Fprintf(&sb, `{"type":5,"timestamp":%d,"data":{"tag":"breadcrumb","payload":{"type":"default","category":"ui.click","message":"clicked %d","data":{"to":"user%d@example.com","path":"body > div#app > button.submit"}}}}`, i, i, i)
		} else {
			fmt.Fprintf(&sb, `{"type":3,"timestamp":%d,"data":{"source":0,"texts":[],"attributes":[],"removes":[],"adds":[{"parentId":%d,"nextId":null,"node":{"type":2,"id":%d,"tagName":"div","attributes":{"class":"row item-%d"},"childNodes":[{"type":3,"id":%d,"textContent":"Row number %d of the table"}]}}]}}`, i, i, i+1, i, i+2, i)
		}
	}
	sb.WriteString("]")
	var buf bytes.Buffer
	w := zlib.NewWriter(&buf)
	w.Write([]byte(sb.String()))
	w.Close()
	in := append([]byte(recHeader), buf.Bytes()...)
	b.SetBytes(int64(sb.Len()))
	b.ReportAllocs()
	var dst []byte
	for b.Loop() {
		out, changed, err := c.ScrubRecording(dst[:0], in, 10<<20)
		if err != nil || !changed {
			b.Fatal(changed, err)
		}
		dst = out
	}
}

// Any payload: no panic, an error is ErrInvalidRecording, and a changed
// recording is zlib that inflates to JSON of the same number of events.
func FuzzScrubRecording(f *testing.F) {
	f.Add([]byte(recHeader + recSample))
	f.Add([]byte(recHeader + `[{"type":5,"data":{"payload":{"description":"a@b.co \u00e9\ud83d\ude00"}}}]`))
	f.Add([]byte(recHeader + `[]`))
	c, err := Compile(DataScrubbingSettings{ScrubData: true, ScrubDefaults: true}, []byte(`{"applications":{"$string":["@email","@ip"]}}`))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		out, changed, err := c.ScrubRecording(nil, in, 1<<16)
		if err != nil {
			if !errors.Is(err, ErrInvalidRecording) {
				t.Fatalf("err %v", err)
			}
			return
		}
		if !changed {
			return
		}
		nl := bytes.IndexByte(out, '\n')
		zr, err := zlib.NewReader(bytes.NewReader(out[nl+1:]))
		if err != nil {
			t.Fatal(err)
		}
		js, err := io.ReadAll(zr)
		if err != nil {
			t.Fatal(err)
		}
		var events []json.RawMessage
		if err := json.Unmarshal(js, &events); err != nil {
			t.Fatalf("rewritten recording is not a JSON array: %v\n%s", err, js)
		}
	})
}
