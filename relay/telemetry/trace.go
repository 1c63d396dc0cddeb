package telemetry

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"strings"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
)

// Env variables that turn span push on without an endpoint in the config.
// OTEL_EXPORTER_OTLP_METRICS_ENDPOINT is not one: it names a metrics
// receiver only.
var traceEnv = []string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"}

// tracing is the TracerProvider half of Telemetry.
type tracing struct {
	tp *sdktrace.TracerProvider // nil when spans are not pushed
	// rootBelow: a root request is sampled when a random uint64 is below
	// it; all is ratio 1 (every uint64 would pass).
	rootBelow uint64
	all       bool
}

// TraceURL is where spans go when metrics go to metricsURL: the same URL
// with its /v1/metrics replaced by /v1/traces, or with /v1/traces appended
// when it does not end in /v1/metrics.
func TraceURL(metricsURL string) string {
	if base, ok := strings.CutSuffix(metricsURL, "/v1/metrics"); ok {
		return base + "/v1/traces"
	}
	return strings.TrimSuffix(metricsURL, "/") + "/v1/traces"
}

func (t *tracing) startTracing(o Options, res *resource.Resource) error {
	push := o.OTLPEndpoint != ""
	for _, k := range traceEnv {
		push = push || os.Getenv(k) != ""
	}
	if !push {
		return nil
	}
	var eo []otlptracehttp.Option
	if o.OTLPEndpoint != "" {
		eo = append(eo, otlptracehttp.WithEndpointURL(TraceURL(o.OTLPEndpoint)))
	}
	if len(o.OTLPHeaders) > 0 {
		eo = append(eo, otlptracehttp.WithHeaders(o.OTLPHeaders))
	}
	exp, err := otlptracehttp.New(context.Background(), eo...)
	if err != nil {
		return fmt.Errorf("telemetry: OTLP trace exporter %s: %w", o.OTLPEndpoint, err)
	}
	var bo []sdktrace.BatchSpanProcessorOption
	if o.OTLPInterval > 0 {
		bo = append(bo, sdktrace.WithBatchTimeout(o.OTLPInterval))
	}
	t.tp = sdktrace.NewTracerProvider(
		sdktrace.WithResource(res),
		// The ratio is applied before a span starts (Sample), so that an
		// unsampled request costs no span at all; what reaches the SDK is
		// sampled already, or follows a remote parent's decision.
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.AlwaysSample())),
		// The batcher drops spans when its queue is full: it never blocks
		// a request.
		sdktrace.WithBatcher(exp, bo...),
	)
	r := min(max(o.TraceSampleRatio, 0), 1)
	t.all = r == 1
	t.rootBelow = uint64(r * math.MaxUint64)
	if r < 1 && t.rootBelow == math.MaxUint64 { // float rounding up
		t.rootBelow--
	}
	return nil
}

// Tracing reports whether spans are pushed. When it is false the
// TracerProvider is the no-op one and callers skip span work entirely.
func (t *tracing) Tracing() bool { return t.tp != nil }

// TracerProvider is what tracers come from: the SDK's, or the no-op
// provider when spans are not pushed.
func (t *tracing) TracerProvider() trace.TracerProvider {
	if t.tp == nil {
		return tracenoop.NewTracerProvider()
	}
	return t.tp
}

// Sample decides whether a request without a sampled parent is traced:
// true for TraceSampleRatio of them, without allocating. It is false when
// spans are not pushed.
func (t *tracing) Sample() bool {
	if t.tp == nil {
		return false
	}
	return t.all || rand.Uint64() < t.rootBelow
}

func (t *tracing) stopTracing(ctx context.Context) error {
	if t.tp == nil {
		return nil
	}
	return t.tp.Shutdown(ctx)
}
