package testutil

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// fatalTB records Fatalf and stops the helper there, as a test's would.
type fatalTB struct {
	testing.TB
	failed bool
}

func (f *fatalTB) Helper() {}

func (f *fatalTB) Fatalf(string, ...any) {
	f.failed = true
	panic(f)
}

func TestFixtures(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{"b.json": "2", "a.json": "1", "c.txt": "3"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	for _, b := range Fixtures(t, filepath.Join(dir, "*.json"), filepath.Join(dir, "*.txt")) {
		got = append(got, string(b))
	}
	if want := []string{"1", "2", "3"}; !slices.Equal(got, want) {
		t.Errorf("Fixtures = %q, want %q: glob by glob, in name order", got, want)
	}

	f := &fatalTB{TB: t}
	func() {
		defer func() { recover() }()
		Fixtures(f, filepath.Join(dir, "*.yaml"))
	}()
	if !f.failed {
		t.Error("a glob matching nothing did not fail the test")
	}
}
