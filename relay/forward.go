package relay

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/baton-relay/baton/buffer"
	"github.com/baton-relay/baton/envelope"
	"github.com/baton-relay/baton/relay/outcome"
	"github.com/baton-relay/baton/relay/record"
	"github.com/baton-relay/baton/routing"
)

// forwarder drains one buffer stream into its sink. It is the only goroutine
// that reads or acks its stream, so acks arrive in order and the watermark
// is simply the last record of a finished batch.
type forwarder struct {
	r      *Relay
	stream buffer.Stream
	class  envelope.Class
	sink   routing.Sink
	// maxBackoff caps the wait between retries. Default backoffMax.
	maxBackoff time.Duration
	// shard steers every message of the stream (a flush partition of
	// aggregated metrics); it is also the Kafka record key.
	shard string

	recs  []buffer.Record
	msgs  []routing.Message
	envs  record.Slab // decoded envelopes that msgs point into
	errs  []error
	items []int             // items[i] is the number of envelope items msgs[i] carries
	check envelope.Envelope // parses replay records for checkReplay

	// A stream's records mostly repeat the same key, SDK and address:
	// reuse the last string instead of allocating one per message.
	keys, clients, ips lastString
}

// lastString converts bytes to a string, reusing the previous result when
// the bytes are the same.
type lastString struct{ s string }

func (l *lastString) get(b []byte) string {
	if string(b) != l.s { // no allocation: the conversion is only compared
		l.s = string(b)
	}
	return l.s
}

const (
	forwardBatch      = 256
	forwardBatchBytes = 8 << 20
	backoffMin        = 100 * time.Millisecond
	backoffMax        = 60 * time.Second // unless the route's upstream sets max_retry_interval
)

// run forwards until readCtx is done (stop taking new batches) and gives up
// on a batch in flight when sendCtx is done; what was not acked stays in the
// buffer for the next start.
func (f *forwarder) run(readCtx, sendCtx context.Context) {
	for readCtx.Err() == nil { // shutdown: take no new batch, even with a backlog
		var err error
		f.recs, err = f.r.buf.Read(readCtx, f.stream, f.recs[:0], forwardBatch, forwardBatchBytes)
		if err != nil {
			if readCtx.Err() != nil {
				return
			}
			f.r.log.Error("buffer read failed", "class", f.class, "stream", f.stream, "err", err)
			if !sleep(readCtx, time.Second) {
				return
			}
			continue
		}
		if len(f.recs) == 0 {
			continue
		}
		if !f.forward(sendCtx) {
			return
		}
		if err := f.r.buf.Ack(f.stream, f.recs[len(f.recs)-1].Seq); err != nil {
			// The batch was delivered; failing to record that only means
			// it may be delivered again after a restart (at-least-once).
			f.r.log.Error("buffer ack failed", "class", f.class, "err", err)
		}
	}
}

// forward sends the records in f.recs until each is delivered or dropped.
// It returns false when sendCtx ended first.
func (f *forwarder) forward(ctx context.Context) bool {
	f.msgs, f.items = f.msgs[:0], f.items[:0]
	f.envs.Reset()
	for i := range f.recs {
		var rec record.Record
		if err := record.Decode(f.recs[i].Value, &rec, &f.envs); err != nil {
			f.r.outcomes.Drop(f.class, outcome.ReasonCorrupt, 1, int(record.Items(f.recs[i].Value)))
			continue
		}
		if f.class == envelope.ClassReplay && !f.checkReplay(rec.Envelope) {
			f.r.outcomes.Drop(f.class, outcome.ReasonTooLarge, 1, rec.Items)
			continue
		}
		f.msgs = append(f.msgs, routing.Message{
			Class:      rec.Class,
			ProjectID:  rec.ProjectID,
			PublicKey:  f.keys.get(rec.PublicKey),
			Client:     f.clients.get(rec.Client),
			ClientIP:   f.ips.get(rec.ClientIP),
			ReceivedAt: rec.Received(),
			Envelope:   rec.Envelope,
			Shard:      f.shard,
		})
		if f.shard != "" {
			f.msgs[len(f.msgs)-1].Key = []byte(f.shard)
		}
		f.items = append(f.items, rec.Items)
	}

	msgs, items := f.msgs, f.items
	failures := 0 // consecutive attempts that delivered nothing
	for attempt := 1; len(msgs) > 0; attempt++ {
		f.errs = slices.Grow(f.errs[:0], len(msgs))[:len(msgs)]
		clear(f.errs)
		f.sink.Send(ctx, msgs, f.errs)
		if ctx.Err() != nil {
			return false
		}
		var (
			wait     time.Duration
			firstErr error
		)
		n, progress := 0, false
		for i, err := range f.errs {
			switch {
			case err == nil:
				f.r.outcomes.Deliver(f.class, 1, items[i])
				progress = true
			case attempt <= reauthAttempts && f.unauthorized(ctx, err):
				// Kept for a retry after registering again.
				msgs[n], items[n] = msgs[i], items[i]
				n++
			case routing.IsPermanent(err):
				f.r.outcomes.Drop(f.class, outcome.ReasonInvalid, 1, items[i])
				f.r.log.Warn("dropping a record its destination refused", "class", f.class, "project", msgs[i].ProjectID, "err", err)
				progress = true
			default:
				if after, ok := routing.RetryAfter(err); ok {
					wait = max(wait, after)
				}
				if firstErr == nil && !errors.Is(err, routing.ErrHeldBack) {
					firstErr = err
				}
				msgs[n], items[n] = msgs[i], items[i]
				n++
			}
		}
		msgs, items = msgs[:n], items[:n]
		if n == 0 {
			break
		}
		// Back off only while nothing gets through: a retry that moved part
		// of the batch starts the schedule again.
		if progress {
			failures = 0
		}
		if failures == 0 || failures%10 == 0 {
			f.r.log.Warn("delivery failed; retrying", "class", f.class, "attempt", attempt, "waiting", n, "err", firstErr)
		}
		if !sleep(ctx, max(wait, backoff(failures, f.maxBackoff))) {
			return false
		}
		failures++
	}
	return true
}

// checkReplay applies limits.max_replay_message_size and
// max_replay_uncompressed_size to a replay record. They are checked here,
// after the client got its 200, as Relay checks them after accepting: the
// recording is decompressed (bounded, see envelope.RecordingSize) off the
// ingest path, and a replay over either limit is dropped whole (event,
// recording and video) with outcome too_large. A record that does not parse
// is left to the upstream.
func (f *forwarder) checkReplay(env []byte) bool {
	lim := f.r.limits
	lim.AllowInternalItems = true // Baton wrote the record
	if err := f.check.Parse(env, &lim); err != nil {
		return true
	}
	defer f.check.Reset()
	return f.check.CheckReplay(&lim) == nil
}

// reauthAttempts is how often a record refused with 401 is retried after
// registering again before it is dropped like any permanent refusal.
const reauthAttempts = 3

// unauthorized reports whether err is the upstream's 401 to a managed
// Baton, and if so registers again: an upstream that restarted or expired
// the registration refuses the relay until it does, and that must not drop
// data. A real bad key keeps answering 401 and is dropped after
// reauthAttempts.
func (f *forwarder) unauthorized(ctx context.Context, err error) bool {
	var se *routing.StatusError
	if f.r.auth == nil || !errors.As(err, &se) || se.Status != 401 {
		return false
	}
	f.r.auth.registered.Store(false)
	if rerr := f.r.auth.register(ctx); rerr != nil {
		f.r.log.Warn("registering again after a 401 failed", "err", rerr)
	}
	return true
}

// backoff is jittered exponential: [d/2, d) with d doubling from backoffMin
// up to limit.
func backoff(failures int, limit time.Duration) time.Duration {
	d := limit
	if failures < 20 {
		d = min(backoffMin<<failures, limit)
	}
	return d/2 + rand.N(d/2+1)
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
