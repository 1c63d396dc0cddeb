package pii

import (
	"errors"
	"strings"
	"testing"
)

// selectorEvent has one value of each kind a selector can aim at.
const selectorEvent = `{"extra":{"a":{"b":"x1"},"c":"x2","n":7,"list":["x3"],"odd.key":"x4"},` +
	`"user":{"ip_address":"x5","email":"x6"},` +
	`"request":{"headers":[["Authorization","x7"],["User-Agent","x8"]],"data":{"k":"x9"}},` +
	`"exception":{"values":[{"value":"x10","stacktrace":{"frames":[{"filename":"x11","vars":{"v":"x12"}}]}}]},` +
	`"tags":{"t":"x13"},"release":"x14"}`

// TestSelectors applies @anything:replace through each selector form and
// lists which values it replaced.
func TestSelectors(t *testing.T) {
	for _, c := range []struct{ sel, want string }{
		{"$string", "x1 x2 x3 x4 x5 x6 x7 x8 x9 x10 x12"},             // not maybe fields (filename, tags), not pii false (release)
		{"$object", "x1 x2 x3 x4 x7 x8 x9 x12"},                       // @anything removes a container whole; structs (user) are not $object, pair lists are
		{"extra.a.b", "x1"},                                           // path
		{"extra.C", "x2"},                                             // keys are case-insensitive
		{"extra.*", "x1 x2 x3 x4"},                                    // one level: containers below are removed whole
		{"extra.**", "x1 x2 x3 x4"},                                   // any depth
		{"extra.list.0", "x3"},                                        // index
		{"extra.'odd.key'", "x4"},                                     // quoted key
		{"$user.ip_address", "x5"},                                    // value type then key
		{"$user.*", "x5 x6"},                                          //
		{"$http.headers.authorization", "x7"},                         // pair lists are addressed by key
		{"$http.headers.*", "x7 x8"},                                  //
		{"$error.value", "x10"},                                       //
		{"$frame.filename", "x11"},                                    // maybe field, specific selector
		{"$frame.vars.v", "x12"},                                      //
		{"$frame.**", "x12"},                                          // ** does not reach a maybe field
		{"tags.t", "x13"},                                             // maybe field by key path
		{"release", ""},                                               // pii false: never
		{"$string && !extra.**", "x5 x6 x7 x8 x9 x10 x12"},            // && and !
		{"extra.c || user.email", "x2 x6"},                            // ||
		{"(extra.c | user.email) & !user.email", "x2"},                // single-character operators, parentheses
		{"$string && !($http.** || $user.**)", "x1 x2 x3 x4 x10 x12"}, // grouped negation
		{"freeform", "x1 x2 x3 x4 x5 x6 x7 x8 x9 x10 x12"},            // legacy alias of $string
		{"**.v", "x12"},                                               // deep wildcard first
		{"exception.values.0.stacktrace.frames.0.vars.v", "x12"},      // full path
	} {
		t.Run(c.sel, func(t *testing.T) {
			cfg := `{"rules":{"r":{"type":"anything","redaction":{"method":"replace","text":"R"}}},"applications":{` + quote(c.sel) + `:["r"]}}`
			got := scrub(t, DataScrubbingSettings{}, cfg, selectorEvent)
			var replaced []string
			for i := 1; i <= 14; i++ {
				x := "x" + itoa(i)
				if !strings.Contains(got, `"`+x+`"`) {
					replaced = append(replaced, x)
				}
			}
			if s := strings.Join(replaced, " "); s != c.want {
				t.Errorf("replaced %q, want %q\n%s", s, c.want, got)
			}
		})
	}
}

func TestSelectorRemovesContainers(t *testing.T) {
	got := scrub(t, DataScrubbingSettings{}, `{"applications":{"$array":["@anything:remove"]}}`, `{"extra":{"list":["a"],"s":"b"}}`)
	expectJSON(t, got, `{"extra":{"list":null,"s":"b"},"_meta":{"extra":{"list":{"":{"rem":[["@anything:remove","x"]]}}}}}`)
}

func TestSelectorErrors(t *testing.T) {
	for _, s := range []string{"", "*", "a.**.b.**", "$nope", "a..b", "(a", "a b", "'unterminated"} {
		if _, err := Compile(DataScrubbingSettings{}, []byte(`{"applications":{`+quote(s)+`:["@ip"]}}`)); !errors.Is(err, ErrInvalidConfig) || !errors.Is(err, ErrInvalidSelector) {
			t.Errorf("selector %q: err %v, want ErrInvalidSelector", s, err)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	for _, cfg := range []string{
		`{"rules":{"r":{"type":"pattern","pattern":"("}},"applications":{"$string":["r"]}}`,
		`{"rules":{"r":{"type":"redact_pair","keyPattern":"[a"}}}`,
		`{"rules":{"r":{"type":"pattern","pattern":"a","replaceGroups":[3]}}}`,
		`{"applications":5}`,
		`[`,
	} {
		if _, err := Compile(DataScrubbingSettings{}, []byte(cfg)); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: err %v, want ErrInvalidConfig", cfg, err)
		}
	}
	c, err := Compile(DataScrubbingSettings{}, []byte(`null`))
	if err != nil || c != nil {
		t.Errorf("null config: %v, %v; want nil, nil", c, err)
	}
	out, err := c.ScrubEvent(nil, []byte(`{"a":1}`))
	if err != nil || string(out) != `{"a":1}` {
		t.Errorf("nil Config: %s, %v", out, err)
	}
	c, _ = Compile(DataScrubbingSettings{ScrubData: true, ScrubDefaults: true}, nil)
	for _, bad := range []string{`[1]`, `{"a":`, `"x"`, `{} {}`} {
		if _, err := c.ScrubEvent(nil, []byte(bad)); !errors.Is(err, ErrInvalidJSON) {
			t.Errorf("%s: err %v, want ErrInvalidJSON", bad, err)
		}
	}
}

func quote(s string) string {
	return `"` + strings.ReplaceAll(strings.ReplaceAll(s, `\`, `\\`), `"`, `\"`) + `"`
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return string(rune('0'+i/10)) + string(rune('0'+i%10))
}

func TestEqualFoldLower(t *testing.T) {
	for _, c := range []struct {
		b, lower string
		want     bool
	}{
		{"Password", "password", true}, {"PASSWORD", "password", true}, {"password", "password", true},
		{"passwor", "password", false}, {"passwords", "password", false}, {"Passwort", "password", false},
		{"", "", true}, {"", "a", false}, {"STRASSE", "strasse", true}, {"Ünïcode", "ünïcode", true}, {"Ünïcode", "unicode", false},
	} {
		if got := equalFoldLower([]byte(c.b), c.lower); got != c.want {
			t.Errorf("equalFoldLower(%q, %q) = %v, want %v", c.b, c.lower, got, c.want)
		}
	}
}
