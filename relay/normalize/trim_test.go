package normalize

import (
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/baton-relay/baton/relay/event"
)

func frames(n int, extra string) string {
	var b strings.Builder
	b.WriteString(`[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"function":"f%d"%s}`, i, extra)
	}
	b.WriteString(`]`)
	return b.String()
}

func nested(depth int) string {
	if depth == 0 {
		return `"max depth"`
	}
	return fmt.Sprintf(`{"key%d":%s}`, depth, nested(depth-1))
}

// TestTrim drives Relay's trimming (trimming.rs) through Event and checks
// the values and the _meta Relay writes for them.
func TestTrim(t *testing.T) {
	n := testNormalizer(t)
	x := strings.Repeat
	ones := "[" + strings.TrimSuffix(x("1,", 200000), ",") + "]"
	for _, tc := range []struct {
		name, in string
		want     map[string]string // path → JSON of the value ("null": absent)
	}{
		{"culprit", `{"culprit":"` + x("x", 300) + `"}`, map[string]string{
			"culprit":        `"` + x("x", 197) + `..."`,
			"_meta.culprit.": `{"len":300,"rem":[["!limit","s",197,200]]}`}},
		{"culprit at limit", `{"culprit":"` + x("x", 200) + `"}`, map[string]string{"culprit": `"` + x("x", 200) + `"`, "_meta": "null"}},
		{"transaction", `{"transaction":"` + x("t", 201) + `"}`, map[string]string{"transaction": `"` + x("t", 197) + `..."`}},
		// Relay validates release and environment before it trims them: too
		// long, they are removed (tags.go); only an environment from a tag
		// is trimmed.
		{"environment", `{"environment":"` + x("e", 65) + `"}`, map[string]string{"environment": "null", "_meta.environment..err": `["invalid_data"]`, "_meta.environment..val": `"` + x("e", 65) + `"`}},
		{"environment from tag", `{"tags":{"environment":"` + x("e", 100) + `"}}`, map[string]string{"environment": `"` + x("e", 61) + `..."`, "_meta.environment..len": `100`, "tags": "null"}},
		{"release", `{"release":"` + x("r", 250) + `"}`, map[string]string{"release": "null", "_meta.release..err": `["invalid_data"]`, "_meta.release..len": "null"}},
		{"server_name tag", `{"server_name":"` + x("s", 250) + `"}`, map[string]string{"tags": `[["server_name","` + x("s", 197) + `..."]]`, "_meta.tags.0.1.": `{"len":250,"rem":[["!limit","s",197,200]]}`, "server_name": "null"}},
		{"message within allowance", `{"logentry":{"formatted":"` + x("m", 8392) + `"}}`, map[string]string{"_meta": "null"}},
		{"message over allowance", `{"message":"` + x("m", 8393) + `"}`, map[string]string{
			"_meta.logentry.formatted.": `{"len":8393,"rem":[["!limit","s",8189,8192]]}`}},
		{"exception value characters", `{"exception":[{"type":"E","value":"` + x("é", 9000) + `"}]}`, map[string]string{
			"exception.values.0.value":            `"` + x("é", 8189) + `..."`,
			"_meta.exception.values.0.value..len": `9000`}},
		{"exception type", `{"exception":[{"type":"` + x("T", 277) + `"}]}`, map[string]string{"exception.values.0.type": `"` + x("T", 253) + `..."`}},
		{"breadcrumb message", `{"breadcrumbs":[{"message":"` + x("b", 9000) + `","category":"` + x("c", 129) + `"}]}`, map[string]string{
			"_meta.breadcrumbs.values.0.message..len":  `9000`,
			"_meta.breadcrumbs.values.0.category..len": `129`}},
		{"request url", `{"request":{"url":"http://e.com/` + x("p", 300) + `"}}`, map[string]string{"_meta.request.url..rem": `[["!limit","s",253,256]]`}},
		{"user email", `{"user":{"email":"` + x("u", 70) + `@example.com"}}`, map[string]string{"user.email": `"` + x("u", 70) + `@e..."`}},
		{"tag value too long", `{"tags":{"k":"` + x("v", 201) + `","ok":"` + x("v", 200) + `"}}`, map[string]string{
			"tags":                `[["k",null],["ok","` + x("v", 200) + `"]]`,
			"_meta.tags.0.1.":     `{"err":["value_too_long"]}`,
			"_meta.tags.1":        "null",
			"tags.1.1":            `"` + x("v", 200) + `"`,
			"_meta.tags.0.0":      "null",
			"_meta.tags.0.1..val": "null"}},
		{"tag key too long", `{"tags":[["` + x("k", 201) + `","v"]]}`, map[string]string{"tags": `[[null,"v"]]`, "_meta.tags.0.0..err": `["value_too_long"]`}},
		{"tag empty", `{"tags":[["k",""]]}`, map[string]string{"tags": `[["k",null]]`, "_meta.tags.0.1..err": `[["invalid_data",{"reason":"expected a non-empty value"}]]`}},
		{"frames hard limit", `{"exception":[{"type":"E","stacktrace":{"frames":` + frames(300, "") + `}}]}`, map[string]string{
			"exception.values.0.stacktrace.frames.0.function":   `"f50"`,
			"exception.values.0.stacktrace.frames.249.function": `"f299"`,
			"_meta.exception.values.0.stacktrace.frames.":       `{"len":300}`}},
		{"frames slimmed", `{"stacktrace":{"frames":` + frames(60, `,"vars":{"a":1},"pre_context":["p"],"context_line":"c"`) + `}}`, map[string]string{
			"stacktrace.frames.24": `{"context_line":"c","function":"f24","pre_context":["p"],"vars":{"a":1}}`,
			"stacktrace.frames.25": `{"context_line":"c","function":"f25"}`,
			"stacktrace.frames.34": `{"context_line":"c","function":"f34"}`,
			"stacktrace.frames.35": `{"context_line":"c","function":"f35","pre_context":["p"],"vars":{"a":1}}`,
			"_meta":                "null"}},
		{"extra depth", `{"extra":{"key_1":"value 1","key_2":` + nested(8) + `,"key_3":` + nested(5) + `}}`, map[string]string{
			"extra.key_2.key8.key7.key6.key5.key4": `"{\"key3\":{\"key2\":{\"key1\":\"max depth\"}}}"`,
			"extra.key_3":                          nested(5),
			"_meta":                                "null"}},
		{"context bag", `{"contexts":{"despacito":{"foo":"` + x("a", 4000) + `","bar":"` + x("a", 5000) + `"}}}`, map[string]string{
			"contexts.despacito.bar":            `"` + x("a", 5000) + `"`,
			"contexts.despacito.foo":            `"` + x("a", 3186) + `..."`,
			"_meta.contexts.despacito.foo..len": `4000`,
			"_meta.contexts.despacito.foo..rem": `[["!limit","s",3186,3189]]`,
			"_meta.contexts.despacito.bar":      "null"}},
		{"extra long array", `{"extra":{"foo":` + ones + `}}`, map[string]string{
			"_meta.extra.foo..len": `200000`}},
		{"bag members cut in key order", `{"breadcrumbs":[{"data":{"b":"` + x("b", 2100) + `","a":"` + x("a", 2100) + `"}}]}`, map[string]string{
			"breadcrumbs.values.0.data":            `{"a":"` + x("a", 2045) + `..."}`,
			"_meta.breadcrumbs.values.0.data..len": `2`}},
		{"frame vars bag", `{"stacktrace":{"frames":[{"vars":{"v":` + nested(6) + `}}]}}`, map[string]string{
			"stacktrace.frames.0.vars.v.key6.key5.key4": `"{\"key3\":{\"key2\":{\"key1\":\"max depth\"}}}"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := Input{Received: recv}
			out, err := n.Event(nil, []byte(tc.in), &in)
			if err != nil {
				t.Fatal(err)
			}
			ev := decode(t, out)
			for path, want := range tc.want {
				if got := js(get(ev, path)); got != want {
					t.Errorf("%s = %.300s, want %.300s", path, got, want)
				}
			}
			again, err := n.Event(nil, out, &in)
			if err != nil || string(again) != string(out) {
				t.Errorf("second pass differs:\n%.2000s\n%.2000s", out, again)
			}
		})
	}
}

// TestTrimLongArray checks the count Relay keeps of a long array in extra:
// each 1 costs 2 bytes of the 262144 (max_bytes of extra).
func TestTrimLongArray(t *testing.T) {
	n := testNormalizer(t)
	ones := "[" + strings.TrimSuffix(strings.Repeat("1,", 200000), ",") + "]"
	out, err := n.Event(nil, []byte(`{"extra":{"foo":`+ones+`}}`), &Input{Received: recv})
	if err != nil {
		t.Fatal(err)
	}
	arr, _ := get(decode(t, out), "extra.foo").([]any)
	if len(arr) != 262144/2 {
		t.Errorf("kept %d elements, want %d", len(arr), 262144/2)
	}
	if !utf8.Valid(out) {
		t.Error("output is not UTF-8")
	}
}

// TestTrimField checks that trim's key numbers match topLimits.
func TestTrimField(t *testing.T) {
	for i, f := range topLimits {
		if got := trimField([]byte(f.key)); got != i {
			t.Errorf("trimField(%q) = %d, want %d", f.key, got, i)
		}
	}
	if got := trimField([]byte("exception")); got != fException {
		t.Errorf("trimField(exception) = %d, want %d", got, fException)
	}
}

// TestSpanFits checks spanFits against the walk it stands for: whenever it
// says a container fits, bagCost agrees, for every size and depth around
// the container's own.
func TestSpanFits(t *testing.T) {
	for _, src := range []string{
		`[]`, `{}`, `[1]`, `[[]]`, `[[],[],[[]]]`, `{"a":[1,2,[3]]}`,
		`{"a":"\u0001\u0002","b":"\n\t\"\\","c":"é€😀","d":"\u00e9\ud83d\ude00"}`,
		`["\ud800","\/","\b\f"]`, `[null,true,false,-1.5e3]`,
		`{"k":{"k":{"k":{"k":[["x"]]}}}}`, `[[[[[[[]]]]]]]`,
		`{"a":"[[[[","b":"{{{{"}`, `["` + strings.Repeat(`\u0000`, 40) + `"]`,
	} {
		tr, err := event.Parse([]byte(src))
		if err != nil {
			t.Fatal(src, err)
		}
		n := tr.Root()
		if n.Span() == nil {
			t.Fatalf("%s: no span", src)
		}
		for depth := 1; depth <= 9; depth++ {
			for size := 0; size <= len(src)*2+8; size++ {
				b := bagSize{depth, size}
				if !spanFits(n.Span(), b) {
					continue
				}
				if cost, deep := bagCost(n, 0, depth); deep || cost > size {
					t.Errorf("%s: spanFits(%v) but bagCost = %d, deep %v", src, b, cost, deep)
				}
			}
		}
		tr.Release()
	}
}

// manyKeys is an extra bag of n members, far more than it keeps.
func manyKeys(n int) []byte {
	b := []byte(`{"extra":{`)
	for i := range n {
		if i > 0 {
			b = append(b, ',')
		}
		b = fmt.Appendf(b, `"k%07d":"%s"`, i, strings.Repeat("v", 20))
	}
	return append(b, "}}"...)
}

// TestTrimManyKeys checks that a bag cut by trimming keeps its smallest
// keys in order and records the original count: the members past the cut
// are removed in one pass (one Delete per key was quadratic).
func TestTrimManyKeys(t *testing.T) {
	n := testNormalizer(t)
	const total = 100000
	out, err := n.Event(nil, manyKeys(total), &Input{Received: recv})
	if err != nil {
		t.Fatal(err)
	}
	ev := decode(t, out)
	extra, _ := get(ev, "extra").(map[string]any)
	if len(extra) == 0 || len(extra) >= total {
		t.Fatalf("kept %d of %d members", len(extra), total)
	}
	for i := range len(extra) {
		if _, ok := extra[fmt.Sprintf("k%07d", i)]; !ok {
			t.Fatalf("member k%07d missing: the kept ones are not the smallest keys", i)
		}
	}
	if l := fmt.Sprint(get(ev, "_meta.extra..len")); l != fmt.Sprint(total) {
		t.Errorf("_meta len %v, want %d", l, total)
	}
}

func BenchmarkTrimManyKeys(b *testing.B) {
	n := testNormalizer(b)
	src := manyKeys(100000)
	b.SetBytes(int64(len(src)))
	var out []byte
	for b.Loop() {
		var err error
		if out, err = n.Event(out[:0], src, &Input{Received: recv}); err != nil {
			b.Fatal(err)
		}
	}
}
