package event

import (
	"bytes"
	"runtime"
	"strings"
	"testing"
)

// parseAlloc is what parsing src into a fresh Tree allocates.
func parseAlloc(t *testing.T, src []byte) int {
	t.Helper()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	tr := new(Tree)
	root, err := parse(src, &tr.a)
	if err != nil {
		t.Fatal(err)
	}
	tr.root = root
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(tr)
	return int(after.TotalAlloc - before.TotalAlloc)
}

// repeat is a JSON array of n copies of elem, wrapped by pre and post.
func repeat(pre, elem, post string, n int) []byte {
	var b bytes.Buffer
	b.WriteString(pre + "[")
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(elem)
	}
	b.WriteString("]" + post)
	return b.Bytes()
}

// TestCost checks Cost against what Parse allocates: never less, on a
// realistic event and the shapes that make the most nodes per byte.
func TestCost(t *testing.T) {
	for _, c := range []struct {
		name string
		src  []byte
	}{
		{"realistic", repeat(`{"event_id":"9ec79c33ec9942ab8353589fcb2e04dc","level":"error","tags":{"a":"b"},"breadcrumbs":{"values":`,
			`{"timestamp":1700000000.5,"category":"http","message":"GET /api/items","data":{"status_code":200,"url":"https://shop.example.com/api"}}`, `}}`, 5000)},
		{"empty objects", repeat(`{"extra":`, `{}`, `}`, 350_000)},
		{"empty arrays", repeat(``, `[]`, ``, 350_000)},
		{"zeros", repeat(``, `0`, ``, 500_000)},
		{"keys", []byte(`{"tags":{"a":0` + strings.Repeat(`,"":0`, 200_000) + `}}`)},
		{"escapes", repeat(``, `"\u00e9\n"`, ``, 100_000)},
		{"deep", []byte(strings.Repeat(`[`, MaxDepth) + strings.Repeat(`]`, MaxDepth))},
	} {
		got, cost := parseAlloc(t, c.src), Cost(c.src)
		t.Logf("%s: %d B, allocated %d B (%.0f/B), cost %d B (%.2fx)",
			c.name, len(c.src), got, float64(got)/float64(len(c.src)), cost, float64(cost)/float64(got))
		if cost < got {
			t.Errorf("%s: cost %d B, parsing allocated %d B", c.name, cost, got)
		}
	}
	// A string hides its structure characters, escaped quotes included.
	if got, want := Cost([]byte(`["{,[:\"{,"]`)), 2*nodeCost+12*byteCost; got != want {
		t.Errorf("Cost of an array of one string = %d, want %d", got, want)
	}
}

// BenchmarkCost is the prescan's speed on a realistic event (MB/s).
func BenchmarkCost(b *testing.B) {
	src := repeat(`{"breadcrumbs":{"values":`, `{"timestamp":1700000000.5,"category":"http","message":"GET /api/items","data":{"status_code":200}}`, `}}`, 50)
	b.SetBytes(int64(len(src)))
	for b.Loop() {
		Cost(src)
	}
}

// TestCostStrings: escapes inside strings, escaped backslashes before a
// closing quote and an unterminated string.
func TestCostStrings(t *testing.T) {
	for _, c := range []struct {
		src   string
		nodes int
	}{
		{`["a\"{,","b\\",[1]]`, 5},
		{`["\\\"{,"]`, 2},
		{`[",{`, 2},
	} {
		if got, want := Cost([]byte(c.src)), c.nodes*nodeCost+len(c.src)*byteCost; got != want {
			t.Errorf("Cost(%s) = %d, want %d", c.src, got, want)
		}
	}
}
