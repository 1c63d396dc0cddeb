package normalize

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"net/netip"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/baton-relay/baton/relay/event"
)

// legacyAliases are the pre-interface names Relay's event schema still
// accepts for current fields (`legacy_alias` in relay-event-schema).
var legacyAliases = [][2]string{
	{"sentry.interfaces.Message", "logentry"},
	{"sentry.interfaces.Exception", "exception"},
	{"sentry.interfaces.Stacktrace", "stacktrace"},
	{"sentry.interfaces.Template", "template"},
	{"sentry.interfaces.Http", "request"},
	{"sentry.interfaces.User", "user"},
	{"sentry.interfaces.Breadcrumbs", "breadcrumbs"},
	{"sentry.interfaces.Threads", "threads"},
	{"sentry.interfaces.DebugMeta", "debug_meta"},
	{"sentry.interfaces.Csp", "csp"},
	{"sentry.interfaces.Hpkp", "hpkp"},
	{"sentry.interfaces.ExpectCT", "expectct"},
	{"sentry.interfaces.ExpectStaple", "expectstaple"},
	{"message", "logentry"},
}

// validPlatforms is Relay's list; anything else becomes "other".
var validPlatforms = []string{"as3", "c", "cfml", "cocoa", "csharp", "elixir", "haskell", "go", "groovy", "java", "javascript", "native", "node", "objc", "other", "perl", "php", "python", "ruby"}

func (n *Normalizer) event(t *event.Tree, in *Input) error {
	e := &norm{t: t, ev: t.Root(), in: in, models: n.opts.AndroidModels}
	ev := e.ev
	e.root = scanRoot(ev)
	if e.has(rkAlias) {
		for _, a := range legacyAliases {
			if ev.Has(a[0]) {
				if ev.Has(a[1]) {
					t.Delete(ev, a[0])
				} else {
					t.Rename(ev, a[0], a[1])
				}
			}
		}
		e.root = scanRoot(ev)
	}
	e.eventID()
	if e.has(rkLogentry) {
		e.logentry()
	}
	for _, w := range [...]struct {
		k   rootKeys
		key string
	}{{rkException, "exception"}, {rkThreads, "threads"}, {rkBreadcrumbs, "breadcrumbs"}} {
		if e.has(w.k) {
			e.wrapValues(w.key)
		}
	}
	if e.has(rkStacktrace) {
		e.moveStacktrace()
	}
	if e.has(rkException) {
		e.exceptions()
	}
	e.releaseEnv()
	e.tags()
	e.level()
	e.platform()
	if e.has(rkRequest) {
		e.request()
	}
	e.user()
	n.timestamps(e)
	if e.has(rkBreadcrumbs | rkSpans) {
		e.subTimestamps()
	}
	var tc *event.Node
	if e.has(rkContexts) {
		e.contexts()
		tc = e.traceContext()
	}
	if e.transactionType() {
		if err := e.validateTransaction(tc); err != nil {
			return err
		}
		e.transaction(tc)
		n.measurements(e, parseTime(ev.Get("start_timestamp")), parseTime(ev.Get("timestamp")))
	} else if e.has(rkMeasurements) && ev.Has("measurements") {
		t.Delete(ev, "measurements") // only transactions have them (Relay's normalize_measurements)
	}
	e.breakdowns(in.Breakdowns)
	if e.has(rkRequest) {
		n.userAgentContexts(e)
	}
	e.trim()
	e.tagEnvironment()
	return nil
}

func (e *norm) eventID() {
	t, ev := e.t, e.ev
	if v := ev.Get("event_id"); !v.IsNull() {
		if v.Kind() == event.String {
			if id, ok := uuid(v.Bytes()); ok {
				if !bytes.Equal(id[:], v.Bytes()) {
					t.Set(ev, "event_id", t.NewString(string(id[:])))
				}
				return
			}
		}
		e.invalid("event_id", v, "expected a UUID")
	}
	if id, ok := uuid([]byte(e.in.EventID)); ok {
		t.Set(ev, "event_id", t.NewString(string(id[:])))
		return
	}
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	t.Set(ev, "event_id", t.NewString(hex.EncodeToString(b[:])))
}

// requestEnv is the event's request.env, or nil.
func (e *norm) requestEnv() *event.Node {
	if !e.has(rkRequest) {
		return nil
	}
	return e.ev.Get("request").Get("env")
}

// transactionType reports whether the event's type is "transaction".
func (e *norm) transactionType() bool {
	return e.has(rkType) && e.ev.Get("type").Is("transaction")
}

// parseUUID accepts 32 hex digits, with or without dashes and braces, and
// returns them in lower case without dashes (Relay's event id form).
func parseUUID(s string) (string, bool) {
	id, ok := uuid([]byte(s))
	return string(id[:]), ok
}

func uuid(s []byte) (id [32]byte, ok bool) {
	s = bytes.TrimSuffix(bytes.TrimPrefix(s, []byte("{")), []byte("}"))
	n := 0
	for _, c := range s {
		switch {
		case c == '-':
			continue
		case n == 32:
			return id, false
		case c >= '0' && c <= '9', c >= 'a' && c <= 'f':
		case c >= 'A' && c <= 'F':
			c += 'a' - 'A'
		default:
			return id, false
		}
		id[n] = c
		n++
	}
	return id, n == 32
}

// logentry turns a string message into {formatted}, formats message with
// params, and keeps formatted only when message equals it.
func (e *norm) logentry() {
	t, ev := e.t, e.ev
	v := ev.Get("logentry")
	if v.IsNull() {
		return
	}
	var le *event.Node
	switch v.Kind() {
	case event.String:
		le = t.NewObject()
		t.Set(le, "formatted", v)
	case event.Object:
		le = v
	default:
		e.invalid("logentry", v, "expected a log entry")
		return
	}
	for _, k := range []string{"message", "formatted"} {
		switch c := le.Get(k); {
		case c == nil, c.Kind() == event.String:
		case c.Kind() == event.Null:
			t.Delete(le, k)
		default:
			t.Delete(le, k)
			e.invalidAt(c, "expected a string", "logentry", k)
		}
	}
	if le.Len() == 0 {
		t.Delete(ev, "logentry")
		return
	}
	msgN, fmtN := le.Get("message"), le.Get("formatted")
	msg, fmtd := msgN.Bytes(), fmtN.Bytes()
	hasFormatted := fmtN != nil
	if !hasFormatted && msgN == nil {
		e.invalid("logentry", le, "no message present")
		return
	}
	if params := le.Get("params"); le.Has("params") && !hasFormatted && len(msg) > 0 {
		if s, chars, cut, ok := formatMessage(string(msg), params); ok {
			fmtd, hasFormatted = []byte(s), true
			f := t.NewStringBytes(fmtd)
			t.Set(le, "formatted", f)
			if cut { // trimming cuts it further and keeps this length
				t.MetaOf(f).Len = chars
			}
		}
	}
	if !hasFormatted || (msgN != nil && bytes.Equal(msg, fmtd)) {
		if msgN != nil {
			t.Set(le, "formatted", msgN)
		}
		t.Delete(le, "message")
	}
	if le != v {
		t.Set(ev, "logentry", le)
	}
}

// maxFormatted is how much of a formatted message formatMessage builds:
// more characters than trimming keeps of it (limMessage), at up to four
// bytes each. Past it only characters are counted, so a template that
// repeats a long parameter costs its length, not the product.
var maxFormatted = 4*(limMessage.chars+limMessage.allowance) + 4

// formatMessage fills %s / %(name)s (Python) or {} / {0} (curly) holders from
// params, as Relay's logentry normalization does; ok is false when the
// template does not fit the params. When the result would pass
// maxFormatted, it is cut there (cut) and chars is the length in
// characters of the whole.
func formatMessage(format string, params *event.Node) (s string, chars int, cut, ok bool) {
	var (
		sb      []byte
		scratch []byte
		memo    []int // characters of params.Index(i) as written, +1; 0: not yet
	)
	lit := func(c byte) {
		if c&0xC0 != 0x80 {
			chars++
		}
		if len(sb) < maxFormatted {
			sb = append(sb, c)
		}
	}
	str := func(i int) {
		v := params.Index(i)
		var b []byte
		switch v.Kind() {
		case event.String:
			b = v.Bytes()
		case event.Null:
			b = []byte("None")
		default:
			scratch = v.AppendJSON(scratch[:0])
			b = scratch
		}
		if memo == nil {
			memo = make([]int, params.Len())
		}
		if memo[i] == 0 {
			memo[i] = utf8.RuneCount(b) + 1
		}
		chars += memo[i] - 1
		if room := maxFormatted - len(sb); room > 0 {
			sb = append(sb, b[:min(len(b), room)]...)
		}
	}
	isArr, isObj := params.Kind() == event.Array, params.Kind() == event.Object
	// find is params.Find, through an index for a large object: a
	// template may name a key once per character.
	var index map[string]int
	find := func(key string) int {
		if params.Len() <= 16 {
			return params.Find(key)
		}
		if index == nil {
			index = make(map[string]int, params.Len())
			for i := params.Len() - 1; i >= 0; i-- { // the first of a repeated key wins, as in Find
				index[string(params.Key(i))] = i
			}
		}
		if i, ok := index[key]; ok {
			return i
		}
		return -1
	}
	done := func() (string, int, bool, bool) { return string(sb), chars, len(sb) >= maxFormatted, true }
	next := 0
	if strings.Contains(format, "%") {
		for i := 0; i < len(format); i++ {
			c := format[i]
			if c != '%' || i+1 >= len(format) {
				lit(c)
				continue
			}
			i++
			switch {
			case format[i] == '%':
				lit('%')
			case format[i] == '(':
				end := strings.IndexByte(format[i:], ')')
				if end < 0 || !isObj || i+end+1 >= len(format) {
					return "", 0, false, false
				}
				j := find(format[i+1 : i+end])
				if j < 0 {
					return "", 0, false, false
				}
				str(j)
				i += end + 1 // the conversion letter
			default:
				if !isArr || next >= params.Len() {
					return "", 0, false, false
				}
				str(next)
				next++
			}
		}
		return done()
	}
	if strings.Contains(format, "{") {
		for i := 0; i < len(format); i++ {
			if format[i] != '{' {
				lit(format[i])
				continue
			}
			end := strings.IndexByte(format[i:], '}')
			if end < 0 {
				return "", 0, false, false
			}
			key := format[i+1 : i+end]
			j := -1
			switch {
			case key == "" && isArr && next < params.Len():
				j = next
				next++
			case isArr:
				if idx, err := strconv.Atoi(key); err == nil && idx >= 0 && idx < params.Len() {
					j = idx
				}
			case isObj:
				j = find(key)
			}
			if j < 0 {
				return "", 0, false, false
			}
			str(j)
			i += end
		}
		return done()
	}
	return "", 0, false, false
}

// wrapValues gives a list, or a single object, the {values: [...]} shape.
func (e *norm) wrapValues(key string) {
	t, ev := e.t, e.ev
	v := ev.Get(key)
	switch v.Kind() {
	case event.Null:
	case event.Array:
		o := t.NewObject()
		t.Set(o, "values", v)
		t.Set(ev, key, o)
	case event.Object:
		if v.Has("values") {
			if l := v.Get("values"); l.Kind() != event.Array && !l.IsNull() {
				e.invalid(key, v, "expected a list of values")
			}
			return
		}
		if v.Len() > 0 {
			o := t.NewObject()
			t.Set(o, "values", t.NewArray(v))
			t.Set(ev, key, o)
		}
	default:
		e.invalid(key, v, "expected a list of values")
	}
}

// values is the list under key's "values", or nil.
func (e *norm) values(key string) *event.Node {
	if l := e.ev.Get(key).Get("values"); l.Kind() == event.Array {
		return l
	}
	return nil
}

// moveStacktrace moves a top-level stacktrace into the only exception, or
// else the only thread, when that one has none.
func (e *norm) moveStacktrace() {
	t, ev := e.t, e.ev
	st := ev.Get("stacktrace")
	if st.IsNull() {
		return
	}
	for _, key := range []string{"exception", "threads"} {
		l := e.values(key)
		if l.Len() != 1 {
			continue
		}
		one := l.Index(0)
		if one.Kind() != event.Object {
			continue
		}
		if one.Get("stacktrace").IsNull() {
			t.Set(one, "stacktrace", st)
			t.Delete(ev, "stacktrace")
		}
		return
	}
}

// lenient is v as a string node the way Relay reads lenient strings: a
// string as it is, a number or boolean as its JSON text.
func (e *norm) lenient(v *event.Node) (*event.Node, bool) {
	switch v.Kind() {
	case event.String:
		return v, true
	case event.Number, event.Bool:
		return e.t.NewStringBytes(v.Raw()), true
	}
	return nil, false
}

func (e *norm) pair(k, v *event.Node) *event.Node { return e.t.NewArray(k, v) }

// level maps level aliases and Python logging numbers to Relay's names; an
// event without one is an error (a transaction: info).
func (e *norm) level() {
	t, ev := e.t, e.ev
	v := ev.Get("level")
	if !v.IsNull() {
		if lvl, good := parseLevel(v); good {
			if !v.Is(lvl) {
				t.Set(ev, "level", t.NewString(lvl))
			}
			return
		}
		e.invalid("level", v, "expected a level")
	}
	if e.transactionType() {
		t.Set(ev, "level", t.NewString("info"))
	} else {
		t.Set(ev, "level", t.NewString("error"))
	}
}

func parseLevel(v *event.Node) (string, bool) {
	switch v.Kind() {
	case event.String:
		switch string(bytes.TrimSpace(v.Bytes())) {
		case "debug":
			return "debug", true
		case "info", "log":
			return "info", true
		case "warning", "warn":
			return "warning", true
		case "error":
			return "error", true
		case "fatal", "critical":
			return "fatal", true
		}
	case event.Number:
		switch string(v.Raw()) {
		case "10":
			return "debug", true
		case "20":
			return "info", true
		case "30":
			return "warning", true
		case "40":
			return "error", true
		case "50":
			return "fatal", true
		}
	}
	return "", false
}

func (e *norm) platform() {
	p := e.ev.Get("platform")
	for _, q := range validPlatforms {
		if p.Is(q) {
			return
		}
	}
	e.t.Set(e.ev, "platform", e.t.NewString("other"))
}

// request turns request headers given as an object into [name, value]
// pairs sorted by name, then normalizes the other fields (request.go).
func (e *norm) request() {
	req := e.ev.Get("request")
	if req.Kind() != event.Object {
		if !req.IsNull() {
			e.invalid("request", req, "expected a request")
		}
		return
	}
	if h := req.Get("headers"); h.Kind() == event.Object {
		e.headerPairs(req, h)
	}
	e.requestFields(req)
}

// headerPairs turns the headers object h into pairs sorted by name.
func (e *norm) headerPairs(req, h *event.Node) {
	t := e.t
	pairs := t.NewArray()
	for _, i := range t.SortedKeys(h) {
		k, hv := t.NewStringBytes(h.Key(i)), h.Index(i)
		if hv.Kind() == event.Array { // several values of one header
			for j := range hv.Len() {
				if s, ok := e.lenient(hv.Index(j)); ok {
					t.Push(pairs, e.pair(k, s))
				}
			}
		} else if s, ok := e.lenient(hv); ok {
			t.Push(pairs, e.pair(k, s))
		}
	}
	t.Set(req, "headers", pairs)
}

// header returns the first value of the named request header
// (case-insensitive) of a normalized event.
func (e *norm) header(name string) []byte {
	return headerOf(e.ev.Get("request").Get("headers"), name)
}

// headerOf returns the first value of the named header (case-insensitive)
// of headers as pairs.
func headerOf(h *event.Node, name string) []byte {
	if h.Kind() != event.Array {
		return nil
	}
	for i := range h.Len() {
		if p := h.Index(i); p.Kind() == event.Array && p.Len() == 2 && bytes.EqualFold(p.Index(0).Bytes(), []byte(name)) {
			return p.Index(1).Bytes()
		}
	}
	return nil
}

// user resolves "{{auto}}" (and, for platforms whose SDKs rely on it, a
// missing address) to the client address, and removes an address that is
// not an IP.
func (e *norm) user() {
	t, ev, addr := e.t, e.ev, e.in.ClientAddr
	user := ev.Get("user")
	if !user.IsNull() && user.Kind() != event.Object {
		e.invalid("user", user, "expected a user")
		return
	}
	if env := e.requestEnv(); env.Get("REMOTE_ADDR").Is("{{auto}}") {
		if addr != "" {
			t.Set(env, "REMOTE_ADDR", t.NewString(addr))
		} else {
			t.Delete(env, "REMOTE_ADDR")
		}
	}
	var ip *event.Node
	ipi := user.Find("ip_address")
	has := ipi >= 0
	if has {
		ip = user.Index(ipi)
	}
	infer := ev.Get("sdk").Get("settings").Get("infer_ip")
	auto := ip.Is("{{auto}}")
	if ip.IsNull() {
		p := ev.Get("platform")
		auto = infer.Is("auto") || !infer.Is("never") && (p.Is("javascript") || p.Is("cocoa") || p.Is("objc"))
	}
	if auto {
		if addr == "" {
			t.Delete(user, "ip_address")
			return
		}
		if user.Kind() != event.Object {
			user = t.NewObject()
			t.Set(ev, "user", user)
		}
		t.Set(user, "ip_address", t.NewString(addr))
		return
	}
	if has && !ip.IsNull() {
		if _, err := netip.ParseAddr(string(ip.Bytes())); ip.Kind() != event.String || err != nil {
			t.Delete(user, "ip_address")
			e.invalidAt(ip, "expected an ip address", "user", "ip_address")
		}
	}
}
