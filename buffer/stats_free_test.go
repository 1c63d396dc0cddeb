package buffer

import "testing"

// TestStatsFreeBytes checks that Stats reports the filesystem's free space
// (the status page and baton_buffer_free_bytes show it).
func TestStatsFreeBytes(t *testing.T) {
	b, err := Open(t.TempDir(), Options{Logger: &testLogger{tb: t}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if s := b.Stats(); s.FreeBytes == 0 {
		t.Errorf("FreeBytes 0 on a real directory: %+v", s)
	}
}
