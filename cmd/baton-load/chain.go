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

// chainReport is the --chain scenario: SDK load → edge Baton → upstream
// Baton (the relay-to-relay HTTP path) → Kafka, with the CPU of each hop.
type chainReport struct {
	Edge     chainHop     `json:"edge"`
	Upstream chainHop     `json:"upstream"`
	Kafka    string       `json:"kafka"`
	Conns    int          `json:"connections"`
	Size     int          `json:"size_bytes"`
	Rate     float64      `json:"rate_per_sec,omitempty"` // --rate; 0: closed loop
	Runs     []chainRun   `json:"runs"`
	Median   *chainMedian `json:"median,omitempty"`
}

type chainHop struct {
	URL string `json:"url"`
	PID int    `json:"pid"`
}

// chainRun is one measured run. The CPU of both hops is read from the start
// of the load until both Batons hold nothing pending (everything the edge
// accepted is in Kafka), and divided by the requests the edge accepted.
type chainRun struct {
	Load         *loadResult `json:"load"`
	DrainSeconds float64     `json:"drain_seconds"` // after the load, until both Batons held nothing
	EdgeCPU      *cpuReport  `json:"edge_cpu"`
	UpstreamCPU  *cpuReport  `json:"upstream_cpu"`
	KafkaErrors  int64       `json:"error_topic_records"` // must equal the synthetic envelopes accepted
}

type chainMedian struct {
	AcceptedPerSec   float64 `json:"accepted_per_sec"`
	P99              float64 `json:"p99_ms"`
	EdgeMicros       float64 `json:"edge_cpu_us_per_request"`
	UpstreamMicros   float64 `json:"upstream_cpu_us_per_request"`
	DrainSeconds     float64 `json:"drain_seconds"`
	EndToEndPerSec   float64 `json:"end_to_end_per_sec"` // accepted ÷ (load + drain)
	DeliveredToKafka bool    `json:"delivered_to_kafka"` // every run
}

// runChain runs the --chain scenario and prints its report.
func runChain(ctx context.Context, o options, stdout, stderr io.Writer) int {
	rep, err := chain(ctx, o, stderr)
	return finish(rep, err, writeChain, func(rep *chainReport) string {
		for _, r := range rep.Runs {
			if r.Load.Accepted == 0 || r.KafkaErrors != int64(r.Load.SyntheticAccepted) {
				return fmt.Sprintf("the edge accepted %d envelopes, %d reached Kafka's %s", r.Load.Accepted, r.KafkaErrors, errorTopic)
			}
		}
		return ""
	}, o.json, stdout, stderr)
}

func chain(ctx context.Context, o options, progress io.Writer) (*chainReport, error) {
	if o.quiet {
		progress = nil
	}
	work, err := os.MkdirTemp("", "baton-load-chain-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)
	kafkaAddr := o.kafka
	if kafkaAddr == "" {
		c, err := startKfake(ctx, "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer c.Close()
		kafkaAddr = c.ListenAddrs()[0]
	}
	checker, err := newDeliveryChecker(kafkaAddr, o.drainSettle, o.drainTimeout)
	if err != nil {
		return nil, err
	}
	defer checker.Close()
	up, err := startBaton(ctx, o.batonBin, work, "upstream", kafkaRouteYAML(kafkaAddr))
	if err != nil {
		return nil, err
	}
	defer up.Close()
	edgeUp := fmt.Sprintf("urls: [%q]", up.url)
	if o.chainConcurrency > 0 {
		edgeUp += fmt.Sprintf(", concurrency: %d", o.chainConcurrency)
	}
	edge, err := startBaton(ctx, o.batonBin, work, "edge",
		fmt.Sprintf("upstreams: {up: {%s}}\nroutes: {default: {upstream: up}}\n", edgeUp))
	if err != nil {
		return nil, err
	}
	defer edge.Close()
	t, err := parseTarget(edge.url)
	if err != nil {
		return nil, err
	}
	payloads, err := buildPayloads(mixSynthetic, synthSpec{count: o.pool, size: o.size, project: o.project, key: o.key, dsnHost: t.host}, "")
	if err != nil {
		return nil, err
	}
	rep := &chainReport{Edge: chainHop{edge.url, edge.PID()}, Upstream: chainHop{up.url, up.PID()}, Kafka: kafkaAddr,
		Conns: o.connections, Size: o.size, Rate: o.rate}
	spec := func(label string, d time.Duration) loadSpec {
		return loadSpec{label: label, target: t, connections: o.connections, duration: d, requests: o.requests,
			timeout: o.timeout, payloads: payloads, randomKeys: o.keys == keysRandom, rate: o.rate, progress: progress}
	}
	hops := []*batonProc{edge, up}
	if o.warmup > 0 {
		if _, err := runLoad(ctx, spec("chain warmup", o.warmup)); err != nil {
			return nil, err
		}
		if _, err := waitIdle(ctx, hops, o.drainTimeout); err != nil {
			return nil, err
		}
	}
	for i := 1; i <= o.runs && ctx.Err() == nil; i++ {
		before, err := checker.Snapshot(ctx)
		if err != nil {
			return nil, err
		}
		start := time.Now()
		edgeCPU, upCPU := startCPU(edge.PID()), startCPU(up.PID())
		load, err := runLoad(ctx, spec(fmt.Sprintf("chain run %d/%d", i, o.runs), o.duration))
		if err != nil {
			return nil, err
		}
		drain, err := waitIdle(ctx, hops, o.drainTimeout)
		if err != nil {
			return nil, err
		}
		elapsed := time.Since(start)
		after, err := checker.Snapshot(ctx)
		if err != nil {
			return nil, err
		}
		rep.Runs = append(rep.Runs, chainRun{Load: load, DrainSeconds: drain.Seconds(),
			EdgeCPU: edgeCPU.stop(elapsed, load.Accepted), UpstreamCPU: upCPU.stop(elapsed, load.Accepted),
			KafkaErrors: after[errorTopic] - before[errorTopic]})
	}
	rep.Median = chainMedians(rep.Runs)
	return rep, nil
}

// kafkaRouteYAML routes every class to the broker at addr, topics baton.{class}.
func kafkaRouteYAML(addr string) string {
	return fmt.Sprintf("kafka: {clusters: {load: {brokers: [%q]}}}\nroutes: {default: {kafka: load}}\n", addr)
}

// waitIdle polls until no Baton of hops holds a pending record, and returns
// how long that took.
func waitIdle(ctx context.Context, hops []*batonProc, timeout time.Duration) (time.Duration, error) {
	start := time.Now()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		idle := true
		for _, h := range hops {
			s, err := h.Stats()
			if err != nil {
				return 0, err
			}
			idle = idle && s.Pending == 0
		}
		if idle {
			return time.Since(start), nil
		}
		if time.Since(start) > timeout {
			return 0, fmt.Errorf("the Batons still hold pending records after %s (--drain-timeout)", timeout)
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-tick.C:
		}
	}
}

func chainMedians(runs []chainRun) *chainMedian {
	if len(runs) == 0 {
		return nil
	}
	med := func(f func(chainRun) float64) float64 {
		vs := make([]float64, len(runs))
		for i, r := range runs {
			vs[i] = f(r)
		}
		return median(vs)
	}
	m := &chainMedian{DeliveredToKafka: true,
		AcceptedPerSec: med(func(r chainRun) float64 { return r.Load.AcceptedPerSec }),
		P99:            med(func(r chainRun) float64 { return r.Load.Latency.P99 }),
		EdgeMicros:     med(func(r chainRun) float64 { return r.EdgeCPU.MicrosPerRequest }),
		UpstreamMicros: med(func(r chainRun) float64 { return r.UpstreamCPU.MicrosPerRequest }),
		DrainSeconds:   med(func(r chainRun) float64 { return r.DrainSeconds }),
		EndToEndPerSec: med(func(r chainRun) float64 {
			return float64(r.Load.Accepted) / (r.Load.ElapsedSeconds + r.DrainSeconds)
		}),
	}
	for _, r := range runs {
		m.DeliveredToKafka = m.DeliveredToKafka && r.KafkaErrors == int64(r.Load.SyntheticAccepted)
	}
	return m
}

func writeChain(w io.Writer, rep *chainReport, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "baton-load chain  SDK load → edge %s (pid %d) → upstream %s (pid %d) → Kafka %s\n",
		rep.Edge.URL, rep.Edge.PID, rep.Upstream.URL, rep.Upstream.PID, rep.Kafka)
	pace := "closed loop"
	if rep.Rate > 0 {
		pace = fmt.Sprintf("paced at %.0f/s", rep.Rate)
	}
	fmt.Fprintf(&b, "  %d connections (%s), %d-byte envelopes; CPU from load start until both Batons hold nothing, per accepted request\n\n", rep.Conns, pace, rep.Size)
	fmt.Fprintf(&b, "%-5s %8s %7s %7s %8s %9s %9s %9s %10s %s\n", "run", "req/s", "p50 ms", "p99 ms", "drain s", "e2e req/s", "edge µs", "upstr µs", "total µs", "kafka/accepted")
	for i, r := range rep.Runs {
		e2e := float64(r.Load.Accepted) / (r.Load.ElapsedSeconds + r.DrainSeconds)
		fmt.Fprintf(&b, "%-5d %8.0f %7.2f %7.2f %8.2f %9.0f %9.1f %9.1f %10.1f %d/%d\n", i+1, r.Load.AcceptedPerSec, r.Load.Latency.P50, r.Load.Latency.P99,
			r.DrainSeconds, e2e, r.EdgeCPU.MicrosPerRequest, r.UpstreamCPU.MicrosPerRequest,
			r.EdgeCPU.MicrosPerRequest+r.UpstreamCPU.MicrosPerRequest, r.KafkaErrors, r.Load.SyntheticAccepted)
	}
	if m := rep.Median; m != nil && len(rep.Runs) > 1 {
		fmt.Fprintf(&b, "%-5s %8.0f %7s %7.2f %8.2f %9.0f %9.1f %9.1f %10.1f\n", "med", m.AcceptedPerSec, "", m.P99, m.DrainSeconds,
			m.EndToEndPerSec, m.EdgeMicros, m.UpstreamMicros, m.EdgeMicros+m.UpstreamMicros)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
