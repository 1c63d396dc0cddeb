package telemetry

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"testing"

	"go.opentelemetry.io/otel/trace"
)

func TestTraceURL(t *testing.T) {
	for in, want := range map[string]string{
		"http://c:4318/v1/metrics":        "http://c:4318/v1/traces",
		"http://c:4318/custom/v1/metrics": "http://c:4318/custom/v1/traces",
		"http://c:4318":                   "http://c:4318/v1/traces",
		"http://c:4318/otlp/":             "http://c:4318/otlp/v1/traces",
	} {
		if got := TraceURL(in); got != want {
			t.Errorf("TraceURL(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestSample: the root decision lets through about the configured share,
// all of it at 1, none at 0 or without an endpoint, and allocates nothing.
func TestSample(t *testing.T) {
	if tel, err := New(Options{TraceSampleRatio: 1}); err != nil || tel.Tracing() || tel.Sample() {
		t.Fatalf("no endpoint: tracing %v, err %v", tel.Tracing(), err)
	}
	for _, ratio := range []float64{0, 0.01, 0.5, 1} {
		tel, err := New(Options{OTLPEndpoint: "http://127.0.0.1:1/v1/metrics", TraceSampleRatio: ratio})
		if err != nil {
			t.Fatal(err)
		}
		if !tel.Tracing() {
			t.Fatal("an OTLP endpoint does not turn tracing on")
		}
		const n = 200_000
		hits := 0
		for range n {
			if tel.Sample() {
				hits++
			}
		}
		got := float64(hits) / n
		if ratio == 0 && hits != 0 || ratio == 1 && hits != n || got < ratio*0.9 || got > ratio*1.1 {
			t.Errorf("ratio %v: sampled %v", ratio, got)
		}
		if a := testing.AllocsPerRun(100, func() { tel.Sample() }); a != 0 {
			t.Errorf("Sample allocates %v", a)
		}
		_ = tel.Shutdown(context.Background())
	}
}

// TestLogHandler: a line logged with a span's context carries its ids,
// one without does not.
func TestLogHandler(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(LogHandler(slog.NewJSONHandler(&buf, nil))).With("class", "error")
	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{0x4b, 0xf9, 1}, SpanID: trace.SpanID{0, 0xf0, 2}, TraceFlags: trace.FlagsSampled})
	log.ErrorContext(trace.ContextWithSpanContext(context.Background(), sc), "delivery failed")
	log.Error("no span")
	dec := json.NewDecoder(&buf)
	var with, without map[string]any
	if err := dec.Decode(&with); err != nil {
		t.Fatal(err)
	}
	if err := dec.Decode(&without); err != nil {
		t.Fatal(err)
	}
	if with["trace_id"] != sc.TraceID().String() || with["span_id"] != sc.SpanID().String() || with["class"] != "error" {
		t.Errorf("line with a span: %v", with)
	}
	if _, ok := without["trace_id"]; ok {
		t.Errorf("line without a span: %v", without)
	}
}
