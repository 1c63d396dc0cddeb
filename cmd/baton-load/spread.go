package main

import (
	"fmt"
	"slices"
	"strings"
)

// spreadOf is "median (min–max)" of vs, or "-" when vs is empty.
func spreadOf(vs []float64, prec int) string {
	if len(vs) == 0 {
		return "-"
	}
	vs = slices.Clone(vs)
	m := median(vs) // sorts
	if len(vs) == 1 {
		return fmt.Sprintf("%.*f", prec, m)
	}
	return fmt.Sprintf("%.*f (%.*f–%.*f)", prec, m, prec, vs[0], prec, vs[len(vs)-1])
}

// perRun collects f over the runs of result i, or f over the run pairs of
// results i and j (run by run: the targets were loaded in turn within a
// run), skipping runs where f reports nothing.
func perRun(p sweepPoint, i, j int, f func(a, b *loadResult) (float64, bool)) []float64 {
	var out []float64
	for r, a := range p.Results[i].Runs {
		var b *loadResult
		if j >= 0 {
			if r >= len(p.Results[j].Runs) {
				break
			}
			b = p.Results[j].Runs[r]
		}
		if v, ok := f(a, b); ok {
			out = append(out, v)
		}
	}
	return out
}

func reqRatio(a, b *loadResult) (float64, bool) {
	if b.AcceptedPerSec <= 0 {
		return 0, false
	}
	return a.AcceptedPerSec / b.AcceptedPerSec, true
}

func cpuRatio(a, b *loadResult) (float64, bool) {
	x, ok1 := cpuMicros(a)
	y, ok2 := cpuMicros(b)
	if !ok1 || !ok2 || y <= 0 {
		return 0, false
	}
	return x / y, true
}

// writeSpread prints, per point, every target's medians and (min–max) over
// the runs, its ratios to the no-op taken run by run, and the pairs that
// answer issue 21: durable ÷ relaxed (t1 ÷ t2, each floor ÷ its -nosync
// twin) and Baton ÷ each durable floor.
func writeSpread(b *strings.Builder, rep *sweepReport) {
	index := map[string]int{}
	noop := -1
	for i, t := range rep.Targets {
		index[t.Name] = i
		if t.Ceiling {
			noop = i
		}
	}
	type pair struct{ a, b string }
	var pairs []pair
	if _, ok := index["t2"]; ok {
		pairs = append(pairs, pair{"t1", "t2"})
	}
	for _, k := range []string{floorPebble, floorKafka} {
		if _, ok := index[k]; ok {
			if _, ok := index[k+"-nosync"]; ok {
				pairs = append(pairs, pair{k, k + "-nosync"})
			}
		}
	}
	for _, k := range floorKinds {
		if _, ok := index[k]; ok {
			if _, ok := index["t1"]; ok {
				pairs = append(pairs, pair{"t1", k})
			}
		}
	}
	for _, p := range rep.Points {
		fmt.Fprintf(b, "\nsize %s, %d connections: medians (min–max) over %d runs; ratios taken run by run\n",
			sizeString(p.SizeBytes), p.Connections, rep.Runs)
		fmt.Fprintf(b, "  %-13s %-22s %-22s %-22s %-20s %-20s\n", "target", "req/s", "CPU µs/req", "p99 ms", "req/s ÷ noop", "CPU ÷ noop")
		for i, r := range p.Results {
			reqs := perRun(p, i, -1, func(a, _ *loadResult) (float64, bool) { return a.AcceptedPerSec, true })
			cpu := perRun(p, i, -1, func(a, _ *loadResult) (float64, bool) { return cpuMicros(a) })
			p99 := perRun(p, i, -1, func(a, _ *loadResult) (float64, bool) { return a.Latency.P99, true })
			toReq, toCPU := "-", "-"
			if noop >= 0 && i != noop {
				toReq, toCPU = spreadOf(perRun(p, i, noop, reqRatio), 2), spreadOf(perRun(p, i, noop, cpuRatio), 2)
			}
			fmt.Fprintf(b, "  %-13s %-22s %-22s %-22s %-20s %-20s\n", r.Target, spreadOf(reqs, 0), spreadOf(cpu, 1), spreadOf(p99, 1), toReq, toCPU)
		}
		for _, pr := range pairs {
			i, j := index[pr.a], index[pr.b]
			fmt.Fprintf(b, "  %-28s req/s %-20s CPU %s\n", pr.a+" ÷ "+pr.b+":", spreadOf(perRun(p, i, j, reqRatio), 2), spreadOf(perRun(p, i, j, cpuRatio), 2))
		}
	}
}
