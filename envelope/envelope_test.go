package envelope

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
)

const testHeader = `{"event_id":"9ec79c33ec9942ab8353589fcb2e04dc","dsn":"https://e12d836b15bb49d7bbf99e64295d995b@sentry.example/42"}`

type wantItem struct {
	typ     string
	payload string
	length  int // -1: header had none
}

func TestParseFraming(t *testing.T) {
	f := func(name, body string, want ...wantItem) {
		t.Helper()
		e, err := Parse([]byte(body))
		if err != nil {
			t.Fatalf("%s: Parse: %v", name, err)
		}
		if len(e.Items) != len(want) {
			t.Fatalf("%s: %d items, want %d", name, len(e.Items), len(want))
		}
		for i, w := range want {
			it := &e.Items[i]
			if it.TypeName != w.typ || string(it.Payload) != w.payload || it.Length != w.length {
				t.Fatalf("%s: item %d = %q %q length %d, want %q %q %d", name, i, it.TypeName, it.Payload, it.Length, w.typ, w.payload, w.length)
			}
		}
		checkRoundTrip(t, e, []byte(body))
	}

	f("header only", testHeader)
	f("header only with newline", testHeader+"\n")
	f("empty header", "{}")
	f("length with newlines inside",
		testHeader+"\n{\"type\":\"attachment\",\"length\":11}\nhello\nworld\n",
		wantItem{"attachment", "hello\nworld", 11})
	f("length, body without final newline",
		testHeader+"\n{\"type\":\"attachment\",\"length\":5}\nhello",
		wantItem{"attachment", "hello", 5})
	f("no length, runs to newline",
		testHeader+"\n{\"type\":\"event\"}\n{\"message\":\"hi\"}\n{\"type\":\"session\"}\n{\"sid\":\"x\"}\n",
		wantItem{"event", `{"message":"hi"}`, -1}, wantItem{"session", `{"sid":"x"}`, -1})
	f("no length, last payload at EOF",
		testHeader+"\n{\"type\":\"event\"}\n{\"message\":\"hi\"}",
		wantItem{"event", `{"message":"hi"}`, -1})
	f("no length, empty payload before next header",
		"{}\n{\"type\":\"attachment\"}\n\n{\"type\":\"attachment\"}\nx\n",
		wantItem{"attachment", "", -1}, wantItem{"attachment", "x", -1})
	f("zero length then next item (Relay's test)",
		testHeader+"\n{\"type\":\"attachment\",\"length\":0}\n\n{\"type\":\"attachment\",\"length\":0}\n",
		wantItem{"attachment", "", 0}, wantItem{"attachment", "", 0})
	f("zero length header at EOF",
		testHeader+"\n{\"type\":\"attachment\",\"length\":0}\n\n{\"type\":\"attachment\",\"length\":0}",
		wantItem{"attachment", "", 0}, wantItem{"attachment", "", 0})
	f("header without length at EOF",
		testHeader+"\n{\"type\":\"attachment\"}",
		wantItem{"attachment", "", -1})
	f("zero length attachment last, body ends after its header newline (node)",
		"{}\n{\"type\":\"event\"}\n{}\n{\"type\":\"attachment\",\"length\":0}\n",
		wantItem{"event", "{}", -1}, wantItem{"attachment", "", 0})
	f("mixed framing (node / browser)",
		"{\"sdk\":{\"name\":\"sentry.javascript.node\"}}\n{\"type\":\"event\"}\n{\"a\":1}\n{\"type\":\"attachment\",\"length\":3,\"filename\":\"a.txt\"}\n\x00\n\xff",
		wantItem{"event", `{"a":1}`, -1}, wantItem{"attachment", "\x00\n\xff", 3})
	f("binary payload with BOM and CRLF (Relay's test)",
		testHeader+"\n{\"type\":\"attachment\",\"length\":10,\"content_type\":\"text/plain\",\"filename\":\"hello.txt\"}\n\xef\xbb\xbfHello\r\n\n{\"type\":\"event\",\"length\":41}\n{\"message\":\"hello world\",\"level\":\"error\"}\n",
		wantItem{"attachment", "\xef\xbb\xbfHello\r\n", 10}, wantItem{"event", `{"message":"hello world","level":"error"}`, 41})
	f("blank lines and whitespace before headers",
		"\n  {}\n\n\n {\"type\":\"session\"}\n{}\n\n",
		wantItem{"session", "{}", -1})
	f("CRLF and spaces after a header",
		"{} \r\n{\"type\":\"session\"}\t\r\n{}\r\n",
		wantItem{"session", "{}\r", -1})
	f("length null means no length",
		"{}\n{\"type\":\"event\",\"length\":null}\n{}\n",
		wantItem{"event", "{}", -1})
	f("escaped keys and values are read",
		"{}\n{\"typ\\u0065\":\"ev\\u0065nt\",\"l\\u0065ngth\":2}\n{}\n",
		wantItem{"event", "{}", 2})
	f("multi-line header object (serde accepts it)",
		"{\n\"event_id\":\n\"9ec79c33ec9942ab8353589fcb2e04dc\"}\n{\"type\":\n\"event\"}\n{}\n",
		wantItem{"event", "{}", -1})
	f("unknown type kept",
		"{}\n{\"type\":\"future_thing\",\"length\":3,\"x\":{\"y\":[1,2]}}\nabc\n",
		wantItem{"future_thing", "abc", 3})
	f("alias types",
		"{}\n{\"type\":\"profile_chunk_ui\"}\n{}\n{\"type\":\"user_report_v2\"}\n{}\n",
		wantItem{"profile_chunk_ui", "{}", -1}, wantItem{"user_report_v2", "{}", -1})
}

func TestParseHeaderFields(t *testing.T) {
	body := `{"event_id":"d2c39c40-25c9-44c0-8f1b-6b2f0ad1e0c4","dsn":"http:\/\/a7c3e9f1b5d24680ace13579bdf02468@127.0.0.1:9001\/17","sent_at":"2026-11-24T18:18:21.422123456Z","sdk":{"name":"x"},"unknown":[1,{"a":null}]}` +
		"\n" + `{"type":"attachment","length":2,"content_type":"text/plain","filename":"a\"b.txt","attachment_type":"event.minidump","item_count":7,"zz":true}` + "\nab\n"
	e, err := Parse([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	h := e.Header
	if h.EventID.String() != "d2c39c4025c944c08f1b6b2f0ad1e0c4" {
		t.Errorf("event id %v", h.EventID)
	}
	if h.DSN != "http://a7c3e9f1b5d24680ace13579bdf02468@127.0.0.1:9001/17" {
		t.Errorf("dsn %q", h.DSN)
	}
	if h.SentAt != "2026-11-24T18:18:21.422123456Z" {
		t.Errorf("sent_at %q", h.SentAt)
	}
	if string(h.Raw) != body[:strings.IndexByte(body, '\n')] {
		t.Errorf("raw header %q", h.Raw)
	}
	it := e.Items[0]
	if it.ContentType != "text/plain" || it.Filename != `a"b.txt` || it.AttachmentType != "event.minidump" || it.ItemCount != 7 {
		t.Errorf("item fields %+v", itemSummary(&it))
	}
	if it.Class != ClassError || !e.HasEvent() || !e.NeedsEventID() {
		t.Errorf("minidump: class %v has event %v", it.Class, e.HasEvent())
	}
	if v, ok := HeaderField(h.Raw, "sdk"); !ok || string(v) != `{"name":"x"}` {
		t.Errorf("HeaderField(sdk) = %q %v", v, ok)
	}
	if _, ok := HeaderField(h.Raw, "name"); ok {
		t.Error("HeaderField found a nested key")
	}

	// Null and absent fields.
	e, err = Parse([]byte(`{"event_id":null,"dsn":null,"sent_at":null}`))
	if err != nil || !e.Header.EventID.IsZero() || e.Header.DSN != "" || e.Header.SentAt != "" {
		t.Errorf("null header fields: %v %+v", err, e)
	}
}

// TestAppendTo checks the exact re-framing: length added or fixed, every other
// header byte kept.
func TestAppendTo(t *testing.T) {
	f := func(in, want string) {
		t.Helper()
		e, err := Parse([]byte(in))
		if err != nil {
			t.Fatalf("Parse(%q): %v", in, err)
		}
		if got := string(e.AppendTo(nil)); got != want {
			t.Fatalf("AppendTo(%q) =\n%q\nwant\n%q", in, got, want)
		}
	}
	f("{}", "{}\n")
	f("  {\"a\" : 1 }  \n", "{\"a\" : 1 }\n")
	f("{}\n{\"type\":\"event\", \"x\":{\"y\":1} }\n{\"a\":1}",
		"{}\n{\"type\":\"event\", \"x\":{\"y\":1} ,\"length\":7}\n{\"a\":1}\n")
	f("{}\n{\"type\":\"attachment\",\"length\":3}\nabc",
		"{}\n{\"type\":\"attachment\",\"length\":3}\nabc\n")
	f("{}\n{\"length\":null,\"type\":\"event\"}\n{}\n",
		"{}\n{\"length\":2,\"type\":\"event\"}\n{}\n")
	f("{}\n{\"type\":\"attachment\"}",
		"{}\n{\"type\":\"attachment\",\"length\":0}\n\n")

	// A payload changed in code gets its length fixed.
	e, _ := Parse([]byte("{}\n{\"type\":\"attachment\",\"length\":3,\"filename\":\"x\"}\nabc\n"))
	e.Items[0].Payload = []byte("hello")
	if got, want := string(e.AppendTo(nil)), "{}\n{\"type\":\"attachment\",\"length\":5,\"filename\":\"x\"}\nhello\n"; got != want {
		t.Errorf("changed payload: %q, want %q", got, want)
	}
	// Items built in code get a header.
	e = &Envelope{Items: []Item{{Type: ItemAttachment, Payload: []byte("hi"), ContentType: "text/plain", Filename: "a.txt"}}}
	if got, want := string(e.AppendTo(nil)), "{}\n{\"type\":\"attachment\",\"length\":2,\"content_type\":\"text/plain\",\"filename\":\"a.txt\"}\nhi\n"; got != want {
		t.Errorf("synthesized: %q, want %q", got, want)
	}
}

func TestParseErrors(t *testing.T) {
	type check func(t *testing.T, err error)
	invalid := func(t *testing.T, err error) {
		t.Helper()
		if !errors.Is(err, ErrInvalid) || errors.Is(err, ErrTooLarge) {
			t.Fatalf("error %v is not ErrInvalid", err)
		}
	}
	tooLarge := func(limit string) check {
		return func(t *testing.T, err error) {
			t.Helper()
			var le *LimitError
			if !errors.Is(err, ErrTooLarge) || !errors.As(err, &le) || le.Limit != limit {
				t.Fatalf("error %v: want LimitError on %s", err, limit)
			}
		}
	}
	// marker: the offset is where "^" is in body; "^" itself is removed.
	f := func(name, marked string, lim *Limits, c check) {
		t.Helper()
		off := strings.IndexByte(marked, '^')
		body := strings.Replace(marked, "^", "", 1)
		var e Envelope
		err := e.Parse([]byte(body), lim)
		if err == nil {
			t.Fatalf("%s: no error", name)
		}
		var pe *ParseError
		if !errors.As(err, &pe) {
			t.Fatalf("%s: %T is not a *ParseError", name, err)
		}
		if pe.Offset != off {
			t.Fatalf("%s: offset %d, want %d (%v)", name, pe.Offset, off, err)
		}
		c(t, err)
	}

	f("empty body", "^", nil, invalid)
	f("whitespace only", "\n\n^", nil, invalid)
	f("header not an object", "^[1,2]\n", nil, invalid)
	f("header string", "^\"x\"", nil, invalid)
	f("invalid header JSON", "{\"a\":^}\n", nil, invalid)
	f("truncated header", "{\"a\":1^", nil, invalid)
	f("garbage after header", "{}^x\n", nil, invalid)
	f("item header not an object", "{}\n^[\"type\",\"event\"]\n{}\n", nil, invalid)
	f("invalid item header JSON", "{}\n{\"type\":\"event\",^}\n{}\n", nil, invalid)
	f("control character in string", "{}\n{\"type\":\"ev^\x01ent\"}\n{}\n", nil, invalid)
	f("invalid UTF-8 in header", "{}\n{\"type\":\"event\",\"x\":\"^\xff\"}\n{}\n", nil, invalid)
	f("missing type", "{}\n^{\"length\":2}\n{}\n", nil, invalid)
	f("type not a string", "{}\n{\"type\":^5}\n", nil, invalid)
	f("negative length", "{}\n{\"type\":\"event\",\"length\":^-1}\n{}\n", nil, invalid)
	f("fractional length", "{}\n{\"type\":\"event\",\"length\":^1.5}\n{}\n", nil, invalid)
	f("exponent length", "{}\n{\"type\":\"event\",\"length\":^1e2}\n{}\n", nil, invalid)
	f("string length", "{}\n{\"type\":\"event\",\"length\":^\"2\"}\n{}\n", nil, invalid)
	f("huge length", "{}\n{\"type\":\"event\",\"length\":^4294967296}\n{}\n", nil, invalid)
	f("huger length", "{}\n{\"type\":\"event\",\"length\":^99999999999999999999999}\n{}\n", nil, invalid)
	f("length overruns body", "{}\n{\"type\":\"attachment\",\"length\":10}\n^abc", nil, invalid)
	f("length overruns by one", "{}\n{\"type\":\"attachment\",\"length\":4}\n^abc", nil, invalid)
	f("payload not followed by newline", "{}\n{\"type\":\"attachment\",\"length\":2}\nab^c\n", nil, invalid)
	f("duplicate length", "{}\n{\"type\":\"event\",\"length\":2,^\"length\":100}\n{}\n", nil, invalid)
	f("duplicate escaped type", "{}\n{\"type\":\"event\",^\"typ\\u0065\":\"x\"}\n{}\n", nil, invalid)
	f("item_count not a number", "{}\n{\"type\":\"log\",\"item_count\":^\"3\"}\n{}\n", nil, invalid)
	f("filename not a string", "{}\n{\"type\":\"attachment\",\"filename\":^[]}\n{}\n", nil, invalid)
	f("header not followed by newline", "{}\n{\"type\":\"event\"}^x\n{}\n", nil, invalid)
	f("invalid event_id", "^{\"event_id\":\"not-a-uuid\"}\n", nil, invalid)
	f("event_id not a string", "{\"event_id\":^42}\n", nil, invalid)
	f("invalid dsn", "^{\"dsn\":\"ftp://x@y/1\"}\n", nil, invalid)
	f("invalid sent_at", "^{\"sent_at\":\"yesterday\"}\n", nil, invalid)
	f("duplicate event_id", "{\"event_id\":null,^\"event_id\":null}\n", nil, invalid)
	f("internal item type", "{}\n^{\"type\":\"integration\"}\n{}\n", nil, invalid)
	f("nesting too deep", "{\"a\":"+strings.Repeat("[", 127)+"^["+strings.Repeat("]", 128)+"}", nil, invalid)

	small := &Limits{MaxEnvelopeSize: 200, MaxItems: 2, MaxHeaderLine: 40, MaxEventSize: 10, MaxAttachmentCount: 2, MaxAttachmentsSize: 8, MaxAttachmentSize: 5}
	f("envelope over max_envelope_size", strings.Repeat(" ", 200)+"^"+"{}", small, tooLarge("max_envelope_size"))
	f("header over max_header_line", "^{\"x\":\""+strings.Repeat("a", 50)+"\"}\n", small, tooLarge("max_header_line"))
	f("item header over max_header_line", "{}\n^{\"type\":\"event\",\"x\":\""+strings.Repeat("a", 40)+"\"}\n", small, tooLarge("max_header_line"))
	f("too many items", "{}\n{\"type\":\"a\"}\n\n{\"type\":\"b\"}\n\n^{\"type\":\"c\"}\n", small, tooLarge("max_items"))
	f("event over max_event_size", "{}\n^{\"type\":\"event\"}\n{\"x\":12345}\n", small, tooLarge("max_event_size"))
	f("two events", "{}\n{\"type\":\"event\"}\n{}\n^{\"type\":\"transaction\"}\n{}\n", small, tooLarge("max_event_size"))
	f("attachment over max_attachment_size", "{}\n^{\"type\":\"attachment\"}\n123456\n", small, tooLarge("max_attachment_size"))
	f("attachments over max_attachments_size", "{}\n{\"type\":\"attachment\"}\n12345\n^{\"type\":\"user_report\"}\n1234\n", small, tooLarge("max_attachments_size"))

	f("31 attachments", "{}\n"+strings.Repeat("{\"type\":\"attachment\"}\nx\n", 30)+"^{\"type\":\"attachment\"}\nx\n", nil, tooLarge("max_attachment_count"))
	f("101 sessions", "{}\n"+strings.Repeat("{\"type\":\"session\"}\n{}\n", 100)+"^{\"type\":\"sessions\"}\n{}\n", nil, tooLarge("max_session_count"))
	f("two check-ins", "{}\n{\"type\":\"check_in\"}\n{}\n^{\"type\":\"check_in\"}\n{}\n", nil, tooLarge("max_check_in_size"))
	f("26 standalone spans", "{}\n"+strings.Repeat("{\"type\":\"span\"}\n{}\n", 25)+"^{\"type\":\"span\"}\n{}\n", nil, tooLarge("max_standalone_span_count"))
	f("log container, average item too big",
		"{}\n^{\"type\":\"log\",\"item_count\":2,\"content_type\":\"application/vnd.sentry.items.log+json\"}\n"+strings.Repeat("x", 2*(2*mib+1))+"\n",
		nil, tooLarge("max_log_size"))

	// The error says which limit and by how much.
	var e Envelope
	err := e.Parse([]byte("{}\n{\"type\":\"event\"}\n{\"x\":12345}\n"), small)
	var le *LimitError
	if !errors.As(err, &le) || le.Kind != "item_size" || le.ItemType != "event" || le.Size != 11 || le.Max != 10 {
		t.Errorf("limit error %+v", le)
	}
	if !strings.Contains(err.Error(), "max_event_size") || !strings.Contains(err.Error(), "11") {
		t.Errorf("message %q", err)
	}
}

func TestParseLimitsAllowed(t *testing.T) {
	// Containers are checked by average size; unknown items count nowhere.
	body := "{}\n{\"type\":\"log\",\"item_count\":3,\"content_type\":\"application/vnd.sentry.items.log+json\",\"length\":" +
		fmt.Sprint(5*mib) + "}\n" + strings.Repeat("x", 5*mib) + "\n" +
		"{\"type\":\"mystery\"}\n" + strings.Repeat("y", 3*mib) + "\n"
	e, err := Parse([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if e.Items[0].Quantity() != 3 || e.Items[1].Class != ClassUnknown {
		t.Errorf("quantity %d class %v", e.Items[0].Quantity(), e.Items[1].Class)
	}
	// Internal items are accepted on request.
	var e2 Envelope
	if err := e2.Parse([]byte("{}\n{\"type\":\"integration\",\"content_type\":\"application/vnd.sentry.integration.otel.spans+json\"}\n{}\n"), &Limits{AllowInternalItems: true}); err != nil {
		t.Fatal(err)
	}
	if e2.Items[0].Class != ClassSpan {
		t.Errorf("span integration class %v", e2.Items[0].Class)
	}
	// nel items are not limited in number.
	if _, err := Parse([]byte("{}\n" + strings.Repeat("{\"type\":\"nel\"}\n{}\n", 50))); err != nil {
		t.Error(err)
	}
}

func TestClasses(t *testing.T) {
	f := func(name, body string, wantHasEvent bool, want ...Class) {
		t.Helper()
		e, err := Parse([]byte(body))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for i, c := range want {
			if e.Items[i].Class != c {
				t.Fatalf("%s: item %d (%s) class %v, want %v", name, i, e.Items[i].TypeName, e.Items[i].Class, c)
			}
		}
		if e.HasEvent() != wantHasEvent {
			t.Fatalf("%s: HasEvent %v", name, e.HasEvent())
		}
		checkSplit(t, e)
	}
	item := func(header string) string { return header + "\n{}\n" }
	att := item(`{"type":"attachment"}`)

	f("event + attachment", "{}\n"+item(`{"type":"event"}`)+att, true, ClassError, ClassError)
	f("attachment before event", "{}\n"+att+item(`{"type":"event"}`), true, ClassError, ClassError)
	f("transaction + attachment + profile", "{}\n"+item(`{"type":"transaction"}`)+att+item(`{"type":"profile"}`), true,
		ClassTransaction, ClassTransaction, ClassTransaction)
	f("attachment alone", "{}\n"+att+att, false, ClassAttachment, ClassAttachment)
	f("minidump alone", "{}\n"+item(`{"type":"attachment","attachment_type":"event.minidump"}`)+att+item(`{"type":"form_data"}`), true,
		ClassError, ClassError, ClassError)
	f("apple crash report", "{}\n"+item(`{"type":"attachment","attachment_type":"event.applecrashreport"}`), true, ClassError)
	f("view hierarchy alone", "{}\n"+item(`{"type":"attachment","attachment_type":"event.view_hierarchy"}`), false, ClassAttachment)
	f("unknown attachment type", "{}\n"+item(`{"type":"attachment","attachment_type":"some.future"}`), false, ClassAttachment)
	f("user_report alone", "{}\n"+item(`{"type":"user_report"}`), false, ClassFeedback)
	f("user_report with event", "{}\n"+item(`{"type":"event"}`)+item(`{"type":"user_report"}`), true, ClassError, ClassError)
	f("feedback + screenshot", "{}\n"+item(`{"type":"feedback"}`)+att, true, ClassFeedback, ClassFeedback)
	f("profile alone", "{}\n"+item(`{"type":"profile"}`), false, ClassProfile)
	f("profile with event stays profile", "{}\n"+item(`{"type":"event"}`)+item(`{"type":"profile"}`), true, ClassError, ClassProfile)
	f("raw_security", "{}\n"+item(`{"type":"raw_security"}`), true, ClassSecurity)
	f("security", "{}\n"+item(`{"type":"security"}`), true, ClassSecurity)
	f("nel", "{}\n"+item(`{"type":"nel"}`), false, ClassSecurity)
	f("unreal + event", "{}\n"+item(`{"type":"unreal_report"}`)+item(`{"type":"event"}`)+att, true, ClassError, ClassError, ClassError)
	f("replay", "{}\n"+item(`{"type":"replay_event"}`)+item(`{"type":"replay_recording"}`)+item(`{"type":"replay_video"}`), false,
		ClassReplay, ClassReplay, ClassReplay)
	f("independent classes", "{}\n"+item(`{"type":"event"}`)+item(`{"type":"session"}`)+item(`{"type":"client_report"}`)+
		item(`{"type":"check_in"}`)+item(`{"type":"log"}`)+item(`{"type":"span"}`)+item(`{"type":"trace_metric"}`)+
		item(`{"type":"replay_recording"}`)+item(`{"type":"statsd"}`)+
		item(`{"type":"metric_buckets"}`)+item(`{"type":"profile_chunk"}`)+item(`{"type":"sessions"}`)+item(`{"type":"what"}`),
		true, ClassError, ClassSession, ClassClientReport, ClassCheckIn, ClassLog, ClassSpan, ClassTraceMetric,
		ClassReplay, ClassMetric, ClassMetric, ClassProfile, ClassSession, ClassUnknown)
	f("older otel types", "{}\n"+item(`{"type":"otel_log"}`)+item(`{"type":"otel_span"}`)+item(`{"type":"otel_traces_data"}`), false,
		ClassLog, ClassSpan, ClassSpan)
	f("session only", "{}\n"+item(`{"type":"session"}`), false, ClassSession)

	// Split keeps the header and groups; AppendClass writes only that class.
	body := testHeader + "\n" + item(`{"type":"session"}`) + item(`{"type":"event"}`) + item(`{"type":"client_report"}`) + att
	e, err := Parse([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if got := e.Classes().String(); got != "{error,session,client_report}" {
		t.Errorf("classes %s", got)
	}
	want := map[Class]string{
		ClassError:        testHeader + "\n" + `{"type":"event","length":2}` + "\n{}\n" + `{"type":"attachment","length":2}` + "\n{}\n",
		ClassSession:      testHeader + "\n" + `{"type":"session","length":2}` + "\n{}\n",
		ClassClientReport: testHeader + "\n" + `{"type":"client_report","length":2}` + "\n{}\n",
	}
	calls := 0
	e.Split(func(c Class, part *Envelope) {
		calls++
		if got := string(part.AppendTo(nil)); got != want[c] {
			t.Errorf("split %v = %q, want %q", c, got, want[c])
		}
		if part.HasEvent() != (c == ClassError) || part.Classes().Len() != 1 {
			t.Errorf("split %v: HasEvent %v classes %v", c, part.HasEvent(), part.Classes())
		}
		if got := string(e.AppendClass(nil, c)); got != want[c] {
			t.Errorf("AppendClass(%v) = %q", c, got)
		}
	})
	if calls != 3 {
		t.Errorf("%d split calls", calls)
	}
	if got := string(e.AppendClass(nil, ClassSpan)); got != testHeader+"\n" {
		t.Errorf("AppendClass of an absent class = %q", got)
	}
}

func TestNeedsEventIDAndSetEventID(t *testing.T) {
	e, err := Parse([]byte("{\"sdk\":{\"name\":\"x\"}}\n{\"type\":\"attachment\"}\nx\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !e.NeedsEventID() || e.HasEvent() || !e.Header.EventID.IsZero() {
		t.Fatalf("needs %v has %v", e.NeedsEventID(), e.HasEvent())
	}
	id := NewEventID()
	buf := e.SetEventID(nil, id)
	want := `{"sdk":{"name":"x"},"event_id":"` + id.String() + `"}`
	if string(e.Header.Raw) != want || string(buf) != want || e.Header.EventID != id {
		t.Fatalf("header %q", e.Header.Raw)
	}
	e2, err := Parse(e.AppendTo(nil))
	if err != nil || e2.Header.EventID != id {
		t.Fatalf("re-parse: %v %v", err, e2.Header.EventID)
	}
	buf = e.SetHeader(buf, "sent_at", []byte(`"2026-01-01T00:00:00Z"`))
	if e.Header.SentAt != "2026-01-01T00:00:00Z" || e.Header.EventID != id {
		t.Fatalf("SetHeader: %+v", e.Header)
	}
	_ = buf

	e, _ = Parse([]byte("{}\n{\"type\":\"session\"}\n{}\n"))
	if e.NeedsEventID() || e.HasEvent() {
		t.Error("session needs no event id")
	}
}

func TestSetHeaderField(t *testing.T) {
	f := func(raw, key, val, want string) {
		t.Helper()
		if got := string(SetHeaderField([]byte("pre:"), []byte(raw), key, []byte(val))); got != "pre:"+want {
			t.Fatalf("SetHeaderField(%q, %q, %s) = %q, want %q", raw, key, val, got, "pre:"+want)
		}
	}
	f(`{"sent_at":"2020-01-01T00:00:00Z","z":{"sent_at":1}, "x" :[1]}`, "sent_at", `"2026-01-01T00:00:00Z"`,
		`{"sent_at":"2026-01-01T00:00:00Z","z":{"sent_at":1}, "x" :[1]}`)
	f(`{"a":1}`, "forwarded_for", `"1.2.3.4"`, `{"a":1,"forwarded_for":"1.2.3.4"}`)
	f(`{ "a" : 1 } `, "b", `true`, `{ "a" : 1 ,"b":true}`)
	f(`{}`, "b", `null`, `{"b":null}`)
	f(`{ }`, "b", `2`, `{ "b":2}`)
	f(`  {"a":1}`, "a", `2`, `{"a":2}`)
	f(`{"s\u0065nt_at":"x"}`, "sent_at", `"y"`, `{"s\u0065nt_at":"y"}`)
	f(`{"a":1,"a":2}`, "a", `3`, `{"a":3,"a":3}`)
	f(`{"a":{"b":[1,2,{"c":"}"}]},"d":"\"}"}`, "e", `1`, `{"a":{"b":[1,2,{"c":"}"}]},"d":"\"}","e":1}`)
	f(`not json`, "a", `1`, `{"a":1}`)
	f(`[1]`, "a", `1`, `{"a":1}`)
	f(`{"a":1`, "a", `1`, `{"a":1}`)
	f(`{}`, "we\"ird", `1`, `{"we\"ird":1}`)
}

func TestEventID(t *testing.T) {
	const hex = "9ec79c33ec9942ab8353589fcb2e04dc"
	for _, s := range []string{
		hex,
		strings.ToUpper(hex),
		"9ec79c33-ec99-42ab-8353-589fcb2e04dc",
		"9EC79C33-EC99-42AB-8353-589FCB2E04DC",
		"{9ec79c33-ec99-42ab-8353-589fcb2e04dc}",
		"urn:uuid:9ec79c33-ec99-42ab-8353-589fcb2e04dc",
	} {
		id, err := ParseEventID(s)
		if err != nil || id.String() != hex {
			t.Errorf("ParseEventID(%q) = %v, %v", s, id, err)
		}
	}
	for _, s := range []string{
		"", "9ec79c33", hex + "0", hex[:31] + "g", "9ec79c33-ec99-42ab-8353589fcb2e04dc-",
		"9ec79c33ec99-42ab-8353-589fcb2e04dc", "{9ec79c33-ec99-42ab-8353-589fcb2e04dc",
		"urn:uuix:9ec79c33-ec99-42ab-8353-589fcb2e04dc", " 9ec79c33ec9942ab8353589fcb2e04d",
	} {
		if _, err := ParseEventID(s); err == nil {
			t.Errorf("ParseEventID(%q) accepted", s)
		}
	}
	id, _ := ParseEventID(hex)
	if got := string(id.AppendUUID(nil)); got != "9ec79c33-ec99-42ab-8353-589fcb2e04dc" {
		t.Errorf("AppendUUID = %s", got)
	}
	if id.IsZero() || !(EventID{}).IsZero() {
		t.Error("IsZero")
	}
	zero, err := ParseEventID("00000000-0000-0000-0000-000000000000")
	if err != nil || !zero.IsZero() {
		t.Error("nil UUID")
	}
	n := NewEventID()
	if n.IsZero() || n == NewEventID() || n[6]>>4 != 4 || n[8]>>6 != 2 {
		t.Errorf("NewEventID %v", n)
	}
	var back EventID
	text, _ := id.MarshalText()
	if err := back.UnmarshalText(text); err != nil || back != id {
		t.Error("text round trip")
	}
}

func TestParseDSN(t *testing.T) {
	const key = "e12d836b15bb49d7bbf99e64295d995b"
	f := func(s string, want DSN) {
		t.Helper()
		got, err := ParseDSN(s)
		if err != nil || got != want {
			t.Fatalf("ParseDSN(%q) = %+v, %v; want %+v", s, got, err, want)
		}
	}
	f("https://"+key+"@sentry.example/42", DSN{"https", key, "sentry.example", "", 42})
	f("http://"+key+"@127.0.0.1:9001/17", DSN{"http", key, "127.0.0.1:9001", "", 17})
	f("https://"+key+":secret@sentry.example/42", DSN{"https", key, "sentry.example", "", 42})
	f("https://"+key+":@sentry.example/42", DSN{"https", key, "sentry.example", "", 42})
	f("https://"+key+"@sentry.example/base/path/42/", DSN{"https", key, "sentry.example", "/base/path", 42})
	f("HTTPS://"+key+"@sentry.example/42?x=1#y", DSN{"https", key, "sentry.example", "", 42})

	d, _ := ParseDSN("https://" + key + "@sentry.example/base/42")
	if d.String() != "https://"+key+"@sentry.example/base/42" {
		t.Errorf("String = %s", d)
	}
	for _, s := range []string{
		"", "sentry.example/42", "ftp://" + key + "@h/1", "https://h/1", "https://short@h/1",
		"https://" + key + "@/1", "https://" + key + "@h", "https://" + key + "@h/", "https://" + key + "@h/abc",
		"https://" + key + "@h/-1", "https://" + strings.Repeat("é", 16) + "@h/1",
	} {
		if _, err := ParseDSN(s); err == nil {
			t.Errorf("ParseDSN(%q) accepted", s)
		}
	}
}

func TestRegistry(t *testing.T) {
	relayTypes := []string{"event", "transaction", "security", "raw_security", "nel", "unreal_report", "attachment",
		"form_data", "user_report", "session", "sessions", "statsd", "metric_buckets", "client_report", "profile",
		"profile_chunk", "replay_event", "replay_recording", "replay_video", "check_in", "span", "otel_span",
		"otel_traces_data", "log", "otel_log", "trace_metric", "feedback", "user_report_v2", "integration"}
	for _, name := range relayTypes {
		tp := ParseItemType(name)
		if tp == ItemUnknown {
			t.Errorf("type %s unknown", name)
			continue
		}
		info := tp.Info()
		if info.Type != tp || (info.Name != name && typeAliases[name] != tp) {
			t.Errorf("registry row of %s: %+v", name, info)
		}
		if info.LimitKey == "" {
			t.Errorf("%s has no limit key", name)
		}
	}
	if got := len(ItemTypes()); got != len(relayTypes)-1 { // user_report_v2 is an alias
		t.Errorf("%d registered types", got)
	}
	if ParseItemType("nope") != ItemUnknown || ItemUnknown.Info().Class != ClassUnknown {
		t.Error("unknown type")
	}
	for c := CategoryDefault; c <= CategoryProfileUI; c++ {
		got, ok := ParseCategory(c.String())
		if !ok || got != c {
			t.Errorf("category %d %s", c, c)
		}
	}
	if c, ok := ParseCategory("user_report_v2"); !ok || c != CategoryFeedback {
		t.Error("user_report_v2 category")
	}
	if CategoryUnknown.String() != "unknown" || CategoryLogByte != 24 || CategoryTraceMetric != 33 {
		t.Error("category ids")
	}
}

func TestClassSet(t *testing.T) {
	var s ClassSet
	s.Add(ClassLog)
	s.Add(ClassError)
	s.Add(ClassLog)
	s.Add(NumClasses)
	if s.Len() != 2 || !s.Has(ClassError) || s.Has(ClassSpan) || s.Has(NumClasses+3) {
		t.Errorf("set %v", s)
	}
	if s.String() != "{error,log}" {
		t.Errorf("String %s", s)
	}
}

func TestParseReuseDoesNotAllocate(t *testing.T) {
	bodies := [][]byte{
		[]byte(testHeader + "\n{\"type\":\"event\",\"content_type\":\"application/json\"}\n{\"a\":1}\n" +
			"{\"type\":\"attachment\",\"length\":3,\"filename\":\"log.txt\",\"content_type\":\"text/plain\"}\nabc\n"),
		[]byte("{\"sent_at\":\"2026-11-24T18:18:21.422Z\"}\n{\"type\":\"session\"}\n{}\n{\"type\":\"mystery\"}\n{}"),
	}
	for _, body := range bodies {
		var e Envelope
		if err := e.Parse(body, nil); err != nil {
			t.Fatal(err)
		}
		lim := DefaultLimits()
		var dst []byte
		allocs := testing.AllocsPerRun(100, func() {
			if err := e.Parse(body, &lim); err != nil {
				t.Fatal(err)
			}
			for c := range e.Classes().All() {
				dst = e.AppendClass(dst[:0], c)
			}
			e.Split(func(Class, *Envelope) {})
			dst = e.AppendTo(dst[:0])
		})
		if allocs != 0 {
			t.Errorf("%.1f allocs per Parse+AppendClass+Split+AppendTo, want 0", allocs)
		}
	}
}

func TestResetReleasesBuffer(t *testing.T) {
	if _, err := Parse([]byte("{}\n{\"type\":\"event\"}\n{}\n{\"type\":\"event\",\"filename\":\"x\"}\n{}\n")); err == nil {
		t.Fatal("two events must be rejected")
	}
	e := &Envelope{}
	_ = e.Parse([]byte("{}\n{\"type\":\"session\"}\n{}\n{\"type\":\"session\"}\n{}\n"), nil)
	if err := e.Parse([]byte("{}\n{\"type\":\"session\"}\n{}\n"), nil); err != nil {
		t.Fatal(err)
	}
	if stale := e.Items[:2][1]; stale.Payload != nil || stale.Header != nil {
		t.Error("stale item still references the old buffer")
	}
	e.Reset()
	if len(e.Items) != 0 || e.Header.Raw != nil || e.Items[:1][0].Payload != nil {
		t.Error("Reset kept data")
	}
	if !bytes.Equal(e.AppendTo(nil), []byte("{}\n")) {
		t.Error("empty envelope serialization")
	}
}
