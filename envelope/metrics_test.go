package envelope

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

var metricsFixtures = relayFixtures + "/metrics"

// parseOne parses a single statsd line that must be valid.
func parseOne(t *testing.T, line string, now int64) Bucket {
	t.Helper()
	bs, errs := ParseStatsd(nil, []byte(line), time.Unix(now, 0))
	if len(errs) != 0 || len(bs) != 1 {
		t.Fatalf("ParseStatsd(%q): %d buckets, errors %v", line, len(bs), errs)
	}
	return bs[0]
}

// jsonValue decodes JSON into a generic value for semantic comparison.
func jsonValue(t testing.TB, b []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("invalid JSON %s: %v", b, err)
	}
	return v
}

func TestStatsdFixtureBuckets(t *testing.T) {
	dir := metricsFixtures
	text, err := os.ReadFile(filepath.Join(dir, "buckets.statsd.txt"))
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(filepath.Join(dir, "buckets.json"))
	if err != nil {
		t.Fatal(err)
	}
	// The stored buckets.statsd.txt predates the "transactions/" prefix that
	// buckets.json's names carry (the fixtures come from different points
	// of Relay's history): without it the namespace is custom.
	bs, errs := ParseStatsd(nil, text, time.Unix(1615889440, 0))
	if len(errs) != 0 || len(bs) != 4 {
		t.Fatalf("got %d buckets, errors %v", len(bs), errs)
	}
	for _, b := range bs {
		if !strings.Contains(b.Name, ":custom/") {
			t.Errorf("unprefixed name %q: want namespace custom", b.Name)
		}
	}
	prefixed := regexpLines(text, "transactions/")
	bs, errs = ParseStatsd(nil, prefixed, time.Unix(1615889440, 0))
	if len(errs) != 0 {
		t.Fatalf("errors %v", errs)
	}
	got := AppendBucketsJSON(nil, bs)
	if g, w := jsonValue(t, got), jsonValue(t, want); !reflect.DeepEqual(g, w) {
		t.Errorf("statsd -> JSON mismatch\n got %s\nwant %s", got, want)
	}
	// The JSON fixture parses to the same buckets.
	jb, err := ParseBuckets(want)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(jb, bs) {
		t.Errorf("ParseBuckets(buckets.json) = %+v\nwant %+v", jb, bs)
	}
}

// regexpLines prefixes every non-empty line of text.
func regexpLines(text []byte, prefix string) []byte {
	var out []byte
	for _, l := range bytes.Split(text, []byte("\n")) {
		if len(l) > 0 {
			out = append(out, prefix...)
			out = append(out, l...)
		}
		out = append(out, '\n')
	}
	return out
}

func TestStatsdFixtureSet(t *testing.T) {
	dir := metricsFixtures
	text, _ := os.ReadFile(filepath.Join(dir, "set.statsd.txt"))
	want, err := os.ReadFile(filepath.Join(dir, "set.json"))
	if err != nil {
		t.Fatal(err)
	}
	bs, errs := ParseStatsd(nil, text, time.Unix(1615889449, 0))
	if len(errs) != 0 || len(bs) != 1 {
		t.Fatalf("got %d buckets, errors %v", len(bs), errs)
	}
	if !slices.Equal(bs[0].Value.Set, []uint32{4267882815}) {
		t.Errorf("set = %v, want [4267882815] (FNV-1a of the UUID)", bs[0].Value.Set)
	}
	got := bs[0].AppendJSON(nil)
	if g, w := jsonValue(t, got), jsonValue(t, want); !reflect.DeepEqual(g, w) {
		t.Errorf("got %s\nwant %s", got, want)
	}
	arr := append(append([]byte("["), want...), ']')
	jb, err := ParseBuckets(arr)
	if err != nil || !reflect.DeepEqual(jb, bs) {
		t.Errorf("ParseBuckets(set.json) = %+v, %v; want %+v", jb, err, bs)
	}
}

func TestStatsdFixtureMetrics(t *testing.T) {
	dir := metricsFixtures
	text, _ := os.ReadFile(filepath.Join(dir, "metrics.statsd.txt"))
	raw, err := os.ReadFile(filepath.Join(dir, "metrics.json"))
	if err != nil {
		t.Fatal(err)
	}
	// metrics.json is the older single-value "metric" format: one value
	// (not a list) per metric, no width.
	var want []struct {
		Name      string            `json:"name"`
		Value     float64           `json:"value"`
		Type      string            `json:"type"`
		Timestamp int64             `json:"timestamp"`
		Tags      map[string]string `json:"tags"`
	}
	if err := json.Unmarshal(raw, &want); err != nil {
		t.Fatal(err)
	}
	bs, errs := ParseStatsd(nil, text, time.Unix(1615889449, 0))
	if len(errs) != 0 || len(bs) != len(want) {
		t.Fatalf("got %d buckets, errors %v", len(bs), errs)
	}
	for i, w := range want {
		b := bs[i]
		v := b.Value.Counter
		if b.Type == MetricDistribution {
			if len(b.Value.Distribution) != 1 {
				t.Fatalf("%s: distribution %v", b.Name, b.Value.Distribution)
			}
			v = b.Value.Distribution[0]
		}
		tags := map[string]string{}
		for _, tg := range b.Tags {
			tags[tg.Key] = tg.Value
		}
		if b.Name != w.Name || b.Type.String() != w.Type || b.Timestamp != w.Timestamp || v != w.Value || !reflect.DeepEqual(tags, w.Tags) {
			t.Errorf("bucket %d = %+v, want %+v", i, b, w)
		}
	}
}

func TestParseStatsdValid(t *testing.T) {
	const now = 4711
	tests := []struct{ line, want string }{
		{"transactions/foo:42|c", `{"timestamp":4711,"width":0,"name":"c:transactions/foo@none","type":"c","value":42.0}`},
		{"transactions/foo:42:17:21|c", `{"timestamp":4711,"width":0,"name":"c:transactions/foo@none","type":"c","value":80.0}`},
		{"foo:1.5:-0.5|m", `{"timestamp":4711,"width":0,"name":"c:custom/foo@none","type":"c","value":1.0}`},
		{"transactions/foo:17.5|d", `{"timestamp":4711,"width":0,"name":"d:transactions/foo@none","type":"d","value":[17.5]}`},
		{"transactions/foo:17.5:21.9:42.7|d", `{"timestamp":4711,"width":0,"name":"d:transactions/foo@none","type":"d","value":[17.5,21.9,42.7]}`},
		{"transactions/foo:17.5|h", `{"timestamp":4711,"width":0,"name":"d:transactions/foo@none","type":"d","value":[17.5]}`},
		{"foo:2|ms", `{"timestamp":4711,"width":0,"name":"d:custom/foo@none","type":"d","value":[2.0]}`},
		{"foo:+1.|d", `{"timestamp":4711,"width":0,"name":"d:custom/foo@none","type":"d","value":[1.0]}`},
		{"foo:.5e1:1E-7|d", `{"timestamp":4711,"width":0,"name":"d:custom/foo@none","type":"d","value":[5.0,1e-7]}`},
		{"transactions/foo:4267882815|s", `{"timestamp":4711,"width":0,"name":"s:transactions/foo@none","type":"s","value":[4267882815]}`},
		{"transactions/foo:e2546e4c-ecd0-43ad-ae27-87960e57a658|s", `{"timestamp":4711,"width":0,"name":"s:transactions/foo@none","type":"s","value":[4267882815]}`},
		{"transactions/foo:e2546e4c-ecd0-43ad-ae27-87960e57a658:00449b66-d91f-4fb8-b324-4c8bdf2499f6|s", `{"timestamp":4711,"width":0,"name":"s:transactions/foo@none","type":"s","value":[181348692,4267882815]}`},
		{"transactions/foo:3182887624:4267882815:3182887624|s", `{"timestamp":4711,"width":0,"name":"s:transactions/foo@none","type":"s","value":[3182887624,4267882815]}`},
		{"foo:4294967296:+7:-1|s", fmt.Sprintf(`{"timestamp":4711,"width":0,"name":"s:custom/foo@none","type":"s","value":[7,%d,%d]}`, min(hashSetValue([]byte("4294967296")), hashSetValue([]byte("-1"))), max(hashSetValue([]byte("4294967296")), hashSetValue([]byte("-1"))))},
		{"transactions/foo:42|g", `{"timestamp":4711,"width":0,"name":"g:transactions/foo@none","type":"g","value":{"last":42.0,"min":42.0,"max":42.0,"sum":42.0,"count":1}}`},
		{"transactions/foo:25:17:42:220:85|g", `{"timestamp":4711,"width":0,"name":"g:transactions/foo@none","type":"g","value":{"last":25.0,"min":17.0,"max":42.0,"sum":220.0,"count":85}}`},
		{"foo:25:17:42:220:85:99|g", `{"timestamp":4711,"width":0,"name":"g:custom/foo@none","type":"g","value":{"last":25.0,"min":17.0,"max":42.0,"sum":220.0,"count":85}}`},
		{"foo:42|c", `{"timestamp":4711,"width":0,"name":"c:custom/foo@none","type":"c","value":42.0}`},
		{"transactions/foo@second:17.5|d", `{"timestamp":4711,"width":0,"name":"d:transactions/foo@second","type":"d","value":[17.5]}`},
		{"transactions/foo@s:17.5|d", `{"timestamp":4711,"width":0,"name":"d:transactions/foo@second","type":"d","value":[17.5]}`},
		{"foo@ms:1|d", `{"timestamp":4711,"width":0,"name":"d:custom/foo@millisecond","type":"d","value":[1.0]}`},
		{"foo@:1|d", `{"timestamp":4711,"width":0,"name":"d:custom/foo@none","type":"d","value":[1.0]}`},
		{"foo@Widgets_2:1|c", `{"timestamp":4711,"width":0,"name":"c:custom/foo@widgets_2","type":"c","value":1.0}`},
		{"foo@byte@junk:1|c", `{"timestamp":4711,"width":0,"name":"c:custom/foo@byte","type":"c","value":1.0}`},
		{"spans/a:1|c", `{"timestamp":4711,"width":0,"name":"c:spans/a@none","type":"c","value":1.0}`},
		{"sessions/a:1|c", `{"timestamp":4711,"width":0,"name":"c:sessions/a@none","type":"c","value":1.0}`},
		{"stats/a:1|c", `{"timestamp":4711,"width":0,"name":"c:stats/a@none","type":"c","value":1.0}`},
		{"something_new/a:1|c", `{"timestamp":4711,"width":0,"name":"c:unsupported/a@none","type":"c","value":1.0}`},
		{"a/b/c:1|c", `{"timestamp":4711,"width":0,"name":"c:unsupported/b_c@none","type":"c","value":1.0}`},
		{"foo#bar:42|c", `{"timestamp":4711,"width":0,"name":"c:custom/foo_bar@none","type":"c","value":42.0}`},
		{"f??o-bär.x:1|c", `{"timestamp":4711,"width":0,"name":"c:custom/f_o_b_r.x@none","type":"c","value":1.0}`},
		{"transactions/foo:17.5|d|#foo,bar:baz", `{"timestamp":4711,"width":0,"name":"d:transactions/foo@none","type":"d","value":[17.5],"tags":{"bar":"baz","foo":""}}`},
		{"foo:1|c|#b:2,a:1,b:3", `{"timestamp":4711,"width":0,"name":"c:custom/foo@none","type":"c","value":1.0,"tags":{"a":"1","b":"3"}}`},
		{"foo:1|c|#a:1|#b:2", `{"timestamp":4711,"width":0,"name":"c:custom/foo@none","type":"c","value":1.0,"tags":{"b":"2"}}`},
		{"foo:1|c|#url:http://x:8080/y", `{"timestamp":4711,"width":0,"name":"c:custom/foo@none","type":"c","value":1.0,"tags":{"url":"http://x:8080/y"}}`},
		{"transactions/foo:17.5|d|#foo:😅\\u{2c}🚀", `{"timestamp":4711,"width":0,"name":"d:transactions/foo@none","type":"d","value":[17.5],"tags":{"foo":"😅,🚀"}}`},
		{"foo:1|c|#a:x\\u{7c}y\\\\z\\ttab,b:bad\\q,c\x01:v", `{"timestamp":4711,"width":0,"name":"c:custom/foo@none","type":"c","value":1.0,"tags":{"a":"x|y\\ztab"}}`},
		{"foo:1|c|#,a:b", `{"timestamp":4711,"width":0,"name":"c:custom/foo@none","type":"c","value":1.0,"tags":{"":"","a":"b"}}`},
		{"transactions/foo:17.5|d|T1615889449", `{"timestamp":1615889449,"width":0,"name":"d:transactions/foo@none","type":"d","value":[17.5]}`},
		{"foo:1|c|T+5|T7", `{"timestamp":7,"width":0,"name":"c:custom/foo@none","type":"c","value":1.0}`},
		{"transactions/foo:17.5|d|@0.1", `{"timestamp":4711,"width":0,"name":"d:transactions/foo@none","type":"d","value":[17.5]}`},
		{"foo:1|c||x|#a:b|", `{"timestamp":4711,"width":0,"name":"c:custom/foo@none","type":"c","value":1.0,"tags":{"a":"b"}}`},
		{"foo:1e308:1e308|c", `{"timestamp":4711,"width":0,"name":"c:custom/foo@none","type":"c","value":1.7976931348623157e308}`},
	}
	for _, tt := range tests {
		b := parseOne(t, tt.line, now)
		got := b.AppendJSON(nil)
		if g, w := jsonValue(t, got), jsonValue(t, []byte(tt.want)); !reflect.DeepEqual(g, w) {
			t.Errorf("%q:\n got %s\nwant %s", tt.line, got, tt.want)
		}
	}
	// A long name is cut to 150 bytes after normalisation.
	b := parseOne(t, "a"+strings.Repeat("-b", 100)+":1|c", now)
	if want := "c:custom/" + ("a" + strings.Repeat("_b", 100))[:150] + "@none"; b.Name != want {
		t.Errorf("long name = %q, want %q", b.Name, want)
	}
}

func TestParseStatsdPayload(t *testing.T) {
	payload := "transactions/foo:42|c\r\n\n\nbar:17|c\n\r\nbaz:1|d\n"
	bs, errs := ParseStatsd(make([]Bucket, 1), []byte(payload), time.Unix(4711, 0))
	if len(errs) != 0 || len(bs) != 4 {
		t.Fatalf("got %d buckets (want 1 + 3), errors %v", len(bs), errs)
	}
	if bs[1].Name != "c:transactions/foo@none" || bs[2].Name != "c:custom/bar@none" || bs[3].Name != "d:custom/baz@none" {
		t.Errorf("names %q %q %q", bs[1].Name, bs[2].Name, bs[3].Name)
	}
	if bs[1].Metadata != (BucketMetadata{Merges: 1}) {
		t.Errorf("metadata %+v, want Relay's default", bs[1].Metadata)
	}
}

func TestParseStatsdInvalid(t *testing.T) {
	tests := []struct {
		line string
		off  int // offset of the problem within the line
		msg  string
	}{
		{"x23-408j17z4232@#34d", 20, "missing ':'"},
		{"foo:1", 5, "missing '|<type>'"},
		{"foo:1|", 6, "unknown metric type"},
		{"foo:1|x", 6, "unknown metric type \"x\""},
		{"foo:1|C", 6, "unknown metric type"},
		{":42|c", 0, "empty metric name"},
		{"64bit:42|c", 0, "must start with an ASCII letter"},
		{"transactions/_x:1|c", 13, "must start with an ASCII letter"},
		{"transactions/:1|c", 13, "empty metric name"},
		{"föo\xff:1|c", 4, "invalid UTF-8"},
		{"foo@light_years_away:1|c", 4, "invalid unit"},
		{"foo@m/s:1|c", 4, "invalid unit"},
		{"foo:|c", 4, "invalid counter value \"\""},
		{"foo:1:x|c", 6, "invalid counter value \"x\""},
		{"foo:inf|c", 4, "invalid counter value"},
		{"foo:NaN|d", 4, "invalid distribution value"},
		{"foo:1e400|d", 4, "invalid distribution value"},
		{"foo:0x10|d", 4, "invalid distribution value"},
		{"foo:1_000|d", 4, "invalid distribution value"},
		{"foo:1e|d", 4, "invalid distribution value"},
		{"foo:.|d", 4, "invalid distribution value"},
		{"foo:1::2|d", 6, "invalid distribution value \"\""},
		{"foo: 1|d", 4, "invalid distribution value"},
		{"foo:x|g", 4, "invalid gauge value"},
		{"foo:1:2|g", 7, "gauge needs 1 value or 5"},
		{"foo:1:2:3:4|g", 11, "gauge needs 1 value or 5"},
		{"foo:1:2:3:4:5.0|g", 12, "invalid gauge count"},
		{"foo:1:2:3:4:-1|g", 12, "invalid gauge count"},
		{"foo:1|c|T", 8, "invalid timestamp"},
		{"foo:1|c|Tabc", 8, "invalid timestamp \"Tabc\""},
		{"foo:1|c|#a:b|T-1", 13, "invalid timestamp"},
		{"foo:1|c|T99999999999999999999", 8, "invalid timestamp"},
	}
	for _, tt := range tests {
		// Surround the bad line with good ones: they must survive.
		payload := "good:1|c\n" + tt.line + "\r\ngood:2|c"
		bs, errs := ParseStatsd(nil, []byte(payload), time.Unix(1, 0))
		if len(bs) != 2 || bs[0].Value.Counter != 1 || bs[1].Value.Counter != 2 {
			t.Errorf("%q: good lines not kept: %+v", tt.line, bs)
		}
		if len(errs) != 1 {
			t.Errorf("%q: errors %v, want one", tt.line, errs)
			continue
		}
		e := errs[0]
		if e.Line != 2 || e.Offset != len("good:1|c\n")+tt.off || !strings.Contains(e.Msg, tt.msg) {
			t.Errorf("%q: got line %d offset %d %q; want line 2 offset %d %q", tt.line, e.Line, e.Offset, e.Msg, len("good:1|c\n")+tt.off, tt.msg)
		}
		if !errors.Is(&e, ErrInvalid) || !strings.Contains(e.Error(), "statsd line 2") {
			t.Errorf("%q: error %q does not unwrap to ErrInvalid or name the line", tt.line, e.Error())
		}
	}
}

func TestUnescapeTagValue(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{`plain`, "plain", true},
		{`plain text`, "plain text", true},
		{`plain%text`, "plain%text", true},
		{`plain \\ text`, `plain \ text`, true},
		{`plain\u{2c}text`, "plain,text", true},
		{`plain\u{7c}text`, "plain|text", true},
		{`plain \u{5c} text`, `plain \ text`, true},
		{`plain\ntext`, "plaintext", true},
		{`plain\rtext`, "plaintext", true},
		{`plain\ttext`, "plaintext", true},
		{`\"\'\/`, `"'/`, true},
		{`\u00e9\x41\101\7`, "éAA", true},
		{`\u{1F680}`, "🚀", true},
		{`\u{+41}\u+041`, "AA", true},
		{`\u{41`, "A", true}, // unterminated braces take the rest, as in unescaper
		{"a\x01b\x7fc", "abc", true},
		{`\`, "", false},
		{`\q`, "", false},
		{`\8`, "", false},
		{`\u{}`, "", false},
		{`\u{d800}`, "", false},
		{`\u{110000}`, "", false},
		{`\u12`, "", false},
		{`\x4`, "", false},
		{`\xzz`, "", false},
	}
	for _, tt := range tests {
		got, ok := unescapeTagValue(nil, []byte(tt.in))
		if ok != tt.ok || (ok && string(got) != tt.want) {
			t.Errorf("unescapeTagValue(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestBucketsJSONRoundTrip(t *testing.T) {
	inputs := []string{
		`[]`,
		` [ ] `,
		`[{"timestamp":1615889440,"width":10,"name":"endpoint.response_time","unit":"millisecond","value":[36,49,57,68],"type":"d","tags":{"route":"user_index"},"metadata":{"merges":1,"received_at":1615889440}}]`,
		`[{"name":"endpoint.hits","value":4,"type":"c","timestamp":1615889440,"width":10,"metadata":{"merges":1,"received_at":1615889440}}]`,
		`[{"timestamp":1,"width":0,"name":"g:custom/x@none","type":"g","value":{"last":-1.5,"min":-2,"max":1e300,"sum":0.000001,"count":18446744073709551615}},` +
			`{"timestamp":2,"width":0,"name":"s:custom/x@none","type":"s","value":[]},` +
			`{"timestamp":3,"width":0,"name":"d:custom/\u00e9\"x","type":"d","value":[],"tags":{"\u0061":"\n","b":""},"metadata":{"merges":0}}]`,
	}
	for _, in := range inputs {
		bs, err := ParseBuckets([]byte(in))
		if err != nil {
			t.Errorf("ParseBuckets(%s): %v", in, err)
			continue
		}
		out := AppendBucketsJSON(nil, bs)
		again, err := ParseBuckets(out)
		if err != nil || !bucketsEqual(again, bs) {
			t.Errorf("round trip of %s via %s: %+v, %v", in, out, again, err)
		}
		// Relay drops a default metadata object; compare the rest as JSON.
		var want []map[string]any
		_ = json.Unmarshal([]byte(in), &want)
		for _, m := range want {
			delete(m, "unit")
			if md, ok := m["metadata"].(map[string]any); ok && md["merges"] == 1.0 && md["received_at"] == nil {
				delete(m, "metadata")
			}
		}
		wantJSON, _ := json.Marshal(want)
		if g, w := jsonValue(t, out), jsonValue(t, wantJSON); !reflect.DeepEqual(g, w) && len(want) > 0 {
			t.Errorf("JSON of %s:\n got %s\nwant %s", in, out, wantJSON)
		}
	}
}

func TestParseBucketsDetails(t *testing.T) {
	bs, err := ParseBuckets([]byte(`[{"tags":{"z":"1","a":"x","z":"2"},"type":"s","value":[5,1,5,3],"name":"n","width":0,"timestamp":7,"extra":{"x":[1]},"metadata":{"received_at":null}}]`))
	if err != nil {
		t.Fatal(err)
	}
	b := bs[0]
	if !slices.Equal(b.Value.Set, []uint32{1, 3, 5}) || !reflect.DeepEqual(b.Tags, []Tag{{"a", "x"}, {"z", "2"}}) || b.Metadata != (BucketMetadata{Merges: 1}) {
		t.Errorf("got %+v", b)
	}
	if v, ok := b.Tag("z"); !ok || v != "2" {
		t.Errorf("Tag(z) = %q, %v", v, ok)
	}
	if _, ok := b.Tag("q"); ok {
		t.Error("Tag(q) found")
	}
}

func TestParseBucketsErrors(t *testing.T) {
	const ok = `"timestamp":1,"width":0,"name":"n"`
	tests := []struct{ in, msg string }{
		{``, "unexpected end of JSON"},
		{`{}`, "expected a JSON array"},
		{`[1]`, "metric bucket 0: expected a JSON object"},
		{`[{` + ok + `,"type":"c","value":1}] x`, "invalid data after"},
		{`[{` + ok + `,"type":"c"}]`, `missing "value"`},
		{`[{"width":0,"name":"n","type":"c","value":1}]`, `missing "timestamp"`},
		{`[{` + ok + `,"type":"x","value":1}]`, `"type" must be`},
		{`[{` + ok + `,"type":"m","value":1}]`, `"type" must be`},
		{`[{` + ok + `,"type":"c","value":"1"}]`, "must be a finite number"},
		{`[{` + ok + `,"type":"c","value":1e999}]`, "must be a finite number"},
		{`[{` + ok + `,"type":"d","value":1}]`, "must be an array"},
		{`[{` + ok + `,"type":"d","value":[1,null]}]`, "distribution values"},
		{`[{` + ok + `,"type":"s","value":[1.0]}]`, "set values"},
		{`[{` + ok + `,"type":"s","value":[4294967296]}]`, "set values"},
		{`[{` + ok + `,"type":"s","value":[-1]}]`, "set values"},
		{`[{` + ok + `,"type":"g","value":{"last":1,"min":1,"max":1,"sum":1}}]`, "needs last, min, max, sum and count"},
		{`[{` + ok + `,"type":"g","value":{"last":1,"min":1,"max":1,"sum":1,"count":1.5}}]`, "gauge count"},
		{`[{` + ok + `,"type":"g","value":{"last":1,"last":1,"min":1,"max":1,"sum":1,"count":1}}]`, "duplicate gauge key"},
		{`[{` + ok + `,"type":"g","value":[1]}]`, "must be an object"},
		{`[{"timestamp":-1,"width":0,"name":"n","type":"c","value":1}]`, `"timestamp" must be an integer`},
		{`[{"timestamp":1.5,"width":0,"name":"n","type":"c","value":1}]`, `"timestamp" must be an integer`},
		{`[{"timestamp":1,"width":9223372036854775808,"name":"n","type":"c","value":1}]`, `"width" must be an integer`},
		{`[{` + ok + `,"name":"m","type":"c","value":1}]`, `duplicate key "name"`},
		{`[{"timestamp":1,"width":0,"name":1,"type":"c","value":1}]`, `"name" must be a string`},
		{`[{` + ok + `,"type":"c","value":1,"tags":{"a":1}}]`, "must have a string value"},
		{`[{` + ok + `,"type":"c","value":1,"tags":null}]`, `"tags" must be an object`},
		{`[{` + ok + `,"type":"c","value":1,"metadata":{"merges":-1}}]`, "metadata.merges"},
		{`[{` + ok + `,"type":"c","value":1,"metadata":{"received_at":"x"}}]`, "metadata.received_at"},
		{`[{` + ok + `,"type":"c","value":1},{` + ok + `,"type":"c"}]`, `metric bucket 1: missing "value"`},
	}
	for _, tt := range tests {
		bs, err := AppendParsedBuckets(make([]Bucket, 2), []byte(tt.in))
		var pe *ParseError
		if !errors.As(err, &pe) || !errors.Is(err, ErrInvalid) || !strings.Contains(pe.Msg, tt.msg) || len(bs) != 2 {
			t.Errorf("ParseBuckets(%s) = %d buckets, %v; want error containing %q", tt.in, len(bs), err, tt.msg)
		}
	}
}

func TestAppendJSONFloat(t *testing.T) {
	tests := []struct {
		f    float64
		want string
	}{
		{0, "0.0"}, {math.Copysign(0, -1), "-0.0"}, {4, "4.0"}, {-2.5, "-2.5"}, {0.1, "0.1"},
		{1e20, "100000000000000000000.0"}, {1e21, "1e21"}, {1.5e-7, "1.5e-7"}, {1e-6, "0.000001"},
		{math.MaxFloat64, "1.7976931348623157e308"}, {5e-324, "5e-324"}, {math.Inf(1), "null"}, {math.NaN(), "null"},
	}
	for _, tt := range tests {
		if got := string(appendJSONFloat(nil, tt.f)); got != tt.want {
			t.Errorf("appendJSONFloat(%v) = %s, want %s", tt.f, got, tt.want)
		}
	}
}

func TestMerge(t *testing.T) {
	now := time.Unix(100, 0)
	parse := func(line string) Bucket {
		bs, errs := ParseStatsd(nil, []byte(line), now)
		if len(errs) > 0 {
			t.Fatal(errs)
		}
		return bs[0]
	}
	c := parse("a:42|c")
	if err := c.Merge(ptr(parse("a:43|c"))); err != nil || c.Value.Counter != 85 {
		t.Errorf("counter: %v, %v", c.Value.Counter, err)
	}
	if c.Metadata.Merges != 2 {
		t.Errorf("merges = %d, want 2", c.Metadata.Merges)
	}
	big := parse("a:1e308|c")
	_ = big.Merge(ptr(parse("a:1e308|c")))
	if big.Value.Counter != math.MaxFloat64 {
		t.Errorf("counter does not saturate: %v", big.Value.Counter)
	}

	d := parse("a:1:2:3|d")
	if err := d.Merge(ptr(parse("a:2:4|d"))); err != nil || !slices.Equal(d.Value.Distribution, []float64{1, 2, 3, 2, 4}) {
		t.Errorf("distribution: %v, %v", d.Value.Distribution, err)
	}

	s := parse("a:1:2:9|s")
	for _, o := range []string{"a:2:3|s", "a:10:11|s", "a:0|s", "a:5:9:12|s"} {
		if err := s.Merge(ptr(parse(o))); err != nil {
			t.Fatal(err)
		}
	}
	if !slices.Equal(s.Value.Set, []uint32{0, 1, 2, 3, 5, 9, 10, 11, 12}) {
		t.Errorf("set union: %v", s.Value.Set)
	}
	self := parse("a:1:2|s")
	_ = self.Merge(&self)
	if !slices.Equal(self.Value.Set, []uint32{1, 2}) {
		t.Errorf("set self-merge: %v", self.Value.Set)
	}
	var empty Bucket
	empty.Type = MetricSet
	_ = empty.Merge(&self)
	self.Value.Set[0] = 99
	if !slices.Equal(empty.Value.Set, []uint32{1, 2}) {
		t.Errorf("merge into an empty set aliases the other bucket: %v", empty.Value.Set)
	}

	g := parse("a:42|g")
	if err := g.Merge(ptr(parse("a:43|g"))); err != nil || g.Value.Gauge != (GaugeValue{Last: 43, Min: 42, Max: 43, Sum: 85, Count: 2}) {
		t.Errorf("gauge: %+v, %v", g.Value.Gauge, err)
	}
	_ = g.Merge(ptr(parse("a:10:5:50:100:7|g")))
	if g.Value.Gauge != (GaugeValue{Last: 10, Min: 5, Max: 50, Sum: 185, Count: 9}) {
		t.Errorf("packed gauge: %+v", g.Value.Gauge)
	}

	before := c
	if err := c.Merge(&d); !errors.Is(err, ErrMetricTypeMismatch) || !reflect.DeepEqual(c, before) {
		t.Errorf("type mismatch: %v, bucket %+v", err, c)
	}
	var z1, z2 Bucket
	if err := z1.Merge(&z2); !errors.Is(err, ErrMetricTypeMismatch) {
		t.Errorf("invalid types: %v", err)
	}

	m := Bucket{Type: MetricCounter, Metadata: BucketMetadata{Merges: math.MaxUint32 - 1, ReceivedAt: 50}}
	_ = m.Merge(&Bucket{Type: MetricCounter, Metadata: BucketMetadata{Merges: 5, ReceivedAt: 40}})
	_ = m.Merge(&Bucket{Type: MetricCounter, Metadata: BucketMetadata{Merges: 1}})
	if m.Metadata != (BucketMetadata{Merges: math.MaxUint32, ReceivedAt: 40}) {
		t.Errorf("metadata merge: %+v", m.Metadata)
	}
}

func ptr[T any](v T) *T { return &v }

func TestKeyHash(t *testing.T) {
	b := parseOne(t, "transactions/endpoint.hits@millisecond:1|c|#route:user_index,env:prod", 0)
	key := b.AppendKey(nil)
	h := fnv.New64a()
	h.Write(key)
	if b.KeyHash() != h.Sum64() {
		t.Errorf("KeyHash %x != FNV-1a of AppendKey %x", b.KeyHash(), h.Sum64())
	}
	// Fixed value: this must never change, it steers partitions.
	const want uint64 = 0x75217647f8af0562
	if b.KeyHash() != want {
		t.Errorf("KeyHash = %#x, want %#x", b.KeyHash(), want)
	}
	// Tag order, values and time do not matter; names, types, tags do.
	same := parseOne(t, "transactions/endpoint.hits@ms:7:8|c|#env:prod,route:user_index|T99", 5)
	if !bytes.Equal(same.AppendKey(nil), key) || same.KeyHash() != b.KeyHash() {
		t.Error("equivalent buckets have different keys")
	}
	for _, other := range []string{
		"transactions/endpoint.hits@millisecond:1|d|#route:user_index,env:prod",
		"transactions/endpoint.hits:1|c|#route:user_index,env:prod",
		"transactions/endpoint.hits@millisecond:1|c|#route:user_index",
		"transactions/endpoint.hits@millisecond:1|c|#route:user_index,env:prod,x",
		"transactions/endpoint.hits@millisecond:1|c|#route:user_indexenv,:prod",
	} {
		o := parseOne(t, other, 0)
		if bytes.Equal(o.AppendKey(nil), key) || o.KeyHash() == b.KeyHash() {
			t.Errorf("%q shares the key of %q", other, "transactions/endpoint.hits@millisecond:1|c|#route:user_index,env:prod")
		}
	}
}

// aggregate merges buckets by (key, timestamp) and returns them in key
// order, with distributions sorted (their order depends on arrival order,
// as in Relay) and gauges' last value cleared (it is the last arrival's).
func aggregate(t *testing.T, items [][]byte, now time.Time) map[string]Bucket {
	t.Helper()
	agg := map[string]*Bucket{}
	for _, item := range items {
		bs, errs := ParseStatsd(nil, item, now)
		if len(errs) > 0 {
			t.Fatal(errs)
		}
		for i := range bs {
			k := fmt.Sprintf("%d|%s", bs[i].Timestamp, bs[i].AppendKey(nil))
			if cur, ok := agg[k]; ok {
				if err := cur.Merge(&bs[i]); err != nil {
					t.Fatal(err)
				}
			} else {
				agg[k] = &bs[i]
			}
		}
	}
	out := map[string]Bucket{}
	for k, b := range agg {
		c := b.Clone()
		slices.Sort(c.Value.Distribution)
		c.Value.Gauge.Last = 0
		out[k] = c
	}
	return out
}

func TestAggregationOrderIndependent(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	names := []string{"a", "transactions/b@ms", "c@byte"}
	types := []string{"c", "d", "s", "g"}
	tags := []string{"", "|#x:1", "|#y:2,x:1", "|#x:1,y:2"}
	var lines []string
	for range 300 {
		ty := types[rng.IntN(len(types))]
		nv := 1 + rng.IntN(3)
		if ty == "g" && rng.IntN(2) == 0 {
			nv = 1
		} else if ty == "g" {
			nv = 5
		}
		vals := make([]string, nv)
		for j := range vals {
			vals[j] = fmt.Sprint(rng.IntN(50)) // integers: float sums are exact in any order
		}
		ts := ""
		if rng.IntN(4) == 0 {
			ts = fmt.Sprintf("|T%d", 10+rng.IntN(2))
		}
		line := fmt.Sprintf("%s:%s|%s%s%s", names[rng.IntN(len(names))], strings.Join(vals, ":"), ty, tags[rng.IntN(len(tags))], ts)
		lines = append(lines, line)
	}
	now := time.Unix(10, 0)
	want := aggregate(t, [][]byte{[]byte(strings.Join(lines, "\n"))}, now)
	for round := range 20 {
		perm := slices.Clone(lines)
		rng.Shuffle(len(perm), func(i, j int) { perm[i], perm[j] = perm[j], perm[i] })
		var items [][]byte
		for len(perm) > 0 {
			n := 1 + rng.IntN(min(len(perm), 40))
			items = append(items, []byte(strings.Join(perm[:n], "\n")+"\n"))
			perm = perm[n:]
		}
		if got := aggregate(t, items, now); !reflect.DeepEqual(got, want) {
			t.Fatalf("round %d: aggregation depends on order/split\n got %v\nwant %v", round, got, want)
		}
	}
	if len(want) < 20 {
		t.Errorf("only %d distinct buckets: the test input is too uniform", len(want))
	}
}

// bucketsEqual compares buckets treating nil and empty slices alike.
func bucketsEqual(a, b []Bucket) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if x.Timestamp != y.Timestamp || x.Width != y.Width || x.Name != y.Name || x.Type != y.Type ||
			x.Metadata != y.Metadata || x.Value.Gauge != y.Value.Gauge ||
			math.Float64bits(x.Value.Counter) != math.Float64bits(y.Value.Counter) ||
			!slices.Equal(x.Value.Set, y.Value.Set) || !slices.Equal(x.Tags, y.Tags) ||
			!slices.EqualFunc(x.Value.Distribution, y.Value.Distribution, func(p, q float64) bool {
				return math.Float64bits(p) == math.Float64bits(q)
			}) {
			return false
		}
	}
	return true
}

func TestSetTag(t *testing.T) {
	var b Bucket
	for _, kv := range [][2]string{{"m", "1"}, {"a", "2"}, {"z", "3"}, {"m", "4"}} {
		b.SetTag(kv[0], kv[1])
	}
	if !reflect.DeepEqual(b.Tags, []Tag{{"a", "2"}, {"m", "4"}, {"z", "3"}}) {
		t.Errorf("tags %v", b.Tags)
	}
}

// Buckets of one payload share memory, but changing one never shows in
// another: every shared slice is capped at its own length.
func TestParseStatsdBucketsIndependent(t *testing.T) {
	payload := []byte("a:1:2|d|#k:1,z:9\nb:3:4|d|#k:2\nc:5:6|s|#k:3\nd:7:8|s\n")
	got, errs := ParseStatsd(nil, payload, time.Unix(1700000000, 0))
	if len(errs) != 0 || len(got) != 4 {
		t.Fatalf("parsed %d buckets, errors %v", len(got), errs)
	}
	want := func() string {
		return fmt.Sprint(got[1].Value.Distribution, got[1].Tags, got[3].Value.Set, got[3].Tags)
	}
	before := want()
	got[0].Value.Distribution = append(got[0].Value.Distribution, 99)
	got[0].SetTag("m", "x") // inserts between k and z
	got[2].Value.Set = append(got[2].Value.Set, 42)
	got[2].SetTag("a", "first")
	if after := want(); after != before {
		t.Fatalf("changing buckets 0 and 2 changed 1 and 3: %s became %s", before, after)
	}
	if v, _ := got[0].Tag("z"); v != "9" || fmt.Sprint(got[0].Value.Distribution) != "[1 2 99]" {
		t.Fatalf("bucket 0 after changes: %v %v", got[0].Tags, got[0].Value.Distribution)
	}
}
