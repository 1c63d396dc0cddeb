package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"sort"
	"time"
)

// Ratio thresholds of the headline metric (docs/performance-anchors.md §4).
const (
	ratioTarget = 0.30
	ratioGoal   = 0.40
)

// report is everything one invocation measured.
type report struct {
	Target          string        `json:"target"`
	Connections     int           `json:"connections"`
	DurationSeconds float64       `json:"duration_seconds"` // 0: no time limit (--requests)
	Requests        uint64        `json:"requests,omitempty"`
	Mix             string        `json:"mix"`
	Keys            string        `json:"keys"`
	RSSPID          int           `json:"rss_pid,omitempty"`
	Payloads        payloadInfo   `json:"payloads"`
	Ceiling         *ceilingInfo  `json:"ceiling,omitempty"`
	Kafka           string        `json:"kafka,omitempty"`
	Runs            []runReport   `json:"runs"`
	Median          *medianReport `json:"median,omitempty"`
	Interrupted     bool          `json:"interrupted,omitempty"`
}

type payloadInfo struct {
	Synthetic    int `json:"synthetic_templates"`
	Fixtures     int `json:"fixture_requests"`
	Sequence     int `json:"sequence_length"`
	AvgBodyBytes int `json:"avg_body_bytes"`
}

type ceilingInfo struct {
	URL       string  `json:"url"`
	InProcess bool    `json:"in_process"`
	PID       int     `json:"pid,omitempty"` // of the child process serving it
	Target    float64 `json:"ratio_target"`
	Goal      float64 `json:"ratio_goal"`
}

type runReport struct {
	Run      int             `json:"run"`
	Ceiling  *loadResult     `json:"ceiling,omitempty"`
	Baton    *loadResult     `json:"baton"`
	Ratio    *float64        `json:"ratio,omitempty"`
	Delivery *deliveryResult `json:"delivery,omitempty"`
}

// medianReport holds per-field medians over the runs.
type medianReport struct {
	AcceptedPerSec float64  `json:"accepted_per_sec"`
	CeilingPerSec  *float64 `json:"ceiling_per_sec,omitempty"`
	Ratio          *float64 `json:"ratio,omitempty"`
	P50            float64  `json:"p50_ms"`
	P90            float64  `json:"p90_ms"`
	P99            float64  `json:"p99_ms"`
	BodyMBPerSec   float64  `json:"body_mb_per_sec"`
	BacklogSeconds *float64 `json:"backlog_seconds,omitempty"`
	// CPU µs per request of the --cpu-pid process and of the ceiling's
	// child process.
	CPUMicros        *float64 `json:"cpu_us_per_request,omitempty"`
	CeilingCPUMicros *float64 `json:"ceiling_cpu_us_per_request,omitempty"`
}

// failure explains why the invocation should exit 1: a run accepted
// nothing, or a delivery check found missing records. Empty means success.
func (r *report) failure() string {
	for _, run := range r.Runs {
		if run.Baton.Accepted == 0 {
			return fmt.Sprintf("run %d: the target accepted no request", run.Run)
		}
		if run.Delivery != nil && !run.Delivery.OK() {
			return fmt.Sprintf("run %d: %d accepted synthetic envelopes missing from %s", run.Run, *run.Delivery.Missing, errorTopic)
		}
	}
	return ""
}

// bench holds what the runs share.
type bench struct {
	o        options
	baton    target
	ceiling  *target
	noopPID  int // the ceiling's child process, whose CPU time is measured; 0: none
	payloads *payloadSet
	kafka    *deliveryChecker
	progress io.Writer
}

// benchmark performs the warm-up and all runs described by o.
func benchmark(ctx context.Context, o options, progress io.Writer) (*report, error) {
	b := &bench{o: o}
	if !o.quiet {
		b.progress = progress
	}
	var err error
	if b.baton, err = parseTarget(o.url); err != nil {
		return nil, fmt.Errorf("--url: %w", err)
	}
	spec := synthSpec{count: o.pool, size: o.size, project: o.project, key: o.key, dsnHost: b.baton.host}
	if b.payloads, err = buildPayloads(o.mix, spec, o.fixtures); err != nil {
		return nil, err
	}
	if o.rssPID > 0 {
		if err := checkRSSPID(o.rssPID); err != nil {
			return nil, err
		}
	}
	for _, pid := range o.cpuPIDs {
		if err := checkCPUPID(pid); err != nil {
			return nil, err
		}
	}
	rep := b.newReport()
	if o.ceiling {
		stop, err := b.setupCeiling(rep)
		if err != nil {
			if ctx.Err() != nil { // a Ctrl-C reached the child as it started
				rep.Interrupted = true
				return rep, nil
			}
			return nil, err
		}
		defer stop()
	}
	if o.kafka != "" {
		if b.kafka, err = newDeliveryChecker(o.kafka, o.drainSettle, o.drainTimeout); err != nil {
			return nil, err
		}
		defer b.kafka.Close()
		if _, err := b.kafka.Snapshot(ctx); err != nil { // fail before any load if the broker is unreachable
			return nil, err
		}
	}
	if err := b.warmup(ctx); err != nil {
		return nil, err
	}
	for i := 1; i <= o.runs && ctx.Err() == nil; i++ {
		run, err := b.oneRun(ctx, i)
		if err != nil {
			return nil, err
		}
		if run.Baton == nil {
			break // interrupted before Baton was loaded: nothing to report, nothing failed
		}
		rep.Runs = append(rep.Runs, run)
	}
	rep.Interrupted = ctx.Err() != nil
	if len(rep.Runs) > 1 {
		rep.Median = medians(rep.Runs)
	}
	return rep, nil
}

func (b *bench) newReport() *report {
	return &report{
		Target: b.baton.String(), Connections: b.o.connections, DurationSeconds: b.o.duration.Seconds(),
		Requests: b.o.requests, Mix: b.o.mix, Keys: b.o.keys, RSSPID: b.o.rssPID, Kafka: b.o.kafka,
		Payloads: payloadInfo{Synthetic: b.payloads.synthetic, Fixtures: b.payloads.fixtures,
			Sequence: len(b.payloads.items), AvgBodyBytes: b.payloads.avgBytes},
	}
}

// setupCeiling points the ceiling at --ceiling-url, or starts the no-op
// server in a child process (in this one with --ceiling-in-process); the
// returned func stops it.
func (b *bench) setupCeiling(rep *report) (func(), error) {
	info := &ceilingInfo{URL: b.o.ceilingURL, Target: ratioTarget, Goal: ratioGoal}
	var srv interface {
		URL() string
		Close() error
	}
	switch {
	case info.URL != "":
	case b.o.ceilingLocal:
		n, err := startNoop("127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		srv, info.InProcess = n, true
	default:
		c, err := startNoopChild(os.Stderr)
		if err != nil {
			return nil, err
		}
		srv, info.PID = c, c.PID()
	}
	stop := func() {}
	if srv != nil {
		info.URL = srv.URL()
		stop = func() {
			if err := srv.Close(); err != nil {
				fmt.Fprintln(os.Stderr, "baton-load:", err)
			}
		}
	}
	t, err := parseTarget(info.URL)
	if err != nil {
		stop()
		return nil, fmt.Errorf("--ceiling-url: %w", err)
	}
	b.ceiling, rep.Ceiling, b.noopPID = &t, info, info.PID
	return stop, nil
}

// spec describes a warm-up (duration only) or a measured run (duration
// and/or request count); --rss-pid is sampled during measured Baton runs.
func (b *bench) spec(label string, t target, d time.Duration, measured, baton bool) loadSpec {
	s := loadSpec{label: label, target: t, connections: b.o.connections, duration: d,
		timeout: b.o.timeout, payloads: b.payloads, randomKeys: b.o.keys == keysRandom, progress: b.progress}
	if measured {
		s.requests = b.o.requests
		if baton {
			s.rssPID, s.rssInterval = b.o.rssPID, defaultRSSInterval
			if len(b.o.cpuPIDs) > 0 {
				s.cpuPID = b.o.cpuPIDs[0]
			}
		} else {
			s.cpuPID = b.noopPID
		}
	}
	return s
}

// warmup loads each target once, unreported, then lets Kafka settle so the
// warm-up's records are not counted by the first run.
func (b *bench) warmup(ctx context.Context) error {
	if b.o.warmup <= 0 {
		return nil
	}
	if b.ceiling != nil {
		if _, err := runLoad(ctx, b.spec("warmup ceiling", *b.ceiling, b.o.warmup, false, false)); err != nil {
			return err
		}
	}
	if _, err := runLoad(ctx, b.spec("warmup baton", b.baton, b.o.warmup, false, true)); err != nil {
		return err
	}
	if b.kafka == nil {
		return nil
	}
	before, err := b.kafka.Snapshot(ctx)
	if err != nil {
		return err
	}
	_, err = b.kafka.Drain(ctx, before, 0, 0, -1)
	return err
}

// oneRun is one ceiling run (if enabled) followed by one Baton run.
func (b *bench) oneRun(ctx context.Context, i int) (runReport, error) {
	run := runReport{Run: i}
	suffix := fmt.Sprintf(" %d/%d", i, b.o.runs)
	var err error
	if b.ceiling != nil {
		if run.Ceiling, err = runLoad(ctx, b.spec("ceiling"+suffix, *b.ceiling, b.o.duration, true, false)); err != nil {
			return run, err
		}
		if ctx.Err() != nil {
			return run, nil // interrupted: Baton is not loaded
		}
	}
	var before offsets
	if b.kafka != nil {
		if before, err = b.kafka.Snapshot(ctx); err != nil {
			return run, err
		}
	}
	if run.Baton, err = runLoad(ctx, b.spec("baton"+suffix, b.baton, b.o.duration, true, true)); err != nil {
		return run, err
	}
	if run.Ceiling != nil && run.Ceiling.AcceptedPerSec > 0 {
		ratio := run.Baton.AcceptedPerSec / run.Ceiling.AcceptedPerSec
		run.Ratio = &ratio
	}
	if b.kafka != nil {
		expected := int64(-1)
		if b.o.mix == mixSynthetic {
			expected = int64(run.Baton.SyntheticAccepted)
		}
		if b.progress != nil {
			fmt.Fprintf(b.progress, "[kafka] waiting for baton.* end offsets to settle (%s still, at most %s)\n", b.o.drainSettle, b.o.drainTimeout)
		}
		run.Delivery, err = b.kafka.Drain(ctx, before, run.Baton.Accepted, run.Baton.AcceptedPerSec, expected)
		if err != nil {
			return run, err
		}
	}
	return run, nil
}

func medians(runs []runReport) *medianReport {
	pick := func(f func(r runReport) (float64, bool)) *float64 {
		var vs []float64
		for _, r := range runs {
			if v, ok := f(r); ok {
				vs = append(vs, v)
			}
		}
		if len(vs) == 0 {
			return nil
		}
		m := median(vs)
		return &m
	}
	baton := func(g func(*loadResult) float64) float64 {
		return *pick(func(r runReport) (float64, bool) { return g(r.Baton), true })
	}
	return &medianReport{
		AcceptedPerSec: baton(func(l *loadResult) float64 { return l.AcceptedPerSec }),
		P50:            baton(func(l *loadResult) float64 { return l.Latency.P50 }),
		P90:            baton(func(l *loadResult) float64 { return l.Latency.P90 }),
		P99:            baton(func(l *loadResult) float64 { return l.Latency.P99 }),
		BodyMBPerSec:   baton(func(l *loadResult) float64 { return l.BodyMBPerSec }),
		CeilingPerSec: pick(func(r runReport) (float64, bool) {
			return valueOr(r.Ceiling, func(l *loadResult) float64 { return l.AcceptedPerSec })
		}),
		Ratio: pick(func(r runReport) (float64, bool) {
			if r.Ratio == nil {
				return 0, false
			}
			return *r.Ratio, true
		}),
		BacklogSeconds: pick(func(r runReport) (float64, bool) {
			return valueOr(r.Delivery, func(d *deliveryResult) float64 { return d.BacklogSeconds })
		}),
		CPUMicros:        pick(func(r runReport) (float64, bool) { return cpuMicros(r.Baton) }),
		CeilingCPUMicros: pick(func(r runReport) (float64, bool) { return cpuMicros(r.Ceiling) }),
	}
}

func valueOr[T any](p *T, f func(*T) float64) (float64, bool) {
	if p == nil {
		return 0, false
	}
	return f(p), true
}

// median of vs (the mean of the middle two for an even count); vs is sorted in place.
func median(vs []float64) float64 {
	sort.Float64s(vs)
	n := len(vs)
	if n%2 == 1 {
		return vs[n/2]
	}
	return (vs[n/2-1] + vs[n/2]) / 2
}

// cpuMicros is r's CPU µs per request, when it was measured.
func cpuMicros(r *loadResult) (float64, bool) {
	if r == nil || r.CPU == nil || r.CPU.Error != "" {
		return 0, false
	}
	return r.CPU.MicrosPerRequest, true
}
