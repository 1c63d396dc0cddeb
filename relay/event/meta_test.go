package event

import (
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
