package buffer

import (
	"context"
	"encoding/binary"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// TestConcurrentStreams: many writers group-commit into two streams while a
// consumer drains stream 2 and stream 1 is never read (a stuck destination).
// Stream 2's consumer must see every record exactly once, in order, and
// concurrent Appends must get distinct, gap-free seqs.
func TestConcurrentStreams(t *testing.T) {
	b, err := Open("db", Options{FS: vfs.NewMem(), Logger: &testLogger{tb: t}, MemTableSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	const writers, perWriter = 8, 100
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < perWriter; i++ {
				v := binary.BigEndian.AppendUint32(nil, uint32(w<<16|i))
				// One request spans both streams: both parts land in one batch.
				if err := b.Append(context.Background(), []Entry{{Stream: 1, Value: v}, {Stream: 2, Value: v}}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	seen := make(map[uint32]bool)
	done := make(chan error, 1)
	go func() {
		var last Seq
		var dst []Record
		for len(seen) < writers*perWriter {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			var err error
			dst, err = b.Read(ctx, 2, dst, 64, 0)
			cancel()
			if err != nil {
				done <- err
				return
			}
			for _, r := range dst {
				if r.Seq != last+1 {
					done <- errors.New("stream 2: gap or reorder")
					return
				}
				last = r.Seq
				k := binary.BigEndian.Uint32(r.Value)
				if seen[k] {
					done <- errors.New("stream 2: duplicate delivery")
					return
				}
				seen[k] = true
			}
			if err := b.Ack(2, last); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	wg.Wait()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	st := b.Stats()
	if st.Streams[0].Pending != writers*perWriter || st.Streams[1].Pending != 0 || st.Streams[1].Watermark != writers*perWriter {
		t.Fatalf("stats %+v", st.Streams)
	}
	if st.Commits >= 2*writers*perWriter {
		t.Fatalf("%d commits for %d appends: no group commit", st.Commits, writers*perWriter)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestCloseUnblocks: Close wakes a blocked Read, and every method then
// reports ErrClosed.
func TestCloseUnblocks(t *testing.T) {
	b, err := Open("db", Options{FS: vfs.NewMem(), Logger: &testLogger{tb: t}})
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		_, err := b.Read(context.Background(), 7, nil, 0, 0)
		errc <- err
	}()
	// Read creates the empty stream under b.mu and holds it until it has
	// taken the channel it waits on: once the stream exists the Read is past
	// enter and can only end through Close. (Not synctest: Append pools its
	// requests, and a channel made in a bubble must not reach other tests.)
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		b.mu.Lock()
		started := b.streams[7] != nil
		b.mu.Unlock()
		if started {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Read did not start in 5s")
		}
	}
	select {
	case err := <-errc:
		t.Fatalf("Read of an empty stream returned %v before Close", err)
	default:
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; !errors.Is(err, ErrClosed) {
		t.Fatalf("blocked Read: %v", err)
	}
	if err := b.Append(context.Background(), []Entry{{Stream: 1, Value: []byte("x")}}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Append after Close: %v", err)
	}
	if b.Ready() {
		t.Fatal("closed buffer ready")
	}
	if err := b.Close(); !errors.Is(err, ErrClosed) {
		t.Fatalf("second Close: %v", err)
	}
}

// TestInspectDisk runs Inspect against a real directory.
func TestInspectDisk(t *testing.T) {
	dir := t.TempDir()
	b, err := Open(dir, Options{Logger: &testLogger{tb: t}, MaxBytes: 1 << 30})
	if err != nil {
		t.Fatal(err)
	}
	if err := appendN(t, b, 3, "r", 10); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Read(context.Background(), 3, nil, 4, 0); err != nil {
		t.Fatal(err)
	}
	if err := b.Ack(3, 4); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	ss, err := Inspect(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ss) != 1 || ss[0].Stream != 3 || ss[0].Pending != 6 || ss[0].Watermark != 4 || ss[0].NextSeq != 11 || ss[0].Oldest.IsZero() {
		t.Fatalf("inspect: %+v", ss)
	}
	if _, err := Inspect(t.TempDir() + "/missing"); err == nil {
		t.Fatal("inspect of a missing dir succeeded")
	}
}

// TestOptionsValidate rejects budgets that leave no room.
func TestOptionsValidate(t *testing.T) {
	for _, o := range []Options{
		{MaxBytes: 100, ReserveBytes: 100},
		{MaxBytes: -1},
		{MaxAge: -time.Second},
		{Durability: 7},
	} {
		o.FS = vfs.NewMem()
		if b, err := Open("db", o); err == nil {
			_ = b.Close()
			t.Fatalf("Open(%+v) succeeded", o)
		}
	}
}

// TestAckedPrefixDeleted: acked records are removed with range deletions
// (lazily, on the timer or on Close) and the store holds no record keys once
// everything is acked.
func TestAckedPrefixDeleted(t *testing.T) {
	fs := vfs.NewMem()
	opts := Options{FS: fs, Logger: &testLogger{tb: t}, MemTableSize: 256 << 10}
	b, err := Open("db", opts)
	if err != nil {
		t.Fatal(err)
	}
	val := make([]byte, 1000)
	for round := 0; round < 20; round++ {
		entries := make([]Entry, 50)
		for i := range entries {
			entries[i] = Entry{Stream: Stream(1 + i%2), Value: val}
		}
		if err := b.Append(context.Background(), entries); err != nil {
			t.Fatal(err)
		}
		for s := Stream(1); s <= 2; s++ {
			recs, err := b.Read(context.Background(), s, nil, 0, 0)
			if err != nil {
				t.Fatal(err)
			}
			if err := b.Ack(s, recs[len(recs)-1].Seq); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if b, err = Open("db", opts); err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	n := 0
	if err := scanKeys(b.db, prefixRecord, nil, func(Stream, Seq, int, []byte) { n++ }); err != nil {
		t.Fatal(err)
	}
	st := b.Stats()
	if n != 0 || st.Pending != 0 || st.PendingBytes != 0 || st.Streams[0].NextSeq != 501 {
		t.Fatalf("%d record keys left; stats %+v", n, st.Streams)
	}
}
