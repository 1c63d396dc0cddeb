package event

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/baton-relay/baton/relay/internal/testutil"
)

// parseBoth parses src eagerly and with lazy frames.
func parseBoth(src []byte) (eager, lazy *Tree, eerr, lerr error) {
	eager, eerr = ParseEager(src)
	lazy, lerr = Parse(src)
	return
}

// dump writes n through the readers, as a processor sees it.
func dump(b *strings.Builder, n *Node) {
	fmt.Fprintf(b, "%d%q%q%q|", n.Kind(), n.Bytes(), n.Raw(), n.Span())
	for _, k := range []string{"abs_path", "in_app", "vars", "function", "x", ""} {
		fmt.Fprintf(b, "%d,", n.Find(k))
	}
	for i := range n.Len() {
		if n.Kind() == Object {
			fmt.Fprintf(b, "%q:", n.Key(i))
		}
		dump(b, n.Index(i))
	}
	b.WriteByte(';')
}

// checkLazy fails the test when the lazy parse of src differs from the
// eager one: error, output, what the readers see, and the output after the
// same changes.
func checkLazy(t testing.TB, src []byte, r *rand.Rand) {
	t.Helper()
	e, l, eerr, lerr := parseBoth(src)
	if fmt.Sprint(eerr) != fmt.Sprint(lerr) {
		t.Fatalf("%.200q: eager error %v, lazy %v", src, eerr, lerr)
	}
	if eerr != nil {
		return
	}
	defer e.Release()
	defer l.Release()
	if got, want := l.AppendJSON(nil), e.AppendJSON(nil); !bytes.Equal(got, want) {
		t.Fatalf("%.200q: lazy writes\n%s\neager\n%s", src, got, want)
	}
	// Change the same nodes of both (the walk order is the same), through
	// readers first on some nodes so that both paths to a change are taken.
	var walk func(a, b *Node)
	walk = func(a, b *Node) {
		if a.Kind() == Object && r.IntN(3) == 0 {
			x := r.IntN(4)
			if x == 0 {
				a.Len()
				b.Len()
			}
			switch r.IntN(5) {
			case 0:
				e.Set(a, "x", e.NewInt(1))
				l.Set(b, "x", l.NewInt(1))
			case 1:
				e.Delete(a, "function")
				l.Delete(b, "function")
			case 2:
				e.MetaOf(a).Len = 3
				l.MetaOf(b).Len = 3
			case 3:
				e.SetNull(a)
				l.SetNull(b)
			case 4:
				e.Rename(a, "lineno", "line")
				l.Rename(b, "lineno", "line")
			}
		}
		if a.Kind() == String && r.IntN(4) == 0 {
			e.SetString(a, []byte("s"))
			l.SetString(b, []byte("s"))
			e.MetaOf(a).Len = 1
			l.MetaOf(b).Len = 1
		}
		for i := range a.Len() {
			walk(a.Index(i), b.Index(i))
		}
	}
	// A lazy node's keys (its own, or shared with the sibling before it)
	// are the eager node's.
	var keys func(a, b *Node)
	keys = func(a, b *Node) {
		if ks, mem, ok := b.LazyKeys(); ok {
			var want, got [][]byte
			var wmem Members
			for i := range a.Len() {
				want = append(want, a.Key(i))
				switch v := a.Index(i); v.Kind() {
				case Object:
					t.Fatalf("%.200q: lazy object with an object member %q", src, a.Key(i))
				case Array:
					wmem |= HasArrays
					for j := range v.Len() {
						if k := v.Index(j).Kind(); k == Array || k == Object {
							t.Fatalf("%.200q: lazy object with a nested array %q", src, a.Key(i))
						}
					}
					if v.Len() == 2 && v.Index(0).Kind() == String {
						wmem |= HasPairs
					}
				}
			}
			got = append(got, ks...)
			if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", want) {
				t.Fatalf("%.200q: lazy keys %q, eager %q", src, got, want)
			}
			if mem != wmem {
				t.Fatalf("%.200q: lazy members %b, eager %b", src, mem, wmem)
			}
			return
		}
		for i := range a.Len() {
			keys(a.Index(i), b.Index(i))
		}
	}
	keys(e.Root(), l.Root())
	var de, dl strings.Builder
	dump(&de, e.Root())
	dump(&dl, l.Root())
	if de.String() != dl.String() {
		t.Fatalf("%.200q: lazy reads\n%s\neager\n%s", src, dl.String(), de.String())
	}
	walk(e.Root(), l.Root())
	if got, want := l.AppendJSON(nil), e.AppendJSON(nil); !bytes.Equal(got, want) {
		t.Fatalf("%.200q: after changes lazy writes\n%s\neager\n%s", src, got, want)
	}
}

func lazyInputs(t testing.TB) [][]byte {
	lines := bytes.Split(testutil.ErrorEnvelope(), []byte("\n"))
	in := [][]byte{lines[2],
		[]byte(`{"frames":[{"a":1},{"b":"x","c":true,"d":null,"e":false,"f":-1.5e3},{},{"g":{}},{"h":"\u00e9"},{ "i":1},{"j":"é"},[1],"s",{"k":01},{"l":1.},{"m":tru}]}`),
		[]byte(`{"frames":[{"a":1}],"x":{"frames":{"b":2}},"y":[{"frames":[{"c":3},{"c":"\n"}]}]}`),
		[]byte(`{"frames":[{"":1,"":2,"a":"","b":"a\"b"}]}`),
		[]byte(strings.Repeat(`{"frames":[`, 84) + `{"a":1}` + strings.Repeat(`]}`, 84)),
		[]byte(strings.Repeat(`{"frames":[`, 85) + `{"a":1}` + strings.Repeat(`]}`, 85)),
		[]byte(strings.Repeat(`[`, 254) + `{"frames":[{"a":1}]}` + strings.Repeat(`]`, 254)),
		[]byte(strings.Repeat(`[`, 253) + `{"frames":[{"a":1}]}` + strings.Repeat(`]`, 253)),
		[]byte(strings.Repeat(`[`, 252) + `{"frames":[{"a":1}]}` + strings.Repeat(`]`, 252)),
		[]byte(`{"_meta":{"frames":[{"":{"rem":[["x","s"]]}}]},"frames":[{"a":1}]}`),
		bytes.Split(testutil.JSErrorEnvelope(), []byte("\n"))[2],
		// Strings with escapes, arrays of scalars, and what is not quite.
		[]byte(`{"frames":[{"a":"\u003c\u003E\"\\\/\b\f\n\r\t","b":["x","\ud83d\ude00"],"c":"\ud83d","d":"\udc00\ud800x"},` +
			`{"e":"\ud83d\u0041","f":"é\u00e9","g":[],"h":[1,-2.5e3,true,false,null,""],"i":["k",1]},` +
			`{"s":[1 ]},{"t":[[1]]},{"u":[{}]},{"v":["a" ,"b"]},` +
			`{"z":"\ud800\udbff"},{"A":"\uDFFF\uD800\uDC00"},{"B":"\u0000"},{"C":"\u007f\u0080"}]}`),
		[]byte("{\"frames\":[{\"a\":\"\xff\"},{\"b\":\"\xc3\"},{\"c\":\"\xed\xa0\x80\"},{\"d\":\"\xef\xbf\xbd\u00e9\"},{\"e\":[\"\xc3\xa9\",\"\x7f\"]},{\"f\":\"a\tb\"},{\"g\":\"\xf0\x9f\x98\"}]}"),
		[]byte(`{"frames":[{"pre_context":["a","b"],"context_line":"c","post_context":["d"]},{"pre_context":["a","b"],"context_line":"c","post_context":[]},{"pre_context":[1,"b"]}]}`),
		[]byte(strings.Repeat(`[`, 253) + `{"frames":[{"a":[1]}]}` + strings.Repeat(`]`, 253)),
		[]byte(strings.Repeat(`[`, 252) + `{"frames":[{"a":[1]}]}` + strings.Repeat(`]`, 252)),
		[]byte(strings.Repeat(`[`, 251) + `{"frames":[{"a":[1]}]}` + strings.Repeat(`]`, 251)),
		[]byte(strings.Repeat(`[`, 252) + `{"frames":[{"a":[]}]}` + strings.Repeat(`]`, 252)),
	}
	// Frames the parser refuses, each alone (the parse stops at the first
	// error), after a lazy sibling.
	for _, v := range []string{`"\x"`, `"\u12g4"`, `"\u12"`, `"\u"`, `"a\"`, `"\ud83d\u12x4"`, `"\ud83d\"`,
		`"\ud83d\u12"`, `"\`, `"\u00e`, "\"\x01\"", "\"a\nb\"", `[1,]`, `[,1]`, `[01]`, `[tru]`, `["\q"]`, `["a"`,
		`[1`, `["a",`, `[-]`, `["\u00e"]`} {
		in = append(in, []byte(`{"frames":[{"a":[1]},{"b":`+v+`,"c":2}]}`), []byte(`{"frames":[{"b":`+v+`}]}`))
	}
	for _, b := range testutil.Fixtures(t, "../normalize/testdata/events/*", "../normalize/testdata/sdk/*",
		"../../envelope/testdata/sdk-envelopes/*", "../../envelope/testdata/relay/events/*", "../grouping/testdata/*.json") {
		in = append(in, b)
		in = append(in, bytes.Split(b, []byte("\n"))...)
	}
	return in
}

// TestLazyMatchesEager: lazy frames change nothing a reader or writer of
// the tree sees, nor which inputs are refused and how: the fixtures, every
// prefix of the load event and of a hostile one, and random events.
func TestLazyMatchesEager(t *testing.T) {
	r := rand.New(rand.NewPCG(17, 12))
	in := lazyInputs(t)
	for _, src := range [][]byte{in[0], in[1], in[10], in[11], in[12]} { // load, hostile, js, escapes, UTF-8
		for i := range len(src) {
			in = append(in, src[:i])
		}
	}
	for range 4000 {
		in = append(in, randomFrames(r))
	}
	for _, src := range in {
		checkLazy(t, src, r)
	}
}

func FuzzLazyMatchesEager(f *testing.F) {
	for _, src := range lazyInputs(f) {
		if len(src) <= 4<<10 {
			f.Add(src)
		}
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		if len(src) > 4<<10 { // the large fixtures are TestLazyMatchesEager's
			return
		}
		checkLazy(t, src, rand.New(rand.NewPCG(uint64(len(src)), 1)))
	})
}

// randomFrames is an event whose frames are flat objects, or almost.
func randomFrames(r *rand.Rand) []byte {
	keys := []string{"function", "abs_path", "in_app", "lineno", "vars", "x", "", `a\"b`, "é", "frames"}
	vals := []string{`"a"`, `12`, `-0.5e+3`, `true`, `false`, `null`, `""`, `"\u00e9"`, `"é"`, `{}`, `[]`, `{"a":1}`,
		`[{"b":2}]`, `01`, `1.`, `tru`, `"x`, ` 1`, `"a\tb"`, `"\u003canonymous\u003e"`, `"a\"b\\c\/"`, `"\ud83d\ude00"`,
		`"\ud83d"`, `"\ud83dx"`, `"\ud83d\u0041"`, `"\u12"`, `"\x"`, `"\ud83d\u12x4"`, "\"\xff\"", "\"\xe2\x82\"",
		`["a","b","c"]`, `["k","v"]`, `["k",1]`, `[1,"v"]`, `[null,true,-1]`, `[]`, `[["a"]]`, `[{}]`, `["a",]`, `["a" ]`, `["\u00e9","\t"]`}
	var frames []string
	var last []string // the keys of the frame before
	for range r.IntN(8) {
		var b strings.Builder
		b.WriteByte('{')
		ks := last
		if r.IntN(3) == 0 || len(ks) == 0 {
			ks = nil
			for range r.IntN(5) {
				ks = append(ks, keys[r.IntN(len(keys))])
			}
		} else if r.IntN(2) == 0 { // mostly the same keys as the frame before
			ks = append([]string(nil), ks...)
			switch i := r.IntN(len(ks)); r.IntN(5) {
			case 0:
				ks = ks[:i]
			case 1:
				ks = append(ks, keys[r.IntN(len(keys))])
			case 2:
				ks[i] += "n"
			case 3:
				ks[i] = ks[i][:len(ks[i])/2]
			case 4:
				ks[i] = keys[r.IntN(len(keys))]
			}
		}
		last = ks
		for i, k := range ks {
			if i > 0 {
				b.WriteByte(',')
			}
			v := `"a"`
			if r.IntN(2) == 0 {
				v = vals[r.IntN(len(vals))]
			}
			fmt.Fprintf(&b, `"%s":%s`, k, v)
		}
		b.WriteByte('}')
		frames = append(frames, b.String())
	}
	return fmt.Appendf(nil, `{"exception":{"values":[{"stacktrace":{"frames":[%s]}}]},"frames":[%s]}`,
		strings.Join(frames, ","), strings.Join(frames[:len(frames)/2], ","))
}

// TestLazyRealFrames: the frames real SDKs send, with context lines and
// escaped strings (the load tool's shape), are kept lazy, and what is not
// flat is not.
func TestLazyRealFrames(t *testing.T) {
	src := bytes.Split(testutil.JSErrorEnvelope(), []byte("\n"))[2]
	tr, err := Parse(src)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Release()
	frames := tr.Root().Get("exception").Get("values").Index(0).Get("stacktrace").Get("frames")
	arrays := 0
	for i := range frames.Len() {
		ks, mem, ok := frames.Index(i).LazyKeys()
		if !ok {
			t.Fatalf("frame %d is not lazy: %s", i, frames.Index(i).Span())
		}
		if mem&HasArrays != 0 {
			arrays++
			if len(ks) != 9 || mem&HasPairs != 0 {
				t.Errorf("frame %d: keys %q, members %b", i, ks, mem)
			}
		}
	}
	if arrays == 0 || arrays == frames.Len() {
		t.Errorf("%d of %d frames have context lines", arrays, frames.Len())
	}
	for _, c := range []struct {
		frame string
		lazy  bool
		mem   Members
	}{
		{`{"a":"\u003c\ud83d\ude00\ud83d\"\\\/\b\f\n\r\t","b":"é"}`, true, 0},
		{`{"a":["x","y","\u00e9"],"b":[]}`, true, HasArrays},
		{`{"a":[1,2],"b":["k",1]}`, true, HasArrays | HasPairs},
		{"{\"a\":\"\xff\"}", false, 0},
		{`{"a":[[1]]}`, false, 0},
		{`{"a":[1 ]}`, false, 0},
		{`{"a\u0041":1}`, false, 0},
	} {
		tr, err := Parse([]byte(`{"frames":[` + c.frame + `]}`))
		if err != nil {
			t.Errorf("%s: %v", c.frame, err)
			continue
		}
		_, mem, ok := tr.Root().Get("frames").Index(0).LazyKeys()
		if ok != c.lazy || mem != c.mem {
			t.Errorf("%s: lazy %v members %b, want %v %b", c.frame, ok, mem, c.lazy, c.mem)
		}
		tr.Release()
	}
}
