package relay

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/baton-relay/baton/config"
	"github.com/baton-relay/baton/envelope"
	"github.com/baton-relay/baton/relay/record"
)

// drainProgressEvery is how often Close logs what is left to drain: often
// enough that a shutdown waiting on a dead destination is never silent,
// rarely enough to stay one line per second whatever the traffic.
const drainProgressEvery = time.Second

// Abandon makes a Close in progress, or the next one, stop draining at
// once: batches in flight are given up and whatever is unsent stays in the
// buffer for the next start (at-least-once). It is the second Ctrl-C. Safe
// to call from any goroutine, more than once.
func (r *Relay) Abandon() { r.abandonOnce.Do(func() { close(r.abandoned) }) }

// drainWindow is the context of Close's drain: done at the deadline or
// when Abandon is called.
func (r *Relay) drainWindow(deadline time.Time) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	go func() {
		select {
		case <-r.abandoned:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

// wasAbandoned reports whether Abandon has been called.
func (r *Relay) wasAbandoned() bool {
	select {
	case <-r.abandoned:
		return true
	default:
		return false
	}
}

// logDrainProgress logs, every drainProgressEvery until ctx is done, the
// records left per destination and the time left until deadline. One line
// per tick, from the buffer's per-stream counters: nothing per item.
func (r *Relay) logDrainProgress(ctx context.Context, deadline time.Time) {
	t := time.NewTicker(drainProgressEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		left, total := r.leftPerDestination()
		if total == 0 {
			continue
		}
		r.log.Info("draining", "records_left", total, "per_destination", left,
			"time_left", max(time.Until(deadline), 0).Round(100*time.Millisecond))
	}
}

// leftPerDestination returns the records still pending in the buffer as
// "dest=n, dest=n" in name order, and their total.
func (r *Relay) leftPerDestination() (string, int64) {
	per := map[string]int64{}
	var total int64
	for _, st := range r.buf.Stats().Streams {
		if st.Pending == 0 || record.Stream(st.Stream).IsMarks() {
			continue
		}
		per[r.destinationOf(record.Stream(st.Stream))] += st.Pending
		total += st.Pending
	}
	parts := make([]string, 0, len(per))
	for _, d := range slices.Sorted(maps.Keys(per)) {
		parts = append(parts, fmt.Sprintf("%s=%d", d, per[d]))
	}
	return strings.Join(parts, ", "), total
}

// destinationOf names where a stream's records go: "upstream NAME",
// "kafka CLUSTER", or "waiting for config" for pending streams.
func (r *Relay) destinationOf(s record.Stream) string {
	if s.IsPending() {
		return "waiting for config"
	}
	if s.IsTail() {
		return "waiting for its trace's tail-sampling decision"
	}
	c := s.Class()
	if s.IsOutcomes() {
		c = envelope.ClassClientReport // raw outcomes go where client reports go
	}
	if c >= envelope.NumClasses {
		return "unknown"
	}
	switch d := r.cfg.RouteFor(c).Dest.(type) {
	case config.UpstreamDest:
		return "upstream " + d.Upstream
	case config.KafkaDest:
		return "kafka " + d.Kafka
	}
	return "unknown"
}
