package grouping

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// sentryDir holds grouping inputs and snapshots in the layout of Sentry's
// tests/sentry/grouping: grouping_inputs/<name>.json and
// snapshots/test_variants/test_event_hash_variant/newstyle@2023_01_11/
// <name, dashes as underscores>.pysnap. The inputs keep the fields grouping
// reads; the snapshots keep the hashes Sentry recorded (not the trees).
// frame-uses-context-line-over-function-2023-input: the stored 2023
// snapshot shows only filename and function, so its input then had neither
// the context line nor the source map (the newer
// exception_javascript_no_in_app snapshot shows a source-mapped frame
// grouping by context line, function ignored). `baton grouping check` reads
// the same layout.
const sentryDir = "testdata/sentry"

const sentrySnapshots = sentryDir + "/snapshots/test_variants/test_event_hash_variant/newstyle@2023_01_11"

// TestSentrySnapshots asserts the hashes Sentry's own grouping snapshot
// tests (test_variants, config newstyle@2023_01_11) record for their
// inputs.
func TestSentrySnapshots(t *testing.T) {
	inputs, _ := filepath.Glob(filepath.Join(sentryDir, "grouping_inputs", "*.json"))
	if len(inputs) < 15 {
		t.Fatalf("found %d inputs", len(inputs))
	}
	for _, in := range inputs {
		name := strings.ReplaceAll(strings.TrimSuffix(filepath.Base(in), ".json"), "-", "_")
		t.Run(name, func(t *testing.T) {
			src, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			raw, err := os.ReadFile(filepath.Join(sentrySnapshots, name+".pysnap"))
			if err != nil {
				t.Fatal(err)
			}
			snap, err := ParseSnapshot(raw)
			if err != nil {
				t.Fatal(err)
			}
			r := hashOf(t, string(src))
			primary, pv := snap.Primary()
			want(t, r, primary, snap)
			if r.PrimaryVariant != pv {
				t.Errorf("primary variant %q, Sentry's %q", r.PrimaryVariant, pv)
			}
		})
	}
}

func TestParseSnapshot(t *testing.T) {
	snap, err := ParseSnapshot([]byte("---\ncreated: '2024-12-17T22:47:11+00:00'\ncreator: sentry\nsource: tests/sentry/grouping/test_variants.py\n---\n" +
		"app:\n  hash: null\n  component:\n    app (custom fingerprint takes precedence)\n      exception*\n        type*\n          \"E\"\n" +
		"--------------------------------------------------------------------------\n" +
		"custom-fingerprint:\n  hash: \"f30afa00b85f5cac5ee0bce01b31f08d\"\n  info: null\n  values: [\"celery\"]\n" +
		"--------------------------------------------------------------------------\n" +
		"system:\n  hash: \"348fc4026c9fa11ffba8fbfa80a134c9\"\n  component:\n    system*\n      hash: \"not a variant\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(snap) != 3 || snap["app"] != "" || snap["system"] != "348fc4026c9fa11ffba8fbfa80a134c9" {
		t.Errorf("snapshot %v", snap)
	}
	if h, v := snap.Primary(); h != "f30afa00b85f5cac5ee0bce01b31f08d" || v != "custom-fingerprint" {
		t.Errorf("primary %s %s", h, v)
	}
	for _, bad := range []string{"", "---\nsource: x\n", "app:\n  hash: 4b8b\n"} {
		if _, err := ParseSnapshot([]byte(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}
