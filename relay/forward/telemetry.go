package forward

import (
	"context"
	"errors"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/baton-relay/baton/routing"
)

// meterName is the instrumentation scope of the forwarders' instruments.
const meterName = "github.com/baton-relay/baton/relay/forward"

// Why a forwarder keeps a message for another attempt: the reason
// attribute of baton_forward_retries_total.
const (
	retryOutage       = "outage"       // the upstream is in outage (routing.ErrOutage)
	retryHeldBack     = "held_back"    // behind a failed message of its project (routing.ErrHeldBack)
	retryThrottled    = "throttled"    // the destination asked to wait (Retry-After, 429)
	retryUnauthorized = "unauthorized" // 401: kept while Baton registers again
	retryFailed       = "failed"       // any other retryable error
)

var retryReasons = []string{retryOutage, retryHeldBack, retryThrottled, retryUnauthorized, retryFailed}

// Instruments are the forwarders' instruments, shared by every forwarder of a
// relay. Build them once with NewInstruments; a nil *Instruments records nothing.
type Instruments struct {
	attempts  metric.Int64Counter
	retries   metric.Int64Counter
	permanent metric.Int64Counter
	latency   metric.Float64Histogram
}

// NewInstruments registers the forwarders' instruments with mp. buckets are the
// bounds (seconds) of the delivery latency histogram.
func NewInstruments(mp metric.MeterProvider, buckets []float64) (*Instruments, error) {
	m := mp.Meter(meterName)
	var fm Instruments
	var errs [4]error
	fm.attempts, errs[0] = m.Int64Counter("baton_forward_attempts_total",
		metric.WithDescription("Batches a forwarder sent to its destination (first tries and retries), by route."))
	fm.retries, errs[1] = m.Int64Counter("baton_forward_retries_total",
		metric.WithDescription("Messages kept for another attempt, by route and reason: outage, held_back, throttled, unauthorized, failed."))
	fm.permanent, errs[2] = m.Int64Counter("baton_forward_permanent_failures_total",
		metric.WithDescription("Messages the destination refused for good (dropped as invalid), by route and reason."))
	fm.latency, errs[3] = m.Float64Histogram("baton_delivery_latency_seconds",
		metric.WithDescription("From a record's arrival at Baton to its destination confirming it, by route."),
		metric.WithUnit("s"), metric.WithExplicitBucketBoundaries(buckets...))
	if err := errors.Join(errs[:]...); err != nil {
		return nil, err
	}
	return &fm, nil
}

// routeMetrics are one forwarder's attribute sets, built once so that
// recording allocates nothing.
type routeMetrics struct {
	m         *Instruments
	route     []metric.RecordOption
	add       []metric.AddOption
	permanent []metric.AddOption
	retryOpts map[string][]metric.AddOption
}

func (m *Instruments) forRoute(route string) *routeMetrics {
	if m == nil {
		return nil
	}
	set := attribute.NewSet(attribute.String("route", route))
	rm := &routeMetrics{m: m, route: []metric.RecordOption{metric.WithAttributeSet(set)},
		add:       []metric.AddOption{metric.WithAttributeSet(set)},
		permanent: []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(attribute.String("route", route), attribute.String("reason", "refused")))},
		retryOpts: make(map[string][]metric.AddOption, len(retryReasons))}
	for _, why := range retryReasons {
		rm.retryOpts[why] = []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(attribute.String("route", route), attribute.String("reason", why)))}
	}
	return rm
}

func (rm *routeMetrics) attempt() {
	if rm != nil {
		rm.m.attempts.Add(context.Background(), 1, rm.add...)
	}
}

func (rm *routeMetrics) delivered(seconds float64) {
	if rm != nil {
		rm.m.latency.Record(context.Background(), seconds, rm.route...)
	}
}

func (rm *routeMetrics) refused() {
	if rm != nil {
		rm.m.permanent.Add(context.Background(), 1, rm.permanent...)
	}
}

func (rm *routeMetrics) retry(why string) {
	if rm != nil {
		rm.m.retries.Add(context.Background(), 1, rm.retryOpts[why]...)
	}
}

// retryReason classifies a retryable error.
func retryReason(err error) string {
	switch {
	case errors.Is(err, routing.ErrOutage):
		return retryOutage
	case errors.Is(err, routing.ErrHeldBack):
		return retryHeldBack
	}
	if _, ok := routing.RetryAfter(err); ok {
		return retryThrottled
	}
	return retryFailed
}
