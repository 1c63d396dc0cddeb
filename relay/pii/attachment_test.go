package pii

import (
	"bytes"
	"fmt"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"unicode/utf16"

	"github.com/baton-relay/baton/relay/internal/testutil"
)

// utf16le encodes s as UTF-16LE bytes.
func utf16le(s string) []byte {
	var b []byte
	for _, u := range utf16.Encode([]rune(s)) {
		b = append(b, byte(u), byte(u>>8))
	}
	return b
}

// attachmentsOf compiles config without Relay's gate (an application naming
// an attachment), as Relay's attachments.rs tests run the processor.
func attachmentsOf(t *testing.T, config string) *Attachments {
	t.Helper()
	p, err := compileJSON([]byte(config))
	if err != nil {
		t.Fatal(err)
	}
	return &Attachments{apps: p.apps, plain: true} // the cases' selectors, gate aside
}

// The cases of Relay's relay-pii attachments.rs tests: built-in rules and
// their redactions over UTF-8 and UTF-16LE bytes, length kept.
func TestScrubAttachmentRelayCases(t *testing.T) {
	builtin := func(sel, rule string) string {
		return fmt.Sprintf(`{"applications":{%q:[%q]}}`, sel, rule)
	}
	for _, c := range []struct {
		name, config, file string
		in, want           []byte
		changed            bool
	}{
		{"ip replace padding", builtin("$binary", "@ip"), "foo.txt",
			[]byte("before 127.0.0.1 after"), []byte("before [ip]***** after"), true},
		{"ip replace padding utf16", builtin("$binary", "@ip"), "foo.txt",
			utf16le("before 127.0.0.1 after"), utf16le("before [ip]***** after"), true},
		{"ip hash truncated", builtin("$binary", "@ip:hash"), "foo.txt",
			[]byte("before 127.0.0.1 after"), []byte("before AE12FE3B5 after"), true},
		{"ip hash truncated utf16", builtin("$binary", "@ip:hash"), "foo.txt",
			utf16le("before 127.0.0.1 after"), utf16le("before 3FA8F5A46 after"), true},
		{"ip mask", builtin("$binary", "@ip:mask"), "foo.txt",
			[]byte("before 127.0.0.1 after"), []byte("before ********* after"), true},
		{"ip mask utf16", builtin("$binary", "@ip:mask"), "foo.txt",
			utf16le("before 127.0.0.1 after"), utf16le("before ********* after"), true},
		{"ip remove", builtin("$binary", "@ip:remove"), "foo.txt",
			[]byte("before 127.0.0.1 after"), []byte("before ********* after"), true},
		{"ip remove utf16", builtin("$binary", "@ip:remove"), "foo.txt",
			utf16le("before 127.0.0.1 after"), utf16le("before ********* after"), true},
		{"all the bytes", builtin("$binary", "@anything:remove"), "foo.txt",
			func() []byte {
				b := make([]byte, 255)
				for i := range b {
					b[i] = byte(i)
				}
				return b
			}(), bytes.Repeat([]byte("*"), 255), true},
		{"email by file name", builtin("$attachments.'log.txt'", "@email:replace"), "log.txt",
			[]byte("mail jane.doe@example.com now"), []byte("mail [email]************* now"), true},
		{"file name case-insensitive", builtin("$attachments.'LOG.txt'", "@email:mask"), "log.txt",
			[]byte("x a@b.io"), []byte("x ******"), true},
		{"other file", builtin("$attachments.'log.txt'", "@email"), "other.txt",
			[]byte("mail jane.doe@example.com"), []byte("mail jane.doe@example.com"), false},
		{"every attachment", builtin("$attachments.**", "@creditcard:mask"), "pay.log",
			[]byte("card 4111111111111111."), []byte("card ****************."), true},
		{"custom pattern, groups", `{"rules":{"tok":{"type":"pattern","pattern":"token=([a-z0-9]+)","replaceGroups":[1],` +
			`"redaction":{"method":"replace","text":"[tok]"}}},"applications":{"$binary":["tok"]}}`, "a.txt",
			[]byte("token=abc123def&x=1"), []byte("token=[tok]****&x=1"), true},
		{"replacement truncated", `{"rules":{"r":{"type":"pattern","pattern":"secret","redaction":{"method":"replace","text":"[a long replacement]"}}},` +
			`"applications":{"$binary":["r"]}}`, "a.txt", []byte("a secret b"), []byte("a [a lon b"), true},
		{"key rule replaces all", `{"rules":{"p":{"type":"password","redaction":{"method":"remove"}}},"applications":{"$binary":["p"]}}`, "a.txt",
			[]byte("my password is x"), bytes.Repeat([]byte("*"), 16), true},
		{"dot matches newline", `{"rules":{"r":{"type":"pattern","pattern":"a.b","redaction":{"method":"mask"}}},"applications":{"$binary":["r"]}}`,
			"a.txt", []byte("xa\nbx"), []byte("x***x"), true},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := bytes.Clone(c.in)
			changed := attachmentsOf(t, c.config).Scrub(c.file, got)
			if !bytes.Equal(got, c.want) || changed != c.changed {
				t.Errorf("got %q (changed %v)\nwant %q (changed %v)", got, changed, c.want, c.changed)
			}
		})
	}
}

// Selectors that do not select a plain attachment leave it (Relay's
// test_selectors).
func TestScrubAttachmentWrongSelectors(t *testing.T) {
	for _, sel := range []string{"$string", "$number", "$attachments.* && $string", "$attachments", "** && !$binary"} {
		got := []byte("before 127.0.0.1 after")
		a := attachmentsOf(t, fmt.Sprintf(`{"applications":{%q:["@ip:mask"]}}`, sel))
		if a.Scrub("foo.txt", got) || string(got) != "before 127.0.0.1 after" {
			t.Errorf("%s: %q", sel, got)
		}
	}
}

// Patterns match raw bytes that are no valid UTF-8 (Relay's
// test_bytes_regexes).
func TestScrubAttachmentBytesRegexes(t *testing.T) {
	for _, sample := range [][]byte{
		[]byte("\xc3\x28"), []byte("\xa0\xa1"), []byte("\xe2\x28\xa1"), []byte("\xe2\x82\x28"),
		[]byte("\xf0\x28\x8c\xbc"), []byte("\xf0\x90\x28\xbc"), []byte("\xf0\x28\x8c\x28"),
		[]byte("\xf8\xa1\xa1\xa1\xa1"), []byte("\xfc\xa1\xa1\xa1\xa1\xa1"),
	} {
		var re strings.Builder
		for _, b := range sample {
			fmt.Fprintf(&re, `\x%02x`, b)
		}
		a := attachmentsOf(t, fmt.Sprintf(`{"rules":{"custom":{"type":"pattern","pattern":%q,"redaction":{"method":"remove"}}},`+
			`"applications":{"$binary":["custom"]}}`, re.String()))
		got := append([]byte("ok "), sample...)
		if !a.Scrub("foo.txt", got) || string(got) != "ok "+strings.Repeat("*", len(sample)) {
			t.Errorf("%s: %q", re.String(), got)
		}
	}
}

// UTF-16LE runs are found in binary data as Relay's WStrSegmentIter finds
// them: a run shorter than 5 characters is not scrubbed, and the run's
// alignment is the range's.
func TestScrubAttachmentUTF16Runs(t *testing.T) {
	mask := attachmentsOf(t, `{"rules":{"h":{"type":"pattern","pattern":"hello","redaction":{"method":"mask"}}},"applications":{"$binary":["h"]}}`)
	for _, c := range []struct{ in, want string }{
		{"h\x00e\x00l\x00l\x00o\x00", "*\x00*\x00*\x00*\x00*\x00"},
		{"\xd8\xd8\xd8\xd8h\x00e\x00l\x00l\x00o\x00\xd8\xd8", "\xd8\xd8\xd8\xd8*\x00*\x00*\x00*\x00*\x00\xd8\xd8"},
		{"\xd8\xd8\xd8h\x00e\x00l\x00l\x00o\x00\xd8\xd8", "\xd8\xd8\xd8h\x00e\x00l\x00l\x00o\x00\xd8\xd8"}, // unaligned: other text
		{"\xd8\xd8y\x00o\x00\xd8\xd8h\x00e\x00l\x00l\x00o\x00", "\xd8\xd8y\x00o\x00\xd8\xd8*\x00*\x00*\x00*\x00*\x00"},
	} {
		got := []byte(c.in)
		mask.Scrub("f", got)
		if string(got) != c.want {
			t.Errorf("%q: %q, want %q", c.in, got, c.want)
		}
	}
}

// Relay scrubs attachments only for a piiConfig with an application that
// names an attachment (has_simple_attachment_selector); then its other
// applications apply too.
func TestCompileAttachmentsGate(t *testing.T) {
	for _, c := range []struct {
		config string
		on     bool
	}{
		{`{"rules":{"0":{"type":"ip","redaction":{"method":"remove"}}},"applications":{"$attachments.'foo.txt'":["0"]}}`, true},
		{`{"applications":{"$attachments.'foo.txt'.**":["@ip"]}}`, true},
		{`{"applications":{"$attachments.**":["@ip"]}}`, false},
		{`{"applications":{"**":["@ip"]}}`, false},
		{`{"applications":{"$binary":["@ip"]}}`, false},
		{`{"applications":{}}`, false},
		{``, false},
		{`null`, false},
	} {
		a, err := CompileAttachments([]byte(c.config))
		if err != nil || a.ScrubsPlain() != c.on {
			t.Errorf("%s: %v, %v; want plain attachments on %v", c.config, a, err, c.on)
		}
	}
	a, _ := CompileAttachments([]byte(`{"applications":{"$attachments.'x.txt'":["@email"],"$binary":["@ip:mask"]}}`))
	got := []byte("a@b.io 10.0.0.1")
	if !a.Scrub("other.txt", got) || string(got) != "a@b.io ********" {
		t.Errorf("other applications once on: %q", got)
	}
	if _, err := CompileAttachments([]byte(`{"rules":{"r":{"type":"pattern","pattern":"("}},"applications":{"$attachments.'a'":["r"]}}`)); err == nil {
		t.Error("a broken regex compiled")
	}
	var none *Attachments
	if none.Scrub("a", []byte("10.0.0.1")) {
		t.Error("nil Attachments scrubbed")
	}
}

// BenchmarkScrubAttachment: a 1 MiB text log with an e-mail and an IP
// address every ~4 KiB, the rules of the integration test.
func BenchmarkScrubAttachment(b *testing.B) {
	a, err := CompileAttachments([]byte(`{"applications":{"$attachments.'log.txt'":["@email:replace"],"$attachments.**":["@ip:mask"]}}`))
	if err != nil {
		b.Fatal(err)
	}
	line := "2026-01-01T00:00:00Z INFO request served in 12ms for a user of the service, nothing to see here\n"
	var src []byte
	for len(src) < 1<<20 {
		for range 40 {
			src = append(src, line...)
		}
		src = append(src, "login jane.doe@example.com from 192.168.1.20\n"...)
	}
	data := make([]byte, len(src))
	b.SetBytes(int64(len(src)))
	b.ReportAllocs()
	for b.Loop() {
		copy(data, src)
		if !a.Scrub("log.txt", data) {
			b.Fatal("nothing scrubbed")
		}
	}
}

// BenchmarkScrubAttachmentHostile: the worst cases of many matches, a
// key rule's key every 4 bytes of 256 KiB (it took 10 s when each match
// redacted all of the attachment) and an IPv4 address every 8 bytes of
// 1 MiB.
func BenchmarkScrubAttachmentHostile(b *testing.B) {
	for _, c := range []struct {
		name, rule, unit string
		n                int
	}{
		{"password-256KiB", "@password", "otp ", 256 << 10},
		{"password-hash-256KiB", "@password:hash", "otp ", 256 << 10},
		{"ip-1MiB", "@ip", "1.1.1.1 ", 1 << 20},
	} {
		b.Run(c.name, func(b *testing.B) {
			a, err := CompileAttachments([]byte(`{"applications":{"$attachments.'log.txt'":["` + c.rule + `"]}}`))
			if err != nil {
				b.Fatal(err)
			}
			src := hostile(c.unit, c.n)
			data := make([]byte, len(src))
			b.SetBytes(int64(len(src)))
			b.ReportAllocs()
			for b.Loop() {
				copy(data, src)
				if !a.Scrub("log.txt", data) {
					b.Fatal("nothing scrubbed")
				}
			}
		})
	}
}

// streamAll gathers the matches br.each streams over text.
func streamAll(br *bytesRe, text []byte) [][]int {
	var out [][]int
	br.each(text, true, func(m []int) bool {
		out = append(out, m)
		return true
	})
	return out
}

// Streaming the matches, line by line or from where the last one ended,
// finds what FindAllSubmatchIndex finds over the whole data, for
// every built-in regex lineSafe lets through, over text with the values
// they look for, across and beside newlines.
func TestScrubAttachmentLinesEqualWhole(t *testing.T) {
	pieces := []string{"a@b.io", "jane.doe@example.com", "10.0.0.1", "192.168.1.20", "::1", "fe80::1%eth0",
		"4111 1111 1111 1111", "078-05-1120", "DE89370400440532013000", "https://u:p@h/", "C:\\Users\\jo\\x",
		"/home/al/x", "Bearer abc.def", " ", "\n", "\n\n", ".", "@", ":", "x", "é", "\xff", "-"}
	seen := map[bool]int{}
	for _, spec := range builtins {
		for _, pt := range spec.patterns() {
			br := bytesRegex(pt.re)
			if br == nil {
				continue
			}
			seen[br.lines]++
			for seed := range 200 {
				var b strings.Builder
				for i := range 12 {
					b.WriteString(pieces[(seed*7+i*i*13+i*seed)%len(pieces)])
				}
				text := []byte(b.String())
				got, want := streamAll(br, text), br.re.FindAllSubmatchIndex(text, -1)
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Fatalf("%s over %q: by line %v, whole %v", pt.re, text, got, want)
				}
			}
		}
	}
	if seen[true] == 0 || seen[false] == 0 {
		t.Errorf("line-safe built-in regexes %d, others %d: want both", seen[true], seen[false])
	}
	for expr, safe := range map[string]bool{
		`(?s:a.b)`: false, `a\sb`: false, `^ab`: false, `ab$`: false, `a[^x]b`: false, `a\nb`: false,
		`(?m:^ab$)`: true, `\bab\b`: true, `[a-z]+@[a-z]+`: true, `(?s:[a-z.]+)`: true,
	} {
		if lineSafe(expr) != safe {
			t.Errorf("lineSafe(%s) = %v", expr, !safe)
		}
	}
}

// FuzzScrubAttachment: scrubbing never panics and keeps the length. (It is
// not idempotent: masking "0::" leaves "***::", which the IPv6 regex
// matches again, in Relay too.)
func FuzzScrubAttachment(f *testing.F) {
	a, err := CompileAttachments([]byte(`{"applications":{"$attachments.'f'":["@email:mask","@ip:mask","@creditcard:mask","@password:mask"]}}`))
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte("a@b.io 10.0.0.1"))
	f.Add(utf16le("before 127.0.0.1 after"))
	f.Add([]byte("\xd8\xd8\xd8h\x00e\x00l\x00l\x00o\x00\xff\xfe"))
	f.Fuzz(func(t *testing.T, in []byte) {
		data := bytes.Clone(in)
		a.Scrub("f", data)
		if len(data) != len(in) {
			t.Fatalf("length %d, was %d", len(data), len(in))
		}
	})
}

// Streaming the matches one search at a time, from where the last one
// ended with the character before as context (and after when a match
// starts there), finds what FindAllSubmatchIndex finds: regexes that read
// that character, or match empty, over text with word characters, spaces,
// newlines and a multi-byte character.
func TestScrubAttachmentStreamEqualsFindAll(t *testing.T) {
	exprs := []string{`\b\w+\b`, `\B.`, `(?m)^a`, `^a|b`, `a*`, `\bx?`, `(a)|(b)\b`, `\Ax|y`,
		`\b1\b`, `(?s:.)\b`, `x*\B`, `a\b|ab`, `(?m:^)|a`, `é\b|\bé`}
	const alphabet = "ab x\n1é."
	runes := []rune(alphabet)
	for _, expr := range exprs {
		br := bytesRegex(regexp.MustCompile(expr))
		if br == nil {
			t.Fatalf("%s: not compiled", expr)
		}
		for seed := range 300 {
			var b strings.Builder
			for i := range seed % 17 {
				b.WriteRune(runes[(seed*31+i*i*7+i*seed)%len(runes)])
			}
			text := []byte(b.String())
			got, want := streamAll(br, text), br.re.FindAllSubmatchIndex(text, -1)
			if br.lines { // line by line differs on empty matches, which redact nothing
				got, want = nonEmpty(got), nonEmpty(want)
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("%s over %q: streamed %v, FindAll %v", expr, text, got, want)
			}
		}
	}
}

func nonEmpty(ms [][]int) [][]int {
	var out [][]int
	for _, m := range ms {
		if m[0] < m[1] {
			out = append(out, m)
		}
	}
	return out
}

// hostile is n bytes of unit repeated: a match every few bytes.
func hostile(unit string, n int) []byte { return bytes.Repeat([]byte(unit), n/len(unit)) }

// A key rule whose key matches K times over N bytes redacts the whole
// attachment once, not K times (K×N writes, or K HMACs over N bytes for
// hash): a constant number of allocations however many matches, where
// each match used to cost several. The output is what Relay writes for
// remove, mask and replace; for hash, one HMAC of the original bytes.
func TestScrubAttachmentKeyRuleOnce(t *testing.T) {
	src := hostile("otp ", 256<<10)
	for _, c := range []struct{ rule, want string }{
		{"@password", strings.Repeat("*", len(src))},
		{"@password:mask", strings.Repeat("*", len(src))},
		{"@password:hash", ""},
	} {
		a, err := CompileAttachments([]byte(`{"applications":{"$attachments.'log.txt'":["` + c.rule + `"]}}`))
		if err != nil {
			t.Fatal(err)
		}
		want := []byte(c.want)
		if c.want == "" {
			want = bytes.Clone(src)
			swapContent(want, string(hashValue(src)))
		}
		data := bytes.Clone(src)
		if !a.Scrub("log.txt", data) || !bytes.Equal(data, want) {
			t.Fatalf("%s: got %.60q..., want %.60q...", c.rule, data, want)
		}
		// Averaged over 20 runs: a GC emptying the scrubber's pools in a
		// run adds a few dozen allocations (CI, under load, saw 52 over 3
		// runs); per match would be tens of thousands.
		allocs := testing.AllocsPerRun(20, func() {
			copy(data, src)
			a.Scrub("log.txt", data)
		})
		if allocs > 50 {
			t.Errorf("%s over %d matches: %.0f allocations per scrub, want a constant few", c.rule, len(src)/4, allocs)
		}
	}
}

// Many matches over a large attachment (an IPv4 address every 8 bytes,
// 131072 of them) do not pile up: scrubbing allocates at most the 4 times
// the attachment the request's lease charges for it, plus the 16 bytes
// of each match's offsets the regexp package returns, garbage at once (it
// allocated 60 MiB for this 1 MiB when all matches were collected first).
func TestScrubAttachmentManyMatchesMemory(t *testing.T) {
	if testutil.RaceEnabled {
		t.Skip("allocation counts mean nothing under -race: the regexp package's pooled machines are dropped at random")
	}
	a, err := CompileAttachments([]byte(`{"applications":{"$attachments.'log.txt'":["@ip"]}}`))
	if err != nil {
		t.Fatal(err)
	}
	for _, unit := range []string{"1.1.1.1 ", "1.1.1.1\xff"} {
		src := hostile(unit, 1<<20)
		data := bytes.Clone(src)
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		a.Scrub("log.txt", data)
		runtime.ReadMemStats(&after)
		alloc := after.TotalAlloc - before.TotalAlloc
		t.Logf("%q: %d bytes allocated for %d", unit, alloc, len(src))
		if limit := uint64(4*len(src) + 16*len(src)/len(unit)); alloc > limit {
			t.Errorf("%q: %d bytes allocated for %d bytes, want at most %d", unit, alloc, len(src), limit)
		}
		if !bytes.HasPrefix(data, []byte("[ip]***")) || !bytes.HasSuffix(data, []byte("[ip]***"+unit[7:])) {
			t.Errorf("%q: not scrubbed: %.40q", unit, data)
		}
	}
}
