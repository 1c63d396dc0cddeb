package buffer

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"
	"github.com/cockroachdb/pebble/v2/vfs"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testLogger fails the test on nothing but keeps Fatalf from exiting, so
// fault-injection tests can observe ErrFailed.
type testLogger struct {
	tb     testing.TB
	mu     sync.Mutex
	fatals []string
}

func (l *testLogger) Infof(string, ...any)              {}
func (l *testLogger) Errorf(format string, args ...any) { l.tb.Logf("ERROR "+format, args...) }
func (l *testLogger) Fatalf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.fatals = append(l.fatals, fmt.Sprintf(format, args...))
	l.tb.Logf("FATAL "+format, args...)
}

// fakeClock is a settable clock for append times and MaxAge.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }
func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type dropLog struct {
	mu    sync.Mutex
	lines []string
	count map[string]int
}

func (d *dropLog) onDrop(s Stream, n int, bytes, weight int64, reason string, digests []byte) {
	d.mu.Lock()
	defer d.mu.Unlock()
	line := fmt.Sprintf("drop stream=%d records=%d bytes=%d reason=%s", s, n, bytes, reason)
	if weight != 0 {
		line += fmt.Sprintf(" weight=%d", weight)
	}
	if digests != nil {
		line += fmt.Sprintf(" digests=%s", digests)
	}
	d.lines = append(d.lines, line)
	if d.count == nil {
		d.count = map[string]int{}
	}
	d.count[reason] += n
}

func (d *dropLog) take() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	l := d.lines
	d.lines = nil
	return l
}

func formatStats(s Stats) string {
	var sb strings.Builder
	for _, st := range s.Streams {
		fmt.Fprintf(&sb, "stream %d: pending=%d bytes=%d inflight=%d wm=%d next=%d", st.Stream, st.Pending, st.PendingBytes, st.InFlight, st.Watermark, st.NextSeq)
		if st.Quarantined > 0 {
			fmt.Fprintf(&sb, " quarantined=%d", st.Quarantined)
		}
		sb.WriteString("\n")
	}
	fmt.Fprintf(&sb, "total: pending=%d bytes=%d full=%t appended=%d acked=%d quarantined=%d", s.Pending, s.PendingBytes, s.Full, s.Appended, s.Acked, s.Quarantined)
	for _, r := range slices.Sorted(maps.Keys(s.Dropped)) {
		fmt.Fprintf(&sb, " dropped[%s]=%d", r, s.Dropped[r])
	}
	return sb.String()
}

// TestDataDriven runs the scripts in testdata/. Commands:
//
//	open [max-bytes=N reserve=N max-age=D drop-oldest=S,S overdraw=S,S overdraft=N relaxed]
//	append              (input: "<stream> <value>" per line; one Append call)
//	read stream=S [max=N bytes=N]
//	ack stream=S upto=N
//	move from=S upto=N  (input: "<stream> <value>" per line; one Move call)
//	rewind stream=S
//	stats | oldest | drops
//	advance d=D          (fake clock)
//	close | reopen
//	crash [unsynced=PCT] (crash clone of the filesystem, then reopen)
//	corrupt stream=S seq=N (flip a payload byte behind the buffer's back)
//	inspect              (close, then Inspect read-only)
func TestDataDriven(t *testing.T) {
	datadriven.Walk(t, "testdata", func(t *testing.T, path string) {
		fs := vfs.NewCrashableMem()
		clock := newFakeClock()
		drops := &dropLog{}
		var (
			b    *Buffer
			opts Options
		)
		defer func() {
			if b != nil {
				_ = b.Close()
			}
		}()
		open := func() string {
			var err error
			b, err = Open("db", opts)
			if err != nil {
				return err.Error()
			}
			return ""
		}
		datadriven.RunTest(t, path, func(t *testing.T, td *datadriven.TestData) string {
			switch td.Cmd {
			case "open":
				// A long SyncInterval keeps unsynced acks unsynced until a crash step.
				opts = Options{FS: fs, Now: clock.Now, OnDrop: drops.onDrop, Logger: &testLogger{tb: t}, MemTableSize: 1 << 20, SyncInterval: time.Hour}
				td.MaybeScanArgs(t, "max-bytes", &opts.MaxBytes)
				td.MaybeScanArgs(t, "reserve", &opts.ReserveBytes)
				var age string
				if td.MaybeScanArgs(t, "max-age", &age) {
					opts.MaxAge, _ = time.ParseDuration(age)
				}
				if td.HasArg("relaxed") {
					opts.Durability = Relaxed
				}
				if td.HasArg("digest") {
					// Each record's stream and its first two bytes: enough to
					// name it, and proof that a digest keeps only what it takes.
					opts.Digest = func(dst []byte, s Stream, v []byte) []byte {
						return fmt.Appendf(dst, "%d:%s;", s, v[:min(len(v), 2)])
					}
				}
				streams := func(key string) func(Stream) bool {
					arg, ok := td.Arg(key)
					if !ok {
						return nil
					}
					set := map[Stream]bool{}
					for _, v := range arg.Vals {
						var s Stream
						fmt.Sscan(v, &s)
						set[s] = true
					}
					return func(s Stream) bool { return set[s] }
				}
				opts.DropOldest = streams("drop-oldest")
				opts.Overdraws = streams("overdraw")
				td.MaybeScanArgs(t, "overdraft", &opts.OverdraftBytes)
				return open()
			case "append":
				var entries []Entry
				for _, line := range strings.Split(strings.TrimSpace(td.Input), "\n") {
					var s Stream
					var v string
					fmt.Sscan(line, &s, &v)
					entries = append(entries, Entry{Stream: s, Value: []byte(v)})
				}
				if err := b.Append(context.Background(), entries); err != nil {
					return "error: " + err.Error()
				}
				var out []string
				for _, e := range entries {
					out = append(out, fmt.Sprintf("%d:%d", e.Stream, e.Seq))
				}
				return strings.Join(out, " ") + drain(drops)
			case "move":
				var from, upto int
				td.ScanArgs(t, "from", &from)
				td.ScanArgs(t, "upto", &upto)
				var entries []Entry
				for _, line := range strings.Split(strings.TrimSpace(td.Input), "\n") {
					var s Stream
					var v string
					if _, err := fmt.Sscan(line, &s, &v); err == nil {
						entries = append(entries, Entry{Stream: s, Value: []byte(v)})
					}
				}
				if err := b.Move(context.Background(), entries, Stream(from), Seq(upto)); err != nil {
					return "error: " + err.Error()
				}
				if len(entries) == 0 {
					return "ok" + drain(drops)
				}
				var out []string
				for _, e := range entries {
					out = append(out, fmt.Sprintf("%d:%d", e.Stream, e.Seq))
				}
				return strings.Join(out, " ") + drain(drops)
			case "read":
				var s, maxN, maxB int
				td.ScanArgs(t, "stream", &s)
				td.MaybeScanArgs(t, "max", &maxN)
				td.MaybeScanArgs(t, "bytes", &maxB)
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
				defer cancel()
				recs, err := b.Read(ctx, Stream(s), nil, maxN, maxB)
				if err != nil {
					return "error: " + err.Error() + drain(drops)
				}
				var out []string
				for _, r := range recs {
					out = append(out, fmt.Sprintf("%d:%s", r.Seq, r.Value))
				}
				return strings.Join(out, "\n") + drain(drops)
			case "ack":
				var s int
				var upTo uint64
				td.ScanArgs(t, "stream", &s)
				td.ScanArgs(t, "upto", &upTo)
				if err := b.Ack(Stream(s), Seq(upTo)); err != nil {
					return "error: " + err.Error()
				}
				return "ok"
			case "rewind":
				var s int
				td.ScanArgs(t, "stream", &s)
				b.Rewind(Stream(s))
				return "ok"
			case "stats":
				return formatStats(b.Stats())
			case "ready":
				return fmt.Sprint(b.Ready())
			case "oldest":
				var out []string
				for _, st := range b.Stats().Streams {
					age := "none"
					if !st.Oldest.IsZero() {
						age = clock.Now().Sub(st.Oldest).String()
					}
					out = append(out, fmt.Sprintf("stream %d: oldest age %s", st.Stream, age))
				}
				return strings.Join(out, "\n")
			case "drops":
				// With "wait", poll for background drops (the expiry janitor).
				for deadline := time.Now().Add(5 * time.Second); td.HasArg("wait") && time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
					drops.mu.Lock()
					n := len(drops.lines)
					drops.mu.Unlock()
					if n > 0 {
						break
					}
				}
				return strings.TrimSpace(drain(drops))
			case "advance":
				var d string
				td.ScanArgs(t, "d", &d)
				dur, _ := time.ParseDuration(d)
				clock.Advance(dur)
				return "ok"
			case "close":
				err := b.Close()
				b = nil
				if err != nil {
					return err.Error()
				}
				return "ok"
			case "reopen":
				if err := b.Close(); err != nil {
					return err.Error()
				}
				b = nil
				return open()
			case "crash":
				pct := 0
				td.MaybeScanArgs(t, "unsynced", &pct)
				clone := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: pct, RNG: rand.New(rand.NewPCG(1, 2))})
				_ = b.Close() // the clone was taken first; what Close writes is lost
				b, fs = nil, clone
				opts.FS = fs
				return open()
			case "corrupt":
				var s int
				var q uint64
				td.ScanArgs(t, "stream", &s)
				td.ScanArgs(t, "seq", &q)
				return corruptRecordForTest(t, b, Stream(s), Seq(q))
			case "inspect":
				if b != nil {
					_ = b.Close()
					b = nil
				}
				ss, err := inspect(fs, "db")
				if err != nil {
					return err.Error()
				}
				var out []string
				for _, st := range ss {
					age := "none"
					if !st.Oldest.IsZero() {
						age = clock.Now().Sub(st.Oldest).String()
					}
					out = append(out, fmt.Sprintf("stream %d: pending=%d bytes=%d wm=%d next=%d quarantined=%d oldest-age=%s",
						st.Stream, st.Pending, st.PendingBytes, st.Watermark, st.NextSeq, st.Quarantined, age))
				}
				return strings.Join(out, "\n")
			default:
				t.Fatalf("unknown command %q", td.Cmd)
				return ""
			}
		})
	})
}

func drain(d *dropLog) string {
	l := d.take()
	if len(l) == 0 {
		return ""
	}
	return "\n" + strings.Join(l, "\n")
}

// corruptRecordForTest flips one payload byte of a stored record, bypassing
// the buffer, as bit rot the store's own checksums did not catch would.
func corruptRecordForTest(t testing.TB, b *Buffer, s Stream, q Seq) string {
	k := recordKey(s, q)
	v, closer, err := b.db.Get(k)
	if err != nil {
		return err.Error()
	}
	bad := slices.Clone(v)
	_ = closer.Close()
	bad[len(bad)-1] ^= 0xff
	if err := b.db.Set(k, bad, nil); err != nil {
		t.Fatal(err)
	}
	return "ok"
}

var _ = errors.Is
