package otlp

import (
	"encoding/hex"
	"math"
	"strconv"

	"github.com/baton-relay/baton/envelope"
)

// appendString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD,
// as encoding/json writes it.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	dst = appendEscaped(dst, s)
	return append(dst, '"')
}

// appendEscaped appends s escaped as the inside of a JSON string.
func appendEscaped(dst []byte, s string) []byte { return envelope.AppendJSONEscaped(dst, s) }

// appendHex appends id as a lowercase hex JSON string.
func appendHex(dst, id []byte) []byte {
	dst = append(dst, '"')
	dst = hex.AppendEncode(dst, id)
	return append(dst, '"')
}

// appendFloat appends f as encoding/json formats a float64; it reports
// false for NaN and infinities, which JSON cannot hold.
func appendFloat(dst []byte, f float64) ([]byte, bool) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return dst, false
	}
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	return strconv.AppendFloat(dst, f, format, -1, 64), true
}

// appendTimestamp appends nanoseconds since the epoch as Sentry's
// timestamps: seconds with microsecond precision (Relay rounds to
// microseconds).
func appendTimestamp(dst []byte, nanos uint64) []byte {
	micros := (nanos + 500) / 1000
	dst = strconv.AppendUint(dst, micros/1e6, 10)
	frac := micros % 1e6
	dst = append(dst, '.')
	if frac == 0 {
		return append(dst, '0')
	}
	var digits [6]byte
	for i := 5; i >= 0; i-- {
		digits[i] = byte('0' + frac%10)
		frac /= 10
	}
	n := 6
	for digits[n-1] == '0' {
		n--
	}
	return append(dst, digits[:n]...)
}
