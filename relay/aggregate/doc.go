// Package aggregate merges metric buckets into time windows before they are
// sent on (the Aggregator) and bounds how many distinct metric identities a
// project may create (the Limiter). It is a pure library: no goroutines, no
// I/O; the relay owns the loop that feeds and flushes it.
//
// # Aggregator
//
// A bucket is aggregated under the key (Scope, window timestamp, bucket key),
// where the window timestamp is the bucket's timestamp aligned down to
// Options.BucketInterval and the bucket key is its type, name (MRI) and sorted
// tags. Buckets with equal keys are merged with envelope's (*Bucket).Merge:
// counters add, distributions append, sets take the union, gauges keep the
// last value, the extremes, the sum and the count. Merged buckets carry
// Width = BucketInterval in seconds.
//
// Buckets live in slots, one per (scope, window). A slot is due at
//
//	windowEnd + InitialDelay + jitter,  jitter = hash(scope) mod BucketInterval
//
// so one project's buckets leave together while projects are spread over the
// interval (Relay's "project" flush batching). A slot created after that time
// (backdated data, or data for a window already flushed) is due one
// BucketInterval after its creation instead, so late buckets of a window are
// batched rather than flushed one by one (Relay's debounce delay). The owner
// loop arms a timer with NextDue and calls Flush, which removes every due
// bucket and returns them grouped into one Batch per (scope, partition),
// where partition = KeyHash mod Options.Partitions steers the batch to a
// next-tier relay (X-Sentry-Relay-Shard).
//
// # Memory budget
//
// Every held bucket is charged an estimate of its memory (key and tag
// strings, value slices, struct and map overhead), reported by Stats.Bytes.
// When an insert takes the total over Options.MaxBytes, the oldest buckets
// (of the slot due first, in creation order) are moved out of their slot
// and made due at once, until the rest fits: the next Flush returns them.
// Nothing is ever dropped: a bucket is either merged, rejected by Insert (and
// counted), or returned by Flush exactly once. A later bucket with the key of
// one that was moved out starts a new bucket.
//
// Options.MaxScopeBytes (default 0: no limit) adds a budget per scope
// (project key), charged with its buckets and open slots, counted in the
// scope's state as the total is. When an insert takes a scope over it, that
// scope's own oldest buckets are made due at once in the same way, until
// the scope fits again, so a project flooding new keys flushes its own
// buckets early instead of pushing out other projects'. The per-scope check
// runs before the total one. Stats.FlushedEarly counts buckets forced out
// by MaxBytes, Stats.FlushedEarlyScope those forced out by MaxScopeBytes.
//
// Buckets made due early leave their scope's budget but not MaxBytes: they
// count until Flush returns them and then, as Stats.Writing, until the
// caller reports them written (Written). Shedding cannot bring that total
// down, only writing can, so Full reports when it is past MaxBytes and
// the caller must stop inserting until it is not (the relay's metrics
// readers wait, leaving raw records in the buffer). The held total thus
// stays under MaxBytes plus what one Insert adds, however fast new keys
// arrive; one scope may hold up to MaxBytes while its early buckets wait.
//
// # Durability contract
//
// The relay reads raw metric records from a durable buffer and inserts the
// buckets of each with its Source (buffer stream and sequence number). A
// record may be deleted (acked) only when no bucket it contributed to is
// still held here, and after the caller has written every batch Flush
// returned durably. Watermark(stream) returns the highest seq S such that no
// record of the stream with seq ≤ S contributed to a bucket still held; the
// caller acks up to S once the batches returned by the Flush calls before
// it are safe.
//
// Bookkeeping: each held bucket remembers, per stream, the smallest seq that
// contributed to it since it was created. Each stream keeps an ordered queue
// of those seqs with the number of live buckets that remember each one. When
// a bucket is flushed its counts drop, and zero counts are popped from the
// front, so the watermark is the front seq minus one (O(1) amortized); with
// nothing held it is the last inserted seq. Sources of a stream are expected
// in non-decreasing seq order, as a buffer reader produces them; a smaller
// seq (say after a rewind) is still accounted conservatively, but the
// records it re-inserts are merged a second time, so never rewind a stream
// that feeds the aggregator.
//
// # Cardinality limiter
//
// Limiter admits a bucket identity (KeyHash) for a (project, namespace) scope
// if it was already admitted in the current window or if fewer than the
// limit were; otherwise the caller drops the bucket with outcome
// cardinality_limited. Windows are fixed and aligned to multiples of
// LimitOptions.Window since the Unix epoch: at a boundary every scope starts
// empty, so a burst spanning the boundary can admit up to twice the limit
// (Relay's Redis limiter used sliding granules; fixed windows keep memory at
// one exact set per scope). Only admitted hashes are stored, in an
// open-addressing table of 8-byte slots, so a scope costs at most
// 8 × nextPow2(4/3 × limit) bytes, and at most LimitOptions.MaxScopes scopes
// are kept (least recently used evicted, which forgets their admissions).
//
// With LimitOptions.Store (relay/fleet's Redis store, when redis: is
// configured) the series are counted for a whole fleet in Relay's sliding
// window of granules: a configured limit's windowSeconds and
// granularitySeconds (ProjectLimit), else Window in one granule.
// AdmitBatch decides a batch in one AdmitSeries call made without the
// Limiter's lock. Each scope then also caches the series the store
// admitted in the current granule (they stay admitted until it ends, so
// a known series costs no round trip; at most the limit per scope, 8-byte
// slots as above), and every admitted series feeds the local set too, so
// that when the store fails (error, timeout, Redis down) the local sets
// decide with what this Baton saw: the fallback admits up to the limit on
// each Baton, as without a store, and never drops for lack of Redis.
//
// A project's configured limits (SetProjectLimits, its config's
// metrics.cardinalityLimits, docs/relay-protocol.md 6.4) replace the
// default for the namespaces they match (no namespace: all). Each counts
// in its own scopes: ScopeOrganization one per organization (per project
// while the organization's id is unknown), ScopeProject per project and
// namespace, ScopeType and ScopeName per metric type or MRI within those.
// A series passes if no non-passive limit rejects it; each limit counts
// it independently (one rejecting does not keep it out of the others'
// sets, as in Relay), and a passive limit only counts
// (LimiterStats.Passive). Type and name scopes make one scope per type or
// metric name, all bounded by LimitOptions.MaxScopes.
//
// # Concurrency
//
// Aggregator and Limiter are safe for concurrent use: each has one mutex,
// taken once per call (not per bucket), so Stats can be read from another
// goroutine. The Aggregator is meant to be owned by one loop; contention on
// the Limiter grows with the number of ingest goroutines calling it.
package aggregate
