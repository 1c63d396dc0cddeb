package lanes

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// latencyWindow is the handler calls per lane the quantiles are taken over:
// a fixed ring, so the metrics' memory does not grow with traffic.
const latencyWindow = 4096

// laneMetrics are one lane's counters. Every record taken ends in exactly
// one of done, escalated and dead_lettered, or is redelivered (shutdown,
// kill, rebalance) and counted again where it is handled next.
type laneMetrics struct {
	consumed, done, escalated, deadLettered atomic.Int64
	late, retried, throttled                atomic.Int64
	produceErrors, fetchErrors, pausedPolls atomic.Int64
	commitErrors                            atomic.Int64
	lag                                     atomic.Int64

	mu   sync.Mutex
	ring []time.Duration
	n    int
}

func newLaneMetrics() *laneMetrics {
	return &laneMetrics{ring: make([]time.Duration, 0, latencyWindow)}
}

func (m *laneMetrics) observe(d time.Duration) {
	m.mu.Lock()
	if len(m.ring) < latencyWindow {
		m.ring = append(m.ring, d)
	} else {
		m.ring[m.n%latencyWindow] = d
	}
	m.n++
	m.mu.Unlock()
}

// quantiles returns the p50 and p99 of the recent handler calls.
func (m *laneMetrics) quantiles() (p50, p99 time.Duration) {
	m.mu.Lock()
	s := slices.Clone(m.ring)
	m.mu.Unlock()
	if len(s) == 0 {
		return 0, 0
	}
	slices.Sort(s)
	return s[len(s)/2], s[min(len(s)-1, len(s)*99/100)]
}

// LaneStats is a snapshot of one lane's metrics.
type LaneStats struct {
	Lane                                    string
	Consumed, Done, Escalated, DeadLettered int64
	Late, Retried, Throttled, ProduceErrors int64
	CommitErrors                            int64
	Lag                                     int64
	Paused                                  bool
	P50, P99                                time.Duration // handler call time, recent calls
}

// Stats returns every lane's metrics, in Options.Lanes order.
func (w *Worker) Stats() []LaneStats {
	out := make([]LaneStats, len(w.lanes))
	for i, l := range w.lanes {
		m := l.m
		p50, p99 := m.quantiles()
		out[i] = LaneStats{Lane: l.o.Topic, Consumed: m.consumed.Load(), Done: m.done.Load(),
			Escalated: m.escalated.Load(), DeadLettered: m.deadLettered.Load(), Late: m.late.Load(),
			Retried: m.retried.Load(), Throttled: m.throttled.Load(), ProduceErrors: m.produceErrors.Load(),
			CommitErrors: m.commitErrors.Load(),
			Lag:          m.lag.Load(), Paused: l.paused.Load(), P50: p50, P99: p99}
	}
	return out
}

// meterName is the instrumentation scope of the lane instruments.
const meterName = "github.com/baton-relay/baton/routing/lanes"

// RegisterMetrics registers the lanes' instruments with mp (cmd/baton
// passes relay/telemetry's, which serves them on /metrics and pushes them
// over OTLP). They are observed from Stats at each collection, so handling
// a record costs the atomic adds it already does and nothing more.
func (w *Worker) RegisterMetrics(mp metric.MeterProvider) (metric.Registration, error) {
	m := mp.Meter(meterName)
	var errs []error
	counter := func(name, desc string) metric.Int64ObservableCounter {
		c, err := m.Int64ObservableCounter("baton_lane_"+name, metric.WithDescription(desc))
		errs = append(errs, err)
		return c
	}
	gauge := func(name, desc string) metric.Int64ObservableGauge {
		g, err := m.Int64ObservableGauge("baton_lane_"+name, metric.WithDescription(desc))
		errs = append(errs, err)
		return g
	}
	counters := []struct {
		c metric.Int64ObservableCounter
		v func(LaneStats) int64
	}{
		{counter("consumed_total", "Records taken from the lane's topic."), func(s LaneStats) int64 { return s.Consumed }},
		{counter("done_total", "Records the handler finished."), func(s LaneStats) int64 { return s.Done }},
		{counter("escalated_total", "Records moved to the next lane."), func(s LaneStats) int64 { return s.Escalated }},
		{counter("dead_lettered_total", "Records moved to the dead-letter topic."), func(s LaneStats) int64 { return s.DeadLettered }},
		{counter("deadline_exceeded_total", "Handler calls that missed the lane's deadline."), func(s LaneStats) int64 { return s.Late }},
		{counter("retried_total", "Handler calls that failed and were retried or escalated."), func(s LaneStats) int64 { return s.Retried }},
		{counter("throttled_total", "Handler answers 429/503 that paused the lane."), func(s LaneStats) int64 { return s.Throttled }},
		{counter("produce_errors_total", "Failed hand-offs to the next lane or dead letter, retried."), func(s LaneStats) int64 { return s.ProduceErrors }},
		{counter("commit_errors_total", "Offset commits on revocation that failed (the new owner redoes more)."), func(s LaneStats) int64 { return s.CommitErrors }},
	}
	lag := gauge("lag", "Records of the lane's topic not yet committed by its group.")
	paused := gauge("paused", "1 while the lane waits for its next lane's lag to fall.")
	handler, err := m.Float64ObservableGauge("baton_lane_handler_seconds",
		metric.WithDescription("Handler call time over the lane's recent calls (4,096), by quantile (0.5, 0.99)."), metric.WithUnit("s"))
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	obs := []metric.Observable{lag, paused, handler}
	for _, c := range counters {
		obs = append(obs, c.c)
	}
	// Attribute sets built once: a collection allocates only Stats' copy.
	type laneAttrs struct{ lane, p50, p99 metric.ObserveOption }
	attrs := make([]laneAttrs, len(w.lanes))
	for i, l := range w.lanes {
		name := attribute.String("lane", l.o.Topic)
		attrs[i] = laneAttrs{metric.WithAttributeSet(attribute.NewSet(name)),
			metric.WithAttributeSet(attribute.NewSet(name, attribute.String("quantile", "0.5"))),
			metric.WithAttributeSet(attribute.NewSet(name, attribute.String("quantile", "0.99")))}
	}
	return m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		for i, s := range w.Stats() {
			a := attrs[i]
			for _, c := range counters {
				o.ObserveInt64(c.c, c.v(s), a.lane)
			}
			o.ObserveInt64(lag, s.Lag, a.lane)
			var p int64
			if s.Paused {
				p = 1
			}
			o.ObserveInt64(paused, p, a.lane)
			o.ObserveFloat64(handler, s.P50.Seconds(), a.p50)
			o.ObserveFloat64(handler, s.P99.Seconds(), a.p99)
		}
		return nil
	}, obs...)
}
