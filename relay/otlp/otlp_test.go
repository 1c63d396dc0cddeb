package otlp

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"regexp"
	"strconv"
	"testing"

	colltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

func str(k, v string) *commonpb.KeyValue {
	return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: v}}}
}

func kv(k string, v *commonpb.AnyValue) *commonpb.KeyValue {
	return &commonpb.KeyValue{Key: k, Value: v}
}

func hexBytes(t testing.TB, s string) []byte {
	t.Helper()
	b := make([]byte, len(s)/2)
	for i := range b {
		n, err := strconv.ParseUint(s[2*i:2*i+2], 16, 8)
		if err != nil {
			t.Fatal(err)
		}
		b[i] = byte(n)
	}
	return b
}

// splitEnvelope returns the item header and the decoded payload of the one
// item of env.
func splitEnvelope(t *testing.T, env []byte) (map[string]any, map[string]any) {
	t.Helper()
	lines := bytes.SplitN(env, []byte("\n"), 3)
	if len(lines) != 3 || string(lines[0]) != "{}" {
		t.Fatalf("envelope = %q", env)
	}
	var hdr, payload map[string]any
	if err := json.Unmarshal(lines[1], &hdr); err != nil {
		t.Fatalf("item header %q: %v", lines[1], err)
	}
	body := bytes.TrimSuffix(lines[2], []byte("\n"))
	if int(hdr["length"].(float64)) != len(body) {
		t.Fatalf("length %v, payload is %d bytes", hdr["length"], len(body))
	}
	if err := json.Unmarshal(body, &payload); err != nil {
		t.Fatalf("payload %q: %v", body, err)
	}
	return hdr, payload
}

func traceFixture(t testing.TB) *tracepb.TracesData {
	return &tracepb.TracesData{ResourceSpans: []*tracepb.ResourceSpans{{
		Resource: &resourcepb.Resource{Attributes: []*commonpb.KeyValue{
			str("service.name", "checkout"), str("telemetry.sdk.language", "nodejs"),
		}},
		ScopeSpans: []*tracepb.ScopeSpans{{
			Scope: &commonpb.InstrumentationScope{Name: "fastify", Version: "4.2", Attributes: []*commonpb.KeyValue{str("lib", "x")}},
			Spans: []*tracepb.Span{{
				TraceId:           hexBytes(t, "89143b0763095bd9c9955e8175d1fb23"),
				SpanId:            hexBytes(t, "e342abb1214ca181"),
				ParentSpanId:      hexBytes(t, "0c7a7dea069bf5a6"),
				Name:              "GET /cart",
				Kind:              tracepb.Span_SPAN_KIND_SERVER,
				Flags:             flagHasIsRemote | flagIsRemote,
				StartTimeUnixNano: 1697620454980000000,
				EndTimeUnixNano:   1697620454980078800,
				Status:            &tracepb.Status{Code: tracepb.Status_STATUS_CODE_ERROR, Message: "boom \"quoted\""},
				Attributes: []*commonpb.KeyValue{
					str("http.request.method", "GET"),
					kv("count", &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: -42}}),
					kv("ratio", &commonpb.AnyValue{Value: &commonpb.AnyValue_DoubleValue{DoubleValue: 0.25}}),
					kv("ok", &commonpb.AnyValue{Value: &commonpb.AnyValue_BoolValue{BoolValue: true}}),
					kv("raw", &commonpb.AnyValue{Value: &commonpb.AnyValue_BytesValue{BytesValue: []byte("héllo")}}),
					kv("list", &commonpb.AnyValue{Value: &commonpb.AnyValue_ArrayValue{ArrayValue: &commonpb.ArrayValue{Values: []*commonpb.AnyValue{
						{Value: &commonpb.AnyValue_StringValue{StringValue: "a\"b"}},
						{Value: &commonpb.AnyValue_IntValue{IntValue: 2}},
						{Value: &commonpb.AnyValue_ArrayValue{}}, // nested: left out
					}}}}),
					kv("map", &commonpb.AnyValue{Value: &commonpb.AnyValue_KvlistValue{KvlistValue: &commonpb.KeyValueList{Values: []*commonpb.KeyValue{
						str("k", "v"),
					}}}}),
					kv("nan", &commonpb.AnyValue{Value: &commonpb.AnyValue_DoubleValue{DoubleValue: math.NaN()}}),
					kv("unset", &commonpb.AnyValue{}),
					str("dup", "first"),
					str("dup", "last"),
					str("sentry.origin", "manual"), // the span's own wins
				},
				Links: []*tracepb.Span_Link{{
					TraceId: hexBytes(t, "00000000000000000000000000000001"), SpanId: hexBytes(t, "0000000000000002"),
					Flags: 1, Attributes: []*commonpb.KeyValue{str("link.kind", "follows")},
				}},
			}},
		}},
	}}}
}

func sattr(v string) map[string]any { return map[string]any{"type": "string", "value": v} }

var wantSpan = map[string]any{
	"trace_id":        "89143b0763095bd9c9955e8175d1fb23",
	"parent_span_id":  "0c7a7dea069bf5a6",
	"span_id":         "e342abb1214ca181",
	"name":            "GET /cart",
	"status":          "error",
	"is_segment":      true,
	"start_timestamp": 1697620454.98,
	"end_timestamp":   1697620454.980079,
	"links": []any{map[string]any{
		"trace_id": "00000000000000000000000000000001", "span_id": "0000000000000002", "sampled": true,
		"attributes": map[string]any{"link.kind": sattr("follows")},
	}},
	"attributes": map[string]any{
		"resource.service.name":           sattr("checkout"),
		"resource.telemetry.sdk.language": sattr("nodejs"),
		"instrumentation.lib":             sattr("x"),
		"instrumentation.name":            sattr("fastify"),
		"instrumentation.version":         sattr("4.2"),
		"sentry.origin":                   sattr("manual"),
		"sentry.platform":                 sattr("node"),
		"http.request.method":             sattr("GET"),
		"count":                           map[string]any{"type": "integer", "value": -42.0},
		"ratio":                           map[string]any{"type": "double", "value": 0.25},
		"ok":                              map[string]any{"type": "boolean", "value": true},
		"raw":                             sattr("héllo"),
		"list":                            sattr(`["a\"b",2]`),
		"map":                             sattr(`{"k":"v"}`),
		"dup":                             sattr("last"),
		"sentry.status.message":           sattr(`boom "quoted"`),
		"sentry.is_remote":                map[string]any{"type": "boolean", "value": true},
		"sentry.kind":                     sattr("server"),
	},
}

func TestTracesProtobuf(t *testing.T) {
	body, err := proto.Marshal(traceFixture(t))
	if err != nil {
		t.Fatal(err)
	}
	env, n, err := AppendTraces(nil, Protobuf, body, Options{})
	if err != nil || n != 1 {
		t.Fatalf("AppendTraces = %d, %v", n, err)
	}
	hdr, payload := splitEnvelope(t, env)
	if hdr["type"] != "span" || hdr["item_count"] != 1.0 || hdr["content_type"] != SpanContentType {
		t.Errorf("item header = %v", hdr)
	}
	if payload["version"] != 2.0 {
		t.Errorf("version = %v", payload["version"])
	}
	items := payload["items"].([]any)
	if got := items[0].(map[string]any); !reflect.DeepEqual(got, wantSpan) {
		gj, _ := json.MarshalIndent(got, "", " ")
		t.Errorf("span:\n%s", gj)
	}
}

// The collector's ExportTraceServiceRequest, what exporters send, decodes
// as TracesData.
func TestTracesExportRequest(t *testing.T) {
	req := &colltracepb.ExportTraceServiceRequest{ResourceSpans: traceFixture(t).ResourceSpans}
	body, err := proto.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	_, n, err := AppendTraces(nil, Protobuf, body, Options{})
	if err != nil || n != 1 {
		t.Fatalf("AppendTraces = %d, %v", n, err)
	}
}

// OTLP/JSON: hex ids (any case), int64 as strings, enums as numbers,
// unknown fields ignored.
const traceJSON = `{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"checkout"}}]},
 "scopeSpans":[{"scope":{"name":"s"},"spans":[{
  "traceId":"5B8EFFF798038103D269B633813FC60C","spanId":"EEE19B7EC3C1B174","parentSpanId":"",
  "name":"", "kind":3, "startTimeUnixNano":"1544712660300000000","endTimeUnixNano":1544712661300000000,
  "attributes":[{"key":"db.system","value":{"stringValue":"postgresql"}},{"key":"n","value":{"intValue":"7"}}],
  "futureField":{"x":1},
  "links":[{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b175"}]}]}]}]}`

func TestTracesJSON(t *testing.T) {
	env, n, err := AppendTraces(nil, JSON, []byte(traceJSON), Options{})
	if err != nil || n != 1 {
		t.Fatalf("AppendTraces = %d, %v", n, err)
	}
	_, payload := splitEnvelope(t, env)
	sp := payload["items"].([]any)[0].(map[string]any)
	want := map[string]any{
		"trace_id": "5b8efff798038103d269b633813fc60c", "span_id": "eee19b7ec3c1b174",
		"name": "db", "status": "ok", "start_timestamp": 1544712660.3, "end_timestamp": 1544712661.3,
		"links": []any{map[string]any{"trace_id": "5b8efff798038103d269b633813fc60c", "span_id": "eee19b7ec3c1b175",
			"sampled": false, "attributes": map[string]any{}}},
		"attributes": map[string]any{
			"resource.service.name":   sattr("checkout"),
			"instrumentation.name":    sattr("s"),
			"instrumentation.version": sattr(""),
			"sentry.origin":           sattr("auto.otlp.spans"),
			"db.system":               sattr("postgresql"),
			"n":                       map[string]any{"type": "integer", "value": 7.0},
			"sentry.kind":             sattr("client"),
		},
	}
	if !reflect.DeepEqual(sp, want) {
		gj, _ := json.MarshalIndent(sp, "", " ")
		t.Errorf("span:\n%s", gj)
	}
}

func TestSpanName(t *testing.T) {
	for _, tc := range []struct {
		name string
		kind tracepb.Span_SpanKind
		key  string
		want string
	}{
		{"given", tracepb.Span_SPAN_KIND_SERVER, "http.method", "given"},
		{"", tracepb.Span_SPAN_KIND_SERVER, "http.method", "http.server"},
		{"", tracepb.Span_SPAN_KIND_CLIENT, "http.request.method", "http.client"},
		{"", tracepb.Span_SPAN_KIND_INTERNAL, "http.method", "http"},
		{"", tracepb.Span_SPAN_KIND_CLIENT, "db.statement", "db"},
		{"", tracepb.Span_SPAN_KIND_CLIENT, "rpc.system", ""},
	} {
		sp := &tracepb.Span{Name: tc.name, Kind: tc.kind, Attributes: []*commonpb.KeyValue{str(tc.key, "x")}}
		if got := spanName(sp); got != tc.want {
			t.Errorf("spanName(%q, %v, %s) = %q, want %q", tc.name, tc.kind, tc.key, got, tc.want)
		}
	}
}

func TestErrors(t *testing.T) {
	good := &tracepb.Span{TraceId: make([]byte, 16), SpanId: make([]byte, 8)}
	spans := func(sp *tracepb.Span) []byte {
		b, _ := proto.Marshal(&tracepb.TracesData{ResourceSpans: []*tracepb.ResourceSpans{{ScopeSpans: []*tracepb.ScopeSpans{{Spans: []*tracepb.Span{good, sp}}}}}})
		return b
	}
	for _, tc := range []struct {
		name string
		f    Format
		body []byte
		max  int
		want error
		msg  string
	}{
		{"protobuf garbage", Protobuf, []byte{0x0a, 0xff, 0x01}, 0, ErrInvalid, "protobuf"},
		{"json syntax", JSON, []byte(`{"resourceSpans":[`), 0, ErrInvalid, "json"},
		{"json wrong type", JSON, []byte(`{"resourceSpans":{}}`), 0, ErrInvalid, "json"},
		{"json id not hex", JSON, []byte(`{"resourceSpans":[{"scopeSpans":[{"spans":[{"spanId":"zz"}]}]}]}`), 0, ErrInvalid, `spanId "zz"`},
		{"short span id", Protobuf, spans(&tracepb.Span{SpanId: []byte{1, 2}}), 0, ErrInvalid, "span 1: spanId must be 8 bytes, not 2"},
		{"missing span id", Protobuf, spans(&tracepb.Span{}), 0, ErrInvalid, "span 1: spanId"},
		{"bad parent", Protobuf, spans(&tracepb.Span{SpanId: make([]byte, 8), ParentSpanId: []byte{1}}), 0, ErrInvalid, "parentSpanId"},
		{"bad link", Protobuf, spans(&tracepb.Span{SpanId: make([]byte, 8), Links: []*tracepb.Span_Link{{SpanId: make([]byte, 8)}}}), 0, ErrInvalid, "link"},
		{"too large", Protobuf, spans(good), 100, ErrTooLarge, "100 bytes"},
	} {
		_, _, err := AppendTraces(nil, tc.f, tc.body, Options{MaxSize: tc.max})
		if !errors.Is(err, tc.want) || !bytes.Contains([]byte(err.Error()), []byte(tc.msg)) {
			t.Errorf("%s: err = %v, want %v containing %q", tc.name, err, tc.want, tc.msg)
		}
	}
}

func TestEmpty(t *testing.T) {
	for _, f := range []Format{Protobuf, JSON} {
		body := []byte{}
		if f == JSON {
			body = []byte(`{}`)
		}
		env, n, err := AppendTraces(nil, f, body, Options{})
		if err != nil || n != 0 || string(env) != "{}\n" {
			t.Errorf("traces %v: %q, %d, %v", f, env, n, err)
		}
		env, n, err = AppendLogs(nil, f, body, Options{})
		if err != nil || n != 0 || string(env) != "{}\n" {
			t.Errorf("logs %v: %q, %d, %v", f, env, n, err)
		}
	}
}

func TestLogs(t *testing.T) {
	ld := &logspb.LogsData{ResourceLogs: []*logspb.ResourceLogs{{
		Resource: &resourcepb.Resource{Attributes: []*commonpb.KeyValue{str("service.name", "api")}},
		ScopeLogs: []*logspb.ScopeLogs{{
			Scope: &commonpb.InstrumentationScope{Name: "slog", Version: "1"},
			LogRecords: []*logspb.LogRecord{{
				TimeUnixNano: 1544712660300000000, SeverityNumber: logspb.SeverityNumber_SEVERITY_NUMBER_WARN2,
				TraceId: hexBytes(t, "5b8efff798038103d269b633813fc60c"), SpanId: hexBytes(t, "eee19b7ec3c1b174"),
				Body:       &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: "disk\nfull"}},
				Attributes: []*commonpb.KeyValue{str("path", "/var"), str("sentry.origin", "mine")},
			}, {
				ObservedTimeUnixNano: 1544712661000000000, SeverityText: "Warning",
				Body: &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: 3}}, // not a string: no body
			}},
		}},
	}}}
	body, err := proto.Marshal(ld)
	if err != nil {
		t.Fatal(err)
	}
	env, n, err := AppendLogs(nil, Protobuf, body, Options{})
	if err != nil || n != 2 {
		t.Fatalf("AppendLogs = %d, %v", n, err)
	}
	hdr, payload := splitEnvelope(t, env)
	if hdr["type"] != "log" || hdr["item_count"] != 2.0 || hdr["content_type"] != LogContentType {
		t.Errorf("item header = %v", hdr)
	}
	items := payload["items"].([]any)
	want0 := map[string]any{
		"timestamp": 1544712660.3, "trace_id": "5b8efff798038103d269b633813fc60c", "span_id": "eee19b7ec3c1b174",
		"level": "warn", "body": "disk\nfull",
		"attributes": map[string]any{
			"sentry.origin": sattr("mine"), "resource.service.name": sattr("api"),
			"instrumentation.name": sattr("slog"), "instrumentation.version": sattr("1"), "path": sattr("/var"),
		},
	}
	if !reflect.DeepEqual(items[0], want0) {
		gj, _ := json.MarshalIndent(items[0], "", " ")
		t.Errorf("log 0:\n%s", gj)
	}
	l1 := items[1].(map[string]any)
	if l1["timestamp"] != 1544712661.0 || l1["level"] != "warn" || l1["body"] != nil || l1["span_id"] != nil {
		t.Errorf("log 1 = %v", l1)
	}
	if id, _ := l1["trace_id"].(string); !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(id) {
		t.Errorf("log 1 trace_id = %q, want a random one", l1["trace_id"])
	}
}

func TestLevel(t *testing.T) {
	for _, tc := range []struct {
		n    int32
		text string
		want string
	}{
		{1, "", "trace"}, {5, "", "debug"}, {9, "error", "info"}, {13, "", "warn"}, {17, "", "error"}, {21, "", "fatal"}, {24, "", "fatal"},
		{0, "WARNING", "warn"}, {0, "Error", "error"}, {0, "information", "info"}, {0, "", "info"}, {25, "debug", "debug"},
	} {
		if got := level(tc.n, tc.text); got != tc.want {
			t.Errorf("level(%d, %q) = %q, want %q", tc.n, tc.text, got, tc.want)
		}
	}
}

func TestParseContentType(t *testing.T) {
	for _, tc := range []struct {
		ct   string
		want Format
		err  bool
	}{
		{"application/x-protobuf", Protobuf, false},
		{"application/json", JSON, false},
		{"application/json; charset=utf-8", JSON, false},
		{"Application/X-Protobuf", Protobuf, false},
		{"text/plain", 0, true},
		{"", 0, true},
		{"application/protobuf", 0, true},
	} {
		f, err := ParseContentType(tc.ct)
		if (err != nil) != tc.err || f != tc.want || (err != nil && !errors.Is(err, ErrContentType)) {
			t.Errorf("ParseContentType(%q) = %v, %v", tc.ct, f, err)
		}
	}
}

func TestTimestamp(t *testing.T) {
	for _, tc := range []struct {
		ns   uint64
		want string
	}{
		{0, "0.0"}, {1697620454980000000, "1697620454.98"}, {1697620454980078800, "1697620454.980079"},
		{1697620454000000400, "1697620454.0"}, {1697620454999999600, "1697620455.0"}, {1500, "0.000002"},
	} {
		if got := string(appendTimestamp(nil, tc.ns)); got != tc.want {
			t.Errorf("appendTimestamp(%d) = %s, want %s", tc.ns, got, tc.want)
		}
	}
}

func TestAppendString(t *testing.T) {
	for _, s := range []string{"plain", "quote\" back\\ nl\n tab\t ctl\x01", "héllo ☃", "bad \xff utf8", ""} {
		var got string
		if err := json.Unmarshal(appendString(nil, s), &got); err != nil {
			t.Fatalf("%q: %v", s, err)
		}
		want := string(bytes.ToValidUTF8([]byte(s), []byte("\uFFFD")))
		if got != want {
			t.Errorf("round trip %q = %q", s, got)
		}
	}
}

// Past sortAbove attributes the repeated keys are found by sorting; the
// last value still wins, across prefixes too.
func TestManyAttributes(t *testing.T) {
	var a attrs
	for _, n := range []int{3, sortAbove + 10} {
		a = a[:0]
		for i := range n {
			a.addString("k"+strconv.Itoa(i), "v")
		}
		a.addString("resource.k1", "plain")
		a.addAll("resource.", []*commonpb.KeyValue{str("k1", "prefixed")})
		a.addString("k0", "last")
		out, _ := appendAttrs(nil, a, nil)
		var m map[string]map[string]any
		if err := json.Unmarshal(out, &m); err != nil {
			t.Fatal(err)
		}
		if len(m) != n+1 || m["k0"]["value"] != "last" || m["resource.k1"]["value"] != "prefixed" {
			t.Errorf("%d attributes: %s", n, out)
		}
		if c := bytes.Count(out, []byte(`"k0"`)); c != 1 {
			t.Errorf("%d attributes: k0 written %d times", n, c)
		}
	}
}
