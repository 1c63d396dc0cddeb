package relay

import (
	"context"
	"net/netip"
	"sync"
	"time"

	"github.com/baton-relay/baton/buffer"
	"github.com/baton-relay/baton/envelope"
	"github.com/baton-relay/baton/relay/outcome"
	"github.com/baton-relay/baton/relay/record"
)

// A releaser drains one pending stream: envelopes accepted before their
// project's config was known. They wait on disk, not in memory, so a flood
// of unknown keys costs buffer space (bounded by the budget), never RAM.
//
// For each batch it asks the cache about every key at once (one fetch
// batch upstream), then moves each record to its forwarding stream, drops
// it with an outcome (unknown key, disabled project, a filter, a quota),
// or, while its config is still pending, keeps it. A batch that is all
// pending waits for the cache to change; after pendingPatience such waits
// its records are re-queued at the back of the stream so that the configs
// that did arrive are not stuck behind them. Moves and the ack of the batch
// are one atomic buffer batch (buffer.Move), so a crash neither loses nor
// duplicates them, and a full buffer can still release.
type releaser struct {
	r      *Relay
	stream buffer.Stream
	class  envelope.Class

	recs    []buffer.Record
	decoded record.Slab // envelopes of rl.recs, for the rules that read them
	entries []buffer.Entry
	drops   []drop
	left    []leaving // records leaving the stream: their key's waiting bytes are freed
	verdict verdict
}

type leaving struct {
	key   []byte // aliases rl.recs
	bytes int64
}

type drop struct {
	why   outcome.Reason
	items int
}

const (
	releaseBatch     = 256
	releaseBatchSize = 8 << 20
	pendingWait      = 2 * time.Second
	pendingPatience  = 5
)

func (rl *releaser) run(readCtx, sendCtx context.Context) {
	for readCtx.Err() == nil {
		var err error
		rl.recs, err = rl.r.buf.Read(readCtx, rl.stream, rl.recs[:0], releaseBatch, releaseBatchSize)
		if err != nil {
			if readCtx.Err() != nil {
				return
			}
			rl.r.log.Error("buffer read failed", "stream", rl.stream, "err", err)
			if !sleep(readCtx, time.Second) {
				return
			}
			continue
		}
		if len(rl.recs) > 0 && !rl.release(readCtx, sendCtx) {
			return
		}
	}
}

// release settles the batch in rl.recs; false when shutting down.
func (rl *releaser) release(readCtx, sendCtx context.Context) bool {
	for waits := 0; ; waits++ {
		changed := rl.r.cacheChanged()
		// One pass asks the cache about every key of the batch, so one
		// upstream request covers them all.
		if waiting := rl.sort(); waiting < len(rl.recs) || waits >= pendingPatience {
			break
		}
		select { // every key still pending: wait for configs to arrive
		case <-changed:
		case <-time.After(pendingWait):
		case <-readCtx.Done():
			return false
		}
	}
	for {
		err := rl.commit(sendCtx)
		if err == nil {
			return true
		}
		rl.r.log.Error("releasing envelopes that waited for their project config failed; retrying", "stream", rl.stream, "err", err)
		if !sleep(sendCtx, time.Second) {
			return false
		}
		rl.sort() // configs may have changed meanwhile
	}
}

// sort decides each record of the batch, filling rl.entries (moves to the
// forwarding streams, and the records still pending re-queued at the back
// of this stream) and rl.drops. It returns how many are still pending.
func (rl *releaser) sort() (waiting int) {
	rl.entries, rl.drops, rl.left = rl.entries[:0], rl.drops[:0], rl.left[:0]
	maxAge := rl.r.cfg.Managed.MaxPendingAge
	now := time.Now()
	rl.decoded.Reset()
	for i := range rl.recs {
		var rec record.Record
		val := rl.recs[i].Value
		if err := record.Decode(val, &rec, &rl.decoded); err != nil {
			rl.drops = append(rl.drops, drop{why: outcome.ReasonCorrupt, items: int(record.Items(val))})
			continue
		}
		adm := rl.r.projects().admit(rec.ProjectID, rec.PublicKey, rec.Origin)
		if adm.why == rejectOverload { // lookups saturated: keep waiting
			adm = admission{pending: true}
		}
		switch {
		case adm.pending && maxAge > 0 && now.Sub(rec.Received()) > maxAge:
			rl.drops = append(rl.drops, drop{why: outcome.ReasonProjectState, items: rec.Items})
			rl.left = append(rl.left, leaving{rec.PublicKey, int64(len(val))})
		case adm.pending:
			waiting++
			rl.entries = append(rl.entries, buffer.Entry{Stream: rl.stream, Value: val})
		case adm.status != 0:
			rl.drops = append(rl.drops, drop{why: admissionReason(adm.why), items: rec.Items})
			rl.left = append(rl.left, leaving{rec.PublicKey, int64(len(val))})
		default:
			rl.left = append(rl.left, leaving{rec.PublicKey, int64(len(val))})
			var items [envelope.NumClasses]int
			items[rec.Class] = rec.Items
			v := &rl.verdict
			rl.r.enforcer.apply(v, adm.state, adm.limiter, rec.PublicKey, &items, envelopeHeader(rec.Envelope), func() netip.Addr { return firstAddr(rec.ClientIP) })
			if v.drop[rec.Class] {
				rl.drops = append(rl.drops, drop{why: v.why[rec.Class], items: rec.Items})
				continue
			}
			s := rl.r.stream(rec.Class, rec.PublicKey)
			rl.entries = append(rl.entries, buffer.Entry{Stream: s.ID(), Value: val})
		}
	}
	return waiting
}

// commit moves the batch's records and acks the batch in one atomic
// buffer batch (exempt from the budget: a full buffer must still be able to
// release what waits in it), then counts the drops.
func (rl *releaser) commit(ctx context.Context) error {
	if err := rl.r.buf.Move(ctx, rl.entries, rl.stream, rl.recs[len(rl.recs)-1].Seq); err != nil {
		return err
	}
	for _, d := range rl.drops {
		rl.r.outcomes.Drop(rl.class, d.why, 1, d.items)
	}
	for _, l := range rl.left {
		rl.r.waiting.sub(l.key, l.bytes)
	}
	return nil
}

// admissionReason maps a refusal at the door to the outcome of a record
// that was refused after it waited.
func admissionReason(why rejectReason) outcome.Reason {
	switch why {
	case rejectDisabled:
		return outcome.ReasonProjectDisabled
	case rejectCORS:
		return outcome.ReasonCORS
	default:
		return outcome.ReasonProjectUnknown
	}
}

// envelopeHeader returns the first line of a serialized envelope.
func envelopeHeader(env []byte) []byte {
	for i, b := range env {
		if b == '\n' {
			return env[:i]
		}
	}
	return env
}

// cacheChanged is closed when the next config fetch completes; nil (never)
// without a cache.
func (r *Relay) cacheChanged() <-chan struct{} {
	if r.cache == nil {
		return nil
	}
	return r.cache.Changed()
}

// waitingBytes counts, per public key, the bytes of envelopes waiting for
// the key's config, so that one key being looked up cannot fill the disk.
// Only keys with waiting envelopes have an entry (at most the cache's
// misses); after a restart the records already waiting are not counted,
// which errs on the side of accepting.
type waitingBytes struct {
	mu  sync.Mutex
	m   map[string]int64
	max int64
}

// add reserves n bytes for key, or reports false when that would pass the
// cap.
func (w *waitingBytes) add(key []byte, n int64) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	cur := w.m[string(key)]
	if cur+n > w.max {
		return false
	}
	if w.m == nil {
		w.m = map[string]int64{}
	}
	w.m[string(key)] = cur + n
	return true
}

// sub releases n bytes of key.
func (w *waitingBytes) sub(key []byte, n int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if cur := w.m[string(key)] - n; cur > 0 {
		w.m[string(key)] = cur
	} else {
		delete(w.m, string(key))
	}
}
