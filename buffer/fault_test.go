package buffer

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
)

// walFaults injects errorfs.ErrInjected into WAL writes or syncs while on.
type walFaults struct {
	on   atomic.Bool
	kind errorfs.OpKind
	hits atomic.Int64
}

func (w *walFaults) String() string { return "wal-faults" }
func (w *walFaults) MaybeError(op errorfs.Op) error {
	if !w.on.Load() || !strings.HasSuffix(op.Path, ".log") {
		return nil
	}
	k := op.Kind
	if k == w.kind || (w.kind == errorfs.OpFileSync && (k == errorfs.OpFileSyncData || k == errorfs.OpFileSyncTo)) {
		w.hits.Add(1)
		return errorfs.ErrInjected
	}
	return nil
}

func appendN(t *testing.T, b *Buffer, s Stream, prefix string, n int) error {
	t.Helper()
	for i := 0; i < n; i++ {
		if err := b.Append(context.Background(), []Entry{{Stream: s, Value: fmt.Appendf(nil, "%s-%d", prefix, i)}}); err != nil {
			return err
		}
	}
	return nil
}

func readAll(t *testing.T, b *Buffer, s Stream) []string {
	t.Helper()
	var out []string
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		recs, err := b.Read(ctx, s, nil, 0, 0)
		cancel()
		if errors.Is(err, context.DeadlineExceeded) {
			return out
		}
		if err != nil {
			t.Fatalf("read stream %d: %v", s, err)
		}
		for _, r := range recs {
			out = append(out, string(r.Value))
		}
	}
}

// TestFaultWAL injects WAL write and sync errors: Append must fail (never a
// false success), the Buffer must then refuse work, and after a crash and
// reopen every record acked before the fault must be there.
func TestFaultWAL(t *testing.T) {
	for _, kind := range []errorfs.OpKind{errorfs.OpFileWrite, errorfs.OpFileSync} {
		for _, crash := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/crash=%t", map[errorfs.OpKind]string{errorfs.OpFileWrite: "write", errorfs.OpFileSync: "sync"}[kind], crash), func(t *testing.T) {
				mem := vfs.NewCrashableMem()
				faults := &walFaults{kind: kind}
				log := &testLogger{tb: t}
				opts := Options{FS: errorfs.Wrap(mem, faults), Logger: log, MemTableSize: 1 << 20}
				b, err := Open("db", opts)
				if err != nil {
					t.Fatal(err)
				}
				if err := appendN(t, b, 1, "ok", 20); err != nil {
					t.Fatal(err)
				}
				// Ack some, so the watermark is part of what must survive.
				recs, err := b.Read(context.Background(), 1, nil, 5, 0)
				if err != nil || len(recs) != 5 {
					t.Fatalf("read: %d records, %v", len(recs), err)
				}
				if err := b.Ack(1, recs[4].Seq); err != nil {
					t.Fatal(err)
				}
				if err := appendN(t, b, 1, "ok2", 1); err != nil { // syncs the ack
					t.Fatal(err)
				}

				blocked := make(chan error, 1)
				go func() {
					_, err := b.Read(context.Background(), 9, nil, 0, 0)
					blocked <- err
				}()
				faults.on.Store(true)
				err = b.Append(context.Background(), []Entry{{Stream: 1, Value: []byte("doomed")}})
				if !errors.Is(err, ErrFailed) {
					t.Fatalf("append under %v: got %v, want ErrFailed", kind, err)
				}
				if faults.hits.Load() == 0 {
					t.Fatal("no fault was injected")
				}
				if b.Ready() || !b.Stats().Failed {
					t.Fatal("failed buffer reports ready")
				}
				if err := b.Append(context.Background(), []Entry{{Stream: 2, Value: []byte("x")}}); !errors.Is(err, ErrFailed) {
					t.Fatalf("append after failure: %v, want ErrFailed", err)
				}
				if _, err := b.Read(context.Background(), 1, nil, 0, 0); !errors.Is(err, ErrFailed) {
					t.Fatalf("read after failure: %v, want ErrFailed", err)
				}
				if err := <-blocked; !errors.Is(err, ErrFailed) {
					t.Fatalf("blocked read after failure: %v, want ErrFailed", err)
				}
				var fs vfs.FS = mem
				if crash {
					fs = mem.CrashClone(vfs.CrashCloneCfg{})
				}
				_ = b.Close() // may report the WAL error
				faults.on.Store(false)

				opts.FS = fs
				b, err = Open("db", opts)
				if err != nil {
					t.Fatalf("reopen: %v", err)
				}
				defer b.Close()
				got := readAll(t, b, 1)
				var want []string
				for i := 5; i < 20; i++ {
					want = append(want, fmt.Sprintf("ok-%d", i))
				}
				want = append(want, "ok2-0")
				if len(got) > 0 && got[len(got)-1] == "doomed" {
					got = got[:len(got)-1] // never acked; allowed to survive
				}
				if strings.Join(got, ",") != strings.Join(want, ",") {
					t.Fatalf("after reopen read\n%v\nwant\n%v", got, want)
				}
				if err := appendN(t, b, 1, "after", 3); err != nil {
					t.Fatalf("append after reopen: %v", err)
				}
			})
		}
	}
}

// TestFaultOpen checks that a store that cannot be opened fails Open with a
// wrapped error instead of panicking or half-opening.
func TestFaultOpen(t *testing.T) {
	mem := vfs.NewMem()
	inj := errorfs.InjectorFunc(func(op errorfs.Op) error {
		if op.Kind == errorfs.OpLock {
			return errorfs.ErrInjected
		}
		return nil
	})
	_, err := Open("db", Options{FS: errorfs.Wrap(mem, inj), Logger: &testLogger{tb: t}})
	if !errors.Is(err, errorfs.ErrInjected) || !strings.Contains(err.Error(), "buffer: open db") {
		t.Fatalf("Open: %v", err)
	}
}

// TestDiskFreeReserve: a filesystem with less free space than the reserve
// makes the buffer full even though the budget has room.
func TestDiskFreeReserve(t *testing.T) {
	mem := vfs.NewMem()
	mem.TestingSetDiskUsage(vfs.DiskUsage{AvailBytes: 100, TotalBytes: 1 << 30})
	b, err := Open("db", Options{FS: mem, Logger: &testLogger{tb: t}, MaxBytes: 1 << 20, ReserveBytes: 1 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if b.Ready() {
		t.Fatal("ready with 100 bytes free")
	}
	if err := appendN(t, b, 1, "x", 1); !errors.Is(err, ErrFull) {
		t.Fatalf("append with no free space: %v", err)
	}
	mem.TestingSetDiskUsage(vfs.DiskUsage{AvailBytes: 1 << 30, TotalBytes: 1 << 30})
	deadline := time.Now().Add(5 * time.Second)
	for !b.Ready() {
		if time.Now().After(deadline) {
			t.Fatal("not ready after space was freed")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := appendN(t, b, 1, "x", 1); err != nil {
		t.Fatal(err)
	}
}
