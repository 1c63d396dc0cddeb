package relay

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
	"github.com/ulikunitz/xz/lzma"

	"github.com/baton-relay/baton/envelope"
)

// minidumpOptions are the minidump endpoint's conversion options: the
// configured limits (limits.max_attachment_size also bounds a minidump once
// decompressed) and decoders for the containers the envelope package, being
// standard-library only, leaves to its caller. gzip, zlib and bzip2 it reads
// itself with the standard library.
func (r *Relay) minidumpOptions() *envelope.MinidumpOptions {
	return &envelope.MinidumpOptions{Limits: &r.limits, Decompress: decompressMinidump}
}

// Bounds on what a compressed minidump may make the decoder allocate before
// it produced a byte: the window (zstd) or dictionary (xz) its header
// declares. The output itself is bounded by the hook's max.
const (
	// minidumpMaxWindow is zstd's largest window at standard levels
	// (level 22: windowLog 27).
	minidumpMaxWindow = 128 << 20
	// minidumpMaxDict is xz's largest preset dictionary (-9).
	minidumpMaxDict = 64 << 20
)

var errXZHeader = errors.New("not a well-formed single xz stream")

// decompressMinidump is MinidumpOptions.Decompress: it decodes a zstd or xz
// container and returns at most max+1 bytes, stopping there; the caller
// refuses anything over max (413), so a bomb costs at most max+1 bytes of
// output.
func decompressMinidump(format string, data []byte, max int) ([]byte, error) {
	var r io.Reader
	switch format {
	case "zstd":
		d, err := zstd.NewReader(bytes.NewReader(data),
			zstd.WithDecoderConcurrency(1),
			zstd.WithDecoderLowmem(true),
			zstd.WithDecoderMaxWindow(minidumpMaxWindow))
		if err != nil {
			return nil, err
		}
		defer d.Close()
		r = d
	case "xz":
		dict, err := xzDictionary(data)
		if err != nil {
			return nil, err
		}
		if dict > minidumpMaxDict {
			return nil, fmt.Errorf("xz dictionary of %d bytes is over the %d bytes Baton decodes", dict, minidumpMaxDict)
		}
		// DictCap is a floor on the dictionary allocated; the stream's own
		// size, checked above, is the real one.
		xr, err := xz.ReaderConfig{DictCap: lzma.MinDictCap, SingleStream: true}.NewReader(bytes.NewReader(data))
		if err != nil {
			return nil, err
		}
		r = xr
	default:
		return nil, fmt.Errorf("no decoder for %s", format)
	}
	return io.ReadAll(io.LimitReader(r, int64(max)+1))
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
