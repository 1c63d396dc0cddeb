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
// front, so a few bytes declaring 4 GiB must be refused before decoding. The
// block headers are found through the stream's index, at its end (xz file
// format 1.1: stream header, blocks, index, stream footer).
func xzDictionary(data []byte) (int64, error) {
	const streamHeader = 12 // and the footer's size
	if len(data) < 2*streamHeader {
		return 0, errXZHeader
	}
	footer := data[len(data)-streamHeader:]
	if footer[10] != 'Y' || footer[11] != 'Z' {
		return 0, errXZHeader
	}
	indexStart := len(data) - streamHeader - (int(binary.LittleEndian.Uint32(footer[4:8]))+1)*4
	if indexStart < streamHeader || data[indexStart] != 0 {
		return 0, errXZHeader
	}
	index := data[indexStart+1 : len(data)-streamHeader]
	blocks, n := binary.Uvarint(index)
	if n <= 0 || blocks > uint64(len(index)) { // a record takes at least two bytes
		return 0, errXZHeader
	}
	index = index[n:]
	pos, dict := streamHeader, int64(0)
	for range blocks {
		unpadded, n := binary.Uvarint(index)
		if n <= 0 || unpadded > uint64(indexStart) {
			return 0, errXZHeader
		}
		index = index[n:]
		if _, n = binary.Uvarint(index); n <= 0 { // uncompressed size
			return 0, errXZHeader
		}
		index = index[n:]
		d, err := xzBlockDictionary(data[pos:indexStart])
		if err != nil {
			return 0, err
		}
		dict = max(dict, d)
		if pos += int(unpadded+3) &^ 3; pos > indexStart {
			return 0, errXZHeader
		}
	}
	return dict, nil
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
