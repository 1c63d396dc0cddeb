package forward

import (
	"context"
	"log/slog"
	"time"

	"github.com/baton-relay/baton/buffer"
	"github.com/baton-relay/baton/envelope"
	"github.com/baton-relay/baton/relay/outcome"
	"github.com/baton-relay/baton/relay/record"
)

// ReleaseBuffer is what a Releaser does with the buffer.
type ReleaseBuffer interface {
	Reader
	Move(ctx context.Context, entries []buffer.Entry, from buffer.Stream, upTo buffer.Seq) error
}

// Action is what a Policy decided for a waiting record.
type Action uint8

const (
	// Wait: the record's config is still unknown; it keeps waiting.
	Wait Action = iota
	// Forward: move the record to Verdict.Stream.
	Forward
	// Drop: count the record as dropped with Verdict.Reason.
	Drop
)

// Verdict is a Policy's decision about one record.
type Verdict struct {
	Action Action
	Stream record.Stream // Forward: where the record goes
	// Value, for Forward, is the record to store there instead of the one
	// that waited (its items processed now that the config is known); nil
	// moves the record as it is. It must keep its class and item count.
	Value  []byte
	Reason outcome.Reason // Drop: why
	Code   string         // Drop: Relay's reason string (filter name, quota reason, ...)
}

// Policy decides what becomes of a record that waited for its project's
// config: the relay's project admission and enforcement. A Releaser calls
// it from its own goroutine only.
type Policy interface {
	Decide(rec *record.Record) Verdict
}

// Releaser defaults.
const (
	// PendingWait is how long a batch that is all waiting waits for the
	// config cache to change before it asks again.
	PendingWait = time.Second // the project cache's first retry
	// PendingPatience is how many such waits pass before the waiting
	// records are re-queued at the back of their stream.
	PendingPatience = 5
)

// ReleaserOptions configures a Releaser.
type ReleaserOptions struct {
	Buffer ReleaseBuffer
	Stream buffer.Stream // a pending stream
	Policy Policy
	// Changed returns a channel closed when the config cache next changes.
	// Default nil: batches wait PendingWait.
	Changed func() <-chan struct{}
	// Left is called, once they are committed, for the records that left
	// the stream (moved or dropped, not re-queued) with their public key
	// (valid only during the call) and stored size. Default nil.
	Left func(key []byte, bytes int64)
	// MaxPendingAge drops a record still waiting this long after it was
	// received (outcome project_state). Default 0: no limit.
	MaxPendingAge time.Duration
	Outcomes      Recorder
	// Reporter reports the dropped records upstream. Default nil: none.
	Reporter Reporter
	// Clock default System; Logger default slog.Default().
	Clock  Clock
	Logger *slog.Logger
}

// A Releaser drains one pending stream: envelopes accepted before their
// project's config was known. They wait on disk, not in memory, so a flood
// of unknown keys costs buffer space (bounded by the budget), never RAM.
//
// For each batch it asks the Policy about every record at once (one fetch
// batch upstream), then moves each record to its forwarding stream, drops
// it with an outcome, or, while its config is still pending, keeps it. A
// batch that is all pending waits for the cache to change; after
// PendingPatience such waits its records are re-queued at the back of the
// stream so that the configs that did arrive are not stuck behind them.
// Moves and the ack of the batch are one atomic buffer batch (buffer.Move),
// so a crash neither loses nor duplicates them, and a full buffer can still
// release.
type Releaser struct {
	o     ReleaserOptions
	class envelope.Class

	recs    []buffer.Record // the batch being released
	decoded record.Slab     // envelopes of recs, for the policy
	entries []buffer.Entry
	drops   []drop
	left    []leaving // records leaving the stream
}

type leaving struct {
	key   []byte // aliases recs
	bytes int64
}

type drop struct {
	why   outcome.Reason
	items int
	code  string
	rec   record.Record // its slices alias recs and decoded until the next sort
}

// NewReleaser returns a Releaser of o.Stream; Run starts it.
func NewReleaser(o ReleaserOptions) *Releaser {
	if o.Clock == nil {
		o.Clock = System
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Changed == nil {
		o.Changed = func() <-chan struct{} { return nil }
	}
	return &Releaser{o: o, class: record.Stream(o.Stream).Class()}
}

// Run releases until readCtx is done; a batch being committed is given up
// when sendCtx is done.
func (rl *Releaser) Run(readCtx, sendCtx context.Context) {
	readLoop(readCtx, rl.o.Buffer, rl.o.Stream, rl.o.Clock, rl.o.Logger, func(recs []buffer.Record) bool {
		rl.recs = recs
		return rl.release(sendCtx)
	})
}

// release settles the batch in rl.recs; false when shutting down. It waits
// for configs on sendCtx, not readCtx: on shutdown, envelopes whose config
// arrives within the drain window are still released.
func (rl *Releaser) release(sendCtx context.Context) bool {
	for waits := 0; ; waits++ {
		changed := rl.o.Changed()
		// One pass asks the policy about every key of the batch, so one
		// upstream request covers them all.
		if waiting := rl.sort(); waiting < len(rl.recs) || waits >= PendingPatience {
			break
		}
		if !rl.await(sendCtx, changed) {
			return false
		}
	}
	sorted := true
	return retry(sendCtx, rl.o.Clock, rl.o.Logger, "releasing envelopes that waited for their project config", func() error {
		if !sorted {
			rl.sort() // configs may have changed meanwhile
		}
		sorted = false
		return rl.commit(sendCtx)
	})
}

// await waits, while every record of the batch is pending, until the cache
// changes, PendingWait passes, or records arrive behind the batch: those
// join it (up to BatchRecords), so an envelope whose config comes is
// released at once instead of after the stuck ones' patience. False when
// ctx ended.
func (rl *Releaser) await(ctx context.Context, changed <-chan struct{}) bool {
	timer := rl.o.Clock.After(PendingWait)
	room := BatchRecords - len(rl.recs)
	if room <= 0 {
		select {
		case <-changed:
		case <-timer:
		case <-ctx.Done():
			return false
		}
		return true
	}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-changed:
		case <-timer:
		case <-rctx.Done():
		}
		cancel()
	}()
	// A fresh slice: the batch keeps these records' values.
	more, err := rl.o.Buffer.Read(rctx, rl.o.Stream, nil, room, BatchBytes)
	if len(more) > 0 {
		rl.recs = append(rl.recs[:len(rl.recs):len(rl.recs)], more...)
	}
	if err != nil && len(more) == 0 && ctx.Err() == nil && rctx.Err() == nil {
		rl.o.Logger.Error("buffer read failed", "stream", rl.o.Stream, "err", err)
	}
	return ctx.Err() == nil
}

// sort decides each record of the batch, filling rl.entries (moves to the
// forwarding streams, and the records still pending re-queued at the back
// of this stream) and rl.drops. It returns how many are still pending.
func (rl *Releaser) sort() (waiting int) {
	rl.entries, rl.drops, rl.left = rl.entries[:0], rl.drops[:0], rl.left[:0]
	now := rl.o.Clock.Now()
	rl.decoded.Reset()
	for i := range rl.recs {
		var rec record.Record
		val := rl.recs[i].Value
		if err := record.Decode(val, &rec, &rl.decoded); err != nil {
			rl.drops = append(rl.drops, drop{why: outcome.ReasonCorrupt, items: int(record.Items(val))})
			continue
		}
		v := rl.o.Policy.Decide(&rec)
		if v.Action == Wait && rl.o.MaxPendingAge > 0 && now.Sub(rec.Received()) > rl.o.MaxPendingAge {
			v = Verdict{Action: Drop, Reason: outcome.ReasonProjectState}
		}
		switch v.Action {
		case Wait:
			waiting++
			rl.entries = append(rl.entries, buffer.Entry{Stream: rl.o.Stream, Value: val})
			continue
		case Drop:
			rl.drops = append(rl.drops, drop{why: v.Reason, items: rec.Items, code: v.Code, rec: rec})
		default:
			moved := val
			if v.Value != nil {
				moved = v.Value
			}
			rl.entries = append(rl.entries, buffer.Entry{Stream: v.Stream.ID(), Value: moved})
		}
		rl.left = append(rl.left, leaving{rec.PublicKey, int64(len(val))})
	}
	return waiting
}

// commit moves the batch's records and acks the batch in one atomic
// buffer batch (exempt from the budget: a full buffer must still be able to
// release what waits in it), then counts the drops.
func (rl *Releaser) commit(ctx context.Context) error {
	if err := rl.o.Buffer.Move(ctx, rl.entries, rl.o.Stream, rl.recs[len(rl.recs)-1].Seq); err != nil {
		return err
	}
	for i := range rl.drops {
		d := &rl.drops[i]
		rl.o.Outcomes.Drop(rl.class, d.why, 1, d.items)
		if rl.o.Reporter != nil && d.rec.Envelope != nil {
			rl.o.Reporter.Report(&d.rec, d.why, d.code)
		}
	}
	if rl.o.Left != nil {
		for _, l := range rl.left {
			rl.o.Left(l.key, l.bytes)
		}
	}
	return nil
}
