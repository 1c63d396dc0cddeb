package normalize

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/baton-relay/baton/relay/event"
)

// timestamps follows Relay's order: correct clock drift from the
// envelope's sent_at (only when it is at least MinClockDrift), then clamp an
// event timestamp outside [received-MaxPast, received+MaxFuture] to the
// receive time by the same shift (error past_timestamp / future_timestamp),
// then set received and a missing timestamp. A corrected event carries a
// clock_drift/…_timestamp error in `_meta.timestamp`, which keeps a second
// pass from shifting it by sent_at again (a clamped timestamp is the receive
// time, in range).
func (n *Normalizer) timestamps(e *norm) {
	ev, in := e.ev, e.in
	received := n.received(in)
	for _, k := range []string{"timestamp", "start_timestamp"} {
		if v := ev.Get(k); !v.IsNull() {
			if tm, ok := parseTime(v); ok {
				e.setTime(ev, k, tm)
			} else {
				e.invalid(k, v, "expected a timestamp")
			}
		}
	}
	corrected := e.hasMetaError("timestamp", "clock_drift") || e.hasMetaError("timestamp", "past_timestamp") || e.hasMetaError("timestamp", "future_timestamp")
	if !corrected && !in.SentAt.IsZero() {
		drift := received.Sub(in.SentAt)
		if drift.Abs() >= MinClockDrift {
			e.shiftAll(received.UnixMicro() - in.SentAt.UnixMicro())
			e.errorAt("clock_drift", e.times(in.SentAt, received), "timestamp")
			corrected = true
		}
	}
	if ts := ev.Get("timestamp"); !ts.IsNull() {
		tm, _ := parseTime(ts)
		kind := ""
		switch {
		case tm.After(received.Add(n.opts.MaxFuture)):
			kind = "future_timestamp"
		case tm.Before(received.Add(-n.opts.MaxPast)):
			kind = "past_timestamp"
		}
		if kind != "" {
			e.shiftAll(received.UnixMicro() - tm.UnixMicro())
			e.errorAt(kind, e.times(tm, received), "timestamp")
		}
	}
	e.setTime(ev, "received", received)
	if ev.Get("timestamp").IsNull() {
		e.setTime(ev, "timestamp", received)
	}
}

// times is the data of a clock error: the SDK's and the server's time.
func (e *norm) times(sdk, server time.Time) *event.Node {
	o := e.t.NewObject()
	e.t.Set(o, "sdk_time", e.t.NewString(rfc3339(sdk)))
	e.t.Set(o, "server_time", e.t.NewString(rfc3339(server)))
	return o
}

// setTime sets key of o to tm as Relay writes timestamps, leaving a value
// already written so as it is.
func (e *norm) setTime(o *event.Node, key string, tm time.Time) {
	var buf [32]byte
	b := appendTime(buf[:0], tm)
	if v := o.Get(key); v.Kind() == event.Number && bytes.Equal(v.Raw(), b) {
		return
	}
	e.t.Set(o, key, e.t.NewNumber(b))
}

// shiftAll adds us microseconds (a time.Duration would overflow for
// timestamps centuries away) to every timestamp of the event Relay corrects:
// the event's, breadcrumbs' and spans'. One shifted out of Relay's range is
// removed.
func (e *norm) shiftAll(us int64) {
	shift := func(o *event.Node, key string) {
		if tm, ok := parseTime(o.Get(key)); ok {
			v := tm.UnixMicro() + us
			if v < 0 || v > maxTimestamp*1e6 {
				e.t.Delete(o, key)
				return
			}
			e.setTime(o, key, time.UnixMicro(v))
		}
	}
	shift(e.ev, "timestamp")
	shift(e.ev, "start_timestamp")
	if l := e.values("breadcrumbs"); l != nil {
		for i := range l.Len() {
			shift(l.Index(i), "timestamp")
		}
	}
	if spans := e.ev.Get("spans"); spans.Kind() == event.Array {
		for i := range spans.Len() {
			shift(spans.Index(i), "timestamp")
			shift(spans.Index(i), "start_timestamp")
		}
	}
}

// maxTimestamp is 9999-12-31T23:59:59Z, the end of Relay's range.
const maxTimestamp = 253402300799

// parseTime reads a timestamp as Relay accepts it: seconds since the epoch
// (number or numeric string) or ISO 8601 / RFC 3339, UTC when the zone is
// missing.
func parseTime(v *event.Node) (time.Time, bool) {
	var secs float64
	switch v.Kind() {
	case event.Number:
		f, ok := v.Float()
		if !ok {
			return time.Time{}, false
		}
		secs = f
	case event.String:
		s := strings.TrimSpace(string(v.Bytes()))
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

// appendTime appends a timestamp as Relay writes it: seconds with
// microseconds.
func appendTime(dst []byte, t time.Time) []byte {
	us := t.UnixMicro()
	dst = strconv.AppendInt(dst, us/1e6, 10)
	frac := us % 1e6
	if frac == 0 {
		return append(dst, ".0"...)
	}
	dst = append(dst, '.')
	for d := int64(1e5); d > 0 && frac > 0; d /= 10 {
		dst = append(dst, byte('0'+frac/d))
		frac %= d
	}
	return dst
}

// timeValue is appendTime for encoding/json (NEL).
func timeValue(t time.Time) json.Number { return json.Number(appendTime(nil, t)) }

func rfc3339(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.999999-07:00") }
