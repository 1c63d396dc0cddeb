package normalize

import (
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"time"
)

// normalizeTimestamps follows Relay's order: correct clock drift from the
// envelope's sent_at (only when it is at least MinClockDrift), then clamp an
// event timestamp outside [received-MaxPast, received+MaxFuture] to the
// receive time by the same shift (error past_timestamp / future_timestamp),
// then set received and a missing timestamp. A corrected event carries a
// clock_drift/…_timestamp error, which keeps a second pass from shifting it
// by sent_at again (a clamped timestamp is the receive time, in range).
func (n *Normalizer) normalizeTimestamps(ev map[string]any, in *Input, m *meta) {
	received := n.received(in)
	for _, k := range []string{"timestamp", "start_timestamp"} {
		if v, ok := ev[k]; ok && v != nil {
			if t, ok := parseTime(v); ok {
				ev[k] = timeValue(t)
			} else {
				m.invalid(k, v, "expected a timestamp")
			}
		}
	}
	corrected := hasError(ev, "clock_drift") || hasError(ev, "past_timestamp") || hasError(ev, "future_timestamp")
	if !corrected && !in.SentAt.IsZero() {
		drift := received.Sub(in.SentAt)
		if drift.Abs() >= MinClockDrift {
			shiftAll(ev, received.UnixMicro()-in.SentAt.UnixMicro())
			m.errorAt([]string{"timestamp"}, "clock_drift", map[string]any{
				"sdk_time": rfc3339(in.SentAt), "server_time": rfc3339(received)})
			corrected = true
		}
	}
	if ts, ok := ev["timestamp"]; ok {
		t, _ := parseTime(ts)
		kind := ""
		switch {
		case t.After(received.Add(n.opts.MaxFuture)):
			kind = "future_timestamp"
		case t.Before(received.Add(-n.opts.MaxPast)):
			kind = "past_timestamp"
		}
		if kind != "" {
			shiftAll(ev, received.UnixMicro()-t.UnixMicro())
			m.errorAt([]string{"timestamp"}, kind, map[string]any{
				"sdk_time": rfc3339(t), "server_time": rfc3339(received)})
		}
	}
	ev["received"] = timeValue(received)
	if _, ok := ev["timestamp"]; !ok {
		ev["timestamp"] = timeValue(received)
	}
}

// shiftAll adds us microseconds (a time.Duration would overflow for
// timestamps centuries away) to every timestamp of the event Relay corrects:
// the event's, breadcrumbs' and spans'. One shifted out of Relay's range is
// removed.
func shiftAll(ev map[string]any, us int64) {
	shift := func(o map[string]any, key string) {
		if t, ok := parseTime(o[key]); ok {
			v := t.UnixMicro() + us
			if v < 0 || v > maxTimestamp*1e6 {
				delete(o, key)
				return
			}
			o[key] = timeValue(time.UnixMicro(v))
		}
	}
	shift(ev, "timestamp")
	shift(ev, "start_timestamp")
	for _, b := range values(ev, "breadcrumbs") {
		if o, ok := b.(map[string]any); ok {
			shift(o, "timestamp")
		}
	}
	spans, _ := ev["spans"].([]any)
	for _, s := range spans {
		if o, ok := s.(map[string]any); ok {
			shift(o, "timestamp")
			shift(o, "start_timestamp")
		}
	}
}

// maxTimestamp is 9999-12-31T23:59:59Z, the end of Relay's range.
const maxTimestamp = 253402300799

// parseTime reads a timestamp as Relay accepts it: seconds since the epoch
// (number or numeric string) or ISO 8601 / RFC 3339, UTC when the zone is
// missing.
func parseTime(v any) (time.Time, bool) {
	var secs float64
	switch t := v.(type) {
	case json.Number:
		f, err := t.Float64()
		if err != nil {
			return time.Time{}, false
		}
		secs = f
	case string:
		s := strings.TrimSpace(t)
		if f, err := strconv.ParseFloat(s, 64); err == nil {
			secs = f
			break
		}
		for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05.999999999Z07:00", "2006-01-02 15:04:05.999999999"} {
			if tm, err := time.Parse(layout, s); err == nil {
				if y := tm.UTC().Year(); y < 1970 || y > 9999 {
					return time.Time{}, false
				}
				return tm.UTC(), true
			}
		}
		return time.Time{}, false
	default:
		return time.Time{}, false
	}
	// Relay's range: 0 up to year 9999.
	if math.IsNaN(secs) || secs < 0 || secs > maxTimestamp {
		return time.Time{}, false
	}
	whole, frac := math.Modf(secs)
	return time.Unix(int64(whole), int64(math.Round(frac*1e6))*1e3).UTC(), true
}

// timeValue is a timestamp as Relay writes it: seconds with microseconds.
func timeValue(t time.Time) json.Number {
	us := t.UnixMicro()
	s := strconv.FormatInt(us/1e6, 10)
	if frac := us % 1e6; frac != 0 {
		f := strconv.FormatInt(1e6+frac, 10)[1:]
		s += "." + strings.TrimRight(f, "0")
	} else {
		s += ".0"
	}
	return json.Number(s)
}

func rfc3339(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.999999-07:00") }
