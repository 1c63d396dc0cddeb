package normalize

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
)

// TestMeasurements has the cases of Relay's event.rs measurement tests
// (test_computed_measurements, test_filter_custom_measurements,
// test_normalize_units) with the global config's limit of 10 customs.
func TestMeasurements(t *testing.T) {
	n := testNormalizer(t)
	many := `{"frames_slow":{"value":1}`
	for _, c := range "abcdefghijkl" { // 12 customs, 10 kept: a..j
		many += `,"custom_` + string(c) + `":{"value":1}`
	}
	many += `}`
	for _, tc := range []struct {
		name, ms string
		want     map[string]string
	}{
		{"computed", `{"frames_slow":{"value":1},"frames_frozen":{"value":2},"frames_total":{"value":4},"stall_total_time":{"value":4000,"unit":"millisecond"}}`, map[string]string{
			"frames_frozen.unit": `"none"`, "frames_frozen_rate": `{"unit":"ratio","value":0.5}`, "frames_slow_rate": `{"unit":"ratio","value":0.25}`,
			"stall_percentage": `{"unit":"ratio","value":0.8}`, "stall_total_time.unit": `"millisecond"`}},
		{"units defaulted", `{"fcp":{"value":1.1},"stall_count":{"value":3.3},"foo":{"value":8.8}}`, map[string]string{
			"fcp.unit": `"millisecond"`, "stall_count.unit": `"none"`, "foo.unit": `"none"`}},
		{"unit alias", `{"lcp":{"value":1,"unit":"ms"}}`, map[string]string{"lcp.unit": `"millisecond"`}},
		{"custom unit kept", `{"my_metric":{"value":1,"unit":"widgets"}}`, map[string]string{"my_metric.unit": `"widgets"`}},
		{"invalid unit dropped", `{"my_metric":{"value":1,"unit":"not a unit!"}}`, map[string]string{
			"my_metric.unit": `"none"`, "@measurements.my_metric.unit..val": `"not a unit!"`}},
		{"builtin wrong unit dropped", `{"frames_frozen":{"value":666,"unit":"invalid_unit"},"frames_slow":{"value":1}}`, map[string]string{
			"frames_frozen": "null", "frames_slow.value": `1`}},
		{"too many customs", many, map[string]string{
			"custom_j.value": `1`, "custom_k": "null", "custom_l": "null", "frames_slow.value": `1`,
			"@measurements..err.0.1.reason": `"Too many measurements: custom_k"`, "@measurements..val": `{"custom_k":{"unit":"none","value":1},"custom_l":{"unit":"none","value":1}}`}},
		{"invalid name", `{"1bad":{"value":1}}`, map[string]string{"1bad": "null", "@measurements..err.0.1.reason": `"Metric name contains invalid characters: \"1bad\""`}},
		{"app start renamed", `{"app.start.cold":{"value":100}}`, map[string]string{"app_start_cold": `{"unit":"millisecond","value":100}`, "app.start.cold": "null"}},
		{"mobile outlier dropped", `{"app_start_warm":{"value":180001},"time_to_full_display":{"value":180000}}`, map[string]string{"app_start_warm": "null", "time_to_full_display.value": `180000`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := Input{Received: recv}
			out, err := n.Event(nil, []byte(tx(`,"measurements":`+tc.ms)), &in)
			if err != nil {
				t.Fatal(err)
			}
			ev := decode(t, out)
			for path, want := range tc.want {
				p := "measurements." + path
				if rest, ok := strings.CutPrefix(path, "@"); ok {
					p = "_meta." + rest
				}
				if got := js(get(ev, p)); got != want {
					t.Errorf("%s = %s, want %s\n%s", p, got, want, out)
				}
			}
			again, err := n.Event(nil, out, &in)
			if err != nil || string(again) != string(out) {
				t.Errorf("second pass differs (%v):\n%s\n%s", err, out, again)
			}
		})
	}
}

// TestBuiltinMeasurementsMatchGlobalConfig: the built-in measurements and
// the custom limit are those of Sentry's global config (testdata copy of
// a captured one).
func TestBuiltinMeasurementsMatchGlobalConfig(t *testing.T) {
	b, err := os.ReadFile("testdata/global_config.json")
	if err != nil {
		t.Fatal(err)
	}
	var gc struct {
		Measurements struct {
			Builtin []struct{ Name, Unit string } `json:"builtinMeasurements"`
			Max     int                           `json:"maxCustomMeasurements"`
		} `json:"measurements"`
	}
	if err := json.Unmarshal(b, &gc); err != nil {
		t.Fatal(err)
	}
	if gc.Measurements.Max != DefaultMaxCustomMeasurements {
		t.Errorf("maxCustomMeasurements %d, default %d", gc.Measurements.Max, DefaultMaxCustomMeasurements)
	}
	if len(gc.Measurements.Builtin) != len(builtinMeasurements) {
		t.Errorf("%d built-ins in the global config, %d here", len(gc.Measurements.Builtin), len(builtinMeasurements))
	}
	for _, m := range gc.Measurements.Builtin {
		if builtinMeasurements[m.Name] != m.Unit {
			t.Errorf("%s: unit %q here, %q in the global config", m.Name, builtinMeasurements[m.Name], m.Unit)
		}
	}
}

// BenchmarkManyMeasurements is a transaction with 30,000 custom
// measurements, all but 10 removed into _meta: removing them one Delete
// and one Set at a time was quadratic.
func BenchmarkManyMeasurements(b *testing.B) {
	n := testNormalizer(b)
	src := []byte(`{"type":"transaction","start_timestamp":1700000000,"timestamp":1700000001,"contexts":{"trace":{"trace_id":"4c79f60c11214eb38604f4ae0781bfb2","span_id":"fa90fdead5f74052"}},"measurements":{`)
	for i := range 30000 {
		if i > 0 {
			src = append(src, ',')
		}
		src = fmt.Appendf(src, `"m%05d":{"value":1}`, i)
	}
	src = append(src, "}}"...)
	b.SetBytes(int64(len(src)))
	var out []byte
	for b.Loop() {
		var err error
		if out, err = n.Event(out[:0], src, &Input{Received: recv}); err != nil {
			b.Fatal(err)
		}
	}
}
