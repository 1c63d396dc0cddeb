package envelope

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"encoding/base64"
	"encoding/json"
	"errors"
	"mime/multipart"
	"net/textproto"
	"strings"
	"testing"
)

func mustParse(t *testing.T, b []byte) *Envelope {
	t.Helper()
	e, err := Parse(b)
	if err != nil {
		t.Fatalf("Parse: %v\n%s", err, clip(b))
	}
	return e
}

func zlibBytes(b []byte) []byte {
	var buf bytes.Buffer
	w := zlib.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

func gzipBytes(b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

func TestFromStore(t *testing.T) {
	const event = `{"event_id":"9ec79c33-ec99-42ab-8353-589fcb2e04dc","message":"hi","level":"error"}`
	f := func(name string, body []byte, wantType ItemType, wantPayload string) {
		t.Helper()
		env, id, err := FromStore([]byte("keep"), body)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !bytes.HasPrefix(env, []byte("keep")) {
			t.Fatalf("%s: dst not kept", name)
		}
		e := mustParse(t, env[4:])
		if len(e.Items) != 1 || e.Items[0].Type != wantType || string(e.Items[0].Payload) != wantPayload {
			t.Fatalf("%s: items %+v", name, e.Items)
		}
		if e.Header.EventID != id || id.IsZero() {
			t.Fatalf("%s: id %v header %v", name, id, e.Header.EventID)
		}
	}
	f("plain", []byte(event), ItemEvent, event)
	f("surrounding whitespace", []byte("\n "+event+"\n"), ItemEvent, event)
	f("base64", []byte(base64.StdEncoding.EncodeToString([]byte(event))), ItemEvent, event)
	f("base64 zlib (raven)", []byte(base64.StdEncoding.EncodeToString(zlibBytes([]byte(event)))), ItemEvent, event)
	f("raw zlib", zlibBytes([]byte(event)), ItemEvent, event)
	f("transaction", []byte(`{"type":"transaction","spans":[]}`), ItemTransaction, `{"type":"transaction","spans":[]}`)
	f("csp", []byte(`{"type":"csp"}`), ItemSecurity, `{"type":"csp"}`)
	f("feedback", []byte(`{"type":"feedback"}`), ItemFeedback, `{"type":"feedback"}`)
	f("default", []byte(`{"type":"default"}`), ItemEvent, `{"type":"default"}`)
	f("python NaN", []byte(`{"extra":{"a":NaN,"b":-Infinity,"c":[Infinity],"s":"NaN \" Infinity"}}`), ItemEvent,
		`{"extra":{"a":null,"b":null,"c":[null],"s":"NaN \" Infinity"}}`)

	// The event's id is kept.
	_, id, _ := FromStore(nil, []byte(event))
	if id.String() != "9ec79c33ec9942ab8353589fcb2e04dc" {
		t.Errorf("id %v", id)
	}
	// A generated id when the event has none.
	_, id1, _ := FromStore(nil, []byte(`{"event_id":null}`))
	_, id2, _ := FromStore(nil, []byte(`{}`))
	if id1.IsZero() || id2.IsZero() || id1 == id2 {
		t.Errorf("generated ids %v %v", id1, id2)
	}

	// An envelope body passes through (an id is added when needed).
	envBody := []byte("{}\n{\"type\":\"attachment\"}\nabc\n{\"type\":\"session\"}\n{}")
	env, id, err := FromStore(nil, envBody)
	if err != nil {
		t.Fatal(err)
	}
	e := mustParse(t, env)
	if len(e.Items) != 2 || e.Header.EventID != id || id.IsZero() {
		t.Errorf("envelope body: %v %d items", id, len(e.Items))
	}
	env, id, err = FromStore(nil, []byte("{\"event_id\":\"9ec79c33ec9942ab8353589fcb2e04dc\"}\n{\"type\":\"event\"}\n{}\n"))
	if err != nil || id.String() != "9ec79c33ec9942ab8353589fcb2e04dc" || !bytes.HasPrefix(env, []byte(`{"event_id":"9ec79c33ec9942ab8353589fcb2e04dc"}`)) {
		t.Errorf("envelope body with id: %v %v %q", err, id, env)
	}

	bad := func(name string, body []byte, target error) {
		t.Helper()
		_, _, err := FromStore(nil, body)
		var pe *ParseError
		if !errors.Is(err, target) || !errors.As(err, &pe) {
			t.Errorf("%s: error %v, want %v", name, err, target)
		}
	}
	bad("empty", nil, ErrInvalid)
	bad("blank", []byte(" \n"), ErrInvalid)
	bad("invalid JSON", []byte(`{"a":}`), ErrInvalid)
	bad("array", []byte(`[1]`), ErrInvalid)
	bad("not base64", []byte(`hello world`), ErrInvalid)
	bad("base64 of garbage", []byte(base64.StdEncoding.EncodeToString([]byte("garbage"))), ErrInvalid)
	bad("invalid event_id", []byte(`{"event_id":"nope"}`), ErrInvalid)
	bad("event_id not a string", []byte(`{"event_id":5}`), ErrInvalid)
	bad("too large", []byte(`{"x":"`+strings.Repeat("a", mib)+`"}`), ErrTooLarge)
	bad("zlib bomb", []byte(base64.StdEncoding.EncodeToString(zlibBytes([]byte(`{"x":"`+strings.Repeat("a", 2*mib)+`"}`)))), ErrTooLarge)
	bad("bad envelope", []byte("{}\n{\"type\":\"attachment\",\"length\":99}\nabc"), ErrInvalid)
}

func TestFromNEL(t *testing.T) {
	body := []byte(`[{"age":0,"type":"network-error","url":"https://example.com/","body":{"type":"http.error","status_code":500}},
 {"age":1,"type":"network-error","url":"https://example.com/x","body":{"type":"dns.name_not_resolved"}}]`)
	env, err := FromNEL(nil, body)
	if err != nil {
		t.Fatal(err)
	}
	e := mustParse(t, env)
	if len(e.Items) != 2 || e.Header.EventID.IsZero() {
		t.Fatalf("%d items", len(e.Items))
	}
	for _, it := range e.Items {
		if it.Type != ItemNEL || it.Class != ClassSecurity || it.ContentType != ContentTypeJSON || !json.Valid(it.Payload) {
			t.Errorf("item %+v", itemSummary(&it))
		}
	}
	if !bytes.Contains(body, e.Items[1].Payload) {
		t.Error("report bytes changed")
	}
	if env, err := FromNEL(nil, []byte(` [ ] `)); err != nil || len(mustParse(t, env).Items) != 0 {
		t.Errorf("empty list: %v", err)
	}
	for _, b := range []string{``, `{}`, `[1,]`, `nope`} {
		if _, err := FromNEL(nil, []byte(b)); !errors.Is(err, ErrInvalid) {
			t.Errorf("FromNEL(%q) = %v", b, err)
		}
	}
}

func TestFromSecurityReportHeaders(t *testing.T) {
	env, err := FromSecurityReport(nil, []byte(`{"csp-report":{}}`), "", "")
	if err != nil {
		t.Fatal(err)
	}
	e := mustParse(t, env)
	if _, ok := HeaderField(e.Items[0].Header, "sentry_release"); ok {
		t.Error("empty release written")
	}
	env, _ = FromSecurityReport(nil, []byte(`{}`), "a\"b", "")
	if v, _ := HeaderField(mustParse(t, env).Items[0].Header, "sentry_release"); string(v) != `"a\"b"` {
		t.Errorf("release %s", v)
	}
	if _, err := FromSecurityReport(nil, []byte("  "), "", ""); !errors.Is(err, ErrInvalid) {
		t.Error("empty report accepted")
	}
	if _, err := FromSecurityReport(nil, []byte(`"`+strings.Repeat("a", mib)+`"`), "", ""); !errors.Is(err, ErrTooLarge) {
		t.Error("huge report accepted")
	}
}

// A Reporting API batch becomes one envelope per report, each with its own
// event id and the report alone, whatever its type (processing judges
// each); a single report or list of one stays one envelope as it came.
func TestFromSecurityReports(t *testing.T) {
	csp := func(u string) string {
		return `{"type":"csp-violation","url":"` + u + `","body":{"documentURL":"` + u + `","effectiveDirective":"img-src"}}`
	}
	dep := `{"type":"deprecation","body":{}}`
	batch := "[" + csp("https://a/1") + ` , ` + dep + `,` + "\n" + csp("https://a/2") + "," + csp("https://a/3") + "]"
	want := []string{csp("https://a/1"), dep, csp("https://a/2"), csp("https://a/3")}
	out, ends, err := FromSecurityReports([]byte("x"), []byte(batch), "r1", "", 4, []int{7})
	if err != nil {
		t.Fatal(err)
	}
	if len(ends) != 5 || ends[0] != 7 || ends[4] != len(out) || string(out[:1]) != "x" {
		t.Fatalf("ends %v over %d bytes", ends, len(out))
	}
	ids := map[EventID]bool{}
	for i, start := 1, 1; i < len(ends); i++ {
		e := mustParse(t, out[start:ends[i]])
		start = ends[i]
		ids[e.Header.EventID] = true
		if len(e.Items) != 1 || e.Items[0].TypeName != "raw_security" || string(e.Items[0].Payload) != want[i-1] {
			t.Errorf("envelope %d: %d items, first %s %s", i, len(e.Items), e.Items[0].TypeName, e.Items[0].Payload)
		}
		if v, _ := HeaderField(e.Items[0].Header, "sentry_release"); string(v) != `"r1"` {
			t.Errorf("envelope %d: release %s", i, v)
		}
	}
	if len(ids) != 4 || ids[EventID{}] {
		t.Errorf("event ids %v: want 4 distinct", ids)
	}
	for _, one := range []string{csp("https://a/1"), "[" + csp("https://a/1") + "]", `{"csp-report":{}}`} {
		out, ends, err := FromSecurityReports(nil, []byte(one), "", "", 1, nil)
		if err != nil || len(ends) != 1 || string(mustParse(t, out).Items[0].Payload) != one {
			t.Errorf("%s: %v %v", one, ends, err)
		}
	}
	// A batch without a CSP report is converted too: its reports are
	// dropped with an outcome when processed, as Relay drops them.
	if _, ends, err := FromSecurityReports(nil, []byte(`[{"type":"deprecation"},{"type":"intervention"}]`), "", "", 0, nil); err != nil || len(ends) != 2 {
		t.Errorf("batch without a CSP report: %d envelopes, %v; want 2", len(ends), err)
	}
	if _, _, err := FromSecurityReports(nil, []byte(`[1,`), "", "", 0, nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("broken batch: %v", err)
	}
}

// A batch of more reports than max is refused before any is converted:
// tiny reports would otherwise grow the output several times the body's
// size (some 150 bytes of headers each) before a caller could count them.
func TestFromSecurityReportsMax(t *testing.T) {
	reports := make([]string, 5000)
	for i := range reports {
		reports[i] = `{"type":"csp-violation"}`
	}
	reports[0] = `{"type":"deprecation"}`
	body := []byte("[" + strings.Join(reports, ",") + "]")
	out, ends, err := FromSecurityReports([]byte("x"), body, "", "", 100, []int{1})
	var le *LimitError
	if !errors.Is(err, ErrTooLarge) || !errors.As(err, &le) || le.Size != 5000 || le.Max != 100 {
		t.Fatalf("5000 reports, max 100: %v; want ErrTooLarge naming 5000 of 100", err)
	}
	if string(out) != "x" || len(ends) != 1 {
		t.Errorf("refused batch appended %d bytes, %d ends; want nothing", len(out)-1, len(ends)-1)
	}
	// Exactly max is converted; every report counts.
	_, ends, err = FromSecurityReports(nil, []byte(`[{"type":"deprecation"},{"type":"csp-violation"}]`), "", "", 2, nil)
	if err != nil || len(ends) != 2 {
		t.Errorf("two reports, max 2: %d envelopes, %v", len(ends), err)
	}
	if _, _, err = FromSecurityReports(nil, []byte(`[{"type":"deprecation"},{"type":"csp-violation"}]`), "", "", 1, nil); !errors.Is(err, ErrTooLarge) {
		t.Errorf("two reports, max 1: %v; want ErrTooLarge", err)
	}
}

// Reports are classified as Relay's SecurityReportType::from_json infers
// them, which decides the outcome of the ones Relay drops.
func TestClassifySecurityReport(t *testing.T) {
	for _, c := range []struct {
		in   string
		want SecurityReportKind
	}{
		{`{"csp-report":{"document-uri":"https://a"}}`, ReportCSP},
		{`{"type":"csp-violation","body":{}}`, ReportCSP},
		{`[{"type":"csp-violation","body":{}}]`, ReportCSP},
		{`{"type":"deprecation","body":{"id":"x"}}`, ReportUnsupported},
		{`{"type":"intervention"}`, ReportUnsupported},
		{`{"known-pins":[],"hostname":"a"}`, ReportHPKP},
		{`{"expect-staple-report":{}}`, ReportExpectStaple},
		{`{"expect-ct-report":{}}`, ReportExpectCT},
		{`{"csp-report":null,"expect-ct-report":{}}`, ReportExpectCT},
		{`{"type":null}`, ReportUnknown},
		{`{"hello":"world"}`, ReportUnknown},
		{`1`, ReportInvalidJSON},
		{`"csp"`, ReportInvalidJSON},
		{`{"type":5}`, ReportInvalidJSON},
		{`{`, ReportInvalidJSON},
		{``, ReportInvalidJSON},
	} {
		if got := ClassifySecurityReport([]byte(c.in)); got != c.want {
			t.Errorf("%s: %d, want %d", c.in, got, c.want)
		}
	}
}

type formPart struct {
	field, filename, contentType string
	data                         []byte
}

func multipartBody(t *testing.T, parts ...formPart) (string, []byte) {
	t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	for _, p := range parts {
		h := textproto.MIMEHeader{}
		cd := `form-data; name="` + p.field + `"`
		if p.filename != "" {
			cd += `; filename="` + p.filename + `"`
		}
		h.Set("Content-Disposition", cd)
		if p.contentType != "" {
			h.Set("Content-Type", p.contentType)
		}
		pw, err := w.CreatePart(h)
		if err != nil {
			t.Fatal(err)
		}
		pw.Write(p.data)
	}
	w.Close()
	return w.FormDataContentType(), buf.Bytes()
}

var testDump = append([]byte("MDMP\x93\xa7\x00\x00"), bytes.Repeat([]byte{0, 1, '\n', 3}, 100)...)

func TestFromMinidumpRaw(t *testing.T) {
	for _, ct := range []string{"application/octet-stream", "application/x-dmp", "Application/X-DMP; charset=binary"} {
		env, id, err := FromMinidump(nil, ct, testDump)
		if err != nil {
			t.Fatalf("%s: %v", ct, err)
		}
		e := mustParse(t, env)
		it := &e.Items[0]
		if len(e.Items) != 1 || it.Type != ItemAttachment || it.AttachmentType != AttachmentTypeMinidump ||
			it.Filename != "Minidump" || it.ContentType != ContentTypeMinidump || !bytes.Equal(it.Payload, testDump) {
			t.Fatalf("%s: item %+v", ct, itemSummary(it))
		}
		if e.Header.EventID != id || id.IsZero() || it.Class != ClassError || !e.HasEvent() {
			t.Fatalf("%s: id %v class %v", ct, id, it.Class)
		}
	}
	// Compressed dumps are unwrapped. The standard library has no bzip2
	// writer: this is `printf MDMPxxxxxx | bzip2 -9`.
	bz := []byte{0x42, 0x5a, 0x68, 0x39, 0x31, 0x41, 0x59, 0x26, 0x53, 0x59, 0x85, 0x8f,
		0x88, 0xd9, 0x00, 0x00, 0x01, 0x46, 0x80, 0x10, 0x00, 0x04, 0x02, 0x40,
		0x00, 0x00, 0x40, 0x20, 0x00, 0x30, 0xcd, 0x00, 0xc3, 0x46, 0x29, 0x47,
		0xb8, 0xbb, 0x92, 0x29, 0xc2, 0x84, 0x84, 0x2c, 0x7c, 0x46, 0xc8}
	for name, c := range map[string]struct{ body, want []byte }{
		"gzip":  {gzipBytes(testDump), testDump},
		"zlib":  {zlibBytes(testDump), testDump},
		"bzip2": {bz, []byte("MDMPxxxxxx")},
	} {
		env, _, err := FromMinidump(nil, "application/octet-stream", c.body)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !bytes.Equal(mustParse(t, env).Items[0].Payload, c.want) {
			t.Errorf("%s: dump not unwrapped", name)
		}
	}
	bad := func(name string, body []byte, target error) {
		t.Helper()
		if _, _, err := FromMinidump(nil, "application/octet-stream", body); !errors.Is(err, target) {
			t.Errorf("%s: %v, want %v", name, err, target)
		}
	}
	bad("no magic", []byte("XXXXhello"), ErrInvalid)
	bad("gzip of garbage", gzipBytes([]byte("garbage")), ErrInvalid)
	bad("broken gzip", gzipBytes(testDump)[:20], ErrInvalid)
	bad("zstd", []byte{0x28, 0xb5, 0x2f, 0xfd, 1, 2, 3}, ErrInvalid)
	bad("xz", []byte{0xfd, '7', 'z', 'X', 'Z', 0, 1}, ErrInvalid)
	if _, _, err := FromMinidumpOptions(nil, "application/octet-stream", gzipBytes(append(testDump, make([]byte, 2000)...)),
		&MinidumpOptions{Limits: &Limits{MaxAttachmentSize: 1000}}); !errors.Is(err, ErrTooLarge) {
		t.Errorf("decompression bomb: %v", err)
	}
	// A decompressor for formats the standard library lacks.
	opts := &MinidumpOptions{Decompress: func(format string, data []byte, max int) ([]byte, error) {
		if format != "zstd" {
			t.Errorf("format %s", format)
		}
		return testDump, nil
	}}
	if _, _, err := FromMinidumpOptions(nil, "application/x-dmp", []byte{0x28, 0xb5, 0x2f, 0xfd, 1}, opts); err != nil {
		t.Error(err)
	}
	if _, _, err := FromMinidump(nil, "text/plain", testDump); !errors.Is(err, ErrInvalid) {
		t.Error("text/plain accepted")
	}
}

func TestFromMinidumpMultipart(t *testing.T) {
	ct, body := multipartBody(t,
		formPart{field: "sentry", data: []byte(`{"event_id":"9ec79c33ec9942ab8353589fcb2e04dc","release":"app@1","tags":{"a":"1"},"n":1.50}`)},
		formPart{field: "sentry[tags][b]", data: []byte("2")},
		formPart{field: "sentry[user][id]", data: []byte("u<1>")},
		formPart{field: "prod", data: []byte("crashpad")},
		formPart{field: "sentry___extra", data: []byte(`{"contexts":{"os":{"name":"Linux"}}}`)},
		formPart{field: "upload_file_minidump", filename: "crash.dmp.gz", contentType: "application/octet-stream", data: gzipBytes(testDump)},
		formPart{field: "log", filename: `C:\logs\app.log`, contentType: "text/plain", data: []byte("line1\nline2")},
		formPart{field: "__sentry-breadcrumb1", filename: "b1", data: []byte{0x90}},
	)
	env, id, err := FromMinidump(nil, ct, body)
	if err != nil {
		t.Fatal(err)
	}
	if id.String() != "9ec79c33ec9942ab8353589fcb2e04dc" {
		t.Errorf("id %v", id)
	}
	e := mustParse(t, env)
	if e.Header.EventID != id || len(e.Items) != 4 {
		t.Fatalf("%d items: %s", len(e.Items), clip(env))
	}
	ev := &e.Items[0]
	if ev.Type != ItemEvent || ev.Class != ClassError {
		t.Fatalf("first item %+v", itemSummary(ev))
	}
	var event map[string]any
	if err := json.Unmarshal(ev.Payload, &event); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"event_id": "9ec79c33ec9942ab8353589fcb2e04dc", "release": "app@1", "n": 1.5,
		"tags":     map[string]any{"a": "1", "b": "2"},
		"user":     map[string]any{"id": "u<1>"},
		"extra":    map[string]any{"prod": "crashpad"},
		"contexts": map[string]any{"os": map[string]any{"name": "Linux"}},
	}
	if got, _ := json.Marshal(event); string(got) != string(mustJSON(want)) {
		t.Errorf("event %s\nwant  %s", got, mustJSON(want))
	}
	if !bytes.Contains(ev.Payload, []byte(`"n":1.50`)) || !bytes.Contains(ev.Payload, []byte(`u<1>`)) {
		t.Errorf("numbers or HTML characters re-encoded: %s", ev.Payload)
	}
	dump := &e.Items[1]
	if dump.AttachmentType != AttachmentTypeMinidump || dump.Filename != "crash.dmp" || dump.ContentType != ContentTypeMinidump ||
		!bytes.Equal(dump.Payload, testDump) || dump.Class != ClassError {
		t.Errorf("dump %+v", itemSummary(dump))
	}
	log := &e.Items[2]
	if log.Filename != `C:\logs\app.log` || log.AttachmentType != AttachmentTypeAttachment || string(log.Payload) != "line1\nline2" || log.Class != ClassError {
		t.Errorf("log %+v", itemSummary(log))
	}
	if e.Items[3].AttachmentType != AttachmentTypeBreadcrumbs {
		t.Errorf("breadcrumbs %+v", itemSummary(&e.Items[3]))
	}
	checkSplit(t, e)
}

func mustJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}

func TestFromMinidumpMultipartVariants(t *testing.T) {
	// sentry[event_id] and chunked sentry__N fields.
	ct, body := multipartBody(t,
		formPart{field: "sentry__2", data: []byte(`"b"}`)},
		formPart{field: "sentry__1", data: []byte(`{"release":`)},
		formPart{field: "sentry[event_id]", data: []byte("9ec79c33-ec99-42ab-8353-589fcb2e04dc")},
		formPart{field: "upload_file_minidump", filename: "m", data: testDump},
	)
	env, id, err := FromMinidump(nil, ct, body)
	if err != nil || id.String() != "9ec79c33ec9942ab8353589fcb2e04dc" {
		t.Fatalf("%v %v", err, id)
	}
	e := mustParse(t, env)
	if !bytes.Contains(e.Items[0].Payload, []byte(`"release":"b"`)) {
		t.Errorf("chunks not merged: %s", e.Items[0].Payload)
	}

	// Only the dump: no event item, a random id.
	ct, body = multipartBody(t, formPart{field: "upload_file_minidump", filename: "m", data: testDump})
	env, id, err = FromMinidump(nil, ct, body)
	if err != nil || id.IsZero() || len(mustParse(t, env).Items) != 1 {
		t.Fatalf("dump only: %v", err)
	}

	// A msgpack event payload: its id wins, the fields stay form_data.
	msgpackEvent := append([]byte{0x82, 0xa5}, "level"...)
	msgpackEvent = append(msgpackEvent, 0xa5)
	msgpackEvent = append(msgpackEvent, "error"...)
	msgpackEvent = append(msgpackEvent, 0xa8)
	msgpackEvent = append(msgpackEvent, "event_id"...)
	msgpackEvent = append(msgpackEvent, 0xd9, 32)
	msgpackEvent = append(msgpackEvent, "11111111222233334444555555555555"...)
	ct, body = multipartBody(t,
		formPart{field: "sentry", data: []byte(`{"event_id":"9ec79c33ec9942ab8353589fcb2e04dc"}`)},
		formPart{field: "__sentry-event", filename: "event.msgpack", data: msgpackEvent},
		formPart{field: "upload_file_minidump", filename: "m", data: testDump},
	)
	env, id, err = FromMinidump(nil, ct, body)
	if err != nil || id.String() != "11111111222233334444555555555555" {
		t.Fatalf("msgpack: %v %v", err, id)
	}
	e = mustParse(t, env)
	if e.Items[0].Type != ItemFormData || e.Items[1].AttachmentType != AttachmentTypeEventPayload {
		t.Fatalf("msgpack items: %+v %+v", itemSummary(&e.Items[0]), itemSummary(&e.Items[1]))
	}
	// Relay's form_data encoding: u32le length + bytes, key then value.
	fd := e.Items[0].Payload
	if fd[0] != 6 || string(fd[4:10]) != "sentry" {
		t.Errorf("form_data %q", fd)
	}
	for _, c := range e.Items {
		if c.Class != ClassError {
			t.Errorf("class %v for %s", c.Class, c.TypeName)
		}
	}

	// Nested multipart in the dump field (old Electron).
	innerCT, inner := multipartBody(t, formPart{field: "upload_file_minidump", filename: "x", data: testDump})
	_ = innerCT
	ct, body = multipartBody(t, formPart{field: "upload_file_minidump", filename: "m", data: inner})
	env, _, err = FromMinidump(nil, ct, body)
	if err != nil || !bytes.Equal(mustParse(t, env).Items[0].Payload, testDump) {
		t.Fatalf("nested multipart: %v", err)
	}

	bad := func(name string, parts ...formPart) {
		t.Helper()
		ct, body := multipartBody(t, parts...)
		if _, _, err := FromMinidump(nil, ct, body); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v", name, err)
		}
	}
	bad("no dump", formPart{field: "sentry", data: []byte(`{}`)})
	bad("dump without magic", formPart{field: "upload_file_minidump", filename: "m", data: []byte("nope")})
	bad("invalid sentry JSON", formPart{field: "sentry", data: []byte(`{`)}, formPart{field: "upload_file_minidump", filename: "m", data: testDump})
	bad("invalid sentry[event_id]", formPart{field: "sentry[event_id]", data: []byte(`x`)}, formPart{field: "upload_file_minidump", filename: "m", data: testDump})
	if _, _, err := FromMinidump(nil, "multipart/form-data; boundary=zzz", []byte("garbage")); !errors.Is(err, ErrInvalid) {
		t.Errorf("garbage multipart: %v", err)
	}
}

func TestMsgpackEventID(t *testing.T) {
	// {"a":[1,{"b":nil}],"event_id":nil}
	b := []byte{0x82, 0xa1, 'a', 0x92, 0x01, 0x81, 0xa1, 'b', 0xc0, 0xa8}
	b = append(b, "event_id"...)
	b = append(b, 0xc0)
	if id, err := eventIDFromMsgpack(b); err != nil || !id.IsZero() {
		t.Errorf("%v %v", id, err)
	}
	for _, bad := range [][]byte{nil, {0x91}, {0x81, 0xa1}, {0x81, 0xa8, 'e', 'v', 'e', 'n', 't', '_', 'i', 'd', 0x01}, {0x81, 0x01, 0xdd, 0xff, 0xff, 0xff, 0xff}} {
		if _, err := eventIDFromMsgpack(bad); err == nil {
			t.Errorf("accepted %x", bad)
		}
	}
}

func TestFromAttachments(t *testing.T) {
	id, _ := ParseEventID("9ec79c33ec9942ab8353589fcb2e04dc")
	ct, body := multipartBody(t,
		formPart{field: "file", filename: "a.txt", contentType: "text/plain", data: []byte("hello\nworld")},
		formPart{field: "blob", filename: "b.bin", data: []byte{0, 1, 2}},
		formPart{field: "note", data: []byte("x")},
	)
	env, err := FromAttachments(nil, id, ct, body)
	if err != nil {
		t.Fatal(err)
	}
	e := mustParse(t, env)
	if e.Header.EventID != id || len(e.Items) != 3 {
		t.Fatalf("%v %d items", e.Header.EventID, len(e.Items))
	}
	a, b, fd := &e.Items[0], &e.Items[1], &e.Items[2]
	if a.Filename != "a.txt" || a.ContentType != "text/plain" || string(a.Payload) != "hello\nworld" || a.AttachmentType != AttachmentTypeAttachment {
		t.Errorf("a %+v", itemSummary(a))
	}
	if b.ContentType != ContentTypeOctetStream || !bytes.Equal(b.Payload, []byte{0, 1, 2}) {
		t.Errorf("b %+v", itemSummary(b))
	}
	if fd.Type != ItemFormData || a.Class != ClassAttachment || fd.Class != ClassAttachment || e.HasEvent() {
		t.Errorf("form data %+v, classes %v", itemSummary(fd), e.Classes())
	}
	if _, err := FromAttachments(nil, id, "application/json", body); !errors.Is(err, ErrInvalid) {
		t.Errorf("non-multipart: %v", err)
	}
}
