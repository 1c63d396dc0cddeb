// Package forward holds the loops that drain Baton's buffer: a Forwarder
// per stream sends records to their sink, a Releaser per pending stream
// moves envelopes that waited for their project's config, and Metrics
// folds raw metric streams into buckets. Each takes only what it calls:
// the buffer operations it needs (*buffer.Buffer has them all), a
// routing.Sink, a Recorder of outcomes (*outcome.Counters), a Clock and a
// logger; the relay's project rules reach a Releaser as a Policy, its
// managed-mode registration a Forwarder as a Registrar. The relay builds
// the loops from its config (startForwarders) and owns nothing of theirs.
//
// # Goroutines
//
// Every loop is one goroutine and the only reader of its stream, so its
// acks arrive in order. Forwarders and Releasers run readLoop: read a
// batch (at most BatchRecords, BatchBytes), handle it, repeat; a failed
// read is retried after a jittered exponential backoff. Metrics runs one
// readLoop per raw stream plus one flusher goroutine that owns the flush
// timer and every Append and Ack of the stage. All waits go through the
// Clock, so tests see and fire them.
//
// # Life of a batch
//
//	Forwarder:  Read ──► decode ──► Sink.Send ──► per record:
//	                                  nil ─────────────► Deliver
//	                                  Permanent ───────► Drop (invalid)
//	                                  401, managed ────► Reregister(gen), retry (ReauthAttempts)
//	                                  ErrOutage only ──► retry after the upstream's next probe
//	                                  other ───────────► retry after max(largest Retry-After, backoff)
//	            ──► all settled ──► Ack(last seq)
//
//	Releaser:   Read ──► Policy.Decide each record ──► all Wait? read the
//	            records arriving behind the batch into it, until the cache
//	            changes or PendingWait (PendingPatience times)
//	            ──► Move (forwarded to their streams, waiting re-queued at
//	                the back, batch acked: one atomic buffer batch)
//	            ──► Drop outcomes, Left hook
//
//	Metrics:    Read ──► parse, limit, Aggregator.Insert   (reader)
//	            flush due ──► Append flushed buckets ──► Ack raw records
//	                           up to the aggregator's watermark  (flusher)
//	            Aggregator.Full (early buckets and those being written
//	            past metrics.max_bytes) ──► the reader waits for the
//	            flusher's next write before inserting more
//
// Backoff grows only while nothing gets through: an attempt that delivers
// or drops part of the batch restarts it at MinBackoff; it is capped by
// the route's max_retry_interval (DefaultMaxBackoff). Records of a project
// that the upstream held back (routing.ErrHeldBack) stay in order in the
// retry, so nothing overtakes the record that failed.
//
// # Shutdown
//
// Run and Start take two contexts. When readCtx ends a loop drains what its
// stream holds and returns once it is empty; a Releaser keeps waiting for
// configs meanwhile. Everything is settled until sendCtx ends too (the
// relay's drain window); a batch then in flight is abandoned unacked: the
// buffer delivers it again at the next start (at-least-once). Metrics, when readCtx ends, waits for its readers and
// flushes everything the aggregator holds before acking.
package forward
