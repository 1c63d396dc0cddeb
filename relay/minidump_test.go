package relay

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"runtime"
	"testing"

	"github.com/ulikunitz/xz"

	"github.com/baton-relay/baton/envelope"
	"github.com/baton-relay/baton/relay/intake"
)

// xzDictionary reads every block's dictionary, block after block as the
// decoder does, and never panics however the stream is cut or bent; a cut
// stream is refused, or read as far as its blocks go (the decoder then
// fails on the rest), never with a smaller dictionary.
func TestXZDictionary(t *testing.T) {
	var b bytes.Buffer
	w, err := xz.WriterConfig{DictCap: 1 << 20, BlockSize: 1 << 12}.NewWriter(&b)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(bytes.Repeat([]byte("MDMP minidump "), 2000)) // several blocks
	w.Close()
	stream := b.Bytes()
	if d, err := xzDictionary(stream); d != 1<<20 || err != nil {
		t.Fatalf("xzDictionary = %d, %v; want %d", d, err, 1<<20)
	}
	for i := range len(stream) {
		if d, err := xzDictionary(stream[:i]); err == nil && d != 1<<20 || err != nil && !errors.Is(err, errXZHeader) {
			t.Errorf("cut at %d: %d, %v", i, d, err)
		}
		bent := bytes.Clone(stream)
		bent[i] ^= 0xff
		xzDictionary(bent) // must not panic
	}
	budget := intake.NewBudget(64 << 20)
	s := &scratch{lease: budget.Lease()}
	got, err := s.decompressMinidump("xz", stream, 1<<30)
	if err != nil || len(got) != 28000 {
		t.Errorf("decompressMinidump = %d bytes, %v", len(got), err)
	}
	if got, err := s.decompressMinidump("xz", stream, 100); !errors.Is(err, envelope.ErrTooLarge) {
		t.Errorf("past max: %d bytes, %v; want envelope.ErrTooLarge", len(got), err)
	}
	// The dictionary and the output are charged: with a budget too small
	// for the 1 MiB dictionary, decoding refuses instead of allocating.
	small := &scratch{lease: intake.NewBudget(512 << 10).Lease()}
	if _, err := small.decompressMinidump("xz", stream, 1<<30); !errors.Is(err, intake.ErrOverBudget) || small.dumpErr == nil {
		t.Errorf("with a 512 KiB budget: err %v, dumpErr %v; want ErrOverBudget", err, small.dumpErr)
	}
	s.lease.Release()
	if budget.Used() != 0 {
		t.Errorf("used %d after release", budget.Used())
	}
}

// TestXZDictionaryNotFromIndex is a stream whose second block declares a
// 1 GiB dictionary while its index lists only the first: the decoder reads
// the blocks, not the index, so the check must too, and refuse it before
// anything is allocated.
func TestXZDictionaryNotFromIndex(t *testing.T) {
	var b bytes.Buffer
	w, err := xz.WriterConfig{DictCap: 1 << 12, BlockSize: 1 << 12}.NewWriter(&b)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(bytes.Repeat([]byte("MDMP minidump "), 2000))
	w.Close()
	stream := b.Bytes()
	// The second block's header: past the first block's header, chunks,
	// padding and CRC64 check.
	first := 12
	end, err := lzma2End(stream, first+(int(stream[first])+1)*4)
	if err != nil {
		t.Fatal(err)
	}
	second := (end+3)&^3 + 8
	size := (int(stream[second]) + 1) * 4
	h := stream[second : second+size]
	props := bytes.Index(h, []byte{0x21, 0x01}) + 2 // LZMA2 filter, one property byte
	if props < 2 {
		t.Fatalf("no LZMA2 filter in the block header % x", h)
	}
	h[props] = 36 // 1 GiB
	binary.LittleEndian.PutUint32(h[size-4:], crc32.ChecksumIEEE(h[:size-4]))

	if d, err := xzDictionary(stream); err != nil || d != 1<<30 {
		t.Fatalf("xzDictionary = %d, %v; want the second block's 1 GiB", d, err)
	}
	s := &scratch{lease: intake.NewBudget(64 << 20).Lease()}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err = s.decompressMinidump("xz", stream, 1<<30)
	runtime.ReadMemStats(&after)
	if err == nil {
		t.Fatal("a 1 GiB xz dictionary was decoded")
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 16<<20 {
		t.Fatalf("refusing it allocated %d MiB", grew>>20)
	}
}
