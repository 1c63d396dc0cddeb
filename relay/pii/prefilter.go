package pii

import (
	"bytes"
	"math/bits"
	"regexp"
)

// Prefilters of the built-in regexes. Most strings of an event (function
// names, file names, messages) match none of the default rules, and Go's
// regexp pays a backtracking search per string to find that out. A
// prefilter is a necessary condition of its regex, checked in one cheap
// pass: false means the regex cannot match, true means run it. They read
// only ASCII: a regex with (?i) folds k and s to non-ASCII runes (U+212A,
// U+017F), so a case-insensitive prefilter says true for any string with
// a non-ASCII byte. TestPrefilters checks each against its regex.

// prefilter is one regex's necessary condition. Patterns point to the
// shared ones, so compiled Configs still compare equal (reflect.DeepEqual
// compares pointers, never funcs).
type prefilter struct{ may func([]byte) bool }

// prefilters maps a built-in regex to its prefilter; patterns() attaches
// them, and regexes of a project's own rules have none.
var prefilters = map[*regexp.Regexp]*prefilter{
	// 3 or 4 digits, then 12 more, separators optional.
	creditcardRe: {func(b []byte) bool { return countDigits(b) >= 15 }},
	// ddd-dd-dddd
	usssnRe: {func(b []byte) bool { return countDigits(b) >= 9 && bytes.Count(b, dash) >= 2 }},
	// d.d.d.d
	ipv4Re: {func(b []byte) bool { return countDigits(b) >= 4 && bytes.Count(b, dot) >= 3 }},
	// every branch has two colons at least (`::`, `x:x:…`, `x::`).
	ipv6Re: {func(b []byte) bool { return bytes.Count(b, colon) >= 2 }},
	// a country code (two upper-case letters) and two check digits.
	ibanRe:        {mayIBAN},
	pemkeyRe:      {func(b []byte) bool { return bytes.Contains(b, []byte("-----BEGIN")) }},
	urlauthRe:     {mayURLAuth},
	userpathRe:    {newFoldSet("users", "home", "documents and settings", "profiles").may},
	passwordKeyRe: {newFoldSet("passw", "secret", "api_key", "apikey", "auth", "credentials", "mysql_pwd", "private", "token", "bearer", "otp", "factor").may},
	bearerRe:      {newFoldSet("bearer").may},
	emailRe:       {func(b []byte) bool { return bytes.IndexByte(b, '@') >= 0 }},

	builtins["@urlauth:legacy"].pattern: {mayURLAuth},
}

var (
	dash  = []byte("-")
	dot   = []byte(".")
	colon = []byte(":")
)

func countDigits(b []byte) int {
	n := 0
	for _, c := range b {
		if c-'0' < 10 {
			n++
		}
	}
	return n
}

func mayIBAN(b []byte) bool {
	for i := 0; i+3 < len(b); i++ {
		if b[i+2]-'0' < 10 && b[i+3]-'0' < 10 && b[i]-'A' < 26 && b[i+1]-'A' < 26 {
			return true
		}
	}
	return false
}

// mayURLAuth: `//`, then an `@` (both regexes are case-sensitive here).
func mayURLAuth(b []byte) bool {
	i := bytes.Index(b, []byte("//"))
	return i >= 0 && bytes.IndexByte(b[i+2:], '@') >= 0
}

// foldSet finds any of a few lower-case ASCII literals in a string,
// ignoring ASCII case.
type foldSet struct {
	lits  []string
	first [256]uint32 // bit i: lits[i] starts with this byte, in either case
}

func newFoldSet(lits ...string) *foldSet {
	f := &foldSet{lits: lits}
	for i, l := range lits {
		c := l[0]
		f.first[c] |= 1 << i
		if c >= 'a' && c <= 'z' {
			f.first[c-'a'+'A'] |= 1 << i
		}
	}
	return f
}

// may reports whether b holds one of the literals, or a non-ASCII byte.
func (f *foldSet) may(b []byte) bool {
	for i, c := range b {
		if c >= 0x80 {
			return true
		}
		for m := f.first[c]; m != 0; m &= m - 1 {
			if hasPrefixFold(b[i:], f.lits[bits.TrailingZeros32(m)]) {
				return true
			}
		}
	}
	return false
}

// hasPrefixFold reports whether b starts with lit (lower-case ASCII),
// ignoring ASCII case.
func hasPrefixFold(b []byte, lit string) bool {
	if len(b) < len(lit) {
		return false
	}
	for i := range len(lit) {
		c := b[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lit[i] {
			return false
		}
	}
	return true
}
