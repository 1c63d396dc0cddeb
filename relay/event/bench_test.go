package event

import (
	"bytes"
	"testing"

	"github.com/baton-relay/baton/relay/internal/testutil"
)

// loadEvent is the event item of the ~5 KB error envelope of 40 flat
// frames (testutil.ErrorEnvelope).
func loadEvent(b *testing.B) []byte {
	lines := bytes.Split(testutil.ErrorEnvelope(), []byte("\n"))
	return lines[2]
}

// benchEvents are the events the benchmarks parse: flat, the 40 flat
// frames; js, the load tool's shape (frames with context lines and
// escaped strings, testutil.JSErrorEnvelope).
func benchEvents(b *testing.B) []struct {
	name string
	src  []byte
} {
	return []struct {
		name string
		src  []byte
	}{
		{"flat", loadEvent(b)},
		{"js", bytes.Split(testutil.JSErrorEnvelope(), []byte("\n"))[2]},
	}
}

// BenchmarkParse is Parse and Release of an event.
func BenchmarkParse(b *testing.B) {
	for _, ev := range benchEvents(b) {
		b.Run(ev.name, func(b *testing.B) {
			src := ev.src
			b.SetBytes(int64(len(src)))
			b.ReportAllocs()
			defer testutil.CPUTime(b)()
			for b.Loop() {
				t, err := Parse(src)
				if err != nil {
					b.Fatal(err)
				}
				t.Release()
			}
		})
	}
}

// BenchmarkCostEvent is the prescan of the load event.
func BenchmarkCostEvent(b *testing.B) {
	src := loadEvent(b)
	b.SetBytes(int64(len(src)))
	defer testutil.CPUTime(b)()
	for b.Loop() {
		Cost(src)
	}
}
