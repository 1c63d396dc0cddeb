package event

import (
	"bytes"
	"testing"

	"github.com/baton-relay/baton/relay/internal/testutil"
)

// loadEvent is the event item of the load tool's envelope (~5 KB, 40
// frames): the payload ingest benchmarks parse.
func loadEvent(b *testing.B) []byte {
	lines := bytes.Split(testutil.ErrorEnvelope(), []byte("\n"))
	return lines[2]
}

// BenchmarkParse is Parse and Release of the load event.
func BenchmarkParse(b *testing.B) {
	src := loadEvent(b)
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
