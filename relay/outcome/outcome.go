// Package outcome counts what happens to every record Baton accepted: each
// ends in exactly one outcome, delivered or dropped with a Reason. Counters
// is the one recorder; the forwarding loops see it through the narrow
// interfaces they declare, and /api/relay/stats/ and /metrics read its
// Snapshot.
package outcome

import (
	"sync/atomic"

	"github.com/baton-relay/baton/envelope"
)

// Reason says why a record left Baton without being delivered. Every record
// accepted into the buffer ends in exactly one outcome: delivered, or dropped
// with one of these reasons.
type Reason uint8

const (
	ReasonInvalid         Reason = iota // the destination refused it permanently (4xx, record too large, ...)
	ReasonExpired                       // older than buffer.max_age
	ReasonBufferFull                    // pushed out by a when_full: drop_oldest stream
	ReasonCorrupt                       // the stored record failed its checksum or framing
	ReasonNoRoute                       // its class has no usable destination
	ReasonProjectUnknown                // the upstream does not know its public key
	ReasonProjectDisabled               // its project or key is disabled
	ReasonProjectState                  // its project's config stayed unknown past managed.max_pending_age (or pending upstream past managed.fetch.timeout)
	ReasonCORS                          // its origin is not in the project's allowedDomains
	ReasonFiltered                      // an inbound filter of the project matched
	ReasonSampled                       // dynamic sampling dropped its trace
	ReasonRateLimited                   // a quota of the project is exhausted
	ReasonCardinality                   // a metric over the project's cardinality limit
	ReasonFeatureDisabled               // its project lacks the feature the item needs (session replay)
	ReasonTooLarge                      // over a limit checked after acceptance (the replay limits)
	NumReasons
)

var reasonNames = [NumReasons]string{
	"invalid", "expired", "buffer_full", "corrupt", "no_route",
	"project_unknown", "project_disabled", "project_state", "cors", "filtered", "sampled", "rate_limited", "cardinality_limited", "feature_disabled",
	"too_large",
}

func (r Reason) String() string { return reasonNames[r] }

// Counters counts records and items per class. Counters only grow; the
// accounting identity is, per class, for records and for items:
//
//	recovered + accepted + produced = delivered + dropped + aggregated + pending
//
// where recovered is what the buffer held at start and pending what it holds
// now (see Snapshot). The buffer keeps each stream's pending items (the
// record header's count, through its Weigh option) in its metadata, so both
// are known without reading records, and it reports the items of what it
// drops. Items balance for every class but metric under metrics.aggregate,
// whose drops count statsd lines and buckets rather than envelope items.
//
// The zero value is ready to use and safe for concurrent use.
type Counters struct {
	accepted  [envelope.NumClasses]counter
	delivered [envelope.NumClasses]counter
	// deadLettered counts the delivered records that went to a dead-letter
	// topic instead of their own (a subset of delivered).
	deadLettered [envelope.NumClasses]counter
	dropped      [envelope.NumClasses][NumReasons]counter
	// aggregated counts raw metric records folded into buckets (their
	// items are metric items); produced counts the records of aggregated
	// buckets Baton wrote (their items are buckets).
	aggregated [envelope.NumClasses]counter
	produced   [envelope.NumClasses]counter
}

// Accept counts records the ingest path wrote to the buffer.
func (o *Counters) Accept(c envelope.Class, records, items int) { o.accepted[c].add(records, items) }

// Deliver counts records their sink confirmed.
func (o *Counters) Deliver(c envelope.Class, records, items int) { o.delivered[c].add(records, items) }

// DeadLetter counts delivered records that went to a dead-letter topic.
func (o *Counters) DeadLetter(c envelope.Class, records, items int) {
	o.deadLettered[c].add(records, items)
}

// Drop counts records (or, with records 0, items of records that carry on)
// dropped for why.
func (o *Counters) Drop(c envelope.Class, why Reason, records, items int) {
	o.dropped[c][why].add(records, items)
}

// Aggregate counts raw metric records folded into buckets.
func (o *Counters) Aggregate(c envelope.Class, records, items int) {
	o.aggregated[c].add(records, items)
}

// Produce counts records Baton wrote itself (aggregated buckets).
func (o *Counters) Produce(c envelope.Class, records, items int) { o.produced[c].add(records, items) }

// Dropped is the count of class c's drops for why.
func (o *Counters) Dropped(c envelope.Class, why Reason) Count { return o.dropped[c][why].load() }

type counter struct{ records, items atomic.Int64 }

func (c *counter) add(records, items int) {
	c.records.Add(int64(records))
	c.items.Add(int64(items))
}

// ClassOutcomes is a snapshot of one class's counters.
type ClassOutcomes struct {
	Accepted  Count `json:"accepted"`
	Delivered Count `json:"delivered"`
	// DeadLettered is the part of Delivered that went to a dead-letter topic.
	DeadLettered Count            `json:"dead_lettered,omitzero"`
	Dropped      map[string]Count `json:"dropped,omitempty"`
	// Aggregated are raw metric records folded into buckets; Produced the
	// records of aggregated buckets Baton wrote (items are buckets).
	Aggregated Count `json:"aggregated,omitzero"`
	Produced   Count `json:"produced,omitzero"`
	// Recovered is what the buffer held at start, Pending what it holds now
	// (including records waiting for their project's config).
	Recovered Count `json:"recovered,omitzero"`
	Pending   Count `json:"pending,omitzero"`
}

// Count is a number of buffer records and the envelope items they carry.
type Count struct {
	Records int64 `json:"records"`
	Items   int64 `json:"items"`
}

func (c *counter) load() Count { return Count{c.records.Load(), c.items.Load()} }

// Snapshot returns the counters of every class that has any, with what the
// buffer held at start (recovered) and holds now (pending).
func (o *Counters) Snapshot(recovered, pending *[envelope.NumClasses]Count) map[string]ClassOutcomes {
	m := make(map[string]ClassOutcomes)
	for c := range envelope.NumClasses {
		co := ClassOutcomes{
			Accepted: o.accepted[c].load(), Delivered: o.delivered[c].load(), DeadLettered: o.deadLettered[c].load(),
			Aggregated: o.aggregated[c].load(), Produced: o.produced[c].load(),
			Recovered: recovered[c], Pending: pending[c],
		}
		for r := range NumReasons {
			if d := o.dropped[c][r].load(); d.Records > 0 || d.Items > 0 {
				if co.Dropped == nil {
					co.Dropped = make(map[string]Count)
				}
				co.Dropped[r.String()] = d
			}
		}
		if co.Accepted.Records+co.Delivered.Records+co.Produced.Records+co.Recovered.Records+co.Pending.Records > 0 || co.Dropped != nil {
			m[c.String()] = co
		}
	}
	return m
}

// Total sums per-class counts.
func Total(per *[envelope.NumClasses]Count) (t Count) {
	for _, c := range per {
		t.Records += c.Records
		t.Items += c.Items
	}
	return t
}
