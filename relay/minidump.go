package relay

import (
	"bytes"
	"compress/bzip2"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/ulikunitz/xz"
	"github.com/ulikunitz/xz/lzma"

	"github.com/baton-relay/baton/envelope"
	"github.com/baton-relay/baton/relay/intake"
)

// minidumpOptions are the minidump endpoint's conversion options for the
// request of s: the configured limits (limits.max_attachment_size also
// bounds a minidump once decompressed) and a decoder for every compression
// container, which charges the request's lease for its state and output
// like a Content-Encoding: a minidump bomb is bounded by the body budget.
func (r *Relay) minidumpOptions(s *scratch) *envelope.MinidumpOptions {
	s.dumpErr = nil
	return &envelope.MinidumpOptions{Limits: &r.limits, Decompress: s.decompressMinidump}
}

// Decoder state charged to the lease, besides what intake charges itself.
const (
	// bzip2State: Go's decoder keeps a 900k-entry uint32 table for the
	// largest block size, and its buffers.
	bzip2State = 4 << 20
	// minidumpMaxDict is xz's largest preset dictionary (-9).
	minidumpMaxDict = 64 << 20
)

var errXZHeader = errors.New("not a well-formed single xz stream")

// decompressMinidump is MinidumpOptions.Decompress: it decodes a container
// into s.dump, at most max bytes (envelope.ErrTooLarge past them). A failure
// of the budget is kept in s.dumpErr so the endpoint answers it as such
// (503 or 413) rather than as a malformed upload.
func (s *scratch) decompressMinidump(format string, data []byte, max int) ([]byte, error) {
	s.dump.B = s.dump.B[:0]
	var err error
	switch format {
	case "gzip":
		err = intake.Decode(&s.dump, intake.Gzip, data, max, &s.lease)
	case "zlib":
		err = intake.Decode(&s.dump, intake.Deflate, data, max, &s.lease)
	case "zstd":
		err = intake.Decode(&s.dump, intake.Zstd, data, max, &s.lease)
	case "bzip2":
		err = s.decodeWith(bzip2State, bzip2.NewReader(bytes.NewReader(data)), max)
	case "xz":
		dict, derr := xzDictionary(data)
		if derr != nil {
			return nil, derr
		}
		if dict > minidumpMaxDict {
			return nil, fmt.Errorf("xz dictionary of %d bytes is over the %d bytes Baton decodes", dict, minidumpMaxDict)
		}
		// DictCap is a floor on the dictionary allocated; the stream's own
		// size, checked above, is the real one.
		xr, xerr := xz.ReaderConfig{DictCap: lzma.MinDictCap, SingleStream: true}.NewReader(bytes.NewReader(data))
		if xerr != nil {
			return nil, xerr
		}
		err = s.decodeWith(int(dict), xr, max)
	default:
		return nil, fmt.Errorf("no decoder for %s", format)
	}
	switch {
	case err == nil:
		// The envelope copies the minidump out of s.dump.
		if err = s.lease.Grow(len(s.dump.B)); err == nil {
			return s.dump.B, nil
		}
		s.dumpErr = err
	case s.dumpErr != nil:
	case errors.Is(err, intake.ErrTooLarge):
		return nil, envelope.ErrTooLarge
	case errors.Is(err, intake.ErrBusy), errors.Is(err, intake.ErrOverBudget):
		s.dumpErr = err
	}
	return nil, err
}

// decodeWith reads r into s.dump against the lease, which first pays state
// bytes for the decoder itself.
func (s *scratch) decodeWith(state int, r io.Reader, max int) error {
	if err := s.lease.Grow(state); err != nil {
		return err
	}
	defer s.lease.Shrink(state)
	return intake.Read(&s.dump, r, -1, max, &s.lease)
}

// xzDictionary returns the largest LZMA2 dictionary that a block of the xz
// stream in data declares. The decoder allocates each block's dictionary up
// front, so a few bytes declaring 4 GiB must be refused before decoding.
// The blocks are walked as the decoder walks them, one after another (xz
// file format 1.2: stream header, then per block its header, LZMA2 chunks
// up to the end marker, padding to four bytes and the check; then the
// index), never through the index, which the decoder checks only at the
// end.
func xzDictionary(data []byte) (int64, error) {
	const streamHeader = 12
	if len(data) < streamHeader || data[6] != 0 {
		return 0, errXZHeader
	}
	var check int
	switch data[7] & 0x0f {
	case 0x00:
	case 0x01:
		check = 4
	case 0x04:
		check = 8
	case 0x0a:
		check = 32
	default:
		return 0, errXZHeader
	}
	pos, dict := streamHeader, int64(0)
	for {
		if pos >= len(data) {
			return 0, errXZHeader
		}
		if data[pos] == 0 { // the index: no more blocks
			return dict, nil
		}
		d, err := xzBlockDictionary(data[pos:])
		if err != nil {
			return 0, err
		}
		dict = max(dict, d)
		pos += (int(data[pos]) + 1) * 4
		if pos, err = lzma2End(data, pos); err != nil {
			return 0, err
		}
		pos = (pos+3)&^3 + check
	}
}

// lzma2End returns the offset just past the LZMA2 chunks that start at
// data[pos]: each chunk's header gives its size, so they are walked
// without decoding (LZMA2: control byte 0 ends, 1 and 2 are uncompressed
// chunks, 0x80 and up compressed ones).
func lzma2End(data []byte, pos int) (int, error) {
	for {
		if pos >= len(data) {
			return 0, errXZHeader
		}
		c := data[pos]
		switch {
		case c == 0:
			return pos + 1, nil
		case c == 1 || c == 2:
			if pos+3 > len(data) {
				return 0, errXZHeader
			}
			pos += 3 + int(data[pos+1])<<8 + int(data[pos+2]) + 1
		case c >= 0x80:
			head := 5
			if c >= 0xc0 { // a new properties byte follows
				head = 6
			}
			if pos+head > len(data) {
				return 0, errXZHeader
			}
			pos += head + int(data[pos+3])<<8 + int(data[pos+4]) + 1
		default:
			return 0, errXZHeader
		}
	}
}

// xzBlockDictionary reads the LZMA2 dictionary size from the block header
// at the start of b.
func xzBlockDictionary(b []byte) (int64, error) {
	if len(b) < 2 || b[0] == 0 || (int(b[0])+1)*4 > len(b) {
		return 0, errXZHeader
	}
	h := b[2 : (int(b[0])+1)*4]
	flags := b[1]
	for _, present := range []bool{flags&0x40 != 0, flags&0x80 != 0} { // compressed, uncompressed size
		if present {
			_, n := binary.Uvarint(h)
			if n <= 0 {
				return 0, errXZHeader
			}
			h = h[n:]
		}
	}
	var dict int64
	for range int(flags&3) + 1 {
		id, n := binary.Uvarint(h)
		if n <= 0 {
			return 0, errXZHeader
		}
		h = h[n:]
		size, n := binary.Uvarint(h)
		if n <= 0 || size > uint64(len(h)-n) {
			return 0, errXZHeader
		}
		props := h[n : n+int(size)]
		h = h[n+int(size):]
		if id == 0x21 { // LZMA2: one byte, the dictionary size code
			if len(props) != 1 {
				return 0, errXZHeader
			}
			d, err := lzma.DecodeDictCap(props[0])
			if err != nil {
				return 0, fmt.Errorf("%w: %w", errXZHeader, err)
			}
			dict = max(dict, d)
		}
	}
	return dict, nil
}
