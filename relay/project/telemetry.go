package project

import (
	"context"
	"errors"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
)

// meterName is the instrumentation scope of the cache's instruments.
const meterName = "github.com/baton-relay/baton/relay/project"

// fetchBuckets are the bounds (seconds) of the fetch latency histogram.
var fetchBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}

// instruments are the cache's synchronous instruments; attribute sets are
// built once, since lookups are on the ingest path.
type instruments struct {
	lookups   metric.Int64Counter
	hit, miss []metric.AddOption
	evictions metric.Int64Counter
	fetch     metric.Float64Histogram
	ok, fail  []metric.RecordOption
}

func newInstruments(mp metric.MeterProvider) (*instruments, error) {
	if mp == nil {
		mp = noop.NewMeterProvider()
	}
	m := mp.Meter(meterName)
	var in instruments
	var errs [3]error
	in.lookups, errs[0] = m.Int64Counter("baton_project_cache_lookups_total",
		metric.WithDescription("Project config lookups, by result: hit (a config served) or miss (pending, unknown, or asked for)."))
	in.evictions, errs[1] = m.Int64Counter("baton_project_cache_evictions_total",
		metric.WithDescription("Configs pushed out of the cache by newer ones (managed.cache.max_projects)."))
	in.fetch, errs[2] = m.Float64Histogram("baton_project_fetch_latency_seconds",
		metric.WithDescription("Project config requests to the upstream, by result."),
		metric.WithUnit("s"), metric.WithExplicitBucketBoundaries(fetchBuckets...))
	if err := errors.Join(errs[:]...); err != nil {
		return nil, err
	}
	add := func(k, v string) []metric.AddOption {
		return []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(attribute.String(k, v)))}
	}
	rec := func(k, v string) []metric.RecordOption {
		return []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(attribute.String(k, v)))}
	}
	in.hit, in.miss = add("result", "hit"), add("result", "miss")
	in.ok, in.fail = rec("result", "ok"), rec("result", "failed")
	return &in, nil
}

func (in *instruments) lookup(hit bool) {
	opts := in.miss
	if hit {
		opts = in.hit
	}
	in.lookups.Add(context.Background(), 1, opts...)
}

func (in *instruments) evicted() { in.evictions.Add(context.Background(), 1) }

func (in *instruments) fetched(seconds float64, failed bool) {
	opts := in.ok
	if failed {
		opts = in.fail
	}
	in.fetch.Record(context.Background(), seconds, opts...)
}
