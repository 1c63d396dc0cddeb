package main

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
)

// writeReport prints rep as text or, with asJSON, as one indented JSON document.
func writeReport(w io.Writer, rep *report, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	var b strings.Builder
	writeHeader(&b, rep)
	for _, run := range rep.Runs {
		fmt.Fprintf(&b, "\nrun %d/%d\n", run.Run, len(rep.Runs))
		if run.Ceiling != nil {
			writeLoad(&b, "ceiling", run.Ceiling)
		}
		writeLoad(&b, "baton", run.Baton)
		if run.Ratio != nil {
			fmt.Fprintf(&b, "  %-9s %.3f of the no-op ceiling (%s)\n", "ratio", *run.Ratio, verdict(*run.Ratio))
		}
		if run.Delivery != nil {
			writeDelivery(&b, run.Delivery)
		}
	}
	if rep.Median != nil {
		writeMedian(&b, rep.Median, len(rep.Runs))
	}
	if rep.Interrupted {
		b.WriteString("\ninterrupted: fewer runs than requested\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func writeHeader(b *strings.Builder, rep *report) {
	p := rep.Payloads
	limit := fmt.Sprintf("duration %gs", rep.DurationSeconds)
	switch {
	case rep.Requests > 0 && rep.DurationSeconds > 0:
		limit = fmt.Sprintf("requests %d or duration %gs", rep.Requests, rep.DurationSeconds)
	case rep.Requests > 0:
		limit = fmt.Sprintf("requests %d", rep.Requests)
	}
	keys := "fixed key"
	if rep.Keys == keysRandom {
		keys = "random key per request"
	}
	fmt.Fprintf(b, "baton-load  target %s  connections %d  %s  mix %s (%d synthetic, %d fixtures, avg body %d B)  %s\n",
		rep.Target, rep.Connections, limit, rep.Mix, p.Synthetic, p.Fixtures, p.AvgBodyBytes, keys)
	if c := rep.Ceiling; c != nil {
		where := "external no-op server"
		switch {
		case c.InProcess:
			where = "in-process no-op server: it shares this process and its scheduler with the load generator, so it runs faster than a separate server"
		case c.PID != 0:
			where = fmt.Sprintf("no-op server in child process %d, a process of its own like Baton", c.PID)
		}
		fmt.Fprintf(b, "ceiling     %s (%s)\n", c.URL, where)
	}
	if rep.Kafka != "" {
		fmt.Fprintf(b, "kafka       %s (end offsets of baton.* topics)\n", rep.Kafka)
	}
}

func writeLoad(b *strings.Builder, name string, r *loadResult) {
	l := r.Latency
	fmt.Fprintf(b, "  %-9s %8.0f accepted/s  sent %d in %.1fs  2xx %d  non-2xx %s  transport errors %d  conns %d\n",
		name, r.AcceptedPerSec, r.Sent, r.ElapsedSeconds, r.Accepted, statusList(r.Non2xx), r.TransportErrors, r.ConnectionsOpened)
	fmt.Fprintf(b, "  %-9s latency p50 %s  p90 %s  p99 %s  max %s  mean %s   bodies %.1f MB/s\n",
		"", ms(l.P50), ms(l.P90), ms(l.P99), ms(l.Max), ms(l.Mean), r.BodyMBPerSec)
	fmt.Fprintf(b, "  %-9s status %s\n", "", statusList(r.Status))
	for _, msg := range slices.Sorted(maps.Keys(r.ErrorSamples)) {
		fmt.Fprintf(b, "  %-9s error x%d: %s\n", "", r.ErrorSamples[msg], msg)
	}
	if r.RSS != nil {
		writeRSS(b, r.RSS)
	}
	if c := r.CPU; c != nil {
		if c.Error != "" {
			fmt.Fprintf(b, "  %-9s pid %d: NOT MEASURED %s\n", "cpu", c.PID, c.Error)
		} else {
			fmt.Fprintf(b, "  %-9s pid %d: %.2f s user+system over the run (%.2f cores), %.1f µs per request\n",
				"cpu", c.PID, c.Seconds, c.Cores, c.MicrosPerRequest)
		}
	}
}

// writeRSS prints the --rss-pid process's memory over the run.
func writeRSS(b *strings.Builder, m *rssReport) {
	fmt.Fprintf(b, "  %-9s pid %d: start %.1f MB  peak %.1f MB (at %.1fs)  final %.1f MB  VmHWM %.1f MB  second half %+.1f MB  (%d samples, every %gms)\n",
		"rss", m.PID, m.StartMB, m.PeakMB, m.PeakAtSeconds, m.FinalMB, m.FinalHWMMB, m.SecondHalfGrowth, m.Samples, m.IntervalMs)
	for _, pt := range m.Timeline {
		fmt.Fprintf(b, "  %-9s at %3d%%  %7.1fs  sent %10d  rss %8.1f MB\n", "", pt.Pct, pt.Seconds, pt.Sent, pt.RSSMB)
	}
	if m.Error != "" {
		fmt.Fprintf(b, "  %-9s SAMPLING STOPPED %s\n", "", m.Error)
	}
}

func writeDelivery(b *strings.Builder, d *deliveryResult) {
	var topics []string
	for _, t := range slices.Sorted(maps.Keys(d.ArrivedByTopic)) {
		topics = append(topics, fmt.Sprintf("%s %d", t, d.ArrivedByTopic[t]))
	}
	fmt.Fprintf(b, "  %-9s arrived %d (%s)\n", "kafka", d.Arrived, strings.Join(topics, ", "))
	fmt.Fprintf(b, "  %-9s backlog at load end %d records (%.2fs of traffic); drained %d in %.1fs (%.0f/s)%s\n",
		"", d.BacklogAtEnd, d.BacklogSeconds, d.DrainRecords, d.DrainSeconds, d.DrainPerSec, timedOut(d.TimedOut))
	if d.Expected != nil {
		state := "OK"
		if *d.Missing != 0 {
			state = fmt.Sprintf("MISMATCH: %+d missing", *d.Missing)
		}
		fmt.Fprintf(b, "  %-9s %s: %d records for %d accepted synthetic envelopes: %s\n", "", errorTopic, d.ErrorRecords, *d.Expected, state)
	}
}

func writeMedian(b *strings.Builder, m *medianReport, n int) {
	fmt.Fprintf(b, "\nmedian of %d runs\n", n)
	fmt.Fprintf(b, "  %-9s %8.0f accepted/s  p50 %s  p90 %s  p99 %s  bodies %.1f MB/s\n",
		"baton", m.AcceptedPerSec, ms(m.P50), ms(m.P90), ms(m.P99), m.BodyMBPerSec)
	if m.CeilingPerSec != nil {
		fmt.Fprintf(b, "  %-9s %8.0f accepted/s\n", "ceiling", *m.CeilingPerSec)
	}
	if m.Ratio != nil {
		fmt.Fprintf(b, "  %-9s %.3f (median of per-run ratios; %s)\n", "ratio", *m.Ratio, verdict(*m.Ratio))
	}
	if m.CPUMicros != nil {
		fmt.Fprintf(b, "  %-9s baton %.1f µs per request", "cpu", *m.CPUMicros)
		if m.CeilingCPUMicros != nil {
			fmt.Fprintf(b, "  ceiling %.1f µs per request (%.2f×)", *m.CeilingCPUMicros, *m.CPUMicros / *m.CeilingCPUMicros)
		}
		b.WriteString("\n")
	}
	if m.BacklogSeconds != nil {
		fmt.Fprintf(b, "  %-9s backlog at load end %.2fs of traffic\n", "kafka", *m.BacklogSeconds)
	}
}

func verdict(r float64) string {
	switch {
	case r >= ratioGoal:
		return fmt.Sprintf("meets the goal %.2f", ratioGoal)
	case r >= ratioTarget:
		return fmt.Sprintf("meets the target %.2f, below the goal %.2f", ratioTarget, ratioGoal)
	default:
		return fmt.Sprintf("below the target %.2f", ratioTarget)
	}
}

func statusList(m map[string]uint64) string {
	if len(m) == 0 {
		return "0"
	}
	parts := make([]string, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s:%d", k, m[k]))
	}
	return strings.Join(parts, " ")
}

func ms(v float64) string {
	if v < 10 {
		return fmt.Sprintf("%.2fms", v)
	}
	return fmt.Sprintf("%.1fms", v)
}

func timedOut(t bool) string {
	if t {
		return "  DRAIN TIMED OUT (raise --drain-timeout)"
	}
	return ""
}
