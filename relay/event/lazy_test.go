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
		if ks, ok := b.ScalarKeys(); ok {
			var want, got [][]byte
			for i := range a.Len() {
				want = append(want, a.Key(i))
			}
			got = append(got, ks...)
			if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", want) {
				t.Fatalf("%.200q: lazy keys %q, eager %q", src, got, want)
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
	}
	for _, b := range testutil.Fixtures(t, "../normalize/testdata/events/*", "../normalize/testdata/sdk/*",
		"../../envelope/testdata/sdk-envelopes/*", "../../envelope/testdata/relay/events/*", "../grouping/testdata/*") {
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
	for _, src := range in[:2] {
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
		`[{"b":2}]`, `01`, `1.`, `tru`, `"x`, ` 1`, `"a\tb"`}
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
