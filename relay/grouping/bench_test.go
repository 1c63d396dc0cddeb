package grouping

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/baton-relay/baton/relay/event"
)

// BenchmarkHash hashes parsed SDK error events (parse excluded: at the
// edge the tree exists after normalization).
func BenchmarkHash(b *testing.B) { benchEvents(b, func(n *event.Node) { Hash(n) }) }

// BenchmarkSum is the hash-only path ingest uses, over the same events.
// python_django_error_event.json (Relay's extended-event-input fixture, 4.9
// KB: exception, stack trace with context lines, tags, user, request) is
// the "typical 5 KB error event" of the ≤ 10 µs budget (BENCHMARKS.md).
func BenchmarkSum(b *testing.B) { benchEvents(b, func(n *event.Node) { Sum(n) }) }

func benchEvents(b *testing.B, hash func(*event.Node)) {
	for _, name := range []string{"node_client-report_02_event.json", "python_error_01_store.json", "node_error_02_event.json", "go_error_01_event.json", "python_django_error_event.json"} {
		src, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			b.Fatal(err)
		}
		t, err := event.Parse(src)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(src)))
			b.ReportAllocs()
			for b.Loop() {
				hash(t.Root())
			}
		})
	}
}

func BenchmarkParameterize(b *testing.B) {
	msg := "Failed to fetch user 12345 from http://api.example.com/users/12345 after 3 retries (took 1.25s) at 2024-02-20T22:16:36Z, request id 7c1811ed-e98f-4c9c-a9f9-58c757ff494f"
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		parameterize(msg)
	}
}
