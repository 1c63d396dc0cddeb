package relay

import (
	"fmt"
	"net"
	"sort"

	"github.com/valyala/fasthttp"
)

// startMetrics serves /metrics in the Prometheus text format on
// telemetry.metrics_listen, from the same snapshots as /api/relay/stats/.
func (r *Relay) startMetrics() error {
	ln, err := net.Listen("tcp", r.cfg.Telemetry.MetricsListen)
	if err != nil {
		return fmt.Errorf("relay: metrics listen on %s: %w (set telemetry.metrics_listen)", r.cfg.Telemetry.MetricsListen, err)
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
	classes := make([]string, 0, len(st.Classes))
	for c := range st.Classes {
		classes = append(classes, c)
	}
	sort.Strings(classes)

	perClass := func(name, help string, v func(ClassOutcomes) int64) {
		counter(name, help)
		for _, c := range classes {
			b = fmt.Appendf(b, "%s{class=%q} %d\n", name, c, v(st.Classes[c]))
		}
	}
	perClass("baton_accepted_records_total", "Buffer records accepted at ingest, by traffic class.",
		func(o ClassOutcomes) int64 { return o.Accepted.Records })
	perClass("baton_accepted_items_total", "Envelope items accepted at ingest, by traffic class.",
		func(o ClassOutcomes) int64 { return o.Accepted.Items })
	perClass("baton_delivered_records_total", "Buffer records delivered to their destination, by traffic class.",
		func(o ClassOutcomes) int64 { return o.Delivered.Records })
	perClass("baton_dead_lettered_records_total", "Delivered records that went to a dead-letter topic, by traffic class.",
		func(o ClassOutcomes) int64 { return o.DeadLettered.Records })
	counter("baton_dropped_records_total", "Buffer records dropped, by traffic class and reason.")
	for _, c := range classes {
		reasons := make([]string, 0, len(st.Classes[c].Dropped))
		for why := range st.Classes[c].Dropped {
			reasons = append(reasons, why)
		}
		sort.Strings(reasons)
		for _, why := range reasons {
			b = fmt.Appendf(b, "baton_dropped_records_total{class=%q,reason=%q} %d\n", c, why, st.Classes[c].Dropped[why].Records)
		}
	}
	counter("baton_rejected_requests_total", "Requests refused at ingest, by reason.")
	reasons := make([]string, 0, len(st.Rejected))
	for why := range st.Rejected {
		reasons = append(reasons, why)
	}
	sort.Strings(reasons)
	for _, why := range reasons {
		b = fmt.Appendf(b, "baton_rejected_requests_total{reason=%q} %d\n", why, st.Rejected[why])
	}
	gauge("baton_buffer_pending_records", "Records in the buffer not yet delivered or dropped.", bs.Pending)
	gauge("baton_buffer_pending_bytes", "Stored bytes of those records.", bs.PendingBytes)
	gauge("baton_buffer_budget_bytes", "Where the buffer starts refusing appends.", bs.BudgetBytes)
	gauge("baton_buffer_disk_bytes", "Bytes of the buffer's files on disk.", int64(bs.DiskUsage))
	counter("baton_buffer_commits_total", "Group commits (one fsync each under strict durability).")
	b = fmt.Appendf(b, "baton_buffer_commits_total %d\n", bs.Commits)
	ready := int64(0)
	if r.ready() {
		ready = 1
	}
	gauge("baton_ready", "1 when the relay accepts traffic.", ready)
	ctx.SetContentType("text/plain; version=0.0.4")
	ctx.Response.SetBodyRaw(b)
}
