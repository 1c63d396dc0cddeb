package normalize

import (
	"fmt"
	"strings"
	"testing"
)

// TestTags drives tags, release, dist and environment through Event, with
// the _meta Relay writes (tags.go), and checks that a second pass changes
// nothing.
func TestTags(t *testing.T) {
	n := testNormalizer(t)
	x := strings.Repeat
	// More tags than the scratch of tags(): duplicates found through a map.
	var long []string
	for i := range 20 {
		long = append(long, fmt.Sprintf(`["k%d","first"]`, i))
	}
	long = append(long, `["","a"]`, `["k0","again"]`, `["a/b","b"]`)
	longTags := `{"tags":[` + strings.Join(long, ",") + `]}`
	nonEmptyValue := `[["invalid_data",{"reason":"expected a non-empty value"}]]`
	nonEmptyString := `[["invalid_data",{"reason":"expected a non-empty string"}]]`
	for _, tc := range []struct {
		name, in string
		want     map[string]string // path → JSON of the value ("null": absent)
	}{
		{"internal tags removed", `{"tags":[["release","1"],["dist","d"],["user","u"],["filename","f"],["function","g"],["ok","v"]]}`, map[string]string{"tags": `[["ok","v"]]`, "_meta": "null"}},
		{"only internal tags", `{"tags":{"release":"1"}}`, map[string]string{"tags": "null"}},
		{"empty tags", `{"tags":[]}`, map[string]string{"tags": "null"}},
		{"first of a key wins", `{"tags":[["a","1"],["b","2"],["a","3"]]}`, map[string]string{"tags": `[["a","1"],["b","2"]]`}},
		{"environment from tag", `{"tags":[["environment","prod"],["x","y"],["environment","dev"]]}`, map[string]string{"environment": `"prod"`, "tags": `[["x","y"]]`}},
		{"environment kept over tag", `{"environment":"staging","tags":{"environment":"prod"}}`, map[string]string{"environment": `"staging"`, "tags": "null"}},
		{"environment tag invalid", `{"tags":[["environment","None"]]}`, map[string]string{"environment": "null", "_meta.environment..err": `["invalid_data"]`, "_meta.environment..val": `"None"`, "tags": "null"}},
		{"environment tag empty", `{"tags":[["environment",""]]}`, map[string]string{"environment": "null", "_meta.environment..err": nonEmptyString}},
		{"invalid environment filled from tag", `{"environment":"a/b","tags":[["environment","prod"]]}`, map[string]string{"environment": `"prod"`, "_meta.environment..err": `["invalid_data"]`, "_meta.environment..val": `"a/b"`}},
		{"server_name and site to tags", `{"server_name":"host","site":"s1","tags":{"a":"b"}}`, map[string]string{"tags": `[["a","b"],["server_name","host"],["site","s1"]]`, "server_name": "null", "site": "null"}},
		{"server_name replaces its tag", `{"server_name":"h","tags":[["server_name","old"],["a","b"]]}`, map[string]string{"tags": `[["server_name","h"],["a","b"]]`}},
		{"server_name not a string", `{"server_name":5}`, map[string]string{"server_name": "null", "tags": "null", "_meta": "null"}},
		{"server_name empty", `{"server_name":" "}`, map[string]string{"tags": `[["server_name",null]]`, "_meta.tags.0.1..err": nonEmptyValue}},
		{"key spaces and trim", `{"tags":{"foo bar":" baz ","\tk\t":"v"}}`, map[string]string{"tags": `[["k","v"],["foo-bar","baz"]]`}},
		{"key invalid character", `{"tags":[["a/b","v"]]}`, map[string]string{"tags": `[[null,"v"]]`, "_meta.tags.0.0..err": `[["invalid_data",{"reason":"invalid character '/'"}]]`, "_meta.tags.0.0..val": `"a/b"`}},
		{"value newline", `{"tags":[["k","a\nb"]]}`, map[string]string{"tags": `[["k",null]]`, "_meta.tags.0.1..err": `[["invalid_data",{"reason":"invalid character '\\n'"}]]`, "_meta.tags.0.1..val": `"a\nb"`}},
		{"empty and invalid keys are one key", `{"tags":[["","a"],["x/y","b"],["k",""]]}`, map[string]string{"tags": `[[null,"a"],["k",null]]`, "_meta.tags.0.0..err": nonEmptyValue, "_meta.tags.1.1..err": nonEmptyValue}},
		{"lenient values", `{"tags":[[23,42],["f",1.9],["g",-0.5],["t",false],["big",1e300],["o",{"x":1}]]}`, map[string]string{
			"tags":                `[["23","42"],["f","1"],["g","-0"],["t","False"],["big",null],["o",null]]`,
			"_meta.tags.4.1..err": `[["invalid_data",{"reason":"expected a number with JSON precision"}]]`,
			"_meta.tags.5.1..err": `[["invalid_data",{"reason":"expected a primitive value"}]]`, "_meta.tags.5.1..val": `{"x":1}`}},
		{"long list: first of a key wins", longTags, map[string]string{"tags.0": `["k0","first"]`, "tags.20": `[null,"a"]`, "tags.21": "null"}},
		{"null value kept", `{"tags":{"a":null}}`, map[string]string{"tags": `[["a",null]]`}},
		{"value too long", `{"tags":[["k","` + x("é", 201) + `"]]}`, map[string]string{"tags": `[["k",null]]`, "_meta.tags.0.1..err": `["value_too_long"]`}},

		{"release trimmed", `{"release":" 1.0 "}`, map[string]string{"release": `"1.0"`, "_meta": "null"}},
		{"release latest", `{"release":"LATEST"}`, map[string]string{"release": "null", "_meta.release..err": `["invalid_data"]`, "_meta.release..val": `"LATEST"`}},
		{"release long s is not latest", `{"release":"lateſt"}`, map[string]string{"release": `"lateſt"`}},
		{"release dots", `{"release":".."}`, map[string]string{"release": "null", "_meta.release..val": `".."`}},
		{"release slash", `{"release":"a/b"}`, map[string]string{"release": "null", "_meta.release..err": `["invalid_data"]`}},
		{"release inner tab", `{"release":" a\tb "}`, map[string]string{"release": "null", "_meta.release..val": `"a\tb"`}},
		{"release empty", `{"release":"  "}`, map[string]string{"release": "null", "_meta.release..err": nonEmptyString, "_meta.release..val": "null"}},
		{"release number", `{"release":1.5}`, map[string]string{"release": `"1"`}},
		{"release bool", `{"release":true}`, map[string]string{"release": `"True"`}},
		{"release list", `{"release":[1]}`, map[string]string{"release": "null", "_meta.release..err.0.1.reason": `"expected a primitive value"`, "_meta.release..val": `[1]`}},
		{"release at limit", `{"release":"` + x("r", 200) + `"}`, map[string]string{"release": `"` + x("r", 200) + `"`}},

		{"environment trimmed", `{"environment":" prod "}`, map[string]string{"environment": `"prod"`}},
		{"environment none", `{"environment":"none"}`, map[string]string{"environment": "null", "_meta.environment..err": `["invalid_data"]`, "_meta.environment..val": `"none"`}},
		{"environment not a string", `{"environment":5}`, map[string]string{"environment": "null", "_meta.environment..err.0.1.reason": `"expected a string"`, "_meta.environment..val": `5`}},
		{"environment empty", `{"environment":""}`, map[string]string{"environment": "null", "_meta.environment..err": nonEmptyString}},

		{"dist trimmed", `{"dist":" 12 "}`, map[string]string{"dist": `"12"`}},
		{"dist bad character", `{"dist":"a b"}`, map[string]string{"dist": "null", "_meta.dist..err": `[["invalid_data",{"reason":"invalid character ' '"}]]`, "_meta.dist..val": `"a b"`}},
		{"dist too long", `{"dist":"` + x("d", 65) + `"}`, map[string]string{"dist": "null", "_meta.dist..err": `["value_too_long"]`}},
		{"dist empty", `{"dist":""}`, map[string]string{"dist": "null", "_meta.dist..err": nonEmptyString}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := Input{Received: recv}
			out, err := n.Event(nil, []byte(tc.in), &in)
			if err != nil {
				t.Fatal(err)
			}
			ev := decode(t, out)
			for path, want := range tc.want {
				if got := js(get(ev, path)); got != want {
					t.Errorf("%s = %.300s, want %.300s\n%.1000s", path, got, want, out)
				}
			}
			again, err := n.Event(nil, out, &in)
			if err != nil || string(again) != string(out) {
				t.Errorf("second pass differs:\n%.2000s\n%.2000s", out, again)
			}
		})
	}
}
