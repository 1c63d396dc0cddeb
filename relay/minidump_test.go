package relay

import (
	"bytes"
	"errors"
	"testing"

	"github.com/ulikunitz/xz"

	"github.com/baton-relay/baton/envelope"
	"github.com/baton-relay/baton/relay/intake"
)

// xzDictionary reads every block's dictionary through the index, and
// rejects what is not a well-formed stream without panicking, however it
// is cut or bent.
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
		if _, err := xzDictionary(stream[:i]); !errors.Is(err, errXZHeader) {
			t.Errorf("cut at %d: err = %v, want errXZHeader", i, err)
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
