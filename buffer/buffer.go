package buffer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// Stream identifies an independent queue. The caller chooses the ids (relay
// maps traffic class × partition to a stream); the buffer only orders records
// within a stream.
type Stream uint32

// Seq is a record's position in its stream. Seqs start at 1, strictly
// increase, and are never reused across restarts for durable records; the
// seq of a record that never became durable (a failed Append, or a Relaxed
// append lost in a crash) may be handed out again.
type Seq uint64

// Entry is one record to append.
type Entry struct {
	Stream Stream
	Value  []byte
	Seq    Seq // set by Append on success
}

// Record is one record returned by Read. Value is owned by the caller.
type Record struct {
	Seq      Seq
	Value    []byte
	Appended time.Time
}

// Drop reasons passed to Options.OnDrop and counted in Stats.Dropped.
const (
	DropExpired    = "expired"     // older than Options.MaxAge
	DropBufferFull = "buffer_full" // evicted for a DropOldest stream
	DropCorrupt    = "corrupt"     // failed its checksum; moved to quarantine
)

var (
	// ErrFull is returned by Append when the disk budget is exhausted.
	ErrFull = errors.New("buffer: full")
	// ErrClosed is returned by every method after Close.
	ErrClosed = errors.New("buffer: closed")
	// ErrFailed is returned after the store failed (a WAL write or fsync
	// error); acked records are intact on disk, but this Buffer accepts
	// nothing more. Close it and Open the directory again.
	ErrFailed = errors.New("buffer: storage failed")
	// ErrCorrupt marks a store or metadata that failed a checksum.
	ErrCorrupt = errors.New("buffer: corrupt")
)

// Durability selects when Append returns.
type Durability int

const (
	// Strict commits every group with fsync before Append returns: an
	// acknowledged record survives kill -9 and power loss.
	Strict Durability = iota
	// Relaxed commits without fsync and syncs every SyncInterval: records
	// acknowledged within the last SyncInterval (plus Pebble's in-process
	// buffers) can be lost on a crash.
	Relaxed
)

// Options configures a Buffer. The zero value is valid; every field documents
// its default.
type Options struct {
	// FS is the filesystem. Default vfs.Default; tests use vfs.NewMem,
	// vfs.NewCrashableMem or errorfs.
	FS vfs.FS
	// MaxBytes is the disk budget in bytes for pending records (key plus
	// value). Default DefaultMaxBytes.
	MaxBytes int64
	// ReserveBytes is headroom kept below MaxBytes for what the budget does
	// not count (WAL, memtables, not-yet-compacted deletions), and the free
	// space the filesystem must keep: Append fails with ErrFull once pending
	// bytes exceed MaxBytes-ReserveBytes or the filesystem has less than
	// ReserveBytes free. This keeps Pebble from ever hitting ENOSPC, which it
	// treats as fatal. Default MaxBytes/16, at most DefaultReserveBytes.
	ReserveBytes int64
	// MaxAge drops records older than this with reason DropExpired. Default
	// 0: records never expire.
	MaxAge time.Duration
	// DropOldest reports whether a stream evicts its own oldest unread
	// records (reason DropBufferFull) instead of failing with ErrFull when the
	// budget is exhausted. Default nil: every stream fails with ErrFull.
	DropOldest func(Stream) bool
	// Overdraws names the streams that may append past the budget, by up to
	// OverdraftBytes in all: what must still be written when the budget is
	// exhausted (the relay: its outcomes stream, which reports the records
	// DropOldest evicts, evictions that happen only when the buffer is
	// full). Their first OverdraftBytes of pending bytes are not charged to
	// the budget, and they are never evicted themselves (DropOldest is
	// ignored for them). It must be cheap and pure. Default nil: none.
	Overdraws func(Stream) bool
	// OverdraftBytes is how far past the budget the Overdraws streams may
	// go. It comes out of the reserve (at most ReserveBytes/2), which only
	// covers the store's own overhead. Default ReserveBytes/4, at most
	// DefaultOverdraftBytes.
	OverdraftBytes int64
	// OnDrop is called for every batch of records dropped, from the
	// buffer's completer goroutine, once the drop is committed and before
	// the Append that caused it returns, with their count, stored bytes and
	// weight (see Weigh), and the concatenated digests of the records (see
	// Digest; nil without one), valid only during the call. It must not
	// block or call Append, Ack or Close. Default nil.
	OnDrop func(s Stream, records int, bytes, weight int64, reason string, digests []byte)
	// Digest lets OnDrop learn what it dropped, not only how much: it is
	// called for every record a drop removes (expired, evicted, or
	// quarantined as corrupt, then with its value as found), from the commit
	// loop, one call at a time, and appends to dst what OnDrop needs of the
	// value, which is valid only during the call. It bounds what it keeps
	// (it may append nothing) and must be cheap: Appends wait while it
	// runs. Appends and reads never call it. Default nil: nothing is kept.
	Digest func(dst []byte, s Stream, value []byte) []byte
	// OnCommit, if set, is called by the commit loop after each group
	// commit with its latency (Apply to durable, fsync included): the
	// figure Stats.CommitLatency buckets, for a caller that exports its
	// own histogram. It must not block. Default nil.
	OnCommit func(latency time.Duration)
	// Weigh returns the weight of a record value: what the caller counts in
	// a record (the relay: its envelope items). The buffer keeps each
	// stream's pending weight in its metadata, so that Open knows it without
	// reading records, and reports the weight of what it drops. It must be
	// cheap, pure and the same across restarts; a corrupt record is weighed
	// as found. Default nil: every weight is 0.
	Weigh func(value []byte) int64
	// Durability is Strict (default) or Relaxed.
	Durability Durability
	// SyncInterval is how often Relaxed durability syncs the WAL, and how
	// long an Ack may stay unsynced in either mode. Default
	// DefaultSyncInterval.
	SyncInterval time.Duration
	// MemTableSize is Pebble's memtable size in bytes, at least 256 KiB
	// (Pebble panics on tiny ones) and under 4 GiB. Default
	// DefaultMemTableSize: the 4 MiB Pebble default stalls writes under load.
	MemTableSize uint64
	// MaxGroupEntries caps the entries of one group commit. A single Append
	// larger than the cap is committed alone, never split. Default 256.
	MaxGroupEntries int
	// MaxGroupBytes caps the payload bytes of one group commit. Default 4 MiB.
	MaxGroupBytes int
	// Logger receives Pebble's and the buffer's logs. Fatalf is called for
	// unrecoverable store errors (Pebble calls it on a failed WAL write); the
	// buffer records the error first, so if Fatalf returns instead of
	// exiting, the Buffer fails with ErrFailed rather than reporting a false
	// success. Default pebble.DefaultLogger, whose Fatalf exits the process.
	Logger pebble.Logger
	// Now is the clock for append times and MaxAge. Default time.Now.
	Now func() time.Time
}

// Defaults of Options. Baton's config (config/default.yaml) has the same
// values; relay's TestDefaultsAgree keeps them equal.
const (
	// DefaultMaxBytes is the disk budget: 10 GiB.
	DefaultMaxBytes = 10 << 30
	// DefaultReserveBytes caps the default reserve, which is MaxBytes/16
	// for budgets under 8 GiB: 512 MiB.
	DefaultReserveBytes = 512 << 20
	// DefaultOverdraftBytes caps the default overdraft of the Overdraws
	// streams, which is ReserveBytes/4 below it: 8 MiB, some 25,000 raw
	// outcomes of about 300 bytes, more than the relay's reporter holds
	// between two flushes (10,000).
	DefaultOverdraftBytes = 8 << 20
	// DefaultSyncInterval is the relaxed sync period: 100 ms.
	DefaultSyncInterval = 100 * time.Millisecond
	// DefaultMemTableSize is 48 MiB: two are alive while one is flushed,
	// so it drives RSS, and 48 MiB measured as fast as 64 MiB with 32 MB
	// less (BENCHMARKS.md).
	DefaultMemTableSize = 48 << 20
)

const (
	defaultMaxGroupEntries = 256
	defaultMaxGroupBytes   = 4 << 20
	minMemTableSize        = 256 << 10 // Pebble's first memtable; it panics on open below an empty arena's size

	// Acked prefixes are deleted with one DeleteRange per stream after this
	// many acks or this much time, whichever comes first: fewer range
	// tombstones, and Ack never issues point deletes.
	deleteEveryAcks = 64
	deleteInterval  = 250 * time.Millisecond
	// tick drives housekeeping: deletes, relaxed syncs, expiry, free space.
	tick = 50 * time.Millisecond
	// diskCheckInterval is how often the filesystem's free space is read.
	diskCheckInterval = time.Second
)

func (o Options) withDefaults() (Options, error) {
	if o.FS == nil {
		o.FS = vfs.Default
	}
	if o.MaxBytes == 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	if o.ReserveBytes == 0 {
		o.ReserveBytes = min(o.MaxBytes/16, DefaultReserveBytes)
	}
	if o.OverdraftBytes == 0 {
		o.OverdraftBytes = min(o.ReserveBytes/4, DefaultOverdraftBytes)
	}
	if o.SyncInterval == 0 {
		o.SyncInterval = DefaultSyncInterval
	}
	if o.MemTableSize == 0 {
		o.MemTableSize = DefaultMemTableSize
	}
	if o.MaxGroupEntries == 0 {
		o.MaxGroupEntries = defaultMaxGroupEntries
	}
	if o.MaxGroupBytes == 0 {
		o.MaxGroupBytes = defaultMaxGroupBytes
	}
	if o.Logger == nil {
		o.Logger = pebble.DefaultLogger
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	switch {
	case o.MaxBytes < 0 || o.ReserveBytes < 0 || o.ReserveBytes >= o.MaxBytes:
		return o, fmt.Errorf("buffer: invalid budget: MaxBytes %d, ReserveBytes %d", o.MaxBytes, o.ReserveBytes)
	case o.OverdraftBytes < 0 || o.OverdraftBytes > o.ReserveBytes/2:
		return o, fmt.Errorf("buffer: OverdraftBytes %d is not within [0, ReserveBytes/2 = %d]", o.OverdraftBytes, o.ReserveBytes/2)
	case o.MaxAge < 0 || o.SyncInterval < 0:
		return o, errors.New("buffer: negative MaxAge or SyncInterval")
	case o.MemTableSize < minMemTableSize:
		return o, fmt.Errorf("buffer: MemTableSize %d is under %d", o.MemTableSize, minMemTableSize)
	case o.MaxGroupEntries < 0 || o.MaxGroupBytes < 0:
		return o, errors.New("buffer: negative group cap")
	case o.Durability != Strict && o.Durability != Relaxed:
		return o, fmt.Errorf("buffer: unknown durability %d", o.Durability)
	}
	return o, nil
}

// Buffer is a durable multi-stream queue. All methods are safe for concurrent
// use, except that Read, Rewind and Ack for one stream are meant to be called
// by that stream's single consumer; Read returns an error if called
// concurrently for the same stream.
type Buffer struct {
	opts  Options
	dir   string
	db    *pebble.DB
	lock  io.Closer // the pid file, held until Close
	limit int64     // MaxBytes - ReserveBytes

	// closeMu orders senders on reqs and users of db against Close.
	closeMu sync.RWMutex
	closed  bool
	closing chan struct{} // closed by Close; wakes blocked Reads
	active  sync.WaitGroup
	reqs    chan *request
	done    chan struct{} // closed when the commit loop exits

	fatal      atomic.Pointer[error] // first fatal store error
	failed     chan struct{}         // closed on failure; wakes blocked Reads
	failedOnce sync.Once
	full       atomic.Bool
	refused    atomic.Bool // an append was refused for the budget; cleared below the low-water mark
	lowDsk     atomic.Bool
	freeDsk    atomic.Uint64 // free bytes of the filesystem at the last check; 0 if unknown

	mu        sync.Mutex
	streams   map[Stream]*stream
	pending   int64 // total pending bytes
	overdrawn int64 // pending bytes of the Overdraws streams
	stats     counters

	loop loopState // owned by the commit loop goroutine
}

// Open opens or creates the buffer in dir and rebuilds every stream's state
// from its metadata.
func Open(dir string, opts Options) (*Buffer, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	b := &Buffer{
		opts:    opts,
		dir:     dir,
		limit:   opts.MaxBytes - opts.ReserveBytes,
		closing: make(chan struct{}),
		failed:  make(chan struct{}),
		reqs:    make(chan *request, 1024),
		done:    make(chan struct{}),
		streams: make(map[Stream]*stream),
	}
	b.stats.init()
	if err := opts.FS.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("buffer: create %s: %w", dir, err)
	}
	if b.lock, err = lockDir(opts.FS, dir, true); err != nil {
		return nil, err
	}
	b.db, err = pebble.Open(dir, b.pebbleOptions(false))
	if err != nil {
		return nil, errors.Join(lockedByPebble(dir, fmt.Errorf("buffer: open %s: %w", dir, err)), b.lock.Close())
	}
	metas, quarantined, err := loadMetas(b.db, opts.Logger, opts.Weigh)
	if err != nil {
		return nil, errors.Join(err, b.db.Close(), b.lock.Close())
	}
	for s, m := range metas {
		st := newStream(s, m)
		st.quarantined = quarantined[s]
		b.streams[s] = st
		b.pending += m.pendingBytes()
		if b.overdraws(s) {
			b.overdrawn += m.pendingBytes()
		}
	}
	b.loop.init(b)
	b.checkDisk()
	b.updateFull()
	go b.run()
	return b, nil
}

// pebbleOptions documents every deviation from Pebble's defaults.
func (b *Buffer) pebbleOptions(readOnly bool) *pebble.Options {
	o := &pebble.Options{
		FS:       b.opts.FS,
		Logger:   fatalRecorder{b},
		ReadOnly: readOnly,
		// 48 MiB memtables: the 4 MiB default stalls writers on rotation
		// (docs/performance-anchors.md b13: p99 152 ms → 33 ms).
		MemTableSize: b.opts.MemTableSize,
		// Newest format: cheaper range deletions and no migrations later.
		FormatMajorVersion: pebble.FormatNewest,
		// WALBytesPerSync stays 0: Strict fsyncs every group anyway, and
		// Relaxed wants one sync per interval, not background syncs.
		// Automatic compactions stay on: they reclaim DeleteRange'd space.
	}
	if readOnly {
		o.FormatMajorVersion = 0
	}
	return o
}

// fatalRecorder records Pebble's fatal errors before passing them on, so a
// Fatalf that returns (test loggers, embedding processes) fails the Buffer
// instead of letting Pebble report a false success.
type fatalRecorder struct{ b *Buffer }

func (l fatalRecorder) Infof(format string, args ...any)  { l.b.opts.Logger.Infof(format, args...) }
func (l fatalRecorder) Errorf(format string, args ...any) { l.b.opts.Logger.Errorf(format, args...) }
func (l fatalRecorder) Fatalf(format string, args ...any) {
	err := fmt.Errorf("%w: "+format, append([]any{ErrFailed}, args...)...)
	l.b.fatal.CompareAndSwap(nil, &err)
	l.b.opts.Logger.Fatalf(format, args...)
}

func (b *Buffer) failure() error {
	if p := b.fatal.Load(); p != nil {
		return *p
	}
	return nil
}

func (b *Buffer) fail(err error) {
	err = fmt.Errorf("%w: %w", ErrFailed, err)
	if b.fatal.CompareAndSwap(nil, &err) {
		b.opts.Logger.Errorf("buffer: store failed, refusing writes until reopened: %v", err)
	}
	b.failedOnce.Do(func() { close(b.failed) })
	b.updateFull()
}

// Append makes entries durable and sets their Seq. It returns nil only when
// every entry is committed (with fsync under Strict durability); entries of
// one call land in one Pebble batch, so they are all durable or none is.
// Concurrent calls are group-committed by one goroutine. ctx bounds only the
// wait for a place in the queue: once queued, the commit is awaited, so a nil
// error is never lost to a cancellation.
func (b *Buffer) Append(ctx context.Context, entries []Entry) error {
	if len(entries) == 0 {
		return nil
	}
	r := getRequest(opAppend)
	r.ctx = ctx
	r.entries = entries
	for _, e := range entries {
		r.bytes += len(e.Value)
	}
	return b.submit(ctx, r)
}

// Ack marks every record of s with seq ≤ upTo as delivered. The new
// watermark is committed without fsync (it becomes durable with the next sync,
// at most SyncInterval later); losing it in a crash only causes redelivery.
// Acking at or below the watermark is a no-op.
func (b *Buffer) Ack(s Stream, upTo Seq) error {
	b.mu.Lock()
	st := b.streams[s]
	var wm, last Seq
	if st != nil {
		wm, last = st.m.Watermark, st.last()
	}
	b.mu.Unlock()
	if upTo <= wm {
		return nil
	}
	if upTo > last {
		return fmt.Errorf("buffer: ack of stream %d up to %d beyond last appended seq %d", s, upTo, last)
	}
	r := getRequest(opAck)
	r.stream, r.to = s, upTo
	return b.submit(context.Background(), r)
}

// Move appends entries and acks every record of from with seq ≤ upTo, in
// one atomic batch: after a crash either the acked records are still in from
// or the entries are in their streams, never neither and never both. It is
// how a record changes streams. The budget is not checked, since the acked
// records make room for the entries; with no entries it is an Ack.
func (b *Buffer) Move(ctx context.Context, entries []Entry, from Stream, upTo Seq) error {
	if len(entries) == 0 {
		return b.Ack(from, upTo)
	}
	b.mu.Lock()
	st := b.streams[from]
	var last Seq
	if st != nil {
		last = st.last()
	}
	b.mu.Unlock()
	if upTo > last {
		return fmt.Errorf("buffer: move from stream %d up to %d beyond last appended seq %d", from, upTo, last)
	}
	r := getRequest(opMove)
	r.ctx = ctx
	r.entries = entries
	r.stream, r.to = from, upTo
	for _, e := range entries {
		r.bytes += len(e.Value)
	}
	return b.submit(ctx, r)
}

// Rewind moves the read cursor of s back to its watermark, so the next Read
// returns every unacked record again (after a failed send).
func (b *Buffer) Rewind(s Stream) {
	b.mu.Lock()
	if st := b.streams[s]; st != nil {
		st.cursor = st.m.Watermark
		st.inflight.reset()
	}
	b.mu.Unlock()
}

// Ready reports whether the buffer accepts appends: false while over budget,
// low on disk, failed or closing.
func (b *Buffer) Ready() bool {
	select {
	case <-b.closing:
		return false
	default:
	}
	return !b.full.Load() && b.failure() == nil
}

// overdraws reports whether s may append past the budget (Options.Overdraws).
func (b *Buffer) overdraws(s Stream) bool {
	return b.opts.Overdraws != nil && b.opts.Overdraws(s)
}

// charged is what the budget counts of pending bytes p of which o are of
// the Overdraws streams: all but their overdraft.
func (b *Buffer) charged(p, o int64) int64 { return p - min(o, b.opts.OverdraftBytes) }

func (b *Buffer) updateFull() {
	b.mu.Lock()
	pending := b.charged(b.pending, b.overdrawn)
	full := pending >= b.limit
	// Appends are refused before pending reaches the limit (they would
	// cross it), so a refusal is what marks the buffer full; it stays full
	// until a sixteenth of the budget is free again, so readiness does not
	// flap with every ack.
	if b.refused.Load() {
		if pending < b.limit-b.limit/16 {
			b.refused.Store(false)
		} else {
			full = true
		}
	}
	b.mu.Unlock()
	b.full.Store(full || b.lowDsk.Load() || b.failure() != nil)
}

// checkDisk reads the filesystem's free space; filesystems that cannot
// report it (MemFS) are trusted.
func (b *Buffer) checkDisk() {
	u, err := b.opts.FS.GetDiskUsage(b.dir)
	if err != nil {
		return
	}
	b.freeDsk.Store(u.AvailBytes)
	low := u.AvailBytes < uint64(b.opts.ReserveBytes)
	if low != b.lowDsk.Swap(low) && low {
		b.opts.Logger.Errorf("buffer: %s has %d bytes free, below the %d reserve; refusing appends", b.dir, u.AvailBytes, b.opts.ReserveBytes)
	}
}

// enter registers a user of db; Close waits for it.
func (b *Buffer) enter() error {
	b.closeMu.RLock()
	defer b.closeMu.RUnlock()
	if b.closed {
		return ErrClosed
	}
	b.active.Add(1)
	return nil
}

func (b *Buffer) submit(ctx context.Context, r *request) error {
	b.closeMu.RLock()
	if b.closed {
		b.closeMu.RUnlock()
		putRequest(r)
		return ErrClosed
	}
	select {
	case b.reqs <- r:
	case <-ctx.Done():
		b.closeMu.RUnlock()
		putRequest(r)
		return ctx.Err()
	}
	b.closeMu.RUnlock()
	err := <-r.done
	putRequest(r)
	return err
}

// Close stops accepting work, commits what is already queued, deletes acked
// prefixes, syncs and closes the store. Blocked Reads return ErrClosed.
func (b *Buffer) Close() error {
	b.closeMu.Lock()
	if b.closed {
		b.closeMu.Unlock()
		return ErrClosed
	}
	b.closed = true
	close(b.closing)
	close(b.reqs) // no sender is mid-send: senders hold closeMu.RLock
	b.closeMu.Unlock()
	<-b.done
	b.active.Wait()
	b.updateFull()
	err := b.db.Close()
	_ = b.lock.Close() // after the store: the next owner must find it closed
	if err != nil {
		return fmt.Errorf("buffer: close: %w", err)
	}
	return nil
}
