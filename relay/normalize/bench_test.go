package normalize

import (
	"testing"

	"github.com/baton-relay/baton/envelope"
	"github.com/baton-relay/baton/relay/internal/testutil"
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
	for b.Loop() {
		if dst, err = n.Event(dst[:0], src, in); err != nil {
			b.Fatal(err)
		}
	}
}
