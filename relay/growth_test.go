package relay

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/baton-relay/baton/envelope"
	"github.com/baton-relay/baton/relay/internal/testutil"
	"github.com/baton-relay/baton/relay/normalize"
	"github.com/baton-relay/baton/relay/policy"
	"github.com/baton-relay/baton/relay/project"
)

// growthState is a project with every inbound filter on (none matching
// the grown events), Relay's default data scrubbing and a piiConfig, so
// that the growth test runs each stage the way ingest does.
const growthState = `{"projectId":1,"publicKeys":[{"publicKey":"a7c3e9f1b5d24680ace13579bdf02468"}],"config":{
	"filterSettings":{"browserExtensions":{"isEnabled":true},"webCrawlers":{"isEnabled":true},"localhost":{"isEnabled":true},
		"legacyBrowsers":{"isEnabled":true,"options":["default"]},"errorMessages":{"patterns":["*ResizeObserver loop*","ChunkLoadError*"]},
		"csp":{"disallowedSources":["chrome-extension://*"]},"releases":{"releases":["0.9.*"]},
		"ignoreTransactions":{"isEnabled":true,"patterns":["*/health"]},
		"generic":{"version":1,"filters":[{"id":"beta","isEnabled":true,"condition":{"op":"eq","name":"event.user.segment","value":"beta"}}]}},
	"datascrubbingSettings":{"scrubData":true,"scrubDefaults":true,"scrubIpAddresses":true,"sensitiveFields":["token"]},
	"piiConfig":{"applications":{"$string":["@email:replace","@creditcard:mask"]}}}}`

// growthShapes build an event whose size grows with n in one dimension
// each (Relay's trimming limits are kept out of reach where they would
// cap the growth), plus one growing in all at once.
var growthShapes = map[string]func(n int) string{
	"tags": func(n int) string {
		var b strings.Builder
		for i := range n {
			fmt.Fprintf(&b, `,"tag%d":"value %d for jane%d@example.com"`, i, i, i)
		}
		return `{"message":"checkout failed","tags":{"page":"checkout"` + b.String() + `}}`
	},
	"extra": func(n int) string {
		var b strings.Builder
		for i := range n {
			fmt.Fprintf(&b, `,"k%d":{"password":"s%d","ip":"10.0.%d.%d","note":"ok"}`, i, i, i/256%256, i%256)
		}
		return `{"message":"checkout failed","extra":{"a":1` + b.String() + `}}`
	},
	"frames": func(n int) string {
		var b strings.Builder
		for i := range n {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `{"abs_path":"https://example.com/app%d.js","function":"fn%d","lineno":%d,"colno":7,"in_app":true,"vars":{"token":"t%d","i":%d}}`, i, i, i+1, i, i)
		}
		return `{"exception":[{"type":"TypeError","value":"x is undefined","stacktrace":{"frames":[` + b.String() + `]}}]}`
	},
	"breadcrumbs": func(n int) string {
		var b strings.Builder
		for i := range n {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `{"timestamp":1764064700.%03d,"category":"ui.click","message":"clicked %d by bob%d@example.com","data":{"i":%d}}`, i%1000, i, i, i)
		}
		return `{"message":"checkout failed","breadcrumbs":{"values":[` + b.String() + `]}}`
	},
	"headers": func(n int) string {
		var b strings.Builder
		for i := range n {
			fmt.Fprintf(&b, `,"X-H%d":"v%d"`, i, i)
		}
		return `{"message":"checkout failed","request":{"url":"https://example.com/c?q=1","headers":{"User-Agent":"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"` + b.String() + `}}}`
	},
	"message": func(n int) string {
		return `{"logentry":{"message":"` + strings.Repeat("failed %s at 4111 1111 1111 1111 ", n) + `","params":["x"]}}`
	},
	"exceptions": func(n int) string {
		var b strings.Builder
		for i := range n {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `{"type":"Error%d","value":"failed for ann%d@example.com","mechanism":{"type":"generic","handled":false,"exception_id":%d}}`, i, i, i)
		}
		return `{"exception":{"values":[` + b.String() + `]}}`
	},
	"contexts": func(n int) string {
		var b strings.Builder
		for i := range n {
			fmt.Fprintf(&b, `,"c%d":{"type":"custom","value":"v%d","token":"x%d"}`, i, i, i)
		}
		return `{"message":"checkout failed","contexts":{"os":{"name":"Linux"}` + b.String() + `}}`
	},
	"spans": func(n int) string {
		var b strings.Builder
		for i := range n {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `{"span_id":"%016x","parent_span_id":"aaaaaaaaaaaaaaaa","trace_id":"4c79f60c11214eb38604f4ae0781bfb2","op":"db","description":"SELECT %d","start_timestamp":1764064790.0,"timestamp":1764064790.5}`, i+1, i)
		}
		return `{"type":"transaction","transaction":"/checkout","start_timestamp":1764064790.0,"timestamp":1764064791.0,` +
			`"contexts":{"trace":{"trace_id":"4c79f60c11214eb38604f4ae0781bfb2","span_id":"aaaaaaaaaaaaaaaa","op":"http.server"}},"spans":[` + b.String() + `]}`
	},
}

// growthRun processes src once as ingest does: normalize, filter, scrub.
func growthRun(tb testing.TB, p *processor, e *policy.Enforcer, st *project.State, kind envelope.ItemType, src []byte, buf []byte) []byte {
	a := policy.Admission{ProjectID: 1, State: st}
	var items [envelope.NumClasses]int
	items[envelope.ClassError], items[envelope.ClassTransaction] = 1, 1
	var v policy.Verdict
	in := normalize.Input{ClientAddr: "192.0.2.1", Received: time.Unix(1764064800, 0)}
	out, _, err := p.event(buf[:0], kind, src, &in, true, st, nil, func(ev policy.Event) bool { return e.Filter(&v, &a, &items, ev) }, nil)
	if err != nil {
		tb.Fatalf("%.80s: %v", src, err)
	}
	return out
}

// growthBase is each shape's 1× size, an event of some 3–8 KB like the
// load tool's (frames, headers and the message are capped by Relay's
// trimming, so their 16× costs less than 16 times as much).
var growthBase = map[string]int{"tags": 96, "extra": 96, "frames": 32, "breadcrumbs": 48, "headers": 96, "message": 64, "spans": 24, "exceptions": 48, "contexts": 64}

// growthCost is the allocations and the CPU time (the process's, so the
// garbage collector's share counts and other processes' does not) of one
// growthRun of src, over enough runs to last 100 ms, at least 5.
func growthCost(t *testing.T, p *processor, e *policy.Enforcer, st *project.State, kind envelope.ItemType, src []byte) (allocs float64, cpu time.Duration) {
	var buf []byte
	buf = growthRun(t, p, e, st, kind, src, buf)
	allocs = testing.AllocsPerRun(3, func() { buf = growthRun(t, p, e, st, kind, src, buf) })
	runtime.GC()
	start, c0, runs := time.Now(), cpuTime(), 0
	for ; runs < 5 || time.Since(start) < 100*time.Millisecond; runs++ {
		buf = growthRun(t, p, e, st, kind, src, buf)
	}
	return allocs, (cpuTime() - c0) / time.Duration(runs)
}

// TestLinearGrowth: what ingest does to an event (normalize, inbound
// filters, PII scrubbing) costs in proportion to its size: an event 16
// times as large in any one dimension (tags, extra, frames, breadcrumbs,
// headers, message, spans) costs at most ~16 times the allocations and
// CPU, never a power of its size. The bounds leave room for the tree pool
// keeping only 16k nodes (larger trees allocate theirs afresh) and for a
// noisy machine; a quadratic step would cost ~256 times.
func TestLinearGrowth(t *testing.T) {
	if testutil.RaceEnabled {
		t.Skip("allocations and CPU are not measured under -race")
	}
	st, err := project.DecodeState([]byte(growthState))
	if err != nil || st.PIIErr != nil {
		t.Fatal(err, st.PIIErr)
	}
	p, e := testProcessor(t), policy.NewEnforcer(policy.Options{})
	for name, shape := range growthShapes {
		kind := envelope.ItemEvent
		if name == "spans" {
			kind = envelope.ItemTransaction
		}
		base := growthBase[name]
		small, large := []byte(shape(base)), []byte(shape(16*base))
		a1, t1 := growthCost(t, p, e, st, kind, small)
		a16, t16 := growthCost(t, p, e, st, kind, large)
		ra, rt := a16/a1, float64(t16)/float64(t1)
		// CPU time on a shared machine is noisy where allocations are
		// not: a ratio past the bound is measured again (the best of
		// three counts) before it is called super-linear.
		for retry := 0; retry < 2 && rt > 32; retry++ {
			_, s1 := growthCost(t, p, e, st, kind, small)
			_, s16 := growthCost(t, p, e, st, kind, large)
			rt = min(rt, float64(s16)/float64(s1))
		}
		t.Logf("%-11s %6d → %7d bytes: allocs %6.0f → %7.0f (×%4.1f), cpu %8v → %9v (×%4.1f)", name, len(small), len(large), a1, a16, ra, t1, t16, rt)
		if ra > 20 {
			t.Errorf("%s: 16× the size costs %.1f× the allocations, want ≤ 20×", name, ra)
		}
		if rt > 32 {
			t.Errorf("%s: 16× the size costs %.1f× the CPU, want ≤ 32×", name, rt)
		}
	}
}

// BenchmarkGrowth runs each growth shape at 1× and 16× (go test -bench
// Growth -cpuprofile to find what grows faster than the input).
func BenchmarkGrowth(b *testing.B) {
	st, err := project.DecodeState([]byte(growthState))
	if err != nil {
		b.Fatal(err)
	}
	p, e := testProcessor(&testing.T{}), policy.NewEnforcer(policy.Options{})
	for name, shape := range growthShapes {
		for _, k := range []int{1, 16} {
			b.Run(fmt.Sprintf("%s/%dx", name, k), func(b *testing.B) {
				src := []byte(shape(k * growthBase[name]))
				kind := envelope.ItemEvent
				if name == "spans" {
					kind = envelope.ItemTransaction
				}
				var buf []byte
				b.SetBytes(int64(len(src)))
				b.ReportAllocs()
				for b.Loop() {
					buf = growthRun(b, p, e, st, kind, src, buf)
				}
			})
		}
	}
}
