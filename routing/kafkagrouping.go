package routing

import (
	"bytes"
	"strconv"

	"github.com/baton-relay/baton/envelope"
)

// Record headers of an error event or security report Baton grouped at
// the edge (the item header's grouping_hash and grouping_final,
// docs/grouping.md "At the edge"), so a consumer can skip recomputing the
// hash when it is final.
const (
	HeaderGroupingHash  = "grouping_hash"
	HeaderGroupingFinal = "grouping_final" // "true" or "false"
)

// eventGrouping returns the grouping_hash (unquoted) and grouping_final
// of the event (or security) item of the serialized envelope env,
// sub-slices of env; nil when it has no such item or the item no hash.
func eventGrouping(env []byte) (hash, final []byte) {
	_, rest, ok := bytes.Cut(env, []byte{'\n'}) // the envelope header
	for ok && len(rest) > 0 {
		var hdr []byte
		hdr, rest, _ = bytes.Cut(rest, []byte{'\n'})
		if t, _ := envelope.HeaderField(hdr, "type"); string(t) == `"event"` || string(t) == `"security"` {
			h, _ := envelope.HeaderField(hdr, "grouping_hash")
			// Baton writes a hash as a plain JSON string; anything
			// escaped is not one of its hashes.
			if len(h) < 2 || h[0] != '"' || h[len(h)-1] != '"' || bytes.IndexByte(h, '\\') >= 0 {
				return nil, nil
			}
			final, _ = envelope.HeaderField(hdr, "grouping_final")
			if string(final) != "true" {
				final = falseValue
			}
			return h[1 : len(h)-1], final
		}
		// Skip the payload: length bytes, else up to the next newline.
		if l, has := envelope.HeaderField(hdr, "length"); has {
			n, err := strconv.Atoi(string(l))
			if err != nil || n < 0 || n > len(rest) {
				return nil, nil
			}
			rest = rest[n:]
			if len(rest) > 0 && rest[0] == '\n' {
				rest = rest[1:]
			}
			ok = true
		} else {
			_, rest, ok = bytes.Cut(rest, []byte{'\n'})
		}
	}
	return nil, nil
}

var falseValue = []byte("false")
