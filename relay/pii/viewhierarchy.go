package pii

import (
	"bytes"
	"errors"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/baton-relay/baton/relay/event"
)

// View hierarchy scrubbing, as Relay scrubs an attachment of
// attachment_type `event.view_hierarchy` when the organization has the
// feature `organizations:view-hierarchy-scrubbing` (relay-server's
// attachment processing, relay-pii's json.rs scrub_json and transform.rs);
// without the feature Relay scrubs it as a plain attachment (attachment.go).
//
//   - Only the project's piiConfig applies (never datascrubbingSettings),
//     and whatever its selectors: no `$attachments` application is needed.
//   - The document is walked as JSON. Each object key enters a state with
//     pii true and the type `$string` (Relay pretends every value is a
//     string); array elements enter nothing, so a string in an array has
//     the path of the array's key. The root enters nothing either: a
//     selector never sees the attachment (`$attachments.'name'` selects
//     nothing in it), and strings at the root, outside any object, are
//     left alone.
//   - Only string values are scrubbed, as event strings are (the rules, the
//     key rules on the last key, "" and "true"/"false"/"null"/"undefined"
//     never touched); keys, numbers, booleans and nulls are not. A removed
//     string becomes "" (not null), and no `_meta` is written.
//   - A document that is not JSON (or not UTF-8, or nested deeper than
//     serde_json's 127 levels, or with a lone surrogate escape) is left as
//     it is, as Relay leaves it when its transcoding fails.
//
// Differences from Relay: Relay writes the whole document again as compact
// JSON, even when nothing changed; Baton keeps the bytes it was sent and
// rewrites only the strings that changed (each in serde_json's escaping),
// so a document nothing matched is forwarded byte for byte and a compact
// one comes out as Relay writes it. Relay enters no state for an object
// key with escapes in it (serde_json hands it over unborrowed) and leaves
// the state of its value's parent on return; Baton enters the decoded key.

// vhMaxDepth is how deep containers may nest: serde_json's recursion
// limit (128, failing when it is reached).
const vhMaxDepth = 127

// errVH means the document is not one Relay transcodes.
var errVH = errors.New("pii: view hierarchy is not valid JSON")

// ViewHierarchy is a project's piiConfig compiled for its view hierarchy
// attachments; immutable and safe for concurrent use. A nil
// *ViewHierarchy scrubs nothing.
type ViewHierarchy struct {
	// ps is the piiConfig's pass of a compiled Config (prefilters on),
	// keys that Config's key numbering.
	ps   []pass
	keys *keyIDs
}

// CompileViewHierarchy compiles piiConfig (raw JSON; empty or null for
// none) for view hierarchies. It returns nil when the config has no
// application; an error wraps ErrInvalidConfig.
func CompileViewHierarchy(piiConfig []byte) (*ViewHierarchy, error) {
	t := bytes.TrimSpace(piiConfig)
	if len(t) == 0 || bytes.Equal(t, []byte("null")) {
		return nil, nil
	}
	c, err := Compile(DataScrubbingSettings{}, t)
	if c == nil || err != nil {
		return nil, err
	}
	return c.ViewHierarchy(), nil
}

// ViewHierarchy is the piiConfig part of c for view hierarchies, sharing
// c's compiled tables: what CompileViewHierarchy returns for the
// piiConfig c was compiled from. Nil when c has no piiConfig application
// (only datascrubbingSettings, which view hierarchies do not get).
func (c *Config) ViewHierarchy() *ViewHierarchy {
	if c == nil || len(c.passes) == 0 || c.passes[0].legacy {
		return nil
	}
	return &ViewHierarchy{ps: c.passes[:1:1], keys: c.keys}
}

// Scrub appends the view hierarchy src, its strings scrubbed, to dst and
// reports whether anything changed; when nothing did (or src is not a
// document Relay scrubs), dst is returned as it was. dst must not overlap
// src. The work is one pass over src; memory is the output and one
// decoded string at a time.
func (v *ViewHierarchy) Scrub(dst, src []byte) (out []byte, changed bool) {
	if v == nil || len(src) == 0 || !utf8.Valid(src) {
		return dst, false
	}
	s := scrubbers.Get().(*scrubber)
	t := event.New()
	s.t, s.keys = t, v.keys
	w := vhWalker{src: src, s: s, ps: v.ps, dst: dst}
	defer func() { t.Release(); s.reset(); scrubbers.Put(s) }()
	if err := w.value(0); err != nil || !w.changed {
		return dst, false
	}
	return append(w.dst, src[w.copied:]...), true
}

// vhWalker scans a view hierarchy once, scrubbing each string value and
// writing the document with the changed strings to dst.
type vhWalker struct {
	src     []byte
	pos     int
	s       *scrubber // path and scratch; s.t makes the string nodes
	ps      []pass    // applied one after the other, as Relay's processors
	dst     []byte
	copied  int  // src[:copied] is written to dst
	changed bool // something was rewritten
	dec     []byte
	// Recording mode (recording.go): rec sets each key's pii by its path
	// (recPII); skip scans without scrubbing; typ is the "type" of the
	// element at the root, -1 when it has none that is a u8.
	rec, skip bool
	typ       int
}

func (w *vhWalker) ws() {
	for w.pos < len(w.src) {
		switch w.src[w.pos] {
		case ' ', '\t', '\n', '\r':
			w.pos++
		default:
			return
		}
	}
}

// value scans one JSON value at w.pos, depth containers deep.
func (w *vhWalker) value(depth int) error {
	w.ws()
	if w.pos >= len(w.src) {
		return errVH
	}
	switch c := w.src[w.pos]; {
	case c == '{':
		return w.object(depth + 1)
	case c == '[':
		return w.array(depth + 1)
	case c == '"':
		start := w.pos
		str, _, err := w.str()
		if err != nil {
			return err
		}
		if len(w.s.path) > 0 && !w.skip {
			w.scrub(start, str)
		}
		return nil
	case c == 't':
		return w.literal("true")
	case c == 'f':
		return w.literal("false")
	case c == 'n':
		return w.literal("null")
	case c == '-' || c >= '0' && c <= '9':
		return w.number()
	}
	return errVH
}

func (w *vhWalker) object(depth int) error {
	if depth > vhMaxDepth {
		return errVH
	}
	if w.enter('}') {
		return nil
	}
	for {
		w.ws()
		if w.pos >= len(w.src) || w.src[w.pos] != '"' {
			return errVH
		}
		key, decoded, err := w.str()
		if err != nil {
			return err
		}
		if decoded { // copied: w.dec is reused by the strings below it
			key = bytes.Clone(key)
		}
		pii, root := piiTrue, len(w.s.path) == 0
		if w.rec {
			pii = recPII(w.s.path, key)
		}
		w.s.path = append(w.s.path, state{key: key, id: w.s.keys.of(key), types: tString, pii: pii})
		w.ws()
		if w.pos >= len(w.src) || w.src[w.pos] != ':' {
			return errVH
		}
		w.pos++
		vstart := w.pos
		if err := w.value(depth); err != nil {
			return err
		}
		if w.rec && root && string(key) == "type" {
			w.typ = recType(w.src[vstart:w.pos])
		}
		w.s.pop()
		if done, err := w.next('}'); done || err != nil {
			return err
		}
	}
}

func (w *vhWalker) array(depth int) error {
	if depth > vhMaxDepth {
		return errVH
	}
	if w.enter(']') {
		return nil
	}
	for {
		if err := w.value(depth); err != nil {
			return err
		}
		if done, err := w.next(']'); done || err != nil {
			return err
		}
	}
}

// enter steps into the object or array at w.pos and past its end too
// when it is empty (end its closing byte), reporting so.
func (w *vhWalker) enter(end byte) (empty bool) {
	w.pos++
	w.ws()
	if w.pos < len(w.src) && w.src[w.pos] == end {
		w.pos++
		return true
	}
	return false
}

// next steps past what follows a member or element: ',' when another
// follows, or end, the container's closing byte (done).
func (w *vhWalker) next(end byte) (done bool, err error) {
	w.ws()
	if w.pos >= len(w.src) {
		return false, errVH
	}
	switch w.src[w.pos] {
	case ',':
		w.pos++
		return false, nil
	case end:
		w.pos++
		return true, nil
	}
	return false, errVH
}

func (w *vhWalker) literal(lit string) error {
	if !bytes.HasPrefix(w.src[w.pos:], []byte(lit)) {
		return errVH
	}
	w.pos += len(lit)
	return nil
}

// number scans a JSON number: -?int frac? exp?.
func (w *vhWalker) number() error {
	src, i := w.src, w.pos
	if src[i] == '-' {
		i++
	}
	digits := func() bool {
		s := i
		for i < len(src) && src[i] >= '0' && src[i] <= '9' {
			i++
		}
		return i > s
	}
	if i < len(src) && src[i] == '0' {
		i++
	} else if !digits() {
		return errVH
	}
	if i < len(src) && src[i] == '.' {
		i++
		if !digits() {
			return errVH
		}
	}
	if i < len(src) && (src[i] == 'e' || src[i] == 'E') {
		i++
		if i < len(src) && (src[i] == '+' || src[i] == '-') {
			i++
		}
		if !digits() {
			return errVH
		}
	}
	w.pos = i
	return nil
}

// str scans the string token at w.pos and returns its content: a slice of
// src when it has no escapes, else (decoded) decoded into w.dec, valid
// until the next call.
func (w *vhWalker) str() (b []byte, decoded bool, err error) {
	src := w.src
	i := w.pos + 1
	start := i
	for i < len(src) && src[i] != '"' && src[i] != '\\' && src[i] >= 0x20 {
		i++
	}
	if i < len(src) && src[i] == '"' {
		w.pos = i + 1
		return src[start:i], false, nil
	}
	dec := append(w.dec[:0], src[start:i]...)
	for {
		if i >= len(src) || src[i] < 0x20 {
			return nil, false, errVH
		}
		switch c := src[i]; c {
		case '"':
			w.pos, w.dec = i+1, dec
			return dec, true, nil
		case '\\':
			if i+1 >= len(src) {
				return nil, false, errVH
			}
			i += 2
			switch src[i-1] {
			case '"', '\\', '/':
				dec = append(dec, src[i-1])
			case 'b':
				dec = append(dec, '\b')
			case 'f':
				dec = append(dec, '\f')
			case 'n':
				dec = append(dec, '\n')
			case 'r':
				dec = append(dec, '\r')
			case 't':
				dec = append(dec, '\t')
			case 'u':
				r, ok := hex4(src, i)
				if !ok {
					return nil, false, errVH
				}
				i += 4
				if utf16.IsSurrogate(r) {
					// serde_json: a leading surrogate must be followed by
					// a trailing one; anything else fails.
					if r >= 0xDC00 || i+6 > len(src) || src[i] != '\\' || src[i+1] != 'u' {
						return nil, false, errVH
					}
					r2, ok := hex4(src, i+2)
					if !ok || r2 < 0xDC00 || r2 > 0xDFFF {
						return nil, false, errVH
					}
					i += 6
					r = utf16.DecodeRune(r, r2)
				}
				dec = utf8.AppendRune(dec, r)
			default:
				return nil, false, errVH
			}
		default:
			dec = append(dec, c)
			i++
		}
	}
}

// hex4 decodes the four hex digits at src[i:].
func hex4(src []byte, i int) (rune, bool) {
	if i+4 > len(src) {
		return 0, false
	}
	var r rune
	for _, c := range src[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// scrub applies the config to the string value str whose token starts at
// start and ends at w.pos, with its state on top of the path, and
// rewrites the token when the value changed.
func (w *vhWalker) scrub(start int, str []byte) {
	switch string(str) {
	case "", "true", "false", "null", "undefined":
		return
	}
	leaf := &w.s.path[len(w.s.path)-1]
	selected := false
	for pi := range w.ps {
		p := &w.ps[pi]
		if leaf.pii == piiFalse || p.filter != nil && !p.filter.may(leaf) {
			continue
		}
		for i := range p.apps {
			if p.apps[i].sel.matches(w.s.path) {
				selected = true
				break
			}
		}
	}
	if !selected { // most strings: no node made for them
		return
	}
	n := w.s.t.NewStringBytes(str)
	var now []byte
	removed := false
	for pi := range w.ps {
		if w.s.applyAll(&w.ps[pi], n) {
			removed = true
			break
		}
	}
	if removed {
		now = nil // removed: Relay writes ""
	} else if now = n.Bytes(); bytes.Equal(now, str) {
		return
	}
	w.dst = append(w.dst, w.src[w.copied:start]...)
	w.dst = appendJSONText(w.dst, now)
	w.copied, w.changed = w.pos, true
}

// appendJSONText appends s as a JSON string escaped as serde_json escapes
// it: quote, backslash and control characters (\b \t \n \f \r, else
// \u00xx); everything else, non-ASCII too, as it is.
func appendJSONText(dst, s []byte) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	for _, c := range s {
		switch {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case c >= 0x20:
			dst = append(dst, c)
		case c == '\b':
			dst = append(dst, '\\', 'b')
		case c == '\t':
			dst = append(dst, '\\', 't')
		case c == '\n':
			dst = append(dst, '\\', 'n')
		case c == '\f':
			dst = append(dst, '\\', 'f')
		case c == '\r':
			dst = append(dst, '\\', 'r')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
		}
	}
	return append(dst, '"')
}
