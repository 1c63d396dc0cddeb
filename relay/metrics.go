package relay

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"runtime/debug"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/baton-relay/baton/envelope"
	"github.com/baton-relay/baton/relay/forward"
	"github.com/baton-relay/baton/relay/record"
	"github.com/baton-relay/baton/relay/telemetry"
)

// meterName is the instrumentation scope of the relay's own instruments.
const meterName = "github.com/baton-relay/baton/relay"

// latencyBuckets are the bounds (seconds) of Baton's latency histograms:
// from a fast fsync (0.25ms) to a delivery stuck behind retries (5min).
var latencyBuckets = []float64{0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300}

// LatencyBuckets returns the bounds (seconds) every Baton latency
// histogram uses, for the packages that register their own.
func LatencyBuckets() []float64 { return latencyBuckets }

// ingestMetrics are the synchronous instruments of the ingest path. Their
// attribute sets are built once, so recording allocates nothing.
type ingestMetrics struct {
	ack      metric.Float64Histogram
	ackAttrs [envelope.NumClasses][]metric.RecordOption
	commit   metric.Float64Histogram
	forward  *forward.Instruments // nil while telemetry is off
}

func classAttr(c envelope.Class) attribute.KeyValue { return attribute.String("class", c.String()) }

// newTelemetry builds the exporters telemetry.* asks for, and the
// instruments the relay records itself.
func (r *Relay) newTelemetry() error {
	t := r.cfg.Telemetry
	tel, err := telemetry.New(telemetry.Options{
		Prometheus:   t.MetricsListen != "",
		OTLPEndpoint: t.OTLPEndpoint,
		OTLPHeaders:  t.OTLPHeaders,
		OTLPInterval: t.OTLPInterval,
		Version:      r.set.Version,

		TraceSampleRatio: t.TraceSampleRatio,
		Logger:           r.log,
	})
	if err != nil {
		return err
	}
	r.tel = tel
	r.tracing = tel.Tracing()
	r.tracer = tel.TracerProvider().Tracer(tracerName)
	r.meter = tel.MeterProvider().Meter(meterName)
	m := &r.im
	if m.ack, err = r.meter.Float64Histogram("baton_ack_latency_seconds",
		metric.WithDescription("From a request's arrival to its records being fsync'd (the SDK's answer follows), by traffic class."),
		metric.WithUnit("s"), metric.WithExplicitBucketBoundaries(latencyBuckets...)); err != nil {
		return err
	}
	for c := range envelope.NumClasses {
		m.ackAttrs[c] = []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(classAttr(c)))}
	}
	if m.commit, err = r.meter.Float64Histogram("baton_buffer_commit_latency_seconds",
		metric.WithDescription("Buffer group commits, from apply to durable (fsync included)."),
		metric.WithUnit("s"), metric.WithExplicitBucketBoundaries(latencyBuckets...)); err != nil {
		return err
	}
	if tel.Enabled() {
		m.forward, err = forward.NewInstruments(tel.MeterProvider(), latencyBuckets)
	}
	return err
}

// observeAck records the ack latency of a request that arrived at start,
// once per class it wrote.
func (r *Relay) observeAck(classes []envelope.Class, start time.Time) {
	if !r.tel.Enabled() {
		return
	}
	d := time.Since(start).Seconds()
	for _, c := range classes {
		r.im.ack.Record(context.Background(), d, r.im.ackAttrs[c]...)
	}
}

// observeCommit is the buffer's OnCommit.
func (r *Relay) observeCommit(lat time.Duration) {
	r.im.commit.Record(context.Background(), lat.Seconds())
}

// startMetrics serves /metrics in the Prometheus text format on
// telemetry.metrics_listen, and the status page (relay/status) at /.
func (r *Relay) startMetrics() error {
	ln, err := net.Listen("tcp", r.cfg.Telemetry.MetricsListen)
	if err != nil {
		return listenError("telemetry.metrics_listen", r.cfg.Telemetry.MetricsListen, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", r.tel.Handler())
	mux.Handle("/", r.startStatus().Handler()) // the status page and /api/status
	r.metricsLn = ln
	r.metricsSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	r.metricsDone = make(chan struct{})
	go func() {
		defer close(r.metricsDone)
		_ = r.metricsSrv.Serve(ln)
	}()
	return nil
}

// stopMetrics stops serving /metrics and pushes the last OTLP export.
func (r *Relay) stopMetrics(ctx context.Context) error {
	if r.metricsSrv != nil {
		_ = r.metricsSrv.Shutdown(ctx)
		<-r.metricsDone
	}
	r.stopStatus()
	if r.obs != nil {
		_ = r.obs.Unregister()
	}
	if err := r.tel.Shutdown(ctx); err != nil {
		return fmt.Errorf("relay: telemetry: last OTLP export: %w", err)
	}
	return nil
}

// MetricsAddr is where /metrics is served, or nil when it is off.
func (r *Relay) MetricsAddr() net.Addr {
	if r.metricsLn == nil {
		return nil
	}
	return r.metricsLn.Addr()
}

// registerObservers registers the instruments whose values are snapshots (Stats of
// the relay, the buffer, the sinks): the SDK calls back at each scrape or
// push, so they cost nothing between.
func (r *Relay) registerObservers() error {
	if !r.tel.Enabled() {
		return nil
	}
	m := r.meter
	var errs []error
	counter := func(name, desc string) metric.Int64ObservableCounter {
		c, err := m.Int64ObservableCounter(name, metric.WithDescription(desc))
		errs = append(errs, err)
		return c
	}
	gauge := func(name, desc string) metric.Int64ObservableGauge {
		g, err := m.Int64ObservableGauge(name, metric.WithDescription(desc))
		errs = append(errs, err)
		return g
	}
	fgauge := func(name, desc, unit string) metric.Float64ObservableGauge {
		g, err := m.Float64ObservableGauge(name, metric.WithDescription(desc), metric.WithUnit(unit))
		errs = append(errs, err)
		return g
	}
	var (
		accepted     = counter("baton_accepted_records_total", "Buffer records accepted at ingest, by traffic class.")
		acceptedIt   = counter("baton_accepted_items_total", "Envelope items accepted at ingest, by traffic class.")
		delivered    = counter("baton_delivered_records_total", "Buffer records delivered to their destination, by traffic class.")
		deadLettered = counter("baton_dead_lettered_records_total", "Delivered records that went to a dead-letter topic, by traffic class.")
		aggregated   = counter("baton_aggregated_records_total", "Raw metric records folded into aggregated buckets, by traffic class.")
		produced     = counter("baton_produced_records_total", "Records of aggregated buckets written by Baton, by traffic class.")
		droppedIt    = counter("baton_dropped_items_total", "Envelope items dropped, by traffic class and reason (metric buckets and lines included).")
		droppedRec   = counter("baton_dropped_records_total", "Buffer records dropped, by traffic class and reason.")
		rejected     = counter("baton_rejected_requests_total", "Requests refused at ingest, by reason.")
		bodyBytes    = gauge("baton_body_bytes", "Memory held by request bodies in flight (wire, decoded and record bytes).")
		bodyPeak     = gauge("baton_body_bytes_peak", "The most memory request bodies held at once since start.")
		bodyBudget   = gauge("baton_body_budget_bytes", "The memory budget of request bodies (server.max_inflight_bytes).")
		pendingRecs  = gauge("baton_buffer_pending_records", "Records in the buffer not yet delivered or dropped.")
		pendingItems = gauge("baton_buffer_pending_items", "Envelope items in the buffer not yet delivered or dropped, by traffic class.")
		memLimit     = gauge("baton_memory_limit_bytes", "The Go runtime's soft memory limit (runtime.memory_limit, GOMEMLIMIT, or derived from the cgroup's limit); absent when there is none.")
		waiting      = gauge("baton_waiting_records", "Buffered records waiting for their project's config (managed mode).")
		cached       = gauge("baton_projects_cached", "Project configs in the cache.")
		misses       = gauge("baton_projects_misses", "Keys cached as pending or unknown.")
		fetches      = counter("baton_project_fetches_total", "Project config requests to the upstream, by result.")
		broken       = counter("baton_project_broken_parts_total", "Fetched configs with a part that failed to decode.")
		buckets      = gauge("baton_metric_buckets", "Metric buckets held by the aggregator.")
		bucketBytes  = gauge("baton_metric_bucket_bytes", "Estimated memory of those buckets and of flushed ones not yet written: what metrics.max_bytes bounds.")
		cardBytes    = gauge("baton_cardinality_bytes", "Estimated memory of the cardinality limiter.")
		pendingBytes = gauge("baton_buffer_pending_bytes", "Stored bytes of those records.")
		budgetBytes  = gauge("baton_buffer_budget_bytes", "Where the buffer starts refusing appends.")
		diskBytes    = gauge("baton_buffer_disk_bytes", "Bytes of the buffer's files on disk.")
		freeBytes    = gauge("baton_buffer_free_bytes", "Free bytes of the buffer's filesystem (read every few seconds); absent when it cannot tell.")
		full         = gauge("baton_buffer_full", "1 while the buffer refuses appends (budget or free space), else 0.")
		commits      = counter("baton_buffer_commits_total", "Group commits (one fsync each under strict durability).")
		streamRecs   = gauge("baton_buffer_stream_pending_records", "Records of a buffer stream not yet delivered or dropped, by class, partition and kind (class, pending, flushed, outcomes, tail).")
		streamBytes  = gauge("baton_buffer_stream_pending_bytes", "Stored bytes of those records.")
		streamAge    = fgauge("baton_buffer_stream_oldest_age_seconds", "Age of a stream's oldest pending record; 0 when it is empty.", "s")
		streamOut    = counter("baton_buffer_stream_drained_records_total", "Records a stream ever delivered, dropped or quarantined (kept across restarts): its rate is the drain rate.")
		clusterUp    = gauge("baton_kafka_cluster_up", "0 while the Kafka cluster refuses Baton (SASL, TLS or ACLs; see the log), else 1. An unreachable broker counts as up: see baton_kafka_connect_errors_total.")
		connectErrs  = counter("baton_kafka_connect_errors_total", "Failed connections to Kafka brokers, by cluster and kind: auth (SASL), tls, network.")
		outageURLs   = gauge("baton_upstream_outage_urls", "URLs of the upstream in outage: unreachable, paused and probed until they answer.")
		outages      = counter("baton_upstream_outages_total", "Outages the upstream's URLs entered since start.")
		ejectedURLs  = gauge("baton_upstream_ejected_urls", "URLs of the upstream ejected after consecutive failures, until their next trial.")
		ejections    = counter("baton_upstream_ejections_total", "Ejections of the upstream's URLs since start.")
		upURLs       = gauge("baton_upstream_urls", "URLs of the upstream pool.")
		ready        = gauge("baton_ready", "1 when /api/relay/healthcheck/ready/ answers 200: the buffer takes appends and no Kafka cluster refuses Baton.")
	)
	if err := errors.Join(errs...); err != nil {
		return err
	}
	all := []metric.Observable{accepted, acceptedIt, delivered, deadLettered, aggregated, produced, droppedIt, droppedRec,
		rejected, bodyBytes, bodyPeak, bodyBudget, pendingRecs, pendingItems, memLimit, waiting, pendingBytes, budgetBytes,
		diskBytes, freeBytes, full, commits, streamRecs, streamBytes, streamAge, streamOut, ready}
	if r.cache != nil {
		all = append(all, cached, misses, fetches, broken)
	}
	if r.aggr != nil {
		all = append(all, buckets, bucketBytes, cardBytes)
	}
	kafka, pools := r.sinks.KafkaClusters(), r.sinks.Upstreams()
	if len(kafka) > 0 {
		all = append(all, clusterUp, connectErrs)
	}
	if len(pools) > 0 {
		all = append(all, outageURLs, outages, ejectedURLs, ejections, upURLs)
	}
	reg, err := m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		st := r.Stats()
		bs := r.buf.Stats()
		for class, co := range st.Classes {
			at := metric.WithAttributes(attribute.String("class", class))
			o.ObserveInt64(accepted, co.Accepted.Records, at)
			o.ObserveInt64(acceptedIt, co.Accepted.Items, at)
			o.ObserveInt64(delivered, co.Delivered.Records, at)
			o.ObserveInt64(deadLettered, co.DeadLettered.Records, at)
			o.ObserveInt64(aggregated, co.Aggregated.Records, at)
			o.ObserveInt64(produced, co.Produced.Records, at)
			o.ObserveInt64(pendingItems, co.Pending.Items, at)
			for why, n := range co.Dropped {
				at := metric.WithAttributes(attribute.String("class", class), attribute.String("reason", why))
				o.ObserveInt64(droppedIt, n.Items, at)
				o.ObserveInt64(droppedRec, n.Records, at)
			}
		}
		for why, n := range st.Rejected {
			o.ObserveInt64(rejected, n, metric.WithAttributes(attribute.String("reason", why)))
		}
		o.ObserveInt64(bodyBytes, st.Bodies.InUse)
		o.ObserveInt64(bodyPeak, st.Bodies.Peak)
		o.ObserveInt64(bodyBudget, st.Bodies.Budget)
		o.ObserveInt64(pendingRecs, bs.Pending)
		if l := debug.SetMemoryLimit(-1); l < math.MaxInt64 {
			o.ObserveInt64(memLimit, l)
		}
		o.ObserveInt64(waiting, st.Waiting)
		if p := st.Projects; p != nil {
			o.ObserveInt64(cached, int64(p.Projects))
			o.ObserveInt64(misses, int64(p.Misses))
			o.ObserveInt64(fetches, p.Requests-p.Failures, metric.WithAttributes(attribute.String("result", "ok")))
			o.ObserveInt64(fetches, p.Failures, metric.WithAttributes(attribute.String("result", "failed")))
			o.ObserveInt64(broken, p.Broken)
		}
		if a := st.Aggregator; a != nil {
			o.ObserveInt64(buckets, int64(a.Buckets))
			o.ObserveInt64(bucketBytes, a.Bytes+a.Writing)
		}
		if c := st.Cardinality; c != nil {
			o.ObserveInt64(cardBytes, c.Bytes)
		}
		o.ObserveInt64(pendingBytes, bs.PendingBytes)
		o.ObserveInt64(budgetBytes, bs.BudgetBytes)
		o.ObserveInt64(diskBytes, int64(bs.DiskUsage))
		if bs.FreeBytes > 0 {
			o.ObserveInt64(freeBytes, int64(bs.FreeBytes))
		}
		o.ObserveInt64(full, b2i(bs.Full))
		o.ObserveInt64(commits, bs.Commits)
		now := time.Now()
		for _, ss := range bs.Streams {
			at := streamAttrs(record.Stream(ss.Stream))
			o.ObserveInt64(streamRecs, ss.Pending, at)
			o.ObserveInt64(streamBytes, ss.PendingBytes, at)
			o.ObserveInt64(streamOut, ss.Removed, at)
			age := 0.0
			if !ss.Oldest.IsZero() {
				age = max(now.Sub(ss.Oldest).Seconds(), 0)
			}
			o.ObserveFloat64(streamAge, age, at)
		}
		for name, k := range kafka {
			h := k.Health()
			o.ObserveInt64(clusterUp, b2i(h.Fault == nil), metric.WithAttributes(attribute.String("cluster", name)))
			for kind, n := range h.ConnectErrors {
				o.ObserveInt64(connectErrs, n, metric.WithAttributes(attribute.String("cluster", name), attribute.String("kind", kind)))
			}
		}
		for name, p := range pools {
			s := p.State()
			at := metric.WithAttributes(attribute.String("upstream", name))
			o.ObserveInt64(outageURLs, int64(s.Outage), at)
			o.ObserveInt64(outages, int64(s.Outages), at)
			o.ObserveInt64(ejectedURLs, int64(s.Ejected), at)
			o.ObserveInt64(ejections, int64(s.Ejections), at)
			o.ObserveInt64(upURLs, int64(s.Nodes), at)
		}
		o.ObserveInt64(ready, b2i(r.ready()))
		return nil
	}, all...)
	if err != nil {
		return err
	}
	r.obs = reg
	return nil
}

// streamAttrs names a buffer stream by its class, partition and kind.
func streamAttrs(s record.Stream) metric.ObserveOption {
	kind := "class"
	switch {
	case s.IsOutcomes():
		kind = "outcomes"
	case s.IsPending():
		kind = "pending"
	case s.IsFlushed():
		kind = "flushed"
	case s.IsMarks():
		kind = "tail_marks"
	case s.IsTail():
		kind = "tail"
	}
	return metric.WithAttributes(classAttr(s.Class()), attribute.Int("partition", int(s.Partition())), attribute.String("kind", kind))
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}
