package envelope

import (
	"crypto/rand"
	"errors"
)

// EventID is a Sentry event id: a UUID, written on the wire as 32 lower-case
// hex digits. The zero value means "no event id" (and is also what the nil
// UUID sent by `sentry-cli send-envelope --raw` parses to).
type EventID [16]byte

// errEventID is returned (wrapped) for malformed event ids.
var errEventID = errors.New("invalid event id: want 32 hex digits or a UUID")

// NewEventID returns a random (version 4) event id.
func NewEventID() EventID {
	var id EventID
	_, _ = rand.Read(id[:]) // never fails (crypto/rand since Go 1.24)
	id[6] = id[6]&0x0f | 0x40
	id[8] = id[8]&0x3f | 0x80
	return id
}

// IsZero reports whether id is the zero (absent or nil) id.
func (id EventID) IsZero() bool { return id == EventID{} }

const hexDigits = "0123456789abcdef"

// AppendHex appends the 32 lower-case hex digits of id.
func (id EventID) AppendHex(dst []byte) []byte {
	for _, c := range id {
		dst = append(dst, hexDigits[c>>4], hexDigits[c&0xf])
	}
	return dst
}

// AppendUUID appends id as a hyphenated UUID (8-4-4-4-12), the form the
// minidump and unreal endpoints answer with.
func (id EventID) AppendUUID(dst []byte) []byte {
	for i, c := range id {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			dst = append(dst, '-')
		}
		dst = append(dst, hexDigits[c>>4], hexDigits[c&0xf])
	}
	return dst
}

// String returns the 32 lower-case hex digits of id.
func (id EventID) String() string {
	var buf [32]byte
	return string(id.AppendHex(buf[:0]))
}

// MarshalText implements encoding.TextMarshaler (32 hex digits).
func (id EventID) MarshalText() ([]byte, error) { return id.AppendHex(nil), nil }

// UnmarshalText implements encoding.TextUnmarshaler (any form ParseEventID
// accepts).
func (id *EventID) UnmarshalText(b []byte) error {
	v, err := parseEventID(b)
	if err != nil {
		return err
	}
	*id = v
	return nil
}

// ParseEventID parses an event id in the forms Relay accepts (those of the
// uuid crate): 32 hex digits, a hyphenated UUID, either in braces, or with
// a "urn:uuid:" prefix; hex digits in either case.
func ParseEventID(s string) (EventID, error) {
	return parseEventID([]byte(s))
}

func parseEventID(b []byte) (EventID, error) {
	var id EventID
	switch len(b) {
	case 32:
		if !decodeHex(id[:], b) {
			return id, errEventID
		}
		return id, nil
	case 36:
	case 38:
		if b[0] != '{' || b[37] != '}' {
			return id, errEventID
		}
		b = b[1:37]
	case 45:
		if !equalFoldASCII(string(b[:9]), "urn:uuid:") {
			return id, errEventID
		}
		b = b[9:]
	default:
		return id, errEventID
	}
	if b[8] != '-' || b[13] != '-' || b[18] != '-' || b[23] != '-' {
		return id, errEventID
	}
	if !decodeHex(id[0:4], b[0:8]) || !decodeHex(id[4:6], b[9:13]) ||
		!decodeHex(id[6:8], b[14:18]) || !decodeHex(id[8:10], b[19:23]) ||
		!decodeHex(id[10:16], b[24:36]) {
		return id, errEventID
	}
	return id, nil
}

func decodeHex(dst, src []byte) bool {
	for i := range dst {
		hi, lo := unhex(src[2*i]), unhex(src[2*i+1])
		if hi < 0 || lo < 0 {
			return false
		}
		dst[i] = byte(hi<<4 | lo)
	}
	return true
}
