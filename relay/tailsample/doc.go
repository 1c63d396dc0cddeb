// Package tailsample is Baton's tail-based sampling: the transactions and
// spans of tail-sampled projects wait in the buffer, in a Tail stream per
// class (relay/record), until their trace is complete, and then the whole
// trace is kept or dropped by one decision.
//
//	ingest ──► Tail stream ──► Sampler (reads, indexes by trace id) ──► decided prefix
//	                                                                     │ Peek values
//	errors ──► their class stream at once; Index.Mark(trace id)          ▼
//	                                              buffer.Move: kept → class stream,
//	                                              dropped → outcome sampled, ack
//
// Waiting items stay on disk: a Sampler keeps only an index (Index: one
// entry per trace id; its own queue: seq and trace id per waiting record)
// and reads the values back with buffer.Peek when their trace is decided.
// The buffer acks a stream by prefix, so records leave in stream order: a
// decided record waits for the undecided ones before it (at most
// max_trace_wait). Until it leaves it is pending in the accounting
// identity, like any buffered record; a dropped record is counted dropped
// (outcome sampled) in the same step that acks it.
//
// # The decision
//
// A trace is due once none of its items arrived for DecisionWait, or
// Rules.RootGrace (at most the decision wait) after its root transaction
// (no parent_span_id) arrived, or MaxTraceWait after its first item. It is kept if an error of it was seen
// (Mark, from ingest), an item has an error status (anything but ok,
// cancelled and unknown: Sentry's failure-rate statuses), or an item lasted
// at least DurationThreshold, or an item meets a Match rule (attribute
// equals, transaction glob, release glob); otherwise it is kept when
// Hash(trace id) < KeepRate, which every relay computes alike (Hash: 64-bit FNV-1a of the
// lower-case trace id, over 2^64). Transactions and spans of one trace share
// one Index entry, so they share one decision. The rules of a record are
// its project's (Options.Rules); the first item of a trace fixes the
// trace's KeepRate (and RateRule, which the outcome of a drop names:
// "Sampled:<id>") and DecisionWait, so items that disagree (a DSC changed
// mid-trace) still get one decision; it is remembered for
// MaxTraceWait after its last record left, so late items follow it.
//
// # Bounds
//
// The Index holds at most MaxTraces traces; the item of a new trace beyond
// that is decided at once by the keep rate (counted in Stats.Early). A
// Sampler holds at most 4×MaxTraces waiting records in its queue (32 bytes
// each) and stops reading its stream beyond that until the head is decided.
// Measured (BenchmarkMemoryPerTrace): 168 bytes of heap per waiting
// one-item trace, index entry, its id and queue entry together. A trace
// with MaxTraceItems items is decided at once (Stats.Capped); while the
// records held undecided are over MaxBytes, the Samplers make the oldest
// traces of their queues due at once (Stats.OverBudget).
//
// # Restart
//
// The index is not persisted: the buffer redelivers every record above
// the watermark, the Sampler indexes them again with their received
// times, and the traces are decided as before. Error marks are (Marks):
// each is a record of a stream of its own appended in its error's Append
// (one batch, one fsync), reloaded into the Index by Load before the
// Samplers start, and acked MaxTraceWait + MarkSlack after it was
// appended, tracked by at most 1,024 (seq, time) checkpoints. So are the
// decisions of finished traces (AppendDecision: trace id, keep, reason,
// the sampling rule of the keep rate),
// in the same stream: a Sampler appends one per trace (once per
// MaxTraceWait) in the Move that releases the trace's first records, so
// it is on disk no later than they are gone; Load puts it back
// (Index.Remember) and late items follow it.
package tailsample
