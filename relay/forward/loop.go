package forward

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/baton-relay/baton/buffer"
	"github.com/baton-relay/baton/envelope"
	"github.com/baton-relay/baton/relay/outcome"
	"github.com/baton-relay/baton/relay/record"
)

// Reader is the buffer operation every loop uses: the next batch of a
// stream. *buffer.Buffer implements it and the narrower interfaces below.
type Reader interface {
	Read(ctx context.Context, s buffer.Stream, dst []buffer.Record, maxRecords, maxBytes int) ([]buffer.Record, error)
}

// Recorder counts what happens to records; *outcome.Counters implements it.
type Recorder interface {
	Deliver(c envelope.Class, records, items int)
	Drop(c envelope.Class, why outcome.Reason, records, items int)
	Aggregate(c envelope.Class, records, items int)
	Produce(c envelope.Class, records, items int)
}

// Reporter reports a dropped record upstream (outcomes.emit_outcomes),
// with Relay's reason string code; the record is valid only during the
// call.
type Reporter interface {
	Report(rec *record.Record, why outcome.Reason, code string)
}

// Clock is the time the loops read and wait on. System is the real one;
// tests drive a fake to see every wait the loops ask for.
type Clock interface {
	Now() time.Time
	// After delivers once d has passed, like time.After.
	After(d time.Duration) <-chan time.Time
}

// System is the wall clock.
var System Clock = systemClock{}

type systemClock struct{}

func (systemClock) Now() time.Time                         { return time.Now() }
func (systemClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Batch limits of one read, for every loop. BatchBytes bounds the memory
// of a batch; BatchRecords only bounds how many records share one send.
// A send waits for its acks (a Kafka produce round trip, an HTTP answer),
// so a backlog drains at about BatchRecords per round trip: with 256 a
// strict Baton under closed-loop load fell behind its own intake, and
// records outlived the memtable, costing a flush and compaction each
// (BENCHMARKS.md, issue 21, "Forwarder batch"). A reader that keeps up
// reads what is there, fewer, so the larger limit adds no latency.
const (
	BatchRecords = 1024
	BatchBytes   = 8 << 20
)

// Backoff defaults.
const (
	// MinBackoff is the first wait after a failed delivery.
	MinBackoff = 100 * time.Millisecond
	// DefaultMaxBackoff caps the waits of a forwarder unless the route's
	// upstream sets max_retry_interval (config/default.yaml agrees).
	DefaultMaxBackoff = 60 * time.Second
	// retryWait is the first wait after a failed buffer operation (read,
	// append, move): a disk problem, rarely over in less than a second.
	retryWait    = time.Second
	maxRetryWait = 30 * time.Second
)

// backoff is jittered exponential: [d/2, d) with d doubling from floor up
// to limit after each of failures.
func backoff(failures int, floor, limit time.Duration) time.Duration {
	d := limit
	if failures < 20 {
		d = min(floor<<failures, limit)
	}
	return d/2 + rand.N(d/2+1)
}

// sleep waits d on clock; false when ctx ended first.
func sleep(ctx context.Context, clock Clock, d time.Duration) bool {
	select {
	case <-clock.After(d):
		return true
	case <-ctx.Done():
		return false
	}
}

// readLoop is the loop the forwarder, the releaser and the metrics readers
// share: read a batch of s, hand it to handle, again until handle returns
// false or ctx is done and s is empty: on shutdown the backlog is drained
// for as long as handle can settle it (its sendCtx, the drain window). A
// failed read is logged and retried after a backoff. The batch is reused:
// handle must not keep it.
func readLoop(ctx context.Context, b Reader, s buffer.Stream, clock Clock, log *slog.Logger, handle func([]buffer.Record) bool) {
	var (
		recs     []buffer.Record
		failures int
	)
	for {
		var err error // with ctx done, Read still returns what is there
		recs, err = b.Read(ctx, s, recs[:0], BatchRecords, BatchBytes)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			log.Error("buffer read failed", "stream", s, "err", err)
			if !sleep(ctx, clock, backoff(failures, retryWait, maxRetryWait)) {
				return
			}
			failures++
			continue
		}
		failures = 0
		if len(recs) > 0 && !handle(recs) {
			return
		}
	}
}

// retry calls op until it succeeds, waiting a backoff between attempts;
// false when ctx ended first.
func retry(ctx context.Context, clock Clock, log *slog.Logger, what string, op func() error) bool {
	for failures := 0; ; failures++ {
		err := op()
		if err == nil {
			return true
		}
		log.Error(what+" failed; retrying", "err", err)
		if !sleep(ctx, clock, backoff(failures, retryWait, maxRetryWait)) {
			return false
		}
	}
}
