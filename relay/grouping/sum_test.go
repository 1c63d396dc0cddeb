package grouping

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/baton-relay/baton/relay/event"
	"github.com/baton-relay/baton/relay/internal/testutil"
)

// sumAgrees fails t when the hash-only path disagrees with the explaining
// one on src (a JSON object). hashOf (every unit and snapshot case) and
// FuzzHash call it.
func sumAgrees(t testing.TB, src []byte) {
	t.Helper()
	tr, err := event.Parse(src)
	if err != nil || tr.Root().Kind() != event.Object {
		return
	}
	defer tr.Release()
	r, b := Hash(tr.Root()), Sum(tr.Root())
	if b.Primary != r.Primary || b.PrimaryVariant != r.PrimaryVariant || b.Final != r.Final || b.Reason != r.Reason {
		t.Fatalf("Sum = %+v, Hash = {Primary:%s PrimaryVariant:%s Final:%v Reason:%s} for %s", b, r.Primary, r.PrimaryVariant, r.Final, r.Reason, src)
	}
}

// TestSumAgrees runs both paths over every testdata event and the fuzz
// seeds (the inline unit and snapshot cases go through hashOf).
func TestSumAgrees(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.json"))
	corpus, _ := filepath.Glob(filepath.Join("testdata", "fuzz", "FuzzHash", "*"))
	if len(files) < 9 {
		t.Fatalf("found %d testdata events", len(files))
	}
	for _, name := range append(files, corpus...) {
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if filepath.Ext(name) != ".json" {
			src = fuzzInput(t, src)
		}
		sumAgrees(t, src)
	}
	for _, src := range fuzzSeeds {
		sumAgrees(t, []byte(src))
	}
}

// TestSumAllocs pins the hash-only path's allocations on an SDK error
// event: the hex hash, and nothing per frame.
func TestSumAllocs(t *testing.T) {
	if testutil.RaceEnabled {
		t.Skip("allocation counts mean nothing under -race: sync.Pool drops items at random")
	}
	src, err := os.ReadFile(filepath.Join("testdata", "python_error_01_store.json"))
	if err != nil {
		t.Fatal(err)
	}
	tr, err := event.Parse(src)
	if err != nil {
		t.Fatal(err)
	}
	Sum(tr.Root()) // warm the pool
	if n := testing.AllocsPerRun(100, func() { Sum(tr.Root()) }); n > 4 {
		t.Errorf("Sum allocates %.0f times per event, want <= 4", n)
	}
}

// appendFields is strings.Join(strings.Fields(s), " "), on the ASCII fast
// path and the rune path alike.
func TestAppendFields(t *testing.T) {
	for _, s := range []string{"", "   ", "a", "  return  a +\tb  ", "x\r\n\v\fy", "é\u00a0ü\u2003 z", "\u0085a\x00b \xff c", "   trailing é  "} {
		if got, want := string(appendFields([]byte("<"), s)), "<"+strings.Join(strings.Fields(s), " "); got != want {
			t.Errorf("appendFields(%q) = %q, want %q", s, got, want)
		}
	}
}
