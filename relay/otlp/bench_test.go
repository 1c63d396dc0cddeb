package otlp

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"regexp"
	"testing"

	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// hundredSpans is a request as an instrumented HTTP service exports it: 100
// spans of one resource and scope, each with 8 attributes.
func hundredSpans(testing.TB) *tracepb.TracesData {
	spans := make([]*tracepb.Span, 100)
	for i := range spans {
		spans[i] = &tracepb.Span{
			TraceId: make([]byte, 16), SpanId: []byte{0, 0, 0, 0, 0, 0, 0, byte(i + 1)}, ParentSpanId: []byte{1, 2, 3, 4, 5, 6, 7, 8},
			Name: fmt.Sprintf("GET /api/items/%d", i), Kind: tracepb.Span_SPAN_KIND_SERVER,
			StartTimeUnixNano: 1697620454980000000, EndTimeUnixNano: 1697620454990078800,
			Status: &tracepb.Status{Code: tracepb.Status_STATUS_CODE_OK},
			Attributes: []*commonpb.KeyValue{
				str("http.request.method", "GET"), str("url.path", "/api/items"), str("server.address", "shop.example.com"),
				kv("http.response.status_code", &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: 200}}),
				str("user_agent.original", "Mozilla/5.0 (X11; Linux x86_64)"), str("network.protocol.version", "1.1"),
				kv("sampled", &commonpb.AnyValue{Value: &commonpb.AnyValue_BoolValue{BoolValue: true}}),
				kv("ratio", &commonpb.AnyValue{Value: &commonpb.AnyValue_DoubleValue{DoubleValue: 0.5}}),
			},
		}
	}
	return &tracepb.TracesData{ResourceSpans: []*tracepb.ResourceSpans{{
		Resource: &resourcepb.Resource{Attributes: []*commonpb.KeyValue{
			str("service.name", "shop"), str("telemetry.sdk.language", "go"), str("telemetry.sdk.version", "1.47.0"),
		}},
		ScopeSpans: []*tracepb.ScopeSpans{{Scope: &commonpb.InstrumentationScope{Name: "otelhttp", Version: "0.72.0"}, Spans: spans}},
	}}}
}

// BenchmarkTraces100 converts a 100-span request (go test -bench Traces100
// -benchmem ./relay/otlp; BENCHMARKS.md has the figures).
func BenchmarkTraces100(b *testing.B) {
	td := hundredSpans(b)
	pb, err := proto.Marshal(td)
	if err != nil {
		b.Fatal(err)
	}
	js, err := protojson.Marshal(td)
	if err != nil {
		b.Fatal(err)
	}
	js = idsToHex(b, js)
	for _, c := range []struct {
		name string
		f    Format
		body []byte
	}{{"protobuf", Protobuf, pb}, {"json", JSON, js}} {
		b.Run(c.name, func(b *testing.B) {
			var dst []byte
			b.SetBytes(int64(len(c.body)))
			b.ReportAllocs()
			for b.Loop() {
				var err error
				if dst, _, err = AppendTraces(dst[:0], c.f, c.body, Options{}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(dst)), "out-bytes")
		})
	}
}

var idField = regexp.MustCompile(`"(traceId|spanId|parentSpanId)":"([^"]*)"`)

// idsToHex turns protojson's base64 ids into OTLP/JSON's hex.
func idsToHex(tb testing.TB, js []byte) []byte {
	return idField.ReplaceAllFunc(js, func(m []byte) []byte {
		sub := idField.FindSubmatch(m)
		raw, err := base64.StdEncoding.DecodeString(string(sub[2]))
		if err != nil {
			tb.Fatal(err)
		}
		return []byte(`"` + string(sub[1]) + `":"` + hex.EncodeToString(raw) + `"`)
	})
}
