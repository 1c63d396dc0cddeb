package relay

import (
	"context"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/baton-relay/baton/buffer"
	"github.com/baton-relay/baton/envelope"
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

	recs []buffer.Record
	msgs []routing.Message
	errs []error
	idx  []int // idx[i] is the record behind msgs[i]
}

const (
	forwardBatch      = 256
	forwardBatchBytes = 8 << 20
	backoffMin        = 100 * time.Millisecond
	backoffMax        = 30 * time.Second
)

// run forwards until readCtx is done (stop taking new batches) and gives up
// on a batch in flight when sendCtx is done; what was not acked stays in the
// buffer for the next start.
func (f *forwarder) run(readCtx, sendCtx context.Context) {
	for {
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
	f.msgs, f.idx = f.msgs[:0], f.idx[:0]
	for i := range f.recs {
		var rec record
		if err := decodeRecord(f.recs[i].Value, &rec); err != nil {
			f.r.outcomes.dropped[f.class][ReasonCorrupt].add(1, 0)
			continue
		}
		f.msgs = append(f.msgs, routing.Message{
			Class:      rec.Class,
			ProjectID:  rec.ProjectID,
			PublicKey:  string(rec.PublicKey),
			Client:     string(rec.Client),
			ClientIP:   string(rec.ClientIP),
			ReceivedAt: rec.receivedAt(),
			Envelope:   rec.Envelope,
		})
		f.idx = append(f.idx, rec.Items)
	}

	msgs, items := f.msgs, f.idx
	for attempt := 0; len(msgs) > 0; attempt++ {
		f.errs = slices.Grow(f.errs[:0], len(msgs))[:len(msgs)]
		clear(f.errs)
		f.sink.Send(ctx, msgs, f.errs)
		if ctx.Err() != nil {
			return false
		}
		var wait time.Duration
		n := 0
		for i, err := range f.errs {
			switch {
			case err == nil:
				f.r.outcomes.delivered[f.class].add(1, items[i])
			case routing.IsPermanent(err):
				f.r.outcomes.dropped[f.class][ReasonInvalid].add(1, items[i])
				f.r.log.Warn("dropping record refused by its destination", "class", f.class, "project", msgs[i].ProjectID, "err", err)
			default:
				if after, ok := routing.RetryAfter(err); ok {
					wait = max(wait, after)
				}
				if attempt == 0 || attempt%10 == 0 {
					f.r.log.Warn("delivery failed, will retry", "class", f.class, "attempt", attempt+1, "err", err)
				}
				msgs[n], items[n] = msgs[i], items[i]
				n++
			}
		}
		msgs, items = msgs[:n], items[:n]
		if n == 0 {
			break
		}
		if !sleep(ctx, max(wait, backoff(attempt))) {
			return false
		}
	}
	return true
}

// backoff is jittered exponential: [d/2, d) with d doubling from backoffMin
// up to backoffMax.
func backoff(attempt int) time.Duration {
	d := backoffMax
	if attempt < 20 {
		d = min(backoffMin<<attempt, backoffMax)
	}
	return d/2 + rand.N(d/2)
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
