package buffer

import (
	"context"
	"encoding/binary"
	"hash/crc32"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// TestOpenWeighsOldMetas: a stream whose meta predates weights (version 1)
// is weighed once at Open from its pending records and written back; a
// stream whose meta is lost is rebuilt with its weight; a stream with a
// current meta is not read at all.
func TestOpenWeighsOldMetas(t *testing.T) {
	fs := vfs.NewMem()
	weigh := func(v []byte) int64 { return int64(v[0]) }
	opts := Options{FS: fs, Logger: &testLogger{tb: t}, Weigh: weigh, MemTableSize: 1 << 20}
	b, err := Open("db", opts)
	if err != nil {
		t.Fatal(err)
	}
	var entries []Entry
	for i := range 30 {
		entries = append(entries, Entry{Stream: Stream(1 + i%3), Value: []byte{byte(i), 'x'}})
	}
	if err := b.Append(context.Background(), entries); err != nil {
		t.Fatal(err)
	}
	recs, err := b.Read(context.Background(), 1, nil, 4, 0)
	if err != nil || len(recs) != 4 {
		t.Fatalf("read: %d records, %v", len(recs), err)
	}
	if err := b.Ack(1, recs[3].Seq); err != nil {
		t.Fatal(err)
	}
	want := map[Stream]int64{}
	for _, ss := range b.Stats().Streams {
		want[ss.Stream] = ss.PendingWeight
	}
	// Stream i+1 holds values i, i+3, ...; stream 1 lost 0, 3, 6, 9 to the ack.
	if want[1] != 12+15+18+21+24+27 || want[2] != 145 || want[3] != 155 {
		t.Fatalf("pending weights %v", want)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}

	// Stream 1's meta becomes version 1; stream 2's is lost.
	db, err := pebble.Open("db", &pebble.Options{FS: fs, Logger: &testLogger{tb: t}})
	if err != nil {
		t.Fatal(err)
	}
	v, closer, err := db.Get(metaKey(1))
	if err != nil {
		t.Fatal(err)
	}
	var m meta
	if ok, weighed := m.decode(v); !ok || !weighed {
		t.Fatalf("meta of stream 1 does not decode as version 2")
	}
	closer.Close()
	old := []byte{metaVersionV1}
	for _, u := range []uint64{uint64(m.Watermark), uint64(m.Next), uint64(m.AppendedCount), uint64(m.AppendedBytes), uint64(m.RemovedCount), uint64(m.RemovedBytes)} {
		old = binary.BigEndian.AppendUint64(old, u)
	}
	old = binary.BigEndian.AppendUint32(old, crc32.Checksum(old, castagnoli))
	if err := db.Set(metaKey(1), old, pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if err := db.Delete(metaKey(2), pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	for range 2 { // the second Open finds the weighed metas written back
		b, err = Open("db", opts)
		if err != nil {
			t.Fatal(err)
		}
		for _, ss := range b.Stats().Streams {
			if ss.PendingWeight != want[ss.Stream] {
				t.Errorf("stream %d: pending weight %d after reopen, want %d", ss.Stream, ss.PendingWeight, want[ss.Stream])
			}
		}
		v, closer, err := b.db.Get(metaKey(1))
		if err != nil {
			t.Fatal(err)
		}
		if _, weighed := m.decode(v); !weighed {
			t.Error("stream 1's meta was not written back as version 2")
		}
		closer.Close()
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
