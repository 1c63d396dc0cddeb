package buffer

import (
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// StreamStats describes one stream.
type StreamStats struct {
	Stream       Stream
	Pending      int64 // records above the watermark (in flight included)
	PendingBytes int64 // their stored size: key plus value
	// PendingWeight is their weight (Options.Weigh), from the metadata.
	PendingWeight int64
	InFlight      int       // records read but not yet acked
	Oldest        time.Time // append time of the oldest pending record; zero if none
	Watermark     Seq       // every seq ≤ Watermark is acked or dropped
	NextSeq       Seq       // seq the next append gets
	Quarantined   int64     // corrupt records held in the quarantine range
	// Removed counts the records ever acked, dropped or quarantined (kept
	// across restarts in the metadata): its rate is the drain rate.
	Removed int64
}

// Stats is a snapshot of the buffer. Counters count since Open.
type Stats struct {
	Streams      []StreamStats // sorted by Stream
	Pending      int64
	PendingBytes int64
	BudgetBytes  int64  // MaxBytes - ReserveBytes: where ErrFull starts
	DiskUsage    uint64 // Pebble's files (WAL, tables, manifests) in bytes
	FreeBytes    uint64 // free bytes of the buffer's filesystem at the last check; 0 if it cannot tell
	Full         bool   // Ready() == false because of the budget or free space
	Failed       bool   // the store failed; see ErrFailed

	Appended      int64            // records appended
	Acked         int64            // records acked
	Dropped       map[string]int64 // records dropped, by reason (DropExpired, DropBufferFull, DropCorrupt)
	Quarantined   int64            // records moved to quarantine
	Commits       int64            // Pebble batches committed by the commit loop
	CommitLatency Histogram        // per commit, from Apply to durable (fsync included)
}

// Histogram is a fixed-bucket latency histogram: Counts[i] counts
// observations ≤ Bounds[i]; the last count is the overflow bucket.
type Histogram struct {
	Bounds []time.Duration
	Counts []int64 // len(Bounds)+1
	Sum    time.Duration
	Count  int64
}

var latencyBounds = func() []time.Duration {
	var b []time.Duration
	for d := 125 * time.Microsecond; d <= 2*time.Second; d *= 2 {
		b = append(b, d)
	}
	return b
}()

func (h *Histogram) observe(d time.Duration) {
	if h.Counts == nil {
		h.Bounds, h.Counts = latencyBounds, make([]int64, len(latencyBounds)+1)
	}
	i, _ := slices.BinarySearch(h.Bounds, d)
	h.Counts[i]++
	h.Sum += d
	h.Count++
}

// Quantile returns the upper bound of the bucket holding quantile q (0..1),
// or the largest bound for the overflow bucket.
func (h Histogram) Quantile(q float64) time.Duration {
	if h.Count == 0 {
		return 0
	}
	rank := int64(q * float64(h.Count))
	var n int64
	for i, c := range h.Counts {
		n += c
		if n > rank || i == len(h.Counts)-1 {
			return h.Bounds[min(i, len(h.Bounds)-1)]
		}
	}
	return 0
}

type counters struct {
	appended, acked, quarantined, commits int64
	dropped                               map[string]int64
	commitLatency                         Histogram
}

func (c *counters) init() { c.dropped = make(map[string]int64) }

// Stats returns a snapshot. It costs one seek per stream whose oldest record
// changed since the previous call.
func (b *Buffer) Stats() Stats {
	var s Stats
	b.mu.Lock()
	s.Appended, s.Acked, s.Quarantined, s.Commits = b.stats.appended, b.stats.acked, b.stats.quarantined, b.stats.commits
	s.Dropped = maps.Clone(b.stats.dropped)
	s.CommitLatency = b.stats.commitLatency
	s.CommitLatency.Counts = slices.Clone(s.CommitLatency.Counts)
	type stale struct {
		st  *stream
		gen uint64
		wm  Seq
		i   int
	}
	var refresh []stale
	for _, id := range slices.Sorted(maps.Keys(b.streams)) {
		st := b.streams[id]
		ss := StreamStats{
			Stream: id, Pending: st.m.pendingCount(), PendingBytes: st.m.pendingBytes(), PendingWeight: st.m.pendingWeight(),
			InFlight: st.inflight.len(), Watermark: st.m.Watermark, NextSeq: st.m.Next,
			Quarantined: st.quarantined, Oldest: st.oldest, Removed: st.m.RemovedCount,
		}
		if ss.Pending > 0 && st.oldestGen != st.gen {
			refresh = append(refresh, stale{st, st.gen, st.m.Watermark, len(s.Streams)})
		}
		if ss.Pending == 0 {
			ss.Oldest = time.Time{}
		}
		s.Streams = append(s.Streams, ss)
		s.Pending += ss.Pending
	}
	s.PendingBytes = b.pending
	b.mu.Unlock()
	s.BudgetBytes = b.limit
	s.Full = b.full.Load()
	s.FreeBytes = b.freeDsk.Load()
	s.Failed = b.failure() != nil

	if b.enter() != nil {
		return s
	}
	defer b.active.Done()
	s.DiskUsage = b.db.Metrics().DiskSpaceUsage()
	for _, r := range refresh {
		t, err := oldest(b.db, r.st.id, r.wm)
		if err != nil {
			continue
		}
		s.Streams[r.i].Oldest = t
		b.mu.Lock()
		if r.st.gen == r.gen {
			r.st.oldest, r.st.oldestGen = t, r.gen
		}
		b.mu.Unlock()
	}
	return s
}

// oldest returns the append time of the first record of s above wm. A corrupt
// record has no trustworthy time and is skipped.
func oldest(r pebble.Reader, s Stream, wm Seq) (time.Time, error) {
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: recordKey(s, wm+1), UpperBound: streamEnd(prefixRecord, s)})
	if err != nil {
		return time.Time{}, err
	}
	var t time.Time
	for ok := it.First(); ok; ok = it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			break
		}
		if _, at, ok := decodeRecordValue(v); ok {
			t = at
			break
		}
	}
	return t, it.Close()
}

// loadMetas reads every stream's meta and counts quarantined records. A
// corrupt meta is rebuilt from the stream's records rather than failing Open:
// positions may then move back (more redelivery), never forward (no loss).
// Records are read only for a stream without a usable meta, and for the
// pending records of a version 1 meta when weigh is set (once: the weighed
// metas are written back); every other stream's records are skipped with one
// seek, so Open does not grow with the backlog.
func loadMetas(db *pebble.DB, log pebble.Logger, weigh func([]byte) int64) (map[Stream]meta, map[Stream]int64, error) {
	metas := make(map[Stream]meta)
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixMeta}, UpperBound: []byte{prefixMeta + 1}})
	if err != nil {
		return nil, nil, fmt.Errorf("buffer: load metadata: %w", err)
	}
	var broken, unweighed []Stream
	for ok := it.First(); ok; ok = it.Next() {
		k := it.Key()
		if len(k) != metaKeyLen {
			continue
		}
		s := Stream(binary.BigEndian.Uint32(k[1:]))
		v, err := it.ValueAndErr()
		var m meta
		valid, weighed := false, false
		if err == nil {
			valid, weighed = m.decode(v)
		}
		if !valid {
			broken = append(broken, s)
			continue
		}
		metas[s] = m
		if !weighed && weigh != nil && m.pendingCount() > 0 {
			unweighed = append(unweighed, s)
		}
	}
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return nil, nil, fmt.Errorf("buffer: load metadata: %w", err)
	}
	quarantined := make(map[Stream]int64)
	if err := scanKeys(db, prefixQuarantine, nil, func(s Stream, _ Seq, _ int, _ []byte) { quarantined[s]++ }); err != nil {
		return nil, nil, err
	}
	// Records of a stream without a meta (meta corrupt or lost) are rebuilt.
	rebuilt := make(map[Stream]meta)
	known := func(s Stream) bool { _, ok := metas[s]; return ok }
	err = scanKeys(db, prefixRecord, known, func(s Stream, q Seq, size int, v []byte) {
		m, seen := rebuilt[s]
		if !seen {
			m = meta{Watermark: q - 1, Next: q}
		}
		m.Next = max(m.Next, q+1)
		m.AppendedCount++
		m.AppendedBytes += int64(size)
		m.AppendedWeight += weighValue(weigh, v)
		rebuilt[s] = m
	})
	if err != nil {
		return nil, nil, err
	}
	for s, m := range rebuilt {
		log.Errorf("buffer: stream %d: metadata missing or corrupt; rebuilt from %d records (watermark %d)", s, m.AppendedCount, m.Watermark)
		metas[s] = m
	}
	for _, s := range broken {
		if _, ok := metas[s]; !ok {
			log.Errorf("buffer: stream %d: metadata corrupt and no records; sequence restarts", s)
			metas[s] = meta{Next: 1}
		}
	}
	if len(unweighed) > 0 {
		if err := weighPending(db, metas, unweighed, weigh); err != nil {
			return nil, nil, err
		}
	}
	return metas, quarantined, nil
}

// weighPending computes the pending weight of streams whose meta predates
// weights (version 1) from their records above the watermark, and writes the
// metas back as version 2 so that this happens once.
func weighPending(db *pebble.DB, metas map[Stream]meta, streams []Stream, weigh func([]byte) int64) error {
	b := db.NewBatch()
	defer b.Close()
	var buf []byte
	for _, s := range streams {
		m := metas[s]
		it, err := db.NewIter(&pebble.IterOptions{LowerBound: recordKey(s, m.Watermark+1), UpperBound: streamEnd(prefixRecord, s)})
		if err != nil {
			return fmt.Errorf("buffer: weigh stream %d: %w", s, err)
		}
		var w int64
		for ok := it.First(); ok; ok = it.Next() {
			w += weighValue(weigh, it.Value())
		}
		if err := errors.Join(it.Error(), it.Close()); err != nil {
			return fmt.Errorf("buffer: weigh stream %d: %w", s, err)
		}
		m.AppendedWeight, m.RemovedWeight = w, 0
		metas[s] = m
		buf = m.encode(buf)
		if err := b.Set(metaKey(s), buf, nil); err != nil {
			return err
		}
	}
	if err := db.Apply(b, pebble.Sync); err != nil {
		return fmt.Errorf("buffer: write weighed metadata: %w", err)
	}
	return nil
}

// weighValue is the weight of a stored record value: weigh of its payload,
// which for a corrupt record is whatever follows the header.
func weighValue(weigh func([]byte) int64, v []byte) int64 {
	if weigh == nil || len(v) < recordHeaderLen {
		return 0
	}
	return weigh(v[recordHeaderLen:])
}

// scanKeys calls fn for every key of prefix, in order. A stream for which
// skip reports true is passed over with one seek instead of being read.
func scanKeys(db pebble.Reader, prefix byte, skip func(Stream) bool, fn func(s Stream, q Seq, size int, v []byte)) error {
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefix}, UpperBound: []byte{prefix + 1}})
	if err != nil {
		return fmt.Errorf("buffer: scan %c: %w", prefix, err)
	}
	for ok := it.First(); ok; {
		_, s, q, valid := decodeRecordKey(it.Key())
		switch {
		case valid && skip != nil && skip(s):
			ok = it.SeekGE(streamEnd(prefix, s))
			continue
		case valid:
			fn(s, q, len(it.Key())+len(it.Value()), it.Value())
		}
		ok = it.Next()
	}
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return fmt.Errorf("buffer: scan %c: %w", prefix, err)
	}
	return nil
}

// Inspect opens the buffer in dir read-only (Baton must be stopped) and
// returns every stream's state, with Oldest filled in.
func Inspect(dir string) ([]StreamStats, error) { return inspect(vfs.Default, dir) }

func inspect(fs vfs.FS, dir string) ([]StreamStats, error) {
	if _, err := fs.Stat(dir); err != nil {
		return nil, fmt.Errorf("buffer: inspect %s: %w", dir, err)
	}
	lock, err := lockDir(fs, dir, false)
	if err != nil {
		return nil, err
	}
	defer lock.Close()
	db, err := pebble.Open(dir, &pebble.Options{FS: fs, ReadOnly: true, ErrorIfNotExists: true, Logger: quietLogger{}})
	if err != nil {
		return nil, lockedByPebble(dir, fmt.Errorf("buffer: inspect %s: %w", dir, err))
	}
	defer db.Close()
	metas, quarantined, err := loadMetas(db, quietLogger{}, nil)
	if err != nil {
		return nil, err
	}
	var out []StreamStats
	for _, s := range slices.Sorted(maps.Keys(metas)) {
		m := metas[s]
		ss := StreamStats{Stream: s, Pending: m.pendingCount(), PendingBytes: m.pendingBytes(), PendingWeight: m.pendingWeight(),
			Watermark: m.Watermark, NextSeq: m.Next, Quarantined: quarantined[s], Removed: m.RemovedCount}
		if ss.Pending > 0 {
			if ss.Oldest, err = oldest(db, s, m.Watermark); err != nil {
				return nil, fmt.Errorf("buffer: inspect stream %d: %w", s, err)
			}
		}
		out = append(out, ss)
	}
	return out, nil
}

// quietLogger drops Pebble's informational logs during Inspect; fatal
// errors still go to Pebble's default logger, which exits.
type quietLogger struct{}

func (quietLogger) Infof(string, ...any)              {}
func (quietLogger) Errorf(string, ...any)             {}
func (quietLogger) Fatalf(format string, args ...any) { pebble.DefaultLogger.Fatalf(format, args...) }
