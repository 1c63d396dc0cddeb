package buffer

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

var (
	modelSeed  = flag.Uint64("model.seed", 0, "replay TestModel with this seed only")
	modelSteps = flag.Int("model.steps", 400, "operations per TestModel run")
	modelRuns  = flag.Int("model.runs", 6, "seeds per option set")
)

type modelRec struct {
	seq  Seq
	val  string
	size int64
}

// modelWeigh is the model's Options.Weigh: any pure function of the value.
func modelWeigh(v []byte) int64 { return int64(len(v)%13) + 1 }

func (r modelRec) weight() int64 { return modelWeigh([]byte(r.val)) }

type modelStream struct {
	recs     []modelRec // records above the watermark, not dropped, by seq
	acked    []modelRec // acked since wmSynced: restored if a crash loses the ack
	wm       Seq
	wmSynced Seq // watermark known to be durable
	cursor   Seq // last seq delivered by Read in this process lifetime
	next     Seq
}

func (m *modelStream) bytes() (n int64) {
	for _, r := range m.recs {
		n += r.size
	}
	return n
}

func (m *modelStream) weight() (w int64) {
	for _, r := range m.recs {
		w += r.weight()
	}
	return w
}

type modelSet struct {
	name  string
	opts  Options
	crash bool // crash steps are only modelled under Strict durability
}

// TestModel runs seeded random operation sequences against the buffer and an
// in-memory reference queue, over several option sets, with clean reopens
// and crashes (filesystem crash clones keeping a random share of unsynced
// writes). It checks: no record acked by Append is lost, per-stream order,
// nothing delivered twice within one process lifetime (except after Rewind),
// redelivery after a crash only above the durable watermark, exact pending
// counts and bytes, ErrFull only when over budget, and drops only of the
// oldest unread records. Replay a failure with -model.seed=N.
func TestModel(t *testing.T) {
	sets := []modelSet{
		{name: "strict", opts: Options{}, crash: true},
		{name: "relaxed", opts: Options{Durability: Relaxed, SyncInterval: time.Millisecond}},
		{name: "small-memtable", opts: Options{MemTableSize: 256 << 10, MaxGroupEntries: 3}, crash: true},
		{name: "small-budget-drop-oldest", opts: Options{MaxBytes: 6 << 10, ReserveBytes: 1 << 10,
			DropOldest: func(s Stream) bool { return s == 1 }}, crash: true},
	}
	for _, set := range sets {
		t.Run(set.name, func(t *testing.T) {
			seeds := []uint64{*modelSeed}
			if *modelSeed == 0 {
				seeds = seeds[:0]
				for i := 0; i < *modelRuns; i++ {
					seeds = append(seeds, uint64(time.Now().UnixNano())+uint64(i))
				}
			}
			for _, seed := range seeds {
				if !runModel(t, set, seed) {
					t.Fatalf("model failed; replay with: go test ./buffer -run 'TestModel/%s' -model.seed=%d", set.name, seed)
				}
			}
		})
	}
}

func runModel(t *testing.T, set modelSet, seed uint64) (ok bool) {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	fs := vfs.NewCrashableMem()
	drops := &dropLog{}
	opts := set.opts
	opts.FS, opts.OnDrop, opts.Logger, opts.Weigh = fs, drops.onDrop, &testLogger{tb: t}, modelWeigh
	if opts.MemTableSize == 0 {
		opts.MemTableSize = 1 << 20
	}
	b, err := Open("db", opts)
	if err != nil {
		t.Errorf("seed %d: open: %v", seed, err)
		return false
	}
	defer func() {
		if b != nil {
			_ = b.Close()
		}
	}()
	limit := opts.MaxBytes - opts.ReserveBytes
	if opts.MaxBytes == 0 {
		limit = 1 << 62
	}
	const nStreams = 3
	ms := make([]*modelStream, nStreams+1)
	for s := 1; s <= nStreams; s++ {
		ms[s] = &modelStream{next: 1}
	}
	total := func() (n int64) {
		for s := 1; s <= nStreams; s++ {
			n += ms[s].bytes()
		}
		return n
	}
	fail := func(step int, format string, args ...any) bool {
		t.Errorf("seed %d step %d: %s", seed, step, fmt.Sprintf(format, args...))
		return false
	}
	var dst []Record
	counter := 0
	var nAppend, nFull, nDrop, nRead, nAck, nReopen, nCrash int
	defer func() {
		t.Logf("seed %d: appends=%d full=%d drops=%d reads=%d acks=%d reopens=%d crashes=%d", seed, nAppend, nFull, nDrop, nRead, nAck, nReopen, nCrash)
	}()
	for step := 0; step < *modelSteps; step++ {
		switch p := rng.IntN(100); {
		case p < 40: // append
			n := 1 + rng.IntN(4)
			entries := make([]Entry, n)
			var need int64
			for i := range entries {
				counter++
				v := fmt.Sprintf("v%d-", counter)
				v += string(make([]byte, rng.IntN(300)))
				entries[i] = Entry{Stream: Stream(1 + rng.IntN(nStreams)), Value: []byte(v)}
				need += recordSize(len(v))
			}
			before := total()
			err := b.Append(context.Background(), entries)
			dropped := drops.take()
			if errors.Is(err, ErrFull) {
				if before+need <= limit {
					return fail(step, "ErrFull with %d+%d ≤ %d", before, need, limit)
				}
				if len(dropped) > 0 {
					return fail(step, "ErrFull but dropped %v", dropped)
				}
				nFull++
				continue
			}
			if err != nil {
				return fail(step, "append: %v", err)
			}
			nAppend++
			nDrop += len(dropped)
			for _, d := range dropped {
				var s Stream
				var cnt int
				var bytes, weight int64
				var reason string
				fmt.Sscanf(d, "drop stream=%d records=%d bytes=%d reason=%s weight=%d", &s, &cnt, &bytes, &reason, &weight)
				m := ms[s]
				if reason != DropBufferFull || opts.DropOldest == nil || !opts.DropOldest(s) {
					return fail(step, "unexpected drop %q", d)
				}
				// The oldest unread records go.
				i := slices.IndexFunc(m.recs, func(r modelRec) bool { return r.seq > m.cursor })
				if i < 0 || i+cnt > len(m.recs) {
					return fail(step, "drop %q: model has too few unread records", d)
				}
				var got, gotWeight int64
				for _, r := range m.recs[i : i+cnt] {
					got += r.size
					gotWeight += r.weight()
				}
				if got != bytes || gotWeight != weight {
					return fail(step, "drop %q: model bytes %d, weight %d", d, got, gotWeight)
				}
				m.recs = slices.Delete(m.recs, i, i+cnt)
			}
			if len(dropped) == 0 && before+need > limit {
				return fail(step, "accepted %d bytes over budget (%d in use, limit %d)", need, before, limit)
			}
			for _, e := range entries {
				m := ms[e.Stream]
				if e.Seq != m.next {
					return fail(step, "stream %d: seq %d, want %d", e.Stream, e.Seq, m.next)
				}
				m.next++
				m.recs = append(m.recs, modelRec{e.Seq, string(e.Value), recordSize(len(e.Value))})
			}
			if opts.Durability == Strict { // the Sync'd commit made every earlier ack durable
				for s := 1; s <= nStreams; s++ {
					ms[s].wmSynced, ms[s].acked = ms[s].wm, nil
				}
			}
		case p < 65: // read
			s := Stream(1 + rng.IntN(nStreams))
			m := ms[s]
			unread := slices.IndexFunc(m.recs, func(r modelRec) bool { return r.seq > m.cursor })
			timeout := 5 * time.Second
			if unread < 0 {
				timeout = time.Millisecond
			}
			maxN := 1 + rng.IntN(5)
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			dst, err = b.Read(ctx, s, dst, maxN, 0)
			cancel()
			if unread < 0 {
				if !errors.Is(err, context.DeadlineExceeded) {
					return fail(step, "stream %d: read with nothing unread: %d records, err %v", s, len(dst), err)
				}
				continue
			}
			if err != nil {
				return fail(step, "stream %d: read: %v", s, err)
			}
			want := m.recs[unread:]
			want = want[:min(len(want), maxN)]
			if len(dst) == 0 || len(dst) > len(want) {
				return fail(step, "stream %d: read %d records, model has %d unread", s, len(dst), len(want))
			}
			for i, r := range dst {
				if r.Seq != want[i].seq || string(r.Value) != want[i].val {
					return fail(step, "stream %d: read #%d got seq %d, want seq %d (cursor %d)", s, i, r.Seq, want[i].seq, m.cursor)
				}
			}
			m.cursor = dst[len(dst)-1].Seq
			nRead++
		case p < 80: // ack a prefix of what was delivered
			s := Stream(1 + rng.IntN(nStreams))
			m := ms[s]
			if m.cursor <= m.wm {
				continue
			}
			upTo := m.wm + 1 + Seq(rng.IntN(int(m.cursor-m.wm)))
			if err := b.Ack(s, upTo); err != nil {
				return fail(step, "ack %d up to %d: %v", s, upTo, err)
			}
			i := 0
			for i < len(m.recs) && m.recs[i].seq <= upTo {
				i++
			}
			m.acked = append(m.acked, m.recs[:i]...)
			m.recs = slices.Clone(m.recs[i:])
			m.wm = upTo
			nAck++
		case p < 85:
			s := Stream(1 + rng.IntN(nStreams))
			b.Rewind(s)
			ms[s].cursor = ms[s].wm
		case p < 93: // stats
			st := b.Stats()
			for _, ss := range st.Streams {
				m := ms[ss.Stream]
				if ss.Pending != int64(len(m.recs)) || ss.PendingBytes != m.bytes() || ss.PendingWeight != m.weight() || ss.Watermark != m.wm || ss.NextSeq != m.next {
					return fail(step, "stream %d stats %+v; model pending=%d bytes=%d weight=%d wm=%d next=%d",
						ss.Stream, ss, len(m.recs), m.bytes(), m.weight(), m.wm, m.next)
				}
			}
			if st.PendingBytes != total() {
				return fail(step, "total bytes %d, model %d", st.PendingBytes, total())
			}
		case p < 97 || !set.crash: // clean restart: everything is synced on Close
			if err := b.Close(); err != nil {
				return fail(step, "close: %v", err)
			}
			if b, err = Open("db", opts); err != nil {
				b = nil
				return fail(step, "reopen: %v", err)
			}
			for s := 1; s <= nStreams; s++ {
				m := ms[s]
				m.cursor, m.wmSynced, m.acked = m.wm, m.wm, nil
			}
			nReopen++
		default: // crash: keep a random share of unsynced writes
			pct := rng.IntN(101)
			clone := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: pct, RNG: rand.New(rand.NewPCG(rng.Uint64(), 1))})
			_ = b.Close()
			fs, opts.FS = clone, clone
			if b, err = Open("db", opts); err != nil {
				b = nil
				return fail(step, "open after crash (unsynced %d%%): %v", pct, err)
			}
			nCrash++
			st := b.Stats()
			for s := 1; s <= nStreams; s++ {
				m := ms[s]
				var w Seq
				for _, ss := range st.Streams {
					if ss.Stream == Stream(s) {
						w = ss.Watermark
					}
				}
				if w < m.wmSynced || w > m.wm {
					return fail(step, "stream %d: watermark %d after crash, want in [%d, %d]", s, w, m.wmSynced, m.wm)
				}
				// Acks above the durable watermark were lost: redeliver.
				var back []modelRec
				for _, r := range m.acked {
					if r.seq > w {
						back = append(back, r)
					}
				}
				m.recs = append(back, m.recs...)
				m.wm, m.wmSynced, m.cursor, m.acked = w, w, w, nil
			}
		}
	}
	// Drain every stream from its watermark: each pending model record must be
	// there, in order, and nothing else.
	for s := 1; s <= nStreams; s++ {
		m := ms[s]
		b.Rewind(Stream(s))
		var got []modelRec
		for len(got) < len(m.recs) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			dst, err = b.Read(ctx, Stream(s), dst, 0, 0)
			cancel()
			if err != nil {
				return fail(*modelSteps, "stream %d: drain after %d of %d records: %v", s, len(got), len(m.recs), err)
			}
			for _, r := range dst {
				got = append(got, modelRec{r.Seq, string(r.Value), recordSize(len(r.Value))})
			}
		}
		if !slices.Equal(got, m.recs) {
			return fail(*modelSteps, "stream %d: drained %d records, model %d: contents differ", s, len(got), len(m.recs))
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
		dst, err = b.Read(ctx, Stream(s), dst, 0, 0)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			return fail(*modelSteps, "stream %d: %d records beyond the model (err %v)", s, len(dst), err)
		}
	}
	return true
}
