package pii

import (
	"bytes"
	"compress/zlib"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"

	"github.com/baton-relay/baton/relay/event"
)

// Replay recording scrubbing, as Relay's RecordingScrubber does it
// (relay-replays recording.rs, called by relay-server's replay processing
// when the organization has the feature
// `organizations:session-replay-recording-scrubbing`):
//
//   - The payload is a header line, "\n", and the rrweb event stream: a
//     JSON array, plain (first byte '[') or zlib-compressed (nothing else:
//     gzip fails), at most the uncompressed size limit once decompressed.
//   - Only the events of `"type": 5` (Sentry's custom events: breadcrumbs,
//     performance spans) are scrubbed; the others (DOM snapshots and
//     mutations, text nodes and attributes included) pass as they are.
//     Every element must still be an object with an integer "type" of at
//     most 255.
//   - In a custom event every string value is scrubbed, first with the
//     piiConfig, then with the datascrubbingSettings, each key entering a
//     state of type `$string` (Relay pretends every value is a string)
//     from the event's root; array elements enter nothing. Only the
//     strings under `data.payload.description` and `data.payload.data`
//     are pii true; the others are pii false, which no rule touches. A
//     removed string becomes "", no `_meta` is written.
//   - A recording that cannot be read (no body, a broken stream, more than
//     the limit, not JSON, not UTF-8) is an error: Relay drops the replay, outcome
//     invalid (invalid_replay_recording).
//
// Differences from Relay: Relay writes every recording it scrubs again,
// zlib-compressed, even when nothing changed; Baton forwards a recording
// nothing matched byte for byte, and compresses the ones it rewrote (at
// the default level, as Relay). A changed recording keeps the bytes of
// everything but the rewritten strings (Relay writes compact JSON).
// Bytes after the array are ignored as Relay ignores them, and dropped
// from a rewritten recording.

// ErrInvalidRecording means a replay recording could not be read.
var ErrInvalidRecording = errors.New("pii: invalid replay recording")

// recSlack is what the rewritten JSON is allowed to grow before its
// buffer is.
const recSlack = 4 << 10

// RecordingScratch is what ScrubRecording holds beyond its output for a
// recording of n bytes decompressed: the decompressed JSON (with the
// slack of its growing), the rewritten JSON and the zlib writer's state.
func RecordingScratch(n int) int { return 3*n + 1<<20 }

// recSentryEvent is the rrweb event type of Sentry's custom events, the
// only ones scrubbed.
const recSentryEvent = 5

// ScrubRecording appends the replay_recording payload, its custom events
// scrubbed with c, to dst and reports whether anything changed; when
// nothing did, dst is returned as it was (the payload is to be forwarded
// as it is). limit caps the recording's size once decompressed. Memory
// is the decompressed recording, its rewritten JSON and the compressed
// output. An error wraps ErrInvalidRecording.
func (c *Config) ScrubRecording(dst, payload []byte, limit int) (out []byte, changed bool, err error) {
	if c == nil || len(c.passes) == 0 {
		return dst, false, nil
	}
	nl := bytes.IndexByte(payload, '\n')
	if nl < 0 || nl == len(payload)-1 {
		return dst, false, fmt.Errorf("%w: no body found", ErrInvalidRecording)
	}
	body := payload[nl+1:]
	if body[0] != '[' {
		if body, err = inflate(body, limit); err != nil {
			return dst, false, err
		}
	}
	// Sized for the rewritten JSON at once: rewritten strings rarely
	// grow it by much.
	js, changed, err := c.scrubEvents(make([]byte, 0, len(body)+recSlack), body)
	if err != nil || !changed {
		return dst, false, err
	}
	dst = append(dst, payload[:nl+1]...)
	ab := appendWriter{b: dst}
	zw := zlib.NewWriter(&ab)
	if _, err := zw.Write(js); err != nil {
		return dst[:len(dst)-nl-1], false, fmt.Errorf("%w: %v", ErrInvalidRecording, err)
	}
	if err := zw.Close(); err != nil {
		return dst[:len(dst)-nl-1], false, fmt.Errorf("%w: %v", ErrInvalidRecording, err)
	}
	return ab.b, true, nil
}

// inflate decompresses the zlib stream body, at most limit bytes.
func inflate(body []byte, limit int) ([]byte, error) {
	zr, err := zlib.NewReader(bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidRecording, err)
	}
	defer zr.Close()
	out, err := io.ReadAll(io.LimitReader(zr, int64(limit)+1))
	switch {
	case err != nil:
		return nil, fmt.Errorf("%w: %v", ErrInvalidRecording, err)
	case len(out) > limit:
		return nil, fmt.Errorf("%w: larger than %d bytes decompressed", ErrInvalidRecording, limit)
	}
	return out, nil
}

// appendWriter is an io.Writer appending to b.
type appendWriter struct{ b []byte }

func (w *appendWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

// scrubEvents appends the rrweb event stream src, its custom events
// scrubbed, to dst when something changed.
func (c *Config) scrubEvents(dst, src []byte) (out []byte, changed bool, err error) {
	if !utf8.Valid(src) { // serde_json refuses it
		return dst, false, fmt.Errorf("%w: not UTF-8", ErrInvalidRecording)
	}
	s := scrubbers.Get().(*scrubber)
	t := event.New()
	s.t, s.keys = t, c.keys
	w := vhWalker{src: src, s: s, ps: c.passes, dst: dst, rec: true}
	defer func() { t.Release(); s.reset(); scrubbers.Put(s) }()
	end, err := w.events()
	if err != nil {
		return dst, false, fmt.Errorf("%w: %v", ErrInvalidRecording, err)
	}
	if !w.changed {
		return dst, false, nil
	}
	return append(w.dst, src[w.copied:end]...), true, nil
}

// events walks the top-level array of a recording and returns where it
// ends: each element is scanned for its type, and walked again,
// scrubbing, when it is a custom event.
func (w *vhWalker) events() (int, error) {
	w.ws()
	if w.pos >= len(w.src) || w.src[w.pos] != '[' {
		return 0, errors.New("not a JSON array")
	}
	w.pos++
	w.ws()
	if w.pos < len(w.src) && w.src[w.pos] == ']' {
		return w.pos + 1, nil
	}
	for {
		w.ws()
		start := w.pos
		if w.pos >= len(w.src) || w.src[w.pos] != '{' {
			return 0, errors.New("an event is not a JSON object")
		}
		w.skip, w.typ = true, -1
		if err := w.value(1); err != nil {
			return 0, err
		}
		if w.typ < 0 {
			return 0, errors.New(`an event has no integer "type"`)
		}
		if w.typ == recSentryEvent {
			w.pos, w.skip = start, false
			if err := w.value(1); err != nil {
				return 0, err
			}
		}
		w.ws()
		if w.pos >= len(w.src) {
			return 0, errVH
		}
		switch w.src[w.pos] {
		case ',':
			w.pos++
		case ']':
			return w.pos + 1, nil
		default:
			return 0, errVH
		}
	}
}

// recPII is the pii attribute of the key entered below path in a custom
// event: true under data.payload.description and data.payload.data
// (Relay's PII_FIELDS), false elsewhere.
func recPII(path []state, key []byte) piiAttr {
	if len(path) < 2 || string(path[0].key) != "data" || string(path[1].key) != "payload" {
		return piiFalse
	}
	k := key
	if len(path) > 2 {
		k = path[2].key
	}
	if string(k) == "description" || string(k) == "data" {
		return piiTrue
	}
	return piiFalse
}

// recType is the value of an event's "type" token: an integer of at most
// 255 (Relay reads it as a u8), -1 otherwise.
func recType(tok []byte) int {
	tok = bytes.TrimLeft(tok, " \t\r\n")
	if len(tok) == 0 || len(tok) > 3 {
		return -1
	}
	n := 0
	for _, c := range tok {
		if c < '0' || c > '9' {
			return -1
		}
		n = n*10 + int(c-'0')
	}
	if n > 255 {
		return -1
	}
	return n
}
