// Package groups keeps per-issue state at the edge: which events of one
// issue (a project and its grouping hash, relay/grouping) storm control
// lets through, and how many events each issue saw since the last flush
// (the per-group count metric, docs/grouping.md "At the edge").
//
// # Storm control
//
// Observe counts one event of an issue and keeps it when fewer than the
// limit were kept in the current window. A window is fixed: it
// starts with the first event of the issue after the previous window
// ended and lasts Window, so a storm keeps at most Limit events per
// Window and an issue that is quiet for a Window starts afresh.
//
// # Counts
//
// Every event Observe sees (kept or dropped) adds one to its issue's count;
// Drain returns the counts since the previous Drain and resets them. The
// relay turns them into counter buckets, so an issue's event count stays
// right upstream although storm control dropped most of its events.
//
// # Memory budget
//
// The table is a sharded LRU (Options.Shards shards, default 16, each
// with its own mutex) of at most Options.MaxIssues issues (default
// 65,536). An issue costs about 250 bytes: its entry (project, hash and
// public key strings, window, counts, list links: ~150 bytes with the
// 32-byte hash and key) and its map slot. When a shard is full its least
// recently used issue is evicted: its storm window is forgotten (the next
// event of that issue starts a new one) and its unflushed count moves to
// the shard's spill list, which Drain empties. The spill list is bounded
// by the shard's capacity; a count evicted past that is lost and counted
// in Stats.Lost. At the defaults the table holds at most 65,536 issues
// and as many spilled counts: ≈ 24 MB in the worst case, ≈ 16 MB without
// a spill.
//
// # Concurrency
//
// A Table is safe for concurrent use: each call takes one shard's mutex
// once (Drain takes each in turn).
package groups
