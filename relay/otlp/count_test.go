package otlp

import (
	"runtime"
	"testing"

	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// decodeAlloc is what decoding body allocates, as the conversions do.
func decodeAlloc(t *testing.T, f Format, body []byte, m proto.Message) int {
	t.Helper()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	if _, err := unmarshal(f, body, m, nil); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	return int(after.TotalAlloc - before.TotalAlloc)
}

// emptySpans is the hostile shape: about 1 MB of 2-byte empty spans.
func emptySpans(n int) *tracepb.TracesData {
	spans := make([]*tracepb.Span, n)
	for i := range spans {
		spans[i] = &tracepb.Span{}
	}
	return &tracepb.TracesData{ResourceSpans: []*tracepb.ResourceSpans{{ScopeSpans: []*tracepb.ScopeSpans{{Spans: spans}}}}}
}

// manyAttributes is spans of empty attributes, events and links.
func manyAttributes(n int) *tracepb.TracesData {
	attrs := make([]*commonpb.KeyValue, n)
	for i := range attrs {
		attrs[i] = &commonpb.KeyValue{Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{}}}
	}
	sp := &tracepb.Span{Attributes: attrs}
	for range n / 4 {
		sp.Events = append(sp.Events, &tracepb.Span_Event{})
		sp.Links = append(sp.Links, &tracepb.Span_Link{})
	}
	return &tracepb.TracesData{ResourceSpans: []*tracepb.ResourceSpans{{ScopeSpans: []*tracepb.ScopeSpans{{Spans: []*tracepb.Span{sp}}}}}}
}

// nestedValues is attributes of nested arrays and key-value lists.
func nestedValues(n int) *tracepb.TracesData {
	var attrs []*commonpb.KeyValue
	for range n {
		inner := &commonpb.AnyValue{Value: &commonpb.AnyValue_KvlistValue{KvlistValue: &commonpb.KeyValueList{
			Values: []*commonpb.KeyValue{{Key: "k", Value: &commonpb.AnyValue{}}}}}}
		attrs = append(attrs, kv("a", &commonpb.AnyValue{Value: &commonpb.AnyValue_ArrayValue{ArrayValue: &commonpb.ArrayValue{
			Values: []*commonpb.AnyValue{inner, {}, {}}}}}))
	}
	return &tracepb.TracesData{ResourceSpans: []*tracepb.ResourceSpans{{ScopeSpans: []*tracepb.ScopeSpans{{Spans: []*tracepb.Span{{Attributes: attrs}}}}}}}
}

// shortFields is a span of 1-byte ids, names and unknown fields repeated:
// each is a string, bytes or unknown-field allocation of its own.
func shortFields(t *testing.T, n int) *tracepb.TracesData {
	var sp []byte
	for range n {
		sp = protowire.AppendTag(sp, 1, protowire.BytesType) // trace_id
		sp = protowire.AppendBytes(sp, []byte{1})
		sp = protowire.AppendTag(sp, 5, protowire.BytesType) // name
		sp = protowire.AppendBytes(sp, []byte{'a'})
		sp = protowire.AppendTag(sp, 99, protowire.VarintType) // unknown
		sp = protowire.AppendVarint(sp, 1)
	}
	var m tracepb.Span
	if err := proto.Unmarshal(sp, &m); err != nil {
		t.Fatal(err)
	}
	return &tracepb.TracesData{ResourceSpans: []*tracepb.ResourceSpans{{ScopeSpans: []*tracepb.ScopeSpans{{Spans: []*tracepb.Span{&m}}}}}}
}

func emptyLogs(n int) *logspb.LogsData {
	recs := make([]*logspb.LogRecord, n)
	for i := range recs {
		recs[i] = &logspb.LogRecord{}
	}
	return &logspb.LogsData{ResourceLogs: []*logspb.ResourceLogs{{ScopeLogs: []*logspb.ScopeLogs{{LogRecords: recs}}}}}
}

// TestDecodeCost checks the charge of a body against what decoding it
// allocates: never less (hostile shapes included), and not far more for
// a realistic request.
func TestDecodeCost(t *testing.T) {
	for _, c := range []struct {
		name    string
		m       proto.Message
		logs    bool
		maxOver float64 // how far the charge may pass the allocation
	}{
		{"realistic", hundredSpans(t), false, 3},
		{"empty spans", emptySpans(500_000), false, 0},
		{"many attributes", manyAttributes(100_000), false, 0},
		{"nested values", nestedValues(20_000), false, 0},
		{"empty logs", emptyLogs(500_000), true, 0},
		{"short fields", shortFields(t, 100_000), false, 0},
	} {
		pb, err := proto.Marshal(c.m)
		if err != nil {
			t.Fatal(err)
		}
		js, err := protojson.Marshal(c.m)
		if err != nil {
			t.Fatal(err)
		}
		js = idsToHex(t, js)
		for _, b := range []struct {
			f    Format
			body []byte
		}{{Protobuf, pb}, {JSON, js}} {
			charge := TracesCost(b.f, b.body)
			if c.logs {
				charge = LogsCost(b.f, b.body)
			}
			got := decodeAlloc(t, b.f, b.body, c.m.ProtoReflect().Type().New().Interface())
			t.Logf("%s format %d: body %d B, allocated %d B (%.0f/B), charged %d B (%.2fx)",
				c.name, b.f, len(b.body), got, float64(got)/float64(len(b.body)), charge, float64(charge)/float64(got))
			if charge < got {
				t.Errorf("%s format %d: charged %d B, decoding allocated %d B", c.name, b.f, charge, got)
			}
			if c.maxOver > 0 && float64(charge) > c.maxOver*float64(got) {
				t.Errorf("%s format %d: charged %d B, %.1f times the %d B decoding allocated", c.name, b.f, charge, float64(charge)/float64(got), got)
			}
		}
	}
}

// TestMessagesCost counts the messages of a known body: strings and bytes
// are not taken for messages, and a malformed tail stops the count.
func TestMessagesCost(t *testing.T) {
	td := &tracepb.TracesData{ResourceSpans: []*tracepb.ResourceSpans{{ScopeSpans: []*tracepb.ScopeSpans{{
		Spans: []*tracepb.Span{{Name: "\x0a\x00", TraceId: []byte{0x12, 0}, Attributes: []*commonpb.KeyValue{str("k", "v")}}, {}},
	}}}}}
	pb, err := proto.Marshal(td)
	if err != nil {
		t.Fatal(err)
	}
	// resource spans, scope spans, 2 spans, key-value, any-value
	want := msgCost["opentelemetry.proto.trace.v1.ResourceSpans"] + msgCost["opentelemetry.proto.trace.v1.ScopeSpans"] +
		2*msgCost["opentelemetry.proto.trace.v1.Span"] + msgCost["opentelemetry.proto.common.v1.KeyValue"] +
		msgCost["opentelemetry.proto.common.v1.AnyValue"]
	if got := messagesCost(pb, tracesDesc, 100); got != want {
		t.Errorf("messagesCost = %d, want %d", got, want)
	}
	if got := messagesCost(append(pb, 0x0a, 0x7f), tracesDesc, 100); got != want {
		t.Errorf("messagesCost with a truncated tail = %d, want %d", got, want)
	}
}
