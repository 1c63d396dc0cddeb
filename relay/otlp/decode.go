package otlp

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"mime"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// Format is how an OTLP body is encoded.
type Format uint8

const (
	// Protobuf is application/x-protobuf, what every OTLP/HTTP exporter
	// sends by default.
	Protobuf Format = iota
	// JSON is application/json: protobuf's JSON mapping with OTLP's
	// changes (hex ids).
	JSON
)

// ErrContentType means a body is neither protobuf nor JSON (HTTP 415).
var ErrContentType = errors.New("otlp: unsupported content type")

// ErrInvalid is the cause of every error about a malformed body (HTTP 400).
var ErrInvalid = errors.New("otlp: invalid payload")

// ErrTooLarge means the converted items would pass Options.MaxSize
// (HTTP 413).
var ErrTooLarge = errors.New("otlp: converted payload too large")

// ParseContentType tells the Format of a Content-Type header value, as
// Relay does: parameters are ignored, anything but the two OTLP media
// types is ErrContentType.
func ParseContentType(ct string) (Format, error) {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return 0, fmt.Errorf("%w: %q", ErrContentType, ct)
	}
	switch mt {
	case "application/x-protobuf":
		return Protobuf, nil
	case "application/json":
		return JSON, nil
	}
	return 0, fmt.Errorf("%w: %q", ErrContentType, mt)
}

// jsonOptions follow the OTLP/JSON rules: unknown fields are ignored
// (receivers must accept newer senders).
var jsonOptions = protojson.UnmarshalOptions{DiscardUnknown: true}

// unmarshal decodes body in format f into m. scratch holds the JSON body
// with its ids rewritten; the grown slice is returned for reuse.
func unmarshal(f Format, body []byte, m proto.Message, scratch []byte) ([]byte, error) {
	if f == Protobuf {
		if err := proto.Unmarshal(body, m); err != nil {
			return scratch, fmt.Errorf("%w: protobuf: %v", ErrInvalid, err)
		}
		return scratch, nil
	}
	scratch, err := hexIDsToBase64(scratch[:0], body)
	if err != nil {
		return scratch, err
	}
	if err := jsonOptions.Unmarshal(scratch, m); err != nil {
		return scratch, fmt.Errorf("%w: json: %v", ErrInvalid, err)
	}
	return scratch, nil
}

// idKeys are the JSON keys of OTLP's id fields (bytes in protobuf), in
// protojson's camelCase and the proto names it also accepts. Nowhere else
// in OTLP is a JSON object key one of these: attribute names are values
// of "key".
var idKeys = [...]string{"traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id"}

func isIDKey(k []byte) bool {
	for _, id := range idKeys {
		if string(k) == id {
			return true
		}
	}
	return false
}

// hexIDsToBase64 appends src to dst with the values of OTLP's id fields
// turned from hex (OTLP/JSON) into base64 (protojson's bytes). Everything
// else is copied as is; protojson judges the syntax afterwards.
func hexIDsToBase64(dst, src []byte) ([]byte, error) {
	i := 0
	for i < len(src) {
		q := indexQuote(src, i)
		if q < 0 {
			return append(dst, src[i:]...), nil
		}
		end := stringEnd(src, q)
		if end < 0 { // unterminated: protojson reports it
			return append(dst, src[i:]...), nil
		}
		dst = append(dst, src[i:end]...)
		i = end
		key := src[q+1 : end-1]
		j := skipSpace(src, end)
		if j >= len(src) || src[j] != ':' || !isIDKey(key) {
			continue
		}
		v := skipSpace(src, j+1)
		if v >= len(src) || src[v] != '"' {
			continue
		}
		vend := stringEnd(src, v)
		if vend < 0 {
			continue
		}
		dst = append(dst, src[end:v]...)
		hexID := src[v+1 : vend-1]
		var buf [32]byte // ids are 16 or 8 bytes; longer ones still decode
		raw, err := hex.AppendDecode(buf[:0], hexID)
		if err != nil {
			return dst, fmt.Errorf("%w: json: %s %q is not a hex id", ErrInvalid, key, hexID)
		}
		dst = append(dst, '"')
		dst = base64.StdEncoding.AppendEncode(dst, raw)
		dst = append(dst, '"')
		i = vend
	}
	return dst, nil
}

func indexQuote(b []byte, from int) int {
	for i := from; i < len(b); i++ {
		if b[i] == '"' {
			return i
		}
	}
	return -1
}

// stringEnd returns the index just past the JSON string starting at
// b[q] == '"', or -1 when it does not end.
func stringEnd(b []byte, q int) int {
	for i := q + 1; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return -1
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}
