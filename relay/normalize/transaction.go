package normalize

import (
	"bytes"
	"fmt"
	"regexp"
	"strconv"
	"time"

	"github.com/baton-relay/baton/relay/event"
)

// ErrInvalidTransaction is wrapped by the error for a transaction that
// fails Relay's validation (validate_transaction, TimestampProcessor); the
// text after it is Relay's reason. It wraps ErrInvalid: the caller drops
// the item with outcome `invalid`, reason `invalid_transaction`.
var ErrInvalidTransaction = fmt.Errorf("%w transaction event", ErrInvalid)

func invalidTransaction(reason string) error {
	return fmt.Errorf("%w: %s", ErrInvalidTransaction, reason)
}

// subTimestamps parses breadcrumb and span timestamps as the event's are
// parsed, after the clock correction moved them (Relay's order): a valid
// one is written as seconds, an unreadable one is removed with an
// invalid_data error, and a breadcrumb or span dated before 1970 is
// removed whole with "… is too stale" (Relay's TimestampProcessor).
func (e *norm) subTimestamps() {
	if l := e.values("breadcrumbs"); l != nil {
		for i := range l.Len() {
			b := l.Index(i)
			if b.Kind() == event.Object && b.Has("timestamp") {
				e.subStamp(b, "timestamp", "breadcrumbs", "values", i)
			}
		}
	}
	spans := e.ev.Get("spans")
	switch spans.Kind() {
	case event.Null:
	case event.Array:
		for i := range spans.Len() {
			s := spans.Index(i)
			if s.Kind() != event.Object {
				continue
			}
			if s.Has("start_timestamp") && !e.subStamp(s, "start_timestamp", "spans", "", i) {
				continue
			}
			if s.Has("timestamp") {
				e.subStamp(s, "timestamp", "spans", "", i)
			}
		}
	default:
		e.invalid("spans", spans, "expected an array")
	}
}

// subStamp normalizes o's timestamp key; false when o was removed as
// stale. The path of o is list (and sub, when not "") and index i.
func (e *norm) subStamp(o *event.Node, key, list, sub string, i int) bool {
	v := o.Get(key)
	if v.IsNull() {
		return true
	}
	if ts := parseTime(v); ts.ok {
		e.setTime(o, key, ts)
		return true
	}
	if tm, ok := beforeEpoch(v); ok {
		r := e.t.NewObject()
		e.t.Set(r, "reason", e.t.NewString(key+" is too stale: "+tm.UTC().Format("2006-01-02 15:04:05.999999999")+" UTC"))
		e.t.SetNull(o)
		m := e.t.MetaOf(o)
		m.Errors = append(m.Errors, event.MetaError{Kind: "invalid_data", Data: r})
		return false
	}
	e.t.Delete(o, key)
	path := []string{list, sub, strconv.Itoa(i), key}
	if sub == "" {
		path = []string{list, strconv.Itoa(i), key}
	}
	e.invalidAt(v, "expected a timestamp", path...)
	return true
}

// beforeEpoch reads a timestamp Relay accepts but dates before 1970:
// negative seconds, or an ISO 8601 time before 1970.
func beforeEpoch(v *event.Node) (time.Time, bool) {
	switch v.Kind() {
	case event.Number:
		if f, ok := v.Float(); ok && f < 0 && f > -maxTimestamp {
			us := int64(f * 1e6)
			return time.UnixMicro(us), true
		}
	case event.String:
		s := string(bytes.TrimSpace(v.Bytes()))
		for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999"} {
			if tm, err := time.Parse(layout, s); err == nil && tm.Before(time.Unix(0, 0)) && tm.Year() >= 0 {
				return tm, true
			}
		}
	}
	return time.Time{}, false
}

// traceContext checks the ids of the trace context (any event) and fills
// its status as Relay's normalize_contexts does; it returns the context.
func (e *norm) traceContext() *event.Node {
	tc := e.ev.Get("contexts").Get("trace")
	if tc.Kind() != event.Object {
		return nil
	}
	e.id(tc, "trace_id", 32, "contexts", "trace")
	e.id(tc, "span_id", 16, "contexts", "trace")
	if tc.Get("status").IsNull() {
		e.t.Set(tc, "status", e.t.NewString("unknown"))
	}
	return tc
}

// id checks o's hex id key of digits hex digits (a trace id may come as a
// UUID with dashes), writes it in lower case, and removes one that is not
// an id, recording why at path+key.
func (e *norm) id(o *event.Node, key string, digits int, path ...string) {
	v := o.Get(key)
	if v.IsNull() {
		return
	}
	var buf [32]byte
	if id, ok := hexID(v.Bytes(), digits, buf[:0]); ok && v.Kind() == event.String {
		if !bytes.Equal(id, v.Bytes()) {
			e.t.Set(o, key, e.t.NewString(string(id)))
		}
		return
	}
	e.t.Delete(o, key)
	reason := "expected a trace id"
	if digits == 16 {
		reason = "expected a span id"
	}
	e.invalidAt(v, reason, append(path[:len(path):len(path)], key)...)
}

// hexID appends s in lower case without dashes to dst when it is digits
// hex digits (dashes are allowed in a 32-digit id).
func hexID(s []byte, digits int, dst []byte) ([]byte, bool) {
	if digits == 32 {
		id, ok := uuid(s)
		return append(dst, id[:]...), ok
	}
	if len(s) != digits {
		return dst, false
	}
	for _, c := range s {
		switch {
		case c >= '0' && c <= '9', c >= 'a' && c <= 'f':
		case c >= 'A' && c <= 'F':
			c += 'a' - 'A'
		default:
			return dst, false
		}
		dst = append(dst, c)
	}
	return dst, true
}

// validateTransaction is Relay's validate_transaction after the
// timestamps were normalized: both timestamps, start ≤ end, a trace
// context with trace and span id, and every span an object with both
// timestamps in order and both ids.
func (e *norm) validateTransaction(tc *event.Node) error {
	ev := e.ev
	end, start := parseTime(ev.Get("timestamp")), parseTime(ev.Get("start_timestamp"))
	switch {
	case !end.ok:
		return invalidTransaction("timestamp hard-required for transaction events")
	case !start.ok:
		return invalidTransaction("start_timestamp hard-required for transaction events")
	case end.us < start.us:
		return invalidTransaction("end timestamp is smaller than start timestamp")
	case tc == nil:
		return invalidTransaction("missing valid trace context")
	case tc.Get("trace_id").IsNull():
		return invalidTransaction("trace context is missing trace_id")
	case tc.Get("span_id").IsNull():
		return invalidTransaction("trace context is missing span_id")
	}
	spans := ev.Get("spans")
	for i := range spans.Len() {
		s := spans.Index(i)
		if s.Kind() != event.Object {
			return invalidTransaction("spans must be valid in transaction event")
		}
		idx := strconv.Itoa(i)
		e.id(s, "trace_id", 32, "spans", idx)
		e.id(s, "span_id", 16, "spans", idx)
		e.id(s, "parent_span_id", 16, "spans", idx)
		end, start := parseTime(s.Get("timestamp")), parseTime(s.Get("start_timestamp"))
		switch {
		case !end.ok:
			return invalidTransaction("span is missing timestamp")
		case !start.ok:
			return invalidTransaction("span is missing start_timestamp")
		case end.us < start.us:
			return invalidTransaction("end timestamp is smaller than start timestamp")
		case s.Get("trace_id").IsNull():
			return invalidTransaction("span is missing trace_id")
		case s.Get("span_id").IsNull():
			return invalidTransaction("span is missing span_id")
		}
	}
	return nil
}

// transaction is Relay's TransactionsProcessor without clusterer rules: a
// default name, the default transaction_info.source, URL-like names with
// identifiers replaced by "*" (source "sanitized"), and op "default" on
// the trace context and on spans without one.
func (e *norm) transaction(tc *event.Node) {
	t, ev := e.t, e.ev
	name := ev.Get("transaction")
	if !name.IsNull() && name.Kind() != event.String {
		e.invalid("transaction", name, "expected a string")
		name = nil
	}
	if len(name.Bytes()) == 0 {
		name = t.NewString("<unlabeled transaction>")
		t.Set(ev, "transaction", name)
	}
	info := ev.Get("transaction_info")
	if !info.IsNull() && info.Kind() != event.Object {
		e.invalid("transaction_info", info, "expected an object")
		info = nil
	}
	src := info.Get("source")
	if !src.IsNull() && src.Kind() != event.String {
		t.Delete(info, "source")
		e.invalidAt(src, "expected a string", "transaction_info", "source")
		src = nil
	}
	hasSlash := bytes.IndexByte(name.Bytes(), '/') >= 0
	if src.IsNull() && !(hasSlash && e.highCardinalitySDK(tc)) {
		src = t.NewString("unknown")
		info = e.setIn(ev, info, "transaction_info", "source", src)
	}
	if src.Is("url") || src.Is("sanitized") || src.IsNull() && hasSlash {
		e.scrubName(name)
		if !src.Is("sanitized") {
			e.setIn(ev, info, "transaction_info", "source", t.NewString("sanitized"))
		}
	}
	if tc != nil && tc.Get("op").IsNull() {
		t.Set(tc, "op", t.NewString("default"))
	}
	spans := ev.Get("spans")
	for i := range spans.Len() {
		if s := spans.Index(i); s.Get("op").IsNull() {
			t.Set(s, "op", t.NewString("default"))
		}
	}
}

// setIn sets key of obj (created as parent's member pkey when nil) to v
// and returns obj.
func (e *norm) setIn(parent, obj *event.Node, pkey, key string, v *event.Node) *event.Node {
	if obj == nil || obj.Kind() != event.Object {
		obj = e.t.NewObject()
		e.t.Set(parent, pkey, obj)
	}
	e.t.Set(obj, key, v)
	return obj
}

// rawURLSDKs are the SDKs Relay assumes to send raw URLs as transaction
// names (RAW_URL_SDKS).
var rawURLSDKs = []string{
	"sentry.javascript.angular", "sentry.javascript.browser", "sentry.javascript.ember",
	"sentry.javascript.gatsby", "sentry.javascript.react", "sentry.javascript.remix",
	"sentry.javascript.vue", "sentry.javascript.nextjs", "sentry.php.laravel", "sentry.php.symfony",
}

// rubyURLStatuses are the span statuses of the Ruby Rack integration that
// mean a raw URL was sent as the name (RUBY_URL_STATUSES).
var rubyURLStatuses = []string{
	"invalid_argument", "unauthenticated", "permission_denied", "not_found", "already_exists",
	"resource_exhausted", "cancelled", "internal_error", "unimplemented", "unavailable", "deadline_exceeded",
}

// highCardinalitySDK is Relay's is_high_cardinality_sdk: whether an SDK
// that sends no transaction source is known to send raw URLs.
func (e *norm) highCardinalitySDK(tc *event.Node) bool {
	sdk := e.ev.Get("sdk")
	if sdk.Kind() != event.Object {
		return false
	}
	name := sdk.Get("name")
	for _, s := range rawURLSDKs {
		if name.Is(s) {
			return true
		}
	}
	hasIntegration := func(want string) bool {
		l := sdk.Get("integrations")
		for i := range l.Len() {
			if l.Index(i).Is(want) {
				return true
			}
		}
		return false
	}
	switch {
	case name.Is("sentry.python"):
		return hasIntegration("django") && e.tagIs("http.status_code", "404")
	case name.Is("sentry.javascript.node"):
		return bytes.EqualFold(e.ev.Get("request").Get("method").Bytes(), []byte("options")) && hasIntegration("Express")
	case name.Is("sentry.ruby"):
		if !e.ev.Get("modules").Has("rack") {
			return false
		}
		st := tc.Get("status")
		for _, s := range rubyURLStatuses {
			if st.Is(s) {
				return true
			}
		}
	}
	return false
}

// tagIs reports whether the normalized tags (pairs) have key with value.
func (e *norm) tagIs(key, value string) bool {
	l := e.ev.Get("tags")
	for i := range l.Len() {
		if p := l.Index(i); p.Len() == 2 && p.Index(0).Is(key) && p.Index(1).Is(value) {
			return true
		}
	}
	return false
}

// nameGroups are the named groups of transactionNameRE, in its order.
var nameGroups = []string{"uuid", "sha1", "md5", "date", "hex", "int"}

// transactionNameRE is Relay's TRANSACTION_NAME_NORMALIZER_REGEX (written
// without the x flag, which RE2 lacks). RE2's \b and \d are ASCII where
// Rust's are Unicode.
var transactionNameRE = regexp.MustCompile(`` +
	`(?P<uuid>[^/\\]*\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b[^/\\]*)|` +
	`(?P<sha1>[^/\\]*\b[0-9a-fA-F]{40}\b[^/\\]*)|` +
	`(?P<md5>[^/\\]*\b[0-9a-fA-F]{32}\b[^/\\]*)|` +
	`(?P<date>[^/\\]*(?:` +
	`(?:\d{4}-[01]\d-[0-3]\dT[0-2]\d:[0-5]\d:[0-5]\d\.\d+([+-][0-2]\d:[0-5]\d|Z))|` +
	`(?:\d{4}-[01]\d-[0-3]\dT[0-2]\d:[0-5]\d:[0-5]\d([+-][0-2]\d:[0-5]\d|Z))|` +
	`(?:\d{4}-[01]\d-[0-3]\dT[0-2]\d:[0-5]\d([+-][0-2]\d:[0-5]\d|Z))` +
	`)|(?:` +
	`\b(?:(Sun|Mon|Tue|Wed|Thu|Fri|Sat)\s+)?(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)\s+(?:[\d]{1,2})\s+(?:[\d]{2}:[\d]{2}:[\d]{2})\s+[\d]{4}` +
	`)|(?:` +
	`\b(?:(Sun|Mon|Tue|Wed|Thu|Fri|Sat),\s+)?(?:0[1-9]|[1-2]?[\d]|3[01])\s+(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)\s+(?:19[\d]{2}|[2-9][\d]{3})\s+(?:2[0-3]|[0-1][\d]):([0-5][\d])(?::(60|[0-5][\d]))?\s+(?:[-\+][\d]{2}[0-5][\d]|(?:UT|GMT|(?:E|C|M|P)(?:ST|DT)|[A-IK-Z]))` +
	`)[^/\\]*)|` +
	`(?P<hex>[^/\\]*\b0[xX][0-9a-fA-F]+\b[^/\\]*)|` +
	`(?:^|[/\\])(?P<int>(:?[^%/\\]|%[0-9a-fA-F]{2})*\d{2,}[^/\\]*)`)

var nameGroupIdx = func() []int {
	idx := make([]int, len(nameGroups))
	for i, g := range nameGroups {
		idx[i] = transactionNameRE.SubexpIndex(g)
	}
	return idx
}()

// scrubName replaces identifiers in a URL-like transaction name with "*",
// with a substitution remark per identifier and the original value in
// _meta (Relay's scrub_identifiers). It runs only on URL-like names of
// transactions, so the regexp is off the error-event path.
func (e *norm) scrubName(name *event.Node) {
	s := name.Bytes()
	if bytes.IndexFunc(s, func(r rune) bool { return r >= '0' && r <= '9' }) < 0 {
		return // every group needs a digit
	}
	matches := transactionNameRE.FindAllSubmatchIndex(s, -1)
	if len(matches) == 0 {
		return
	}
	var out []byte
	var rem []event.Remark
	last := 0
	for _, m := range matches {
		for gi, g := range nameGroupIdx {
			if m[2*g] < 0 {
				continue
			}
			start, end := m[2*g], m[2*g+1]
			out = append(append(out, s[last:start]...), '*')
			last = end
			rem = append(rem, event.Remark{Rule: nameGroups[gi], Type: 's', Start: start, End: end})
			break
		}
	}
	out = append(out, s[last:]...)
	if len(out) == 0 || string(out) == "*" || bytes.Equal(out, s) {
		return // Relay leaves such a name (its remarks aside) unchanged
	}
	orig := e.t.NewStringBytes(s)
	e.t.SetString(name, out)
	m := e.t.MetaOf(name)
	m.Remarks = append(m.Remarks, rem...)
	m.Val = orig
}
