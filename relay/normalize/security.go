package normalize

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/baton-relay/baton/relay/event"
)

// Security appends the security event made from one security report (the
// payload of a raw_security item, or the body of /security/ or
// /csp-report/): CSP in both formats (a {"csp-report": …} object, or a
// Reporting API list of one "csp-violation" report or the report itself),
// Expect-CT,
// Expect-Staple and HPKP. The event is then normalized like any event.
func (n *Normalizer) Security(dst, src []byte, in *Input) ([]byte, error) {
	if in == nil {
		in = &Input{}
	}
	raw, err := decodeReport(src)
	if err != nil {
		return dst, err
	}
	ev, err := securityEvent(raw, in)
	if err != nil {
		return dst, err
	}
	return n.appendSecurity(dst, ev, in), nil
}

func (n *Normalizer) appendSecurity(dst []byte, ev map[string]any, in *Input) []byte {
	t := event.New()
	defer t.Release()
	t.SetRoot(fromAny(t, ev))
	n.event(t, in)
	return t.AppendJSON(dst)
}

// SecurityReports is Security for a body that may hold several reports: a
// Reporting API list (application/reports+json) gives one security event
// per "csp-violation" report, as browsers batch reports for one endpoint;
// reports of other types in the list (deprecation, intervention, …) are
// skipped. Any other body gives its one event, as Security. The events are
// appended to dst one after the other, the end offset of each in dst is
// appended to ends. Only the first event takes in.EventID; the others get
// random ids. A list without a CSP report is an error wrapping ErrInvalid.
func (n *Normalizer) SecurityReports(dst, src []byte, in *Input, ends []int) ([]byte, []int, error) {
	if in == nil {
		in = &Input{}
	}
	raw, err := decodeReport(src)
	if err != nil {
		return dst, ends, err
	}
	list, ok := raw.([]any)
	if !ok {
		list = []any{raw}
	}
	var evs []map[string]any
	for _, r := range list {
		if m, ok := r.(map[string]any); ok && len(list) > 1 && m["type"] != "csp-violation" {
			continue
		}
		ev, err := securityEvent(r, in)
		if err != nil {
			return dst, ends, err
		}
		evs = append(evs, ev)
	}
	if len(evs) == 0 {
		return dst, ends, fmt.Errorf("%w: security report list holds no csp-violation report", ErrInvalid)
	}
	one := *in
	for i, ev := range evs {
		if i == 1 {
			one.EventID = ""
		}
		dst = n.appendSecurity(dst, ev, &one)
		ends = append(ends, len(dst))
	}
	return dst, ends, nil
}

// fromAny builds the tree of a decoded JSON value, object keys sorted.
func fromAny(t *event.Tree, v any) *event.Node {
	switch x := v.(type) {
	case map[string]any:
		o := t.NewObject()
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			t.Set(o, k, fromAny(t, x[k]))
		}
		return o
	case []any:
		a := t.NewArray()
		for _, e := range x {
			t.Push(a, fromAny(t, e))
		}
		return a
	case string:
		return t.NewString(x)
	case json.Number:
		return t.NewNumber([]byte(x))
	case bool:
		return t.NewBool(x)
	}
	return t.NewNull()
}

func securityEvent(raw any, in *Input) (map[string]any, error) {
	ua := in.UserAgent
	var (
		ev  map[string]any
		err error
	)
	switch t := raw.(type) {
	case []any: // Reporting API
		if len(t) != 1 {
			return nil, fmt.Errorf("%w: security report list holds %d reports, want 1 (see SecurityReports)", ErrInvalid, len(t))
		}
		return securityEvent(t[0], in)
	case map[string]any:
		switch {
		case t["type"] == "csp-violation": // one report of a Reporting API list
			body, _ := t["body"].(map[string]any)
			if body == nil {
				return nil, fmt.Errorf("%w: csp-violation report without a body", ErrInvalid)
			}
			if ua == "" {
				ua, _ = t["user_agent"].(string)
			}
			ev, err = cspEvent(map[string]any{
				"document_uri":        body["documentURL"],
				"referrer":            body["referrer"],
				"blocked_uri":         body["blockedURL"],
				"effective_directive": body["effectiveDirective"],
				"violated_directive":  body["effectiveDirective"],
				"original_policy":     body["originalPolicy"],
				"source_file":         body["sourceFile"],
				"script_sample":       body["sample"],
				"disposition":         body["disposition"],
				"status_code":         body["statusCode"],
				"line_number":         body["lineNumber"],
				"column_number":       body["columnNumber"],
			})
		case t["csp-report"] != nil:
			r, ok := t["csp-report"].(map[string]any)
			if !ok {
				return nil, fmt.Errorf("%w: csp-report is not an object", ErrInvalid)
			}
			ev, err = cspEvent(snakeKeys(r, "document-uri", "referrer", "blocked-uri", "effective-directive", "violated-directive", "original-policy", "source-file", "script-sample", "disposition", "status-code", "line-number", "column-number"))
		case t["expect-ct-report"] != nil:
			r, ok := t["expect-ct-report"].(map[string]any)
			if !ok {
				return nil, fmt.Errorf("%w: expect-ct-report is not an object", ErrInvalid)
			}
			ev = certEvent("expectct", "Expect-CT failed for '%s'", snakeKeys(r, "date-time", "hostname", "port", "effective-expiration-date", "served-certificate-chain", "validated-certificate-chain", "scts"), "hostname", "port")
		case t["expect-staple-report"] != nil:
			r, ok := t["expect-staple-report"].(map[string]any)
			if !ok {
				return nil, fmt.Errorf("%w: expect-staple-report is not an object", ErrInvalid)
			}
			ev = certEvent("expectstaple", "Expect-Staple failed for '%s'", snakeKeys(r, "date-time", "hostname", "port", "response-status", "cert-status", "effective-expiration-date", "served-certificate-chain", "validated-certificate-chain", "ocsp-response"), "hostname", "port", "response_status", "cert_status")
		case t["known-pins"] != nil:
			ev = certEvent("hpkp", "Public key pinning validation failed for '%s'", snakeKeys(t, "date-time", "hostname", "port", "effective-expiration-date", "include-subdomains", "noted-hostname", "served-certificate-chain", "validated-certificate-chain", "known-pins"), "hostname", "port", "include-subdomains")
			delete(ev, "culprit")
		default:
			return nil, fmt.Errorf("%w: unknown security report", ErrInvalid)
		}
	default:
		return nil, fmt.Errorf("%w: security report is not a JSON object or list", ErrInvalid)
	}
	if err != nil {
		return nil, err
	}
	ev["logger"] = "csp"
	if in.Release != "" {
		ev["release"] = in.Release
	}
	if in.Environment != "" {
		ev["environment"] = in.Environment
	}
	if in.ClientAddr != "" {
		ev["user"] = map[string]any{"ip_address": in.ClientAddr}
	}
	// Headers of the original request, sorted by name as Relay's pair list.
	req, _ := ev["request"].(map[string]any)
	h := map[string]any{}
	if ref, _ := ev["_referer"].(string); ref != "" {
		h["Referer"] = ref
	} else if in.Referer != "" {
		h["Referer"] = in.Referer
	}
	delete(ev, "_referer")
	if in.Origin != "" {
		h["Origin"] = in.Origin
	}
	if ua != "" {
		h["User-Agent"] = ua
	}
	if len(h) > 0 {
		req["headers"] = h
	}
	return ev, nil
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

// snakeKeys keeps the listed keys of r, renamed from kebab to snake case,
// and leaves out null values.
func snakeKeys(r map[string]any, keys ...string) map[string]any {
	out := map[string]any{}
	for _, k := range keys {
		if v, ok := r[k]; ok && v != nil {
			out[strings.ReplaceAll(k, "-", "_")] = v
		}
	}
	return out
}

func str(v any) string { s, _ := v.(string); return s }

// cspDirectives are the directives Relay knows (its CspDirective); a CSP
// report naming none of them is invalid (docs/relay-protocol.md §5.4).
var cspDirectives = map[string]bool{
	"base-uri": true, "child-src": true, "connect-src": true, "default-src": true,
	"fenced-frame-src": true, "font-src": true, "form-action": true, "frame-ancestors": true,
	"frame-src": true, "img-src": true, "manifest-src": true, "media-src": true,
	"object-src": true, "plugin-types": true, "prefetch-src": true, "referrer": true,
	"script-src": true, "script-src-attr": true, "script-src-elem": true, "style-src": true,
	"style-src-elem": true, "style-src-attr": true, "upgrade-insecure-requests": true, "worker-src": true,
	"sandbox": true, "navigate-to": true, "report-uri": true, "report-to": true,
	"block-all-mixed-content": true, "require-sri-for": true, "require-trusted-types-for": true, "trusted-types": true,
}

// cspDirective is the report's directive as Relay reads it: the first word
// of effective_directive when it is a known directive, else the first word
// of violated_directive (Firefox sends no effective-directive); false when
// neither is known.
func cspDirective(effective, violated string) (string, bool) {
	for _, d := range [2]string{effective, violated} {
		d, _, _ = strings.Cut(d, " ")
		if cspDirectives[d] {
			return d, true
		}
	}
	return "", false
}

func cspEvent(c map[string]any) (map[string]any, error) {
	for k, v := range c {
		if v == nil {
			delete(c, k)
		}
	}
	violated := str(c["violated_directive"])
	directive, ok := cspDirective(str(c["effective_directive"]), violated)
	if !ok {
		return nil, fmt.Errorf("%w: CSP report without a known directive (effective %q, violated %q)",
			ErrInvalid, str(c["effective_directive"]), violated)
	}
	c["effective_directive"] = directive
	blocked := str(c["blocked_uri"])
	tags := []any{[]any{"effective-directive", directive}, []any{"blocked-uri", blocked}}
	if u, err := url.Parse(blocked); err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Hostname() != "" {
		tags = append(tags, []any{"blocked-host", u.Hostname()})
	}
	return map[string]any{
		"type":     "csp",
		"csp":      c,
		"culprit":  cspCulprit(violated, str(c["document_uri"])),
		"logentry": map[string]any{"formatted": cspMessage(directive, blocked)},
		"request":  map[string]any{"url": c["document_uri"]},
		"tags":     tags,
		"_referer": c["referrer"],
	}, nil
}

// cspMessage is Relay's human summary of a CSP violation.
func cspMessage(directive, blocked string) string {
	name := map[string]string{"child-src": "child", "connect-src": "connect", "font-src": "font", "form-action": "form-action", "img-src": "image", "manifest-src": "manifest", "media-src": "media", "object-src": "object", "script-src": "script", "style-src": "style"}[directive]
	if name == "" {
		name = directive
	}
	switch blocked {
	case "", "self", "'self'", "inline", "'unsafe-inline'":
		if directive == "script-src" {
			return "Blocked unsafe inline 'script'"
		}
		return fmt.Sprintf("Blocked inline '%s'", name)
	case "eval", "'unsafe-eval'":
		if directive == "script-src" {
			return "Blocked unsafe eval() 'script'"
		}
	}
	return fmt.Sprintf("Blocked '%s' from '%s'", name, cspURI(blocked))
}

// cspURI shortens a blocked URI to host[:port] for http(s), scheme: otherwise.
func cspURI(v string) string {
	switch v {
	case "", "self", "'self'":
		return "'self'"
	case "data", "mediastream", "blob", "filesystem", "http", "https", "file":
		return v + ":"
	}
	u, err := url.Parse(v)
	if err != nil || u.Scheme == "" {
		return v
	}
	if u.Scheme == "http" || u.Scheme == "https" {
		if u.Host != "" {
			return u.Host
		}
		return v
	}
	return u.Scheme + ":"
}

// cspCulprit is the violated directive with sources of the document's own
// origin written as 'self'.
func cspCulprit(violated, document string) string {
	bits := strings.Fields(violated)
	if len(bits) == 0 {
		return ""
	}
	origin := ""
	if u, err := url.Parse(document); err == nil && u.Scheme != "" && u.Host != "" {
		origin = u.Scheme + "://" + u.Host
	}
	keywords := []string{"'none'", "'self'", "'unsafe-inline'", "'unsafe-eval'"}
	for i, b := range bits[1:] {
		if !slices.Contains(keywords, b) && origin != "" && strings.HasPrefix(b, origin) {
			bits[i+1] = "'self'"
		}
	}
	return strings.Join(bits, " ")
}

// certEvent builds the Expect-CT / Expect-Staple / HPKP event: the report
// under its type with dates in RFC 3339, the hostname as culprit and URL,
// and the listed fields as tags.
func certEvent(ty, message string, r map[string]any, tagKeys ...string) map[string]any {
	for _, k := range []string{"date_time", "effective_expiration_date"} {
		if s, ok := r[k].(string); ok {
			if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
				r[k] = t.UTC().Format("2006-01-02T15:04:05.999999+00:00")
			}
		}
	}
	host := str(r["hostname"])
	var tags []any
	for _, k := range tagKeys {
		v := r[strings.ReplaceAll(k, "-", "_")]
		if s, ok := lenientString(v); ok {
			tags = append(tags, []any{k, s})
		}
	}
	return map[string]any{
		"type":     ty,
		ty:         r,
		"culprit":  host,
		"logentry": map[string]any{"formatted": fmt.Sprintf(message, host)},
		"request":  map[string]any{"url": host},
		"tags":     tags,
	}
}

// decodeReport parses a security report body, numbers kept as written.
func decodeReport(src []byte) (any, error) {
	var raw any
	dec := json.NewDecoder(bytes.NewReader(src))
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("%w: security report is not valid JSON: %v", ErrInvalid, err)
	}
	return raw, nil
}
