package event

import (
	"errors"
	"testing"
)

func TestParseValue(t *testing.T) {
	tr, err := Parse([]byte(`{"data":"{\"a\": [1, \"x\"]}"}`))
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Release()
	d := tr.Root().Get("data")
	v, err := tr.ParseValue(d.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	tr.Set(tr.Root(), "data", v)
	if got := string(tr.AppendJSON(nil)); got != `{"data":{"a":[1,"x"]}}` {
		t.Errorf("got %s", got)
	}
	if _, err := tr.ParseValue([]byte(`{"a":`)); !errors.Is(err, ErrSyntax) {
		t.Errorf("err %v, want ErrSyntax", err)
	}
}
