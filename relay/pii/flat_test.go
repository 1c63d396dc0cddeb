package pii

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/baton-relay/baton/relay/event"
	"github.com/baton-relay/baton/relay/internal/testutil"
)

// flatConfigs are the configs the differential tests scrub with: those of
// TestCompiledMatchesReference and a few whose selectors reach into frames.
var flatConfigs = []struct {
	settings DataScrubbingSettings
	pii      string
}{
	{defaults, ""},
	{DataScrubbingSettings{ScrubData: true, ScrubDefaults: true}, ""},
	{DataScrubbingSettings{ScrubData: true, ScrubDefaults: true, SensitiveFields: []string{"card", "Mail", "lineno"}, ExcludeFields: []string{"extra.iban", "ssn", "not a selector ("}}, ""},
	{defaults, `{"applications":{"$string":["@email","@creditcard"],"$frame.vars.**":["@password"],"extra.nested.**":["@anything:hash"]}}`},
	{defaults, `{"applications":{"**":["@common","@anything:hash"],"$string":["@uuid","@mac:replace","@imei","@bearer"]}}`},
	{DataScrubbingSettings{}, `{"applications":{"extra.nested.list.0 || $frame.* || $exception.stacktrace.frames.0.vars":["@anything:replace"],"!$string && !$object && !$user.*":["@anything:hash"],"$error.value && !extra.**":["@userpath"],"$logentry || $thread || $request.*":["@ip:mask"]}}`},
	{DataScrubbingSettings{}, `{"applications":{"extra.nested.list.0 || $error.value":["@anything:replace"]}}`},
	{DataScrubbingSettings{}, `{"rules":{"r":{"type":"redact_pair","keyPattern":"(?i)sess"}},"applications":{"extra.session || extra.'ſession' || extra.key || $http.cookies.sessionid":["@anything:replace"],"**.token || **.'ſecret'":["r","@anything:mask"]}}`},
	{DataScrubbingSettings{}, `{"applications":{"$frame.function":["@anything:remove"],"frames.*.colno":["@anything:hash"]}}`},
	{DataScrubbingSettings{}, `{"applications":{"$frame.filename || $frame.abs_path":["@userpath:replace"],"sessionid || password":["@anything:mask"]}}`},
	{DataScrubbingSettings{}, `{"applications":{"$number":["@anything:hash"]}}`},
	{DataScrubbingSettings{}, `{"applications":{"**.lineno":["@anything:remove"]}}`},
	// Selectors of frames' context lines (pii "maybe": only named).
	{DataScrubbingSettings{}, `{"applications":{"$frame.pre_context":["@anything:replace"],"$frame.context_line":["@creditcard:mask"]}}`},
	{DataScrubbingSettings{}, `{"applications":{"$frame.post_context.1 || $frame.x.1":["@anything:remove"]}}`},
	{DataScrubbingSettings{}, `{"applications":{"$frame.* && $array":["@anything:remove"]}}`},
	{DataScrubbingSettings{}, `{"applications":{"pre_context || post_context":["@password:replace"]}}`},
	{DataScrubbingSettings{}, `{"applications":{"$array || $frame.module":["@anything:hash"],"$string":["@creditcard:replace"]}}`},
	{DataScrubbingSettings{}, `{"applications":{"$string":["@creditcard:replace","@password"]}}`},
	{defaults, `{"applications":{"$stacktrace.frames.*.pre_context":["@anything:mask"]}}`},
}

// scrubBoth scrubs ev with c as ingest does (ScrubEvent: a tree with lazy
// frames unless c walks every value, the flat shortcut), on a tree with
// lazy frames whatever c, and through the full walk of an eagerly parsed
// tree, and fails the test when they differ.
func scrubBoth(t testing.TB, c *Config, ev []byte) {
	t.Helper()
	noFlat = true
	want, werr := scrubTree(c, ev, event.ParseEager)
	noFlat = false
	got, gerr := c.ScrubEvent(nil, ev)
	if (werr == nil) != (gerr == nil) || !bytes.Equal(got, want) {
		t.Fatalf("flat shortcut changed the output of %.300q:\ngot  %s (%v)\nwant %s (%v)", ev, got, gerr, want, werr)
	}
	got, gerr = scrubTree(c, ev, event.Parse)
	if (werr == nil) != (gerr == nil) || !bytes.Equal(got, want) {
		t.Fatalf("lazy frames changed the output of %.300q:\ngot  %s (%v)\nwant %s (%v)", ev, got, gerr, want, werr)
	}
}

// scrubTree is ScrubEvent on a tree parsed with parse.
func scrubTree(c *Config, src []byte, parse func([]byte) (*event.Tree, error)) ([]byte, error) {
	t, err := parse(src)
	if err != nil {
		return nil, err
	}
	defer t.Release()
	if err := c.ScrubTree(t); err != nil {
		return nil, err
	}
	if !t.Dirty() {
		return append([]byte(nil), src...), nil
	}
	return t.AppendJSON(nil), nil
}

func compileFlatConfigs(t testing.TB) []*Config {
	var cs []*Config
	for _, fc := range flatConfigs {
		c, err := Compile(fc.settings, []byte(fc.pii))
		if err != nil {
			t.Fatal(err)
		}
		cs = append(cs, c)
	}
	return cs
}

// fixtureEvents are the repository's event fixtures: every line of the
// event, envelope and fuzz-corpus files that is a JSON object.
func fixtureEvents(t testing.TB) [][]byte {
	evs := [][]byte{[]byte(piiRichEvent), []byte(selectorEvent), loadEvent(), jsEvent(),
		[]byte(`{"exception":{"values":[{"stacktrace":{"frames":[{"function":"a","pre_context":["password","hunter2"]},` +
			`{"function":"a","pre_context":["x","4111 1111 1111 1111","\u0034111 1111 1111 1111"],"context_line":"\"a@b.c\"",` +
			`"post_context":["\ud83d\ude00 mail a@b.c"]},{"filename":"x","vars":["password",1],"abs_path":["a","b"]},` +
			`{"function":"a","post_context":"x","x":"y"},{"function":"a","post_context":["a","b","c"],"x":["a","b","c"]}]}}]}}`)}
	for _, b := range testutil.Fixtures(t,
		"../normalize/testdata/events/*", "../normalize/testdata/sdk/*", "../normalize/testdata/security_report/*",
		"../../envelope/testdata/sdk-envelopes/*", "../../envelope/testdata/relay/events/*",
		"../grouping/testdata/*.json", "testdata/fuzz/*/*", "../normalize/testdata/fuzz/*/*",
	) {
		evs = append(evs, b)
		for _, line := range bytes.Split(b, []byte("\n")) {
			if line = bytes.TrimSpace(line); len(line) > 0 && line[0] == '{' {
				evs = append(evs, line)
			}
			// Fuzz corpus entries: []byte("...") lines.
			if s, ok := strings.CutPrefix(string(line), "[]byte("); ok {
				var v string
				if _, err := fmt.Sscanf(strings.TrimSuffix(s, ")"), "%q", &v); err == nil {
					evs = append(evs, []byte(v))
				}
			}
		}
	}
	if len(evs) < 50 {
		t.Fatalf("only %d fixture events", len(evs))
	}
	return evs
}

// TestFlatMatchesWalk: passing over quiet flat objects (flat.go) writes
// byte for byte what the full walk writes, for the fixtures and random
// events, under every config.
func TestFlatMatchesWalk(t *testing.T) {
	cs := compileFlatConfigs(t)
	evs := fixtureEvents(t)
	r := rand.New(rand.NewPCG(17, 12))
	for range 1000 {
		evs = append(evs, randomEvent(r))
	}
	for _, c := range cs {
		for _, ev := range evs {
			scrubBoth(t, c, ev)
		}
	}
}

// FuzzFlatMatchesWalk is TestFlatMatchesWalk for any input.
func FuzzFlatMatchesWalk(f *testing.F) {
	for _, ev := range fixtureEvents(f) {
		if len(ev) <= 4<<10 {
			f.Add(ev)
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 20 {
		f.Add(randomEvent(r))
	}
	cs := compileFlatConfigs(f)
	f.Fuzz(func(t *testing.T, ev []byte) {
		if len(ev) > 4<<10 { // the large fixtures are TestFlatMatchesWalk's
			return
		}
		for _, c := range cs {
			scrubBoth(t, c, ev)
		}
	})
}

// randomEvent is an event with stack frames, breadcrumbs, extra and a
// request whose keys and values are drawn from what the configs name.
func randomEvent(r *rand.Rand) []byte {
	keys := []string{"function", "Function", "filename", "abs_path", "lineno", "colno", "in_app", "vars", "data",
		"sessionid", "SessionID", "password", "Password", "token", "formatted", "ip_address", "REMOTE_ADDR",
		"module", "context_line", "x", "", "ſession", "\u212aey", "csrftoken", "pre_context", "platform", "post_context"}
	vals := []string{`"a"`, `"hunter2"`, `"4111 1111 1111 1111"`, `"a@b.c"`, `"/Users/jane/x.js"`, `"127.0.0.1"`,
		`12`, `-1.5e3`, `true`, `null`, `""`, `"DE89 3704 0044 0532 0130 00"`, `"123-45-6789"`, `"Bearer abc"`,
		`"\u00e9t\u00e9"`, `"x\"y"`, `"http://u:p@h/"`, `"\u003canonymous\u003e a@b.c"`, `"4111\u00201111 1111 1111"`}
	arrays := []string{`[]`, `["a","b","c"]`, `["password","hunter2"]`, `["sessionid",7]`, `["4111 1111 1111 1111","\u0061@b.c",""]`,
		`[1,2.5,null,true]`, `["\ud83d\ude00","x\"y","a\/b"]`, `["x","a@b.c"]`}
	var obj func(depth int) string
	val := func(depth int) string {
		switch n := r.IntN(12); {
		case n >= 10:
			return arrays[r.IntN(len(arrays))]
		case n == 0 && depth < 3:
			return obj(depth + 1)
		case n == 1 && depth < 3:
			return "[" + obj(depth+1) + "," + vals[r.IntN(len(vals))] + "]"
		case n == 2:
			return `["` + keys[r.IntN(len(keys))] + `",` + vals[r.IntN(len(vals))] + "]"
		}
		return vals[r.IntN(len(vals))]
	}
	obj = func(depth int) string {
		var b strings.Builder
		b.WriteByte('{')
		for i := range r.IntN(6) {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, "%q:%s", keys[r.IntN(len(keys))], val(depth))
		}
		b.WriteByte('}')
		return b.String()
	}
	var frames []string
	var last []string // the keys of the frame before, which half the frames reuse
	for range r.IntN(8) {
		if len(last) == 0 || r.IntN(2) == 0 {
			last = last[:0]
			for range 1 + r.IntN(5) {
				last = append(last, keys[r.IntN(len(keys))])
			}
		}
		var b strings.Builder
		b.WriteByte('{')
		for i, k := range last {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, "%q:%s", k, val(2))
		}
		b.WriteByte('}')
		frames = append(frames, b.String())
	}
	list := func() string {
		var xs []string
		for range r.IntN(4) {
			xs = append(xs, obj(1))
		}
		return strings.Join(xs, ",")
	}
	return fmt.Appendf(nil, `{"exception":{"values":[{"type":"E","value":%s,"stacktrace":{"frames":[%s]}}]},`+
		`"threads":{"values":[{"stacktrace":{"frames":[%s]}}]},"breadcrumbs":{"values":[%s]},"extra":%s,`+
		`"request":{"headers":[%s],"cookies":%s,"data":%s},"user":%s,"contexts":{"c":%s},"tags":%s,"sdk":%s,"spans":[%s]}`,
		vals[r.IntN(len(vals))], strings.Join(frames, ","), list(), list(), obj(1),
		val(2), obj(2), obj(1), obj(1), obj(2), obj(2), obj(2), list())
}

// TestWalksAll: a config walks every value when a selector may select
// any, not for the default data scrubbing or selectors of named fields.
func TestWalksAll(t *testing.T) {
	for _, c := range []struct {
		pii  string
		want bool
	}{
		{"", false},
		{`{"applications":{"$frame.pre_context || **.password":["@anything:remove"],"$string":["@email"]}}`, false},
		{`{"applications":{"$frame.vars.**":["@password"]}}`, true},
		{`{"applications":{"!$string":["@anything:hash"]}}`, true},
	} {
		cfg, err := Compile(defaults, []byte(c.pii))
		if err != nil {
			t.Fatal(err)
		}
		if got := cfg.WalksAll(); got != c.want {
			t.Errorf("%s: WalksAll %v, want %v", c.pii, got, c.want)
		}
	}
	if (*Config)(nil).WalksAll() {
		t.Error("nil Config walks all")
	}
}
