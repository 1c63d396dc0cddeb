package normalize

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/baton-relay/baton/relay/event"
	"github.com/baton-relay/baton/relay/internal/testutil"
	"github.com/baton-relay/baton/relay/pii"
)

// pipeline is ingest's processing of src: parse (eager: every value at
// once, else with lazy frames), normalize, scrub, write.
func pipeline(t testing.TB, src []byte, cfg *pii.Config, eager bool) string {
	parse := event.Parse
	if eager {
		parse = event.ParseEager
	}
	tr, err := parse(src)
	if err != nil {
		return "parse: " + err.Error()
	}
	defer tr.Release()
	in := &Input{ClientAddr: "192.0.2.1", Received: recv, EventID: "9ec79c33ec9942ab8353589fcb2e04dc"}
	if err := testNormalizer(t).Tree(tr, in); err != nil {
		return "normalize: " + err.Error()
	}
	if err := cfg.ScrubTree(tr); err != nil {
		return "scrub: " + err.Error()
	}
	return string(tr.AppendJSON(nil))
}

// TestLazyPipeline: normalizing and scrubbing a tree with lazy frames
// (relay/event lazy.go) writes byte for byte what the eager tree writes:
// the fixtures and random events with frames, under the default data
// scrubbing and configs whose selectors reach into frames.
func TestLazyPipeline(t *testing.T) {
	lines := bytes.Split(testutil.ErrorEnvelope(), []byte("\n"))
	in := [][]byte{lines[2], bytes.Split(testutil.JSErrorEnvelope(), []byte("\n"))[2]}
	for _, b := range testutil.Fixtures(t, "testdata/events/*", "testdata/sdk/*", "../../envelope/testdata/sdk-envelopes/*",
		"../../envelope/testdata/relay/events/*", "../grouping/testdata/*.json") {
		in = append(in, b)
		in = append(in, bytes.Split(b, []byte("\n"))...)
	}
	r := rand.New(rand.NewPCG(17, 12))
	for range 500 {
		in = append(in, lazyEvent(r))
	}
	var cfgs []*pii.Config
	for _, c := range []string{"", `{"applications":{"$frame.function || $frame.abs_path":["@anything:remove"]}}`,
		`{"applications":{"**":["@common","@anything:hash"]}}`, `{"applications":{"frames.*.lineno":["@anything:mask"]}}`,
		`{"applications":{"$frame.pre_context || $frame.context_line":["@password:replace"]}}`,
		`{"applications":{"$frame.post_context.1":["@anything:remove"]}}`,
		`{"applications":{"$frame.* && $array":["@anything:remove"],"$string":["@creditcard:mask"]}}`} {
		cfg, err := pii.Compile(pii.DataScrubbingSettings{ScrubData: true, ScrubDefaults: true, ScrubIPAddresses: true}, []byte(c))
		if err != nil {
			t.Fatal(err)
		}
		cfgs = append(cfgs, cfg)
	}
	for _, cfg := range cfgs {
		for _, src := range in {
			if got, want := pipeline(t, src, cfg, false), pipeline(t, src, cfg, true); got != want {
				t.Fatalf("%.300s:\nlazy  %s\neager %s", src, got, want)
			}
		}
	}
}

// lazyEvent is an event with frames of what normalize and scrubbing read.
func lazyEvent(r *rand.Rand) []byte {
	keys := []string{"function", "abs_path", "filename", "in_app", "lineno", "colno", "vars", "pre_context",
		"context_line", "password", "module", "platform", "x", "post_context"}
	vals := []string{`"a"`, `"hunter2"`, `"4111111111111111"`, `"/Users/jane/a.js"`, `7`, `true`, `false`,
		`null`, `""`, `{"password":"p"}`, `["a"]`, `"` + strings.Repeat("y", 300) + `"`, `"chrome-extension://x"`,
		`["  const amount = order.total;","  if (!customer) {","    throw new Error(\"no customer\");","  }"]`,
		`"Object.\u003canonymous\u003e"`, `["password","hunter2"]`, `["4111111111111111",2]`, `[]`, `"\ud83d\ude00 \u00e9t\u00e9"`,
		`["` + strings.Repeat("z", 300) + `"]`, `"a\/b\\c"`}
	var frames []string
	for range r.IntN(70) {
		var b strings.Builder
		b.WriteByte('{')
		for i := range r.IntN(6) {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `"%s":%s`, keys[r.IntN(len(keys))], vals[r.IntN(len(vals))])
		}
		b.WriteByte('}')
		frames = append(frames, b.String())
	}
	return fmt.Appendf(nil, `{"platform":"javascript","exception":{"values":[{"type":"E","value":"v","stacktrace":{"frames":[%s]}}]},"stacktrace":{"frames":[%s]}}`,
		strings.Join(frames, ","), strings.Join(frames[:len(frames)/3], ","))
}
