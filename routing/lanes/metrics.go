package lanes

import (
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// latencyWindow is the handler calls per lane the quantiles are taken over:
// a fixed ring, so the metrics' memory does not grow with traffic.
const latencyWindow = 4096

// laneMetrics are one lane's counters. Every record taken ends in exactly
// one of done, escalated and dead_lettered, or is redelivered (shutdown,
// kill, rebalance) and counted again where it is handled next.
type laneMetrics struct {
	consumed, done, escalated, deadLettered atomic.Int64
	late, retried, throttled                atomic.Int64
	produceErrors, fetchErrors, pausedPolls atomic.Int64
	commitErrors                            atomic.Int64
	lag                                     atomic.Int64

	mu   sync.Mutex
	ring []time.Duration
	n    int
}

func newLaneMetrics() *laneMetrics {
	return &laneMetrics{ring: make([]time.Duration, 0, latencyWindow)}
}

func (m *laneMetrics) observe(d time.Duration) {
	m.mu.Lock()
	if len(m.ring) < latencyWindow {
		m.ring = append(m.ring, d)
	} else {
		m.ring[m.n%latencyWindow] = d
	}
	m.n++
	m.mu.Unlock()
}

// quantiles returns the p50 and p99 of the recent handler calls.
func (m *laneMetrics) quantiles() (p50, p99 time.Duration) {
	m.mu.Lock()
	s := slices.Clone(m.ring)
	m.mu.Unlock()
	if len(s) == 0 {
		return 0, 0
	}
	slices.Sort(s)
	return s[len(s)/2], s[min(len(s)-1, len(s)*99/100)]
}

// LaneStats is a snapshot of one lane's metrics.
type LaneStats struct {
	Lane                                    string
	Consumed, Done, Escalated, DeadLettered int64
	Late, Retried, Throttled, ProduceErrors int64
	CommitErrors                            int64
	Lag                                     int64
	Paused                                  bool
	P50, P99                                time.Duration // handler call time, recent calls
}

// Stats returns every lane's metrics, in Options.Lanes order.
func (w *Worker) Stats() []LaneStats {
	out := make([]LaneStats, len(w.lanes))
	for i, l := range w.lanes {
		m := l.m
		p50, p99 := m.quantiles()
		out[i] = LaneStats{Lane: l.o.Topic, Consumed: m.consumed.Load(), Done: m.done.Load(),
			Escalated: m.escalated.Load(), DeadLettered: m.deadLettered.Load(), Late: m.late.Load(),
			Retried: m.retried.Load(), Throttled: m.throttled.Load(), ProduceErrors: m.produceErrors.Load(),
			CommitErrors: m.commitErrors.Load(),
			Lag:          m.lag.Load(), Paused: l.paused.Load(), P50: p50, P99: p99}
	}
	return out
}

// ServeHTTP serves Stats in the Prometheus text format.
func (w *Worker) ServeHTTP(rw http.ResponseWriter, _ *http.Request) {
	rw.Header().Set("Content-Type", "text/plain; version=0.0.4")
	WriteMetrics(rw, w.Stats())
}

// WriteMetrics writes stats in the Prometheus text format.
func WriteMetrics(out io.Writer, stats []LaneStats) {
	counter := func(name, help string, v func(LaneStats) int64) {
		fmt.Fprintf(out, "# HELP baton_lane_%s %s\n# TYPE baton_lane_%s counter\n", name, help, name)
		for _, s := range stats {
			fmt.Fprintf(out, "baton_lane_%s{lane=%q} %d\n", name, s.Lane, v(s))
		}
	}
	counter("consumed_total", "Records taken from the lane's topic.", func(s LaneStats) int64 { return s.Consumed })
	counter("done_total", "Records the handler finished.", func(s LaneStats) int64 { return s.Done })
	counter("escalated_total", "Records moved to the next lane.", func(s LaneStats) int64 { return s.Escalated })
	counter("dead_lettered_total", "Records moved to the dead-letter topic.", func(s LaneStats) int64 { return s.DeadLettered })
	counter("deadline_exceeded_total", "Handler calls that missed the lane's deadline.", func(s LaneStats) int64 { return s.Late })
	counter("retried_total", "Handler calls that failed and were retried or escalated.", func(s LaneStats) int64 { return s.Retried })
	counter("throttled_total", "Handler answers 429/503 that paused the lane.", func(s LaneStats) int64 { return s.Throttled })
	counter("produce_errors_total", "Failed hand-offs to the next lane or dead letter, retried.", func(s LaneStats) int64 { return s.ProduceErrors })
	counter("commit_errors_total", "Offset commits on revocation that failed (the new owner redoes more).", func(s LaneStats) int64 { return s.CommitErrors })
	fmt.Fprintf(out, "# HELP baton_lane_lag Records of the lane's topic not yet committed by its group.\n# TYPE baton_lane_lag gauge\n")
	for _, s := range stats {
		fmt.Fprintf(out, "baton_lane_lag{lane=%q} %d\n", s.Lane, s.Lag)
	}
	fmt.Fprintf(out, "# HELP baton_lane_paused 1 while the lane waits for its next lane's lag to fall.\n# TYPE baton_lane_paused gauge\n")
	for _, s := range stats {
		fmt.Fprintf(out, "baton_lane_paused{lane=%q} %d\n", s.Lane, map[bool]int{true: 1}[s.Paused])
	}
	fmt.Fprintf(out, "# HELP baton_lane_handler_seconds Handler call time over the lane's recent calls.\n# TYPE baton_lane_handler_seconds summary\n")
	for _, s := range stats {
		fmt.Fprintf(out, "baton_lane_handler_seconds{lane=%q,quantile=\"0.5\"} %g\n", s.Lane, s.P50.Seconds())
		fmt.Fprintf(out, "baton_lane_handler_seconds{lane=%q,quantile=\"0.99\"} %g\n", s.Lane, s.P99.Seconds())
	}
}
