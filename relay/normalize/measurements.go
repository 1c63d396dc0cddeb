package normalize

import (
	"bytes"
	"math"
	"strconv"

	"github.com/baton-relay/baton/envelope"
	"github.com/baton-relay/baton/relay/event"
)

// builtinMeasurements are the measurements with a known unit: Relay's
// get_metric_measurement_unit, which is also the builtinMeasurements list of
// Sentry's global config. A built-in measurement sent with another unit is
// dropped; one sent without a unit gets this one.
var builtinMeasurements = map[string]string{
	"fcp": "millisecond", "lcp": "millisecond", "fid": "millisecond", "fp": "millisecond",
	"inp": "millisecond", "ttfb": "millisecond", "ttfb.requesttime": "millisecond", "cls": "none",
	"app_start_cold": "millisecond", "app_start_warm": "millisecond",
	"frames_total": "none", "frames_slow": "none", "frames_slow_rate": "ratio",
	"frames_frozen": "none", "frames_frozen_rate": "ratio",
	"time_to_initial_display": "millisecond", "time_to_full_display": "millisecond",
	"stall_count": "none", "stall_total_time": "millisecond", "stall_longest_time": "millisecond",
	"stall_percentage": "ratio",
}

// maxMobileMs is the longest app start or display time Relay keeps
// (MAX_DURATION_MOBILE_MS): older SDKs send outliers newer ones drop.
const maxMobileMs = 180_000

// measurements is Relay's normalize_measurements for a transaction: the
// dot.case app start names renamed, mobile outliers dropped, units read
// and defaulted, built-ins with a wrong unit dropped, custom measurements
// beyond Options.MaxCustomMeasurements (in name order) and invalid names
// removed with errors and their values in `_meta.measurements`, and the
// derived frame rates and stall percentage added.
func (n *Normalizer) measurements(e *norm, start, end stamp) {
	t, ev := e.t, e.ev
	ms := ev.Get("measurements")
	switch ms.Kind() {
	case event.Null:
		return
	case event.Object:
	default:
		e.invalid("measurements", ms, "expected an object")
		return
	}
	for _, r := range [][2]string{{"app.start.cold", "app_start_cold"}, {"app.start.warm", "app_start_warm"}} {
		if ms.Has(r[0]) {
			t.Rename(ms, r[0], r[1])
		}
	}
	for _, k := range []string{"app_start_cold", "app_start_warm", "time_to_initial_display", "time_to_full_display"} {
		if v, ok := ms.Get(k).Get("value").Float(); ok && v > maxMobileMs {
			t.Delete(ms, k)
		}
	}
	var removed *event.Node
	var errs []event.MetaError
	// Names come in sorted order, so a repeated name is the last one added:
	// replaced, as Set would, without Set's lookup (thousands of dropped
	// measurements would make it quadratic).
	var last string
	remove := func(name string, m *event.Node, reason string) {
		if removed == nil {
			removed = t.NewObject()
		}
		if removed.Len() > 0 && name == last {
			t.Set(removed, name, m)
		} else {
			t.Add(removed, []byte(name), m)
		}
		last = name
		errs = append(errs, e.reason(reason))
	}
	custom := 0
	var drop []int
	for _, i := range t.SortedKeys(ms) {
		name, m := string(ms.Key(i)), ms.Index(i)
		if m.Kind() != event.Object {
			drop = append(drop, i)
			continue
		}
		unit := e.measurementUnit(m, name)
		if !validMetricName(name) {
			drop = append(drop, i)
			remove(name, m, `Metric name contains invalid characters: "`+name+`"`)
			continue
		}
		if u, ok := builtinMeasurements[name]; ok {
			if u != unit {
				drop = append(drop, i)
			}
			continue
		}
		if custom < n.opts.MaxCustomMeasurements {
			custom++
			continue
		}
		drop = append(drop, i)
		remove(name, m, "Too many measurements: "+name)
	}
	t.DeleteAt(ms, drop)
	if removed != nil {
		meta := t.MetaOf(ms)
		meta.Errors = append(meta.Errors, errs...)
		meta.Val = removed
	}
	e.derivedMeasurements(ms, start, end)
}

// measurementUnit reads m's unit as Relay's MetricUnit does and writes it
// back in Relay's spelling, the name's default unit or "none" when it is
// missing; an unreadable unit is removed with an error first.
func (e *norm) measurementUnit(m *event.Node, name string) string {
	t := e.t
	u := m.Get("unit")
	unit, ok := "", false
	if u.Kind() == event.String {
		if unit, ok = envelope.MetricUnit(u.Bytes()); ok && unit == "" {
			unit = string(u.Bytes()) // a custom unit
		}
	}
	if !ok && !u.IsNull() {
		t.Delete(m, "unit")
		meta := t.MetaAt("measurements", name, "unit")
		meta.Errors = append(meta.Errors, e.reason("invalid unit"))
		meta.Val = u
	}
	if !ok {
		if unit, ok = builtinMeasurements[name]; !ok {
			unit = "none"
		}
	}
	if !u.Is(unit) {
		t.Set(m, "unit", t.NewString(unit))
	}
	return unit
}

// validMetricName is Relay's is_valid_metric_name: an ASCII letter, then
// letters, digits, '_', '-' and '.'.
func validMetricName(s string) bool {
	if s == "" || !(s[0] >= 'a' && s[0] <= 'z' || s[0] >= 'A' && s[0] <= 'Z') {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// derivedMeasurements is Relay's compute_measurements: frames_slow_rate and
// frames_frozen_rate from frames_total, stall_percentage from
// stall_total_time (in milliseconds) over the transaction's duration.
func (e *norm) derivedMeasurements(ms *event.Node, start, end stamp) {
	value := func(name string) (float64, bool) { return ms.Get(name).Get("value").Float() }
	if total, ok := value("frames_total"); ok && total > 0 {
		for _, k := range [][2]string{{"frames_frozen", "frames_frozen_rate"}, {"frames_slow", "frames_slow_rate"}} {
			if v, ok := value(k[0]); ok {
				e.setMeasurement(ms, k[1], v/total, "ratio")
			}
		}
	}
	if start.ok && end.ok && end.us > start.us {
		stall := ms.Get("stall_total_time")
		if v, ok := stall.Get("value").Float(); ok && (stall.Get("unit").Is("millisecond") || stall.Get("unit").Is("none")) {
			e.setMeasurement(ms, "stall_percentage", v/(float64(end.us-start.us)/1e3), "ratio")
		}
	}
}

func (e *norm) setMeasurement(ms *event.Node, name string, v float64, unit string) {
	t := e.t
	var buf [32]byte
	num := appendRustFloat(buf[:0], v)
	if old := ms.Get(name); bytes.Equal(old.Get("value").Raw(), num) && old.Get("unit").Is(unit) {
		return
	}
	m := t.NewObject()
	t.Set(m, "value", t.NewNumber(num))
	t.Set(m, "unit", t.NewString(unit))
	t.Set(ms, name, m)
}

// appendRustFloat appends v as Relay (serde_json) writes an f64 in the
// common range: shortest digits, ".0" for a whole number.
func appendRustFloat(dst []byte, v float64) []byte {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return append(dst, '0')
	}
	start := len(dst)
	if a := math.Abs(v); a != 0 && (a < 1e-5 || a >= 1e16) {
		return strconv.AppendFloat(dst, v, 'e', -1, 64)
	}
	dst = strconv.AppendFloat(dst, v, 'f', -1, 64)
	if bytes.IndexByte(dst[start:], '.') < 0 {
		dst = append(dst, ".0"...)
	}
	return dst
}
