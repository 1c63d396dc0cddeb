package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
)

// sweepReport is a cost curve: one point per size and connection count,
// each target measured at every point.
type sweepReport struct {
	Targets         []sweepTarget `json:"targets"` // the --url targets, then the ceiling if any
	DurationSeconds float64       `json:"duration_seconds"`
	WarmupSeconds   float64       `json:"warmup_seconds"`
	Runs            int           `json:"runs_per_point"`
	Mix             string        `json:"mix"`
	Points          []sweepPoint  `json:"points"`
	Interrupted     bool          `json:"interrupted,omitempty"`
}

type sweepTarget struct {
	Name    string `json:"name"` // t1, t2, … or noop
	URL     string `json:"url"`
	CPUPID  int    `json:"cpu_pid,omitempty"`
	Ceiling bool   `json:"ceiling,omitempty"`
	Floor   bool   `json:"floor,omitempty"` // a --floor server (Name is its kind)
}

// sweepPoint is one row of the table.
type sweepPoint struct {
	SizeBytes    int           `json:"size_bytes"` // the --sizes value (or --size)
	AvgBodyBytes int           `json:"avg_body_bytes"`
	Connections  int           `json:"connections"`
	Results      []pointResult `json:"results"` // in the order of Targets
	// FirstToSecond is t1 ÷ t2 in accepted/s, with two targets or more.
	FirstToSecond *float64 `json:"first_to_second,omitempty"`
}

// pointResult holds medians over a target's runs at one point.
type pointResult struct {
	Target           string        `json:"target"`
	AcceptedPerSec   float64       `json:"accepted_per_sec"`
	AcceptedMBPerSec float64       `json:"accepted_mb_per_sec"` // bodies of the 2xx-answered requests
	P50              float64       `json:"p50_ms"`
	P99              float64       `json:"p99_ms"`
	CPUMicros        *float64      `json:"cpu_us_per_request,omitempty"`
	ToCeiling        *float64      `json:"ratio_to_ceiling,omitempty"`
	Non2xx           uint64        `json:"non_2xx"` // over all runs
	TransportErrors  uint64        `json:"transport_errors"`
	Runs             []*loadResult `json:"runs"`
}

// runSweep measures every point of the sweep and prints the table.
func runSweep(ctx context.Context, o options, stdout, stderr io.Writer) int {
	rep, err := sweep(ctx, o, stderr)
	return finish(rep, err, writeSweep, func(rep *sweepReport) string {
		for _, p := range rep.Points {
			for _, r := range p.Results {
				for _, run := range r.Runs {
					if run.Accepted == 0 {
						return fmt.Sprintf("%s accepted no request at size %d, %d connections", r.Target, p.SizeBytes, p.Connections)
					}
				}
			}
		}
		return ""
	}, o.json, stdout, stderr)
}

func sweep(ctx context.Context, o options, progress io.Writer) (*sweepReport, error) {
	b := &bench{o: o}
	if !o.quiet {
		b.progress = progress
	}
	rep := &sweepReport{DurationSeconds: o.duration.Seconds(), WarmupSeconds: o.warmup.Seconds(), Runs: o.runs, Mix: o.mix}
	var targets []target
	for i, u := range o.urls {
		t, err := parseTarget(u)
		if err != nil {
			return nil, fmt.Errorf("--url: %w", err)
		}
		st := sweepTarget{Name: "t" + strconv.Itoa(i+1), URL: t.String()}
		if len(o.cpuPIDs) > 0 {
			st.CPUPID = o.cpuPIDs[i]
			if err := checkCPUPID(st.CPUPID); err != nil {
				return nil, err
			}
		}
		targets, rep.Targets = append(targets, t), append(rep.Targets, st)
	}
	b.baton = targets[0]
	if len(o.floors) > 0 {
		children, stop, err := startFloors(o.floors, o.floorDir, o.floorKafka, os.Stderr) // as the ceiling child: the processes write concurrently
		if err != nil {
			return nil, err
		}
		defer stop()
		for i, c := range children {
			t, err := parseTarget(c.URL())
			if err != nil {
				return nil, err
			}
			targets = append(targets, t)
			rep.Targets = append(rep.Targets, sweepTarget{Name: o.floors[i], URL: t.String(), CPUPID: c.PID(), Floor: true})
		}
	}
	if o.ceiling {
		stop, err := b.setupCeiling(&report{})
		if err != nil {
			return nil, err
		}
		defer stop()
		targets = append(targets, *b.ceiling)
		rep.Targets = append(rep.Targets, sweepTarget{Name: "noop", URL: b.ceiling.String(), CPUPID: b.noopPID, Ceiling: true})
	}
	sizes, conns := o.sizes, o.connSweep
	if len(sizes) == 0 {
		sizes = []int{o.size}
	}
	if len(conns) == 0 {
		conns = []int{o.connections}
	}
	for _, size := range sizes {
		spec := synthSpec{count: o.pool, size: size, project: o.project, key: o.key, dsnHost: b.baton.host}
		payloads, err := buildPayloads(o.mix, spec, o.fixtures)
		if err != nil {
			return nil, err
		}
		for _, c := range conns {
			p, err := b.point(ctx, rep.Targets, targets, payloads, size, c)
			if err != nil {
				return nil, err
			}
			if ctx.Err() != nil {
				rep.Interrupted = true
				return rep, nil
			}
			rep.Points = append(rep.Points, p)
		}
	}
	return rep, nil
}

// point measures every target at one size and connection count: a warm-up
// each, then the runs, targets alternating run by run.
func (b *bench) point(ctx context.Context, names []sweepTarget, targets []target, payloads *payloadSet, size, conns int) (sweepPoint, error) {
	p := sweepPoint{SizeBytes: size, AvgBodyBytes: payloads.avgBytes, Connections: conns, Results: make([]pointResult, len(targets))}
	spec := func(i int, label string, d time.Duration, measured bool) loadSpec {
		s := loadSpec{label: fmt.Sprintf("%s %s size %d conns %d", label, names[i].Name, size, conns), target: targets[i],
			connections: conns, duration: d, timeout: b.o.timeout, payloads: payloads, randomKeys: b.o.keys == keysRandom, progress: b.progress}
		if measured {
			s.requests, s.cpuPID = b.o.requests, names[i].CPUPID
		}
		return s
	}
	if b.o.warmup > 0 {
		for i := range targets {
			if _, err := runLoad(ctx, spec(i, "warmup", b.o.warmup, false)); err != nil {
				return p, err
			}
		}
	}
	for run := 1; run <= b.o.runs && ctx.Err() == nil; run++ {
		for i := range targets {
			r, err := runLoad(ctx, spec(i, fmt.Sprintf("run %d/%d", run, b.o.runs), b.o.duration, true))
			if err != nil {
				return p, err
			}
			p.Results[i].Runs = append(p.Results[i].Runs, r)
		}
	}
	for i := range p.Results {
		summarizePoint(&p.Results[i], names[i].Name)
	}
	if len(b.o.urls) > 1 && p.Results[1].AcceptedPerSec > 0 {
		v := p.Results[0].AcceptedPerSec / p.Results[1].AcceptedPerSec
		p.FirstToSecond = &v
	}
	if b.ceiling != nil {
		noop := p.Results[len(p.Results)-1].AcceptedPerSec
		for i := range p.Results[:len(p.Results)-1] {
			if noop > 0 {
				v := p.Results[i].AcceptedPerSec / noop
				p.Results[i].ToCeiling = &v
			}
		}
	}
	return p, nil
}

// summarizePoint fills r's medians from its runs.
func summarizePoint(r *pointResult, name string) {
	r.Target = name
	med := func(f func(*loadResult) float64) float64 {
		vs := make([]float64, len(r.Runs))
		for i, run := range r.Runs {
			vs[i] = f(run)
		}
		return median(vs)
	}
	if len(r.Runs) == 0 {
		return
	}
	r.AcceptedPerSec = med(func(l *loadResult) float64 { return l.AcceptedPerSec })
	r.AcceptedMBPerSec = med(func(l *loadResult) float64 { return l.AcceptedMBPerSec })
	r.P50 = med(func(l *loadResult) float64 { return l.Latency.P50 })
	r.P99 = med(func(l *loadResult) float64 { return l.Latency.P99 })
	var cpu []float64
	for _, run := range r.Runs {
		if v, ok := cpuMicros(run); ok {
			cpu = append(cpu, v)
		}
		for _, n := range run.Non2xx {
			r.Non2xx += n
		}
		r.TransportErrors += run.TransportErrors
	}
	if len(cpu) > 0 {
		v := median(cpu)
		r.CPUMicros = &v
	}
}

// writeSweep prints the sweep as a table, one row per point, or as JSON.
func writeSweep(w io.Writer, rep *sweepReport, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "baton-load sweep  %gs per run, %d run(s) per point (medians), warm-up %gs per point and target, mix %s\n",
		rep.DurationSeconds, rep.Runs, rep.WarmupSeconds, rep.Mix)
	for _, t := range rep.Targets {
		cpu := "CPU not measured (--cpu-pid)"
		if t.CPUPID != 0 {
			cpu = "CPU of pid " + strconv.Itoa(t.CPUPID)
		}
		role := ""
		if t.Ceiling {
			role = ", no-op ceiling"
		}
		fmt.Fprintf(&b, "  %-5s %s (%s%s)\n", t.Name, t.URL, cpu, role)
	}
	b.WriteString("\n")
	var widths []int // of each target's name column
	fmt.Fprintf(&b, "%9s %9s %6s", "size", "body B", "conns")
	for _, t := range rep.Targets {
		fmt.Fprintf(&b, " | %-5s %8s %7s %7s %7s %7s", t.Name, "req/s", "MB/s", "p50 ms", "p99 ms", "µs/req")
		widths = append(widths, max(5, len(t.Name)))
	}
	if len(rep.Points) > 0 && rep.Points[0].FirstToSecond != nil {
		fmt.Fprintf(&b, " | %6s", "t1÷t2")
	}
	for _, t := range rep.Targets[:len(rep.Targets)-1] {
		if rep.Targets[len(rep.Targets)-1].Ceiling {
			fmt.Fprintf(&b, " %8s", t.Name+"÷noop")
		}
	}
	b.WriteString("\n")
	for _, p := range rep.Points {
		fmt.Fprintf(&b, "%9s %9d %6d", sizeString(p.SizeBytes), p.AvgBodyBytes, p.Connections)
		errs := "" // noted after the row: MB/s counts accepted bodies only, µs/req every answer
		for i, r := range p.Results {
			cpu := "-"
			if r.CPUMicros != nil {
				cpu = strconv.FormatFloat(*r.CPUMicros, 'f', 1, 64)
			}
			fmt.Fprintf(&b, " | %-*s %8.0f %7.1f %7.2f %7.2f %7s", widths[i], "", r.AcceptedPerSec, r.AcceptedMBPerSec, r.P50, r.P99, cpu)
			if r.Non2xx+r.TransportErrors > 0 {
				errs += fmt.Sprintf("  %s: %d non-2xx, %d transport errors", r.Target, r.Non2xx, r.TransportErrors)
			}
		}
		if p.FirstToSecond != nil {
			fmt.Fprintf(&b, " | %6.3f", *p.FirstToSecond)
		}
		for _, r := range p.Results {
			if r.ToCeiling != nil {
				fmt.Fprintf(&b, " %8.3f", *r.ToCeiling)
			}
		}
		b.WriteString(errs + "\n")
	}
	if rep.Runs > 1 {
		writeSpread(&b, rep)
	}
	if rep.Interrupted {
		b.WriteString("\ninterrupted: fewer points than requested\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// sizeString writes n as --sizes would take it.
func sizeString(n int) string {
	switch {
	case n >= 1000_000 && n%1000_000 == 0:
		return strconv.Itoa(n/1000_000) + "m"
	case n >= 1000 && n%1000 == 0:
		return strconv.Itoa(n/1000) + "k"
	}
	return strconv.Itoa(n)
}
