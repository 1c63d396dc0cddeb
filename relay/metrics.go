package relay

import (
	"fmt"
	"maps"
	"math"
	"net"
	"runtime/debug"
	"slices"

	"github.com/valyala/fasthttp"

	"github.com/baton-relay/baton/relay/outcome"
	"github.com/baton-relay/baton/routing"
)

// startMetrics serves /metrics in the Prometheus text format on
// telemetry.metrics_listen, from the same snapshots as /api/relay/stats/.
func (r *Relay) startMetrics() error {
	ln, err := net.Listen("tcp", r.cfg.Telemetry.MetricsListen)
	if err != nil {
		return listenError("telemetry.metrics_listen", r.cfg.Telemetry.MetricsListen, err)
	}
	r.metricsLn = ln
	r.metricsSrv = &fasthttp.Server{Handler: r.handleMetrics, Name: "baton", NoDefaultContentType: true}
	r.metricsDone = make(chan struct{})
	go func() {
		defer close(r.metricsDone)
		_ = r.metricsSrv.Serve(ln)
	}()
	return nil
}

func (r *Relay) stopMetrics() {
	if r.metricsSrv == nil {
		return
	}
	_ = r.metricsSrv.Shutdown()
	_ = r.metricsLn.Close()
	<-r.metricsDone
}

// MetricsAddr is where /metrics is served, or nil when it is off.
func (r *Relay) MetricsAddr() net.Addr {
	if r.metricsLn == nil {
		return nil
	}
	return r.metricsLn.Addr()
}

func (r *Relay) handleMetrics(ctx *fasthttp.RequestCtx) {
	if string(ctx.Path()) != "/metrics" {
		ctx.Error("not found", fasthttp.StatusNotFound)
		return
	}
	st := r.Stats()
	bs := r.buf.Stats()
	b := ctx.Response.Body()[:0]
	counter := func(name, help string) {
		b = fmt.Appendf(b, "# HELP %s %s\n# TYPE %s counter\n", name, help, name)
	}
	gauge := func(name, help string, v int64) {
		b = fmt.Appendf(b, "# HELP %s %s\n# TYPE %s gauge\n%s %d\n", name, help, name, name, v)
	}
	classes := slices.Sorted(maps.Keys(st.Classes))

	perClass := func(name, help string, v func(outcome.ClassOutcomes) int64) {
		counter(name, help)
		for _, c := range classes {
			b = fmt.Appendf(b, "%s{class=%q} %d\n", name, c, v(st.Classes[c]))
		}
	}
	perClass("baton_accepted_records_total", "Buffer records accepted at ingest, by traffic class.",
		func(o outcome.ClassOutcomes) int64 { return o.Accepted.Records })
	perClass("baton_accepted_items_total", "Envelope items accepted at ingest, by traffic class.",
		func(o outcome.ClassOutcomes) int64 { return o.Accepted.Items })
	perClass("baton_delivered_records_total", "Buffer records delivered to their destination, by traffic class.",
		func(o outcome.ClassOutcomes) int64 { return o.Delivered.Records })
	perClass("baton_dead_lettered_records_total", "Delivered records that went to a dead-letter topic, by traffic class.",
		func(o outcome.ClassOutcomes) int64 { return o.DeadLettered.Records })
	perClass("baton_aggregated_records_total", "Raw metric records folded into aggregated buckets, by traffic class.",
		func(o outcome.ClassOutcomes) int64 { return o.Aggregated.Records })
	perClass("baton_produced_records_total", "Records of aggregated buckets written by Baton, by traffic class.",
		func(o outcome.ClassOutcomes) int64 { return o.Produced.Records })
	counter("baton_dropped_items_total", "Envelope items dropped, by traffic class and reason (metric buckets and lines included).")
	for _, c := range classes {
		for _, why := range slices.Sorted(maps.Keys(st.Classes[c].Dropped)) {
			b = fmt.Appendf(b, "baton_dropped_items_total{class=%q,reason=%q} %d\n", c, why, st.Classes[c].Dropped[why].Items)
		}
	}
	counter("baton_dropped_records_total", "Buffer records dropped, by traffic class and reason.")
	for _, c := range classes {
		for _, why := range slices.Sorted(maps.Keys(st.Classes[c].Dropped)) {
			b = fmt.Appendf(b, "baton_dropped_records_total{class=%q,reason=%q} %d\n", c, why, st.Classes[c].Dropped[why].Records)
		}
	}
	counter("baton_rejected_requests_total", "Requests refused at ingest, by reason.")
	for _, why := range slices.Sorted(maps.Keys(st.Rejected)) {
		b = fmt.Appendf(b, "baton_rejected_requests_total{reason=%q} %d\n", why, st.Rejected[why])
	}
	gauge("baton_body_bytes", "Memory held by request bodies in flight (wire, decoded and record bytes).", st.Bodies.InUse)
	gauge("baton_body_bytes_peak", "The most memory request bodies held at once since start.", st.Bodies.Peak)
	gauge("baton_body_budget_bytes", "The memory budget of request bodies (server.max_inflight_bytes).", st.Bodies.Budget)
	gauge("baton_buffer_pending_records", "Records in the buffer not yet delivered or dropped.", bs.Pending)
	b = append(b, "# HELP baton_buffer_pending_items Envelope items in the buffer not yet delivered or dropped, by traffic class.\n# TYPE baton_buffer_pending_items gauge\n"...)
	for _, c := range classes {
		b = fmt.Appendf(b, "baton_buffer_pending_items{class=%q} %d\n", c, st.Classes[c].Pending.Items)
	}
	if l := debug.SetMemoryLimit(-1); l < math.MaxInt64 {
		gauge("baton_memory_limit_bytes", "The Go runtime's soft memory limit (runtime.memory_limit, GOMEMLIMIT, or derived from the cgroup's limit); absent when there is none.", l)
	}
	gauge("baton_waiting_records", "Buffered records waiting for their project's config (managed mode).", st.Waiting)
	if p := st.Projects; p != nil {
		gauge("baton_projects_cached", "Project configs in the cache.", int64(p.Projects))
		gauge("baton_projects_misses", "Keys cached as pending or unknown.", int64(p.Misses))
		counter("baton_project_fetches_total", "Project config requests to the upstream, by result.")
		b = fmt.Appendf(b, "baton_project_fetches_total{result=\"ok\"} %d\nbaton_project_fetches_total{result=\"failed\"} %d\n", p.Requests-p.Failures, p.Failures)
		counter("baton_project_broken_parts_total", "Fetched configs with a part that failed to decode.")
		b = fmt.Appendf(b, "baton_project_broken_parts_total %d\n", p.Broken)
	}
	if a := st.Aggregator; a != nil {
		gauge("baton_metric_buckets", "Metric buckets held by the aggregator.", int64(a.Buckets))
		gauge("baton_metric_bucket_bytes", "Estimated memory of those buckets.", a.Bytes)
	}
	if c := st.Cardinality; c != nil {
		gauge("baton_cardinality_bytes", "Estimated memory of the cardinality limiter.", c.Bytes)
	}
	gauge("baton_buffer_pending_bytes", "Stored bytes of those records.", bs.PendingBytes)
	gauge("baton_buffer_budget_bytes", "Where the buffer starts refusing appends.", bs.BudgetBytes)
	gauge("baton_buffer_disk_bytes", "Bytes of the buffer's files on disk.", int64(bs.DiskUsage))
	counter("baton_buffer_commits_total", "Group commits (one fsync each under strict durability).")
	b = fmt.Appendf(b, "baton_buffer_commits_total %d\n", bs.Commits)
	if clusters := r.sinks.KafkaClusters(); len(clusters) > 0 {
		names := slices.Sorted(maps.Keys(clusters))
		health := make([]routing.KafkaHealth, len(names))
		for i, name := range names {
			health[i] = clusters[name].Health()
		}
		b = fmt.Appendf(b, "# HELP baton_kafka_cluster_up 0 while the Kafka cluster refuses Baton (SASL, TLS or ACLs; see the log), else 1. An unreachable broker counts as up: see baton_kafka_connect_errors_total.\n# TYPE baton_kafka_cluster_up gauge\n")
		for i, name := range names {
			up := 1
			if health[i].Fault != nil {
				up = 0
			}
			b = fmt.Appendf(b, "baton_kafka_cluster_up{cluster=%q} %d\n", name, up)
		}
		counter("baton_kafka_connect_errors_total", "Failed connections to Kafka brokers, by cluster and kind: auth (SASL), tls, network.")
		for i, name := range names {
			for _, kind := range slices.Sorted(maps.Keys(health[i].ConnectErrors)) {
				b = fmt.Appendf(b, "baton_kafka_connect_errors_total{cluster=%q,kind=%q} %d\n", name, kind, health[i].ConnectErrors[kind])
			}
		}
	}
	if pools := r.sinks.Upstreams(); len(pools) > 0 {
		names := slices.Sorted(maps.Keys(pools))
		b = fmt.Appendf(b, "# HELP baton_upstream_outage_urls URLs of the upstream in outage: unreachable, paused and probed until they answer.\n# TYPE baton_upstream_outage_urls gauge\n")
		for _, name := range names {
			b = fmt.Appendf(b, "baton_upstream_outage_urls{upstream=%q} %d\n", name, pools[name].State().Outage)
		}
		counter("baton_upstream_outages_total", "Outages the upstream's URLs entered since start.")
		for _, name := range names {
			b = fmt.Appendf(b, "baton_upstream_outages_total{upstream=%q} %d\n", name, pools[name].State().Outages)
		}
	}
	ready := int64(0)
	if r.ready() {
		ready = 1
	}
	gauge("baton_ready", "1 when /api/relay/healthcheck/ready/ answers 200: the buffer takes appends and no Kafka cluster refuses Baton.", ready)
	ctx.SetContentType("text/plain; version=0.0.4")
	ctx.Response.SetBodyRaw(b)
}
