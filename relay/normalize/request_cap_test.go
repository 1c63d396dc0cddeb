package normalize

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

var updateCap = flag.Bool("update-cap", false, "rewrite testdata/request_cap from the current output")

// repeatParts joins n parts made by part(i) with sep.
func repeatParts(n int, sep string, part func(i int) string) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteString(sep)
		}
		b.WriteString(part(i))
	}
	return b.String()
}

// capCases are requests with more pairs than trimming keeps; their output
// in testdata/request_cap was written by the code that built every pair and
// then trimmed, so the cap must give the same event and _meta.
func capCases() map[string]string {
	same := func(s string) func(int) string { return func(int) string { return s } }
	down := func(f string, n int) func(int) string { return func(i int) string { return fmt.Sprintf(f, n-i) } }
	q := func(s string) string { return fmt.Sprintf("%q", s) }
	return map[string]string{
		"query_same":       `{"query_string":` + q(repeatParts(500, "&", same("a"))) + `}`,
		"query_distinct":   `{"query_string":` + q(repeatParts(300, "&", down("k%03d=v%%41+", 300))) + `}`,
		"url_same":         `{"url":` + q("/x?"+repeatParts(500, "&", same("a=b"))) + `}`,
		"url_abs":          `{"url":` + q("http://h/?"+repeatParts(400, "&&", down("q%d", 400))+"#f") + `}`,
		"cookies_same":     `{"cookies":` + q(repeatParts(600, ";", same("a="))) + `}`,
		"cookies_distinct": `{"cookies":` + q(repeatParts(400, "; ", down("c%03d=x", 400))) + `}`,
		"cookies_bad_tail": `{"cookies":` + q(repeatParts(600, ";", same("a="))+";novalue") + `}`,
		"cookie_header":    `{"headers":[["Cookie",` + q(repeatParts(600, ";", down("c%d=1", 600))) + `]]}`,
		"data_same":        `{"data":` + q(repeatParts(5000, "&", same("a"))) + `}`,
		"data_distinct":    `{"data":` + q(repeatParts(4000, "&", down("k%04d=", 4000))+"&"+repeatParts(4000, "&", down("k%04d=v", 4000))) + `}`,
		"data_decoded":     `{"data":` + q(repeatParts(3500, "&", down("%%4B+%d=%%41", 3500))) + `}`,
		// Past twice maxFormKeys distinct keys, in scattered order, the
		// first half repeated with new values.
		"data_many": `{"data":` + q(repeatParts(12000, "&", func(i int) string { return fmt.Sprintf("k%d=%d", i*7919%9000, i) })) + `}`,
	}
}

// TestRequestPairCap: requests with more pairs than trimming keeps give
// what building every pair and trimming gave (golden files), twice as once.
func TestRequestPairCap(t *testing.T) {
	n := testNormalizer(t)
	dir := filepath.Join("testdata", "request_cap")
	for name, req := range capCases() {
		t.Run(name, func(t *testing.T) {
			in := Input{Received: recv}
			out, err := n.Event(nil, []byte(`{"request":`+req+`}`), &in)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, name+".json")
			if *updateCap {
				if err := os.MkdirAll(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, out, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			got, exp := decode(t, out), decode(t, want)
			delete(got, "event_id") // random
			delete(exp, "event_id")
			if g, w := js(got), js(exp); g != w {
				t.Errorf("output differs from building every pair:\n got %.2000s\nwant %.2000s", g, w)
			}
			if name == "data_same" {
				// Known, outside this cap: the body stays a string cut to
				// "a&…&a...", which the next pass reads as a two-key form.
				return
			}
			again, err := n.Event(nil, out, &in)
			if err != nil || string(again) != string(out) {
				t.Errorf("second pass differs (%v)", err)
			}
		})
	}
}

// TestRequestHostilePairs: a ~1 MB request field of separators allocates
// what the bag limits keep, not three nodes per separator (128 to 233 MB
// for these before the cap).
func TestRequestHostilePairs(t *testing.T) {
	n := testNormalizer(t)
	const size = 1 << 20
	rep := func(s string) string { return strings.Repeat(s, size/len(s)) }
	q := func(s string) string { return fmt.Sprintf("%q", s) }
	distinct := repeatParts(size/8, "&", func(i int) string { return fmt.Sprintf("%x", i*7919%(size/8)) })
	for name, req := range map[string]string{
		"query_string":   `{"query_string":` + q(rep("a&")) + `}`,
		"url":            `{"url":` + q("/x?"+rep("a&")) + `}`,
		"url_abs":        `{"url":` + q("http://h/?"+rep("%41=%42&")) + `}`,
		"cookies":        `{"cookies":` + q(rep("a=;")) + `}`,
		"cookie_header":  `{"headers":[["Cookie",` + q(rep("a=1; ")) + `]]}`,
		"data":           `{"data":` + q(rep("a&")) + `}`,
		"data_pairs":     `{"data":` + q(rep("a=b&")) + `}`,
		"data_distinct":  `{"data":` + q(distinct) + `}`,
		"query_distinct": `{"query_string":` + q(distinct) + `}`,
	} {
		t.Run(name, func(t *testing.T) {
			src := []byte(`{"request":` + req + `}`)
			in := Input{Received: recv}
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			out, err := n.Event(nil, src, &in)
			runtime.ReadMemStats(&after)
			if err != nil {
				t.Fatal(err)
			}
			alloc := after.TotalAlloc - before.TotalAlloc
			t.Logf("%d bytes in, %d allocated, %d out", len(src), alloc, len(out))
			// Pairs cost what the bags keep (a few hundred nodes, under
			// 100 KB here); a form of distinct keys also counts them, at
			// most 16 bytes of hashes per key.
			limit := uint64(512 << 10)
			if strings.HasSuffix(name, "distinct") && strings.HasPrefix(name, "data") {
				limit = uint64(8 * len(src))
			}
			if alloc > limit {
				t.Errorf("allocated %d bytes for %d bytes of input, want at most %d", alloc, len(src), limit)
			}
		})
	}
}
