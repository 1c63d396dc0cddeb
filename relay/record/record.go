package record

import (
	"encoding/binary"
	"errors"
	"slices"
	"time"

	"github.com/klauspost/compress/s2"

	"github.com/baton-relay/baton/envelope"
)

// A Record is what the ingest path appends to the buffer for one class part
// of an envelope, and what a forwarder reads back:
//
//	version    1 byte  (4, or 5 when the envelope is compressed; 6 and 7
//	           when traced)
//	class      1 byte
//	items      2 bytes BE   number of items in the part (for outcomes)
//	received   8 bytes BE   unix nanoseconds when Baton accepted the envelope
//	project    8 bytes BE   project id
//	trace      versions 6 and 7 only: 16-byte trace id, 8-byte span id of
//	           the sampled ingest span that accepted the envelope
//	key        uvarint length + public key
//	client     uvarint length + sentry_client (or User-Agent)
//	ip         uvarint length + X-Forwarded-For chain, the peer last
//	origin     uvarint length + Origin (or the origin of the Referer)
//	envelope   the rest: the serialized class envelope, S2-compressed
//	           (Snappy-compatible block format) in version 5
//
// Fields are stored whole: what bounds them is the ingest path (server.
// max_header_bytes, and its trimming of forwarded-for chains), never a cut
// mid-value here.
//
// Envelopes are JSON and compress about 3.4 times at 1.8 GB/s, so the WAL,
// its fsyncs and the memtable carry a third of the bytes for under 2% more
// CPU; envelopes too small or too random to gain stay plain.
//
// Only records of sampled requests carry a trace (versions 6 and 7, which
// are 4 and 5 with it): the others keep the layout, and the size, of
// versions 4 and 5.
//
// Records of earlier versions are still read: versions 1 to 3 had 1-byte
// field lengths (fields cut at 255 bytes), version 1 had no origin, and
// version 3 was version 2 with the envelope compressed.
type Record struct {
	Class      envelope.Class
	Items      int
	ReceivedAt int64
	ProjectID  uint64
	PublicKey  []byte
	Client     []byte
	ClientIP   []byte
	Origin     []byte // checked against allowedDomains when a waiting record is released
	// TraceID and SpanID name the sampled ingest span that accepted the
	// envelope, which the forwarder's span links to; zero when untraced.
	TraceID  [16]byte
	SpanID   [8]byte
	Envelope []byte
}

// Traced reports whether r carries the ids of an ingest span.
func (r *Record) Traced() bool { return r.TraceID != [16]byte{} && r.SpanID != [8]byte{} }

const (
	recordVersion           = 4
	recordVersionCompressed = 5
	// Versions 6 and 7 are 4 and 5 with a trace after the fixed header.
	// Every plain version is one below its compressed twin.
	recordVersionTraced           = 6
	recordVersionTracedCompressed = 7
	traceLen                      = 16 + 8
	// Versions 2 and 3 are 4 and 5 with 1-byte field lengths; version 1 is
	// version 2 without the origin.
	recordVersionShort           = 2
	recordVersionShortCompressed = 3
	recordFixed                  = 1 + 1 + 2 + 8 + 8

	// minCompress is the smallest envelope worth compressing: below it the
	// saving is a few bytes of WAL, not worth a decode on every read.
	minCompress = 512
	// maxDecoded bounds what a compressed record may claim to expand to, so
	// a corrupt length cannot make a reader allocate gigabytes.
	maxDecoded = 256 << 20
)

// ErrMalformed is a stored record that does not decode.
var ErrMalformed = errors.New("record: malformed buffer record")

// HeaderLen is the length of what AppendHeader appends for r.
func HeaderLen(r *Record) int {
	n := recordFixed
	if r.Traced() {
		n += traceLen
	}
	for _, f := range [...][]byte{r.PublicKey, r.Client, r.ClientIP, r.Origin} {
		n += uvarintLen(len(f)) + len(f)
	}
	return n
}

func uvarintLen(n int) int {
	l := 1
	for ; n >= 0x80; n >>= 7 {
		l++
	}
	return l
}

// CompressScratch is the scratch Compress may need for envelopes of up to n
// bytes: 0 when they are too small to be compressed.
func CompressScratch(n int) int {
	if n < minCompress {
		return 0
	}
	return s2.MaxEncodedLen(n)
}

// Append appends r with env as its envelope, compressed when that saves at
// least an eighth.
func Append(dst []byte, r *Record, env []byte) []byte {
	start := len(dst)
	dst = AppendHeader(dst, r)
	body := len(dst)
	dst, _ = Compress(append(dst, env...), start, body, nil)
	return dst
}

// Compress compresses the envelope of the record that starts at
// dst[start] and whose envelope is dst[body:], when that saves at least an
// eighth, using scratch (returned, perhaps grown) for the compressed bytes.
// The ingest path appends the envelope straight after the header and calls
// this: small envelopes are then copied once, as before compression.
func Compress(dst []byte, start, body int, scratch []byte) ([]byte, []byte) {
	env := dst[body:]
	if len(env) < minCompress || len(env) > maxDecoded {
		return dst, scratch
	}
	scratch = slices.Grow(scratch[:0], s2.MaxEncodedLen(len(env)))
	z := s2.Encode(scratch[:cap(scratch)], env)
	if len(z) > len(env)-len(env)/8 {
		return dst, scratch
	}
	dst[start]++ // AppendHeader wrote the plain version; its compressed twin is one up
	return append(dst[:body], z...), scratch
}

// AppendHeader appends everything but the envelope; the caller appends the
// envelope and may then Compress it.
func AppendHeader(dst []byte, r *Record) []byte {
	version := byte(recordVersion)
	if r.Traced() {
		version = recordVersionTraced
	}
	dst = append(dst, version, byte(r.Class))
	dst = binary.BigEndian.AppendUint16(dst, uint16(min(r.Items, 0xffff)))
	dst = binary.BigEndian.AppendUint64(dst, uint64(r.ReceivedAt))
	dst = binary.BigEndian.AppendUint64(dst, r.ProjectID)
	if version == recordVersionTraced {
		dst = append(append(dst, r.TraceID[:]...), r.SpanID[:]...)
	}
	dst = appendField(dst, r.PublicKey)
	dst = appendField(dst, r.Client)
	dst = appendField(dst, r.ClientIP)
	dst = appendField(dst, r.Origin)
	return dst
}

func appendField(dst, b []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(b)))
	return append(dst, b...)
}

// Decode fills r with sub-slices of b, except a compressed envelope, which
// it decodes into space taken from sl.
func Decode(b []byte, r *Record, sl *Slab) error {
	if len(b) < recordFixed || b[0] < 1 || b[0] > recordVersionTracedCompressed {
		return ErrMalformed
	}
	version := b[0]
	r.Class = envelope.Class(b[1])
	r.Items = int(binary.BigEndian.Uint16(b[2:]))
	r.ReceivedAt = int64(binary.BigEndian.Uint64(b[4:]))
	r.ProjectID = binary.BigEndian.Uint64(b[12:])
	b = b[recordFixed:]
	r.TraceID, r.SpanID = [16]byte{}, [8]byte{}
	if version >= recordVersionTraced {
		if len(b) < traceLen {
			return ErrMalformed
		}
		r.TraceID, r.SpanID = [16]byte(b[:16]), [8]byte(b[16:traceLen])
		b = b[traceLen:]
	}
	cut := cutField
	if version <= recordVersionShortCompressed {
		cut = cutShort
	}
	var ok bool
	if r.PublicKey, b, ok = cut(b); !ok {
		return ErrMalformed
	}
	if r.Client, b, ok = cut(b); !ok {
		return ErrMalformed
	}
	if r.ClientIP, b, ok = cut(b); !ok {
		return ErrMalformed
	}
	r.Origin = nil
	if version >= recordVersionShort {
		if r.Origin, b, ok = cut(b); !ok {
			return ErrMalformed
		}
	}
	if r.Class >= envelope.NumClasses {
		return ErrMalformed
	}
	r.Envelope = b
	if version == recordVersionCompressed || version == recordVersionShortCompressed || version == recordVersionTracedCompressed {
		n, err := s2.DecodedLen(b)
		if err != nil || n > maxDecoded {
			return ErrMalformed
		}
		if r.Envelope, err = s2.Decode(sl.Take(n), b); err != nil {
			return ErrMalformed
		}
	}
	return nil
}

// Slab hands out byte slices that stay valid until reset, for the decoded
// envelopes of one batch of records: after the first few batches a reader
// decodes without allocating.
type Slab struct{ buf []byte }

const (
	slabChunk = 1 << 20
	maxSlab   = 16 << 20 // a chunk grown past this by one huge batch is let go
)

// Take returns n bytes valid until Reset.
func (s *Slab) Take(n int) []byte {
	if cap(s.buf)-len(s.buf) < n {
		// Earlier slices keep the old chunk alive until reset; the new one
		// is big enough that a batch of the same size fits next time.
		s.buf = make([]byte, 0, max(n, slabChunk, 2*cap(s.buf)))
	}
	off := len(s.buf)
	s.buf = s.buf[:off+n]
	return s.buf[off : off+n : off+n]
}

// Reset lets every slice taken so far be reused.
func (s *Slab) Reset() {
	if cap(s.buf) > maxSlab {
		s.buf = nil
	}
	s.buf = s.buf[:0]
}

// Items is the item count in the header of a stored record, without
// decoding the rest: the buffer's Weigh, so that the buffer keeps each
// stream's pending items. Whatever drops a record counts this many items,
// also for a record that does not decode, so the per-class item identity
// holds even then. A record too short to have a count weighs 0.
func Items(b []byte) int64 {
	if len(b) < 4 || b[0] < 1 || b[0] > recordVersionTracedCompressed {
		return 0
	}
	return int64(binary.BigEndian.Uint16(b[2:]))
}

// cutField cuts a uvarint-length field (versions 4 to 7).
func cutField(b []byte) (field, rest []byte, ok bool) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)-k) {
		return nil, nil, false
	}
	end := k + int(n)
	return b[k:end:end], b[end:], true
}

// cutShort cuts a 1-byte-length field (versions 1 to 3).
func cutShort(b []byte) (field, rest []byte, ok bool) {
	if len(b) < 1 || len(b) < 1+int(b[0]) {
		return nil, nil, false
	}
	n := 1 + int(b[0])
	return b[1:n], b[n:], true
}

// Received is when Baton accepted the envelope.
func (r *Record) Received() time.Time { return time.Unix(0, r.ReceivedAt) }
