package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// The cost curves that start a fresh Baton per point (--baton), routed to a
// kfake broker in this process:
//
//   - --projects-sweep N,...: managed mode in front of a fake Sentry that
//     answers every key with a config; each request carries one of N
//     public keys (uniformly drawn), so the config cache holds them all or
//     fetches the ones it evicted;
//   - --metrics-sweep N,...: envelopes of one statsd item of --metric-lines
//     counter lines, each line one of N series (uniformly drawn), into the
//     aggregator.
//
// Per point: an unreported --warmup, then one run of --duration, Baton's
// CPU from the run's start until it holds nothing (pending records, and
// buckets in the aggregator), and its RSS and stats sampled over that span.
const (
	curveProjects = "projects"
	curveMetrics  = "metrics"
)

// curveSampleInterval is how often a curve reads Baton's stats and RSS.
const curveSampleInterval = 250 * time.Millisecond

type curveReport struct {
	Curve            string       `json:"curve"`
	Connections      int          `json:"connections"`
	DurationSeconds  float64      `json:"duration_seconds"`
	WarmupSeconds    float64      `json:"warmup_seconds"`
	SizeBytes        int          `json:"size_bytes,omitempty"`         // projects: envelope size
	LinesPerEnvelope int          `json:"lines_per_envelope,omitempty"` // metrics
	BatonConfig      string       `json:"baton_config,omitempty"`       // --baton-config
	Kafka            string       `json:"kafka"`
	Points           []curvePoint `json:"points"`
	Interrupted      bool         `json:"interrupted,omitempty"`
}

// curvePoint is one row: one Baton, one measured run, then its drain.
type curvePoint struct {
	Distinct       int         `json:"distinct"` // public keys or metric series
	PID            int         `json:"pid"`
	Load           *loadResult `json:"load"`
	AcceptedPerSec float64     `json:"accepted_per_sec"`
	LinesPerSec    float64     `json:"lines_per_sec,omitempty"`
	P99            float64     `json:"p99_ms"`
	// Drained: Baton held nothing within --drain-timeout after the run;
	// DrainSeconds is how long that took.
	Drained      bool    `json:"drained"`
	DrainSeconds float64 `json:"drain_seconds"`
	// CPU of Baton from the run's start until drained, per accepted
	// request (and per metric line).
	CPUSeconds     float64    `json:"cpu_seconds"`
	CPUMicros      float64    `json:"cpu_us_per_request"`
	CPUMicrosLine  float64    `json:"cpu_us_per_line,omitempty"`
	RSSStartMB     float64    `json:"rss_mb_start"`
	RSSPeakMB      float64    `json:"rss_mb_peak"` // sampled over the run and the drain
	RSSEndMB       float64    `json:"rss_mb_end"`  // once drained
	CachedPeak     int        `json:"projects_cached_peak,omitempty"`
	FetchRequests  int64      `json:"fetch_requests,omitempty"` // during the run and drain
	FetchedConfigs int64      `json:"fetched_configs,omitempty"`
	BucketsPeak    int        `json:"agg_buckets_peak,omitempty"`
	AggBytesPeak   int64      `json:"agg_bytes_peak,omitempty"`
	FlushedEarly   uint64     `json:"agg_flushed_early,omitempty"` // by the budgets, during the run and drain
	Final          batonStats `json:"final_stats"`
}

// runCurve runs --projects-sweep or --metrics-sweep and prints the table.
func runCurve(ctx context.Context, o options, stdout, stderr io.Writer) int {
	rep, err := curve(ctx, o, stderr)
	return finish(rep, err, writeCurve, func(rep *curveReport) string {
		for _, p := range rep.Points {
			if p.Load.Accepted == 0 || !p.Drained {
				return fmt.Sprintf("at %d distinct, Baton accepted %d requests, drained %v (--drain-timeout %s)",
					p.Distinct, p.Load.Accepted, p.Drained, o.drainTimeout)
			}
		}
		return ""
	}, o.json, stdout, stderr)
}

func curve(ctx context.Context, o options, progress io.Writer) (*curveReport, error) {
	if o.quiet {
		progress = nil
	}
	rep := &curveReport{Curve: curveProjects, Connections: o.connections, DurationSeconds: o.duration.Seconds(),
		WarmupSeconds: o.warmup.Seconds(), BatonConfig: o.batonConfig}
	points := o.projectsSweep
	if len(o.metricsSweep) > 0 {
		rep.Curve, points, rep.LinesPerEnvelope = curveMetrics, o.metricsSweep, o.metricLines
	} else {
		rep.SizeBytes = o.size
	}
	work, err := os.MkdirTemp("", "baton-load-"+rep.Curve+"-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)
	broker, err := startKfake(ctx, "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	defer broker.Close()
	addr := broker.ListenAddrs()[0]
	rep.Kafka = addr
	extra := kafkaRouteYAML(addr)
	if rep.Curve == curveProjects {
		sentry, err := startSentry("127.0.0.1:0", o.project, []string{anyKeys})
		if err != nil {
			return nil, err
		}
		defer sentry.Close()
		extra += fmt.Sprintf("mode: managed\nupstreams: {sentry: {urls: [%q]}}\nmanaged: {upstream: sentry}\n", sentry.URL())
	}
	var configs []string
	if o.batonConfig != "" {
		configs = append(configs, o.batonConfig)
	}
	for _, n := range points {
		p, err := curvePointRun(ctx, o, rep.Curve, work, extra, configs, n, progress)
		if err != nil {
			return nil, err
		}
		if ctx.Err() != nil {
			rep.Interrupted = true
			return rep, nil
		}
		rep.Points = append(rep.Points, *p)
	}
	return rep, nil
}

// curvePointRun measures one point with a Baton of its own.
func curvePointRun(ctx context.Context, o options, kind, work, extra string, configs []string, n int, progress io.Writer) (*curvePoint, error) {
	bt, err := startBaton(ctx, o.batonBin, work, fmt.Sprintf("%s-%d", kind, n), extra, configs...)
	if err != nil {
		return nil, err
	}
	defer bt.Close()
	t, err := parseTarget(bt.url)
	if err != nil {
		return nil, err
	}
	spec := loadSpec{target: t, connections: o.connections, timeout: o.timeout, progress: progress}
	if kind == curveProjects {
		spec.payloads, err = buildPayloads(mixSynthetic, synthSpec{count: o.pool, size: o.size, project: o.project, key: o.key, dsnHost: t.host}, "")
		if err != nil {
			return nil, err
		}
		spec.randomKeys, spec.keySpace = true, uint64(n)
	} else {
		spec.payloads = payloadSetOf(statsdPayloads(o.pool, o.metricLines, o.project, o.key))
		spec.seriesSpace = uint64(n)
	}
	if o.warmup > 0 {
		w := spec
		w.label, w.duration = fmt.Sprintf("warmup %s %d", kind, n), o.warmup
		if _, err := runLoad(ctx, w); err != nil {
			return nil, err
		}
	}
	before, err := bt.Stats()
	if err != nil {
		return nil, err
	}
	p := &curvePoint{Distinct: n, PID: bt.PID()}
	rssKB, _, err := readProcStatus(procStatusPath(bt.PID()))
	if err != nil {
		return nil, err
	}
	p.RSSStartMB, p.RSSPeakMB = kbToMB(rssKB), kbToMB(rssKB)

	cpu := startCPU(bt.PID())
	start := time.Now()
	run := spec
	run.label, run.duration, run.requests = fmt.Sprintf("%s %d", kind, n), o.duration, o.requests
	type loadOut struct {
		res *loadResult
		err error
	}
	loadDone := make(chan loadOut, 1)
	go func() {
		res, err := runLoad(ctx, run)
		loadDone <- loadOut{res, err}
	}()
	tick := time.NewTicker(curveSampleInterval)
	defer tick.Stop()
	var (
		last     batonStats
		loadEnd  time.Time
		finished bool
	)
	for !finished {
		select {
		case <-ctx.Done():
			if p.Load == nil {
				<-loadDone
			}
			return p, nil
		case out := <-loadDone:
			if out.err != nil {
				return nil, out.err
			}
			p.Load, loadEnd = out.res, time.Now()
			loadDone = nil
			tick.Reset(20 * time.Millisecond) // time the drain finely
		case <-tick.C:
		}
		if last, err = bt.Stats(); err != nil {
			return nil, err
		}
		rssKB, _, err := readProcStatus(procStatusPath(bt.PID()))
		if err != nil {
			return nil, err
		}
		p.RSSPeakMB = max(p.RSSPeakMB, kbToMB(rssKB))
		if c := last.Projects; c != nil {
			p.CachedPeak = max(p.CachedPeak, c.Projects)
		}
		if a := last.Aggregator; a != nil {
			p.BucketsPeak, p.AggBytesPeak = max(p.BucketsPeak, a.Buckets), max(p.AggBytesPeak, a.Bytes)
		}
		if p.Load == nil {
			continue
		}
		p.Drained = last.Pending == 0 && (last.Aggregator == nil || last.Aggregator.Buckets == 0)
		finished = p.Drained || time.Since(loadEnd) > o.drainTimeout
	}
	p.DrainSeconds = time.Since(loadEnd).Seconds()
	c := cpu.stop(time.Since(start), p.Load.Accepted)
	if c.Error != "" {
		return nil, fmt.Errorf("CPU of Baton pid %d: %s", bt.PID(), c.Error)
	}
	p.CPUSeconds, p.CPUMicros = c.Seconds, c.MicrosPerRequest
	if kind == curveMetrics && o.metricLines > 0 {
		p.CPUMicrosLine = c.MicrosPerRequest / float64(o.metricLines)
		p.LinesPerSec = p.Load.AcceptedPerSec * float64(o.metricLines)
	}
	if rssKB, _, err = readProcStatus(procStatusPath(bt.PID())); err != nil {
		return nil, err
	}
	p.RSSEndMB = kbToMB(rssKB)
	p.AcceptedPerSec, p.P99, p.Final = p.Load.AcceptedPerSec, p.Load.Latency.P99, last
	if b, a := before.Projects, last.Projects; b != nil && a != nil {
		p.FetchRequests, p.FetchedConfigs = a.Requests-b.Requests, a.Fetched-b.Fetched
	}
	if b, a := before.Aggregator, last.Aggregator; b != nil && a != nil {
		p.FlushedEarly = a.FlushedEarly + a.FlushedEarlyScope - b.FlushedEarly - b.FlushedEarlyScope
	}
	return p, nil
}

func writeCurve(w io.Writer, rep *curveReport, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	var b strings.Builder
	what := fmt.Sprintf("%d-byte error envelopes, one of N public keys each (managed mode, every key known)", rep.SizeBytes)
	if rep.Curve == curveMetrics {
		what = fmt.Sprintf("envelopes of %d statsd counter lines, each line one of N series", rep.LinesPerEnvelope)
	}
	fmt.Fprintf(&b, "baton-load %s curve  %s\n", rep.Curve, what)
	cfg := ""
	if rep.BatonConfig != "" {
		cfg = ", config " + rep.BatonConfig
	}
	fmt.Fprintf(&b, "  a fresh Baton per point → Kafka %s (kfake in baton-load)%s; %d connections, %gs warm-up, %gs run;\n",
		rep.Kafka, cfg, rep.Connections, rep.WarmupSeconds, rep.DurationSeconds)
	b.WriteString("  CPU and RSS peak from the run's start until Baton holds nothing\n\n")
	if rep.Curve == curveProjects {
		fmt.Fprintf(&b, "%9s %8s %7s %8s %8s %8s %8s %8s %8s %9s %8s\n",
			"keys", "req/s", "p99 ms", "µs/req", "drain s", "RSS MB", "peak MB", "end MB", "cached", "fetches", "configs")
		for _, p := range rep.Points {
			fmt.Fprintf(&b, "%9d %8.0f %7.2f %8.1f %8.2f %8.1f %8.1f %8.1f %8d %9d %8d\n", p.Distinct, p.AcceptedPerSec, p.P99,
				p.CPUMicros, p.DrainSeconds, p.RSSStartMB, p.RSSPeakMB, p.RSSEndMB, p.CachedPeak, p.FetchRequests, p.FetchedConfigs)
		}
	} else {
		fmt.Fprintf(&b, "%9s %8s %9s %7s %8s %8s %8s %8s %8s %8s %9s %8s %9s\n",
			"series", "req/s", "lines/s", "p99 ms", "µs/req", "µs/line", "drain s", "RSS MB", "peak MB", "end MB", "buckets", "agg MB", "early")
		for _, p := range rep.Points {
			fmt.Fprintf(&b, "%9d %8.0f %9.0f %7.2f %8.1f %8.2f %8.2f %8.1f %8.1f %8.1f %9d %8.1f %9d\n", p.Distinct, p.AcceptedPerSec,
				p.LinesPerSec, p.P99, p.CPUMicros, p.CPUMicrosLine, p.DrainSeconds, p.RSSStartMB, p.RSSPeakMB, p.RSSEndMB,
				p.BucketsPeak, float64(p.AggBytesPeak)/1e6, p.FlushedEarly)
		}
	}
	for _, p := range rep.Points {
		if n := p.Load.Sent - p.Load.Accepted; n > 0 || !p.Drained {
			fmt.Fprintf(&b, "  %d: %d requests not accepted (%v, %d transport errors), drained %v\n", p.Distinct, n, p.Load.Non2xx, p.Load.TransportErrors, p.Drained)
		}
	}
	if rep.Interrupted {
		b.WriteString("\ninterrupted: fewer points than requested\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}
