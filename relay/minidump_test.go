package relay

import (
	"bytes"
	"errors"
	"testing"

	"github.com/ulikunitz/xz"
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
	got, err := decompressMinidump("xz", stream, 1<<30)
	if err != nil || len(got) != 28000 {
		t.Errorf("decompressMinidump = %d bytes, %v", len(got), err)
	}
	if got, err := decompressMinidump("xz", stream, 100); err != nil || len(got) != 101 {
		t.Errorf("past max: %d bytes, %v; want max+1", len(got), err)
	}
}
