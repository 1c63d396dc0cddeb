package pii

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

func vhOf(t *testing.T, config string) *ViewHierarchy {
	t.Helper()
	v, err := CompileViewHierarchy([]byte(config))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// The cases of Relay's relay-pii json.rs tests and of its integration
// tests (test_attachments.py) with the view-hierarchy-scrubbing feature.
func TestScrubViewHierarchyRelayCases(t *testing.T) {
	for _, c := range []struct {
		name, config, in, want string
	}{
		{"string ip", `{"applications":{"$string":["@ip"]}}`,
			`{"rendering_system":"UIKIT","identifier":"192.45.128.54","windows":[{"type":"UIWindow","identifier":"123.123.123.123","width":414,"height":896,"x":0,"y":0,"alpha":1,"visible":true,"children":[]}]}`,
			`{"rendering_system":"UIKIT","identifier":"[ip]","windows":[{"type":"UIWindow","identifier":"[ip]","width":414,"height":896,"x":0,"y":0,"alpha":1,"visible":true,"children":[]}]}`},
		{"nested path", `{"applications":{"nested.stuff.ident":["@ip"]}}`,
			`{"nested":{"stuff":{"ident":"10.0.0.1"}}}`,
			`{"nested":{"stuff":{"ident":"[ip]"}}}`},
		{"not existing path", `{"applications":{"non.existent.path":["@ip"]}}`,
			`{"nested":{"stuff":{"ident":"10.0.0.1"}}}`,
			`{"nested":{"stuff":{"ident":"10.0.0.1"}}}`},
		{"remove password", `{"applications":{"$string":["@password:remove"]}}`,
			`{"rendering_system":"UIKIT","password":"hunter42"}`,
			`{"rendering_system":"UIKIT","password":""}`},
		// test_view_hierarchy_scrubbing: the `$attachments` application
		// selects nothing inside, `$string` masks.
		{"mask, attachments selector inert", `{"rules":{"0":{"type":"ip","redaction":{"method":"mask"}}},"applications":{"$attachments.'view-hierarchy.json'":["0"],"$string":["0"]}}`,
			`{"rendering_system":"UIKIT","identifier":"129.16.41.92"}`,
			`{"rendering_system":"UIKIT","identifier":"************"}`},
		{"attachments selector alone", `{"rules":{"0":{"type":"ip","redaction":{"method":"mask"}}},"applications":{"$attachments.'view-hierarchy.json'":["0"]}}`,
			`{"identifier":"129.16.41.92"}`,
			`{"identifier":"129.16.41.92"}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, changed := vhOf(t, c.config).Scrub(nil, []byte(c.in))
			if !changed {
				out = []byte(c.in)
			}
			if string(out) != c.want {
				t.Errorf("got  %s\nwant %s", out, c.want)
			}
			if changed != (c.in != c.want) {
				t.Errorf("changed = %v", changed)
			}
		})
	}
}

// Paths: array elements enter nothing, keys are case-insensitive, keys
// with escapes enter their decoded form, strings at the root are left.
func TestScrubViewHierarchyPaths(t *testing.T) {
	config := `{"rules":{"r":{"type":"pattern","pattern":"secret","redaction":{"method":"replace","text":"X"}}},
		"applications":{"windows.identifier":["r"],"list":["r"],"'k\"ey'":["r"],"$string && !skip":["r"]}}`
	v := vhOf(t, config)
	for _, c := range []struct{ in, want string }{
		{`{"windows":[{"identifier":"a secret"},{"children":[{"identifier":"secret"}]}]}`,
			`{"windows":[{"identifier":"a X"},{"children":[{"identifier":"X"}]}]}`},
		{`{"WINDOWS":[{"Identifier":"secret"}]}`, `{"WINDOWS":[{"Identifier":"X"}]}`},
		{`{"list":["secret",["secret",1,null,true]]}`, `{"list":["X",["X",1,null,true]]}`},
		{`{"k\"ey":"secret"}`, `{"k\"ey":"X"}`},
		{`{"skip":"secret","other":"secret"}`, `{"skip":"secret","other":"X"}`},
		{`["secret"]`, `["secret"]`},
		{`"secret"`, `"secret"`},
	} {
		out, changed := v.Scrub(nil, []byte(c.in))
		if !changed {
			out = []byte(c.in)
		}
		if string(out) != c.want {
			t.Errorf("%s:\ngot  %s\nwant %s", c.in, out, c.want)
		}
	}
}

// Nothing matched: nothing appended, the caller keeps the bytes it was
// sent, whitespace and number forms included. Something matched: only
// that string is rewritten, escaped as serde_json escapes.
func TestScrubViewHierarchyBytes(t *testing.T) {
	v := vhOf(t, `{"applications":{"$string":["@ip:replace"]}}`)
	pretty := "{\n  \"x\": 1.50E+2,\n  \"name\": \"caf\\u00e9\",\n  \"ok\": [true, false, null]\n}\n"
	if out, changed := v.Scrub([]byte("keep"), []byte(pretty)); changed || string(out) != "keep" {
		t.Fatalf("untouched: changed %v, out %q", changed, out)
	}
	in := "{\n  \"x\": 1.50E+2,\n  \"ip\": \"at 10.1.2.3\\ttab \\\"q\\\" \\u0001 é\"\n}"
	out, changed := v.Scrub([]byte("pre:"), []byte(in))
	want := "pre:{\n  \"x\": 1.50E+2,\n  \"ip\": \"at [ip]\\ttab \\\"q\\\" \\u0001 é\"\n}"
	if !changed || string(out) != want {
		t.Fatalf("got  %q\nwant %q", out, want)
	}
	if !json.Valid(out[4:]) {
		t.Fatal("invalid JSON out")
	}
}

// Documents Relay cannot transcode are left as they are.
func TestScrubViewHierarchyInvalid(t *testing.T) {
	v := vhOf(t, `{"applications":{"$string":["@ip"]}}`)
	deep := strings.Repeat("[", 127) + `{"a":"10.0.0.1"}` + strings.Repeat("]", 127)
	tooDeep := strings.Repeat("[", 127) + `[{"a":"10.0.0.1"}]` + strings.Repeat("]", 127)
	for _, in := range []string{
		`{"a":"10.0.0.1"`, `{"a":"10.0.0.1",}`, `{"a":"10.0.0.1\x01"}`, "{\"a\":\"10.0.0.1\xff\"}",
		`{"a":"10.0.0.1 \ud800"}`, `{"a":"10.0.0.1 \udc00\ud800"}`, `{"a":01}`, `{"a":1.}`, `{"a":tru}`,
		`["10.0.0.1" "x"]`, `["10.0.0.1",]`, `["10.0.0.1"`, `["10.0.0.1"}`, `{"a":"10.0.0.1"]`, `{"a":"10.0.0.1" "b":1}`, `[`, `{`,
		tooDeep, "",
	} {
		if out, changed := v.Scrub(nil, []byte(in)); changed || out != nil {
			t.Errorf("%.40q: changed %v", in, changed)
		}
	}
	// 128 containers fail in serde_json; 128 with the object do not here:
	// 127 arrays and the object are 128. Check the limit sits where it does.
	if _, changed := v.Scrub(nil, []byte(deep)); changed {
		t.Errorf("128 levels scrubbed; serde_json fails at 128")
	}
	ok := strings.Repeat("[", 126) + `{"a":"10.0.0.1"}` + strings.Repeat("]", 126)
	if _, changed := v.Scrub(nil, []byte(ok)); !changed {
		t.Errorf("127 levels not scrubbed")
	}
	// Empty containers and whitespace around separators are JSON.
	if out, changed := v.Scrub(nil, []byte(`{ "e" : { } , "f":[ ] ,"a" : [ "10.0.0.1" , [] ] }`)); !changed ||
		string(out) != `{ "e" : { } , "f":[ ] ,"a" : [ "[ip]" , [] ] }` {
		t.Errorf("spaced: %q", out)
	}
	// A surrogate pair decodes; trailing bytes after the document are kept.
	out, changed := v.Scrub(nil, []byte(`{"a":"\ud83d\ude00 10.0.0.1"} `))
	if !changed || string(out) != `{"a":"😀 [ip]"} ` {
		t.Errorf("pair: %q", out)
	}
}

// Key rules take the last key; a removed string becomes "", hash and
// replace write their text; numbers and keys are never scrubbed.
func TestScrubViewHierarchyRules(t *testing.T) {
	v := vhOf(t, `{"rules":{"k":{"type":"redact_pair","keyPattern":"token","redaction":{"method":"hash"}}},
		"applications":{"$string":["k","@email:replace"],"**":["@anything:remove"]}}`)
	in := `{"token":"abc","n":{"token":5,"mail":"me@example.com"},"10.0.0.1":7}`
	out, changed := v.Scrub(nil, []byte(in))
	var got map[string]any
	if err := json.Unmarshal(out, &got); !changed || err != nil {
		t.Fatalf("changed %v, %v: %s", changed, err, out)
	}
	if tok := got["token"].(string); len(tok) != 40 || strings.ToUpper(tok) != tok {
		t.Errorf("token not hashed: %q", tok)
	}
	n := got["n"].(map[string]any)
	// `**` selects the nested string (two states), which `@anything:remove`
	// removes after the `$string` rules: "".
	if n["token"] != 5.0 || n["mail"] != "" {
		t.Errorf("nested: %v", n)
	}
	if got["10.0.0.1"] != 7.0 {
		t.Errorf("key or number changed: %v", got)
	}
}

func TestCompileViewHierarchy(t *testing.T) {
	for _, c := range []string{"", "null", " ", `{}`, `{"rules":{}}`} {
		if v, err := CompileViewHierarchy([]byte(c)); v != nil || err != nil {
			t.Errorf("%q: %v %v", c, v, err)
		}
	}
	// An unknown rule id is skipped, as Relay skips it: the document is
	// left as it is.
	if v, err := CompileViewHierarchy([]byte(`{"applications":{"$string":["nope"]}}`)); err != nil {
		t.Errorf("unknown rule: %v", err)
	} else if out, changed := v.Scrub(nil, []byte(`{"a":"b"}`)); changed || len(out) != 0 {
		t.Errorf("unknown rule scrubbed: %q %v", out, changed)
	}
	if _, err := CompileViewHierarchy([]byte(`{"applications":{"(((":["@ip"]}}`)); err == nil {
		t.Error("bad selector compiled")
	}
	var nilVH *ViewHierarchy
	if out, changed := nilVH.Scrub([]byte("x"), []byte(`{"a":"b"}`)); changed || string(out) != "x" {
		t.Error("nil scrubbed")
	}
}

// BenchmarkScrubViewHierarchy: a view hierarchy of 1000 windows (about
// 130 KB) under `$string` rules, one IP in every tenth window.
func BenchmarkScrubViewHierarchy(b *testing.B) {
	var sb strings.Builder
	sb.WriteString(`{"rendering_system":"android_view_system","windows":[`)
	for i := range 1000 {
		if i > 0 {
			sb.WriteByte(',')
		}
		id := fmt.Sprintf("com.example:id/button_%d", i)
		if i%10 == 0 {
			id = "10.0.0.1"
		}
		fmt.Fprintf(&sb, `{"type":"android.widget.Button","identifier":%q,"width":100.0,"height":48.0,"x":0,"y":%d,"alpha":1,"visible":true,"children":[]}`, id, i*48)
	}
	sb.WriteString(`]}`)
	src := []byte(sb.String())
	v, _ := CompileViewHierarchy([]byte(`{"applications":{"$string":["@ip","@email","@creditcard"]}}`))
	var dst []byte
	b.SetBytes(int64(len(src)))
	b.ReportAllocs()
	for b.Loop() {
		dst, _ = v.Scrub(dst[:0], src)
	}
}

// A Config compiled with datascrubbingSettings too gives view hierarchies
// its piiConfig pass only; one with the settings alone gives none.
func TestConfigViewHierarchy(t *testing.T) {
	settings := DataScrubbingSettings{ScrubData: true, ScrubDefaults: true, ScrubIPAddresses: true}
	c, err := Compile(settings, []byte(`{"applications":{"$string":["@email:replace"]}}`))
	if err != nil {
		t.Fatal(err)
	}
	out, changed := c.ViewHierarchy().Scrub(nil, []byte(`{"a":"me@example.com","password":"x","ip":"10.0.0.1"}`))
	if want := `{"a":"[email]","password":"x","ip":"10.0.0.1"}`; !changed || string(out) != want {
		t.Errorf("got %s, want %s (the piiConfig's rule, not the settings')", out, want)
	}
	legacy, err := Compile(settings, nil)
	if err != nil || legacy == nil {
		t.Fatal(legacy, err)
	}
	if legacy.ViewHierarchy() != nil {
		t.Error("datascrubbingSettings applied to view hierarchies")
	}
}
