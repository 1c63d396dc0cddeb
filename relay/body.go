package relay

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

var (
	errBodyTooLarge = errors.New("request body exceeds the size limit")
	errBadEncoding  = errors.New("unsupported content encoding")
)

// zstdWindow bounds the memory a zstd stream may ask for: a frame that
// declares a larger window is refused instead of allocated.
const zstdWindow = 8 << 20

var zstdPool = sync.Pool{New: func() any {
	d, err := zstd.NewReader(nil,
		zstd.WithDecoderConcurrency(1),
		zstd.WithDecoderLowmem(true),
		zstd.WithDecoderMaxWindow(zstdWindow),
		zstd.WithDecoderMaxMemory(zstdWindow))
	if err != nil {
		panic("BUG: zstd.NewReader with static options: " + err.Error())
	}
	return d
}}

// decodeBody undoes Content-Encoding, appending the decoded bytes to dst.
// Decoding stops as soon as the output passes limit: a compression bomb costs
// at most limit bytes of memory, never its declared size. Unknown encodings
// are errBadEncoding; corrupt streams are returned as they come.
func decodeBody(dst []byte, encoding []byte, body []byte, limit int) ([]byte, error) {
	var r io.Reader
	switch string(bytes.ToLower(bytes.TrimSpace(encoding))) {
	case "", "identity", "utf-8": // old SDKs send UTF-8 and mean identity (Relay tolerates it)
		if len(body) > limit {
			return dst, errBodyTooLarge
		}
		return append(dst, body...), nil
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			return dst, err
		}
		r = zr
	case "deflate":
		// HTTP "deflate" is a zlib stream; some clients send raw deflate.
		zr, err := zlib.NewReader(bytes.NewReader(body))
		if err != nil {
			r = flate.NewReader(bytes.NewReader(body))
		} else {
			r = zr
		}
	case "br":
		r = brotli.NewReader(bytes.NewReader(body))
	case "zstd":
		d := zstdPool.Get().(*zstd.Decoder)
		defer func() {
			_ = d.Reset(nil)
			zstdPool.Put(d)
		}()
		if err := d.Reset(bytes.NewReader(body)); err != nil {
			return dst, err
		}
		r = d
	default:
		return dst, errBadEncoding
	}
	return readLimited(dst, r, limit)
}

// readLimited appends r to dst, failing with errBodyTooLarge past limit.
func readLimited(dst []byte, r io.Reader, limit int) ([]byte, error) {
	start := len(dst)
	for {
		if len(dst) == cap(dst) {
			dst = append(dst, 0)[:len(dst)]
		}
		room := cap(dst) - len(dst)
		if over := len(dst) - start + room - (limit + 1); over > 0 {
			room -= over
		}
		n, err := r.Read(dst[len(dst) : len(dst)+room])
		dst = dst[:len(dst)+n]
		if len(dst)-start > limit {
			return dst[:start], errBodyTooLarge
		}
		if err == io.EOF {
			return dst, nil
		}
		if err != nil {
			return dst[:start], err
		}
	}
}
