package event

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/baton-relay/baton/relay/internal/testutil"
)

func parseT(t *testing.T, s string) *Tree {
	t.Helper()
	tr, err := Parse([]byte(s))
	if err != nil {
		t.Fatalf("%s: %v", s, err)
	}
	t.Cleanup(tr.Release)
	return tr
}

func TestRoundTrip(t *testing.T) {
	for _, s := range []string{
		`{}`, `[]`, `null`, `true`, `-1.5e+3`, `"x"`,
		`{"a":[1,2.50,{"b":null}],"c":"\u00e9\n","d":false,"d":true}`,
		`{"s":"\ud83d\ude00 \"q\" \\ \/"}`,
	} {
		tr := parseT(t, s)
		if got := string(tr.AppendJSON(nil)); got != s {
			t.Errorf("%s written as %s", s, got)
		}
		if tr.Dirty() {
			t.Errorf("%s: dirty after parse", s)
		}
	}
	// Whitespace goes, values stay as written.
	tr := parseT(t, " { \"a\" : [ 1 , 1.0 ] }\n")
	if got := string(tr.AppendJSON(nil)); got != `{"a":[1,1.0]}` {
		t.Errorf("got %s", got)
	}
	// Invalid UTF-8 is replaced, and a rewritten string escaped.
	tr = parseT(t, "{\"a\":\"x\xffy\"}")
	if got := string(tr.AppendJSON(nil)); got != `{"a":"x`+"\ufffd"+`y"}` {
		t.Errorf("got %q", got)
	}
	tr.SetString(tr.Root().Get("a"), []byte("\"\x01\t\xfe"))
	if got := string(tr.AppendJSON(nil)); got != `{"a":"\"\u0001\t`+"\ufffd"+`"}` {
		t.Errorf("got %q", got)
	}
}

func TestSyntaxErrors(t *testing.T) {
	for _, s := range []string{``, `{`, `{"a"}`, `{"a":1,}`, `[1 2]`, `01`, `1.`, `"\x"`, "\"\x01\"", `{} {}`, `nul`,
		strings.Repeat("[", MaxDepth+2) + strings.Repeat("]", MaxDepth+2)} {
		if _, err := Parse([]byte(s)); !errors.Is(err, ErrSyntax) {
			t.Errorf("%q: err %v, want ErrSyntax", s, err)
		}
	}
}

func TestReaders(t *testing.T) {
	root := parseT(t, `{"s":"a","n":-12,"f":1.5,"b":true,"z":null,"o":{"k":[1]}}`).Root()
	if s, ok := root.Get("s").Str(); !ok || s != "a" || !root.Get("s").Is("a") || root.Get("n").Is("-12") {
		t.Error("Str/Is")
	}
	if v, ok := root.Get("n").Int(); !ok || v != -12 {
		t.Error("Int")
	}
	if _, ok := root.Get("f").Int(); ok {
		t.Error("Int of 1.5")
	}
	if f, ok := root.Get("f").Float(); !ok || f != 1.5 {
		t.Error("Float")
	}
	if b, ok := root.Get("b").Bool(); !ok || !b {
		t.Error("Bool")
	}
	for k, want := range map[string]string{"s": "a", "n": "-12", "b": "true"} {
		if b, ok := root.Get(k).Lenient(); !ok || string(b) != want {
			t.Errorf("Lenient(%s) = %q %v", k, b, ok)
		}
	}
	if _, ok := root.Get("o").Lenient(); ok {
		t.Error("Lenient of an object")
	}
	if !root.Get("z").IsNull() || !root.Get("missing").IsNull() || root.Get("missing").Get("x") != nil || root.Get("o").Get("k").Index(0).Kind() != Number {
		t.Error("absent values")
	}
}

func TestMutate(t *testing.T) {
	tr := parseT(t, `{"a":1,"b":[true],"a":2,"c":{}}`)
	root := tr.Root()
	tr.Set(root, "b", tr.NewString("x\"y"))
	tr.Set(root, "new", tr.NewInt(-7))
	if !tr.Delete(root, "a") || tr.Delete(root, "a") {
		t.Error("Delete")
	}
	c := root.Get("c")
	for i := range 10 { // grows past the slab place of a parsed container
		tr.Set(c, string(rune('a'+i)), tr.NewBool(i%2 == 0))
	}
	arr := tr.NewArray(tr.NewNull())
	tr.Push(arr, tr.NewNumber([]byte("1.0")))
	tr.Set(root, "arr", arr)
	tr.Rename(root, "new", "c") // replaces the old c
	if !tr.Dirty() {
		t.Error("not dirty")
	}
	want := `{"b":"x\"y","c":-7,"arr":[null,1.0]}`
	if got := string(tr.AppendJSON(nil)); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	tr.SetNull(root.Get("c"))
	if got := string(root.Get("c").AppendJSON(nil)); got != "null" {
		t.Errorf("SetNull: %s", got)
	}
}

func TestMeta(t *testing.T) {
	tr := parseT(t, `{"user":{"ip":"1.2.3.4"},"list":["a","b"],"_meta":{"user":{"ip":{"":{"rem":[["old","x"]]}}}}}`)
	root := tr.Root()
	ip := root.Get("user").Get("ip")
	m := tr.MetaOf(ip)
	m.Remarks = append(m.Remarks, Remark{Rule: "@ip", Type: 'x', Start: -1})
	tr.SetNull(ip)
	b := root.Get("list").Index(1)
	mb := tr.MetaOf(b)
	mb.Remarks, mb.Len = append(mb.Remarks, Remark{Rule: "r", Type: 's', Start: 0, End: 3}), 1
	tr.SetString(b, []byte("[x]"))
	lvl := tr.MetaAt("level")
	lvl.Errors = append(lvl.Errors, MetaError{Kind: "invalid_data", Data: reason(tr, "bad")})
	lvl.Val = tr.NewString("loud")
	tr.MetaAt("level").Errors = append(tr.MetaAt("level").Errors, MetaError{Kind: "x"})
	want := `{"user":{"ip":null},"list":["a","[x]"],"_meta":{"user":{"ip":{"":{"rem":[["old","x"],["@ip","x"]]}}},` +
		`"level":{"":{"err":[["invalid_data",{"reason":"bad"}],"x"],"val":"loud"}},"list":{"1":{"":{"rem":[["r","s",0,3]],"len":1}}}}}`
	got := string(tr.AppendJSON(nil))
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	if again := string(tr.AppendJSON(nil)); again != got {
		t.Errorf("second AppendJSON differs:\n%s", again)
	}
	if !json.Valid([]byte(got)) {
		t.Error("invalid JSON")
	}
}

func reason(tr *Tree, s string) *Node {
	o := tr.NewObject()
	tr.Set(o, "reason", tr.NewString(s))
	return o
}

// TestPooledAllocs: a pooled tree parses and writes an event of a steady
// size without allocating.
func TestPooledAllocs(t *testing.T) {
	if testutil.RaceEnabled {
		t.Skip("the race detector makes sync.Pool drop items: allocation counts are meaningless")
	}
	var sb strings.Builder
	sb.WriteString(`{"exception":{"values":[{"stacktrace":{"frames":[`)
	for i := range 200 {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(`{"filename":"app.js","lineno":12,"in_app":true,"vars":{"a":"\u00e9"}}`)
	}
	sb.WriteString(`]}}]}}`)
	src := []byte(sb.String())
	dst := make([]byte, 0, 2*len(src))
	allocs := testing.AllocsPerRun(50, func() {
		tr, err := Parse(src)
		if err != nil {
			t.Fatal(err)
		}
		tr.Set(tr.Root(), "level", tr.NewString("error"))
		dst = tr.AppendJSON(dst[:0])
		tr.Release()
	})
	if allocs > 1 {
		t.Errorf("%v allocations per parse", allocs)
	}
}

// FuzzParse: what Parse accepts is written as valid JSON that parses back
// to the same text.
func FuzzParse(f *testing.F) {
	for _, s := range []string{`{"a":[1,"\u00e9\n",{"b":null}],"c":true}`, "\"x\xff\"", `[1e5,-0.5]`, `{"a":"\ud800"}`,
		`{"a":{"b":[{"c":1},[2,{"d\/":3}]]},"e":{ "f":[]}}`, "{\"a\":[{\"k\xff\":1}],\"b\":{\"c\":\"\xfe\"}}"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		tr, err := Parse(src)
		if err != nil {
			if !errors.Is(err, ErrSyntax) {
				t.Fatalf("error %v does not wrap ErrSyntax", err)
			}
			return
		}
		out := tr.AppendJSON(nil)
		tr.Release()
		if !json.Valid(out) {
			t.Fatalf("invalid JSON %q for %q", out, src)
		}
		tr, err = Parse(out)
		if err != nil {
			t.Fatalf("output does not parse: %v\n%q", err, out)
		}
		defer tr.Release()
		if again := tr.AppendJSON(nil); string(again) != string(out) {
			t.Fatalf("second write differs:\n%q\n%q", out, again)
		}
		// Source spans: the event, then the same change, written with and
		// without them.
		a, _ := Parse(src)
		b, _ := Parse(src)
		defer a.Release()
		defer b.Release()
		ca, cb := containers(a.Root(), nil), containers(b.Root(), nil)
		for _, n := range cb {
			n.dirty = true
		}
		for _, change := range []bool{false, true} {
			if i := len(src) % max(1, len(ca)); change && len(ca) > 0 && ca[i].Len() > 0 {
				a.SetNull(ca[i].Index(0))
				b.SetNull(cb[i].Index(0))
			}
			if sa, sb := a.AppendJSON(nil), b.AppendJSON(nil); string(sa) != string(sb) {
				t.Fatalf("with source spans:\n%q\nwithout:\n%q", sa, sb)
			}
		}
	})
}

// containers lists the arrays and objects of n, depth first.
func containers(n *Node, dst []*Node) []*Node {
	if k := n.Kind(); k == Array || k == Object {
		dst = append(dst, n)
		for _, c := range n.vals {
			dst = containers(c, dst)
		}
	}
	return dst
}

func TestSortedKeys(t *testing.T) {
	tr := parseT(t, `{"b":1,"a":2,"c":3,"a":4}`)
	root := tr.Root()
	var got []string
	for _, i := range tr.SortedKeys(root) {
		got = append(got, string(root.Key(i))+"="+string(root.Index(i).Raw()))
	}
	if strings.Join(got, ",") != "a=4,b=1,c=3" {
		t.Errorf("got %v", got)
	}
}

// TestSourceSpans changes a value deep in a compact event with each
// mutator and checks the output against the same change made to the event
// pretty-printed, whose containers have no source span to reuse.
func TestSourceSpans(t *testing.T) {
	const src = `{"a":{"b":[1,{"c":"x","d":[true,null]}],"e":"y"},"f":[{"g":{"h":1}}],"k\u00e9y":{"z":[1]},"_meta":{"a":{"":{"rem":[]}}}}`
	inner := func(tr *Tree) *Node { return tr.Root().Get("a").Get("b").Index(1) }
	for _, m := range []struct {
		name string
		do   func(tr *Tree)
	}{
		{"Set", func(tr *Tree) { tr.Set(inner(tr), "c", tr.NewInt(7)) }},
		{"SetNew", func(tr *Tree) { tr.Set(inner(tr), "n", tr.NewBool(false)) }},
		{"Delete", func(tr *Tree) { tr.Delete(inner(tr), "c") }},
		{"DeleteAt", func(tr *Tree) { tr.DeleteAt(inner(tr), []int{0}) }},
		{"Rename", func(tr *Tree) { tr.Rename(inner(tr), "c", "d") }},
		{"SliceObject", func(tr *Tree) { tr.Slice(inner(tr), 1, 2) }},
		{"SliceArray", func(tr *Tree) { tr.Slice(inner(tr).Get("d"), 0, 1) }},
		{"Push", func(tr *Tree) { tr.Push(inner(tr).Get("d"), tr.NewString("p")) }},
		{"SetIndex", func(tr *Tree) { tr.SetIndex(inner(tr).Get("d"), 1, tr.NewString("q")) }},
		{"SetNull", func(tr *Tree) { tr.SetNull(inner(tr).Get("d").Index(0)) }},
		{"SetString", func(tr *Tree) { tr.SetString(inner(tr).Get("c"), []byte("s")) }},
		{"SetNullContainer", func(tr *Tree) { tr.SetNull(tr.Root().Get("f").Index(0).Get("g")) }},
		{"MovedThenChanged", func(tr *Tree) {
			g := tr.Root().Get("f").Index(0).Get("g")
			tr.Set(tr.Root().Get("a"), "moved", g)
			tr.Set(g, "h", tr.NewInt(2))
		}},
		{"Meta", func(tr *Tree) { tr.MetaOf(inner(tr).Get("c")).Len = 3 }},
		{"MetaAt", func(tr *Tree) { tr.MetaAt("a", "e").Len = 1 }},
	} {
		compact := parseT(t, src)
		spaced := parseT(t, strings.ReplaceAll(strings.ReplaceAll(src, ",", " , "), ":", " : "))
		m.do(compact)
		m.do(spaced)
		got, want := string(compact.AppendJSON(nil)), string(spaced.AppendJSON(nil))
		if got != want {
			t.Errorf("%s: got  %s\nwant %s", m.name, got, want)
		}
		if got == src {
			t.Errorf("%s: change lost: %s", m.name, got)
		}
	}
}

func TestDeleteAt(t *testing.T) {
	tr := parseT(t, `{"a":1,"b":2,"c":3,"d":4,"e":5}`)
	root := tr.Root()
	tr.DeleteAt(root, []int{4, 1, 2})
	if got := string(tr.AppendJSON(nil)); got != `{"a":1,"d":4}` {
		t.Errorf("got %s", got)
	}
	tr.DeleteAt(root, nil)
	tr.DeleteAt(root, []int{7})
	if got := string(tr.AppendJSON(nil)); got != `{"a":1,"d":4}` {
		t.Errorf("out-of-range or empty idx changed the object: %s", got)
	}
}
