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
//
// Timestamps are microseconds since the epoch between parse and write; each
// is parsed once and written only when its text changes (see parseTime).
func (n *Normalizer) timestamps(e *norm) {
	ev, in := e.ev, e.in
	received := n.received(in)
	var top [2]stamp // timestamp, start_timestamp
	for i, k := range topStamps {
		if v := ev.Get(k); !v.IsNull() {
			if top[i] = parseTime(v); top[i].ok {
				e.setTime(ev, k, top[i])
			} else {
				e.invalid(k, v, "expected a timestamp")
			}
		}
	}
	if !e.corrected() && !in.SentAt.IsZero() {
		drift := received.Sub(in.SentAt)
		if drift.Abs() >= MinClockDrift {
			e.shiftAll(received.UnixMicro()-in.SentAt.UnixMicro(), &top)
			e.errorAt("clock_drift", e.times(in.SentAt, received), timestampPath...)
		}
	}
	if ts := top[0]; ts.ok {
		tm := time.UnixMicro(ts.us)
		kind := ""
		switch {
		case tm.After(received.Add(n.opts.MaxFuture)):
			kind = "future_timestamp"
		case tm.Before(received.Add(-n.opts.MaxPast)):
			kind = "past_timestamp"
		}
		if kind != "" {
			e.shiftAll(received.UnixMicro()-ts.us, &top)
			e.errorAt(kind, e.times(tm, received), timestampPath...)
		}
	}
	recv := stamp{us: received.UnixMicro(), ok: true}
	e.setTime(ev, "received", recv)
	if !top[0].ok {
		e.setTime(ev, "timestamp", recv)
	}
}

var topStamps = [2]string{"timestamp", "start_timestamp"}

// timestampPath is where clock errors are recorded; shared, since
// Tree.MetaAt keeps the path it is given, so a literal would be allocated
// per event.
var timestampPath = []string{"timestamp"}

// corrected reports whether an earlier pass corrected the event's
// timestamps: `_meta.timestamp` has a clock_drift, past_timestamp or
// future_timestamp error.
func (e *norm) corrected() bool {
	if !e.has(rkMeta) {
		return false
	}
	l := e.ev.Get("_meta").Get("timestamp").Get("").Get("err")
	for i := range l.Len() {
		x := l.Index(i)
		if x.Kind() == event.Array && x.Len() > 0 {
			x = x.Index(0)
		}
		if x.Is("clock_drift") || x.Is("past_timestamp") || x.Is("future_timestamp") {
			return true
		}
	}
	return false
}

// times is the data of a clock error: the SDK's and the server's time.
func (e *norm) times(sdk, server time.Time) *event.Node {
	o := e.t.NewObject()
	var buf [40]byte
	e.t.Set(o, "sdk_time", e.t.NewString(string(appendRFC3339(buf[:0], sdk))))
	e.t.Set(o, "server_time", e.t.NewString(string(appendRFC3339(buf[:0], server))))
	return o
}

// stamp is a parsed timestamp: microseconds since the epoch; canonical
// when its JSON text is already the one appendMicros writes.
type stamp struct {
	us            int64
	ok, canonical bool
}

// setTime sets key of o to ts as Relay writes timestamps, leaving a value
// already written so as it is.
func (e *norm) setTime(o *event.Node, key string, ts stamp) {
	if ts.canonical {
		return
	}
	var buf [32]byte
	b := appendMicros(buf[:0], ts.us)
	i := o.Find(key)
	if i < 0 {
		e.t.Set(o, key, e.t.NewNumber(b))
		return
	}
	if v := o.Index(i); v.Kind() == event.Number && bytes.Equal(v.Raw(), b) {
		return
	}
	e.t.SetIndex(o, i, e.t.NewNumber(b))
}

// shiftAll adds us microseconds (a time.Duration would overflow for
// timestamps centuries away) to every timestamp of the event Relay corrects:
// the event's (top, already parsed), breadcrumbs' and spans'. One shifted
// out of Relay's range is removed.
func (e *norm) shiftAll(us int64, top *[2]stamp) {
	move := func(o *event.Node, key string, ts stamp) stamp {
		if !ts.ok {
			return ts
		}
		v := ts.us + us
		if v < 0 || v > maxTimestamp*1e6 {
			e.t.Delete(o, key)
			return stamp{}
		}
		ts = stamp{us: v, ok: true}
		e.setTime(o, key, ts)
		return ts
	}
	shift := func(o *event.Node, key string) { move(o, key, parseTime(o.Get(key))) }
	for i, k := range topStamps {
		top[i] = move(e.ev, k, top[i])
	}
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
// missing. The common forms, seconds with at most 6 decimals and RFC 3339,
// are read by hand (parseDecimal, parseISO); whatever they do not take goes
// through strconv.ParseFloat and time.Parse (parseTimeSlow), which give the
// same value for what they take (TestParseTimeFast).
func parseTime(v *event.Node) stamp {
	switch v.Kind() {
	case event.Number:
		if ts, ok := parseDecimal(v.Raw()); ok {
			return ts
		}
	case event.String:
		s := bytes.TrimSpace(v.Bytes())
		if ts, ok := parseISO(s); ok {
			return ts
		}
		if ts, ok := parseDecimal(s); ok {
			ts.canonical = false // a string is rewritten as a number
			return ts
		}
	}
	return parseTimeSlow(v)
}

// parseTimeSlow is parseTime by strconv.ParseFloat and time.Parse.
func parseTimeSlow(v *event.Node) stamp {
	var secs float64
	switch v.Kind() {
	case event.Number:
		f, ok := v.Float()
		if !ok {
			return stamp{}
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
					return stamp{}
				}
				return stamp{us: tm.UnixMicro(), ok: true}
			}
		}
		return stamp{}
	default:
		return stamp{}
	}
	// Relay's range: 0 up to year 9999.
	if math.IsNaN(secs) || secs < 0 || secs > maxTimestamp {
		return stamp{}
	}
	whole, frac := math.Modf(secs)
	return stamp{us: int64(whole)*1e6 + int64(math.Round(frac*1e6)), ok: true}
}

// parseDecimal reads seconds written as digits with at most 6 decimals
// and below 2^32 (year 2106): for those the float64 that ParseFloat gives,
// split and rounded to microseconds as parseTimeSlow does, is within half
// a microsecond of the exact value, so the exact value is the result.
func parseDecimal(s []byte) (stamp, bool) {
	i, secs := 0, int64(0)
	for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
		if i == 10 {
			return stamp{}, false
		}
		secs = secs*10 + int64(s[i]-'0')
	}
	if i == 0 || secs >= 1<<32 {
		return stamp{}, false
	}
	leadingZero := i > 1 && s[0] == '0'
	if i == len(s) {
		return stamp{us: secs * 1e6, ok: true}, true // "5" is written "5.0"
	}
	if s[i] != '.' || i+1 == len(s) || len(s)-i-1 > 6 {
		return stamp{}, false
	}
	frac, digits := int64(0), 0
	for _, c := range s[i+1:] {
		if c < '0' || c > '9' {
			return stamp{}, false
		}
		frac = frac*10 + int64(c-'0')
		digits++
	}
	for range 6 - digits {
		frac *= 10
	}
	// As appendMicros writes it: ".0" for a whole second, else no
	// trailing zero.
	last := s[len(s)-1]
	canonical := !leadingZero && (frac == 0 && digits == 1 || frac != 0 && last != '0')
	return stamp{us: secs*1e6 + frac, ok: true, canonical: canonical}, true
}

// parseISO reads YYYY-MM-DD(T| )hh:mm:ss(.f{1,9})?(Z|±hh:mm)? with every
// field in range, as time.Parse does for the layouts of parseTimeSlow; it
// leaves anything else to time.Parse.
func parseISO(s []byte) (stamp, bool) {
	if len(s) < 19 || s[4] != '-' || s[7] != '-' || s[10] != 'T' && s[10] != ' ' || s[13] != ':' || s[16] != ':' {
		return stamp{}, false
	}
	num := func(b []byte) int {
		n := 0
		for _, c := range b {
			if c < '0' || c > '9' {
				return -1
			}
			n = n*10 + int(c-'0')
		}
		return n
	}
	year, month, day := num(s[0:4]), num(s[5:7]), num(s[8:10])
	hour, minute, sec := num(s[11:13]), num(s[14:16]), num(s[17:19])
	if year < 1970 || month < 1 || month > 12 || day < 1 || day > daysIn(month, year) ||
		hour < 0 || hour > 23 || minute < 0 || minute > 59 || sec < 0 || sec > 59 {
		return stamp{}, false
	}
	rest := s[19:]
	nsec := 0
	if len(rest) > 0 && rest[0] == '.' {
		j := 1
		for j < len(rest) && rest[j] >= '0' && rest[j] <= '9' {
			j++
		}
		if j == 1 || j > 10 {
			return stamp{}, false
		}
		nsec = num(rest[1:j])
		for range 10 - j {
			nsec *= 10
		}
		rest = rest[j:]
	}
	offset := 0
	switch {
	case len(rest) == 0 || len(rest) == 1 && rest[0] == 'Z':
	case len(rest) == 6 && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':':
		oh, om := num(rest[1:3]), num(rest[4:6])
		if oh < 0 || oh > 23 || om < 0 || om > 59 {
			return stamp{}, false
		}
		offset = (oh*60 + om) * 60
		if rest[0] == '-' {
			offset = -offset
		}
	default:
		return stamp{}, false
	}
	secs := time.Date(year, time.Month(month), day, hour, minute, sec, 0, time.UTC).Unix() - int64(offset)
	if secs < 0 || secs > maxTimestamp {
		return stamp{}, false // year out of Relay's range in UTC: time.Parse decides
	}
	return stamp{us: secs*1e6 + int64(nsec/1e3), ok: true}, true
}

func daysIn(month, year int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// appendTime appends a timestamp as Relay writes it: seconds with
// microseconds.
func appendTime(dst []byte, t time.Time) []byte { return appendMicros(dst, t.UnixMicro()) }

// appendMicros appends us microseconds since the epoch as Relay writes a
// timestamp: seconds, then ".0" or the microseconds without trailing
// zeros.
func appendMicros(dst []byte, us int64) []byte {
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

// rfc3339Layout is how Relay writes the times of a clock error.
const rfc3339Layout = "2006-01-02T15:04:05.999999-07:00"

// appendRFC3339 appends t in UTC as rfc3339Layout, without time.Format's
// layout interpretation for the years Relay's range has.
func appendRFC3339(dst []byte, t time.Time) []byte {
	t = t.UTC()
	year, month, day := t.Date()
	if year < 0 || year > 9999 {
		return t.AppendFormat(dst, rfc3339Layout)
	}
	hour, minute, sec := t.Clock()
	two := func(dst []byte, v int) []byte { return append(dst, byte('0'+v/10), byte('0'+v%10)) }
	dst = append(dst, byte('0'+year/1000), byte('0'+year/100%10), byte('0'+year/10%10), byte('0'+year%10), '-')
	dst = append(two(dst, int(month)), '-')
	dst = append(two(dst, day), 'T')
	dst = append(two(dst, hour), ':')
	dst = append(two(dst, minute), ':')
	dst = two(dst, sec)
	if us := t.Nanosecond() / 1e3; us > 0 {
		dst = append(dst, '.')
		for d := int(1e5); d > 0 && us > 0; d /= 10 {
			dst = append(dst, byte('0'+us/d))
			us %= d
		}
	}
	return append(dst, "+00:00"...)
}
