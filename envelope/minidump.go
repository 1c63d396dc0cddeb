package envelope

import (
	"bytes"
	"compress/bzip2"
	"compress/gzip"
	"compress/zlib"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/textproto"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Form field and file names of the minidump endpoint (Relay's constants).
const (
	minidumpField        = "upload_file_minidump"
	minidumpFileName     = "Minidump"
	eventPayloadField    = "__sentry-event"
	breadcrumbsField1    = "__sentry-breadcrumb1"
	breadcrumbsField2    = "__sentry-breadcrumb2"
	viewHierarchyField   = "view-hierarchy.json"
	replayRecordingFile  = "sentry_replay_recording"
	maxMinidumpFormParts = 1000
)

// MinidumpOptions tunes FromMinidumpOptions. The zero value is valid.
type MinidumpOptions struct {
	// Limits bounds sizes: MaxAttachmentSize for one file and for the
	// decompressed minidump, MaxAttachmentsSize for all files together,
	// MaxEventSize for all plain form fields together. nil means
	// DefaultLimits.
	Limits *Limits
	// Decompress, when set, decodes every minidump compression container:
	// format is "gzip", "bzip2", "zlib", "xz" or "zstd". It must return at
	// most max bytes, or an error wrapping ErrTooLarge past them. Without
	// it gzip, bzip2 and zlib are read with the standard library (output
	// capped at max, decoder memory not accounted) and xz and zstd
	// minidumps are rejected (Relay reads them; this package is
	// standard-library only).
	Decompress func(format string, data []byte, max int) ([]byte, error)
}

// FromMinidump converts a minidump upload (POST /api/<id>/minidump/) into
// an envelope with default options; see FromMinidumpOptions.
func FromMinidump(dst []byte, contentType string, body []byte) (env []byte, id EventID, err error) {
	return FromMinidumpOptions(dst, contentType, body, nil)
}

// FromMinidumpOptions converts a minidump upload into an envelope appended
// to dst, as Relay's minidump endpoint does. id is the event id, which the
// endpoint answers with as a hyphenated UUID in plain text
// (EventID.AppendUUID).
//
// With Content-Type application/octet-stream or application/x-dmp the body
// is the minidump itself: the envelope holds one attachment
// (attachment_type event.minidump, filename "Minidump", content_type
// application/x-dmp) and a random event id.
//
// Otherwise the body must be multipart/form-data:
//   - upload_file_minidump (required) is the minidump; it may be wrapped in
//     gzip, bzip2 or zlib (xz and zstd need opts.Decompress), or be a nested
//     multipart body (old Electron SDKs). After unwrapping it must start with
//     MDMP or PMDM. A ".gz", ".xz", ".bz2" or ".zst" file name suffix is
//     dropped.
//   - every other file becomes an attachment: __sentry-event with
//     attachment_type event.payload (a msgpack event), __sentry-breadcrumb1/2
//     event.breadcrumbs, view-hierarchy.json event.view_hierarchy, others
//     event.attachment; a file named sentry_replay_recording becomes a
//     replay_recording item.
//   - plain fields become one event item, merged as Relay merges form data
//     into the event: "sentry" and "sentry___<x>" hold JSON merged into the
//     event, "sentry__1", "sentry__2", ... are chunks of one JSON document,
//     "sentry[a][b]" set nested string values, and any other field goes to
//     extra[<name>]. When an event.payload attachment is present, the fields
//     are kept as a form_data item instead (Relay's encoding) so the
//     upstream merges them into that event.
//
// The event id is taken, as in Relay, from the msgpack event's event_id,
// then the "sentry" field's or the "sentry[event_id]" field, else
// generated; it is written into the event item too.
func FromMinidumpOptions(dst []byte, contentType string, body []byte, opts *MinidumpOptions) (env []byte, id EventID, err error) {
	if opts == nil {
		opts = &MinidumpOptions{}
	}
	l := opts.Limits.withDefaults()
	mediaType, params, perr := mime.ParseMediaType(contentType)
	if perr != nil {
		mediaType = strings.ToLower(strings.TrimSpace(contentType))
	}
	switch {
	case mediaType == ContentTypeOctetStream || mediaType == ContentTypeMinidump:
		if len(body) > l.MaxAttachmentSize {
			return dst, id, limitAt(0, &LimitError{Limit: "max_attachment_size", Kind: "item_size", ItemType: "attachment", Size: len(body), Max: l.MaxAttachmentSize})
		}
		dump, err := decodeMinidump(body, &l, opts)
		if err != nil {
			return dst, id, err
		}
		id = NewEventID()
		dst = appendEventIDHeader(dst, id)
		dst = appendItem(dst, "attachment", ContentTypeMinidump, minidumpFileName, AttachmentTypeMinidump, nil, dump)
		return dst, id, nil
	case strings.HasPrefix(mediaType, "multipart/") && params["boundary"] != "":
		return minidumpMultipart(dst, body, params["boundary"], &l, opts)
	}
	return dst, id, invalidAt(0, "minidump upload must be multipart/form-data, application/octet-stream or application/x-dmp")
}

type formFile struct {
	field, filename, contentType string
	data                         []byte
}

type formField struct{ name, value string }

func minidumpMultipart(dst, body []byte, boundary string, l *Limits, opts *MinidumpOptions) ([]byte, EventID, error) {
	var id EventID
	files, fields, err := readForm(body, boundary, l)
	if err != nil {
		return dst, id, err
	}
	dumpIdx := -1
	var eventPayload []byte
	hasEventPayload := false
	for i := range files {
		f := &files[i]
		if f.field == minidumpField && dumpIdx < 0 {
			dumpIdx = i
		}
		if f.field == eventPayloadField && !hasEventPayload {
			eventPayload, hasEventPayload = f.data, true
		}
	}
	if dumpIdx < 0 {
		return dst, id, invalidAt(0, "missing minidump: no file field "+minidumpField)
	}
	dump := &files[dumpIdx]
	if nested := embeddedMinidump(dump.data); nested != nil {
		dump.data = nested
	}
	if dump.data, err = decodeMinidump(dump.data, l, opts); err != nil {
		return dst, id, err
	}
	dump.contentType = ContentTypeMinidump
	for _, ext := range [...]string{".gz", ".xz", ".bz2", ".zst"} {
		if s, ok := strings.CutSuffix(dump.filename, ext); ok {
			dump.filename = s
			break
		}
	}

	// Event id precedence: msgpack event, then form data, then random.
	if hasEventPayload {
		if id, err = eventIDFromMsgpack(eventPayload); err != nil {
			return dst, id, err
		}
	}
	if id.IsZero() {
		if id, err = eventIDFromForm(fields); err != nil {
			return dst, id, err
		}
	}
	if id.IsZero() {
		id = NewEventID()
	}

	dst = appendEventIDHeader(dst, id)
	if len(fields) > 0 {
		if hasEventPayload {
			dst = appendItem(dst, "form_data", ContentTypeText, "", "", nil, encodeFormData(fields))
		} else {
			event, err := mergeFormEvent(fields, id)
			if err != nil {
				return dst, id, err
			}
			if len(event) > l.MaxEventSize {
				return dst, id, limitAt(0, &LimitError{Limit: "max_event_size", Kind: "item_size", ItemType: "event", Size: len(event), Max: l.MaxEventSize})
			}
			dst = appendItem(dst, "event", ContentTypeJSON, "", "", nil, event)
		}
	}
	for i := range files {
		f := &files[i]
		if f.filename == replayRecordingFile {
			dst = appendItem(dst, "replay_recording", f.contentType, f.filename, "", nil, f.data)
			continue
		}
		dst = appendItem(dst, "attachment", f.contentType, f.filename, attachmentTypeForField(f.field), nil, f.data)
	}
	return dst, id, nil
}

func attachmentTypeForField(field string) string {
	switch field {
	case minidumpField:
		return AttachmentTypeMinidump
	case breadcrumbsField1, breadcrumbsField2:
		return AttachmentTypeBreadcrumbs
	case eventPayloadField:
		return AttachmentTypeEventPayload
	case viewHierarchyField:
		return AttachmentTypeViewHierarchy
	}
	return AttachmentTypeAttachment
}

// readForm reads every part of a multipart body. Parts with a filename are
// files (their bytes kept as sent, no transfer decoding); named parts without
// one are fields (invalid UTF-8 replaced, like Relay's from_utf8_lossy).
func readForm(body []byte, boundary string, l *Limits) ([]formFile, []formField, error) {
	mr := multipart.NewReader(bytes.NewReader(body), boundary)
	var files []formFile
	var fields []formField
	filesSize, fieldsSize := 0, 0
	for n := 0; ; n++ {
		if n >= maxMinidumpFormParts {
			return nil, nil, invalidAt(0, "too many multipart parts")
		}
		part, err := mr.NextRawPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, nil, invalidAt(0, "invalid multipart body: "+err.Error())
		}
		name, filename, hasFilename := partNames(part.Header)
		if hasFilename {
			data, err := readPart(part, min(l.MaxAttachmentSize, l.MaxAttachmentsSize-filesSize))
			if err != nil {
				return nil, nil, err
			}
			filesSize += len(data)
			ct := part.Header.Get("Content-Type")
			if ct == "" {
				ct = ContentTypeOctetStream
			}
			files = append(files, formFile{field: name, filename: filename, contentType: ct, data: data})
			continue
		}
		if name == "" {
			continue
		}
		data, err := readPart(part, l.MaxEventSize-fieldsSize)
		if err != nil {
			return nil, nil, err
		}
		fieldsSize += len(data)
		fields = append(fields, formField{name, strings.ToValidUTF8(string(data), "\uFFFD")})
	}
	return files, fields, nil
}

// partNames reads name and filename from a part's Content-Disposition,
// keeping the filename as sent (mime/multipart's FileName strips paths).
func partNames(h textproto.MIMEHeader) (name, filename string, hasFilename bool) {
	_, params, err := mime.ParseMediaType(h.Get("Content-Disposition"))
	if err != nil {
		return "", "", false
	}
	filename, hasFilename = params["filename"]
	return params["name"], filename, hasFilename
}

func readPart(r io.Reader, limit int) ([]byte, error) {
	limit = max(limit, 0)
	data, err := io.ReadAll(io.LimitReader(r, int64(limit)+1))
	if err != nil {
		return nil, invalidAt(0, "invalid multipart body: "+err.Error())
	}
	if len(data) > limit {
		return nil, limitAt(0, &LimitError{Limit: "max_attachments_size", Kind: "total_size", ItemType: "attachment", Size: len(data), Max: limit})
	}
	return data, nil
}

// embeddedMinidump returns the upload_file_minidump field of a multipart
// body nested inside the minidump field (old Linux Electron SDKs), or nil.
func embeddedMinidump(data []byte) []byte {
	boundary := nestedBoundary(data)
	if boundary == "" {
		return nil
	}
	mr := multipart.NewReader(bytes.NewReader(data), boundary)
	for n := 0; n < maxMinidumpFormParts; n++ {
		part, err := mr.NextRawPart()
		if err != nil {
			return nil
		}
		if name, _, _ := partNames(part.Header); name == minidumpField {
			b, err := io.ReadAll(part)
			if err != nil {
				return nil
			}
			return b
		}
	}
	return nil
}

// nestedBoundary is Relay's get_multipart_boundary: the first non-empty line
// must be "--<boundary>".
func nestedBoundary(data []byte) string {
	i := 0
	for i < len(data) && (data[i] == '\r' || data[i] == '\n') {
		i++
	}
	line := data[i:]
	if k := bytes.IndexAny(line, "\r\n"); k >= 0 {
		line = line[:k]
	}
	if len(line) <= 2 || line[0] != '-' || line[1] != '-' || !utf8.Valid(line[2:]) {
		return ""
	}
	return string(line[2:])
}

// decodeMinidump unwraps a compression container and checks the minidump
// magic (MDMP, or PMDM for big-endian dumps).
func decodeMinidump(data []byte, l *Limits, opts *MinidumpOptions) ([]byte, error) {
	max := l.MaxAttachmentSize
	format := minidumpContainer(data)
	if format == "" {
		return checkMinidump(data, max)
	}
	if opts.Decompress != nil {
		out, err := opts.Decompress(format, data, max)
		if errors.Is(err, ErrTooLarge) {
			return nil, limitAt(0, &LimitError{Limit: "max_attachment_size", Kind: "item_size", ItemType: "attachment", Size: max + 1, Max: max})
		}
		if err != nil {
			return nil, invalidAt(0, "invalid "+format+" minidump container: "+err.Error())
		}
		return checkMinidump(out, max)
	}
	var r io.Reader
	var err error
	switch format {
	case "gzip":
		r, err = gzip.NewReader(bytes.NewReader(data))
	case "bzip2":
		r = bzip2.NewReader(bytes.NewReader(data))
	case "zlib":
		r, err = zlib.NewReader(bytes.NewReader(data))
	default: // xz, zstd
		return nil, invalidAt(0, "minidump compressed with "+format+" is not supported")
	}
	if err != nil {
		return nil, invalidAt(0, "invalid minidump compression container: "+err.Error())
	}
	out, err := io.ReadAll(io.LimitReader(r, int64(max)+1))
	if err != nil {
		return nil, invalidAt(0, "invalid minidump compression container: "+err.Error())
	}
	return checkMinidump(out, max)
}

// minidumpContainer names the compression container data starts with, or
// "" for none.
func minidumpContainer(data []byte) string {
	switch {
	case bytes.HasPrefix(data, []byte{0x1f, 0x8b}):
		return "gzip"
	case bytes.HasPrefix(data, []byte("BZh")):
		return "bzip2"
	case bytes.HasPrefix(data, []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}):
		return "xz"
	case bytes.HasPrefix(data, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		return "zstd"
	case !bytes.HasPrefix(data, []byte("MDMP")) && isZlib(data):
		return "zlib"
	}
	return ""
}

func checkMinidump(data []byte, max int) ([]byte, error) {
	if len(data) > max {
		return nil, limitAt(0, &LimitError{Limit: "max_attachment_size", Kind: "item_size", ItemType: "attachment", Size: len(data), Max: max})
	}
	if !bytes.HasPrefix(data, []byte("MDMP")) && !bytes.HasPrefix(data, []byte("PMDM")) {
		return nil, invalidAt(0, "invalid minidump: missing MDMP/PMDM magic")
	}
	return data, nil
}

// eventIDFromForm is Relay's event_id_from_formdata: the first "sentry"
// field (JSON, its event_id) or "sentry[event_id]" field decides.
func eventIDFromForm(fields []formField) (EventID, error) {
	for _, f := range fields {
		switch f.name {
		case "sentry":
			var oi objIter
			data := []byte(f.value)
			if oi.init(data, 0) != nil {
				return EventID{}, invalidAt(0, "invalid JSON in the sentry form field")
			}
			var raw []byte
			for oi.next() {
				if raw == nil && oi.keyIs("event_id") {
					raw = data[oi.valStart:oi.valEnd]
				}
			}
			if oi.err != nil {
				return EventID{}, invalidAt(0, "invalid JSON in the sentry form field")
			}
			if raw == nil || isNull(raw) {
				return EventID{}, nil
			}
			s, esc, ok := stringValue(raw)
			if esc {
				s = unescapeJSON(nil, s)
			}
			id, err := parseEventID(s)
			if !ok || err != nil {
				return EventID{}, invalidAt(0, "invalid event_id in the sentry form field")
			}
			return id, nil
		case "sentry[event_id]":
			id, err := ParseEventID(f.value)
			if err != nil {
				return EventID{}, invalidAt(0, "invalid sentry[event_id] form field")
			}
			return id, nil
		}
	}
	return EventID{}, nil
}

// mergeFormEvent builds the event JSON from the form fields the way Relay's
// merge_formdata does, with event_id set to id.
func mergeFormEvent(fields []formField, id EventID) ([]byte, error) {
	event := map[string]any{}
	chunks := map[int]string{}
	for _, f := range fields {
		switch {
		case f.name == "sentry" || strings.HasPrefix(f.name, "sentry___"):
			if v, ok := decodeJSONValue(f.value); ok {
				mergeValues(event, v)
			}
		case chunkIndex(f.name) >= 0:
			chunks[chunkIndex(f.name)] = f.value
		default:
			if keys, ok := bracketKeys(f.name); ok {
				setNested(event, keys, f.value)
			} else {
				setNested(event, []string{"extra", f.name}, f.value)
			}
		}
	}
	if len(chunks) > 0 {
		idx := make([]int, 0, len(chunks))
		for i := range chunks {
			idx = append(idx, i)
		}
		sort.Ints(idx)
		var sb strings.Builder
		for _, i := range idx {
			sb.WriteString(chunks[i])
		}
		if v, ok := decodeJSONValue(sb.String()); ok {
			mergeValues(event, v)
		}
	}
	event["event_id"] = id.String()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(event); err != nil {
		return nil, invalidAt(0, "cannot encode the event built from form fields: "+err.Error())
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

func decodeJSONValue(s string) (any, bool) {
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, false
	}
	return v, true
}

// mergeValues merges src into dst as Relay's merge_values: objects merge key
// by key, anything else replaces.
func mergeValues(dst map[string]any, src any) {
	obj, ok := src.(map[string]any)
	if !ok {
		return // a non-object cannot become the event
	}
	for k, v := range obj {
		if sub, ok := v.(map[string]any); ok {
			if d, ok := dst[k].(map[string]any); ok {
				mergeValues(d, sub)
				continue
			}
		}
		dst[k] = v
	}
}

// setNested sets target[keys[0]][keys[1]]... = value, turning non-objects
// on the way into objects.
func setNested(target map[string]any, keys []string, value string) {
	for _, k := range keys[:len(keys)-1] {
		next, ok := target[k].(map[string]any)
		if !ok {
			next = map[string]any{}
			target[k] = next
		}
		target = next
	}
	target[keys[len(keys)-1]] = value
}

// chunkIndex returns N for a field named sentry__N, else -1.
func chunkIndex(name string) int {
	s, ok := strings.CutPrefix(name, "sentry__")
	if !ok || s == "" || strings.HasPrefix(s, "_") {
		return -1
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return -1
	}
	return n
}

// bracketKeys parses "sentry[a][b]" into ["a", "b"].
func bracketKeys(name string) ([]string, bool) {
	s, ok := strings.CutPrefix(name, "sentry")
	if !ok || s == "" {
		return nil, false
	}
	var keys []string
	for s != "" {
		if s[0] != '[' {
			return nil, false
		}
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return nil, false
		}
		keys = append(keys, s[1:end])
		s = s[end+1:]
	}
	return keys, true
}

// encodeFormData encodes fields as Relay's FormDataWriter does: for each
// field, key then value, each a little-endian u32 length and the bytes.
func encodeFormData(fields []formField) []byte {
	var b []byte
	put := func(s string) {
		n := uint32(len(s))
		b = append(b, byte(n), byte(n>>8), byte(n>>16), byte(n>>24))
		b = append(b, s...)
	}
	for _, f := range fields {
		put(f.name)
		put(f.value)
	}
	return b
}

var errMsgpack = errors.New("invalid msgpack")

// eventIDFromMsgpack reads the top-level event_id of a msgpack event (the
// __sentry-event attachment). A missing or nil event_id gives the zero id.
func eventIDFromMsgpack(b []byte) (EventID, error) {
	bad := invalidAt(0, "invalid msgpack event payload")
	n, i, err := mpMapLen(b, 0)
	if err != nil {
		return EventID{}, bad
	}
	for range n {
		key, j, isStr, err := mpString(b, i)
		if err == nil && !isStr {
			j, err = mpSkip(b, i, 0)
		}
		if err != nil {
			return EventID{}, bad
		}
		if isStr && string(key) == "event_id" {
			if j < len(b) && b[j] == 0xc0 {
				return EventID{}, nil
			}
			val, _, isStr, err := mpString(b, j)
			if err != nil || !isStr {
				return EventID{}, invalidAt(0, "invalid event_id in msgpack event payload")
			}
			id, err := parseEventID(val)
			if err != nil {
				return EventID{}, invalidAt(0, "invalid event_id in msgpack event payload")
			}
			return id, nil
		}
		if i, err = mpSkip(b, j, 0); err != nil {
			return EventID{}, bad
		}
	}
	return EventID{}, nil
}

func mpUint(b []byte, i, n int) (int, error) {
	if i+n > len(b) {
		return 0, errMsgpack
	}
	v := 0
	for _, c := range b[i : i+n] {
		v = v<<8 | int(c)
	}
	if v < 0 {
		return 0, errMsgpack
	}
	return v, nil
}

// mpMapLen reads a map header at b[i].
func mpMapLen(b []byte, i int) (n, next int, err error) {
	if i >= len(b) {
		return 0, 0, errMsgpack
	}
	switch c := b[i]; {
	case c&0xf0 == 0x80:
		return int(c & 0x0f), i + 1, nil
	case c == 0xde:
		n, err = mpUint(b, i+1, 2)
		return n, i + 3, err
	case c == 0xdf:
		n, err = mpUint(b, i+1, 4)
		return n, i + 5, err
	}
	return 0, 0, errMsgpack
}

// mpString reads a str (or bin) at b[i]; isStr is false for other types
// (then next is not meaningful and the caller must skip the value).
func mpString(b []byte, i int) (s []byte, next int, isStr bool, err error) {
	if i >= len(b) {
		return nil, 0, false, errMsgpack
	}
	var n, hdr int
	switch c := b[i]; {
	case c&0xe0 == 0xa0:
		n, hdr = int(c&0x1f), 1
	case c == 0xd9 || c == 0xc4:
		n, err = mpUint(b, i+1, 1)
		hdr = 2
	case c == 0xda || c == 0xc5:
		n, err = mpUint(b, i+1, 2)
		hdr = 3
	case c == 0xdb || c == 0xc6:
		n, err = mpUint(b, i+1, 4)
		hdr = 5
	default:
		return nil, i, false, nil
	}
	if err != nil || i+hdr+n > len(b) {
		return nil, 0, false, errMsgpack
	}
	return b[i+hdr : i+hdr+n], i + hdr + n, true, nil
}

// mpSkip skips the value at b[i].
func mpSkip(b []byte, i, depth int) (int, error) {
	if i >= len(b) || depth > maxJSONDepth {
		return 0, errMsgpack
	}
	c := b[i]
	fixed := func(n int) (int, error) {
		if i+n > len(b) {
			return 0, errMsgpack
		}
		return i + n, nil
	}
	sized := func(lenBytes, extra int) (int, error) {
		n, err := mpUint(b, i+1, lenBytes)
		if err != nil {
			return 0, err
		}
		return fixed(1 + lenBytes + extra + n)
	}
	items := func(n, next, per int) (int, error) {
		var err error
		for range n * per {
			if next, err = mpSkip(b, next, depth+1); err != nil {
				return 0, err
			}
		}
		return next, nil
	}
	switch {
	case c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3:
		return i + 1, nil
	case c&0xf0 == 0x80:
		return items(int(c&0x0f), i+1, 2)
	case c&0xf0 == 0x90:
		return items(int(c&0x0f), i+1, 1)
	case c&0xe0 == 0xa0:
		return fixed(1 + int(c&0x1f))
	}
	switch c {
	case 0xc4, 0xd9:
		return sized(1, 0)
	case 0xc5, 0xda:
		return sized(2, 0)
	case 0xc6, 0xdb:
		return sized(4, 0)
	case 0xc7:
		return sized(1, 1)
	case 0xc8:
		return sized(2, 1)
	case 0xc9:
		return sized(4, 1)
	case 0xca:
		return fixed(5)
	case 0xcb:
		return fixed(9)
	case 0xcc, 0xd0:
		return fixed(2)
	case 0xcd, 0xd1:
		return fixed(3)
	case 0xce, 0xd2:
		return fixed(5)
	case 0xcf, 0xd3:
		return fixed(9)
	case 0xd4:
		return fixed(3)
	case 0xd5:
		return fixed(4)
	case 0xd6:
		return fixed(6)
	case 0xd7:
		return fixed(10)
	case 0xd8:
		return fixed(18)
	case 0xdc, 0xdd, 0xde, 0xdf:
		lb := 2
		if c == 0xdd || c == 0xdf {
			lb = 4
		}
		n, err := mpUint(b, i+1, lb)
		if err != nil {
			return 0, err
		}
		per := 1
		if c >= 0xde {
			per = 2
		}
		if n > len(b) { // each element takes at least one byte
			return 0, errMsgpack
		}
		return items(n, i+1+lb, per)
	}
	return 0, errMsgpack
}

// FromAttachments converts an attachment upload for an event sent before
// (POST /api/<id>/events/<event_id>/attachments/, multipart/form-data) into
// an envelope appended to dst, as Relay's attachments endpoint does: the
// header carries id, every file becomes an attachment item
// (attachment_type event.attachment, the part's content type, the file name
// as sent; a file named sentry_replay_recording becomes a replay_recording
// item), and plain fields become one form_data item (Relay's encoding). Files
// are bounded by DefaultLimits' MaxAttachmentSize each and
// MaxAttachmentsSize together.
func FromAttachments(dst []byte, id EventID, contentType string, body []byte) ([]byte, error) {
	l := DefaultLimits()
	mediaType, params, err := mime.ParseMediaType(contentType)
	if err != nil || !strings.HasPrefix(mediaType, "multipart/") || params["boundary"] == "" {
		return dst, invalidAt(0, "attachment upload must be multipart/form-data")
	}
	files, fields, err := readForm(body, params["boundary"], &l)
	if err != nil {
		return dst, err
	}
	if id.IsZero() {
		id = NewEventID()
	}
	dst = appendEventIDHeader(dst, id)
	for i := range files {
		f := &files[i]
		if f.filename == replayRecordingFile {
			dst = appendItem(dst, "replay_recording", f.contentType, f.filename, "", nil, f.data)
			continue
		}
		dst = appendItem(dst, "attachment", f.contentType, f.filename, AttachmentTypeAttachment, nil, f.data)
	}
	if len(fields) > 0 {
		dst = appendItem(dst, "form_data", ContentTypeText, "", "", nil, encodeFormData(fields))
	}
	return dst, nil
}
