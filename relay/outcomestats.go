package relay

import (
	"github.com/baton-relay/baton/buffer"
	"github.com/baton-relay/baton/envelope"
	"github.com/baton-relay/baton/relay/forward"
	"github.com/baton-relay/baton/relay/outcome"
	"github.com/baton-relay/baton/relay/record"
)

// Raw outcome records share the client_report class with SDK client
// reports, and are counted there; r.rawCounts counts them once more, on
// their own, for the "outcomes" section of /api/relay/stats/: produced
// (Baton's drops), accepted (downstream relays'), delivered, dropped by
// the buffer, recovered and pending.

// tee is the Recorder of the outcomes stream's forwarder: both counters.
type tee struct{ all, raw forward.Recorder }

func (t tee) Deliver(c envelope.Class, records, items int) {
	t.all.Deliver(c, records, items)
	t.raw.Deliver(c, records, items)
}

func (t tee) Drop(c envelope.Class, why outcome.Reason, records, items int) {
	t.all.Drop(c, why, records, items)
	t.raw.Drop(c, why, records, items)
}

func (t tee) Aggregate(c envelope.Class, records, items int) {
	t.all.Aggregate(c, records, items)
	t.raw.Aggregate(c, records, items)
}

func (t tee) Produce(c envelope.Class, records, items int) {
	t.all.Produce(c, records, items)
	t.raw.Produce(c, records, items)
}

// outcomesCount is what the outcomes stream holds of streams.
func outcomesCount(streams []buffer.StreamStats) (n outcome.Count) {
	for _, s := range streams {
		if record.Stream(s.Stream).IsOutcomes() {
			n.Records += s.Pending
			n.Items += s.PendingWeight
		}
	}
	return n
}

// outcomesStats is the outcomes stream's counters, nil when it never held
// anything.
func (r *Relay) outcomesStats(streams []buffer.StreamStats) *outcome.ClassOutcomes {
	var recovered, pending [envelope.NumClasses]outcome.Count
	recovered[envelope.ClassClientReport] = r.rawRecovered
	pending[envelope.ClassClientReport] = outcomesCount(streams)
	co, ok := r.rawCounts.Snapshot(&recovered, &pending)[envelope.ClassClientReport.String()]
	if !ok {
		return nil
	}
	return &co
}
