package telemetry

import (
	"context"
	"errors"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// ErrNoReader is returned by Read when the Prometheus exporter (and with it
// the reader beside it) is off.
var ErrNoReader = errors.New("telemetry: no reader: telemetry.metrics_listen is not set")

// Point is one data point of an instrument, flattened for readers outside
// the SDK (the status page): a counter's or gauge's value, or a
// histogram's cumulative bucket counts.
type Point struct {
	Attrs map[string]string
	Value float64 // counters and gauges; a histogram's count
	// Bounds and Counts are a histogram's: Counts[i] counts values ≤
	// Bounds[i], the last one those above every bound.
	Bounds []float64
	Counts []uint64
}

// Reading is the points of every instrument, by instrument name.
type Reading map[string][]Point

// Read collects every instrument once (the snapshot callbacks run, as for a
// scrape of /metrics). Histograms are cumulative since start.
func (t *Telemetry) Read(ctx context.Context) (Reading, error) {
	if t.reader == nil {
		return nil, ErrNoReader
	}
	var rm metricdata.ResourceMetrics
	if err := t.reader.Collect(ctx, &rm); err != nil {
		return nil, err
	}
	out := Reading{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			out[m.Name] = append(out[m.Name], points(m.Data)...)
		}
	}
	return out, nil
}

func points(data metricdata.Aggregation) []Point {
	var ps []Point
	switch d := data.(type) {
	case metricdata.Sum[int64]:
		for _, p := range d.DataPoints {
			ps = append(ps, Point{Attrs: attrs(p.Attributes), Value: float64(p.Value)})
		}
	case metricdata.Sum[float64]:
		for _, p := range d.DataPoints {
			ps = append(ps, Point{Attrs: attrs(p.Attributes), Value: p.Value})
		}
	case metricdata.Gauge[int64]:
		for _, p := range d.DataPoints {
			ps = append(ps, Point{Attrs: attrs(p.Attributes), Value: float64(p.Value)})
		}
	case metricdata.Gauge[float64]:
		for _, p := range d.DataPoints {
			ps = append(ps, Point{Attrs: attrs(p.Attributes), Value: p.Value})
		}
	case metricdata.Histogram[float64]:
		for _, p := range d.DataPoints {
			ps = append(ps, Point{Attrs: attrs(p.Attributes), Value: float64(p.Count), Bounds: p.Bounds, Counts: p.BucketCounts})
		}
	}
	return ps
}

func attrs(s attribute.Set) map[string]string {
	if s.Len() == 0 {
		return nil
	}
	m := make(map[string]string, s.Len())
	for it := s.Iter(); it.Next(); {
		kv := it.Attribute()
		m[string(kv.Key)] = kv.Value.String()
	}
	return m
}
