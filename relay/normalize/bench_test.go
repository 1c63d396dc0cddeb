package normalize

import (
	"testing"
	"time"

	"github.com/baton-relay/baton/envelope"
	"github.com/baton-relay/baton/relay/event"
	"github.com/baton-relay/baton/relay/internal/testutil"
	"github.com/baton-relay/baton/relay/pii"
)

// BenchmarkEvent normalizes the load tool's 5 KB JavaScript error event.
func BenchmarkEvent(b *testing.B) {
	env, err := envelope.Parse(testutil.ErrorEnvelope())
	if err != nil {
		b.Fatal(err)
	}
	src := env.Items[0].Payload
	n := testNormalizer(b)
	in := &Input{ClientAddr: "192.0.2.1", Received: recv, EventID: "9ec79c33ec9942ab8353589fcb2e04dc"}
	dst := make([]byte, 0, 8<<10)
	b.SetBytes(int64(len(src)))
	b.ReportAllocs()
	defer testutil.CPUTime(b)()
	for b.Loop() {
		if dst, err = n.Event(dst[:0], src, in); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPipeline is what ingest does to an event when it both
// normalizes and scrubs: parse once, normalize, scrub with the default data
// scrubbing settings, write once. flat is the load event of flat frames,
// js the load tool's shape (testutil.JSErrorEnvelope).
func BenchmarkPipeline(b *testing.B) {
	b.Run("flat", func(b *testing.B) { benchPipeline(b, testutil.ErrorEnvelope()) })
	b.Run("js", func(b *testing.B) { benchPipeline(b, testutil.JSErrorEnvelope()) })
}

func benchPipeline(b *testing.B, body []byte) {
	env, err := envelope.Parse(body)
	if err != nil {
		b.Fatal(err)
	}
	src := env.Items[0].Payload
	n := testNormalizer(b)
	cfg, err := pii.Compile(pii.DataScrubbingSettings{ScrubData: true, ScrubDefaults: true, ScrubIPAddresses: true}, nil)
	if err != nil {
		b.Fatal(err)
	}
	in := &Input{ClientAddr: "192.0.2.1", Received: recv, EventID: "9ec79c33ec9942ab8353589fcb2e04dc"}
	dst := make([]byte, 0, 8<<10)
	b.SetBytes(int64(len(src)))
	b.ReportAllocs()
	defer testutil.CPUTime(b)()
	for b.Loop() {
		t, err := event.Parse(src)
		if err != nil {
			b.Fatal(err)
		}
		if err := n.Tree(t, in); err != nil {
			b.Fatal(err)
		}
		if err := cfg.ScrubTree(t); err != nil {
			b.Fatal(err)
		}
		dst = t.AppendJSON(dst[:0])
		t.Release()
	}
}

// BenchmarkTimestamps normalizes small events whose cost is mostly their
// timestamps: a float, an ISO 8601 string, breadcrumbs shifted for clock
// drift (a clock_drift error with both times as RFC 3339).
func BenchmarkTimestamps(b *testing.B) {
	n := testNormalizer(b)
	crumbs := `{"timestamp":1795600700.25,"message":"a"},{"timestamp":1795600710.5,"message":"b"},{"timestamp":"2026-11-25T09:58:40.125Z","message":"c"}`
	for _, bc := range []struct {
		name, src string
		in        Input
	}{
		{"float", `{"timestamp":1795600790.123456,"start_timestamp":1795600789.5}`, Input{Received: recv}},
		{"iso", `{"timestamp":"2026-11-25T09:59:50.123456Z","start_timestamp":"2026-11-25T09:59:49+00:00"}`, Input{Received: recv}},
		{"drift", `{"timestamp":1795593600.5,"breadcrumbs":[` + crumbs + `]}`, Input{Received: recv, SentAt: recv.Add(-2 * time.Hour)}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			src := []byte(bc.src)
			dst := make([]byte, 0, 4<<10)
			b.ReportAllocs()
			defer testutil.CPUTime(b)()
			for b.Loop() {
				var err error
				if dst, err = n.Event(dst[:0], src, &bc.in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
