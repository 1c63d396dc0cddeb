package integration

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploghttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	otellog "go.opentelemetry.io/otel/log"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/baton-relay/baton/envelope"
)

// otlpItems reads topic until its records hold want container items of
// type typ, and returns them decoded.
func otlpItems(t *testing.T, brokers, topic, typ, contentType string, want int) []map[string]any {
	t.Helper()
	var items []map[string]any
	consumeUntil(t, brokers, topic, 15*time.Second, func(recs []*kgo.Record) bool {
		items = items[:0]
		for _, rec := range recs {
			env, err := envelope.Parse(rec.Value)
			if err != nil {
				t.Fatalf("record is not an envelope: %v", err)
			}
			for _, it := range env.Items {
				if it.Type.Info().Name != typ || it.ContentType != contentType || it.ItemCount < 1 {
					t.Fatalf("item %s (%s, %d items), want a %s container", it.Type.Info().Name, it.ContentType, it.ItemCount, typ)
				}
				var c struct{ Items []map[string]any }
				if err := json.Unmarshal(it.Payload, &c); err != nil || len(c.Items) != it.ItemCount {
					t.Fatalf("payload %q (%v) does not hold item_count %d items", it.Payload, err, it.ItemCount)
				}
				items = append(items, c.Items...)
			}
		}
		return len(items) >= want
	})
	return items
}

// attrValue is the value of a Sentry attribute, failing when it is absent
// or of another type.
func attrValue(t *testing.T, item map[string]any, key, typ string) any {
	t.Helper()
	a, _ := item["attributes"].(map[string]any)[key].(map[string]any)
	if a == nil || a["type"] != typ {
		t.Errorf("attribute %s = %v, want type %s in %v", key, a, typ, item["attributes"])
		return nil
	}
	return a["value"]
}

// failOnOTelErrors makes errors the SDK's pipelines report (a failed
// export among them) fail the test.
func failOnOTelErrors(t *testing.T) {
	prev := otel.GetErrorHandler()
	var mu sync.Mutex
	done := false
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		mu.Lock()
		defer mu.Unlock()
		if !done { // an exporter's goroutine may report after the test ended
			t.Errorf("otel: %v", err)
		}
	}))
	t.Cleanup(func() {
		mu.Lock()
		done = true
		mu.Unlock()
		otel.SetErrorHandler(prev)
	})
}

func otlpURL(n *node, signal string) string {
	return n.url + "/api/42/integration/otlp/v1/" + signal
}

// TestOTLPTracesSDK drives the OTel Go SDK's OTLP/HTTP trace exporter
// (protobuf, gzip) against a running Baton: the spans arrive in Kafka as
// one span v2 container with their ids, names and attributes.
func TestOTLPTracesSDK(t *testing.T) {
	n := startNode(t, "")
	failOnOTelErrors(t)
	ctx := context.Background()
	exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(otlpURL(n, "traces")),
		otlptracehttp.WithHeaders(authHeader(testKey)), otlptracehttp.WithCompression(otlptracehttp.GzipCompression))
	if err != nil {
		t.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp),
		sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", "checkout"), attribute.String("telemetry.sdk.language", "go"))))
	tr := tp.Tracer("baton-test", trace.WithInstrumentationVersion("1.2.3"))
	_, parent := tr.Start(ctx, "POST /cart", trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(
		attribute.String("http.request.method", "POST"), attribute.Int("cart.items", 3),
		attribute.Float64("cart.total", 19.5), attribute.Bool("cart.guest", true),
		attribute.StringSlice("cart.skus", []string{"a-1", "b-2"})))
	_, child := tr.Start(trace.ContextWithSpan(ctx, parent), "SELECT carts", trace.WithSpanKind(trace.SpanKindClient))
	child.SetStatus(codes.Error, "deadlock")
	child.End()
	parent.End()
	if err := tp.ForceFlush(ctx); err != nil {
		t.Fatalf("export: %v", err)
	}
	if err := tp.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}

	items := otlpItems(t, n.kafka, "baton.span", "span", "application/vnd.sentry.items.span.v2+json", 2)
	byName := map[string]map[string]any{}
	for _, it := range items {
		byName[it["name"].(string)] = it
	}
	p, c := byName["POST /cart"], byName["SELECT carts"]
	if p == nil || c == nil {
		t.Fatalf("spans = %v", items)
	}
	if p["trace_id"] != parent.SpanContext().TraceID().String() || p["span_id"] != parent.SpanContext().SpanID().String() ||
		c["parent_span_id"] != p["span_id"] || c["trace_id"] != p["trace_id"] {
		t.Errorf("ids: parent %v, child %v", p, c)
	}
	if p["status"] != "ok" || c["status"] != "error" || attrValue(t, c, "sentry.status.message", "string") != "deadlock" {
		t.Errorf("status: parent %v, child %v", p["status"], c["status"])
	}
	if st, et := p["start_timestamp"].(float64), p["end_timestamp"].(float64); st < 1e9 || et < st {
		t.Errorf("timestamps %v, %v", st, et)
	}
	for key, want := range map[string]any{"cart.items": 3.0, "cart.total": 19.5, "cart.guest": true, "cart.skus": `["a-1","b-2"]`,
		"http.request.method": "POST", "resource.service.name": "checkout", "instrumentation.name": "baton-test",
		"instrumentation.version": "1.2.3", "sentry.kind": "server", "sentry.platform": "go", "sentry.origin": "auto.otlp.spans"} {
		typ := map[string]string{"cart.items": "integer", "cart.total": "double", "cart.guest": "boolean"}[key]
		if typ == "" {
			typ = "string"
		}
		if got := attrValue(t, p, key, typ); got != want {
			t.Errorf("attribute %s = %v, want %v", key, got, want)
		}
	}
	st := waitBalanced(t, n, 10*time.Second)
	// Both spans ride in one container: one envelope item, one record.
	if c := st.Classes["span"]; c.Accepted.Items != 1 || c.Delivered.Items != 1 || len(st.Rejected) > 0 {
		t.Errorf("span class %+v, rejected %v", c, st.Rejected)
	}
}

// TestOTLPLogsSDK does the same with the SDK's OTLP/HTTP log exporter:
// logs arrive as one log container with level, body, ids and attributes.
func TestOTLPLogsSDK(t *testing.T) {
	n := startNode(t, "")
	failOnOTelErrors(t)
	ctx := context.Background()
	exp, err := otlploghttp.New(ctx, otlploghttp.WithEndpointURL(otlpURL(n, "logs")+"/"),
		otlploghttp.WithHeaders(authHeader(testKey)))
	if err != nil {
		t.Fatal(err)
	}
	lp := sdklog.NewLoggerProvider(sdklog.WithProcessor(sdklog.NewBatchProcessor(exp)),
		sdklog.WithResource(resource.NewSchemaless(attribute.String("service.name", "billing"))))
	traceID, _ := trace.TraceIDFromHex("5b8efff798038103d269b633813fc60c")
	spanID, _ := trace.SpanIDFromHex("eee19b7ec3c1b174")
	lctx := trace.ContextWithSpanContext(ctx, trace.NewSpanContext(trace.SpanContextConfig{TraceID: traceID, SpanID: spanID}))
	var rec otellog.Record
	rec.SetTimestamp(time.Unix(1_760_000_000, 250_000_000))
	rec.SetSeverity(otellog.SeverityError)
	rec.SetBody(attribute.StringValue("invoice 7 failed"))
	rec.AddAttributes(attribute.Int("invoice.id", 7), attribute.String("reason", "card declined"))
	lp.Logger("billing.worker").Emit(lctx, rec)
	var warn otellog.Record
	warn.SetSeverity(otellog.SeverityWarn)
	warn.SetBody(attribute.StringValue("slow"))
	lp.Logger("billing.worker").Emit(ctx, warn)
	if err := lp.ForceFlush(ctx); err != nil {
		t.Fatalf("export: %v", err)
	}
	if err := lp.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}

	items := otlpItems(t, n.kafka, "baton.log", "log", "application/vnd.sentry.items.log+json", 2)
	var failed, slow map[string]any
	for _, it := range items {
		switch it["body"] {
		case "invoice 7 failed":
			failed = it
		case "slow":
			slow = it
		}
	}
	if failed == nil || slow == nil {
		t.Fatalf("logs = %v", items)
	}
	if failed["level"] != "error" || failed["timestamp"] != 1_760_000_000.25 ||
		failed["trace_id"] != traceID.String() || failed["span_id"] != spanID.String() {
		t.Errorf("log = %v", failed)
	}
	if attrValue(t, failed, "invoice.id", "integer") != 7.0 || attrValue(t, failed, "reason", "string") != "card declined" ||
		attrValue(t, failed, "resource.service.name", "string") != "billing" ||
		attrValue(t, failed, "instrumentation.name", "string") != "billing.worker" {
		t.Errorf("attributes = %v", failed["attributes"])
	}
	// No timestamp: the SDK's observed time stands in; no span: none.
	if ts, _ := slow["timestamp"].(float64); slow["level"] != "warn" || ts < 1e9 || slow["span_id"] != nil {
		t.Errorf("log = %v", slow)
	}
	st := waitBalanced(t, n, 10*time.Second)
	if c := st.Classes["log"]; c.Accepted.Items != 1 || c.Delivered.Items != 1 {
		t.Errorf("log class %+v", c)
	}
}

// otlpTraceJSON is an OTLP/JSON ExportTraceServiceRequest as exporters
// that speak JSON send it: hex ids, int64 as strings, enums as numbers.
const otlpTraceJSON = `{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"web"}}]},
 "scopeSpans":[{"scope":{"name":"browser"},"spans":[{"traceId":"0AF7651916CD43DD8448EB211C80319C","spanId":"B7AD6B7169203331",
 "name":"load /","kind":1,"startTimeUnixNano":"1760000000000000000","endTimeUnixNano":"1760000000500000000",
 "attributes":[{"key":"page.path","value":{"stringValue":"/"}}]}]}]}]}`

// TestOTLPJSON posts OTLP/JSON, plain and gzip-compressed, with the
// sentry_key in the query as Relay also accepts.
func TestOTLPJSON(t *testing.T) {
	n := startNode(t, "")
	url := otlpURL(n, "traces") + "?sentry_key=" + testKey
	if code, body, _ := post(t, url, []byte(otlpTraceJSON), map[string]string{"Content-Type": "application/json"}); code != http.StatusOK || body != "" {
		t.Fatalf("json: %d %q", code, body)
	}
	var gz bytes.Buffer
	w := gzip.NewWriter(&gz)
	w.Write([]byte(strings.Replace(otlpTraceJSON, "load /", "load /gz", 1)))
	w.Close()
	// An exporter's own Authorization of another scheme is ignored, as Relay
	// does: the query key authenticates.
	if code, body, _ := post(t, url, gz.Bytes(), map[string]string{"Content-Type": "application/json", "Content-Encoding": "gzip",
		"Authorization": "Bearer collector-token"}); code != http.StatusOK {
		t.Fatalf("gzip json: %d %q", code, body)
	}
	items := otlpItems(t, n.kafka, "baton.span", "span", "application/vnd.sentry.items.span.v2+json", 2)
	names := map[any]bool{}
	for _, it := range items {
		names[it["name"]] = true
		if it["trace_id"] != "0af7651916cd43dd8448eb211c80319c" || it["span_id"] != "b7ad6b7169203331" ||
			it["start_timestamp"] != 1_760_000_000.0 || it["end_timestamp"] != 1_760_000_000.5 ||
			attrValue(t, it, "page.path", "string") != "/" {
			t.Errorf("span = %v", it)
		}
	}
	if !names["load /"] || !names["load /gz"] {
		t.Errorf("names = %v", names)
	}
}

// TestOTLPRefusals: what Baton refuses at the OTLP routes, and how.
func TestOTLPRefusals(t *testing.T) {
	n := startNode(t, "")
	auth := func(ct string) map[string]string {
		h := authHeader(testKey)
		h["Content-Type"] = ct
		return h
	}
	for _, tc := range []struct {
		name, method, signal, body string
		headers                    map[string]string
		code                       int
		detail                     string
	}{
		{"wrong content type", "POST", "traces", "x", auth("text/plain"), http.StatusUnsupportedMediaType, "unsupported content type"},
		{"no content type", "POST", "logs", "x", authHeader(testKey), http.StatusUnsupportedMediaType, "unsupported content type"},
		{"malformed protobuf", "POST", "traces", "\x0a\xff\x01", auth("application/x-protobuf"), http.StatusBadRequest, "protobuf"},
		{"malformed json", "POST", "logs", `{"resourceLogs":[`, auth("application/json"), http.StatusBadRequest, "json"},
		{"id not hex", "POST", "traces", `{"resourceSpans":[{"scopeSpans":[{"spans":[{"spanId":"xyz"}]}]}]}`, auth("application/json"), http.StatusBadRequest, "not a hex id"},
		{"span without id", "POST", "traces", `{"resourceSpans":[{"scopeSpans":[{"spans":[{"name":"x"}]}]}]}`, auth("application/json"), http.StatusBadRequest, "spanId must be 8 bytes"},
		{"no auth", "POST", "traces", otlpTraceJSON, map[string]string{"Content-Type": "application/json"}, http.StatusUnauthorized, "missing authorization"},
		{"bad encoding", "POST", "traces", otlpTraceJSON, map[string]string{"Content-Type": "application/json", "Content-Encoding": "gzip", "X-Sentry-Auth": authHeader(testKey)["X-Sentry-Auth"]}, http.StatusBadRequest, "decode"},
		{"GET", "GET", "traces", "", authHeader(testKey), http.StatusMethodNotAllowed, "method not allowed"},
		{"metrics are not served", "POST", "metrics", "x", auth("application/x-protobuf"), http.StatusNotFound, "not found"},
	} {
		code, body, hdr := sendRequest(t, tc.method, otlpURL(n, tc.signal), tc.body, tc.headers)
		if code != tc.code || !strings.Contains(body, tc.detail) {
			t.Errorf("%s: %d %s, want %d with %q", tc.name, code, body, tc.code, tc.detail)
		}
		if code != http.StatusNotFound && hdr.Get("Access-Control-Allow-Origin") == "" {
			t.Errorf("%s: no CORS headers", tc.name)
		}
	}
	// An empty export is accepted and holds nothing.
	if code, body, _ := post(t, otlpURL(n, "logs"), nil, auth("application/x-protobuf")); code != http.StatusOK || body != "" {
		t.Errorf("empty export: %d %q", code, body)
	}
	st := n.r.Stats()
	if st.Rejected["content_type"] != 2 || st.Rejected["invalid"] < 4 || st.Accepted != 0 {
		t.Errorf("stats: rejected %v, accepted %d", st.Rejected, st.Accepted)
	}
}

// TestOTLPDecodeBudget: an OTLP body is charged for the messages decoding
// it makes, not its size alone. 1 MB of empty spans becomes ~170 MB of
// structs: with the default server.max_inflight_bytes (48 MiB) it gets
// 413 before it is decoded, while a realistic export still passes.
func TestOTLPDecodeBudget(t *testing.T) {
	n := startNode(t, "")
	auth := map[string]string{"Content-Type": "application/x-protobuf", "X-Sentry-Auth": authHeader(testKey)["X-Sentry-Auth"]}
	var scope []byte
	for range 500_000 {
		scope = protowire.AppendTag(scope, 2, protowire.BytesType) // ScopeSpans.spans
		scope = protowire.AppendBytes(scope, nil)
	}
	rs := protowire.AppendTag(nil, 2, protowire.BytesType) // ResourceSpans.scope_spans
	rs = protowire.AppendBytes(rs, scope)
	body := protowire.AppendTag(nil, 1, protowire.BytesType) // TracesData.resource_spans
	body = protowire.AppendBytes(body, rs)
	code, msg, _ := post(t, otlpURL(n, "traces"), body, auth)
	if code != http.StatusRequestEntityTooLarge || !strings.Contains(msg, "max_inflight_bytes") {
		t.Errorf("1 MB of empty spans: %d %s, want 413 naming server.max_inflight_bytes", code, msg)
	}
	if code, msg, _ := post(t, otlpURL(n, "traces"), []byte(otlpTraceJSON), map[string]string{
		"Content-Type": "application/json", "X-Sentry-Auth": auth["X-Sentry-Auth"]}); code != http.StatusOK {
		t.Errorf("a realistic export: %d %s", code, msg)
	}
	if st := waitBalanced(t, n, 10*time.Second); st.Rejected["too_large"] != 1 || st.Bodies.InUse != 0 {
		t.Errorf("after the requests: rejected %v, bodies %+v", st.Rejected, st.Bodies)
	}
}
