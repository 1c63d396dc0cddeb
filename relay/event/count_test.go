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
	root, err := parse(src, &tr.a, false)
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
		{"structure in strings", repeat(``, `"{[,:"`, ``, 200_000)},
	} {
		got, cost := parseAlloc(t, c.src), Cost(c.src)
		t.Logf("%s: %d B, allocated %d B (%.0f/B), cost %d B (%.2fx)",
			c.name, len(c.src), got, float64(got)/float64(len(c.src)), cost, float64(cost)/float64(got))
		if cost < got {
			t.Errorf("%s: cost %d B, parsing allocated %d B", c.name, cost, got)
		}
	}
}

// TestCostInvalid: input that fails to parse is charged for what parsing
// it held until it failed, unclosed arrays as deep as parsing goes
// included.
func TestCostInvalid(t *testing.T) {
	for _, src := range []string{
		strings.Repeat("[", MaxDepth+1),
		strings.Repeat("[", MaxDepth+1) + "0,0,0,0",
		strings.Repeat(`{"a":[`, MaxDepth/2) + "0,",
		`[0,0,0,0,0,0,0,0,"`,
	} {
		var a arena
		if _, err := parse([]byte(src), &a, false); err == nil {
			t.Fatalf("%.20s... parsed", src)
		}
		nodes := a.ci*chunkNodes + len(a.cur)
		if cost := Cost([]byte(src)); cost < nodes*nodeCost {
			t.Errorf("%.20s...: cost %d, parsing held %d nodes (%d B)", src, cost, nodes, nodes*nodeCost)
		}
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

// treeCost is what Cost must cover for the tree src parses into: its
// nodes and keys at Cost's rates.
func treeCost(t *testing.T, src []byte) int {
	t.Helper()
	tr, err := Parse(src)
	if err != nil {
		t.Fatalf("%s: %v", src, err)
	}
	defer tr.Release()
	var nodes, keys int
	var walk func(n *Node)
	walk = func(n *Node) {
		nodes++
		keys += len(n.keys)
		for _, v := range n.vals {
			walk(v)
		}
	}
	walk(tr.Root())
	return nodes*nodeCost + keys*keyCost + len(src)*byteCost
}

// TestCostStrings: structure characters inside strings count, so Cost is
// at least what the parsed tree holds, at Cost's rates, and the caps keep a
// string full of them from costing more than the densest JSON of its size.
func TestCostStrings(t *testing.T) {
	for _, src := range []string{
		`["a\"{,","b\\",[1]]`,
		`["\\\"{,"]`,
		`[",{"]`,
		`{"url":"https://example.com:8080/a,b","t":"10:00:00"}`,
		`[]`, `0`, `{"":0}`, `[0,0]`,
	} {
		if got, min := Cost([]byte(src)), treeCost(t, []byte(src)); got < min {
			t.Errorf("Cost(%s) = %d, less than its tree's %d", src, got, min)
		}
	}
	for _, c := range []struct {
		src         string
		nodes, keys int
	}{
		{`"` + strings.Repeat(",", 1000) + `"`, (1002 + MaxDepth + 2) / 2, 0},
		{`"` + strings.Repeat(":", 1000) + `"`, 1, 250},
		{`"` + strings.Repeat("{:", 500) + `"`, 501, 250},
	} {
		if got, want := Cost([]byte(c.src)), c.nodes*nodeCost+c.keys*keyCost+len(c.src)*byteCost; got != want {
			t.Errorf("Cost of %.10s... = %d, want %d (capped)", c.src, got, want)
		}
	}
}

// FuzzCost: Cost covers the nodes a parse holds, whether it succeeds or
// fails, and the keys of the tree it makes.
func FuzzCost(f *testing.F) {
	for _, s := range []string{`{"a":[1,"x,{[:",{"b":null}]}`, `[[[[`, `["\",\"",:`, `{"":0,"":[]}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		var a arena
		root, err := parse(src, &a, false)
		want := (a.ci*chunkNodes+len(a.cur))*nodeCost + len(src)*byteCost
		if err == nil {
			var keys func(n *Node) int
			keys = func(n *Node) int {
				k := len(n.keys)
				for _, v := range n.vals {
					k += keys(v)
				}
				return k
			}
			want += keys(root) * keyCost
		}
		if got := Cost(src); got < want {
			t.Fatalf("Cost(%q) = %d, parsing held %d", src, got, want)
		}
	})
}
