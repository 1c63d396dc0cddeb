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
	// after checks the text after the match (a look-ahead); nil: none.
	after func(s string, end int) bool
	// first is a cheap filter on the first byte at the candidate position.
	first func(c byte) bool
	// check rejects a match (a look-ahead over the match itself); nil: none.
	check func(m string) bool
	// ends, when set, are capture groups: the match ends where the first
	// of them that took part ends. A trailing negative look-ahead is
	// written as a consumed character (or the end) after group 1, so that
	// Go's regexp backtracks into the alternatives as Python does.
	ends []int
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

func notBefore(class func(r rune) bool) func(string, int) bool {
	return func(s string, end int) bool {
		if end >= len(s) {
			return true
		}
		r, _ := utf8.DecodeRuneInString(s[end:])
		return !class(r)
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

func anyByte(c byte) bool { return true }

// patterns is Sentry's parameterization table in its order, restricted to
// the keys the message strategy enables (docs/grouping.md).
var patterns = []pattern{
	{name: "email", need: "@", alts: []alt{{re: anchored(`[a-zA-Z0-9.!#$%&'*+/=?^_` + "`" + `{|}~-]+@[a-zA-Z0-9-]+(?:\.[a-zA-Z0-9-]+)*`)}}},
	{name: "url", need: "://", alts: []alt{{wordStart: true, first: func(c byte) bool { return c == 'w' || c == 'h' || c == 'f' },
		re: anchored(`(wss?|https?|ftp)://[^\s/$.?#].[^\s]*`)}}},
	{name: "hostname", need: ".", alts: []alt{{wordStart: true,
		re: anchored(`([a-zA-Z0-9\-]{1,63}\.)+?((` + tlds + `)|(` + strings.ToLower(tlds) + `))\b`)}}},
	{name: "ip", alts: []alt{
		{before: notAfter(func(r rune) bool { return isASCIIAlnum(r) || r == '_' }), re: anchored(`(` + ipv6 + `)(?:[^0-9a-zA-Z]|$)`),
			ends: []int{1}, first: func(c byte) bool { return isHex(c) || c == ':' }},
		{wordStart: true, re: anchored(ipv4 + `\b`), first: isDigit},
	}},
	{name: "traceparent", needDigit: true, need: "-", alts: []alt{
		{wordStart: true, re: anchored(`00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]\b`), first: isDigit},
		{wordStart: true, re: anchored(`1-[0-9a-f]{8}-[0-9a-f]{24}\b`), first: isDigit},
	}},
	{name: "uuid", need: "-", alts: []alt{{wordStart: true, first: isHex,
		re: anchored(`[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b`)}}},
	{name: "sha1", alts: []alt{{wordStart: true, first: isHex, re: anchored(`[0-9a-fA-F]{40}\b`)}}},
	{name: "md5", alts: []alt{{wordStart: true, first: isHex, re: anchored(`[0-9a-fA-F]{32}\b`)}}},
	{name: "date", needDigit: true, alts: []alt{
		{re: anchored(day + `,\s\d{1,2}\s` + mon + `\s\d{2,4}\s\d{1,2}:\d{1,2}(:\d{1,2})?\s([-\+][\d]{2}[0-5][\d]|` + zone + `)`), first: isLetter},
		{re: anchored(`(` + day + `\s)?` + mon + `\s[0-3]\d,\s\d{2,4}`), first: isLetter},
		{re: anchored(`(?:Sun|Sunday|Mon|Monday|Tue|Tuesday|Wed|Wednesday|Thu|Thursday|Fri|Friday|Sat|Saturday),\s\d{2}-` + mon + `-\d{2}\s\d{2}:\d{2}:\d{2}\s` + zone), first: isLetter},
		{re: anchored(`\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z?([+-]?\d{2}:\d{2})?`), first: isDigit},
		{re: anchored(day + `\s` + mon + `\s\d{2}\s\d{4}\s\d{2}:\d{2}:\d{2}\sGMT[+-]\d{4}(?:\s\([^)]+\))?`), first: isLetter},
		{re: anchored(`(\d{4}-?[01]\d-?[0-3]\d[\sT][0-2]\d:?[0-5]\d:?[0-5]\d\.\d+([+-][0-2]\d:?[0-5]\d|Z))|` +
			`(\d{4}-?[01]\d-?[0-3]\d[\sT][0-2]\d:?[0-5]\d:?[0-5]\d([+-][0-2]\d:?[0-5]\d|Z))|` +
			`(\d{4}-?[01]\d-?[0-3]\d[\sT][0-2]\d:?[0-5]\d([+-][0-2]\d:?[0-5]\d|Z))`), first: isDigit},
		{re: anchored(`(\d{4}-?[01]\d-?[0-3]\d[\sT][0-2]\d:?[0-5]\d:?[0-5]\d\.\d+)|` +
			`(\d{4}-?[01]\d-?[0-3]\d[\sT][0-2]\d:?[0-5]\d:?[0-5]\d)|` +
			`(\d{4}-?[01]\d-?[0-3]\d[\sT][0-2]\d:?[0-5]\d)`), first: isDigit},
		// Kitchen times: the look-ahead (no digit or colon) sits between the
		// time and the optional AM/PM.
		{before: notAfter(isDigitRune), re: anchored(`(([1-9]|1[0-2]):[0-5]\d(:[0-5]\d)?)(?:(\s?[aApP][Mm])|[^\d:]|$)`), ends: []int{4, 1}, first: isDigit},
		{before: notAfter(isDigitRune), re: anchored(`((0?\d|1\d|2[0-3]):[0-5]\d(:[0-5]\d)?)(?:(\s?[aApP][Mm])|[^\d:]|$)`), ends: []int{4, 1}, first: isDigit},
		{re: anchored(`\d{4}-[01]\d-[0-3]\d`), first: isDigit},
		{re: anchored(`[0-2]\d:[0-5]\d:[0-5]\d`), first: isDigit},
		{wordStart: true, re: anchored(`(?:` + day + `\s+)?` + mon + `\s+([\d]{1,2})\s+([\d]{2}:[\d]{2}:[\d]{2})\s+[\d]{4}`), first: isLetter},
		{wordStart: true, re: anchored(`(?:` + day + `,\s+)?(0[1-9]|[1-2]?[\d]|3[01])\s+` + mon + `\s+(19[\d]{2}|[2-9][\d]{3})\s+(2[0-3]|[0-1][\d]):([0-5][\d])(?::(60|[0-5][\d]))?\s+([-\+][\d]{2}[0-5][\d]|` + zone + `)`), first: anyByte},
		{re: anchored(`datetime.datetime\(.*?\)`), first: func(c byte) bool { return c == 'd' }},
	}},
	{name: "duration", needDigit: true, alts: []alt{
		{wordStart: true, re: anchored(`\d+ms`), first: isDigit},
		{re: anchored(`\d+(\.\d+)?s\b`), first: isDigit},
	}},
	{name: "hex", alts: []alt{
		{wordStart: true, re: anchored(`0[xX][0-9a-fA-F]+\b`), first: func(c byte) bool { return c == '0' }},
		{wordStart: true, re: anchored(`[0-9a-f]{8,128}\b`), check: hasDigit, first: isHex},
		{wordStart: true, re: anchored(`[0-9A-F]{8,128}\b`), check: hasDigit, first: isHex},
	}},
	{name: "float", needDigit: true, alts: []alt{
		{re: anchored(`-\d+\.\d+\b`), first: func(c byte) bool { return c == '-' }},
		{wordStart: true, re: anchored(`\d+\.\d+\b`), first: isDigit},
	}},
	{name: "int", needDigit: true, alts: []alt{
		{wordStart: true, re: anchored(`\d{1,7}\b`), first: isDigit},
		{before: notAfter(isWordRune), re: anchored(`-\d{1,7}\b`), first: func(c byte) bool { return c == '-' }},
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
	var active [len(patternsArr)]bool
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
	last := 0
	for i := 0; i < len(s); {
		name, end := matchAt(s, i, &active)
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

// patternsArr sizes the active-pattern array; it must list as many
// entries as patterns (checked by TestParameterizeTable).
var patternsArr = [15]struct{}{}

func matchAt(s string, i int, active *[len(patternsArr)]bool) (string, int) {
	c := s[i]
	wb := -1 // lazily computed \b at i
	for k := range patterns {
		if !active[k] {
			continue
		}
		p := &patterns[k]
		for j := range p.alts {
			a := &p.alts[j]
			if a.first != nil && !a.first(c) {
				continue
			}
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
			var end int
			if a.ends == nil {
				loc := a.re.FindStringIndex(s[i:])
				if loc == nil {
					continue
				}
				end = i + loc[1]
			} else {
				loc := a.re.FindStringSubmatchIndex(s[i:])
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
			if a.after != nil && !a.after(s, end) {
				continue
			}
			return p.name, end
		}
	}
	return "", -1
}
