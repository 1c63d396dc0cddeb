package grouping

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
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
	f.Add([]byte(`{"platform":"javascript","stacktrace":{"frames":[{"filename":"foo.py","function":"bar"}]}}`))
	f.Add([]byte(`{"fingerprint":["{{ default }}",1,true],"checksum":"x","message":"a=1 b='c'"}`))
	f.Fuzz(func(t *testing.T, src []byte) {
		r1, err := HashJSON(src)
		if err != nil {
			return
		}
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
