package normalize

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestTrimmedIdempotent: normalizing an event Baton normalized, trimmed
// and annotated with `_meta` changes nothing, byte for byte: a field cut
// to its limit is not cut again, a remark or an original `len` is not
// recorded twice, a bag that was trimmed and a stack trace that lost
// frames stay as they are. (A downstream relay that does not trust the
// `fully_normalized` mark normalizes again; so does the fuzz target.)
func TestTrimmedIdempotent(t *testing.T) {
	long := func(c string, n int) string { return strings.Repeat(c, n) }
	frames := func(n int) string {
		var b strings.Builder
		for i := range n {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `{"function":"f%d","lineno":%d,"vars":{"i":%d},"pre_context":["a"],"post_context":["b"]}`, i, i+1, i)
		}
		return b.String()
	}
	crumbs := func(n int) string {
		var b strings.Builder
		for i := range n {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `{"timestamp":%d,"message":"%s","category":"%s"}`, 1764064700+i, long("m", 9000), long("c", 200))
		}
		return b.String()
	}
	deep := `{"a":{"b":{"c":{"d":{"e":{"f":{"g":{"h":1}}}}}}}}`
	for name, src := range map[string]string{
		"message":     `{"message":"` + long("x", 9000) + `"}`,
		"logentry":    `{"logentry":{"message":"` + long("%s ", 3000) + `","params":["` + long("p", 300) + `"]}}`,
		"unicode":     `{"message":"` + long("é", 8500) + `","culprit":"` + long("😀", 300) + `"}`,
		"tags":        `{"tags":{"` + long("k", 250) + `":"v","k":"` + long("v", 250) + `","":"x"}}`,
		"extra size":  `{"extra":{"big":"` + long("e", 300000) + `","n":1}}`,
		"extra many":  `{"extra":{` + strings.TrimSuffix(strings.Repeat(`"k`+long("k", 20)+`":"`+long("v", 3000)+`",`, 120), ",") + `}}`,
		"depth":       `{"extra":` + deep + `,"contexts":{"c":{"type":"c","x":` + deep + `}},"user":{"data":` + deep + `}}`,
		"frames":      `{"exception":{"values":[{"type":"` + long("T", 300) + `","value":"` + long("v", 9000) + `","stacktrace":{"frames":[` + frames(300) + `]}}]}}`,
		"breadcrumbs": `{"breadcrumbs":{"values":[` + crumbs(5) + `]}}`,
		"request":     `{"request":{"url":"https://example.com/` + long("p", 300) + `","data":{"d":"` + long("d", 9000) + `"},"headers":{"X":"` + long("h", 9000) + `"},"fragment":"` + long("f", 1200) + `"}}`,
		"user":        `{"user":{"id":"` + long("i", 200) + `","username":"` + long("u", 200) + `","ip_address":"{{auto}}"}}`,
		"invalid":     `{"level":"loud","timestamp":"yesterday","platform":"` + long("p", 100) + `","environment":"a/b","release":"a\nb","user":{"email":7}}`,
		"time":        `{"timestamp":1000,"start_timestamp":1,"type":"transaction","contexts":{"trace":{"trace_id":"4c79f60c11214eb38604f4ae0781bfb2","span_id":"aaaaaaaaaaaaaaaa"}}}`,
		"measurements": `{"type":"transaction","timestamp":1764064799,"start_timestamp":1764064798,"contexts":{"trace":{"trace_id":"4c79f60c11214eb38604f4ae0781bfb2","span_id":"aaaaaaaaaaaaaaaa"}},` +
			`"measurements":{"lcp":{"value":"x"},"fcp":{"value":1,"unit":"millisecond"},"` + long("m", 300) + `":{"value":1}}}`,
	} {
		t.Run(name, func(t *testing.T) {
			n := testNormalizer(t)
			in := &Input{ClientAddr: "192.0.2.1", Received: recv, SentAt: recv.Add(-3 * time.Hour)}
			once, err := n.Event(nil, []byte(src), in)
			if err != nil {
				t.Fatal(err)
			}
			if name != "time" && name != "measurements" && !strings.Contains(string(once), `"_meta"`) {
				t.Errorf("nothing was trimmed or removed: %.300s", once)
			}
			twice, err := n.Event(nil, once, in)
			if err != nil {
				t.Fatal(err)
			}
			if string(twice) != string(once) {
				t.Errorf("a second pass changed the event:\nonce  %.2000s\ntwice %.2000s", once, twice)
			}
		})
	}
}
