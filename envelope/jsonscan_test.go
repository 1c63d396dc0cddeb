package envelope

import (
	"encoding/json"
	"testing"
)

func TestValidJSON(t *testing.T) {
	valid := []string{
		`{}`, ` [ ] `, `"x"`, `0`, `-0.5e+10`, `1E2`, `true`, `false`, `null`,
		`{"a":[1,{"b":null}],"c":"\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00"}`, "\"é€😀\"",
	}
	for _, s := range valid {
		if err := validJSON([]byte(s)); err != nil || !json.Valid([]byte(s)) {
			t.Errorf("validJSON(%q) = %v", s, err)
		}
	}
	invalid := []string{
		``, ` `, `{`, `{"a"}`, `{"a":1,}`, `[1,]`, `01`, `1.`, `.5`, `-`, `1e`, `+1`, `tru`, `nul`,
		`"abc`, `"\x"`, `"\u12g4"`, "\"a\x00\"", "\"\xff\"", "\"\xc3\"", `{} {}`, `{1:2}`, `[1 2]`, `NaN`,
	}
	for _, s := range invalid {
		if err := validJSON([]byte(s)); err == nil {
			t.Errorf("validJSON(%q) accepted", s)
		}
	}
}

func TestUnescapeJSON(t *testing.T) {
	f := func(in, want string) {
		t.Helper()
		if got := string(unescapeJSON(nil, []byte(in))); got != want {
			t.Errorf("unescape(%q) = %q, want %q", in, got, want)
		}
		// Agrees with encoding/json.
		var std string
		if err := json.Unmarshal([]byte(`"`+in+`"`), &std); err != nil || std != want {
			t.Errorf("encoding/json gives %q, %v", std, err)
		}
	}
	f(`plain`, "plain")
	f(`\"\\\/\b\f\n\r\t`, "\"\\/\b\f\n\r\t")
	f(`\u00e9\u20AC`, "é€")
	f(`\ud83d\ude00x`, "😀x")
	f(`\ud83dx`, "\uFFFDx")
	f(`\ude00`, "\uFFFD")
	f(`\ud83d\u0041`, "\uFFFDA")
}

func TestAppendJSONString(t *testing.T) {
	for _, s := range []string{"", "plain", `q"b\s`, "ctl\x00\x01\x1f\n\r\t", "<html>&", "é😀", "bad\xffutf8"} {
		out := appendJSONString(nil, s)
		var back string
		if err := json.Unmarshal(out, &back); err != nil {
			t.Fatalf("appendJSONString(%q) = %s: %v", s, out, err)
		}
		want := s
		if s == "bad\xffutf8" {
			want = "bad\uFFFDutf8"
		}
		if back != want {
			t.Errorf("round trip of %q gave %q", s, back)
		}
	}
	if got := string(appendJSONString(nil, "<&>")); got != `"<&>"` {
		t.Errorf("HTML escaped: %s", got)
	}
}

func TestValidTimestamp(t *testing.T) {
	for _, s := range []string{
		"2026-11-24T18:18:21Z", "2026-11-24T18:18:21.422Z", "2026-11-24T18:18:21.422123456789Z",
		"2026-11-24t18:18:21z", "2026-11-24 18:18:21+02:00", "2026-11-24T18:18:21-0530", "2016-12-31T23:59:60Z",
	} {
		if !validTimestamp([]byte(s)) {
			t.Errorf("%q rejected", s)
		}
	}
	for _, s := range []string{
		"", "2026-11-24", "2026-11-24T18:18:21", "2026-13-24T18:18:21Z", "2026-11-32T18:18:21Z",
		"2026-11-24T24:18:21Z", "2026-11-24T18:60:21Z", "2026-11-24T18:18:21.Z", "2026-11-24X18:18:21Z",
		"2026-11-24T18:18:21+2:00", "2026-11-24T18:18:21+02:60", "1764008301", "2026-11-24T18:18:21ZZ",
	} {
		if validTimestamp([]byte(s)) {
			t.Errorf("%q accepted", s)
		}
	}
}

func TestItemCategoryQuantity(t *testing.T) {
	e, err := Parse([]byte("{}\n" +
		"{\"type\":\"attachment\",\"length\":0}\n\n" +
		"{\"type\":\"attachment\",\"length\":5}\nhello\n" +
		"{\"type\":\"log\",\"item_count\":4}\n{}\n" +
		"{\"type\":\"profile_chunk_ui\"}\n{}\n" +
		"{\"type\":\"client_report\"}\n{}\n" +
		"{\"type\":\"event\",\"item_count\":3}\n{}\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		cat Category
		qty int
	}{
		{CategoryAttachment, 1}, {CategoryAttachment, 5}, {CategoryLogItem, 4},
		{CategoryProfileChunkUI, 1}, {CategoryUnknown, 1}, {CategoryError, 1},
	}
	for i, w := range want {
		it := &e.Items[i]
		if it.Category() != w.cat || it.Quantity() != w.qty {
			t.Errorf("item %d (%s): category %v quantity %d, want %v %d", i, it.TypeName, it.Category(), it.Quantity(), w.cat, w.qty)
		}
	}
}
