// Package lanes is `baton lanes`, the deadline-lane worker: fast work is
// never stuck behind slow work in one Kafka partition.
//
// A lane is a topic with a handler (an HTTP endpoint, [HTTP], or a command,
// [Command]) and a deadline. Lanes chain from fast to slow, e.g.
// baton.error (2s) → baton.error.slow (60s) → baton.error.slower (30m) →
// dead-letter topic. Each lane is its own consumer group ("<group>.<topic>",
// cooperative-sticky), so a rebalance or a backlog in one lane never stops
// another. For every record the lane calls the handler under the deadline:
//
//   - done (2xx, exit 0): handed off;
//   - deadline passed, or the handler asks (X-Baton-Escalate, exit 75): the
//     record is produced to the next lane with baton-lane-attempt +1,
//     baton-lane-from and baton-lane-reason headers, and the lane moves on.
//     A late answer is ignored: at-least-once, the duplicate is the
//     handler's to count;
//   - refused (other 4xx, other exit codes): produced to the dead-letter
//     topic with the reason; so is a record escalating past the last lane;
//   - throttled (429/503 + Retry-After): the whole lane waits, then calls
//     again;
//   - failed (5xx, no connection, exit 1): retried with backoff up to
//     max attempts, then escalated.
//
// # Commits and what a crash redoes
//
// Records finish out of order. Each partition keeps the offsets taken in
// order (track.go); an offset is marked for commit only once every record
// before it was handed off, and marks are committed every CommitInterval
// (franz-go's AutoCommitMarks), on revocation (so a member joining the
// group redoes only what this one held of the partitions it takes) and at
// shutdown; not when partitions are lost (this member was fenced out of
// the group: its commit would be refused). A killed worker therefore
// redoes at most the lane's window (concurrency × windowPerSlot records
// taken, not handed off) plus what was handed off in the last
// CommitInterval; nothing is lost, because an offset is never committed
// before its record reached a handler's done, the next lane or the
// dead-letter topic.
//
// # Backpressure
//
// A hand-off that the broker refuses is retried with backoff, holding its
// slot; the lane's slots fill and it stops polling. With pause_next_lag, a
// lane also stops polling while the next lane's consumer lag (read every
// LagInterval with kadm, and raised by each escalation in between) is
// above it, so slow lanes are not buried; records in hand wait too. It may
// overshoot by the handler calls already in progress (its concurrency).
//
// # Memory
//
// Per lane: at most concurrency × windowPerSlot records in hand, what the
// franz-go client fetched ahead (up to fetchMaxBytes, 8MiB, per fetch; a
// paused lane fetches nothing), and a 4096-entry ring of handler call times
// for the p50/p99 metrics.
package lanes
