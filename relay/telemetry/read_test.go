package telemetry

import (
	"context"
	"errors"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// TestRead checks that Read sees the instruments /metrics exports, with
// their attributes, histograms' buckets and the process's figures.
func TestRead(t *testing.T) {
	tel, err := New(Options{Prometheus: true})
	if err != nil {
		t.Fatal(err)
	}
	defer tel.Shutdown(context.Background())
	m := tel.MeterProvider().Meter("test")
	c, _ := m.Int64Counter("test_total")
	h, _ := m.Float64Histogram("test_seconds", metric.WithExplicitBucketBoundaries(0.1, 1))
	c.Add(context.Background(), 3, metric.WithAttributes(attribute.String("class", "error")))
	h.Record(context.Background(), 0.5)
	rd, err := tel.Read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if p := rd["test_total"]; len(p) != 1 || p[0].Value != 3 || p[0].Attrs["class"] != "error" {
		t.Errorf("counter %+v", p)
	}
	if p := rd["test_seconds"]; len(p) != 1 || len(p[0].Counts) != 3 || p[0].Counts[1] != 1 || p[0].Value != 1 {
		t.Errorf("histogram %+v", p)
	}
	if p := rd["process_resident_memory_bytes"]; len(p) != 1 || p[0].Value <= 0 {
		t.Errorf("process_resident_memory_bytes %+v", p)
	}
	off, _ := New(Options{})
	if _, err := off.Read(context.Background()); !errors.Is(err, ErrNoReader) {
		t.Errorf("Read without Prometheus: %v, want ErrNoReader", err)
	}
}
