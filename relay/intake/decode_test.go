package intake

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"errors"
	"io"
	"runtime"
	"strings"
	"testing"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/zstd"
)

func compress(t testing.TB, enc Encoding, plain []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	var w io.WriteCloser
	switch enc {
	case Identity:
		return plain
	case Gzip:
		w = gzip.NewWriter(&buf)
	case Deflate:
		w = zlib.NewWriter(&buf)
	case Brotli:
		w = brotli.NewWriterOptions(&buf, brotli.WriterOptions{Quality: 11, LGWin: 22}) // sentry-python's
	case Zstd:
		zw, err := zstd.NewWriter(&buf)
		if err != nil {
			t.Fatal(err)
		}
		w = zw
	}
	if _, err := w.Write(plain); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

var encodings = []struct {
	name string
	enc  Encoding
}{{"identity", Identity}, {"gzip", Gzip}, {"deflate", Deflate}, {"br", Brotli}, {"zstd", Zstd}}

func TestDecodeRoundTrip(t *testing.T) {
	plain := bytes.Repeat([]byte("0123456789abcdef"), 4096) // 64 KiB
	b := NewBudget(64 << 20)
	for _, e := range encodings {
		t.Run(e.name, func(t *testing.T) {
			src := compress(t, e.enc, plain)
			l := b.Lease()
			defer l.Release()
			var out Buf
			if err := Decode(&out, e.enc, src, len(plain), &l); err != nil || !bytes.Equal(out.B, plain) {
				t.Fatalf("err %v, %d bytes", err, len(out.B))
			}
			out = Buf{B: []byte("kept")}
			if err := Decode(&out, e.enc, src, len(plain)-1, &l); !errors.Is(err, ErrTooLarge) {
				t.Fatalf("one byte over the limit: err %v", err)
			}
			if string(out.B) != "kept" {
				t.Fatalf("a failed Decode left %q", out.B)
			}
		})
	}
	raw := flate.NewWriter
	var buf bytes.Buffer
	fw, _ := raw(&buf, flate.BestSpeed)
	fw.Write(plain)
	fw.Close()
	l := b.Lease()
	var out Buf
	if err := Decode(&out, Deflate, buf.Bytes(), len(plain), &l); err != nil || !bytes.Equal(out.B, plain) {
		t.Fatalf("raw deflate, as some clients send it: err %v", err)
	}
}

func TestParseEncoding(t *testing.T) {
	for in, want := range map[string]Encoding{
		"": Identity, "identity": Identity, "UTF-8": Identity, " gzip ": Gzip, "x-gzip": Gzip,
		"Deflate": Deflate, "br": Brotli, "ZSTD": Zstd,
	} {
		if got, err := ParseEncoding([]byte(in)); err != nil || got != want {
			t.Errorf("%q: %v, %v", in, got, err)
		}
	}
	if _, err := ParseEncoding([]byte("lzma")); !errors.Is(err, ErrEncoding) {
		t.Errorf("lzma: %v", err)
	}
}

func TestDecodeCorrupt(t *testing.T) {
	b := NewBudget(64 << 20)
	for _, e := range encodings[1:] {
		l := b.Lease()
		var out Buf
		if err := Decode(&out, e.enc, []byte("this is not compressed at all"), 1<<20, &l); err == nil {
			t.Errorf("%s: garbage decoded to %q", e.name, out.B)
		}
		l.Release()
	}
	if b.Used() != 0 {
		t.Fatalf("failed decodes leaked %d bytes of budget", b.Used())
	}
}

// bomb is 32 MiB of zeros, compressed: sixteen times the limits below.
func bomb(t testing.TB, enc Encoding) []byte {
	t.Helper()
	var buf bytes.Buffer
	var w io.WriteCloser
	switch enc {
	case Gzip:
		w, _ = gzip.NewWriterLevel(&buf, gzip.BestCompression)
	case Deflate:
		w, _ = zlib.NewWriterLevel(&buf, zlib.BestCompression)
	case Brotli:
		// The largest standard window: the decoder's ring buffer is 16 MiB.
		w = brotli.NewWriterOptions(&buf, brotli.WriterOptions{Quality: 1, LGWin: 24})
	case Zstd:
		zw, err := zstd.NewWriter(&buf, zstd.WithWindowSize(ZstdMaxWindow), zstd.WithEncoderLevel(zstd.SpeedFastest))
		if err != nil {
			t.Fatal(err)
		}
		w = zw
	}
	zeros := make([]byte, 1<<20)
	for range 32 {
		if _, err := w.Write(zeros); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestBombCostsWhatItIsCharged decodes compression bombs and checks, with
// the runtime's own allocation counter, that decoding allocated no more
// than the lease was charged for: the decoder's state (a 16 MiB brotli ring
// buffer, an 8 MiB zstd window) is charged before it is allocated.
func TestBombCostsWhatItIsCharged(t *testing.T) {
	for _, e := range encodings[1:] {
		t.Run(e.name, func(t *testing.T) {
			src := bomb(t, e.enc)
			const limit = 2 << 20
			b := NewBudget(256 << 20)
			l := b.Lease()
			var out Buf
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			err := Decode(&out, e.enc, src, limit, &l)
			runtime.ReadMemStats(&after)
			if !errors.Is(err, ErrTooLarge) {
				t.Fatalf("a 32 MiB bomb under a 2 MiB limit: err %v", err)
			}
			allocated := int64(after.TotalAlloc - before.TotalAlloc)
			// Output arrays grow 1.5× at a time, each charged while alive:
			// all of them together are at most 3× the largest.
			if slack := 2*int64(limit) + 1<<20; allocated > b.Peak()+slack {
				t.Fatalf("decoding allocated %d bytes, but at most %d were charged (+%d slack)", allocated, b.Peak(), slack)
			}
			l.Release()
			if b.Used() != 0 {
				t.Fatalf("used %d after release", b.Used())
			}
			t.Logf("%s: %d compressed bytes; allocated %d, peak charge %d", e.name, len(src), allocated, b.Peak())
		})
	}
}

// TestBombStopsAtTheRequestsShare: with no size limit to speak of, decoding
// stops when the request's share of the budget is used up.
func TestBombStopsAtTheRequestsShare(t *testing.T) {
	src := bomb(t, Gzip)
	b := NewBudget(16 << 20)
	l := b.Lease()
	var out Buf
	if err := Decode(&out, Gzip, src, 1<<30, &l); !errors.Is(err, ErrOverBudget) {
		t.Fatalf("err %v, want ErrOverBudget", err)
	}
	l.Release()

	other := b.Lease()
	if err := other.Grow(10 << 20); err != nil {
		t.Fatal(err)
	}
	l = b.Lease()
	if err := Decode(&out, Gzip, src, 1<<30, &l); !errors.Is(err, ErrBusy) {
		t.Fatalf("with the budget held by another request: err %v, want ErrBusy", err)
	}
}

func TestBrotliRing(t *testing.T) {
	for _, c := range []struct {
		lgwin, size int
	}{{22, 100}, {22, 5000}, {22, 3 << 20}, {16, 100}, {24, 100}, {24, 20 << 20}, {10, 100}} {
		plain := []byte(strings.Repeat("x", c.size))
		var buf bytes.Buffer
		w := brotli.NewWriterOptions(&buf, brotli.WriterOptions{Quality: 5, LGWin: c.lgwin})
		w.Write(plain)
		w.Close()
		ring := brotliRing(buf.Bytes())
		window := 1 << c.lgwin
		if ring > 2*window || ring < min(window, c.size) {
			t.Errorf("lgwin %d, %d bytes: ring %d", c.lgwin, c.size, ring)
		}
	}
	if brotliRing(nil) != 2<<24 {
		t.Errorf("an empty stream must be charged the largest window")
	}
}

func TestZstdWindow(t *testing.T) {
	small, _ := zstd.NewWriter(nil)
	one := small.EncodeAll([]byte("hello, hello, hello"), nil)
	if w := zstdWindow(one); w > 1024 {
		t.Errorf("a frame of 19 bytes: window %d", w)
	}
	two := small.EncodeAll(bytes.Repeat([]byte("a"), 50000), one)
	if w := zstdWindow(two); w < 50000 || w > 64<<10 {
		t.Errorf("two frames: window %d, want the larger frame's", w)
	}
	var buf bytes.Buffer
	zw, _ := zstd.NewWriter(&buf, zstd.WithWindowSize(1<<20))
	zw.Write(bytes.Repeat([]byte("abc"), 1<<20))
	zw.Close()
	if w := zstdWindow(buf.Bytes()); w != 1<<20 {
		t.Errorf("streamed frame with a 1 MiB window: %d", w)
	}
	if w := zstdWindow(buf.Bytes()[:buf.Len()-10]); w != ZstdMaxWindow {
		t.Errorf("truncated frame: %d, want the largest window", w)
	}
	if w := zstdWindow([]byte("nope")); w != ZstdMaxWindow {
		t.Errorf("not zstd: %d", w)
	}
}

// BenchmarkDecode is the per-request cost of a compressed 5 KB envelope:
// decoder, output and the budget's bookkeeping, with pooled buffers.
func BenchmarkDecode(b *testing.B) {
	plain := bytes.Repeat([]byte(`{"message":"TypeError: x is undefined","level":"error"},`), 90) // ~5 KB
	budget := NewBudget(64 << 20)
	for _, e := range encodings {
		src := compress(b, e.enc, plain)
		b.Run(e.name, func(b *testing.B) {
			var out Buf
			b.SetBytes(int64(len(plain)))
			b.ReportAllocs()
			for b.Loop() {
				l := budget.Lease()
				out.B = out.B[:0]
				if err := Decode(&out, e.enc, src, 1<<20, &l); err != nil {
					b.Fatal(err)
				}
				l.Release()
				out.Recycle(SmallRequest)
			}
		})
	}
}
