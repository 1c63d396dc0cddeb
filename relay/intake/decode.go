package intake

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"errors"
	"io"
	"sync"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/zstd"
)

// ErrEncoding means the Content-Encoding is not one Baton decodes
// (HTTP 400).
var ErrEncoding = errors.New("intake: unsupported content encoding")

// Encoding is a Content-Encoding Baton decodes.
type Encoding uint8

// Encodings. Old SDKs send "UTF-8" and mean identity; Relay tolerates it.
const (
	Identity Encoding = iota
	Gzip
	Deflate // zlib, as HTTP says, or a raw deflate stream, as some clients send
	Brotli
	Zstd
)

// ParseEncoding maps a Content-Encoding header value (case and surrounding
// space ignored) to an Encoding, or fails with ErrEncoding.
func ParseEncoding(v []byte) (Encoding, error) {
	v = bytes.TrimSpace(v)
	switch {
	case len(v) == 0, bytes.EqualFold(v, []byte("identity")), bytes.EqualFold(v, []byte("utf-8")):
		return Identity, nil
	case bytes.EqualFold(v, []byte("gzip")), bytes.EqualFold(v, []byte("x-gzip")):
		return Gzip, nil
	case bytes.EqualFold(v, []byte("deflate")):
		return Deflate, nil
	case bytes.EqualFold(v, []byte("br")):
		return Brotli, nil
	case bytes.EqualFold(v, []byte("zstd")):
		return Zstd, nil
	}
	return Identity, ErrEncoding
}

// Memory a decoder holds besides its window (tables, input buffer), as
// charged to the lease.
const (
	flateState = 64 << 10 // 32 KiB window, Huffman tables, bufio
	// brotliState: a 32 KiB input buffer and the Huffman tables, which a
	// meta-block header of a few bytes may ask to be 256 trees per group:
	// up to 2.6 MiB. Charged in full; held only while decoding.
	brotliState = 2816 << 10
	zstdState   = 512 << 10 // block and literal buffers
	// ZstdMaxWindow bounds the window a zstd frame may ask for: a frame
	// that declares more is refused instead of allocated.
	ZstdMaxWindow = 8 << 20
	// poolWindow is the largest window a pooled decoder may keep: the
	// pool holds decoders no lease pays for.
	poolWindow = 256 << 10
)

// Decoders whose memory is small and fixed are pooled. Brotli readers are
// not: their tables and ring stay at whatever the last stream asked for.
var (
	gzipPool sync.Pool // *gzip.Reader
	zstdPool sync.Pool // *zstd.Decoder that decoded windows ≤ poolWindow
)

// emptyReader is what a pooled decoder is reset to, so that the pool does
// not keep the last request's body alive. It is a flate.Reader, so gzip
// wraps it in no bufio.Reader; it keeps no state, so it can be shared.
var emptyReader eofReader

type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }
func (eofReader) ReadByte() (byte, error)  { return 0, io.EOF }

// Decode appends to b the decoding of src, stopping with ErrTooLarge once
// the output passes limit bytes: a compression bomb costs at most limit
// bytes, never its declared size. The decoder's own memory and every byte
// of output are reserved from l first, so decoding also stops, with
// ErrBusy or ErrOverBudget, when the request's share of the budget is
// used up. Corrupt streams fail with the decoder's error. On error b keeps
// its original length.
func Decode(b *Buf, enc Encoding, src []byte, limit int, l *Lease) error {
	if enc == Identity {
		if len(src) > limit {
			return ErrTooLarge
		}
		if err := b.Reserve(len(src), l); err != nil {
			return err
		}
		b.B = append(b.B, src...)
		return nil
	}
	var state int
	switch enc {
	case Gzip, Deflate:
		state = flateState
	case Brotli:
		state = brotliState + brotliRing(src)
	case Zstd:
		state = zstdState + zstdWindow(src)
	default:
		return ErrEncoding
	}
	if err := l.Grow(state); err != nil {
		return err
	}
	defer l.Shrink(state)

	switch enc {
	case Gzip:
		zr, _ := gzipPool.Get().(*gzip.Reader)
		var err error
		if zr == nil {
			zr, err = gzip.NewReader(bytes.NewReader(src))
		} else {
			err = zr.Reset(bytes.NewReader(src))
		}
		if err != nil {
			return err
		}
		err = Read(b, zr, -1, limit, l)
		_ = zr.Reset(emptyReader) // io.EOF: there is no header, as meant
		gzipPool.Put(zr)
		return err
	case Deflate:
		r, err := zlib.NewReader(bytes.NewReader(src))
		if err != nil {
			r = flate.NewReader(bytes.NewReader(src))
		}
		defer r.Close()
		return Read(b, r, -1, limit, l)
	case Brotli:
		return Read(b, brotli.NewReader(bytes.NewReader(src)), -1, limit, l)
	default: // Zstd
		d, _ := zstdPool.Get().(*zstd.Decoder)
		if d == nil {
			var err error
			d, err = zstd.NewReader(nil,
				zstd.WithDecoderConcurrency(1),
				zstd.WithDecoderLowmem(true),
				zstd.WithDecoderMaxWindow(ZstdMaxWindow),
				zstd.WithDecoderMaxMemory(ZstdMaxWindow))
			if err != nil {
				panic("BUG: zstd.NewReader with static options: " + err.Error())
			}
		}
		if err := d.Reset(bytes.NewReader(src)); err != nil {
			_ = d.Reset(nil)
			zstdPool.Put(d)
			return err
		}
		err := Read(b, d, -1, limit, l)
		_ = d.Reset(nil)
		if state-zstdState <= poolWindow {
			zstdPool.Put(d)
		} else {
			d.Close()
		}
		return err
	}
}

// brotliRing is what the ring buffer of a brotli decoder allocates for src,
// read from the stream header (RFC 7932 §9.1, §9.2): one ring of the
// first meta-block's size when it is the last, else rings growing up to
// the window. A header it cannot read is charged the largest window.
func brotliRing(src []byte) int {
	const largest = 2 << 24
	var br bitReader
	br.b = src
	wbits := 16
	if bit, ok := br.read(1); !ok {
		return largest
	} else if bit == 1 {
		n, ok := br.read(3)
		switch {
		case !ok:
			return largest
		case n != 0:
			wbits = 17 + int(n)
		default:
			m, ok := br.read(3)
			switch {
			case !ok, m == 1: // 1 is the large-window extension: refused by the decoder
				return largest
			case m == 0:
				wbits = 17
			default:
				wbits = 8 + int(m)
			}
		}
	}
	// A ring that grows meta-block by meta-block up to the window leaves
	// its smaller predecessors behind: twice the window in all.
	window := 1 << wbits
	last, ok := br.read(1)
	if !ok || last == 0 {
		return 2 * window
	}
	if empty, ok := br.read(1); !ok || empty == 1 {
		return 1 << 10
	}
	nibbles, ok := br.read(2)
	if !ok || nibbles == 3 { // a metadata block: rare, charge the window
		return 2 * window
	}
	mlen, ok := br.read(4 * (4 + int(nibbles)))
	if !ok {
		return 2 * window
	}
	ring := 1 << 10
	for ring < int(mlen)+1 && ring < window {
		ring <<= 1
	}
	return ring
}

// bitReader reads a brotli stream's bits, least significant first.
type bitReader struct {
	b   []byte
	off int // in bits
}

func (r *bitReader) read(n int) (uint64, bool) {
	var v uint64
	for i := range n {
		byteAt := r.off >> 3
		if byteAt >= len(r.b) {
			return 0, false
		}
		v |= uint64(r.b[byteAt]>>(r.off&7)&1) << i
		r.off++
	}
	return v, true
}

// zstdWindow is the largest window the frames of src declare (a
// single-segment frame's window is its content size), capped at
// ZstdMaxWindow, which the decoder enforces. Frames it cannot walk are
// charged ZstdMaxWindow.
func zstdWindow(src []byte) int {
	var window uint64
	for len(src) > 0 {
		var h zstd.Header
		rest, err := h.DecodeAndStrip(src)
		if err != nil {
			return ZstdMaxWindow
		}
		if h.Skippable {
			if uint64(len(rest)) < uint64(h.SkippableSize) {
				return ZstdMaxWindow
			}
			src = rest[h.SkippableSize:]
			continue
		}
		w := h.WindowSize
		if h.SingleSegment {
			w = h.FrameContentSize
		}
		window = max(window, w)
		if window >= ZstdMaxWindow {
			return ZstdMaxWindow
		}
		// Walk the blocks to the next frame (RFC 8878 §3.1.1.2).
		for last := false; !last; {
			if len(rest) < 3 {
				return ZstdMaxWindow
			}
			bh := uint32(rest[0]) | uint32(rest[1])<<8 | uint32(rest[2])<<16
			last = bh&1 != 0
			size := int(bh >> 3)
			switch bh >> 1 & 3 {
			case 1: // RLE: one byte, repeated
				size = 1
			case 3: // reserved
				return ZstdMaxWindow
			}
			if len(rest) < 3+size {
				return ZstdMaxWindow
			}
			rest = rest[3+size:]
		}
		if h.HasCheckSum {
			if len(rest) < 4 {
				return ZstdMaxWindow
			}
			rest = rest[4:]
		}
		src = rest
	}
	return int(window)
}
