package relay

import (
	"bytes"
	"net/netip"
	"sync"

	"github.com/baton-relay/baton/envelope"
	"github.com/baton-relay/baton/relay/forward"
	"github.com/baton-relay/baton/relay/outcome"
	"github.com/baton-relay/baton/relay/policy"
	"github.com/baton-relay/baton/relay/record"
)

// releasePolicy is the forward.Policy of a releaser: the door's project
// admission and enforcement, applied to an envelope that waited for its
// project's config. One per releaser: it keeps scratch.
type releasePolicy struct {
	r       *Relay
	verdict policy.Verdict
}

func (p *releasePolicy) Decide(rec *record.Record) forward.Verdict {
	r := p.r
	adm := r.projects().Admit(rec.ProjectID, rec.PublicKey, rec.Origin)
	switch {
	case adm.Pending && r.cache != nil && r.cache.GaveUp(rec.PublicKey):
		// The upstream kept answering pending past managed.fetch.timeout.
		return forward.Verdict{Action: forward.Drop, Reason: outcome.ReasonProjectState}
	case adm.Refusal == policy.Overload, adm.Pending: // lookups saturated: keep waiting
		return forward.Verdict{Action: forward.Wait}
	case adm.Refusal != policy.Admitted:
		return forward.Verdict{Action: forward.Drop, Reason: adm.Refusal.Reason()}
	}
	var items [envelope.NumClasses]int
	items[rec.Class] = rec.Items
	v := &p.verdict
	// As at ingest (Door, Filter, process, Limit): what filters or
	// processing drops is judged before quotas, so it is not charged.
	addr := func() netip.Addr { return firstAddr(rec.ClientIP) }
	more := r.enforcer.Door(v, &adm, rec.PublicKey, &items, envelopeHeader(rec.Envelope), addr)
	if more {
		r.enforcer.FilterItem(v, &adm, &items, func() (envelope.ItemType, []byte) { return policy.EventIn(rec.Envelope) }, addr)
	}
	if v.Drop[rec.Class] {
		return forward.Verdict{Action: forward.Drop, Reason: v.Why[rec.Class], Code: v.Code(rec.Class)}
	}
	value, invalid, err := r.release(rec, adm.State)
	if why := groupingReason(err); why != "" {
		r.enforcer.FilterClass(v, rec.Class, why)
		return forward.Verdict{Action: forward.Drop, Reason: v.Why[rec.Class], Code: v.Code(rec.Class)}
	}
	if invalid != "" {
		return forward.Verdict{Action: forward.Drop, Reason: outcome.ReasonInvalid, Code: invalid}
	}
	if more {
		r.enforcer.Limit(v, &adm, rec.PublicKey, &items, envelopeHeader(rec.Envelope))
		if v.Drop[rec.Class] {
			return forward.Verdict{Action: forward.Drop, Reason: v.Why[rec.Class], Code: v.Code(rec.Class)}
		}
	}
	if err != nil { // errSinkTooLarge: judged after quotas, as at ingest
		return forward.Verdict{Action: forward.Drop, Reason: outcome.ReasonTooLarge}
	}
	r.markTailReleased(rec, adm.State)
	return forward.Verdict{Action: forward.Forward, Stream: r.tailStream(rec.Class, rec.ProjectID, adm.State, r.stream(rec.Class, rec.PublicKey)), Value: value}
}

// envelopeHeader returns the first line of a serialized envelope.
func envelopeHeader(env []byte) []byte {
	hdr, _, _ := bytes.Cut(env, []byte{'\n'})
	return hdr
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
