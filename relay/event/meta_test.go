package event

import (
	"crypto/sha256"
	"fmt"
	"strconv"
	"strings"
	"testing"
)

// metaScenario records Meta on n values of a parsed event both ways
// (MetaOf on nodes, MetaAt on paths of removed values), with a client
// _meta that already holds some of the keys, a repeated key (the first one
// is merged into), a non-object to be replaced, and keys that an
// ambiguous path encoding would confuse.
func metaScenario(t testing.TB, n int) string {
	var b strings.Builder
	b.WriteString(`{"extra":{`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"p%d":"x"`, i)
	}
	b.WriteString(`},"list":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `%d`, i)
	}
	b.WriteString(`],"_meta":{"extra":{"p1":{"":{"len":9}},"p1":{"":{"len":8}},"p2":7`)
	for i := 0; i < n; i += 3 {
		fmt.Fprintf(&b, `,"q%d":{}`, i)
	}
	b.WriteString(`},"gone":{"3":{"":{"err":["old"]}},"3":{"":{"err":["dup"]}}}}}`)
	tr, err := Parse([]byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Release()
	extra, list := tr.Root().Get("extra"), tr.Root().Get("list")
	for i := range n {
		m := tr.MetaOf(extra.Index(i))
		m.Remarks = append(m.Remarks, Remark{Rule: "@password", Type: 's', Start: 0, End: 8})
		if i%2 == 0 {
			tr.MetaOf(list.Index(i)).Len = i + 1
		}
	}
	for i := range n {
		k := strconv.Itoa(i)
		m := tr.MetaAt("gone", k)
		m.Errors = append(m.Errors, MetaError{Kind: "invalid_data"})
		if i%5 == 0 { // a repeated path is the same record
			tr.MetaAt("gone", k).Errors = append(tr.MetaAt("gone", k).Errors, MetaError{Kind: "again"})
		}
	}
	tr.MetaAt("a\x00b").Len = 1
	tr.MetaAt("a", "b").Len = 2
	tr.MetaAt("a", "", "b").Len = 3
	tr.MetaAt("", "").Len = 4
	tr.MetaAt("a\x00", "b").Len = 5
	tr.MetaAt("a\x00b").Errors = []MetaError{{Kind: "x"}}
	return string(tr.AppendJSON(nil))
}

func TestMetaGolden(t *testing.T) {
	for _, tc := range []struct {
		n    int
		want string
	}{
		{1, `{"extra":{"p0":"x"},"list":[0],"_meta":{"extra":{"p1":{"":{"len":9}},"p1":{"":{"len":8}},"p2":7,"q0":{},"p0":{"":{"rem":[["@password","s",0,8]]}}},"gone":{"3":{"":{"err":["old"]}},"3":{"":{"err":["dup"]}},"0":{"":{"err":["invalid_data","again"]}}},"a\u0000b":{"":{"err":["x"],"len":1}},"a":{"b":{"":{"len":2}},"":{"b":{"":{"len":3}}}},"":{"":{"":{"len":4}}},"a\u0000":{"b":{"":{"len":5}}},"list":{"0":{"":{"len":1}}}}}`},
		{4, `{"extra":{"p0":"x","p1":"x","p2":"x","p3":"x"},"list":[0,1,2,3],"_meta":{"extra":{"p1":{"":{"len":9,"rem":[["@password","s",0,8]]}},"p1":{"":{"len":8}},"p2":{"":{"rem":[["@password","s",0,8]]}},"q0":{},"q3":{},"p0":{"":{"rem":[["@password","s",0,8]]}},"p3":{"":{"rem":[["@password","s",0,8]]}}},"gone":{"3":{"":{"err":["old","invalid_data"]}},"3":{"":{"err":["dup"]}},"0":{"":{"err":["invalid_data","again"]}},"1":{"":{"err":["invalid_data"]}},"2":{"":{"err":["invalid_data"]}}},"a\u0000b":{"":{"err":["x"],"len":1}},"a":{"b":{"":{"len":2}},"":{"b":{"":{"len":3}}}},"":{"":{"":{"len":4}}},"a\u0000":{"b":{"":{"len":5}}},"list":{"0":{"":{"len":1}},"2":{"":{"len":3}}}}}`},
	} {
		if got := metaScenario(t, tc.n); got != tc.want {
			t.Errorf("n=%d:\ngot  %s\nwant %s", tc.n, got, tc.want)
		}
	}
}

// BenchmarkMetaAtMany is MetaAt for n removed values, as normalize records
// one per bad list element; ns/op grows linearly with n.
func BenchmarkMetaAtMany(b *testing.B) {
	for _, n := range []int{5000, 20000} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			keys := make([]string, n)
			for i := range keys {
				keys[i] = strconv.Itoa(i)
			}
			for b.Loop() {
				tr := New()
				for _, k := range keys {
					tr.MetaAt("breadcrumbs", "values", k, "timestamp").Len = 1
				}
				tr.Release()
			}
		})
	}
}

// BenchmarkWriteManyMeta is AppendJSON of n sibling values with Meta, under
// a client _meta that already holds n other keys there; ns/op grows
// linearly with n.
func BenchmarkWriteManyMeta(b *testing.B) {
	for _, n := range []int{5000, 20000} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			var s strings.Builder
			s.WriteString(`{"extra":{`)
			for i := range n {
				if i > 0 {
					s.WriteByte(',')
				}
				fmt.Fprintf(&s, `"password%d":"x"`, i)
			}
			s.WriteString(`},"_meta":{"extra":{`)
			for i := range n {
				if i > 0 {
					s.WriteByte(',')
				}
				fmt.Fprintf(&s, `"k%d":{}`, i)
			}
			s.WriteString(`}}}`)
			src := []byte(s.String())
			var dst []byte
			for b.Loop() {
				tr, err := Parse(src)
				if err != nil {
					b.Fatal(err)
				}
				extra := tr.Root().Get("extra")
				for i := range n {
					tr.MetaOf(extra.Index(i)).Remarks = []Remark{{Rule: "@password", Type: 's', Start: 0, End: 8}}
				}
				dst = tr.AppendJSON(dst[:0])
				tr.Release()
			}
		})
	}
}

// TestMetaIndexed: the indexed lookups (MetaAt past indexFrom paths,
// _meta children past indexFrom keys) write the same JSON as scans alone,
// around the threshold and far past it; for n=3000 that is also the output
// of the code before the indexes, by its SHA-256.
func TestMetaIndexed(t *testing.T) {
	defer func(v int) { indexFrom = v }(indexFrom)
	for _, n := range []int{7, 15, 16, 17, 40, 3000} {
		indexFrom = 1 << 30
		scan := metaScenario(t, n)
		for _, from := range []int{0, 1, 16} {
			indexFrom = from
			if got := metaScenario(t, n); got != scan {
				t.Fatalf("n=%d indexFrom=%d:\ngot  %s\nwant %s", n, from, got, scan)
			}
		}
		if n == 3000 {
			const old = "f70a544ebf1d2c437911c193ba04df06e4ec28f1834717a5d4850c3d95c0285c"
			if h := fmt.Sprintf("%x", sha256.Sum256([]byte(scan))); h != old {
				t.Errorf("n=3000: sha256 %s, the old code wrote %s", h, old)
			}
		}
	}
}

// TestMetaIndexReset: a pooled tree's indexes do not outlive AppendJSON or
// Release; the next records start afresh.
func TestMetaIndexReset(t *testing.T) {
	tr := New()
	for i := range 40 {
		tr.MetaAt("x", strconv.Itoa(i)).Len = 1
	}
	tr.AppendJSON(nil)
	tr.MetaAt("x", "3").Errors = []MetaError{{Kind: "new"}}
	if got := string(tr.AppendJSON(nil)); !strings.Contains(got, `"3":{"":{"len":1,"err":["new"]}}`) {
		t.Errorf("a record after AppendJSON is lost:\n%s", got)
	}
	for i := range 40 {
		tr.MetaAt("x", strconv.Itoa(i)).Errors = []MetaError{{Kind: "again"}}
	}
	if got := string(tr.AppendJSON(nil)); !strings.Contains(got, `"20":{"":{"len":1,"err":["again"]}}`) {
		t.Errorf("records after AppendJSON are lost:\n%s", got)
	}
	for i := range 40 {
		tr.MetaAt("x", strconv.Itoa(i)).Len = 1
	}
	tr.Release()
	tr = New()
	defer tr.Release()
	for i := range 20 {
		tr.MetaAt("y", strconv.Itoa(i))
	}
	if m := tr.MetaAt("x", "3"); m.Len != 0 {
		t.Errorf("a released tree's record came back: %+v", m)
	}
}
