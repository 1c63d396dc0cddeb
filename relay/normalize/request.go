package normalize

import (
	"bytes"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/baton-relay/baton/relay/event"
)

// requestFields is Relay's normalize_request after the headers became
// pairs: the method upper-cased and checked, the query string and fragment
// split off the URL, the query string and cookies as pairs (the Cookie
// header moved to cookies), the body parsed when it is JSON or a form, and
// inferred_content_type. Each step runs only when its field is there.
func (e *norm) requestFields(req *event.Node) {
	t := e.t
	if m := req.Get("method"); !m.IsNull() {
		e.method(req, m)
	}
	if q := req.Get("query_string"); !q.IsNull() {
		e.pairList(req, "query_string", q, parseQuery, "request")
	}
	if u := req.Get("url"); u.Kind() == event.String {
		e.url(req, u)
	}
	if c := req.Get("cookies"); !c.IsNull() {
		e.pairList(req, "cookies", c, parseCookies, "request")
	}
	if h := req.Get("headers"); h.Kind() == event.Array {
		e.cookieHeader(req, h, "cookie")
	}
	if req.Has("data") || req.Has("inferred_content_type") {
		e.contentType(req, true)
	}
	if env := req.Get("env"); !env.IsNull() && env.Kind() != event.Object {
		t.Delete(req, "env")
		e.invalidAt(env, "expected an object", "request", "env")
	}
}

// method upper-cases the method; one that is not 3 to 32 of A-Z, - and _
// is removed (Relay's METHOD_RE).
func (e *norm) method(req, m *event.Node) {
	b := m.Bytes()
	ok := m.Kind() == event.String && len(b) >= 3 && len(b) <= 32
	upper := true
	for _, c := range b {
		switch {
		case c >= 'A' && c <= 'Z', c == '-', c == '_':
		case c >= 'a' && c <= 'z':
			upper = false
		default:
			ok = false
		}
	}
	if !ok {
		e.t.Delete(req, "method")
		e.invalidAt(m, "invalid method", "request", "method")
		return
	}
	if !upper {
		e.t.Set(req, "method", e.t.NewString(strings.ToUpper(string(b))))
	}
}

// url moves the query string and fragment of the URL into their fields
// (fields already set win) and keeps the URL without them. A URL with a
// scheme and, for http(s), a host is an absolute URL as Relay's url crate
// reads it: its scheme and host are lower-cased and an empty path becomes
// "/". Anything else is split by Relay's heuristic: text after the first
// '#', then after the first '?'. A trailing "…" (old JavaScript SDKs
// truncating) becomes "...".
func (e *norm) url(req, u *event.Node) {
	t := e.t
	s := u.Bytes()
	changed := false
	if bytes.HasSuffix(s, []byte("…")) {
		s = append(append([]byte(nil), s[:len(s)-len("…")]...), "..."...)
		changed = true
	}
	if base, ok := absoluteURL(s); ok {
		rest := s[len(base.raw):]
		var query, frag []byte
		hasFrag := false
		if i := bytes.IndexByte(rest, '#'); i >= 0 {
			frag, hasFrag = rest[i+1:], true
			rest = rest[:i]
		}
		if len(rest) > 0 && rest[0] == '?' {
			query = rest[1:]
		}
		if len(query) > 0 && req.Get("query_string").IsNull() {
			if q := parseQuery(t, query); q.Len() > 0 {
				t.Set(req, "query_string", q)
			}
		}
		if hasFrag && req.Get("fragment").IsNull() {
			t.Set(req, "fragment", t.NewStringBytes(frag))
		}
		if changed || !bytes.Equal(base.norm, s) {
			t.Set(req, "url", t.NewStringBytes(base.norm))
		}
		return
	}
	if i := bytes.IndexByte(s, '#'); i >= 0 {
		if frag := s[i+1:]; len(frag) > 0 && req.Get("fragment").IsNull() {
			t.Set(req, "fragment", t.NewStringBytes(frag))
		}
		s, changed = s[:i], true
	}
	if i := bytes.IndexByte(s, '?'); i >= 0 {
		if q := s[i+1:]; len(q) > 0 && req.Get("query_string").IsNull() {
			if pairs := parseQuery(t, q); pairs.Len() > 0 {
				t.Set(req, "query_string", pairs)
			}
		}
		s, changed = s[:i], true
	}
	if changed {
		t.Set(req, "url", t.NewStringBytes(s))
	}
}

// absURL is an absolute URL's part before its query and fragment: raw as
// written, norm as Relay writes it.
type absURL struct{ raw, norm []byte }

// absoluteURL reads scheme "://" authority path from the start of s.
func absoluteURL(s []byte) (absURL, bool) {
	i := bytes.Index(s, []byte("://"))
	if i <= 0 {
		return absURL{}, false
	}
	scheme := s[:i]
	for j, c := range scheme {
		alpha := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		if !alpha && (j == 0 || !(c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.')) {
			return absURL{}, false
		}
	}
	rest := s[i+3:]
	end := bytes.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	host := rest[:end]
	if len(host) == 0 || bytes.ContainsAny(host, " \t\n\\<>^|") || !utf8.Valid(host) {
		return absURL{}, false
	}
	pathEnd := len(rest)
	if j := bytes.IndexAny(rest[end:], "?#"); j >= 0 {
		pathEnd = end + j
	}
	raw := s[:i+3+pathEnd]
	norm := make([]byte, 0, len(raw)+1)
	norm = append(norm, bytes.ToLower(scheme)...)
	norm = append(norm, "://"...)
	if at := bytes.LastIndexByte(host, '@'); at >= 0 {
		norm = append(norm, host[:at+1]...)
		host = host[at+1:]
	}
	norm = append(norm, bytes.ToLower(host)...)
	path := rest[end:pathEnd]
	if len(path) == 0 {
		path = []byte("/")
	}
	norm = append(norm, path...)
	return absURL{raw: raw, norm: norm}, true
}

// pairList gives a query string or cookies field Relay's pair-list form (path
// leads to the object holding it): a
// string is parsed by parse, an object becomes pairs sorted by key with
// values as lenient strings; pairs stay; anything else is removed.
func (e *norm) pairList(req *event.Node, key string, v *event.Node, parse func(*event.Tree, []byte) *event.Node, path ...string) {
	t := e.t
	switch v.Kind() {
	case event.String:
		if p := parse(t, v.Bytes()); p != nil {
			t.Set(req, key, p)
		} else {
			// Relay's Cookies::from_value: a string that does not parse is
			// removed with "expected cookies" (setting nil crashed the writer).
			t.Delete(req, key)
			e.invalidAt(v, "expected "+key, append(path, key)...)
		}
	case event.Object:
		pairs := t.NewArray()
		for _, i := range t.SortedKeys(v) {
			if s, ok := e.lenient(v.Index(i)); ok {
				t.Push(pairs, e.pair(t.NewStringBytes(v.Key(i)), s))
			}
		}
		t.Set(req, key, pairs)
	case event.Array:
	default:
		t.Delete(req, key)
		e.invalidAt(v, "expected a list of pairs", append(path, key)...)
	}
}

// Pairs past what trimming keeps are not built: a hostile "a&a&…" would
// otherwise cost three nodes per separator, far more than event.Cost
// charged for it. Trimming (trim.go) charges a pair at least 9 bytes of its
// bag (3 for the pair, 3 for each of its strings: flatSize + 1), so it keeps
// at most size/9+1 pairs; maxPairs builds one more, so that trimming still
// cuts there, and the original count is recorded as the len trimming would
// have recorded.
func maxPairs(b bagSize) int { return b.size/9 + 2 }

// maxFormKeys is maxPairs for a form body's object: trimming charges a
// member only for its string value, at least 3 bytes.
var maxFormKeys = bagLarge.size/3 + 2

// setLen records n, the number of pairs there were, on a list built with
// fewer.
func setLen(t *event.Tree, pairs *event.Node, n int) {
	if n > pairs.Len() {
		t.MetaOf(pairs).Len = n
	}
}

// nextPart splits s at the first sep.
func nextPart(s []byte, sep byte) (part, rest []byte) {
	if i := bytes.IndexByte(s, sep); i >= 0 {
		return s[:i], s[i+1:]
	}
	return s, nil
}

// parseQuery reads a query string as application/x-www-form-urlencoded
// pairs (a leading '?' dropped), Relay's Query::parse; at most
// maxPairs(bagSmall), the bag of request.query_string.
func parseQuery(t *event.Tree, s []byte) *event.Node {
	s = bytes.TrimPrefix(s, []byte("?"))
	pairs := t.NewArray()
	limit, n := maxPairs(bagSmall), 0
	for len(s) > 0 {
		var part []byte
		part, s = nextPart(s, '&')
		if len(part) == 0 {
			continue
		}
		if n++; n > limit {
			continue
		}
		k, v, _ := bytes.Cut(part, []byte("="))
		t.Push(pairs, t.NewArray(t.NewStringBytes(formDecode(k)), t.NewStringBytes(formDecode(v))))
	}
	setLen(t, pairs, n)
	return pairs
}

// formDecode decodes '+' and %XX as form_urlencoded does; invalid escapes
// stay as written, invalid UTF-8 becomes U+FFFD.
func formDecode(s []byte) []byte {
	if bytes.IndexByte(s, '%') < 0 && bytes.IndexByte(s, '+') < 0 && utf8.Valid(s) {
		return s
	}
	return appendFormDecode(nil, s)
}

// appendFormDecode appends s decoded as formDecode does to dst.
func appendFormDecode(dst, s []byte) []byte {
	out := dst
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '+':
			out = append(out, ' ')
		case c == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]):
			out = append(out, unhex(s[i+1])<<4|unhex(s[i+2]))
			i += 2
		default:
			out = append(out, c)
		}
	}
	if d := out[len(dst):]; !utf8.Valid(d) {
		out = append(dst, strings.ToValidUTF8(string(d), "\uFFFD")...)
	}
	return out
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c >= 'a':
		return c - 'a' + 10
	case c >= 'A':
		return c - 'A' + 10
	}
	return c - '0'
}

// parseCookies reads "a=b; c=d" into pairs (Relay's Cookies::parse); nil
// when a cookie has no '=' or no name, in which case nothing is parsed. At
// most maxPairs(bagMedium) are built, the bag of request.cookies.
func parseCookies(t *event.Tree, s []byte) *event.Node {
	pairs := t.NewArray()
	limit, n := maxPairs(bagMedium), 0
	for len(s) > 0 {
		var part []byte
		part, s = nextPart(s, ';')
		part = bytes.TrimSpace(part)
		if len(part) == 0 {
			continue
		}
		k, v, ok := bytes.Cut(part, []byte("="))
		k = bytes.TrimSpace(k)
		if !ok || len(k) == 0 {
			return nil
		}
		if n++; n <= limit {
			t.Push(pairs, t.NewArray(t.NewStringBytes(k), t.NewStringBytes(bytes.TrimSpace(v))))
		}
	}
	setLen(t, pairs, n)
	return pairs
}

// cookieHeader moves the Cookie header (name, lower-case) into cookies
// when it parses; with cookies given, the header is dropped.
func (e *norm) cookieHeader(req, h *event.Node, name string) {
	t := e.t
	idx := -1
	for i := range h.Len() {
		if p := h.Index(i); p.Len() == 2 && bytes.EqualFold(p.Index(0).Bytes(), []byte(name)) {
			idx = i
			break
		}
	}
	if idx < 0 {
		return
	}
	if req.Get("cookies").IsNull() {
		c := parseCookies(t, h.Index(idx).Index(1).Bytes())
		if c == nil {
			return
		}
		t.Set(req, "cookies", c)
	}
	kept := t.NewArray()
	for i := range h.Len() {
		if p := h.Index(i); !(p.Len() == 2 && bytes.EqualFold(p.Index(0).Bytes(), []byte(name))) {
			t.Push(kept, p)
		}
	}
	t.Set(req, "headers", kept)
}

// contentType parses a string body that is JSON, or else (withForm) a
// form, into the value and sets inferred_content_type to what it was;
// otherwise the Content-Type header's media type is the inferred type. A
// body parsed by an earlier pass keeps the inferred type it got.
func (e *norm) contentType(req *event.Node, withForm bool) {
	t := e.t
	data := req.Get("data")
	if data.Kind() == event.String {
		raw := data.Bytes()
		// A body that is one JSON string is left a string: parsed, it would
		// be read again by the next pass.
		if v, err := t.ParseValue(raw); err == nil && v.Kind() != event.String {
			t.Set(req, "data", v)
			t.Set(req, "inferred_content_type", t.NewString("application/json"))
			return
		}
		if withForm {
			if v := formBody(t, raw); v != nil {
				t.Set(req, "data", v)
				t.Set(req, "inferred_content_type", t.NewString("application/x-www-form-urlencoded"))
				return
			}
		}
	} else if !data.IsNull() && req.Get("inferred_content_type").Kind() == event.String {
		return
	}
	if ct := headerOf(req.Get("headers"), "Content-Type"); ct != nil {
		if i := bytes.IndexByte(ct, ';'); i >= 0 {
			ct = ct[:i]
		}
		if v := req.Get("inferred_content_type"); !v.Is(string(ct)) {
			t.Set(req, "inferred_content_type", t.NewStringBytes(ct))
		}
		return
	}
	t.Delete(req, "inferred_content_type")
}

// formBody is Relay's urlencoded_from_str: an ASCII body, not XML or
// broken JSON, decoded as a form into an object (sorted keys, the last of
// a repeated key); nil for what would be a false positive (one key with an
// empty or "=" value).
func formBody(t *event.Tree, raw []byte) *event.Node {
	for _, c := range raw {
		if c >= utf8.RuneSelf {
			return nil
		}
	}
	if bytes.HasPrefix(raw, []byte("<?xml")) || bytes.HasPrefix(raw, []byte("{")) || bytes.HasPrefix(raw, []byte("[")) {
		return nil
	}
	f := formKeys{vals: make(map[string][]byte)}
	s := bytes.TrimPrefix(raw, []byte("?"))
	for len(s) > 0 {
		var part []byte
		part, s = nextPart(s, '&')
		if len(part) > 0 {
			k, v, _ := bytes.Cut(part, []byte("="))
			f.add(k, v)
		}
	}
	if f.distinct() == 0 {
		return nil
	}
	order := f.kept()
	if f.distinct() == 1 {
		if v := formDecode(f.vals[order[0]]); len(v) == 0 || string(v) == "=" {
			return nil
		}
	}
	obj := t.NewObject()
	for _, k := range order {
		t.Set(obj, k, t.NewStringBytes(formDecode(f.vals[k])))
	}
	if n := f.distinct(); n > len(order) {
		t.MetaOf(obj).Len = n
	}
	return obj
}

// formKeys keeps, of a form's keys, the maxFormKeys smallest with the last
// value of each (the members trimming's sorted walk keeps), and counts the
// distinct keys for the len trimming records. It holds at most twice
// maxFormKeys keys: past that it keeps the smallest maxFormKeys and from
// then on ignores keys above the largest kept.
type formKeys struct {
	vals    map[string][]byte // decoded key → raw value
	ceiling string            // once pruned: keys above it are not kept
	pruned  bool
	seen    []uint64 // once pruned: hashes of the keys, deduplicated when full
	scratch []byte
}

func (f *formKeys) add(rawKey, v []byte) {
	f.scratch = appendFormDecode(f.scratch[:0], rawKey)
	k := f.scratch
	if !f.pruned {
		if _, ok := f.vals[string(k)]; ok || len(f.vals) < 2*maxFormKeys {
			f.vals[string(k)] = v
			return
		}
		f.prune()
	}
	f.see(hashKey(k))
	if string(k) > f.ceiling {
		return
	}
	if _, ok := f.vals[string(k)]; !ok && len(f.vals) >= 2*maxFormKeys {
		f.prune()
	}
	if string(k) <= f.ceiling {
		f.vals[string(k)] = v
	}
}

// prune keeps the smallest maxFormKeys keys, counting every key seen.
func (f *formKeys) prune() {
	keys := make([]string, 0, len(f.vals))
	for k := range f.vals {
		keys = append(keys, k)
		if !f.pruned {
			f.see(hashKey(k))
		}
	}
	f.pruned = true
	slices.Sort(keys)
	for _, k := range keys[maxFormKeys:] {
		delete(f.vals, k)
	}
	f.ceiling = keys[maxFormKeys-1]
}

// distinct is the number of distinct keys added; past a prune it counts
// hashes, so a collision of two keys' 64-bit FNV-1a hashes undercounts the
// recorded len by one.
func (f *formKeys) distinct() int {
	if f.pruned {
		f.seen = sortUniq(f.seen)
		return len(f.seen)
	}
	return len(f.vals)
}

// see adds a key's hash; a full list is deduplicated before it grows, so
// it holds at most twice as many hashes as there are distinct keys.
func (f *formKeys) see(h uint64) {
	if len(f.seen) == cap(f.seen) {
		f.seen = sortUniq(f.seen)
		if len(f.seen) > cap(f.seen)/2 {
			// Doubling: append's 1.25× growth of a large list allocates
			// five times its final size on the way.
			f.seen = append(make([]uint64, 0, max(2*cap(f.seen), 64)), f.seen...)
		}
	}
	f.seen = append(f.seen, h)
}

func sortUniq(h []uint64) []uint64 {
	slices.Sort(h)
	return slices.Compact(h)
}

// kept is the sorted keys that are kept, at most maxFormKeys.
func (f *formKeys) kept() []string {
	keys := make([]string, 0, len(f.vals))
	for k := range f.vals {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys[:min(len(keys), maxFormKeys)]
}

// hashKey is k's 64-bit FNV-1a hash, written out so that it allocates nothing.
func hashKey[S ~string | ~[]byte](k S) uint64 {
	h := uint64(14695981039346656037)
	for i := range len(k) {
		h = (h ^ uint64(k[i])) * 1099511628211
	}
	return h
}
