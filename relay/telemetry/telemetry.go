// Package telemetry is the one place Baton builds the OpenTelemetry SDK: a
// MeterProvider whose readers are the Prometheus exporter (served as the
// text format on /metrics) and, when configured, an OTLP/HTTP push
// exporter, and a TracerProvider that pushes sampled spans over OTLP/HTTP.
// The Go runtime's and the process's figures (client_golang's Go and
// process collectors) reach both metric readers through the Prometheus
// bridge. Every other package takes the API's MeterProvider or
// TracerProvider; with no exporter configured those are the API's no-op
// ones, which cost nothing. LogHandler puts the active span's ids on JSON
// log lines. DESIGN.md ("Observability") has the decision.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/otlptranslator"
	promBridge "go.opentelemetry.io/contrib/bridges/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
)

// Options says which exporters to run. The zero value runs none.
type Options struct {
	// Prometheus builds the Prometheus exporter and Handler.
	Prometheus bool
	// OTLPEndpoint is the URL metrics are pushed to (OTLP over HTTP,
	// protobuf), e.g. http://collector:4318/v1/metrics. Empty leaves it to
	// OTEL_EXPORTER_OTLP_METRICS_ENDPOINT / OTEL_EXPORTER_OTLP_ENDPOINT: push
	// runs when one of the three is set. Default "".
	OTLPEndpoint string
	// OTLPHeaders are sent with every push, added to those of
	// OTEL_EXPORTER_OTLP_HEADERS (these win). Default none.
	OTLPHeaders map[string]string
	// OTLPInterval is the push period; 0 is OTEL_METRIC_EXPORT_INTERVAL or
	// the SDK's 60s. Default 0.
	OTLPInterval time.Duration
	// ServiceName is the service.name resource attribute of pushed metrics
	// and spans, so that a collector tells Baton's processes apart (e.g.
	// baton-lanes next to baton). Default "baton".
	ServiceName string
	// Version is the service.version resource attribute of pushed metrics
	// and spans.
	Version string
	// TraceSampleRatio is the share of root requests (no sampled parent)
	// that Sample lets through when spans are pushed; spans go to
	// OTLPEndpoint with /v1/traces for its /v1/metrics, or else to
	// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT / OTEL_EXPORTER_OTLP_ENDPOINT.
	// Default 0: only what an upstream sampled (config's default is 0.01).
	TraceSampleRatio float64
	// Logger receives failed pushes (rate-limited); nil leaves the OTel
	// SDK's default, a line on stderr per failure.
	Logger *slog.Logger
}

// Env variables that turn OTLP push on without an endpoint in the config.
var otlpEnv = []string{"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"}

// Telemetry holds the SDK's providers and their exporters.
type Telemetry struct {
	sdk     *sdkmetric.MeterProvider // nil when no exporter runs
	handler http.Handler
	push    bool
	reader  *sdkmetric.ManualReader // Read's, beside the Prometheus exporter
	tracing
}

// New builds the MeterProvider o asks for.
func New(o Options) (*Telemetry, error) {
	t := &Telemetry{}
	push := o.OTLPEndpoint != ""
	for _, k := range otlpEnv {
		push = push || os.Getenv(k) != ""
	}
	if o.ServiceName == "" {
		o.ServiceName = "baton"
	}
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(
		attribute.String("service.name", o.ServiceName), attribute.String("service.version", o.Version)))
	if err != nil {
		res = resource.Default()
	}
	logExportErrors(o.Logger)
	if err := t.startTracing(o, res); err != nil {
		return nil, err
	}
	if !o.Prometheus && !push {
		return t, nil
	}
	// Runtime and process figures come from client_golang's collectors, in
	// a registry of their own: /metrics gathers it beside the exporter's
	// (the Prometheus exporter drops bridged metrics), OTLP through the
	// bridge.
	runtimeReg := prometheus.NewRegistry()
	if err := runtimeReg.Register(collectors.NewGoCollector(collectors.WithGoCollectorRuntimeMetrics(collectors.MetricsGC))); err != nil {
		return nil, fmt.Errorf("telemetry: go collector: %w", err)
	}
	if err := runtimeReg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})); err != nil {
		return nil, fmt.Errorf("telemetry: process collector: %w", err)
	}

	opts := []sdkmetric.Option{sdkmetric.WithResource(res)}
	if o.Prometheus {
		reg := prometheus.NewRegistry()
		exp, err := otelprom.New(
			otelprom.WithRegisterer(reg),
			// Baton's names already carry their unit and _total: the
			// exporter must keep them as they are (README, DESIGN.md).
			otelprom.WithTranslationStrategy(otlptranslator.UnderscoreEscapingWithoutSuffixes),
			otelprom.WithoutScopeInfo(),
			otelprom.WithoutTargetInfo(),
		)
		if err != nil {
			return nil, fmt.Errorf("telemetry: prometheus exporter: %w", err)
		}
		opts = append(opts, sdkmetric.WithReader(exp))
		// The status page (Read) served beside /metrics reads the same
		// instruments, runtime and process figures included.
		t.reader = sdkmetric.NewManualReader(sdkmetric.WithProducer(promBridge.NewMetricProducer(promBridge.WithGatherer(runtimeReg))))
		opts = append(opts, sdkmetric.WithReader(t.reader))
		t.handler = promhttp.HandlerFor(prometheus.Gatherers{reg, runtimeReg}, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
	}
	if push {
		var eo []otlpmetrichttp.Option
		if o.OTLPEndpoint != "" {
			eo = append(eo, otlpmetrichttp.WithEndpointURL(o.OTLPEndpoint))
		}
		if len(o.OTLPHeaders) > 0 {
			eo = append(eo, otlpmetrichttp.WithHeaders(o.OTLPHeaders))
		}
		exp, err := otlpmetrichttp.New(context.Background(), eo...)
		if err != nil {
			return nil, fmt.Errorf("telemetry: OTLP exporter %s: %w", o.OTLPEndpoint, err)
		}
		bridge := promBridge.NewMetricProducer(promBridge.WithGatherer(runtimeReg))
		ro := []sdkmetric.PeriodicReaderOption{sdkmetric.WithProducer(bridge)}
		if o.OTLPInterval > 0 {
			ro = append(ro, sdkmetric.WithInterval(o.OTLPInterval))
		}
		opts = append(opts, sdkmetric.WithReader(sdkmetric.NewPeriodicReader(exp, ro...)))
		t.push = true
	}
	t.sdk = sdkmetric.NewMeterProvider(opts...)
	return t, nil
}

// MeterProvider is what instruments are registered with: the SDK's, or the
// no-op provider when no exporter runs.
func (t *Telemetry) MeterProvider() metric.MeterProvider {
	if t.sdk == nil {
		return noop.NewMeterProvider()
	}
	return t.sdk
}

// Enabled reports whether an exporter runs.
func (t *Telemetry) Enabled() bool { return t.sdk != nil }

// Pushing reports whether OTLP push runs.
func (t *Telemetry) Pushing() bool { return t.push }

// Handler serves the Prometheus text format, or is nil without Prometheus.
func (t *Telemetry) Handler() http.Handler { return t.handler }

// Shutdown pushes what is left (OTLP) and stops the exporters.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	terr := t.stopTracing(ctx)
	if t.sdk == nil {
		return terr
	}
	err := t.sdk.Shutdown(ctx)
	if errors.Is(err, sdkmetric.ErrReaderShutdown) {
		err = nil
	}
	return errors.Join(err, terr)
}
