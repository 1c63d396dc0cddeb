package normalize

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/netip"
	"slices"
	"strconv"
	"strings"
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

func (n *Normalizer) event(ev map[string]any, in *Input) {
	m := &meta{ev: ev}
	for _, a := range legacyAliases {
		if v, ok := ev[a[0]]; ok {
			if _, has := ev[a[1]]; !has {
				ev[a[1]] = v
			}
			delete(ev, a[0])
		}
	}
	normalizeEventID(ev, in, m)
	normalizeLogentry(ev, m)
	for _, k := range []string{"exception", "threads", "breadcrumbs"} {
		wrapValues(ev, k, m)
	}
	moveStacktrace(ev)
	normalizeTags(ev, m)
	normalizeLevel(ev, m)
	normalizePlatform(ev)
	normalizeRequest(ev, m)
	normalizeUser(ev, in, m)
	n.normalizeTimestamps(ev, in, m)
	n.userAgentContexts(ev)
}

func normalizeEventID(ev map[string]any, in *Input, m *meta) {
	if v, ok := ev["event_id"]; ok && v != nil {
		if s, ok := v.(string); ok {
			if id, ok := parseUUID(s); ok {
				ev["event_id"] = id
				return
			}
		}
		m.invalid("event_id", v, "expected a UUID")
	}
	if id, ok := parseUUID(in.EventID); ok {
		ev["event_id"] = id
		return
	}
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	ev["event_id"] = hex.EncodeToString(b[:])
}

// parseUUID accepts 32 hex digits, with or without dashes and braces, and
// returns them in lower case without dashes (Relay's event id form).
func parseUUID(s string) (string, bool) {
	s = strings.TrimSuffix(strings.TrimPrefix(s, "{"), "}")
	s = strings.ReplaceAll(s, "-", "")
	if len(s) != 32 {
		return "", false
	}
	if _, err := hex.DecodeString(s); err != nil {
		return "", false
	}
	return strings.ToLower(s), true
}

// normalizeLogentry turns a string message into {formatted}, formats
// message with params, and keeps formatted only when message equals it.
func normalizeLogentry(ev map[string]any, m *meta) {
	v, ok := ev["logentry"]
	if !ok || v == nil {
		return
	}
	var le map[string]any
	switch t := v.(type) {
	case string:
		le = map[string]any{"formatted": t}
	case map[string]any:
		le = t
	default:
		m.invalid("logentry", v, "expected a log entry")
		return
	}
	for _, k := range []string{"message", "formatted"} {
		switch v := le[k].(type) {
		case string:
		case nil:
			delete(le, k)
		default:
			delete(le, k)
			m.invalidAt([]string{"logentry", k}, v, "expected a string")
		}
	}
	if len(le) == 0 {
		delete(ev, "logentry")
		return
	}
	msg, _ := le["message"].(string)
	fmtd, hasFormatted := le["formatted"].(string)
	if !hasFormatted && le["message"] == nil {
		m.invalid("logentry", le, "no message present")
		return
	}
	if params, ok := le["params"]; ok && !hasFormatted && msg != "" {
		if s, ok := formatMessage(msg, params); ok {
			fmtd, hasFormatted = s, true
			le["formatted"] = s
		}
	}
	if !hasFormatted || (le["message"] != nil && msg == fmtd) {
		if le["message"] != nil {
			le["formatted"] = le["message"]
		}
		delete(le, "message")
	}
	ev["logentry"] = le
}

// formatMessage fills %s / %(name)s (Python) or {} / {0} (curly) holders from
// params, as Relay's logentry normalization does; ok is false when the
// template does not fit the params.
func formatMessage(format string, params any) (string, bool) {
	str := func(v any) string {
		switch t := v.(type) {
		case string:
			return t
		case nil:
			return "None"
		default:
			b, _ := json.Marshal(t)
			return string(b)
		}
	}
	var sb strings.Builder
	arr, isArr := params.([]any)
	obj, isObj := params.(map[string]any)
	next := 0
	if strings.Contains(format, "%") {
		for i := 0; i < len(format); i++ {
			c := format[i]
			if c != '%' || i+1 >= len(format) {
				sb.WriteByte(c)
				continue
			}
			i++
			switch {
			case format[i] == '%':
				sb.WriteByte('%')
			case format[i] == '(':
				end := strings.IndexByte(format[i:], ')')
				if end < 0 || !isObj || i+end+1 >= len(format) {
					return "", false
				}
				v, ok := obj[format[i+1:i+end]]
				if !ok {
					return "", false
				}
				sb.WriteString(str(v))
				i += end + 1 // the conversion letter
			default:
				if !isArr || next >= len(arr) {
					return "", false
				}
				sb.WriteString(str(arr[next]))
				next++
			}
		}
		return sb.String(), true
	}
	if strings.Contains(format, "{") {
		for i := 0; i < len(format); i++ {
			if format[i] != '{' {
				sb.WriteByte(format[i])
				continue
			}
			end := strings.IndexByte(format[i:], '}')
			if end < 0 {
				return "", false
			}
			key := format[i+1 : i+end]
			var v any
			var ok bool
			switch {
			case key == "" && isArr && next < len(arr):
				v, ok = arr[next], true
				next++
			case isArr:
				if idx, err := strconv.Atoi(key); err == nil && idx >= 0 && idx < len(arr) {
					v, ok = arr[idx], true
				}
			case isObj:
				v, ok = obj[key]
			}
			if !ok {
				return "", false
			}
			sb.WriteString(str(v))
			i += end
		}
		return sb.String(), true
	}
	return "", false
}

// wrapValues gives a list, or a single object, the {values: [...]} shape.
func wrapValues(ev map[string]any, key string, m *meta) {
	switch t := ev[key].(type) {
	case nil:
	case []any:
		ev[key] = map[string]any{"values": t}
	case map[string]any:
		if _, ok := t["values"]; ok {
			if _, ok := t["values"].([]any); !ok && t["values"] != nil {
				m.invalid(key, t, "expected a list of values")
			}
			return
		}
		if len(t) > 0 {
			ev[key] = map[string]any{"values": []any{t}}
		}
	default:
		m.invalid(key, t, "expected a list of values")
	}
}

func values(ev map[string]any, key string) []any {
	o, _ := ev[key].(map[string]any)
	l, _ := o["values"].([]any)
	return l
}

// moveStacktrace moves a top-level stacktrace into the only exception, or
// else the only thread, when that one has none.
func moveStacktrace(ev map[string]any) {
	st, ok := ev["stacktrace"]
	if !ok || st == nil {
		return
	}
	for _, key := range []string{"exception", "threads"} {
		l := values(ev, key)
		if len(l) != 1 {
			continue
		}
		one, ok := l[0].(map[string]any)
		if !ok {
			continue
		}
		if cur, has := one["stacktrace"]; !has || cur == nil {
			one["stacktrace"] = st
			delete(ev, "stacktrace")
		}
		return
	}
}

// normalizeTags turns an object into [key, value] pairs sorted by key (the
// order of Relay's object type) and values into strings.
func normalizeTags(ev map[string]any, m *meta) {
	v, ok := ev["tags"]
	if !ok || v == nil {
		return
	}
	var pairs []any
	switch t := v.(type) {
	case map[string]any:
		keys := sortedKeys(t)
		for _, k := range keys {
			if s, ok := lenientString(t[k]); ok {
				pairs = append(pairs, []any{k, s})
			}
		}
	case []any:
		for _, p := range t {
			switch pt := p.(type) {
			case []any:
				if len(pt) == 2 {
					k, ok1 := lenientString(pt[0])
					val, ok2 := lenientString(pt[1])
					if ok1 && ok2 {
						pairs = append(pairs, []any{k, val})
					}
				}
			case string: // "key:value" from old SDKs
				if k, val, ok := strings.Cut(pt, ":"); ok {
					pairs = append(pairs, []any{k, val})
				}
			}
		}
	default:
		m.invalid("tags", v, "expected tags")
		return
	}
	if pairs == nil {
		pairs = []any{}
	}
	ev["tags"] = pairs
}

func lenientString(v any) (string, bool) {
	switch t := v.(type) {
	case string:
		return t, true
	case json.Number:
		return t.String(), true
	case bool:
		return strconv.FormatBool(t), true
	}
	return "", false
}

func sortedKeys(o map[string]any) []string {
	keys := make([]string, 0, len(o))
	for k := range o {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// normalizeLevel maps level aliases and Python logging numbers to Relay's
// names; an event without one is an error (a transaction: info).
func normalizeLevel(ev map[string]any, m *meta) {
	v, ok := ev["level"]
	if ok && v != nil {
		if lvl, good := parseLevel(v); good {
			ev["level"] = lvl
			return
		}
		m.invalid("level", v, "expected a level")
	}
	if ev["type"] == "transaction" {
		ev["level"] = "info"
	} else {
		ev["level"] = "error"
	}
}

func parseLevel(v any) (string, bool) {
	switch t := v.(type) {
	case string:
		switch strings.TrimSpace(t) {
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
	case json.Number:
		switch t.String() {
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

func normalizePlatform(ev map[string]any) {
	p, _ := ev["platform"].(string)
	if !slices.Contains(validPlatforms, p) {
		ev["platform"] = "other"
	}
}

// normalizeRequest turns request headers given as an object into
// [name, value] pairs sorted by name.
func normalizeRequest(ev map[string]any, m *meta) {
	req, ok := ev["request"].(map[string]any)
	if !ok {
		if v, has := ev["request"]; has && v != nil {
			m.invalid("request", v, "expected a request")
		}
		return
	}
	switch h := req["headers"].(type) {
	case map[string]any:
		pairs := []any{}
		for _, k := range sortedKeys(h) {
			switch hv := h[k].(type) {
			case []any: // several values of one header
				for _, x := range hv {
					if s, ok := lenientString(x); ok {
						pairs = append(pairs, []any{k, s})
					}
				}
			default:
				if s, ok := lenientString(hv); ok {
					pairs = append(pairs, []any{k, s})
				}
			}
		}
		req["headers"] = pairs
	}
}

// header returns the first value of the named request header
// (case-insensitive) of a normalized event.
func header(ev map[string]any, name string) string {
	req, _ := ev["request"].(map[string]any)
	h, _ := req["headers"].([]any)
	for _, p := range h {
		if pair, ok := p.([]any); ok && len(pair) == 2 {
			if k, _ := pair[0].(string); strings.EqualFold(k, name) {
				s, _ := pair[1].(string)
				return s
			}
		}
	}
	return ""
}

// normalizeUser resolves "{{auto}}" (and, for platforms whose SDKs rely on
// it, a missing address) to the client address, and removes an address that
// is not an IP.
func normalizeUser(ev map[string]any, in *Input, m *meta) {
	user, _ := ev["user"].(map[string]any)
	if v, has := ev["user"]; has && v != nil && user == nil {
		m.invalid("user", v, "expected a user")
		return
	}
	if req, ok := ev["request"].(map[string]any); ok {
		if env, ok := req["env"].(map[string]any); ok && env["REMOTE_ADDR"] == "{{auto}}" {
			if in.ClientAddr != "" {
				env["REMOTE_ADDR"] = in.ClientAddr
			} else {
				delete(env, "REMOTE_ADDR")
			}
		}
	}
	ip, has := user["ip_address"]
	infer := ""
	if sdk, ok := ev["sdk"].(map[string]any); ok {
		if st, ok := sdk["settings"].(map[string]any); ok {
			infer, _ = st["infer_ip"].(string)
		}
	}
	auto := ip == "{{auto}}"
	if !has || ip == nil {
		p, _ := ev["platform"].(string)
		auto = infer == "auto" || infer != "never" && (p == "javascript" || p == "cocoa" || p == "objc")
	}
	if auto {
		if in.ClientAddr == "" {
			delete(user, "ip_address")
			return
		}
		if user == nil {
			user = map[string]any{}
			ev["user"] = user
		}
		user["ip_address"] = in.ClientAddr
		return
	}
	if has && ip != nil {
		s, ok := ip.(string)
		if _, err := netip.ParseAddr(s); !ok || err != nil {
			delete(user, "ip_address")
			m.invalidAt([]string{"user", "ip_address"}, ip, "expected an ip address")
		}
	}
}
