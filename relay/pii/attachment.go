package pii

import (
	"bytes"
	"encoding/binary"
	"regexp"
	"regexp/syntax"
	"slices"
	"sync"
	"unicode/utf16"
	"unicode/utf8"
)

// Attachment scrubbing, as Relay's relay-pii attachments.rs and the
// processor's attachment.rs do it to plain attachments:
//
//   - Only the project's piiConfig applies (never datascrubbingSettings),
//     and only when one of its applications is a path that starts with
//     `$attachments` and a file name (`$attachments.'log.txt'`, ...): Relay
//     scrubs attachments only for such projects. Then every application of
//     the config whose selector selects the file does: the file is the
//     path [$attachments root, file name] with type `$binary`, so
//     `$binary`, `$attachments.**`, `$attachments.'log.txt'` and `**`
//     select it; `$attachments` and `$string` do not.
//   - Each rule's regexes run over the bytes (as Relay's non-Unicode bytes
//     regex: `.` matches any byte, newlines too), then over the UTF-16LE
//     text (runs of at least 5 characters) of what they left unmatched.
//     The kind of rule is ignored: a key rule (password, redact_pair) runs
//     its key pattern over the bytes and, on a match, replaces them all.
//   - The length never changes: remove and mask fill the match with `*`;
//     replace and hash write the text (the HMAC-SHA1 of the matched bytes
//     for hash) truncated to the match and padded with `*`. (Sentry's
//     documentation says `x`; Relay's code and tests pad with `*`.)
//
// Minidumps are scrubbed by their structure (minidump.go), with every
// piiConfig. View hierarchies are plain attachments, unless the
// organization has Relay's view-hierarchy-scrubbing feature (then
// viewhierarchy.go scrubs them as JSON).

// minUTF16Run is the fewest characters a UTF-16LE run needs to be scrubbed
// (Relay's MIN_STRING_LEN).
const minUTF16Run = 5

// Attachments is a project's piiConfig compiled for its attachments;
// immutable and safe for concurrent use. A nil *Attachments scrubs nothing.
type Attachments struct {
	apps []application
	// plain: an application's selector names a file
	// (`$attachments.'name'...`): only then are plain attachments
	// scrubbed, as Relay does for now (has_simple_attachment_selector).
	plain bool
}

// CompileAttachments compiles piiConfig (raw JSON; empty or null for none)
// for attachments. It returns nil when the config has no application; an
// error wraps ErrInvalidConfig.
func CompileAttachments(piiConfig []byte) (*Attachments, error) {
	t := bytes.TrimSpace(piiConfig)
	if len(t) == 0 || bytes.Equal(t, []byte("null")) {
		return nil, nil
	}
	p, err := compileJSON(t)
	if err != nil {
		return nil, err
	}
	if len(p.apps) == 0 {
		return nil, nil
	}
	a := &Attachments{apps: p.apps}
	for _, app := range p.apps {
		if app.sel.kind == sPath && len(app.sel.path) >= 2 &&
			app.sel.path[0].kind == iType && app.sel.path[0].ty == tAttachments && app.sel.path[1].kind == iKey {
			a.plain = true
		}
	}
	return a, nil
}

// ScrubsPlain reports whether Scrub may change a plain attachment.
func (a *Attachments) ScrubsPlain() bool { return a != nil && a.plain }

// Scrub scrubs data, the payload of the plain attachment named filename,
// in place and reports whether it changed anything. Its length stays.
func (a *Attachments) Scrub(filename string, data []byte) bool {
	if !a.ScrubsPlain() || len(data) == 0 {
		return false
	}
	path := []state{
		{key: []byte{}, types: tAttachments, pii: piiTrue},
		{key: []byte(filename), types: tBinary, pii: piiTrue},
	}
	return a.scrubPath(path, data, scrubAll)
}

// Which text of the bytes a scrub reads (Relay's ScrubEncodings).
type scrubEncoding uint8

const (
	scrubAll       scrubEncoding = iota // the bytes, then the UTF-16LE text between matches
	scrubUTF8Only                       // the bytes
	scrubUTF16Only                      // the UTF-16LE text
)

// scrubPath runs the rules of every application that selects the value at
// the end of path over data, in place.
func (a *Attachments) scrubPath(path []state, data []byte, enc scrubEncoding) bool {
	changed := false
	for i := range a.apps {
		app := &a.apps[i]
		if !app.sel.matches(path) {
			continue
		}
		for j := range app.rules {
			r := &app.rules[j]
			for _, pt := range r.patterns {
				if enc == scrubUTF16Only {
					changed = scrubUTF16(data, r, &pt) || changed
				} else {
					changed = scrubBytes(data, r, &pt, enc == scrubAll) || changed
				}
			}
		}
	}
	return changed
}

// scrubBytes runs pt over data as bytes, then (with utf16) over the
// UTF-16LE text of the ranges it did not match (each starting at an even
// offset, as Relay picks them), redacting with r. Matches stream: memory stays the Latin-1
// copy of data however many there are (the lease charges that).
func scrubBytes(data []byte, r *ruleRef, pt *pattern, utf16 bool) bool {
	changed, prevEnd := false, 0
	// gap scrubs the UTF-16LE text before a range starting at s.
	gap := func(s int) {
		if start := prevEnd + prevEnd%2; utf16 && s > start {
			changed = scrubUTF16(data[start:s], r, pt) || changed
		}
	}
	var buf [4][2]int
	pending := buf[:0]
	// flush redacts the ranges of a match, then the gaps before them:
	// Relay redacts all matches first, which writes the same, as a gap
	// ends before its match does and a later match starts after it.
	flush := func() {
		for _, m := range pending {
			redactUTF8(data[m[0]:m[1]], &r.redaction)
			changed = true
		}
		for _, m := range pending {
			gap(m[0])
			prevEnd = m[1]
		}
		pending = pending[:0]
	}
	whole := false
	eachMatch(data, pt, func(ranges [][2]int) bool {
		if isWhole(pt) { // the first match will do
			whole = true
			return false
		}
		// The search reads the byte before where it goes on (the end of
		// this match): the last match is redacted once it has moved past.
		flush()
		pending = append(pending, ranges...)
		return true
	})
	if whole {
		// A key rule takes all of data. Relay does so once per match,
		// which writes the same for remove, mask and replace; for hash,
		// Relay hashes what the last match wrote, K HMACs over all of
		// data for K matches: hashing once bounds the work (its output
		// then differs from Relay's when the key matches more than once).
		redactUTF8(data, &r.redaction)
		return true
	}
	flush()
	gap(len(data))
	return changed
}

// isWhole reports a key rule: its match takes all of the value.
func isWhole(pt *pattern) bool { return len(pt.groups) == 1 && pt.groups[0] == -1 }

// bytesRe is a pattern's regex as Relay's bytes regex runs it: `.`
// matching newlines (Relay's dot_matches_new_line).
type bytesRe struct {
	re *regexp.Regexp
	// lines: no match can hold a newline nor depend on the text's start
	// or end (lineSafe), so matching line by line finds what matching the
	// whole data finds. Go's regexp then runs its backtracker on short
	// inputs instead of its NFA over the whole attachment, several times
	// faster.
	lines bool
	// context: the regex reads the character before where a search goes
	// on (`\b`, `\B`, `^`, `\A`); then after is `\A(?s:.)(?s:.*?)(re)`,
	// which finds the next match from the second character of the text
	// it is given with the first as that context.
	context bool
	after   *regexp.Regexp
}

// bytesRegexes holds each pattern's bytesRe; nil when it does not compile.
var bytesRegexes sync.Map // *regexp.Regexp → *bytesRe

func bytesRegex(re *regexp.Regexp) *bytesRe {
	if v, ok := bytesRegexes.Load(re); ok {
		return v.(*bytesRe)
	}
	expr := "(?s:" + re.String() + ")"
	var br *bytesRe
	if b, err := regexp.Compile(expr); err == nil {
		br = &bytesRe{re: b, lines: lineSafe(expr), context: readsBefore(expr)}
		if br.context {
			if br.after, err = regexp.Compile(`\A(?s:.)(?s:.*?)(` + expr + `)`); err != nil {
				br = nil // too deep by two groups: skipped as well
			}
		}
	} // else Relay logs and skips a regex it cannot compile for bytes
	v, _ := bytesRegexes.LoadOrStore(re, br)
	return v.(*bytesRe)
}

// lineSafe reports whether nothing in expr can match a newline or assert
// the start or end of the text (`^`, `$`, `\A`, `\z` without (?m)).
// Word boundaries are safe: a newline is no word character, nor is the
// outside of a line's text.
func lineSafe(expr string) bool {
	t, err := syntax.Parse(expr, syntax.Perl)
	return err == nil && !mayCrossLine(t)
}

func mayCrossLine(t *syntax.Regexp) bool {
	switch t.Op {
	case syntax.OpAnyChar, syntax.OpBeginText, syntax.OpEndText:
		return true
	case syntax.OpLiteral:
		if slices.Contains(t.Rune, '\n') {
			return true
		}
	case syntax.OpCharClass:
		for i := 0; i+1 < len(t.Rune); i += 2 {
			if t.Rune[i] <= '\n' && '\n' <= t.Rune[i+1] {
				return true
			}
		}
	}
	return slices.ContainsFunc(t.Sub, mayCrossLine)
}

// readsBefore reports whether expr has an assertion that reads the
// character before where it is tested.
func readsBefore(expr string) bool {
	t, err := syntax.Parse(expr, syntax.Perl)
	return err != nil || hasContextOp(t)
}

func hasContextOp(t *syntax.Regexp) bool {
	switch t.Op {
	case syntax.OpBeginText, syntax.OpBeginLine, syntax.OpWordBoundary, syntax.OpNoWordBoundary:
		return true
	}
	return slices.ContainsFunc(t.Sub, hasContextOp)
}

// each calls fn with each match of FindAll(Submatch)Index over text, in
// order, line by line when that finds the same, until fn returns false.
// It finds one match at a time: memory does not grow with their number.
func (br *bytesRe) each(text []byte, groups bool, fn func(m []int) bool) {
	if !br.lines {
		br.eachIn(text, 0, groups, fn)
		return
	}
	for off := 0; off < len(text); {
		end := bytes.IndexByte(text[off:], '\n')
		if end < 0 {
			end = len(text)
		} else {
			end += off
		}
		if !br.eachIn(text[off:end], off, groups, fn) {
			return
		}
		off = end + 1
	}
}

// eachIn is each over text, offsets shifted by off. It steps as the
// regexp package's FindAll does: an empty match right after a match is
// dropped, and the search goes on one character after an empty match.
func (br *bytesRe) eachIn(text []byte, off int, groups bool, fn func(m []int) bool) bool {
	for pos, prevEnd := 0, -1; pos <= len(text); {
		m := br.next(text, pos, groups)
		if m == nil {
			break
		}
		accept := true
		if m[1] == pos {
			accept = m[0] != prevEnd
			if _, w := utf8.DecodeRune(text[pos:]); w > 0 {
				pos += w
			} else {
				pos = len(text) + 1
			}
		} else {
			pos = m[1]
		}
		prevEnd = m[1]
		if !accept {
			continue
		}
		for i := range m {
			if m[i] >= 0 {
				m[i] += off
			}
		}
		if !fn(m) {
			return false
		}
	}
	return true
}

// next is the leftmost-first match starting at pos or after, as the
// regex sees it in all of text (the public API searches only from the
// start of a text, whose character before is none).
func (br *bytesRe) next(text []byte, pos int, groups bool) []int {
	from := pos
	if pos > 0 && br.context {
		_, w := utf8.DecodeLastRune(text[:pos])
		from -= w
	}
	var m []int
	if groups {
		m = br.re.FindSubmatchIndex(text[from:])
	} else {
		m = br.re.FindIndex(text[from:])
	}
	if m != nil && m[0] == 0 && from < pos {
		// A match at the character before pos, which only set the
		// context: find the next one from pos with after.
		if m = br.after.FindSubmatchIndex(text[from:]); m != nil {
			m = m[2:]
			if !groups {
				m = m[:2]
			}
		}
	}
	for i := range m {
		if m[i] >= 0 {
			m[i] += from
		}
	}
	return m
}

// eachMatch calls fn with the byte ranges of data pt's groups select in
// each match, in order, until fn returns false: with a key rule
// (isWhole), all of data. The ranges are fn's only until it returns.
func eachMatch(data []byte, pt *pattern, fn func(ranges [][2]int) bool) {
	br := bytesRegex(pt.re)
	if br == nil || pt.may != nil && !pt.may.may(data) {
		return
	}
	// Go's regexp reads UTF-8; Relay's bytes regex reads bytes. Bytes of
	// 0x80 and above are read as the Latin-1 characters of the same value,
	// so that `.` and classes take one byte each and `\xNN` matches byte
	// NN, and the offsets are mapped back.
	text, latin := data, false
	for _, c := range data {
		if c >= 0x80 {
			latin = true
			break
		}
	}
	if latin {
		text = make([]byte, 0, len(data)*2)
		for _, c := range data {
			text = utf8.AppendRune(text, rune(c))
		}
	}
	whole := isWhole(pt)
	var buf [4][2]int
	src := srcOffsets{text: text, latin: latin}
	// The match alone needs no groups tracked.
	br.each(text, !(len(pt.groups) == 1 && pt.groups[0] <= 0), func(m []int) bool {
		src.seek(m[0])
		ranges := buf[:0]
		for g := 0; 2*g < len(m); g++ {
			s, e := m[2*g], m[2*g+1]
			if s < 0 || s == e {
				continue
			}
			if whole {
				ranges = append(ranges, [2]int{0, len(data)})
				break
			}
			if containsInt(pt.groups, g) {
				ranges = append(ranges, [2]int{src.at(s), src.at(e)})
			}
		}
		return len(ranges) == 0 || fn(ranges)
	})
}

// srcOffsets maps offsets of the Latin-1 reading of data back to data:
// each byte of 0x80 and above is two bytes there, the second a
// continuation byte. Matches come in order: seek moves a cursor to each
// match's start, and at counts on from there.
type srcOffsets struct {
	text  []byte
	latin bool
	t, s  int // cursor: text offset t is data offset s
}

func (o *srcOffsets) seek(t int) {
	if o.latin && t >= o.t {
		o.s, o.t = o.count(t), t
	}
}

// at maps text offset t, at or after the cursor.
func (o *srcOffsets) at(t int) int {
	if !o.latin {
		return t
	}
	return o.count(t)
}

func (o *srcOffsets) count(t int) int {
	n := o.s + (t - o.t)
	for _, c := range o.text[o.t:t] {
		if c&0xC0 == 0x80 {
			n--
		}
	}
	return n
}

// scrubUTF16 runs pt over each UTF-16LE run of seg (Relay's
// WStrSegmentIter: what decodes, split at what does not) of at least
// minUTF16Run characters, redacting matches in their UTF-16LE bytes.
func scrubUTF16(seg []byte, r *ruleRef, pt *pattern) bool {
	changed := false
	for off := 0; off+1 < len(seg); {
		// The longest valid run from off.
		end := off
		for end+1 < len(seg) {
			u := binary.LittleEndian.Uint16(seg[end:])
			if utf16.IsSurrogate(rune(u)) {
				if u >= 0xDC00 || end+3 >= len(seg) {
					break
				}
				if v := binary.LittleEndian.Uint16(seg[end+2:]); v < 0xDC00 || v > 0xDFFF {
					break
				}
				end += 4
				continue
			}
			end += 2
		}
		run := seg[off:end]
		if end == off { // an invalid unit: skip it
			off += 2
			continue
		}
		off = end
		changed = scrubRun(run, r, pt) || changed
	}
	return changed
}

// runScratch is the decoded text of a UTF-16LE run, pooled.
type runScratch struct{ text []byte }

var runScratches = sync.Pool{New: func() any { return new(runScratch) }}

// scrubRun scrubs one valid UTF-16LE run.
func scrubRun(run []byte, r *ruleRef, pt *pattern) bool {
	sc := runScratches.Get().(*runScratch)
	defer runScratches.Put(sc)
	// At most 1.5 times the run: a unit (2 bytes) decodes to at most 3,
	// a pair (4) to 4. Sized once, not grown by doubling.
	text := slices.Grow(sc.text[:0], len(run)*3/2)
	n := 0
	for pos := 0; pos+1 < len(run); n++ {
		u, size := unitAt(run, pos)
		text = utf8.AppendRune(text, u)
		pos += size
	}
	sc.text = text
	// Prefilters read the decoded text as they read a value's: text from
	// ASCII bytes decodes to CJK characters that no built-in rule matches.
	if n < minUTF16Run || pt.may != nil && !pt.may.may(text) {
		return false
	}
	changed := false
	whole := len(pt.groups) == 1 && pt.groups[0] == -1
	pos := runOffsets{text: text, run: run}
	for _, m := range pt.re.FindAllSubmatchIndex(text, -1) {
		pos.seek(m[0])
		for g := 0; 2*g < len(m); g++ {
			s, e := m[2*g], m[2*g+1]
			if s < 0 {
				continue
			}
			// Relay redacts the match itself for whole-value rules too
			// (ReplaceBehavior::Value over UTF-16 takes each match).
			if whole && g != 0 || !whole && !containsInt(pt.groups, g) {
				continue
			}
			redactUTF16(run[pos.at(s):pos.at(e)], &r.redaction)
			changed = true
		}
	}
	return changed
}

// unitAt decodes the character at pos of a valid UTF-16LE run and its
// size in bytes.
func unitAt(run []byte, pos int) (rune, int) {
	u := rune(binary.LittleEndian.Uint16(run[pos:]))
	if utf16.IsSurrogate(u) { // a valid pair: the run was split at others
		return utf16.DecodeRune(u, rune(binary.LittleEndian.Uint16(run[pos+2:]))), 4
	}
	return u, 2
}

// runOffsets maps offsets of a run's decoded text (at character starts)
// back to the run, from a cursor each match's start moves forward.
type runOffsets struct {
	text, run []byte
	t, r      int // cursor: text offset t is run offset r
}

func (o *runOffsets) seek(t int) {
	if t >= o.t {
		o.r, o.t = o.at(t), t
	}
}

// at maps text offset t, at or after the cursor.
func (o *runOffsets) at(t int) int {
	r := o.r
	for i := o.t; i < t; {
		c, size := utf8.DecodeRune(o.text[i:])
		i += size
		r += 2
		if c >= 0x10000 {
			r += 2
		}
	}
	return r
}

// redactUTF8 applies red to the matched bytes b, keeping their length.
func redactUTF8(b []byte, red *redaction) {
	switch red.method {
	case methodHash:
		swapContent(b, string(hashValue(b)))
	case methodReplace:
		swapContent(b, red.text)
	case methodOther:
		// Relay: "Incoming redaction is not supported".
	default: // remove, mask
		for i := range b {
			b[i] = '*'
		}
	}
}

// swapContent writes s over b, truncated to b, and pads b with '*'.
func swapContent(b []byte, s string) {
	n := copy(b, s)
	for i := n; i < len(b); i++ {
		b[i] = '*'
	}
}

// redactUTF16 applies red to the UTF-16LE bytes b of a match, keeping
// their length: the replacement's units while they fit, then '*' units.
func redactUTF16(b []byte, red *redaction) {
	var repl string
	switch red.method {
	case methodHash:
		repl = string(hashValue(b)) // the match's bytes, as encoded
	case methodReplace:
		repl = red.text
	case methodOther:
		return
	}
	off := 0
	for _, u := range utf16.Encode([]rune(repl)) {
		need := 2
		if u&0xD800 == 0xD800 { // as Relay: room for the pair first
			need = 4
		}
		if len(b)-off < need {
			break
		}
		binary.LittleEndian.PutUint16(b[off:], u)
		off += 2
	}
	for ; off+1 < len(b); off += 2 {
		binary.LittleEndian.PutUint16(b[off:], '*')
	}
}
