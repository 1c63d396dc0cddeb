package normalize

import (
	"bytes"
	"math"
	"strconv"
	"unicode"
	"unicode/utf8"

	"github.com/baton-relay/baton/relay/event"
)

// Tags, release, dist and environment follow Relay's normalize_event_tags
// and the checks before it (relay-event-normalization event.rs), the
// attributes of Event and TagEntry that its SchemaProcessor enforces
// (trim_whitespace, nonempty, allow_chars, deny_chars), and
// sentry-release-parser's validate_release / validate_environment:
//
//   - release (a lenient string), dist and environment are trimmed; an
//     empty one is removed with "expected a non-empty string"; a release
//     longer than 200 bytes, ".", "..", "latest" (any case), or with one of
//     / \r \n \t \f, and an environment longer than 64 bytes, ".", "..",
//     "none" or with those characters, are removed with a bare
//     invalid_data error and the value; a dist with a character outside
//     [a-zA-Z0-9_.-] or longer than 64 characters too.
//   - A tag key or value is read as Relay's LenientString (true → "True",
//     a float → its integer part); keys have spaces replaced by "-", both
//     are trimmed. A key with a character outside [a-zA-Z0-9_.:-] or a
//     value with a newline becomes null with "invalid character '…'"; an
//     empty one or one over 200 characters becomes null with "expected a
//     non-empty value" / value_too_long.
//   - The internal tags release, dist, user, filename and function are
//     removed; the first environment tag sets a missing environment; of
//     tags with the same key the first is kept.
//   - server_name and site move into tags (replacing a tag of that name);
//     too long, they are trimmed to 200 characters like any tag value.
//
// Where one Relay pass would leave something the next relay changes again
// (a second environment tag, two tags whose keys both become null, an
// environment taken from a tag that fails validation, an empty server
// name), this does both passes at once, so that normalizing twice gives
// what normalizing once gives.

// Limits of sentry-release-parser and relay-event-schema (MaxChars).
const (
	maxReleaseBytes     = 200
	maxEnvironmentBytes = 64
	maxDistChars        = 64
)

// nonEmpty is the error Relay records for an empty string it removes
// (Error::nonempty_string).
func (e *norm) nonEmpty() event.MetaError { return e.reason("expected a non-empty string") }

func (e *norm) reason(r string) event.MetaError {
	o := e.t.NewObject()
	e.t.Set(o, "reason", e.t.NewString(r))
	return event.MetaError{Kind: "invalid_data", Data: o}
}

// drop removes the top-level field key with error x; val, when not nil, is
// recorded as the original value.
func (e *norm) drop(key string, x event.MetaError, val *event.Node) {
	e.t.Delete(e.ev, key)
	m := e.t.MetaAt(key)
	m.Errors = append(m.Errors, x)
	if val != nil {
		m.Val = val
	}
}

// releaseEnv checks release, dist and environment before tags are
// normalized (Relay's order: an environment tag fills an environment
// removed here).
func (e *norm) releaseEnv() {
	t, ev := e.t, e.ev
	if v := ev.Get("release"); !v.IsNull() {
		s, reason := lenientText(v)
		if reason != "" {
			e.invalid("release", v, reason)
		} else if s = bytes.TrimSpace(s); len(s) == 0 {
			e.drop("release", e.nonEmpty(), nil)
		} else if !validRelease(s) {
			e.drop("release", event.MetaError{Kind: "invalid_data"}, e.text(v, s))
		} else if v.Kind() != event.String || len(s) != len(v.Bytes()) {
			t.Set(ev, "release", e.text(v, s))
		}
	}
	if v := ev.Get("dist"); !v.IsNull() {
		if v.Kind() != event.String {
			e.invalid("dist", v, "expected a string")
		} else if s := bytes.TrimSpace(v.Bytes()); len(s) == 0 {
			e.drop("dist", e.nonEmpty(), nil)
		} else if i := bytes.IndexFunc(s, func(r rune) bool { return !distChar(r) }); i >= 0 {
			r, _ := utf8.DecodeRune(s[i:])
			e.drop("dist", e.reason("invalid character "+rustChar(r)), e.text(v, s))
		} else if len(s) > maxDistChars { // ASCII only by now
			e.drop("dist", event.MetaError{Kind: "value_too_long"}, e.text(v, s))
		} else if len(s) != len(v.Bytes()) {
			t.Set(ev, "dist", e.text(v, s))
		}
	}
	e.environment()
}

// environment checks the event's environment (schema and
// validate_environment).
func (e *norm) environment() {
	t, ev := e.t, e.ev
	v := ev.Get("environment")
	switch {
	case v.IsNull():
	case v.Kind() != event.String:
		e.invalid("environment", v, "expected a string")
	default:
		s := bytes.TrimSpace(v.Bytes())
		switch {
		case len(s) == 0:
			e.drop("environment", e.nonEmpty(), nil)
		case !validEnvironment(s):
			e.drop("environment", event.MetaError{Kind: "invalid_data"}, e.text(v, s))
		case len(s) != len(v.Bytes()):
			t.Set(ev, "environment", e.text(v, s))
		}
	}
}

// text is a string node holding s: v itself when that is what it holds.
func (e *norm) text(v *event.Node, s []byte) *event.Node {
	if v.Kind() == event.String && bytes.Equal(v.Bytes(), s) {
		return v
	}
	return e.t.NewString(string(s))
}

// validRelease is sentry-release-parser's validate_release.
func validRelease(s []byte) bool {
	return len(s) <= maxReleaseBytes && string(s) != "." && string(s) != ".." &&
		!asciiEqualFold(s, "latest") && !hasPathOrControl(s)
}

// validEnvironment is sentry-release-parser's validate_environment.
func validEnvironment(s []byte) bool {
	return len(s) <= maxEnvironmentBytes && string(s) != "." && string(s) != ".." &&
		!asciiEqualFold(s, "none") && !hasPathOrControl(s)
}

// hasPathOrControl reports whether s holds one of "/\r\n\t\f" (what
// bytes.ContainsAny would, without building its byte set per call: these
// are ASCII, which no multi-byte UTF-8 sequence contains).
func hasPathOrControl(s []byte) bool {
	for _, c := range s {
		switch c {
		case '/', '\r', '\n', '\t', '\f':
			return true
		}
	}
	return false
}

// asciiEqualFold is Rust's eq_ignore_ascii_case (bytes.EqualFold also folds
// non-ASCII letters such as ſ into s).
func asciiEqualFold(s []byte, lower string) bool {
	if len(s) != len(lower) {
		return false
	}
	for i, c := range s {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

func distChar(r rune) bool {
	return 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '_' || r == '.' || r == '-'
}

func tagKeyChar(r rune) bool { return distChar(r) || r == ':' }

// rustChar formats r as Rust's {:?} does for the reason of an invalid
// character error.
func rustChar(r rune) string {
	switch r {
	case '\t':
		return `'\t'`
	case '\r':
		return `'\r'`
	case '\n':
		return `'\n'`
	case '\'':
		return `'\''`
	case '\\':
		return `'\\'`
	case 0:
		return `'\0'`
	}
	if unicode.IsPrint(r) && !unicode.Is(unicode.Mn, r) && !unicode.Is(unicode.Me, r) {
		return "'" + string(r) + "'"
	}
	return `'\u{` + strconv.FormatInt(int64(r), 16) + `}'`
}

// lenientText is v as Relay's LenientString reads it: a string as it is,
// true/false as "True"/"False", an integer in decimal, a float by its
// integer part; reason is the error for anything else.
func lenientText(v *event.Node) (s []byte, reason string) {
	switch v.Kind() {
	case event.String:
		return v.Bytes(), ""
	case event.Bool:
		if b, _ := v.Bool(); b {
			return []byte("True"), ""
		}
		return []byte("False"), ""
	case event.Number:
		raw := v.Raw()
		if !bytes.ContainsAny(raw, ".eE") && string(raw) != "-0" {
			// JSON integers have no leading zeros or plus sign: one that
			// fits is written as it came.
			if _, err := strconv.ParseInt(string(raw), 10, 64); err == nil {
				return raw, ""
			}
			if _, err := strconv.ParseUint(string(raw), 10, 64); err == nil {
				return raw, ""
			}
		}
		f, err := strconv.ParseFloat(string(raw), 64)
		if err != nil && !errorsIsRange(err) || math.Abs(f) >= 1<<53 {
			return nil, "expected a number with JSON precision"
		}
		f = math.Trunc(f)
		if f == 0 && math.Signbit(f) {
			return []byte("-0"), ""
		}
		return strconv.AppendInt(nil, int64(f), 10), ""
	}
	return nil, "expected a primitive value"
}

func errorsIsRange(err error) bool {
	ne, ok := err.(*strconv.NumError)
	return ok && ne.Err == strconv.ErrRange
}

// tagEntry is one tag while tags are normalized.
type tagEntry struct {
	k, v *event.Node // string nodes or null
	drop bool
}

// tags normalizes the event's tags into [key, value] pairs (see the top of
// this file); an object's keys in key order, the order of Relay's maps.
func (e *norm) tags() {
	t, ev := e.t, e.ev
	v := ev.Get("tags")
	var scratch [16]tagEntry
	list := scratch[:0]
	switch v.Kind() {
	case event.Null:
	case event.Object:
		for _, i := range t.SortedKeys(v) {
			list = append(list, tagEntry{k: e.tagKey(t.NewStringBytes(v.Key(i))), v: e.tagValue(v.Index(i))})
		}
	case event.Array:
		for i := range v.Len() {
			switch p := v.Index(i); p.Kind() {
			case event.Array:
				if p.Len() == 2 {
					list = append(list, tagEntry{k: e.tagKey(p.Index(0)), v: e.tagValue(p.Index(1))})
				}
			case event.String: // "key:value" from old SDKs
				if k, val, ok := bytes.Cut(p.Bytes(), []byte(":")); ok {
					list = append(list, tagEntry{k: e.tagKey(t.NewStringBytes(k)), v: e.tagValue(t.NewStringBytes(val))})
				}
			}
		}
	default:
		e.invalid("tags", v, "expected tags")
	}
	envSet := !ev.Get("environment").IsNull()
	var seen map[string]struct{} // keys so far, for a long list
	if len(list) > len(scratch) {
		seen = make(map[string]struct{}, len(list))
	}
	seenNull := false
	for i := range list {
		x := &list[i]
		k := x.k.Bytes()
		switch {
		case x.k.Kind() != event.String:
		case string(k) == "environment":
			x.drop = true
			if !envSet && x.v.Kind() == event.String {
				t.Set(ev, "environment", x.v)
				envSet, e.envFromTag = true, true
			}
			continue
		case isInternalTag(k):
			x.drop = true
			continue
		}
		e.checkTagPart(x.k)
		e.checkTagPart(x.v)
		// First wins; every null key is the same key.
		switch {
		case x.k.Kind() != event.String:
			x.drop, seenNull = seenNull, true
		case seen != nil:
			if _, dup := seen[string(x.k.Bytes())]; dup {
				x.drop = true
			} else {
				seen[string(x.k.Bytes())] = struct{}{}
			}
		default:
			for j := range i {
				if y := &list[j]; !y.drop && y.k.Kind() == event.String && bytes.Equal(x.k.Bytes(), y.k.Bytes()) {
					x.drop = true
					break
				}
			}
		}
	}
	if e.has(rkServerName) {
		list = e.moveToTags("server_name", list)
	}
	if e.has(rkSite) {
		list = e.moveToTags("site", list)
	}
	if v.Kind() != event.Object && v.Kind() != event.Array && len(list) == 0 {
		return
	}
	pairs := t.NewArray()
	for _, x := range list {
		if !x.drop {
			t.Push(pairs, e.pair(x.k, x.v))
		}
	}
	if pairs.Len() == 0 {
		t.Delete(ev, "tags") // Relay does not write empty tags
		return
	}
	t.Set(ev, "tags", pairs)
}

// isInternalTag: Sentry sets these tags when it stores an event, so a
// client may not set them.
func isInternalTag(k []byte) bool {
	switch string(k) {
	case "release", "dist", "user", "filename", "function":
		return true
	}
	return false
}

// moveToTags moves the top-level string field key into the tag of that
// name; a value that is not a string goes, as in Relay, where its error
// would have been.
func (e *norm) moveToTags(key string, list []tagEntry) []tagEntry {
	t, ev := e.t, e.ev
	v := ev.Get(key)
	if !ev.Has(key) {
		return list
	}
	t.Delete(ev, key)
	if v.Kind() != event.String {
		return list
	}
	val := e.tagValue(v)
	if val.Kind() == event.String && len(val.Bytes()) == 0 {
		val = e.nullWith(e.reason("expected a non-empty value"), nil)
	}
	for i := range list {
		if x := &list[i]; !x.drop && x.k.Is(key) {
			x.v = val
			return list
		}
	}
	return append(list, tagEntry{k: t.NewString(key), v: val})
}

// tagKey reads a tag key as TagEntry does: lenient, spaces to "-",
// trimmed, only [a-zA-Z0-9_.:-].
func (e *norm) tagKey(v *event.Node) *event.Node {
	s, n := e.tagText(v)
	if n != nil {
		return n
	}
	if bytes.IndexByte(s, ' ') >= 0 {
		s = bytes.ReplaceAll(s, []byte(" "), []byte("-"))
	}
	s = bytes.TrimSpace(s)
	if i := bytes.IndexFunc(s, func(r rune) bool { return !tagKeyChar(r) }); i >= 0 {
		r, _ := utf8.DecodeRune(s[i:])
		return e.nullWith(e.reason("invalid character "+rustChar(r)), e.text(v, s))
	}
	return e.text(v, s)
}

// tagValue reads a tag value as TagEntry does: lenient, trimmed, no
// newline.
func (e *norm) tagValue(v *event.Node) *event.Node {
	s, n := e.tagText(v)
	if n != nil {
		return n
	}
	s = bytes.TrimSpace(s)
	if bytes.IndexByte(s, '\n') >= 0 {
		return e.nullWith(e.reason(`invalid character '\n'`), e.text(v, s))
	}
	return e.text(v, s)
}

// tagText is v's lenient text, or the node that replaces it: v when it is
// null (a part an earlier pass removed), else a null with the error.
func (e *norm) tagText(v *event.Node) ([]byte, *event.Node) {
	if v.Kind() == event.Null {
		return nil, v
	}
	s, reason := lenientText(v)
	if reason != "" {
		return nil, e.nullWith(e.reason(reason), v)
	}
	return s, nil
}

// checkTagPart nulls an empty or too long tag key or value, as
// normalize_event_tags does.
func (e *norm) checkTagPart(n *event.Node) {
	if n.Kind() != event.String {
		return
	}
	var x event.MetaError
	switch s := n.Bytes(); {
	case len(s) == 0:
		x = e.reason("expected a non-empty value")
	case len(s) > limTag && utf8.RuneCount(s) > limTag:
		x = event.MetaError{Kind: "value_too_long"}
	default:
		return
	}
	e.t.SetNull(n)
	m := e.t.MetaOf(n)
	m.Errors = append(m.Errors, x)
}

// nullWith is a new null node with error x and, when not nil, the original
// value val.
func (e *norm) nullWith(x event.MetaError, val *event.Node) *event.Node {
	n := e.t.NewNull()
	m := e.t.MetaOf(n)
	m.Errors = append(m.Errors, x)
	if val != nil {
		m.Val = val
	}
	return n
}

// tagEnvironment checks an environment taken from a tag, after trimming, as
// the next relay would.
func (e *norm) tagEnvironment() {
	if e.envFromTag {
		e.environment()
	}
}

// trimTags cuts tag values to 200 characters: only server_name and site
// can still be longer (Relay moves them into tags after its length check).
func (e *norm) trimTags(l *event.Node) {
	if l.Kind() != event.Array {
		return
	}
	for i := range l.Len() {
		if p := l.Index(i); p.Len() == 2 {
			e.trimString(p.Index(1), limit{limTag, 0})
		}
	}
}
