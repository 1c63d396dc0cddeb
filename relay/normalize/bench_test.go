package normalize

import (
	"testing"

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

// BenchmarkPipeline is what ingest does to the load event when it both
// normalizes and scrubs: parse once, normalize, scrub with the default data
// scrubbing settings, write once.
func BenchmarkPipeline(b *testing.B) {
	env, err := envelope.Parse(testutil.ErrorEnvelope())
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
