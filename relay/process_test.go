package relay

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/baton-relay/baton/config"
	"github.com/baton-relay/baton/envelope"
	"github.com/baton-relay/baton/relay/groups"
	"github.com/baton-relay/baton/relay/normalize"
	"github.com/baton-relay/baton/relay/outcome"
	"github.com/baton-relay/baton/relay/pii"
	"github.com/baton-relay/baton/relay/project"
	"github.com/baton-relay/baton/relay/record"
)

// TestProcessorKnob: normalization.level and the mode decide whether
// payloads are processed; proxy mode never touches them.
func TestProcessorKnob(t *testing.T) {
	for _, c := range []struct {
		mode  config.Mode
		level config.NormalizationLevel
		on    bool
	}{
		{config.ModeProxy, config.NormalizationDefault, false},
		{config.ModeStatic, config.NormalizationDefault, true},
		{config.ModeManaged, config.NormalizationDefault, true},
		{config.ModeStatic, config.NormalizationDisabled, false},
		{config.ModeManaged, config.NormalizationDisabled, false},
	} {
		cfg := config.Default()
		cfg.Mode, cfg.Normalization.Level = c.mode, c.level
		p, err := newProcessor(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if (p != nil) != c.on {
			t.Errorf("%s, level %s: processing %v, want %v", c.mode, c.level, p != nil, c.on)
		}
	}
	if config.Default().Normalization.Level != config.NormalizationDefault {
		t.Errorf("default level %q", config.Default().Normalization.Level)
	}
}

// testProcessor is a processor as static and managed mode build it.
func testProcessor(t testing.TB) *processor {
	t.Helper()
	cfg := config.Default()
	cfg.Mode = config.ModeStatic
	p, err := newProcessor(cfg)
	if err != nil || p == nil {
		t.Fatalf("processor: %v", err)
	}
	return p
}

// parsedItem is the first item of an envelope of one item.
func parsedItem(t *testing.T, header, payload string) *envelope.Item {
	t.Helper()
	env, err := envelope.Parse([]byte("{}\n" + header + "\n" + payload + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	return &env.Items[0]
}

// reparse serializes it in an envelope and parses it again: the header's
// length must match the new payload.
func reparse(t *testing.T, it *envelope.Item) (*envelope.Item, map[string]any) {
	t.Helper()
	env := envelope.Envelope{Items: []envelope.Item{*it}}
	back, err := envelope.Parse(env.AppendTo(nil))
	if err != nil {
		t.Fatalf("the processed item does not parse: %v", err)
	}
	got := &back.Items[0]
	if !bytes.Equal(got.Payload, it.Payload) {
		t.Fatalf("payload changed on the way: %q", got.Payload)
	}
	var body map[string]any
	if err := json.Unmarshal(got.Payload, &body); err != nil {
		t.Fatalf("payload %q: %v", got.Payload, err)
	}
	return got, body
}

func headerValue(t *testing.T, it *envelope.Item, key string) string {
	t.Helper()
	v, _ := envelope.HeaderField(it.Header, key)
	return string(v)
}

func TestProcessEvent(t *testing.T) {
	p := testProcessor(t)
	in := normalize.Input{ClientAddr: "192.0.2.7", Received: time.Unix(1764064800, 0)}
	it := parsedItem(t, `{"type":"event","length":52}`, `{"message":"hello","tags":{"a":"b"},"level":"error"}`)
	buf, err := p.item(nil, it, &in, false, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, ev := reparse(t, it)
	if headerValue(t, got, "fully_normalized") != "true" {
		t.Errorf("header %s: no fully_normalized", got.Header)
	}
	if le, _ := ev["logentry"].(map[string]any); le["formatted"] != "hello" {
		t.Errorf("logentry %v (message not moved)", ev["logentry"])
	}
	if tags, _ := ev["tags"].([]any); len(tags) != 1 {
		t.Errorf("tags %v, want pairs", ev["tags"])
	}

	// A client's grouping header is not Baton's hash: nulled.
	forged := parsedItem(t, `{"type":"event","grouping_hash":"0123456789abcdef0123456789abcdef","grouping_final":true}`, `{"message":"hello"}`)
	if _, err := p.item(nil, forged, &in, false, nil, nil, nil); err != nil {
		t.Fatal(err)
	}
	if h, f := headerValue(t, forged, "grouping_hash"), headerValue(t, forged, "grouping_final"); h != "null" || f != "null" {
		t.Errorf("a client's grouping header kept: %s", forged.Header)
	}

	// Marked by a verified relay: not normalized again; by an SDK: it is.
	for _, trusted := range []bool{true, false} {
		it := parsedItem(t, `{"type":"event","fully_normalized":true}`, `{"message":"hello"}`)
		was := string(it.Payload)
		if _, err := p.item(buf, it, &in, trusted, nil, nil, nil); err != nil {
			t.Fatal(err)
		}
		if normalized := string(it.Payload) != was; normalized == trusted {
			t.Errorf("trusted %v: payload %s", trusted, it.Payload)
		}
	}

	// Not an object: invalid, with Relay's reason, and the item unchanged.
	it = parsedItem(t, `{"type":"event"}`, `[1,2]`)
	if _, err := p.item(nil, it, &in, false, nil, nil, nil); !errors.Is(err, normalize.ErrInvalid) || discardReason(it.Type, err) != reasonInvalidJSON {
		t.Errorf("err %v", err)
	}
	if string(it.Payload) != "[1,2]" {
		t.Errorf("a failed item changed: %s", it.Payload)
	}
}

func TestProcessSecurityAndNEL(t *testing.T) {
	p := testProcessor(t)
	in := normalize.Input{ClientAddr: "192.0.2.7", UserAgent: "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
		Origin: "https://example.com", Received: time.Unix(1764064800, 0)}
	csp := `{"csp-report":{"document-uri":"https://example.com/page","violated-directive":"script-src","effective-directive":"script-src","blocked-uri":"https://evil.example/x.js","original-policy":"script-src 'self'"}}`
	it := parsedItem(t, `{"type":"raw_security","sentry_release":"web@1"}`, csp)
	if _, err := p.item(nil, it, &in, false, nil, nil, nil); err != nil {
		t.Fatal(err)
	}
	got, ev := reparse(t, it)
	if got.Type != envelope.ItemSecurity || headerValue(t, got, "type") != `"security"` || got.Class != envelope.ClassSecurity {
		t.Errorf("header %s: want a security item", got.Header)
	}
	if ev["csp"] == nil || ev["release"] != "web@1" {
		t.Errorf("event %v: want csp and the release of the query", ev)
	}
	if req, _ := ev["request"].(map[string]any); req == nil || req["headers"] == nil {
		t.Errorf("request %v: want the report's request headers", ev["request"])
	}
	// What Relay drops, with its outcome and reason (ProcessingError's).
	for _, c := range []struct {
		payload string
		why     outcome.Reason
		reason  string
	}{
		{`{"nothing":1}`, outcome.ReasonInvalid, "security_report_type"},
		{`{"type":"deprecation","body":{}}`, outcome.ReasonFiltered, "invalid-csp"},
		{`[1]`, outcome.ReasonInvalid, "invalid_json"},
		{`{"type":"csp-violation","url":"https://a"}`, outcome.ReasonInvalid, "security_report"},
		// A directive Relay's CspDirective does not know, in both fields.
		{`{"csp-report":{"document-uri":"https://a/","effective-directive":"bogus-src","violated-directive":"bogus-src 'self'","blocked-uri":"https://b/x.js"}}`, outcome.ReasonInvalid, "security_report"},
	} {
		it = parsedItem(t, `{"type":"raw_security"}`, c.payload)
		_, err := p.item(nil, it, &in, false, nil, nil, nil)
		why := outcome.ReasonInvalid
		if de := (*dropError)(nil); errors.As(err, &de) {
			why = de.why
		}
		if err == nil || why != c.why || discardReason(it.Type, err) != c.reason {
			t.Errorf("%s: %v (%v, %q); want %v %s", c.payload, err, why, discardReason(it.Type, err), c.why, c.reason)
		}
	}

	nel := `{"age":0,"type":"network-error","url":"https://example.com/","body":{"type":"http.error","status_code":500,"elapsed_time":9,"method":"GET","phase":"application","protocol":"http/1.1","server_ip":"192.0.2.1","sampling_fraction":1}}`
	it = parsedItem(t, `{"type":"nel"}`, nel)
	if _, err := p.item(nil, it, &in, false, nil, nil, nil); err != nil {
		t.Fatal(err)
	}
	got, body := reparse(t, it)
	if got.Type != envelope.ItemLog || it.Class != envelope.ClassLog || got.ItemCount != 1 || got.ContentType != envelope.ContentTypeLogContainer {
		t.Errorf("header %s: want a log container of one", got.Header)
	}
	if items, _ := body["items"].([]any); len(items) != 1 {
		t.Errorf("log container %v", body)
	}
}

func TestProcessPII(t *testing.T) {
	p := testProcessor(t)
	st, err := project.DecodeState([]byte(`{"projectId":1,"publicKeys":[],"config":{"piiConfig":{"applications":{"password":["@password:filter"]}}}}`))
	if err != nil || st.PII == nil {
		t.Fatalf("state: %v %v", err, st.PIIErr)
	}
	in := normalize.Input{Received: time.Unix(1764064800, 0)}
	it := parsedItem(t, `{"type":"event"}`, `{"extra":{"password":"hunter2"}}`)
	if _, err := p.item(nil, it, &in, false, st, nil, nil); err != nil {
		t.Fatal(err)
	}
	_, ev := reparse(t, it)
	if extra, _ := ev["extra"].(map[string]any); extra["password"] != "[Filtered]" || ev["_meta"] == nil {
		t.Errorf("event %s: want the password filtered, with _meta", it.Payload)
	}

	bad, err := project.DecodeState([]byte(`{"projectId":1,"publicKeys":[],"config":{"piiConfig":{"rules":{"r":{"type":"pattern","pattern":"("}},"applications":{"$string":["r"]}}}}`))
	if err != nil || bad.PIIErr == nil {
		t.Fatalf("state: %v %v", err, bad.PIIErr)
	}
	it = parsedItem(t, `{"type":"event"}`, `{"message":"x"}`)
	if _, err := p.item(nil, it, &in, false, bad, nil, nil); discardReason(it.Type, err) != "project_state_pii" {
		t.Errorf("a PII config that does not compile: %v", err)
	}
}

// TestReleaseRewrites: a record that waited for its config is scrubbed
// when released (normalized at ingest already, so not again), and keeps its
// class and item count; with a PII config that does not compile it is
// dropped.
func TestReleaseRewrites(t *testing.T) {
	r := &Relay{proc: testProcessor(t), limits: envelope.DefaultLimits()}
	env := "{\"event_id\":\"9ec79c33ec9942ab8353589fcb2e04dc\"}\n" +
		`{"type":"event","fully_normalized":true}` + "\n" + `{"extra":{"password":"hunter2"},"platform":"other"}` + "\n" +
		`{"type":"attachment","length":3}` + "\nabc\n"
	rec := record.Record{Class: envelope.ClassError, Items: 2, ReceivedAt: time.Now().UnixNano(), ProjectID: 1,
		PublicKey: []byte("a7c3e9f1b5d24680ace13579bdf02468"), ClientIP: []byte("192.0.2.7"), Envelope: []byte(env)}

	if v, why, _ := r.release(&rec, &project.State{}); v != nil || why != "" {
		t.Errorf("no PII config, already normalized: rewritten (%q, %q)", v, why)
	}
	st, _ := project.DecodeState([]byte(`{"projectId":1,"publicKeys":[],"config":{"piiConfig":{"applications":{"password":["@password:filter"]}}}}`))
	v, why, err := r.release(&rec, st)
	if why != "" || v == nil || err != nil {
		t.Fatalf("release: %q %v", why, err)
	}
	var got record.Record
	var sl record.Slab
	if err := record.Decode(v, &got, &sl); err != nil {
		t.Fatal(err)
	}
	if got.Class != rec.Class || got.Items != rec.Items || got.ProjectID != 1 || string(got.ClientIP) != "192.0.2.7" {
		t.Errorf("record fields changed: %+v", got)
	}
	back, err := envelope.Parse(got.Envelope)
	if err != nil || len(back.Items) != 2 {
		t.Fatalf("released envelope: %v", err)
	}
	if !bytes.Contains(back.Items[0].Payload, []byte(`"password":"[Filtered]"`)) || string(back.Items[1].Payload) != "abc" {
		t.Errorf("released envelope: %s", got.Envelope)
	}

	// A sink that took the envelope as it came but not as scrubbing grew
	// it (the `_meta` of the filtered password): dropped as too large.
	r.maxEnvelope[envelope.ClassError] = len(env)
	if v, why, err := r.release(&rec, st); v != nil || why != "" || !errors.Is(err, errSinkTooLarge) {
		t.Errorf("released past the sink's limit: %q %q %v, want errSinkTooLarge", v, why, err)
	}
	r.maxEnvelope[envelope.ClassError] = 0

	bad, _ := project.DecodeState([]byte(`{"projectId":1,"publicKeys":[],"config":{"piiConfig":{"rules":{"r":{"type":"pattern","pattern":"("}},"applications":{"$string":["r"]}}}}`))
	if _, why, _ := r.release(&rec, bad); why != "project_state_pii" {
		t.Errorf("bad PII config: reason %q", why)
	}
}

// Plain attachments are scrubbed with the project's attachment rules, in
// place or into a copy, their length kept, beside a minidump too (which is
// not scrubbed); a view hierarchy is one of them unless the project has
// the view-hierarchy-scrubbing feature (then scrubViewHierarchies takes it).
func TestScrubAttachments(t *testing.T) {
	a, err := pii.CompileAttachments([]byte(`{"applications":{"$attachments.**":["@ip:mask"],"$attachments.'a.txt'":["@email"]}}`))
	if err != nil || a == nil {
		t.Fatalf("%v %v", a, err)
	}
	st := &project.State{Attachments: a}
	parse := func(items ...string) *envelope.Envelope {
		env, err := envelope.Parse([]byte("{}\n" + strings.Join(items, "\n") + "\n"))
		if err != nil {
			t.Fatal(err)
		}
		return env
	}
	const (
		plain = "{\"type\":\"attachment\",\"length\":11,\"filename\":\"a.txt\"}\nip 10.0.0.1"
		vh    = "{\"type\":\"attachment\",\"length\":11,\"filename\":\"v.json\",\"attachment_type\":\"event.view_hierarchy\"}\nip 10.0.0.1"
		dump  = "{\"type\":\"attachment\",\"length\":4,\"filename\":\"d.dmp\",\"attachment_type\":\"event.minidump\"}\nMDMP"
	)
	env := parse(plain, vh)
	if !scrubAttachments(env, st, nil) || string(env.Items[0].Payload) != "ip ********" || string(env.Items[1].Payload) != "ip ********" {
		t.Errorf("in place: %q %q", env.Items[0].Payload, env.Items[1].Payload)
	}
	vhc, err := pii.CompileViewHierarchy([]byte(`{"applications":{"$string":["@ip"]}}`))
	if err != nil {
		t.Fatal(err)
	}
	withVH := &project.State{Attachments: a, ViewHierarchy: vhc, Features: []string{project.FeatureViewHierarchyScrubbing}}
	env = parse(plain, vh)
	if !scrubAttachments(env, withVH, nil) || string(env.Items[1].Payload) != "ip 10.0.0.1" {
		t.Errorf("view hierarchy scrubbed as a plain attachment with the feature: %q", env.Items[1].Payload)
	}
	env = parse(plain)
	orig := env.Items[0].Payload
	var buf []byte
	if !scrubAttachments(env, st, &buf) || string(env.Items[0].Payload) != "ip ********" || string(orig) != "ip 10.0.0.1" {
		t.Errorf("copied: %q, source %q", env.Items[0].Payload, orig)
	}
	env = parse(plain, dump)
	if !scrubAttachments(env, st, nil) || string(env.Items[0].Payload) != "ip ********" || string(env.Items[1].Payload) != "MDMP" {
		t.Errorf("beside a minidump: %q, minidump %q", env.Items[0].Payload, env.Items[1].Payload)
	}
	if scrubAttachments(parse(plain), &project.State{}, nil) || scrubAttachments(parse(plain), nil, nil) {
		t.Error("scrubbed without attachment rules")
	}
}

// Every log container is scrubbed, the SDK's as those Baton made of NEL
// reports, as Relay scrubs logs; one nothing matched, or without a
// config, is left as it is.
func TestScrubLogs(t *testing.T) {
	c, err := pii.Compile(pii.DataScrubbingSettings{}, []byte(`{"applications":{"$string":["@email:replace"]}}`))
	if err != nil {
		t.Fatal(err)
	}
	st := &project.State{PII: c}
	nel := `{"items":[{"body":"to a@b.io","attributes":{"sentry.origin":{"type":"string","value":"auto.http.browser_report.nel"}}}]}`
	sdk := `{"items":[{"body":"to a@b.io","attributes":{"sentry.origin":{"type":"string","value":"manual"}}}]}`
	clean := `{"items":[{"body":"nothing here"}]}`
	for _, src := range []string{nel, sdk} {
		if _, out, err := scrubLogs(nil, envelope.ItemLog, []byte(src), st); err != nil || !strings.Contains(string(out), `"body":"to [email]"`) {
			t.Errorf("%s: %s %v", src, out, err)
		}
	}
	if buf, out, err := scrubLogs(nil, envelope.ItemLog, []byte(clean), st); err != nil || out != nil || len(buf) != 0 {
		t.Errorf("nothing to scrub: %s %q %v; want it left", out, buf, err)
	}
	if _, out, err := scrubLogs(nil, envelope.ItemLog, []byte(sdk), nil); err != nil || out != nil {
		t.Errorf("config unknown: %s %v; want it left", out, err)
	}
	if _, _, err := scrubLogs(nil, envelope.ItemLog, []byte(nel), &project.State{PIIErr: pii.ErrInvalidConfig}); !errors.Is(err, errProjectStatePII) {
		t.Errorf("broken config: %v", err)
	}
	// An OTLP log record (otel_log) keeps its shape.
	otel := `{"body":{"stringValue":"to a@b.io"}}`
	if _, out, err := scrubLogs(nil, envelope.ItemOtelLog, []byte(otel), st); err != nil || string(out) != `{"body":{"stringValue":"to [email]"}}` {
		t.Errorf("%s: %s %v", otel, out, err)
	}
}

// An event a trusted relay hashed (fully_normalized, grouping_hash) is not
// hashed or counted again: its header passes as is. Without the relay's
// hash it is hashed and counted here.
func TestProcessRelayHashed(t *testing.T) {
	p := testProcessor(t)
	table, _ := groups.New(groups.Options{})
	p.groups = table
	g, err := project.NewGrouping(project.Grouping{Count: true})
	if err != nil {
		t.Fatal(err)
	}
	st := &project.State{ProjectID: 42, Grouping: g}
	in := normalize.Input{ClientAddr: "192.0.2.7", Received: time.Unix(1764064800, 0)}
	const relays = `{"type":"event","fully_normalized":true,"grouping_hash":"0123456789abcdef0123456789abcdef","grouping_final":false}`
	it := parsedItem(t, relays, `{"message":"hello"}`)
	if _, err := p.item(nil, it, &in, true, st, []byte("k"), nil); err != nil {
		t.Fatal(err)
	}
	if string(it.Header) != relays {
		t.Errorf("relay's header changed: %s", it.Header)
	}
	if c := table.Drain(nil); len(c) != 0 {
		t.Errorf("counted again: %+v", c)
	}
	it = parsedItem(t, `{"type":"event","fully_normalized":true}`, `{"message":"hello"}`)
	if _, err := p.item(nil, it, &in, true, st, []byte("k"), nil); err != nil {
		t.Fatal(err)
	}
	if h := headerValue(t, it, "grouping_hash"); h != `"5d41402abc4b2a76b9719d911017c592"` { // md5("hello")
		t.Errorf("grouping_hash %s, want md5 of the message", h)
	}
	if c := table.Drain(nil); len(c) != 1 || c[0].Events != 1 {
		t.Errorf("counts %+v, want one event", c)
	}
}
