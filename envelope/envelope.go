package envelope

import (
	"bytes"
	"math/bits"
	"strconv"
	"strings"
)

// Envelope is a parsed envelope. Header.Raw, every Item.Header and every
// Item.Payload are sub-slices of the parsed buffer: the buffer must stay
// unchanged while the Envelope (or anything taken from it) is in use. Strings
// (TypeName, ContentType, DSN, ...) are copies and may be kept.
//
// An Envelope is not safe for concurrent use. Reuse one (Parse on an
// existing value, or Reset) to parse without allocating.
type Envelope struct {
	Header Header
	Items  []Item

	classes  ClassSet
	hasEvent bool // an item creates an event
	needsID  bool // an item requires an event id
	scratch  *Envelope
}

// Header is the envelope header.
type Header struct {
	// Raw is the header JSON object, verbatim (without surrounding
	// whitespace or the newline). AppendTo writes it back unchanged.
	Raw []byte
	// EventID is the header's event_id; zero when absent or null.
	EventID EventID
	// DSN is the header's dsn, unescaped ("" when absent). Parse checks
	// that it is a valid DSN (Relay rejects the envelope otherwise); use
	// ParseDSN for its parts.
	DSN string
	// SentAt is the header's sent_at as sent (RFC 3339; "" when absent).
	SentAt string
}

// Item is one envelope item.
type Item struct {
	// Header is the item header JSON object, verbatim. AppendTo writes it
	// back unchanged, only adding or fixing "length".
	Header []byte
	// Payload is the item payload (exactly `length` bytes, or the rest of the
	// line for items without length).
	Payload []byte

	Type ItemType
	// TypeName is the type as sent: the canonical name for known types (or
	// the alias used, e.g. "profile_chunk_ui"), the unknown name otherwise.
	TypeName string
	// Class is the item's traffic class, computed by Parse for the whole
	// envelope (see the package documentation).
	Class Class

	ContentType    string // content_type, "" when absent
	Filename       string // filename, "" when absent
	AttachmentType string // attachment_type, "" when absent (event.attachment is implied)
	// ItemCount is item_count, -1 when absent.
	ItemCount int
	// Length is the declared length, -1 when the header had none (the
	// payload then ran to the next newline).
	Length int

	// lenStart/lenEnd locate the value of a "length" key inside Header (0, 0
	// when there is none), so AppendTo can rewrite it without re-encoding.
	lenStart, lenEnd int
}

// Info returns the registry row of the item's type.
func (it *Item) Info() *TypeInfo { return it.Type.Info() }

// CreatesEvent reports whether the item becomes an event: event,
// transaction, security, raw_security, unreal_report, feedback, and
// attachments whose attachment_type is a crash report or event payload
// (event.minidump, event.applecrashreport, event.payload, event.breadcrumbs,
// playstation.prosperodump).
func (it *Item) CreatesEvent() bool {
	if it.Type == ItemAttachment {
		return AttachmentCreatesEvent(it.AttachmentType)
	}
	return it.Type.Info().CreatesEvent
}

// RequiresEvent reports whether the item needs an event id (Relay's
// requires_event).
func (it *Item) RequiresEvent() bool { return it.Type.Info().RequiresEvent }

// IsContainer reports whether the item is an item container (a container
// content type; its payload holds ItemCount logical items).
func (it *Item) IsContainer() bool { return IsContainerContentType(it.ContentType) }

// Category returns the item's primary data category (see TypeInfo.Category).
func (it *Item) Category() Category {
	if it.Type == ItemProfileChunk && it.TypeName == "profile_chunk_ui" {
		return CategoryProfileChunkUI
	}
	return it.Type.Info().Category
}

// Quantity returns how much the item counts against its category: bytes for
// attachments (at least 1), item_count for containers, else 1.
func (it *Item) Quantity() int {
	if it.Type == ItemAttachment {
		return max(len(it.Payload), 1)
	}
	if it.ItemCount >= 0 && it.Type.Info().Container {
		return it.ItemCount
	}
	return 1
}

// Parse parses an envelope with DefaultLimits into a new Envelope.
func Parse(b []byte) (*Envelope, error) {
	e := new(Envelope)
	if err := e.Parse(b, nil); err != nil {
		return nil, err
	}
	return e, nil
}

// Parse parses b into e, replacing its contents, under lim (nil means
// DefaultLimits; zero fields take their default). It reuses e.Items and, for
// strings equal to those of the previous parse, the strings themselves, so a
// reused Envelope parses without allocating.
//
// Framing (section 2.1 of docs/relay-protocol.md): the envelope header is the
// first JSON object; each item is a header object followed by its payload,
// exactly `length` bytes when the header has a length (then a newline or the
// end of the body), else up to the next newline or the end of the body. As in
// Relay, whitespace (including blank lines) before a header is skipped and
// headers may end at the end of the body. Unlike Relay, Baton also accepts
// spaces, tabs or '\r' between a header's closing brace and its newline, and
// trailing blank lines after the last item: it re-frames on output, so this
// leniency never reaches an upstream.
//
// Every failure is a *ParseError; see ErrInvalid and ErrTooLarge. On error,
// e holds whatever was parsed before the failure.
func (e *Envelope) Parse(b []byte, lim *Limits) error {
	l := lim.withDefaults()
	oldLen := len(e.Items)
	e.Items = e.Items[:0]
	e.classes, e.hasEvent, e.needsID = 0, false, false
	err := e.parse(b, &l)
	// Drop references to the previous buffer from slots not reused now.
	if stale := e.Items[len(e.Items):cap(e.Items)]; len(stale) > 0 {
		n := min(len(stale), max(oldLen-len(e.Items), 0))
		for i := range stale[:n] {
			stale[i].Header, stale[i].Payload = nil, nil
		}
	}
	return err
}

// Reset empties e and drops every reference to the last parsed buffer,
// keeping the capacity of e.Items.
func (e *Envelope) Reset() {
	clear(e.Items[:cap(e.Items)])
	e.Items = e.Items[:0]
	e.Header = Header{}
	e.classes, e.hasEvent, e.needsID = 0, false, false
	if e.scratch != nil {
		e.scratch.Reset()
	}
}

func (e *Envelope) parse(b []byte, l *Limits) error {
	if len(b) > l.MaxEnvelopeSize {
		return limitAt(l.MaxEnvelopeSize, &LimitError{
			Limit: "max_envelope_size", Kind: "envelope", Size: len(b), Max: l.MaxEnvelopeSize,
		})
	}
	pos := skipWS(b, 0)
	if pos == len(b) {
		return invalidAt(pos, "missing envelope header")
	}
	next, err := e.parseHeader(b, pos, l)
	if err != nil {
		return err
	}
	pos = next

	var used [numLimitGroups]struct{ count, total int }
	for {
		pos = skipWS(b, pos)
		if pos >= len(b) {
			break
		}
		if len(e.Items) >= l.MaxItems {
			return limitAt(pos, &LimitError{
				Limit: "max_items", Kind: "envelope", Size: len(e.Items) + 1, Max: l.MaxItems,
			})
		}
		start := pos
		it := e.nextItem()
		payloadStart, err := parseItemHeader(it, b, start, l)
		if err != nil {
			return err
		}
		var payloadEnd int
		if it.Length >= 0 {
			if it.Length > len(b)-payloadStart {
				return invalidAt(payloadStart, "item length "+strconv.Itoa(it.Length)+
					" overruns the body ("+strconv.Itoa(len(b)-payloadStart)+" bytes left)")
			}
			payloadEnd = payloadStart + it.Length
			if payloadEnd < len(b) && b[payloadEnd] != '\n' {
				return invalidAt(payloadEnd, "missing newline after item payload")
			}
		} else if k := bytes.IndexByte(b[payloadStart:], '\n'); k >= 0 {
			payloadEnd = payloadStart + k
		} else {
			payloadEnd = len(b)
		}
		it.Payload = b[payloadStart:payloadEnd:payloadEnd]
		pos = payloadEnd + 1

		info := it.Type.Info()
		if info.Internal && !l.AllowInternalItems {
			return invalidAt(start, "item type '"+it.TypeName+"' is internal to Relay")
		}
		g := itemLimitGroup(it, info)
		if g == limitNone {
			continue
		}
		gl := l.groupLimits(g)
		size := len(it.Payload)
		if it.IsContainer() {
			size /= max(it.ItemCount, 1)
		}
		if size > gl.itemSize {
			return limitAt(start, &LimitError{Limit: gl.sizeKey, Kind: "item_size", ItemType: it.TypeName, Size: size, Max: gl.itemSize})
		}
		u := &used[g]
		if u.count++; u.count > gl.totalCount {
			return limitAt(start, &LimitError{Limit: gl.countKey, Kind: "total_count", ItemType: it.TypeName, Size: u.count, Max: gl.totalCount})
		}
		if u.total += len(it.Payload); u.total > gl.totalSize {
			return limitAt(start, &LimitError{Limit: gl.totalKey, Kind: "total_size", ItemType: it.TypeName, Size: u.total, Max: gl.totalSize})
		}
	}
	e.classify()
	return nil
}

// nextItem extends e.Items by one slot, reusing the backing array (the slot
// still holds the previous parse's values, for string reuse).
func (e *Envelope) nextItem() *Item {
	n := len(e.Items)
	if n < cap(e.Items) {
		e.Items = e.Items[:n+1]
	} else {
		e.Items = append(e.Items, Item{})
	}
	return &e.Items[n]
}

func itemLimitGroup(it *Item, info *TypeInfo) limitGroup {
	switch it.Type {
	case ItemSpan:
		if !it.IsContainer() {
			return limitSpanLegacy
		}
	case ItemIntegration:
		if integrationIsSpans(it.ContentType) {
			return limitSpanIntegration
		}
	}
	return info.group
}

// integrationIsSpans tells span integrations (OTLP traces) from log ones by
// their content type.
func integrationIsSpans(ct string) bool {
	return strings.Contains(ct, "span") || strings.Contains(ct, "trace")
}

// beginHeader starts iterating the header object at b[pos:], looking at no
// more than maxLen bytes.
func beginHeader(oi *objIter, b []byte, pos, maxLen int) (truncated bool, err *syntaxError) {
	w := b[pos:]
	if len(w) > maxLen {
		w, truncated = w[:maxLen], true
	}
	return truncated, oi.init(w, 0)
}

// endHeader maps iteration errors to parse errors and checks that the object
// is followed by a newline (optionally after spaces, tabs or '\r') or the end
// of the body. It returns the object's end and the offset after the newline.
func endHeader(oi *objIter, serr *syntaxError, b []byte, pos int, truncated bool, what string, maxLen int) (end, next int, err error) {
	if serr == nil {
		serr = oi.err
	}
	if serr != nil {
		if serr.eof && truncated {
			return 0, 0, limitAt(pos, &LimitError{Limit: "max_header_line", Kind: "envelope", Size: len(b) - pos, Max: maxLen})
		}
		return 0, 0, invalidAt(pos+serr.off, "invalid "+what+": "+serr.msg)
	}
	end = pos + oi.end
	k := end
	for k < len(b) && (b[k] == ' ' || b[k] == '\t' || b[k] == '\r') {
		k++
	}
	switch {
	case k == len(b):
		return end, k, nil
	case b[k] == '\n':
		return end, k + 1, nil
	}
	return 0, 0, invalidAt(k, "missing newline after "+what)
}

// parseHeader parses the envelope header at b[pos:] and returns the offset
// of the first item.
func (e *Envelope) parseHeader(b []byte, pos int, l *Limits) (int, error) {
	var oi objIter
	truncated, serr := beginHeader(&oi, b, pos, l.MaxHeaderLine)
	var eventID, dsn, sentAt []byte
	var seen uint8
	h := &e.Header
	if serr == nil {
		for oi.next() {
			var bit uint8
			switch headerKey(&oi) {
			case "event_id":
				bit = 1
			case "dsn":
				bit = 2
			case "sent_at":
				bit = 4
			default:
				continue
			}
			if seen&bit != 0 {
				return 0, invalidAt(pos+oi.keyStart, "duplicate key in envelope header")
			}
			seen |= bit
			v := oi.b[oi.valStart:oi.valEnd]
			if isNull(v) {
				continue
			}
			s, esc, ok := stringValue(v)
			if !ok {
				return 0, invalidAt(pos+oi.valStart, "envelope header: "+headerKey(&oi)+" must be a string")
			}
			if esc {
				s = unescapeJSON(nil, s)
			}
			switch bit {
			case 1:
				eventID = s
			case 2:
				dsn = s
			case 4:
				sentAt = s
			}
		}
	}
	end, next, err := endHeader(&oi, serr, b, pos, truncated, "envelope header", l.MaxHeaderLine)
	if err != nil {
		return 0, err
	}
	h.Raw = b[pos:end:end]
	h.EventID = EventID{}
	if eventID != nil {
		id, err := parseEventID(eventID)
		if err != nil {
			return 0, invalidAt(pos, "envelope header: invalid event_id")
		}
		h.EventID = id
	}
	h.DSN = reuseString(dsn, h.DSN)
	if dsn != nil {
		if _, err := ParseDSN(h.DSN); err != nil {
			return 0, invalidAt(pos, "envelope header: "+err.Error())
		}
	}
	if sentAt != nil && !validTimestamp(sentAt) {
		return 0, invalidAt(pos, "envelope header: sent_at is not an RFC 3339 timestamp")
	}
	h.SentAt = reuseString(sentAt, h.SentAt)
	return next, nil
}

// headerKey returns the current key for the header fields Baton reads, or ""
// for any other key. It does not allocate.
func headerKey(oi *objIter) string {
	raw := oi.b[oi.keyStart+1 : oi.keyEnd-1]
	if oi.keyEsc {
		var buf [32]byte
		if len(raw) > 6*len(buf) {
			return ""
		}
		raw = unescapeJSON(buf[:0], raw)
	}
	switch string(raw) {
	case "type":
		return "type"
	case "length":
		return "length"
	case "content_type":
		return "content_type"
	case "filename":
		return "filename"
	case "attachment_type":
		return "attachment_type"
	case "item_count":
		return "item_count"
	case "event_id":
		return "event_id"
	case "dsn":
		return "dsn"
	case "sent_at":
		return "sent_at"
	}
	return ""
}

// parseItemHeader parses the item header at b[start:] into it and returns
// the offset where the payload starts.
func parseItemHeader(it *Item, b []byte, start int, l *Limits) (int, error) {
	oldTypeName, oldCT, oldFilename, oldAT := it.TypeName, it.ContentType, it.Filename, it.AttachmentType
	*it = Item{ItemCount: -1, Length: -1}

	var oi objIter
	truncated, serr := beginHeader(&oi, b, start, l.MaxHeaderLine)
	var seen uint8
	var typeName, ct, filename, at []byte
	var buf [64]byte
	if serr == nil {
		for oi.next() {
			key := headerKey(&oi)
			var bit uint8
			switch key {
			case "type":
				bit = 1
			case "length":
				bit = 2
			case "content_type":
				bit = 4
			case "filename":
				bit = 8
			case "attachment_type":
				bit = 16
			case "item_count":
				bit = 32
			default:
				continue
			}
			if seen&bit != 0 {
				return 0, invalidAt(start+oi.keyStart, "duplicate key '"+key+"' in item header")
			}
			seen |= bit
			v := oi.b[oi.valStart:oi.valEnd]
			if isNull(v) {
				if bit == 2 {
					it.lenStart, it.lenEnd = oi.valStart, oi.valEnd
				}
				continue
			}
			switch bit {
			case 2, 32:
				n, ok := uint32Value(v)
				if !ok {
					return 0, invalidAt(start+oi.valStart, "item header: "+key+" must be an integer between 0 and 4294967295")
				}
				if bit == 2 {
					it.Length, it.lenStart, it.lenEnd = n, oi.valStart, oi.valEnd
				} else {
					it.ItemCount = n
				}
				continue
			}
			s, esc, ok := stringValue(v)
			if !ok {
				return 0, invalidAt(start+oi.valStart, "item header: "+key+" must be a string")
			}
			if esc {
				if bit == 1 {
					s = unescapeJSON(buf[:0], s)
				} else {
					s = unescapeJSON(nil, s)
				}
			}
			switch bit {
			case 1:
				typeName = s
			case 4:
				ct = s
			case 8:
				filename = s
			case 16:
				at = s
			}
		}
	}
	end, next, err := endHeader(&oi, serr, b, start, truncated, "item header", l.MaxHeaderLine)
	if err != nil {
		return 0, err
	}
	if seen&1 == 0 {
		return 0, invalidAt(start, "item header: missing type")
	}
	it.Header = b[start:end:end]
	if tn, ok := typesByName[string(typeName)]; ok {
		it.Type, it.TypeName = tn.t, tn.name
	} else {
		it.Type, it.TypeName = ItemUnknown, reuseString(typeName, oldTypeName)
	}
	it.ContentType = reuseKnown(ct, oldCT, knownContentTypes[:])
	it.Filename = reuseString(filename, oldFilename)
	it.AttachmentType = reuseAttachmentType(at, oldAT)
	return next, nil
}

// reuseString returns string(b), or old when it is equal (no allocation).
// A nil b gives "".
func reuseString(b []byte, old string) string {
	if b == nil {
		return ""
	}
	if string(b) == old {
		return old
	}
	return string(b)
}

func reuseKnown(b []byte, old string, known []string) string {
	if b == nil {
		return ""
	}
	for _, k := range known {
		if string(b) == k {
			return k
		}
	}
	return reuseString(b, old)
}

func reuseAttachmentType(b []byte, old string) string {
	if b == nil {
		return ""
	}
	for _, a := range attachmentTypes {
		if string(b) == a.name {
			return a.name
		}
	}
	return reuseString(b, old)
}

// validTimestamp checks an RFC 3339 date-time the way Relay's chrono parser
// takes sent_at: YYYY-MM-DD, 'T', 't' or ' ', hh:mm:ss, optional fraction,
// then 'Z', 'z' or an offset ±hh:mm (or ±hhmm).
func validTimestamp(s []byte) bool {
	if len(s) < 20 {
		return false
	}
	num := func(p, n, lo, hi int) bool {
		v := 0
		for _, c := range s[p : p+n] {
			if c < '0' || c > '9' {
				return false
			}
			v = v*10 + int(c-'0')
		}
		return lo <= v && v <= hi
	}
	if !num(0, 4, 0, 9999) || s[4] != '-' || !num(5, 2, 1, 12) || s[7] != '-' || !num(8, 2, 1, 31) {
		return false
	}
	if c := s[10]; c != 'T' && c != 't' && c != ' ' {
		return false
	}
	if !num(11, 2, 0, 23) || s[13] != ':' || !num(14, 2, 0, 59) || s[16] != ':' || !num(17, 2, 0, 60) {
		return false
	}
	i := 19
	if s[i] == '.' {
		i++
		d := i
		for i < len(s) && '0' <= s[i] && s[i] <= '9' {
			i++
		}
		if i == d {
			return false
		}
	}
	rest := s[i:]
	switch {
	case len(rest) == 1 && (rest[0] == 'Z' || rest[0] == 'z'):
		return true
	case len(rest) == 6 && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':':
		return num(i+1, 2, 0, 23) && num(i+4, 2, 0, 59)
	case len(rest) == 5 && (rest[0] == '+' || rest[0] == '-'):
		return num(i+1, 2, 0, 23) && num(i+3, 2, 0, 59)
	}
	return false
}

// classify computes every item's class and the envelope's flags.
//
// Items that must travel together share a class: when the envelope has an
// event-creating item, attachments (plain or crash reports), form_data and
// user_report items take the class of that event, and a profile follows its
// transaction. With several event creators (which Relay's one-event-per-
// envelope limit only allows for crash attachments and unreal reports) the
// followers go with the transaction, else the error, else the security
// report, else the feedback.
func (e *Envelope) classify() {
	eventClass, rank := ClassUnknown, 0
	for i := range e.Items {
		it := &e.Items[i]
		if it.RequiresEvent() {
			e.needsID = true
		}
		if !it.CreatesEvent() {
			continue
		}
		e.hasEvent = true
		c := it.Type.Info().Class
		if it.Type == ItemAttachment {
			c = ClassError
		}
		if r := creatorRank(c); r > rank {
			eventClass, rank = c, r
		}
	}
	for i := range e.Items {
		it := &e.Items[i]
		it.Class = itemClass(it, eventClass, rank > 0)
		e.classes.Add(it.Class)
	}
}

func creatorRank(c Class) int {
	switch c {
	case ClassTransaction:
		return 4
	case ClassError:
		return 3
	case ClassSecurity:
		return 2
	case ClassFeedback:
		return 1
	}
	return 0
}

func itemClass(it *Item, eventClass Class, haveEvent bool) Class {
	switch it.Type {
	case ItemAttachment, ItemFormData, ItemUserReport:
		if haveEvent {
			return eventClass
		}
	case ItemProfile:
		if haveEvent && eventClass == ClassTransaction {
			return ClassTransaction
		}
	case ItemIntegration:
		if integrationIsSpans(it.ContentType) {
			return ClassSpan
		}
	}
	return it.Type.Info().Class
}

// Classes returns the set of classes of e's items.
func (e *Envelope) Classes() ClassSet { return e.classes }

// HasEvent reports whether an item creates an event (see Item.CreatesEvent).
//
// For the envelope endpoint's reply, Relay answers {"id":"<event_id>"} when
// the envelope header has an event_id or NeedsEventID is true (it then
// generates the id and writes it into the header, see SetEventID), and {}
// otherwise.
func (e *Envelope) HasEvent() bool { return e.hasEvent }

// NeedsEventID reports whether an item requires an event id (Relay's
// requires_event: events, transactions, security reports, attachments,
// form_data, user reports, feedback, replay events, profiles). When it is
// true and Header.EventID is zero, Relay generates an event id.
func (e *Envelope) NeedsEventID() bool { return e.needsID }

// SetEventID sets event_id in the header: it appends the new header object
// to buf, points e.Header.Raw at it and returns the extended buf. Other
// header bytes are kept unchanged.
func (e *Envelope) SetEventID(buf []byte, id EventID) []byte {
	var v [34]byte
	val := append(v[:0], '"')
	val = append(id.AppendHex(val), '"')
	start := len(buf)
	buf = SetHeaderField(buf, e.Header.Raw, "event_id", val)
	e.Header.Raw = buf[start:len(buf):len(buf)]
	e.Header.EventID = id
	return buf
}

// SetHeader sets the top-level envelope header key to jsonValue (valid JSON)
// like SetEventID does, e.g. to rewrite sent_at or add forwarding metadata.
// Header.EventID, DSN and SentAt are updated when key is one of them.
func (e *Envelope) SetHeader(buf []byte, key string, jsonValue []byte) []byte {
	start := len(buf)
	buf = SetHeaderField(buf, e.Header.Raw, key, jsonValue)
	raw := buf[start:len(buf):len(buf)]
	switch key {
	case "event_id", "dsn", "sent_at":
		var h Envelope
		h.Header = e.Header
		l := DefaultLimits()
		l.MaxHeaderLine = len(raw) + 1
		if _, err := h.parseHeader(raw, 0, &l); err == nil {
			e.Header = h.Header
			return buf
		}
	}
	e.Header.Raw = raw
	return buf
}

// AppendTo appends the serialized envelope to dst: the header line, then
// every item with its header (always carrying "length", inserted or fixed
// without touching the other header bytes), its payload and a newline.
// Parsing the result gives the same envelope.
func (e *Envelope) AppendTo(dst []byte) []byte {
	dst = e.appendHeader(dst)
	for i := range e.Items {
		dst = e.Items[i].appendTo(dst)
	}
	return dst
}

// AppendClass appends the envelope made of the original header and only the
// items of class c. It does not allocate beyond growing dst.
func (e *Envelope) AppendClass(dst []byte, c Class) []byte {
	dst = e.appendHeader(dst)
	for i := range e.Items {
		if e.Items[i].Class == c {
			dst = e.Items[i].appendTo(dst)
		}
	}
	return dst
}

// Split calls fn once per class present, in class order, with an envelope
// holding the original header and that class's items in their original
// order. The envelope passed to fn is a scratch value owned by e, reused
// between calls: fn must not keep it (or its Items) after returning, nor
// modify e. Split does not allocate in steady state.
func (e *Envelope) Split(fn func(Class, *Envelope)) {
	if e.scratch == nil {
		e.scratch = new(Envelope)
	}
	s := e.scratch
	for v := uint32(e.classes); v != 0; v &= v - 1 {
		c := Class(bits.TrailingZeros32(v))
		s.Header = e.Header
		s.Items = s.Items[:0]
		s.classes, s.hasEvent, s.needsID = 0, false, false
		s.classes.Add(c)
		for i := range e.Items {
			it := &e.Items[i]
			if it.Class != c {
				continue
			}
			s.Items = append(s.Items, *it)
			s.hasEvent = s.hasEvent || it.CreatesEvent()
			s.needsID = s.needsID || it.RequiresEvent()
		}
		fn(c, s)
	}
	clear(s.Items)
	s.Items = s.Items[:0]
	s.Header = Header{}
}

func (e *Envelope) appendHeader(dst []byte) []byte {
	if len(e.Header.Raw) == 0 {
		return append(dst, "{}\n"...)
	}
	dst = append(dst, e.Header.Raw...)
	return append(dst, '\n')
}

func (it *Item) appendTo(dst []byte) []byte {
	dst = it.appendHeader(dst)
	dst = append(dst, '\n')
	dst = append(dst, it.Payload...)
	return append(dst, '\n')
}

func (it *Item) appendHeader(dst []byte) []byte {
	n := len(it.Payload)
	switch {
	case len(it.Header) == 0:
		return it.synthesizeHeader(dst)
	case it.Length == n:
		return append(dst, it.Header...)
	}
	return appendLengthField(dst, it.Header, it.lenStart, it.lenEnd, n)
}

// synthesizeHeader writes a header for an item built in code (no Header).
func (it *Item) synthesizeHeader(dst []byte) []byte {
	name := it.TypeName
	if name == "" {
		name = it.Type.String()
	}
	dst = append(dst, `{"type":`...)
	dst = appendJSONString(dst, name)
	dst = append(dst, `,"length":`...)
	dst = strconv.AppendInt(dst, int64(len(it.Payload)), 10)
	if it.ContentType != "" {
		dst = append(dst, `,"content_type":`...)
		dst = appendJSONString(dst, it.ContentType)
	}
	if it.Filename != "" {
		dst = append(dst, `,"filename":`...)
		dst = appendJSONString(dst, it.Filename)
	}
	if it.AttachmentType != "" {
		dst = append(dst, `,"attachment_type":`...)
		dst = appendJSONString(dst, it.AttachmentType)
	}
	if it.ItemCount > 0 {
		dst = append(dst, `,"item_count":`...)
		dst = strconv.AppendInt(dst, int64(it.ItemCount), 10)
	}
	return append(dst, '}')
}
