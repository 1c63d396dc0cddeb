package relay

import (
	"encoding/binary"
	"errors"
	"time"

	"github.com/baton-relay/baton/envelope"
)

// A record is what the ingest path appends to the buffer for one class part
// of an envelope, and what a forwarder reads back:
//
//	version    1 byte  (recordVersion)
//	class      1 byte
//	items      2 bytes BE   number of items in the part (for outcomes)
//	received   8 bytes BE   unix nanoseconds when Baton accepted the envelope
//	project    8 bytes BE   project id
//	key        1 byte length + public key
//	client     1 byte length + sentry_client (truncated to 255 bytes)
//	ip         1 byte length + client address
//	origin     1 byte length + Origin (or Referer) header   (version 2 on)
//	envelope   the rest: the serialized class envelope
//
// The buffer treats records as opaque bytes; only this file knows the layout.
type record struct {
	Class      envelope.Class
	Items      int
	ReceivedAt int64
	ProjectID  uint64
	PublicKey  []byte
	Client     []byte
	ClientIP   []byte
	Origin     []byte // checked against allowedDomains when a waiting record is released
	Envelope   []byte
}

const (
	recordVersion = 2 // version 1 records (no origin) are still read
	recordFixed   = 1 + 1 + 2 + 8 + 8
)

var errBadRecord = errors.New("relay: malformed buffer record")

// appendRecordHeader appends everything but the envelope; the caller appends
// the envelope bytes right after, which saves a copy on the ingest path.
func appendRecordHeader(dst []byte, r *record) []byte {
	dst = append(dst, recordVersion, byte(r.Class))
	dst = binary.BigEndian.AppendUint16(dst, uint16(min(r.Items, 0xffff)))
	dst = binary.BigEndian.AppendUint64(dst, uint64(r.ReceivedAt))
	dst = binary.BigEndian.AppendUint64(dst, r.ProjectID)
	dst = appendShort(dst, r.PublicKey)
	dst = appendShort(dst, r.Client)
	dst = appendShort(dst, r.ClientIP)
	dst = appendShort(dst, r.Origin)
	return dst
}

func appendShort(dst, b []byte) []byte {
	if len(b) > 255 {
		b = b[:255]
	}
	dst = append(dst, byte(len(b)))
	return append(dst, b...)
}

// decodeRecord fills r with sub-slices of b; it does not copy.
func decodeRecord(b []byte, r *record) error {
	if len(b) < recordFixed || b[0] < 1 || b[0] > recordVersion {
		return errBadRecord
	}
	version := b[0]
	r.Class = envelope.Class(b[1])
	r.Items = int(binary.BigEndian.Uint16(b[2:]))
	r.ReceivedAt = int64(binary.BigEndian.Uint64(b[4:]))
	r.ProjectID = binary.BigEndian.Uint64(b[12:])
	b = b[recordFixed:]
	var ok bool
	if r.PublicKey, b, ok = cutShort(b); !ok {
		return errBadRecord
	}
	if r.Client, b, ok = cutShort(b); !ok {
		return errBadRecord
	}
	if r.ClientIP, b, ok = cutShort(b); !ok {
		return errBadRecord
	}
	r.Origin = nil
	if version >= 2 {
		if r.Origin, b, ok = cutShort(b); !ok {
			return errBadRecord
		}
	}
	if r.Class >= envelope.NumClasses {
		return errBadRecord
	}
	r.Envelope = b
	return nil
}

func cutShort(b []byte) (field, rest []byte, ok bool) {
	if len(b) < 1 || len(b) < 1+int(b[0]) {
		return nil, nil, false
	}
	n := 1 + int(b[0])
	return b[1:n], b[n:], true
}

func (r *record) receivedAt() time.Time { return time.Unix(0, r.ReceivedAt) }
