package envelope

import (
	"bytes"
	"compress/zlib"
	"encoding/base64"
	"encoding/json"
	"io"
	"strconv"
)

// This file converts the bodies of the legacy ingest endpoints (store,
// security, nel) into envelopes. The functions are pure: no net/http types,
// bytes in, envelope bytes out (appended to dst).

// FromStore converts the body of a legacy store request (POST
// /api/<id>/store/, or the sentry_data of GET store) into an envelope,
// appended to dst, with DefaultLimits. See FromStoreLimits.
func FromStore(dst, body []byte) (env []byte, id EventID, err error) {
	return FromStoreLimits(dst, body, nil)
}

// FromStoreLimits converts a store body like Relay's store endpoint does:
//
//   - the body is a JSON event; a body not starting with '{' is base64
//     (standard alphabet) of either the JSON or of zlib-compressed JSON, and
//     Baton also takes raw zlib. Decompression stops at MaxEventSize.
//   - Python's NaN, Infinity and -Infinity tokens (invalid JSON that old
//     Python SDKs send) are replaced with null when the JSON is otherwise
//     invalid.
//   - the event becomes one item with content_type application/json: a
//     transaction item for "type":"transaction", a security item for csp,
//     hpkp, expectct and expectstaple, a feedback item for feedback, an event
//     item otherwise. The envelope header is {"event_id":...}: the event's
//     own event_id, or a random one when it has none.
//   - a body that is already an envelope (the store endpoint takes those
//     too) is parsed under lim and re-serialized, with a generated event_id
//     added to its header when an item needs one and it has none.
//
// id is the envelope's event id. Errors are *ParseError values (ErrInvalid:
// 400; ErrTooLarge when the event exceeds MaxEventSize: 413).
func FromStoreLimits(dst, body []byte, lim *Limits) (env []byte, id EventID, err error) {
	l := lim.withDefaults()
	data, err := decodeStoreBody(body, l.MaxEventSize)
	if err != nil {
		return dst, id, err
	}
	if i := skipWS(data, 0); i < len(data) && data[i] == '{' {
		evID, itemType, serr := scanEvent(data)
		if serr != nil {
			if patched := patchPythonJSON(data); patched != nil {
				if evID2, t2, serr2 := scanEvent(patched); serr2 == nil {
					data, evID, itemType, serr = patched, evID2, t2, nil
				}
			}
		}
		if serr == nil {
			return appendEventEnvelope(dst, data, evID, itemType, &l)
		}
		// Not one JSON object: maybe an envelope.
		var e Envelope
		if perr := e.Parse(data, &l); perr == nil {
			return appendParsedEnvelope(dst, &e)
		}
		if serr.off < 0 {
			return dst, id, invalidAt(0, serr.msg)
		}
		return dst, id, invalidAt(serr.off, "invalid event JSON: "+serr.msg)
	}
	return dst, id, invalidAt(0, "store body is not a JSON object")
}

// appendParsedEnvelope re-serializes e, adding an event id when needed.
func appendParsedEnvelope(dst []byte, e *Envelope) ([]byte, EventID, error) {
	if e.Header.EventID.IsZero() && e.NeedsEventID() {
		e.SetEventID(nil, NewEventID())
	}
	return e.AppendTo(dst), e.Header.EventID, nil
}

// decodeStoreBody undoes the store endpoint's optional base64 and zlib
// encodings.
func decodeStoreBody(body []byte, maxSize int) ([]byte, error) {
	i := skipWS(body, 0)
	if i == len(body) {
		return nil, invalidAt(0, "empty body")
	}
	if body[i] == '{' {
		return body, nil
	}
	trimmed := bytes.TrimSpace(body)
	bin := make([]byte, base64.StdEncoding.DecodedLen(len(trimmed)))
	n, err := base64.StdEncoding.Decode(bin, trimmed)
	if err != nil {
		// Not base64: Baton also accepts a bare zlib stream.
		if isZlib(body) {
			return inflateZlib(body, maxSize)
		}
		return nil, invalidAt(0, "store body is neither JSON, base64 nor zlib")
	}
	bin = bin[:n]
	if len(bin) > 0 && bin[0] == '{' {
		return bin, nil
	}
	return inflateZlib(bin, maxSize)
}

func isZlib(b []byte) bool {
	return len(b) >= 2 && b[0]&0x0f == 8 && (uint16(b[0])<<8|uint16(b[1]))%31 == 0
}

func inflateZlib(b []byte, maxSize int) ([]byte, error) {
	zr, err := zlib.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, invalidAt(0, "invalid zlib body: "+err.Error())
	}
	defer zr.Close()
	out, err := io.ReadAll(io.LimitReader(zr, int64(maxSize)+1))
	if err != nil {
		return nil, invalidAt(0, "invalid zlib body: "+err.Error())
	}
	if len(out) > maxSize {
		return nil, limitAt(0, &LimitError{Limit: "max_event_size", Kind: "item_size", ItemType: "event", Size: len(out), Max: maxSize})
	}
	return out, nil
}

// scanEvent validates that data is one JSON object and reads its top-level
// event_id and type.
func scanEvent(data []byte) (EventID, ItemType, *syntaxError) {
	var id EventID
	t := ItemEvent
	var oi objIter
	if err := oi.init(data, 0); err != nil {
		return id, t, err
	}
	var idRaw, typeRaw []byte
	for oi.next() {
		if idRaw == nil && oi.keyIs("event_id") {
			idRaw = data[oi.valStart:oi.valEnd]
		} else if typeRaw == nil && oi.keyIs("type") {
			typeRaw = data[oi.valStart:oi.valEnd]
		}
	}
	if oi.err != nil {
		return id, t, oi.err
	}
	if j := skipWS(data, oi.end); j != len(data) {
		return id, t, synErr(j, "invalid data after the event object")
	}
	if idRaw != nil && !isNull(idRaw) {
		s, esc, ok := stringValue(idRaw)
		if esc {
			s = unescapeJSON(nil, s)
		}
		var err error
		if id, err = parseEventID(s); !ok || err != nil {
			return id, t, &syntaxError{off: -1, msg: "invalid event_id in event"}
		}
	}
	if typeRaw != nil {
		if s, _, ok := stringValue(typeRaw); ok {
			switch string(s) {
			case "transaction":
				t = ItemTransaction
			case "csp", "hpkp", "expectct", "expectstaple":
				t = ItemSecurity
			case "feedback":
				t = ItemFeedback
			}
		}
	}
	return id, t, nil
}

func appendEventEnvelope(dst, data []byte, id EventID, t ItemType, l *Limits) ([]byte, EventID, error) {
	data = bytes.TrimSpace(data)
	if len(data) > l.MaxEventSize {
		return dst, id, limitAt(0, &LimitError{Limit: "max_event_size", Kind: "item_size", ItemType: t.String(), Size: len(data), Max: l.MaxEventSize})
	}
	if id.IsZero() {
		id = NewEventID()
	}
	dst = appendEventIDHeader(dst, id)
	dst = appendItem(dst, t.String(), ContentTypeJSON, "", "", nil, data)
	return dst, id, nil
}

// appendEventIDHeader appends the header line {"event_id":"<hex>"}.
func appendEventIDHeader(dst []byte, id EventID) []byte {
	dst = append(dst, `{"event_id":"`...)
	dst = id.AppendHex(dst)
	return append(dst, "\"}\n"...)
}

// appendItem appends one item (header with length, payload, newline).
// extra holds additional header members as key, raw JSON value pairs.
func appendItem(dst []byte, typ, contentType, filename, attachmentType string, extra []string, payload []byte) []byte {
	dst = append(dst, `{"type":`...)
	dst = appendJSONString(dst, typ)
	dst = append(dst, `,"length":`...)
	dst = strconv.AppendInt(dst, int64(len(payload)), 10)
	if contentType != "" {
		dst = append(dst, `,"content_type":`...)
		dst = appendJSONString(dst, contentType)
	}
	if filename != "" {
		dst = append(dst, `,"filename":`...)
		dst = appendJSONString(dst, filename)
	}
	if attachmentType != "" {
		dst = append(dst, `,"attachment_type":`...)
		dst = appendJSONString(dst, attachmentType)
	}
	for i := 0; i+1 < len(extra); i += 2 {
		dst = append(dst, ',')
		dst = appendJSONString(dst, extra[i])
		dst = append(dst, ':')
		dst = append(dst, extra[i+1]...)
	}
	dst = append(dst, "}\n"...)
	dst = append(dst, payload...)
	return append(dst, '\n')
}

// patchPythonJSON returns a copy of data with the bare tokens NaN, Infinity
// and -Infinity outside strings replaced by null, or nil when there are none.
func patchPythonJSON(data []byte) []byte {
	var out []byte
	copied := 0
	inStr := false
	for i := 0; i < len(data); i++ {
		c := data[i]
		if inStr {
			switch c {
			case '\\':
				i++
			case '"':
				inStr = false
			}
			continue
		}
		var n int
		switch {
		case c == '"':
			inStr = true
			continue
		case bytes.HasPrefix(data[i:], []byte("NaN")):
			n = 3
		case bytes.HasPrefix(data[i:], []byte("Infinity")):
			n = 8
		case bytes.HasPrefix(data[i:], []byte("-Infinity")):
			n = 9
		default:
			continue
		}
		out = append(out, data[copied:i]...)
		out = append(out, "null"...)
		i += n - 1
		copied = i + 1
	}
	if out == nil {
		return nil
	}
	return append(out, data[copied:]...)
}

// FromSecurityReport converts the body of a security report request (POST
// /api/<id>/security/ or /csp-report/: CSP, Expect-CT, Expect-Staple, HPKP)
// into an envelope with one raw_security item, as Relay's security endpoint
// does: content_type application/json, item headers sentry_release and
// sentry_environment when release and environment are not empty, and a
// random event_id in the envelope header. The body must be JSON and at most
// MaxEventSize (the endpoint's body limit).
func FromSecurityReport(dst, body []byte, release, environment string) ([]byte, error) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return dst, invalidAt(0, "empty security report")
	}
	if max := DefaultLimits().MaxEventSize; len(body) > max {
		return dst, limitAt(0, &LimitError{Limit: "max_event_size", Kind: "item_size", ItemType: "raw_security", Size: len(body), Max: max})
	}
	if err := validJSON(body); err != nil {
		return dst, invalidAt(err.off, "invalid security report JSON: "+err.msg)
	}
	var extra []string
	if release != "" {
		extra = append(extra, "sentry_release", string(appendJSONString(nil, release)))
	}
	if environment != "" {
		extra = append(extra, "sentry_environment", string(appendJSONString(nil, environment)))
	}
	dst = appendEventIDHeader(dst, NewEventID())
	return appendItem(dst, "raw_security", ContentTypeJSON, "", "", extra, body), nil
}

// FromSecurityReports is FromSecurityReport for a body that may hold several
// reports: a Reporting API batch (application/reports+json, a JSON array
// of reports, as browsers batch them for one endpoint) of more than one
// report gives one envelope per report, each with one raw_security item
// holding that report alone and its own random event_id, since an envelope
// carries one event (Relay, too, makes each raw security report an
// envelope of its own). Reports of every type are kept: as in Relay, each
// is judged on its own when it is processed (SecurityReportKind), so a
// report of another type (deprecation, intervention, ...) is dropped there
// with an outcome rather than here without one. Any other body gives its
// one envelope, as FromSecurityReport. The envelopes are appended to dst
// one after the other, and the end offset of each in dst is appended to
// ends. A batch of more than max reports (max > 0) is ErrTooLarge, found
// before any is converted: each adds some 150 bytes of headers, so a body
// of tiny reports would otherwise grow several times its size.
func FromSecurityReports(dst, body []byte, release, environment string, max int, ends []int) ([]byte, []int, error) {
	trimmed := bytes.TrimSpace(body)
	n := 0
	if len(trimmed) > 0 && trimmed[0] == '[' && len(trimmed) <= DefaultLimits().MaxEventSize && validJSON(trimmed) == nil {
		n = countArray(trimmed)
	}
	if n <= 1 {
		out, err := FromSecurityReport(dst, body, release, environment)
		if err != nil {
			return dst, ends, err
		}
		return out, append(ends, len(out)), nil
	}
	if max > 0 && n > max {
		return dst, ends, limitAt(0, &LimitError{Limit: "max_reports", Kind: "total_count",
			ItemType: "raw_security", Size: n, Max: max})
	}
	var extra []string
	if release != "" {
		extra = append(extra, "sentry_release", string(appendJSONString(nil, release)))
	}
	if environment != "" {
		extra = append(extra, "sentry_environment", string(appendJSONString(nil, environment)))
	}
	forEachElement(trimmed, func(report []byte) {
		dst = appendEventIDHeader(dst, NewEventID())
		dst = appendItem(dst, "raw_security", ContentTypeJSON, "", "", extra, report)
		ends = append(ends, len(dst))
	})
	return dst, ends, nil
}

// forEachElement calls fn with each element of the valid JSON array a.
func forEachElement(a []byte, fn func(elem []byte)) {
	for i := skipWS(a, 1); a[i] != ']'; {
		end, _ := scanValue(a, i, 1)
		fn(a[i:end])
		if i = skipWS(a, end); a[i] == ',' {
			i = skipWS(a, i+1)
		}
	}
}

// SecurityReportKind is what Relay infers a security report to be from its
// JSON (relay-event-schema SecurityReportType::from_json), which decides
// how Relay processes or drops it.
type SecurityReportKind uint8

const (
	// ReportUnknown is JSON that is no known report: Relay drops it as
	// invalid, reason security_report_type.
	ReportUnknown SecurityReportKind = iota
	ReportCSP
	ReportExpectCT
	ReportExpectStaple
	ReportHPKP
	// ReportUnsupported is a Reporting API report of another type than
	// csp-violation (deprecation, intervention, ...): Relay drops it as
	// filtered, reason invalid-csp.
	ReportUnsupported
	// ReportInvalidJSON is a payload that is not a JSON object: Relay drops
	// it as invalid, reason invalid_json.
	ReportInvalidJSON
)

// ClassifySecurityReport infers the kind of the security report payload
// (one report; a Reporting API list of one report is that report) as
// Relay does: a "csp-report" key or type "csp-violation" is CSP, another
// type is unsupported, then "known-pins" (HPKP), "expect-staple-report",
// "expect-ct-report".
func ClassifySecurityReport(payload []byte) SecurityReportKind {
	payload = bytes.TrimSpace(payload)
	if len(payload) > 0 && payload[0] == '[' && validJSON(payload) == nil && countArray(payload) == 1 {
		forEachElement(payload, func(e []byte) { payload = e })
	}
	var head struct {
		Type         *string         `json:"type"`
		CSP          json.RawMessage `json:"csp-report"`
		KnownPins    json.RawMessage `json:"known-pins"`
		ExpectStaple json.RawMessage `json:"expect-staple-report"`
		ExpectCT     json.RawMessage `json:"expect-ct-report"`
	}
	if len(payload) == 0 || payload[0] != '{' || json.Unmarshal(payload, &head) != nil {
		return ReportInvalidJSON
	}
	// A key set to null is absent, as Relay's Option fields read it.
	present := func(v json.RawMessage) bool { return v != nil && string(v) != "null" }
	switch {
	case present(head.CSP):
		return ReportCSP
	case head.Type != nil && *head.Type == "csp-violation":
		return ReportCSP
	case head.Type != nil:
		return ReportUnsupported
	case present(head.KnownPins):
		return ReportHPKP
	case present(head.ExpectStaple):
		return ReportExpectStaple
	case present(head.ExpectCT):
		return ReportExpectCT
	}
	return ReportUnknown
}

// countArray counts the elements of the valid JSON array a.
func countArray(a []byte) int {
	n := 0
	for i := skipWS(a, 1); a[i] != ']'; n++ {
		end, _ := scanValue(a, i, 1)
		if i = skipWS(a, end); a[i] == ',' {
			i = skipWS(a, i+1)
		}
	}
	return n
}

// FromNEL converts the body of a Network Error Logging request (POST
// /api/<id>/nel/: a Reporting API JSON array of reports) into an envelope
// with one nel item per report (content_type application/json, payload the
// report's JSON bytes as sent) and a random event_id, as Relay's NEL endpoint
// did before it switched to internal integration items. An empty array gives
// an envelope without items. The body must be a JSON array of at most
// MaxEventSize bytes.
//
// Newer Relays turn NEL reports into logs at their own endpoint; whether an
// upstream still accepts nel items depends on its version, so forwarding the
// request as-is may be the safer choice for NEL.
func FromNEL(dst, body []byte) ([]byte, error) {
	body = bytes.TrimSpace(body)
	if max := DefaultLimits().MaxEventSize; len(body) > max {
		return dst, limitAt(0, &LimitError{Limit: "max_event_size", Kind: "item_size", ItemType: "nel", Size: len(body), Max: max})
	}
	if err := validJSON(body); err != nil {
		return dst, invalidAt(err.off, "invalid NEL JSON: "+err.msg)
	}
	if len(body) == 0 || body[0] != '[' {
		return dst, invalidAt(0, "NEL body must be a JSON array")
	}
	dst = appendEventIDHeader(dst, NewEventID())
	i := skipWS(body, 1)
	if body[i] == ']' {
		return dst, nil
	}
	for {
		end, _ := scanValue(body, i, 1) // validated above
		dst = appendItem(dst, "nel", ContentTypeJSON, "", "", nil, body[i:end])
		i = skipWS(body, end)
		if body[i] == ']' {
			return dst, nil
		}
		i = skipWS(body, i+1) // ','
	}
}
