// Package buffer is Baton's durable write-ahead queue: streams of opaque
// records kept in Pebble, appended with group-committed fsync and removed
// only after their destination confirmed them. It knows nothing about
// envelopes; the relay maps traffic class × partition to a Stream.
//
// # Life of a record
//
//	Append ──► commit loop ──► Pebble batch ──fsync──► Append returns ──► Read ──► send ──► Ack
//	           (one goroutine;  (records + meta          (waiters released,       (cursor,   (watermark,
//	            gathers callers) of every stream)         readers woken)           in memory) then DeleteRange)
//
//	stream s:   ... acked ...  │ in flight │   unread    │ next append
//	            deleted lazily │(read, not │             │
//	                           │  acked)   │             │
//	         ─────────────────┼───────────┼─────────────┼──────────►  seq
//	                      watermark     cursor         last
//
// One goroutine owns the commit loop. Concurrent Append, Ack and internal
// operations queue on a channel; the loop takes everything queued (capped by
// MaxGroupEntries and MaxGroupBytes, never splitting one Append), writes it
// into one pebble.Batch and applies it with Sync. A completer goroutine waits
// for the fsync, publishes the group to readers and releases its waiters. The
// next group forms while the previous one fsyncs; there is no linger. One
// Append's entries, whatever their streams, land in one batch: all durable or
// none.
//
// Read advances an in-memory cursor so the consumer can pipeline; Ack moves
// the durable watermark; Rewind moves the cursor back to the watermark after
// a failed send. Each stream is independent: a Read blocks only on its own
// stream, and a stream nobody reads delays no other (a full disk does stop
// every Append, by design).
//
// # On-disk layout
//
// One Pebble store per directory. Keys are a one-byte prefix, the stream id
// (4 bytes, big-endian) and, for records, the seq (8 bytes, big-endian), so
// each stream's records are one ordered range:
//
//	'm' stream            → meta: version (2), watermark, next seq, appended
//	                        count/bytes, removed count/bytes, appended and
//	                        removed weight, crc32c
//	'q' stream seq        → quarantined value, exactly as it was found
//	'r' stream seq        → record: version (1), crc32c (4) of the rest,
//	                        append time unix-nanos (8), payload
//
// Beside Pebble's files, OWNER holds the pid of the process that has the
// directory open, under an exclusive flock taken before Pebble opens: a second
// Open (or Inspect) fails with a LockedError naming that pid.
//
// The meta key is rewritten in every batch that changes the stream, so it is
// always consistent with the records in the same batch. Pending records,
// bytes and weight (what Options.Weigh counts in a record: the relay's
// envelope items) are appended minus removed, which makes Open O(streams): it
// reads the meta keys and counts quarantined keys, and skips each stream's
// records with one seek, never reading them (1 GiB in 16 streams opens in
// 14 ms; BENCHMARKS.md). A missing or corrupt meta is rebuilt from the
// stream's keys (a position can move back, causing redelivery, never
// forward); a version 1 meta, from before weights, is weighed from its
// pending records once and written back.
//
// # When records are deleted
//
// Ack writes only the new watermark (without fsync: losing it in a crash
// only causes redelivery, and the next synced commit, at most SyncInterval
// later, makes it durable). The acked prefix is removed with one DeleteRange
// per stream every 64 acks or 250 ms, and on Close; never with point
// deletes. Reads start at the watermark through iterator bounds, so they
// never walk the acked prefix or its tombstones. Drops (MaxAge expiry,
// DropOldest eviction) remove only unread records, with one DeleteRange in a
// synced batch, and are reported through Options.OnDrop before the Append
// that caused them returns, with what Options.Digest kept of each record
// (the relay: its project, key and item quantities, for outcomes). Corrupt records (short value, unknown version,
// checksum mismatch) are moved to the 'q' range, counted and reported with
// reason DropCorrupt; the stream continues past them. Nothing is deleted
// otherwise.
//
// # Restart
//
//	crash ──► Open: Pebble replays its WAL (torn tail = end of log)
//	      ──► read 'm' keys: watermark, next seq, pending counts per stream
//	      ──► cursor = watermark; records above it are read again
//	      ──► first tick: DeleteRange whatever acked prefix survived
//
// Delivery is at-least-once: every record above the durable watermark is
// redelivered, including ones sent just before the crash. Seqs continue from
// the persisted next seq and are never reused. Under Strict durability a nil
// from Append survives kill -9 and power loss (if the disk honours fsync);
// under Relaxed, records appended within the last SyncInterval can be lost.
//
// # Budget and failure
//
// The budget counts the stored size (key + value) of pending records. Append
// fails fast with ErrFull once that would exceed MaxBytes-ReserveBytes, or
// while the filesystem has less than ReserveBytes free (checked every
// second): Pebble treats ENOSPC as fatal, so it must never get there. The
// reserve covers what the budget does not count: the WAL, memtables and
// deleted-but-not-compacted data. Streams named by Options.Overdraws may go
// past the budget by OverdraftBytes, taken from the reserve: their first
// OverdraftBytes of pending bytes are not charged, so what reports an
// eviction still has room once the eviction made the buffer full. A WAL write or sync error fails the Buffer
// (ErrFailed, Ready false): every pending and later Append gets an error,
// never a false success, and acked records stay intact for the next Open.
//
// # Pebble settings
//
//   - MemTableSize 48 MiB (Pebble's 4 MiB default stalls writers on rotation;
//     docs/performance-anchors.md b13: p99 152 ms → 33 ms with 64 MiB; 48 MiB is as
//     fast with less RSS, BENCHMARKS.md).
//   - FormatNewest, for cheaper range deletions.
//   - WALBytesPerSync and WALMinSyncInterval stay 0: Strict fsyncs each group
//     anyway and group commit already batches; Relaxed wants one sync per
//     interval, not background syncs.
//   - Automatic compactions stay on: they reclaim the space of deleted ranges.
//   - The Logger is wrapped so that a Fatalf that returns fails the Buffer
//     instead of letting Pebble report a failed commit as a success.
package buffer
