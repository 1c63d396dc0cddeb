package normalize

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// spanAt is a span of op from start to end seconds after 2020-01-01.
func spanAt(op string, start, end string) string {
	return fmt.Sprintf(`{"op":%q,"start_timestamp":%s,"timestamp":%s,"trace_id":"3c79f60c11214eb38604f4ae0781bfb2","span_id":"fa90fdead5f74052"}`, op, start, end)
}

const jan2020 = 1577836800

func at(h, m int) string { return fmt.Sprint(jan2020 + h*3600 + m*60) }

func breakdownsOf(t *testing.T, in string, cfg []Breakdown) (map[string]any, string) {
	t.Helper()
	n := testNormalizer(t)
	out, err := n.Event(nil, []byte(in), &Input{Received: recv, Breakdowns: cfg})
	if err != nil {
		t.Fatal(err)
	}
	var ev map[string]any
	if err := json.Unmarshal(out, &ev); err != nil {
		t.Fatal(err)
	}
	b, _ := ev["breakdowns"].(map[string]any)
	return b, string(out)
}

// Relay's test_emit_ops_breakdown (breakdowns.rs): overlapping db spans
// count once, browser (no match) only in total.time, which is rounded to
// the microsecond; every configured name gets the breakdown.
func TestBreakdownsRelayCase(t *testing.T) {
	spans := []string{
		spanAt("http", at(0, 0), at(1, 0)),
		spanAt("db", at(2, 0), at(3, 0)),
		spanAt("db.postgres", at(2, 30), at(3, 30)),
		spanAt("db.mongo", at(4, 0), at(4, 30)),
		spanAt("browser", at(5, 0), at(6, 0)+".00001"),
	}
	in := `{"spans":[` + strings.Join(spans, ",") + `]}`
	cfg := []Breakdown{{Name: "span_ops", Matches: []string{"http", "db"}}, {Name: "span_ops_2", Matches: []string{"http", "db"}}}
	_, out := breakdownsOf(t, in, cfg)
	const want = `{"ops.db":{"value":7200000.0,"unit":"millisecond"},"ops.http":{"value":3600000.0,"unit":"millisecond"},"total.time":{"value":14400000.01,"unit":"millisecond"}}`
	if !strings.Contains(out, `"breakdowns":{"span_ops":`+want+`,"span_ops_2":`+want+`}`) {
		t.Errorf("got %s\nwant breakdowns span_ops and span_ops_2 = %s", out, want)
	}
}

func TestBreakdownsConfig(t *testing.T) {
	sdk := `"breakdowns":{"span_ops":{"lcp":{"value":420.69}}}`
	defaults := []Breakdown{{Name: "span_ops", Matches: []string{"http", "db", "browser", "resource", "ui"}}}
	withSpans := `{` + sdk + `,"spans":[` + spanAt("http.client", at(0, 0), at(0, 1)) + `,` +
		spanAt("http.client", at(0, 0)+".5", at(0, 2)) + `,` + spanAt("custom", at(0, 1), at(0, 3)) + `]}`
	for _, c := range []struct {
		name, in string
		cfg      []Breakdown
		want     string // the breakdowns as JSON; "" none
	}{
		{"no config keeps the sdk's", `{` + sdk + `}`, nil, `{"span_ops":{"lcp":{"value":420.69}}}`},
		{"empty config removes them", `{` + sdk + `}`, []Breakdown{}, ""},
		{"no spans removes them", `{` + sdk + `}`, defaults, ""},
		{"unknown type emits nothing", withSpans, []Breakdown{{Name: "x"}}, ""},
		{"invalid name emits nothing", withSpans, []Breakdown{{Name: "span ops", Matches: []string{"http"}}}, ""},
		{"union and unmatched ops in total", withSpans, defaults,
			`{"span_ops":{"ops.http":{"unit":"millisecond","value":120000},"total.time":{"unit":"millisecond","value":240000}}}`},
		{"empty match takes every op", withSpans, []Breakdown{{Name: "all", Matches: []string{""}}},
			`{"all":{"ops.":{"unit":"millisecond","value":180000},"total.time":{"unit":"millisecond","value":180000}}}`},
		{"reversed span swapped, spans without op or times skipped",
			`{"spans":[{"op":"db","start_timestamp":` + at(0, 2) + `,"timestamp":` + at(0, 0) + `},{"op":"db","timestamp":` + at(0, 5) +
				`},{"start_timestamp":1,"timestamp":2},{"op":5,"start_timestamp":1,"timestamp":2},"x"]}`, defaults,
			`{"span_ops":{"ops.db":{"unit":"millisecond","value":120000},"total.time":{"unit":"millisecond","value":120000}}}`},
		{"microseconds", `{"spans":[` + spanAt("ui.load", at(0, 0), at(0, 0)+".001234") + `]}`, defaults,
			`{"span_ops":{"ops.ui":{"unit":"millisecond","value":1.234},"total.time":{"unit":"millisecond","value":1.234}}}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			b, out := breakdownsOf(t, c.in, c.cfg)
			if c.want == "" {
				if b != nil || strings.Contains(out, `"breakdowns"`) {
					t.Errorf("breakdowns left: %s", out)
				}
				return
			}
			got, _ := json.Marshal(b)
			if string(got) != c.want {
				t.Errorf("got  %s\nwant %s", got, c.want)
			}
		})
	}
}

// A transaction normalized twice keeps its breakdowns byte for byte.
func TestBreakdownsIdempotent(t *testing.T) {
	n := testNormalizer(t)
	in := &Input{Received: recv, Breakdowns: []Breakdown{{Name: "span_ops", Matches: []string{"db"}}}}
	once, err := n.Event(nil, []byte(tx("")), in)
	if err != nil {
		t.Fatal(err)
	}
	twice, err := n.Event(nil, once, in)
	if err != nil {
		t.Fatal(err)
	}
	if string(once) != string(twice) {
		t.Errorf("once  %s\ntwice %s", once, twice)
	}
	if !strings.Contains(string(once), `"breakdowns":{"span_ops":{"ops.db":{"value":1000.0,"unit":"millisecond"},"total.time":{"value":1000.0,"unit":"millisecond"}}}`) {
		t.Errorf("no breakdowns: %s", once)
	}
}
