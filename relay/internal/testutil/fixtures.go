package testutil

import (
	"os"
	"path/filepath"
	"testing"
)

// Fixtures returns the contents of the files each glob matches (paths
// from the test's package directory), glob by glob, in name order. A glob
// that matches nothing fails the test: a moved fixture directory must
// not leave a test checking nothing.
func Fixtures(tb testing.TB, globs ...string) [][]byte {
	tb.Helper()
	var out [][]byte
	for _, g := range globs {
		files, err := filepath.Glob(g)
		if err != nil || len(files) == 0 {
			tb.Fatalf("fixtures %s: no file matches (%v)", g, err)
		}
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				tb.Fatal(err)
			}
			out = append(out, b)
		}
	}
	return out
}
