package grouping

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// FuzzHash: Hash never panics, is deterministic, and does not depend on
// the order of object members.
func FuzzHash(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.json"))
	for _, name := range files {
		if src, err := os.ReadFile(name); err == nil {
			f.Add(src)
		}
	}
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		r1, err := HashJSON(src)
		if err != nil {
			return
		}
		sumAgrees(t, src)
		r2, _ := HashJSON(src)
		if !equalResults(r1, r2) {
			t.Fatalf("same event, different results: %+v vs %+v", r1, r2)
		}
		// Re-encode with members in two different orders (a decoder keeps
		// the last of repeated keys, so both encodings hold the same event).
		var v any
		d := json.NewDecoder(bytes.NewReader(src))
		d.UseNumber()
		if d.Decode(&v) != nil {
			return
		}
		a, b := encodeOrdered(nil, v, false), encodeOrdered(nil, v, true)
		ra, errA := HashJSON(a)
		rb, errB := HashJSON(b)
		if (errA == nil) != (errB == nil) {
			t.Fatalf("member order changed parse result: %v vs %v", errA, errB)
		}
		if errA == nil && !equalResults(ra, rb) {
			t.Fatalf("member order changed the hash:\n%s\n%s\n%+v\n%+v", a, b, ra, rb)
		}
	})
}

// fuzzSeeds are FuzzHash's seeds besides testdata (TestSumAgrees runs
// them too).
var fuzzSeeds = []string{
	`{"platform":"javascript","stacktrace":{"frames":[{"filename":"foo.py","function":"bar"}]}}`,
	`{"fingerprint":["{{ default }}",1,true],"checksum":"x","message":"a=1 b='c'"}`,
	`{"fingerprint":["{{ default }}","x"],"platform":"python","exception":[{"type":"E","value":"v 12","stacktrace":{"frames":[{"function":"f","in_app":true,"context_line":"  a  b "}]}},{"type":"F","value":"no stack"}],"message":"m"}`,
	`{"fingerprint":["a","{{ transaction }}"],"threads":[{"stacktrace":{"frames":[{"module":"io.sentry.X","function":"lambda$1","platform":"java"}]}}],"logentry":{"message":"x %s"}}`,
	`{"threads":{"values":[{"stacktrace":{"frames":[{"function":"a"}]}},{"stacktrace":{"frames":[{"function":"b"}]}}]},"stacktrace":{"frames":[{"filename":"A\\B.JS","abs_path":"eval code"}]},"csp":{"blocked_uri":"data:x"},"exception":{"values":[{"mechanism":{"synthetic":true,"meta":{"ns_error":{"code":3}}},"type":"T"}]}}`,
}

// fuzzInput is the []byte value of a corpus file ("go test fuzz v1").
func fuzzInput(t *testing.T, file []byte) []byte {
	t.Helper()
	_, rest, _ := bytes.Cut(file, []byte("\n"))
	line := strings.TrimSpace(string(rest))
	q, ok := strings.CutPrefix(line, "[]byte(")
	if !ok {
		t.Fatalf("corpus file: %q", file)
	}
	s, err := strconv.Unquote(strings.TrimSuffix(q, ")"))
	if err != nil {
		t.Fatalf("corpus file: %v", err)
	}
	return []byte(s)
}

func equalResults(a, b Result) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb)
}

// encodeOrdered writes v as JSON with object members sorted, or reversed.
func encodeOrdered(dst []byte, v any, reverse bool) []byte {
	switch x := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sortStrings(keys, reverse)
		dst = append(dst, '{')
		for i, k := range keys {
			if i > 0 {
				dst = append(dst, ',')
			}
			kb, _ := json.Marshal(k)
			dst = append(append(dst, kb...), ':')
			dst = encodeOrdered(dst, x[k], reverse)
		}
		return append(dst, '}')
	case []any:
		dst = append(dst, '[')
		for i, e := range x {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = encodeOrdered(dst, e, reverse)
		}
		return append(dst, ']')
	default:
		b, _ := json.Marshal(x)
		return append(dst, b...)
	}
}

func sortStrings(s []string, reverse bool) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && (s[j] < s[j-1]) != reverse && s[j] != s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}
