package grouping

import (
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Message parameterization: docs/grouping.md "Parameterization". Sentry
// compiles its patterns into one Python regex: at each position, from left
// to right, the first pattern (in table order) that matches there replaces
// its match with "<name>". Go's regexp has the same leftmost-first choice
// among alternatives but no look-around, so every alternative here is an
// anchored Go regexp plus hand-written checks for what Python does with
// look-behind, look-ahead and a leading \b (which depends on the byte before
// the match, invisible to a regexp run on the rest of the string).

// alt is one alternative of a pattern.
type alt struct {
	re *regexp.Regexp // anchored at the candidate position
	// before is checked on the text before the candidate position (nil: no
	// condition); wordStart asks for Python's \b there.
	before    func(s string, i int) bool
	wordStart bool
	// first is a cheap filter on the first byte at the candidate position;
	// pre a cheap necessary condition on the text from it. Both only skip
	// the regexp where it could not match.
	first func(c byte) bool
	pre   func(s string, i int, c *runs) bool
	// check rejects a match (a look-ahead over the match itself); nil: none.
	check func(m string) bool
	// ends, when set, are capture groups: the match ends where the first
	// of them that took part ends. A trailing negative look-ahead is
	// written as a consumed character (or the end) after group 1, so that
	// Go's regexp backtracks into the alternatives as Python does.
	ends []int
	// max bounds the match length in bytes (0: unbounded): the regexp runs
	// on a window, not the rest of the message.
	max int
	// fn replaces re for a pattern matched by hand: the match end, or -1.
	fn func(s string, i int, c *runs) int
}

type pattern struct {
	name string
	// need is a substring every match contains; the pattern is skipped for
	// a message without it ("" = no filter). needDigit: every match has an
	// ASCII digit.
	need      string
	needDigit bool
	alts      []alt
}

func anchored(expr string) *regexp.Regexp { return regexp.MustCompile(`^(?:` + expr + `)`) }

func isWordRune(r rune) bool { return r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) }

// prevRune is the rune before i (utf8.RuneError, false at the start).
func prevRune(s string, i int) (rune, bool) {
	if i == 0 {
		return 0, false
	}
	r, _ := utf8.DecodeLastRuneInString(s[:i])
	return r, true
}

// boundary is Python's \b at i (Unicode word characters).
func boundary(s string, i int) bool {
	p, okp := prevRune(s, i)
	pw := okp && isWordRune(p)
	nw := false
	if i < len(s) {
		r, _ := utf8.DecodeRuneInString(s[i:])
		nw = isWordRune(r)
	}
	return pw != nw
}

func notAfter(class func(r rune) bool) func(string, int) bool {
	return func(s string, i int) bool {
		p, ok := prevRune(s, i)
		return !ok || !class(p)
	}
}

func isDigitRune(r rune) bool  { return unicode.IsDigit(r) }
func isASCIIAlnum(r rune) bool { return r < 128 && (isDigit(byte(r)) || isLetter(byte(r))) }
func isDigit(c byte) bool      { return c >= '0' && c <= '9' }
func isLetter(c byte) bool     { return c|0x20 >= 'a' && c|0x20 <= 'z' }
func isHex(c byte) bool        { return isDigit(c) || (c|0x20 >= 'a' && c|0x20 <= 'f') }

const tlds = `COM|NET|ORG|JP|DE|UK|FR|BR|IT|RU|ES|ME|GOV|PL|CA|AU|CN|CO|IN|NL|EDU|INFO|EU|CH|ID|AT|KR|CZ|MX|BE|TV|SE|TR|TW|AL|UA|IR|VN|CL|SK|LY|CC|TO|NO|FI|US|PT|DK|AR|HU|TK|GR|IL|NEWS|RO|MY|BIZ|IE|ZA|NZ|SG|EE|TH|IO|XYZ|PE|BG|HK|RS|LT|LINK|PH|CLUB|SI|SITE|MOBI|BY|CAT|WIKI|LA|GA|XXX|CF|HR|NG|JOBS|ONLINE|KZ|UG|GQ|AE|IS|LV|PRO|FM|TIPS|MS|SA|APP`

const ipv4 = `((25[0-5]|(2[0-4]|1{0,1}[0-9]){0,1}[0-9])\.){3,3}(25[0-5]|(2[0-4]|1{0,1}[0-9]){0,1}[0-9])`

const ipv6 = `([0-9a-fA-F]{1,4}:){7,7}[0-9a-fA-F]{1,4}|` +
	`([0-9a-fA-F]{1,4}:){1,7}:|` +
	`([0-9a-fA-F]{1,4}:){1,6}:[0-9a-fA-F]{1,4}|` +
	`([0-9a-fA-F]{1,4}:){1,5}(:[0-9a-fA-F]{1,4}){1,2}|` +
	`([0-9a-fA-F]{1,4}:){1,4}(:[0-9a-fA-F]{1,4}){1,3}|` +
	`([0-9a-fA-F]{1,4}:){1,3}(:[0-9a-fA-F]{1,4}){1,4}|` +
	`([0-9a-fA-F]{1,4}:){1,2}(:[0-9a-fA-F]{1,4}){1,5}|` +
	`[0-9a-fA-F]{1,4}:((:[0-9a-fA-F]{1,4}){1,6})|` +
	`:((:[0-9a-fA-F]{1,4}){1,7}|:)|` +
	`fe80:(:[0-9a-fA-F]{0,4}){0,4}%[0-9a-zA-Z]{1,}|` +
	`::(ffff(:0{1,4}){0,1}:){0,1}` + ipv4 + `|` +
	`([0-9a-fA-F]{1,4}:){1,4}:` + ipv4 + `\b`

const mon = `(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)`
const day = `(?:Sun|Mon|Tue|Wed|Thu|Fri|Sat)`
const zone = `(?:UT|GMT|(?:E|C|M|P)(?:ST|DT)|[A-IK-Z])`

func hasDigit(m string) bool {
	return strings.IndexFunc(m, func(r rune) bool { return r >= '0' && r <= '9' }) >= 0
}

func isUpper(c byte) bool { return c >= 'A' && c <= 'Z' }

// patterns is Sentry's parameterization table in its order, restricted to
// the keys the message strategy enables (docs/grouping.md).
var patterns = []pattern{
	{name: "email", need: "@", alts: []alt{{before: emailPossible, re: anchored(`[a-zA-Z0-9.!#$%&'*+/=?^_` + "`" + `{|}~-]+@[a-zA-Z0-9-]+(?:\.[a-zA-Z0-9-]+)*`)}}},
	{name: "url", need: "://", alts: []alt{{wordStart: true, first: func(c byte) bool { return c == 'w' || c == 'h' || c == 'f' },
		before: urlScheme, re: anchored(`(wss?|https?|ftp)://[^\s/$.?#].[^\s]*`)}}},
	{name: "hostname", need: ".", alts: []alt{{wordStart: true, fn: hostname}}},
	{name: "ip", alts: []alt{
		{before: notAfter(func(r rune) bool { return isASCIIAlnum(r) || r == '_' }), re: anchored(`(` + ipv6 + `)(?:[^0-9a-zA-Z]|$)`), max: 64,
			ends: []int{1}, pre: ipv6Start, first: func(c byte) bool { return isHex(c) || c == ':' }},
		{wordStart: true, re: anchored(ipv4 + `\b`), pre: ipv4Start, first: isDigit, max: 16},
	}},
	{name: "traceparent", needDigit: true, need: "-", alts: []alt{
		{wordStart: true, re: anchored(`00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]\b`), pre: prefix("00-"), first: isDigit, max: 55},
		{wordStart: true, re: anchored(`1-[0-9a-f]{8}-[0-9a-f]{24}\b`), pre: prefix("1-"), first: isDigit, max: 35},
	}},
	{name: "uuid", need: "-", alts: []alt{{wordStart: true, pre: uuidStart, first: isHex,
		re: anchored(`[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b`), max: 36}}},
	{name: "sha1", alts: []alt{{wordStart: true, pre: hexRunIs(40), first: isHex, re: anchored(`[0-9a-fA-F]{40}\b`), max: 40}}},
	{name: "md5", alts: []alt{{wordStart: true, pre: hexRunIs(32), first: isHex, re: anchored(`[0-9a-fA-F]{32}\b`), max: 32}}},
	{name: "date", needDigit: true, alts: []alt{
		{re: anchored(day + `,\s\d{1,2}\s` + mon + `\s\d{2,4}\s\d{1,2}:\d{1,2}(:\d{1,2})?\s([-\+][\d]{2}[0-5][\d]|` + zone + `)`), pre: nameStart, first: isUpper},
		{re: anchored(`(` + day + `\s)?` + mon + `\s[0-3]\d,\s\d{2,4}`), pre: nameStart, first: isUpper},
		{re: anchored(`(?:Sun|Sunday|Mon|Monday|Tue|Tuesday|Wed|Wednesday|Thu|Thursday|Fri|Friday|Sat|Saturday),\s\d{2}-` + mon + `-\d{2}\s\d{2}:\d{2}:\d{2}\s` + zone), pre: nameStart, first: isUpper},
		{re: anchored(`\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z?([+-]?\d{2}:\d{2})?`), pre: digitsThen(4, '-'), first: isDigit},
		{re: anchored(day + `\s` + mon + `\s\d{2}\s\d{4}\s\d{2}:\d{2}:\d{2}\sGMT[+-]\d{4}(?:\s\([^)]+\))?`), pre: nameStart, first: isUpper},
		{re: anchored(`(\d{4}-?[01]\d-?[0-3]\d[\sT][0-2]\d:?[0-5]\d:?[0-5]\d\.\d+([+-][0-2]\d:?[0-5]\d|Z))|` +
			`(\d{4}-?[01]\d-?[0-3]\d[\sT][0-2]\d:?[0-5]\d:?[0-5]\d([+-][0-2]\d:?[0-5]\d|Z))|` +
			`(\d{4}-?[01]\d-?[0-3]\d[\sT][0-2]\d:?[0-5]\d([+-][0-2]\d:?[0-5]\d|Z))`), pre: compactDate, first: isDigit},
		{re: anchored(`(\d{4}-?[01]\d-?[0-3]\d[\sT][0-2]\d:?[0-5]\d:?[0-5]\d\.\d+)|` +
			`(\d{4}-?[01]\d-?[0-3]\d[\sT][0-2]\d:?[0-5]\d:?[0-5]\d)|` +
			`(\d{4}-?[01]\d-?[0-3]\d[\sT][0-2]\d:?[0-5]\d)`), pre: compactDate, first: isDigit},
		// Kitchen times: the look-ahead (no digit or colon) sits between the
		// time and the optional AM/PM.
		{before: notAfter(isDigitRune), re: anchored(`(([1-9]|1[0-2]):[0-5]\d(:[0-5]\d)?)(?:(\s?[aApP][Mm])|[^\d:]|$)`), ends: []int{4, 1}, pre: kitchenStart, first: isDigit, max: 16},
		{before: notAfter(isDigitRune), re: anchored(`((0?\d|1\d|2[0-3]):[0-5]\d(:[0-5]\d)?)(?:(\s?[aApP][Mm])|[^\d:]|$)`), ends: []int{4, 1}, pre: kitchenStart, first: isDigit, max: 16},
		{re: anchored(`\d{4}-[01]\d-[0-3]\d`), pre: digitsThen(4, '-'), first: isDigit, max: 10},
		{re: anchored(`[0-2]\d:[0-5]\d:[0-5]\d`), pre: digitsThen(2, ':'), first: isDigit, max: 8},
		{wordStart: true, re: anchored(`(?:` + day + `\s+)?` + mon + `\s+([\d]{1,2})\s+([\d]{2}:[\d]{2}:[\d]{2})\s+[\d]{4}`), pre: nameStart, first: isUpper},
		{wordStart: true, re: anchored(`(?:` + day + `,\s+)?(0[1-9]|[1-2]?[\d]|3[01])\s+` + mon + `\s+(19[\d]{2}|[2-9][\d]{3})\s+(2[0-3]|[0-1][\d]):([0-5][\d])(?::(60|[0-5][\d]))?\s+([-\+][\d]{2}[0-5][\d]|` + zone + `)`), pre: oldDateStart, first: func(c byte) bool { return isUpper(c) || isDigit(c) }},
		{re: anchored(`datetime.datetime\(.*?\)`), pre: prefix("datetime"), first: func(c byte) bool { return c == 'd' }},
	}},
	{name: "duration", needDigit: true, alts: []alt{
		{wordStart: true, re: anchored(`\d+ms`), pre: durationMs, first: isDigit},
		{re: anchored(`\d+(\.\d+)?s\b`), pre: durationS, first: isDigit},
	}},
	// OpenStack Swift transaction IDs: "tx", 21 hex digits, "-", 10 hex
	// digits and the rest of the non-space run (a suffix).
	{name: "swift_txn_id", need: "tx", alts: []alt{{wordStart: true, pre: swiftStart, first: func(c byte) bool { return c == 't' },
		re: anchored(`tx[0-9a-f]{21}-[0-9a-f]{10}` + nonSpace + `*`)}}},
	{name: "hex", alts: []alt{
		{wordStart: true, re: anchored(`0[xX][0-9a-fA-F]+\b`), pre: hexPrefix, first: func(c byte) bool { return c == '0' }},
		{wordStart: true, re: anchored(`[0-9a-f]{8,128}\b`), check: hasDigit, pre: hexRunAtLeast(8), first: isHex, max: 128},
		{wordStart: true, re: anchored(`[0-9A-F]{8,128}\b`), check: hasDigit, pre: hexRunAtLeast(8), first: isHex, max: 128},
	}},
	// A short git sha: 7 lower-case hex digits, at least one digit and
	// one letter.
	{name: "git_sha", needDigit: true, alts: []alt{{wordStart: true, pre: hexRunIs(7), first: isHex,
		re: anchored(`[0-9a-f]{7}\b`), check: func(m string) bool { return hasDigit(m) && strings.ContainsAny(m, "abcdef") }, max: 7}}},
	{name: "float", needDigit: true, alts: []alt{
		{re: anchored(`-\d+\.\d+\b`), pre: minusDigit, first: func(c byte) bool { return c == '-' }},
		{wordStart: true, re: anchored(`\d+\.\d+\b`), pre: floatStart, first: isDigit},
	}},
	{name: "int", needDigit: true, alts: []alt{
		{wordStart: true, re: anchored(`\d{1,7}\b`), pre: intStart, first: isDigit, max: 7},
		{before: notAfter(isWordRune), re: anchored(`-\d{1,7}\b`), pre: negIntStart, first: func(c byte) bool { return c == '-' }, max: 8},
	}},
	{name: "quoted_str", need: "=", alts: []alt{{before: func(s string, i int) bool { return i > 0 && s[i-1] == '=' },
		re: anchored(`'([^']+)'|"([^"]+)"`), first: func(c byte) bool { return c == '\'' || c == '"' }}}},
	{name: "bool", need: "=", alts: []alt{{before: func(s string, i int) bool { return i > 0 && s[i-1] == '=' },
		re: anchored(`True|true|False|false`), first: func(c byte) bool { return c == 'T' || c == 't' || c == 'F' || c == 'f' }}}},
}

// parameterize replaces the event-specific values of s with placeholders,
// as Sentry's message strategy does before hashing.
func parameterize(s string) string {
	if s == "" {
		return s
	}
	var active [numPatterns]bool
	anyDigit := false
	for i := 0; i < len(s); i++ {
		if isDigit(s[i]) {
			anyDigit = true
			break
		}
	}
	for k, p := range patterns {
		active[k] = (p.need == "" || strings.Contains(s, p.need)) && (!p.needDigit || anyDigit)
	}
	var b strings.Builder
	var rc runs
	last := 0
	for i := 0; i < len(s); {
		name, end := matchAt(s, i, &active, &rc)
		if end < 0 {
			_, w := utf8.DecodeRuneInString(s[i:])
			i += w
			continue
		}
		if b.Len() == 0 {
			b.Grow(len(s))
		}
		b.WriteString(s[last:i])
		b.WriteByte('<')
		b.WriteString(name)
		b.WriteByte('>')
		last = end
		if end == i { // an empty match never happens with this table; guard the loop
			end++
		}
		i = end
	}
	if last == 0 {
		return s
	}
	b.WriteString(s[last:])
	return b.String()
}

// numPatterns sizes the active-pattern array: len(patterns), checked by
// TestParameterizeTable.
const numPatterns = 17

// altRef names one alternative of patterns.
type altRef struct{ p, a uint8 }

// byFirst lists, for each first byte, the alternatives that can start
// with it, in table order.
var byFirst = func() (t [256][]altRef) {
	for c := range 256 {
		for pi := range patterns {
			for ai, a := range patterns[pi].alts {
				if a.first == nil || a.first(byte(c)) {
					t[c] = append(t[c], altRef{uint8(pi), uint8(ai)})
				}
			}
		}
	}
	return t
}()

func matchAt(s string, i int, active *[numPatterns]bool, rc *runs) (string, int) {
	wb := -1 // lazily computed \b at i
	for _, ref := range byFirst[s[i]] {
		if !active[ref.p] {
			continue
		}
		p := &patterns[ref.p]
		a := &p.alts[ref.a]
		if a.wordStart {
			if wb < 0 {
				wb = 0
				if boundary(s, i) {
					wb = 1
				}
			}
			if wb == 0 {
				continue
			}
		}
		if a.before != nil && !a.before(s, i) {
			continue
		}
		if a.pre != nil && !a.pre(s, i, rc) {
			continue
		}
		var end int
		switch {
		case a.fn != nil:
			if end = a.fn(s, i, rc); end < 0 {
				continue
			}
		case a.ends == nil:
			loc := a.re.FindStringIndex(window(s, i, a.max))
			if loc == nil {
				continue
			}
			end = i + loc[1]
		default:
			loc := a.re.FindStringSubmatchIndex(window(s, i, a.max))
			if loc == nil {
				continue
			}
			for _, g := range a.ends {
				if loc[2*g] >= 0 {
					end = i + loc[2*g+1]
					break
				}
			}
		}
		if a.check != nil && !a.check(s[i:end]) {
			continue
		}
		return p.name, end
	}
	return "", -1
}

// window is the text an alternative's regexp runs on: the rest of s, or
// max bytes of it plus room for the rune after (a trailing \b).
func window(s string, i, max int) string {
	if max == 0 || i+max+utf8.UTFMax >= len(s) {
		return s[i:]
	}
	return s[i : i+max+utf8.UTFMax]
}

// emailPossible skips starts whose run of local-part characters is not
// followed by '@' (the regexp would scan the run from every start).
func emailPossible(s string, i int) bool {
	j := i
	for j < len(s) && isEmailLocal(s[j]) {
		j++
	}
	return j > i && j < len(s) && s[j] == '@'
}

func isEmailLocal(c byte) bool {
	return isDigit(c) || isLetter(c) || strings.IndexByte(".!#$%&'*+/=?^_`{|}~-", c) >= 0
}

func urlScheme(s string, i int) bool {
	r := s[i:]
	return strings.HasPrefix(r, "http://") || strings.HasPrefix(r, "https://") || strings.HasPrefix(r, "ws://") ||
		strings.HasPrefix(r, "wss://") || strings.HasPrefix(r, "ftp://")
}

var tldSet = func() map[string]bool {
	m := map[string]bool{}
	for t := range strings.SplitSeq(tlds, "|") {
		m[t], m[strings.ToLower(t)] = true, true
	}
	return m
}()

// hostname matches Sentry's hostname pattern by hand: one or more labels
// of [a-zA-Z0-9-]{1,63} each followed by '.', as few as possible, then a
// known TLD (all upper or all lower case) ending at a word boundary.
func hostname(s string, i int, c *runs) int {
	if i < c.hostFail {
		// Inside a chain of labels already found to have no TLD: a start
		// here checks a subset of the same positions.
		return -1
	}
	pos := i
	for first := true; ; first = false {
		j := pos
		for j < len(s) && (isDigit(s[j]) || isLetter(s[j]) || s[j] == '-') {
			j++
		}
		if j == pos || j-pos > 63 || j >= len(s) || s[j] != '.' {
			if !first {
				c.hostFail = j
			}
			return -1
		}
		pos = j + 1
		w := pos
		for w < len(s) {
			r, n := utf8.DecodeRuneInString(s[w:])
			if !isWordRune(r) {
				break
			}
			w += n
		}
		if w > pos && tldSet[s[pos:w]] {
			return w
		}
	}
}

// Cheap necessary conditions (alt.pre).

// runs caches the digit and hex runs of the message being scanned: a run
// found from one position ends at the same place for the positions inside
// it, so each run is scanned once, not once per position (quadratic on a
// long run of digits).
type runs struct {
	dStart, dEnd int // digit run [dStart, dEnd)
	hStart, hEnd int // hex run
	hostFail     int // starts before this fail the hostname pattern
}

// digits is the length of the run of ASCII digits at i.
func (c *runs) digits(s string, i int) int {
	if i < c.dStart || i >= c.dEnd {
		c.dStart, c.dEnd = i, i+run(s, i, isDigit)
	}
	return c.dEnd - i
}

// hex is the length of the run of hex digits at i.
func (c *runs) hex(s string, i int) int {
	if i < c.hStart || i >= c.hEnd {
		c.hStart, c.hEnd = i, i+run(s, i, isHex)
	}
	return c.hEnd - i
}

func run(s string, i int, in func(byte) bool) int {
	j := i
	for j < len(s) && in(s[j]) {
		j++
	}
	return j - i
}

func at(s string, i int) byte {
	if i < len(s) {
		return s[i]
	}
	return 0
}

func prefix(p string) func(string, int, *runs) bool {
	return func(s string, i int, _ *runs) bool { return strings.HasPrefix(s[i:], p) }
}

// ipv6Start: every IPv6 alternative starts with ":" or 1-4 hex digits and
// ":", and goes on with a hex digit or ":".
func ipv6Start(s string, i int, c *runs) bool {
	h := c.hex(s, i)
	if h > 4 || at(s, i+h) != ':' {
		return false
	}
	ch := at(s, i+h+1)
	return ch == ':' || isHex(ch)
}

func ipv4Start(s string, i int, c *runs) bool {
	d := c.digits(s, i)
	return d >= 1 && d <= 3 && at(s, i+d) == '.'
}

// nonSpace is Python's \S in a str pattern: not Unicode white space
// (Go's \S is ASCII only).
const nonSpace = `[^\s\v\x1c-\x1f\x{85}\x{a0}\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}\x{202f}\x{205f}\x{3000}]`

func swiftStart(s string, i int, c *runs) bool {
	return strings.HasPrefix(s[i:], "tx") && c.hex(s, i+2) >= 21 && at(s, i+23) == '-'
}

func uuidStart(s string, i int, c *runs) bool { return c.hex(s, i) == 8 && at(s, i+8) == '-' }

func hexRunIs(n int) func(string, int, *runs) bool {
	return func(s string, i int, c *runs) bool { return c.hex(s, i) == n }
}

func hexRunAtLeast(n int) func(string, int, *runs) bool {
	return func(s string, i int, c *runs) bool { return c.hex(s, i) >= n }
}

// nameStart: a day or month abbreviation starts at i. A switch, not a
// map: it runs at every upper-case letter of a message, for five date
// alternatives.
func nameStart(s string, i int, c *runs) bool {
	if i+3 > len(s) {
		return false
	}
	switch s[i : i+3] {
	case "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat",
		"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec":
		return true
	}
	return false
}

func oldDateStart(s string, i int, c *runs) bool {
	if nameStart(s, i, c) {
		return true
	}
	d := c.digits(s, i)
	ch := at(s, i+d)
	return d >= 1 && d <= 2 && (ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\f' || ch == '\v')
}

func digitsThen(n int, b byte) func(string, int, *runs) bool {
	return func(s string, i int, c *runs) bool { return c.digits(s, i) == n && at(s, i+n) == b }
}

func compactDate(s string, i int, c *runs) bool {
	d := c.digits(s, i)
	return d == 4 || d == 6 || d == 8
}

func kitchenStart(s string, i int, c *runs) bool {
	d := c.digits(s, i)
	return d >= 1 && d <= 2 && at(s, i+d) == ':'
}

func durationMs(s string, i int, c *runs) bool {
	d := c.digits(s, i)
	return d > 0 && strings.HasPrefix(s[i+d:], "ms")
}

func durationS(s string, i int, c *runs) bool {
	d := c.digits(s, i)
	ch := at(s, i+d)
	return d > 0 && (ch == 's' || ch == '.')
}

func hexPrefix(s string, i int, c *runs) bool {
	return s[i] == '0' && (at(s, i+1) == 'x' || at(s, i+1) == 'X')
}

func minusDigit(s string, i int, c *runs) bool { return isDigit(at(s, i+1)) }

func floatStart(s string, i int, c *runs) bool {
	d := c.digits(s, i)
	return d > 0 && at(s, i+d) == '.'
}

func intStart(s string, i int, c *runs) bool {
	d := c.digits(s, i)
	return d >= 1 && d <= 7
}

func negIntStart(s string, i int, c *runs) bool {
	d := c.digits(s, i+1)
	return d >= 1 && d <= 7
}

// paramDrift says why the parameterized text p may not be what the Sentry
// that receives the event hashes, or "". Sentry's parameterization keeps
// changing (docs/grouping.md "Version drift"): its newest tests and source
// disagree with each other and with older releases on 4-7 digit and
// letters-only hex, negative 8+ digit numbers, compressed IPv6 followed
// by more groups, "1.1-8080", and the recent git_sha and swift_txn_id
// patterns. A hash over text where those could apply is not claimed final.
func paramDrift(p string) string {
	if strings.Contains(p, "<") {
		switch {
		case strings.Contains(p, "<git_sha>"):
			return driftReason("a 7-digit git sha")
		case strings.Contains(p, "<swift_txn_id>"):
			return driftReason("a Swift transaction id")
		}
		for j := 0; ; {
			k := strings.Index(p[j:], "<ip>")
			if k < 0 {
				break
			}
			j += k + len("<ip>")
			if why := ipDrift(p[j:]); why != "" {
				return driftReason(why)
			}
		}
		for _, mark := range [...]string{"<float>-<int>", "<float>-<hex>"} {
			if strings.Contains(p, mark) {
				return driftReason("a float joined to a number by '-'")
			}
		}
		for j := 0; ; {
			k := strings.Index(p[j:], "-<hex>")
			if k < 0 {
				break
			}
			if r, ok := prevRune(p, j+k); !ok || !isWordRune(r) {
				return driftReason("a negative 8+ digit number")
			}
			j += k + 1
		}
	}
	for i := 0; i < len(p); {
		r, w := utf8.DecodeRuneInString(p[i:])
		if !isWordRune(r) {
			i += w
			continue
		}
		j := i + w
		for j < len(p) {
			r, w := utf8.DecodeRuneInString(p[j:])
			if !isWordRune(r) {
				break
			}
			j += w
		}
		if why := hexDrift(p[i:j]); why != "" {
			return driftReason(why)
		}
		i = j
	}
	return ""
}

// ipDrift: what follows an <ip> that Sentry versions may take as part of
// an IPv6 address (more groups, an embedded IPv4, a prefix length); not a
// port after an IPv4 address ("<ip>:<int>" alone, or followed by a colon
// and text, as in Go's "dial tcp 10.0.0.1:5432: connect: ...").
func ipDrift(rest string) string {
	switch {
	case strings.HasPrefix(rest, ":<int>:") && startsGroup(rest[len(":<int>:"):]),
		strings.HasPrefix(rest, "::"):
		return "IPv6 with more groups"
	case len(rest) > 1 && rest[0] == ':' && isHex(rest[1]):
		return "IPv6 with more groups"
	case strings.HasPrefix(rest, ".<float>"), strings.HasPrefix(rest, ".<int>"):
		return "IPv4-mapped IPv6"
	case strings.HasPrefix(rest, "/<int>"):
		return "an IP prefix length"
	}
	return ""
}

// startsGroup: s begins with what an IPv6 group or separator becomes.
func startsGroup(s string) bool {
	return strings.HasPrefix(s, "<int>") || strings.HasPrefix(s, "<hex>") ||
		(len(s) > 0 && (s[0] == ':' || isHex(s[0])))
}

// hexDrift classifies a word Sentry versions parameterize differently:
// 4-7 hex digits of one case with a digit and a letter, or 8-128 hex
// letters of one case.
func hexDrift(w string) string {
	if len(w) < 4 || len(w) > 128 {
		return ""
	}
	var digits, lower, upper bool
	for i := 0; i < len(w); i++ {
		switch c := w[i]; {
		case isDigit(c):
			digits = true
		case c >= 'a' && c <= 'f':
			lower = true
		case c >= 'A' && c <= 'F':
			upper = true
		default:
			return ""
		}
	}
	switch {
	case lower && upper:
		return ""
	case len(w) < 8 && digits && (lower || upper):
		return "a 4-7 digit hex value"
	case len(w) >= 8 && !digits:
		return "a letters-only hex value"
	}
	return ""
}

func driftReason(what string) string {
	return "message parameterization: Sentry versions differ on " + what + " (docs/grouping.md \"Version drift\")"
}
