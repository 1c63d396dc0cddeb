package normalize

import "testing"

// TestRequest has the cases of Relay's normalize/request.rs tests.
func TestRequest(t *testing.T) {
	n := testNormalizer(t)
	for _, tc := range []struct {
		name, req string
		want      map[string]string // path under request → JSON ("null": absent)
	}{
		{"url truncation", `{"url":"http://example.com/path?foo#bar"}`, map[string]string{"url": `"http://example.com/path"`, "query_string": `[["foo",""]]`, "fragment": `"bar"`}},
		{"url truncation reversed", `{"url":"http://example.com/path#foo?bar"}`, map[string]string{"url": `"http://example.com/path"`, "query_string": "null", "fragment": `"foo?bar"`}},
		{"ellipsis", `{"url":"http://example.com/path…"}`, map[string]string{"url": `"http://example.com/path..."`}},
		{"query and fragment", `{"url":"http://example.com/path?some=thing#else"}`, map[string]string{"query_string": `[["some","thing"]]`, "fragment": `"else"`}},
		{"only path", `{"url":"metamask/popup.html#"}`, map[string]string{"url": `"metamask/popup.html"`, "fragment": "null"}},
		{"relative with query", `{"url":"/a/b?x=1&y=%20z+w"}`, map[string]string{"url": `"/a/b"`, "query_string": `[["x","1"],["y"," z w"]]`}},
		{"precedence", `{"url":"http://example.com/path?completely=different#stuff","query_string":[["some","thing"]],"fragment":"else"}`, map[string]string{
			"url": `"http://example.com/path"`, "query_string": `[["some","thing"]]`, "fragment": `"else"`}},
		{"empty value", `{"url":"http://example.com/path?some"}`, map[string]string{"query_string": `[["some",""]]`}},
		{"scheme and host lower-cased", `{"url":"HTTP://Example.COM"}`, map[string]string{"url": `"http://example.com/"`}},
		{"query string as string", `{"query_string":"?a=b&c=d%26e"}`, map[string]string{"query_string": `[["a","b"],["c","d&e"]]`}},
		{"query string as object", `{"query_string":{"b":"2","a":1}}`, map[string]string{"query_string": `[["a","1"],["b","2"]]`}},
		{"cookies in header", `{"url":"http://example.com","headers":{"Cookie":"a=b;c=d","Accept":"*/*"}}`, map[string]string{
			"cookies": `[["a","b"],["c","d"]]`, "headers": `[["Accept","*/*"]]`}},
		{"cookies not overridden", `{"headers":[["Cookie","a=b;c=d"]],"cookies":[["foo","bar"]]}`, map[string]string{"cookies": `[["foo","bar"]]`, "headers": `[]`}},
		{"cookies as string", `{"cookies":"x=1; y=2"}`, map[string]string{"cookies": `[["x","1"],["y","2"]]`}},
		{"bad cookie header kept", `{"headers":[["Cookie","novalue"]]}`, map[string]string{"cookies": "null", "headers": `[["Cookie","novalue"]]`}},
		{"method invalid", `{"method":"!!!!"}`, map[string]string{"method": "null"}},
		{"method valid", `{"method":"POST"}`, map[string]string{"method": `"POST"`}},
		{"method upper-cased", `{"method":"get"}`, map[string]string{"method": `"GET"`}},
		{"infer json", `{"data":"{\"foo\":\"bar\"}"}`, map[string]string{"data": `{"foo":"bar"}`, "inferred_content_type": `"application/json"`}},
		{"broken json with fallback", `{"data":"{\"foo\":\"b","headers":{"Content-Type":"text/plain; encoding=utf-8"}}`, map[string]string{
			"data": `"{\"foo\":\"b"`, "inferred_content_type": `"text/plain"`}},
		{"broken json without fallback", `{"data":"{\"foo\":\"b"}`, map[string]string{"inferred_content_type": "null"}},
		{"infer form", `{"data":"foo=bar&a=1"}`, map[string]string{"data": `{"a":"1","foo":"bar"}`, "inferred_content_type": `"application/x-www-form-urlencoded"`}},
		{"base64 not a form", `{"data":"dGU="}`, map[string]string{"data": `"dGU="`, "inferred_content_type": "null"}},
		{"xml not a form", `{"data":"<?xml a=b&c=d"}`, map[string]string{"inferred_content_type": "null"}},
		{"object body keeps header type", `{"data":{"a":1},"headers":{"content-type":"application/json; charset=utf-8"}}`, map[string]string{"inferred_content_type": `"application/json"`}},
		{"env invalid", `{"env":"x"}`, map[string]string{"env": "null"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := Input{Received: recv}
			out, err := n.Event(nil, []byte(`{"request":`+tc.req+`}`), &in)
			if err != nil {
				t.Fatal(err)
			}
			ev := decode(t, out)
			for path, want := range tc.want {
				if got := js(get(ev, "request."+path)); got != want {
					t.Errorf("%s = %s, want %s\n%s", path, got, want, out)
				}
			}
			again, err := n.Event(nil, out, &in)
			if err != nil || string(again) != string(out) {
				t.Errorf("second pass differs (%v):\n%s\n%s", err, out, again)
			}
		})
	}
}
