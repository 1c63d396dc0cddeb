package buffer

import (
	"context"
	"fmt"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// Peek reads a range of a stream without moving the cursor or the
// watermark, and sees only what is still stored.
func TestPeek(t *testing.T) {
	b, err := Open("db", Options{FS: vfs.NewMem(), MemTableSize: 256 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx := context.Background()
	var es []Entry
	for i := range 5 {
		es = append(es, Entry{Stream: 1, Value: fmt.Appendf(nil, "r%d", i)})
	}
	if err := b.Append(ctx, es); err != nil {
		t.Fatal(err)
	}
	got, err := b.Peek(1, 2, 4, nil)
	if err != nil || len(got) != 3 || string(got[0].Value) != "r1" || got[0].Seq != 2 || string(got[2].Value) != "r3" {
		t.Fatalf("Peek(2..4) = %v, %v; want r1..r3 at seqs 2..4", got, err)
	}
	recs, err := b.Read(ctx, 1, nil, 0, 0)
	if err != nil || len(recs) != 5 {
		t.Fatalf("Read after Peek: %d records, %v; want all 5 (Peek moved no cursor)", len(recs), err)
	}
	if err := b.Move(ctx, nil, 1, 3); err != nil {
		t.Fatal(err)
	}
	if got, _ := b.Peek(1, 1, 5, got); len(got) != 2 || string(got[0].Value) != "r3" {
		t.Errorf("Peek after acking 1..3 = %v, want r3 and r4", got)
	}
	if got, _ := b.Peek(1, 5, 4, got); len(got) != 0 {
		t.Errorf("empty range: %v", got)
	}
}
