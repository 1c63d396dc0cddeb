package normalize

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/baton-relay/baton/relay/event"
)

// TestParseTimeFast checks that parseTime's hand-written paths give what
// strconv.ParseFloat and time.Parse give (parseTimeSlow), and that a value
// they call canonical is what appendMicros writes.
func TestParseTimeFast(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	cases := []string{`0`, `0.5`, `1.0`, `1.50`, `4294967295.999999`, `4294967296.5`, `1795600790`, `1795600790.0`, `1795600790.00`,
		`1795600790.1234567`, `1e9`, `"1795600790.5"`, `" 1795600790.5 "`, `"5."`, `-1.5`, `"-1"`,
		`"2026-11-25T09:59:00Z"`, `"2026-11-25T09:59:00"`, `"2026-11-25 09:59:00.25+01:30"`, `"2026-11-25 09:59:00"`,
		`"2026-02-29T00:00:00Z"`, `"2024-02-29T00:00:00Z"`, `"2026-11-25T24:00:00Z"`, `"2026-11-25T23:59:60Z"`,
		`"2026-11-25T09:59:00.1234567891Z"`, `"2026-11-25T09:59:00.Z"`, `"2026-11-25T09:59:00,5Z"`, `"2026-11-25t09:59:00Z"`,
		`"2026-11-25T09:59:00+24:00"`, `"2026-11-25T09:59:00-00:00"`, `"2026-11-25T09:59:00z"`, `"1970-01-01T00:30:00+01:00"`,
		`"9999-12-31T23:59:59.999999Z"`, `"9999-12-31T23:59:59-01:00"`, `"1969-12-31T23:59:59Z"`, `"2026-13-01T00:00:00Z"`}
	for range 20000 {
		secs := r.Int64N(1 << 33)
		frac := r.Int64N(1e6)
		digits := 1 + r.IntN(6)
		f := fmt.Sprintf("%06d", frac)[:digits]
		cases = append(cases, fmt.Sprintf("%d.%s", secs, f), strconv.FormatFloat(r.Float64()*4e9, 'f', -1, 64))
		tm := time.Unix(r.Int64N(maxTimestamp), r.Int64N(1e9)).UTC()
		zone := []string{"Z", "", "+05:30", "-11:00"}[r.IntN(4)]
		sep := []string{"T", " "}[r.IntN(2)]
		layout := "2006-01-02" + sep + "15:04:05" + []string{"", ".9", ".999999", ".000000000"}[r.IntN(4)]
		cases = append(cases, `"`+tm.Format(layout)+zone+`"`)
	}
	for _, c := range cases {
		tr, err := event.Parse([]byte(c))
		if err != nil {
			t.Fatalf("%s: %v", c, err)
		}
		v := tr.Root()
		fast, slow := parseTime(v), parseTimeSlow(v)
		if fast.us != slow.us || fast.ok != slow.ok {
			t.Errorf("%s: parseTime %+v, parseTimeSlow %+v", c, fast, slow)
		}
		if fast.canonical && (v.Kind() != event.Number || string(appendMicros(nil, fast.us)) != string(v.Raw())) {
			t.Errorf("%s: canonical, but written %s", c, appendMicros(nil, fast.us))
		}
		tr.Release()
	}
}

// TestAppendRFC3339 checks the hand-written RFC 3339 against time.Format.
func TestAppendRFC3339(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	times := []time.Time{{}, time.Unix(0, 0), time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 11, 25, 8, 0, 0, 120000500, time.FixedZone("x", 3600))}
	for range 20000 {
		times = append(times, time.Unix(r.Int64N(maxTimestamp), r.Int64N(1e9)))
	}
	for _, tm := range times {
		if got, want := string(appendRFC3339(nil, tm)), tm.UTC().Format(rfc3339Layout); got != want {
			t.Errorf("%v: %s, want %s", tm, got, want)
		}
	}
}
