package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"
)

// outageSampleInterval is how often the --outage scenario reads Baton's
// stats, RSS and buffer size.
const outageSampleInterval = 250 * time.Millisecond

// drainSampleInterval is the finer period once Kafka is back, so that a
// short drain is timed to within a few percent.
const drainSampleInterval = 50 * time.Millisecond

// Phases of the --outage scenario.
const (
	phaseBefore = "before" // Kafka up, intake at --rate
	phaseOutage = "outage" // Kafka gone, intake continues into the buffer
	phaseDrain  = "drain"  // Kafka back, intake continues, backlog drains
)

// outageReport is the backlog-drain cost curve: at a fixed intake rate,
// Kafka goes away for a while, then comes back while intake continues.
type outageReport struct {
	Baton          chainHop `json:"baton"`
	Kafka          string   `json:"kafka"`
	RatePerSec     float64  `json:"rate_per_sec"`   // --rate
	IntakePerSec   float64  `json:"intake_per_sec"` // accepted/s over the whole run
	SizeBytes      int      `json:"size_bytes"`
	OutageSeconds  float64  `json:"outage_seconds"`
	DownAtSeconds  float64  `json:"down_at_seconds"` // since the intake started
	UpAtSeconds    float64  `json:"up_at_seconds"`
	BacklogRecords int64    `json:"backlog_records_at_return"`
	DiskMBBefore   float64  `json:"disk_mb_at_outage_start"`
	DiskMBAtReturn float64  `json:"disk_mb_at_return"`
	DiskMBPeak     float64  `json:"disk_mb_peak"`
	// RSS of Baton while the backlog grew: at Kafka's loss, at its return,
	// and the least and most sampled in between.
	RSSMBAtOutage  float64 `json:"rss_mb_at_outage_start"`
	RSSMBAtReturn  float64 `json:"rss_mb_at_return"`
	RSSMBMinOutage float64 `json:"rss_mb_min_outage"`
	RSSMBMaxOutage float64 `json:"rss_mb_max_outage"`
	// Drain: from Kafka's return until the pending records are back to
	// what the steady state before the outage held.
	Drained          bool           `json:"drained"`
	DrainSeconds     float64        `json:"drain_seconds"`
	DrainPerSec      float64        `json:"drain_per_sec"` // records delivered per second while draining
	DrainToIntake    float64        `json:"drain_to_intake"`
	CPUMicros        float64        `json:"cpu_us_per_request"`
	Load             *loadResult    `json:"load"`
	Samples          []outageSample `json:"samples"`
	PendingThreshold int64          `json:"drained_at_pending"`
	Final            batonStats     `json:"final_stats"`
}

type outageSample struct {
	Seconds   float64 `json:"t"`
	Phase     string  `json:"phase"`
	Pending   int64   `json:"pending"`
	Delivered int64   `json:"delivered"`
	Accepted  int64   `json:"accepted"`
	DiskMB    float64 `json:"disk_mb"`
	RSSMB     float64 `json:"rss_mb"`
}

// outageTarget is the drain rate the issue asks for, as a multiple of intake.
const outageTarget = 3.0

// runOutage runs the --outage scenario and prints its report.
func runOutage(ctx context.Context, o options, stdout, stderr io.Writer) int {
	rep, err := outage(ctx, o, stderr)
	return finish(rep, err, writeOutage, func(rep *outageReport) string {
		if !rep.Drained || rep.Load.Accepted == 0 {
			return fmt.Sprintf("the backlog did not drain within --drain-timeout %s", o.drainTimeout)
		}
		return ""
	}, o.json, stdout, stderr)
}

// freeAddr returns a loopback host:port nobody listens on now, so that the
// broker can come back where Baton expects it.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := ln.Addr().String()
	return addr, ln.Close()
}

func outage(ctx context.Context, o options, progress io.Writer) (*outageReport, error) {
	if o.quiet {
		progress = nil
	}
	work, err := os.MkdirTemp("", "baton-load-outage-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	broker, err := startKfake(ctx, addr)
	if err != nil {
		return nil, err
	}
	defer func() {
		if broker != nil {
			broker.Close()
		}
	}()
	bt, err := startBaton(ctx, o.batonBin, work, "baton", kafkaRouteYAML(addr))
	if err != nil {
		return nil, err
	}
	defer bt.Close()
	t, err := parseTarget(bt.url)
	if err != nil {
		return nil, err
	}
	payloads, err := buildPayloads(mixSynthetic, synthSpec{count: o.pool, size: o.size, project: o.project, key: o.key, dsnHost: t.host}, "")
	if err != nil {
		return nil, err
	}
	rep := &outageReport{Baton: chainHop{bt.url, bt.PID()}, Kafka: addr, RatePerSec: o.rate, SizeBytes: o.size, OutageSeconds: o.outage.Seconds()}

	loadCtx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	start := time.Now()
	type loadOut struct {
		res *loadResult
		err error
	}
	loadDone := make(chan loadOut, 1)
	go func() {
		res, err := runLoad(loadCtx, loadSpec{label: "outage", target: t, connections: o.connections, duration: 0, requests: 1 << 62,
			timeout: o.timeout, payloads: payloads, randomKeys: o.keys == keysRandom, rate: o.rate, cpuPID: bt.PID(), progress: progress})
		loadDone <- loadOut{res, err}
	}()
	phase := phaseBefore // changed by this goroutine only, between samples
	sample := func() (outageSample, error) {
		s, err := bt.Stats()
		if err != nil {
			return outageSample{}, err
		}
		rssKB, _, err := readProcStatus(procStatusPath(bt.PID()))
		if err != nil {
			return outageSample{}, err
		}
		disk, err := dirBytes(bt.dataDir)
		if err != nil {
			return outageSample{}, err
		}
		return outageSample{Seconds: time.Since(start).Seconds(), Phase: phase, Pending: s.Pending, Delivered: s.Delivered,
			Accepted: s.Accepted, DiskMB: float64(disk) / 1e6, RSSMB: kbToMB(rssKB)}, nil
	}
	tick := time.NewTicker(outageSampleInterval)
	defer tick.Stop()
	var (
		prePeak    int64
		threshold  int64
		returnedAt outageSample
		drainLimit time.Time
		finished   bool
		wentDown   time.Time
		downAt     = start.Add(o.outageAfter)
	)
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case out := <-loadDone:
			if out.err != nil {
				return nil, out.err
			}
			return nil, fmt.Errorf("the intake stopped early")
		case <-tick.C:
		}
		s, err := sample()
		if err != nil {
			return nil, err
		}
		rep.Samples = append(rep.Samples, s)
		now := time.Now()
		switch s.Phase {
		case phaseBefore:
			prePeak = max(prePeak, s.Pending)
			if now.After(downAt) {
				rep.DiskMBBefore, rep.RSSMBAtOutage = s.DiskMB, s.RSSMB
				rep.RSSMBMinOutage, rep.RSSMBMaxOutage = s.RSSMB, s.RSSMB
				broker.Close() // Kafka goes away: its port refuses connections
				broker, wentDown = nil, time.Now()
				rep.DownAtSeconds = wentDown.Sub(start).Seconds()
				phase = phaseOutage
				if progress != nil {
					fmt.Fprintf(progress, "outage: Kafka %s down for %s\n", addr, o.outage)
				}
			}
		case phaseOutage:
			rep.RSSMBMinOutage, rep.RSSMBMaxOutage = min(rep.RSSMBMinOutage, s.RSSMB), max(rep.RSSMBMaxOutage, s.RSSMB)
			if now.Sub(wentDown) >= o.outage {
				rep.DiskMBAtReturn, rep.RSSMBAtReturn, rep.BacklogRecords = s.DiskMB, s.RSSMB, s.Pending
				returnedAt = s
				if broker, err = startKfake(ctx, addr); err != nil {
					return nil, fmt.Errorf("bring Kafka back: %w", err)
				}
				rep.UpAtSeconds = time.Since(start).Seconds()
				threshold = max(2*prePeak, int64(o.rate/5))
				rep.PendingThreshold = threshold
				drainLimit = now.Add(o.drainTimeout)
				tick.Reset(drainSampleInterval)
				phase = phaseDrain
				if progress != nil {
					fmt.Fprintf(progress, "outage: Kafka back with %d records pending; draining to %d\n", s.Pending, threshold)
				}
			}
		case phaseDrain:
			rep.Drained = s.Pending <= threshold
			if finished = rep.Drained || now.After(drainLimit); finished {
				rep.DrainSeconds = s.Seconds - returnedAt.Seconds
				rep.DrainPerSec = float64(s.Delivered-returnedAt.Delivered) / rep.DrainSeconds
			}
		}
		rep.DiskMBPeak = max(rep.DiskMBPeak, s.DiskMB)
		if finished {
			break
		}
	}
	stopLoad()
	out := <-loadDone
	if out.err != nil {
		return nil, out.err
	}
	rep.Load = out.res
	rep.IntakePerSec = out.res.AcceptedPerSec
	if rep.IntakePerSec > 0 {
		rep.DrainToIntake = rep.DrainPerSec / rep.IntakePerSec
	}
	if out.res.CPU != nil {
		rep.CPUMicros = out.res.CPU.MicrosPerRequest
	}
	if _, err := waitIdle(ctx, []*batonProc{bt}, o.drainTimeout); err != nil && rep.Drained {
		return nil, err
	}
	if rep.Final, err = bt.Stats(); err != nil {
		return nil, err
	}
	return rep, nil
}

func writeOutage(w io.Writer, rep *outageReport, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "baton-load outage  Baton %s (pid %d) → Kafka %s (kfake in baton-load), %d-byte envelopes at %.0f/s\n",
		rep.Baton.URL, rep.Baton.PID, rep.Kafka, rep.SizeBytes, rep.RatePerSec)
	fmt.Fprintf(&b, "  Kafka down at %.1fs for %.0fs, back at %.1fs; intake %.0f accepted/s over the run, p99 %s, %.1f µs CPU/request\n\n",
		rep.DownAtSeconds, rep.OutageSeconds, rep.UpAtSeconds, rep.IntakePerSec, ms(rep.Load.Latency.P99), rep.CPUMicros)
	fmt.Fprintf(&b, "%8s %-7s %10s %10s %9s %8s\n", "t s", "phase", "pending", "delivered", "disk MB", "RSS MB")
	for _, s := range thinSamples(rep.Samples, 24) {
		fmt.Fprintf(&b, "%8.1f %-7s %10d %10d %9.1f %8.1f\n", s.Seconds, s.Phase, s.Pending, s.Delivered, s.DiskMB, s.RSSMB)
	}
	fmt.Fprintf(&b, "\nbacklog at Kafka's return: %d records, %.1f MB on disk (%.1f MB before the outage, peak %.1f MB)\n",
		rep.BacklogRecords, rep.DiskMBAtReturn, rep.DiskMBBefore, rep.DiskMBPeak)
	fmt.Fprintf(&b, "RSS while the backlog grew: %.1f MB at the outage's start, %.1f–%.1f MB during it, %.1f MB at the return (%+.1f MB)\n",
		rep.RSSMBAtOutage, rep.RSSMBMinOutage, rep.RSSMBMaxOutage, rep.RSSMBAtReturn, rep.RSSMBAtReturn-rep.RSSMBAtOutage)
	state := "drained"
	if !rep.Drained {
		state = "NOT drained (--drain-timeout)"
	}
	fmt.Fprintf(&b, "drain: %s in %.1fs to ≤ %d pending, %.0f records/s delivered = %.2f× the intake (target ≥ %g×: %s)\n",
		state, rep.DrainSeconds, rep.PendingThreshold, rep.DrainPerSec, rep.DrainToIntake, outageTarget, verdictAtLeast(rep.DrainToIntake, outageTarget))
	fmt.Fprintf(&b, "final: accepted %d, delivered %d, dropped %d, pending %d\n", rep.Final.Accepted, rep.Final.Delivered, rep.Final.Dropped, rep.Final.Pending)
	_, err := io.WriteString(w, b.String())
	return err
}

func verdictAtLeast(v, target float64) string {
	if v >= target {
		return "met"
	}
	return "missed"
}

// thinSamples keeps about n samples evenly spread, and every phase change.
func thinSamples(s []outageSample, n int) []outageSample {
	if len(s) <= n {
		return s
	}
	step := float64(len(s)) / float64(n)
	var out []outageSample
	next := 0.0
	for i, v := range s {
		if float64(i) >= next || i == len(s)-1 || (i > 0 && s[i-1].Phase != v.Phase) {
			out = append(out, v)
			if float64(i) >= next {
				next += step
			}
		}
	}
	return out
}
