package main

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestGroupingBinary runs `baton grouping hash` in the built binary: a Go
// SDK error event from a file, a message event from stdin, and bad input.
func TestGroupingBinary(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "baton")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	type result struct {
		Variants []struct {
			Name, Hash  string
			Contributes bool
			Components  []json.RawMessage
		}
		Primary        string
		PrimaryVariant string `json:"primary_variant"`
		Final          bool
		Reason         string
	}
	runRaw := func(stdin string, args ...string) (stdout, stderr string, code int) {
		cmd := exec.Command(bin, append([]string{"grouping"}, args...)...)
		cmd.Stdin = strings.NewReader(stdin)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return out.String(), errb.String(), code
	}
	run := func(stdin string, args ...string) (result, string, int) {
		out, errs, code := runRaw(stdin, args...)
		var r result
		if code == 0 {
			if jerr := json.Unmarshal([]byte(out), &r); jerr != nil {
				t.Fatalf("output is not JSON: %v\n%s", jerr, out)
			}
		}
		return r, errs, code
	}

	r, errs, code := run("", "hash", "testdata/grouping_go_error.json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if r.Primary != "1cbce1a793aa2ee8144536cd944c185c" || r.PrimaryVariant != "app" || !r.Final || len(r.Variants) != 2 {
		t.Errorf("go error: primary %s (%s) final %v variants %d (%s)", r.Primary, r.PrimaryVariant, r.Final, len(r.Variants), r.Reason)
	}
	for _, v := range r.Variants {
		if v.Hash == "" || !v.Contributes || len(v.Components) == 0 {
			t.Errorf("variant %s: hash %q contributes %v, %d components", v.Name, v.Hash, v.Contributes, len(v.Components))
		}
	}

	sum := md5.Sum([]byte("order <int> failed"))
	r, errs, code = run(`{"message":"order 1234 failed","level":"error"}`, "hash")
	if code != 0 {
		t.Fatalf("stdin: exit %d: %s", code, errs)
	}
	if r.Primary != hex.EncodeToString(sum[:]) || r.PrimaryVariant != "default" || len(r.Variants) != 1 || r.Variants[0].Name != "default" {
		t.Errorf("message: %+v", r)
	}

	if _, errs, code = run(`{"message":`, "hash"); code != 1 || !strings.Contains(errs, "baton grouping hash: stdin:") {
		t.Errorf("truncated JSON: exit %d, stderr %q", code, errs)
	}
	if _, errs, code = run("", "hash", "testdata/does-not-exist.json"); code != 1 || !strings.Contains(errs, "does-not-exist.json") {
		t.Errorf("missing file: exit %d, stderr %q", code, errs)
	}
	if _, _, code = run("", "frobnicate"); code != 2 {
		t.Errorf("unknown subcommand: exit %d, want 2", code)
	}

	// check: Sentry's layout (relay/grouping's copy of snapshot inputs).
	const sentry = "../../relay/grouping/testdata/sentry"
	out, errs, code := runRaw("", "check", sentry)
	if code != 0 || !strings.Contains(out, "inputs 15 (without a snapshot: 0)\n") ||
		!strings.Contains(out, "claimed final 13, agreeing 13 (100.0%)\n") || strings.Contains(out, "disagree") {
		t.Errorf("check %s: exit %d\n%s%s", sentry, code, out, errs)
	}
	// One directory holding both, a claimed-final snapshot that disagrees,
	// one that Baton does not claim, and an input without a snapshot.
	flat := t.TempDir()
	copyFile := func(from, to string, edit func(string) string) {
		t.Helper()
		b, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(flat, to), []byte(edit(string(b))), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	same := func(s string) string { return s }
	snaps := sentry + "/snapshots/test_variants/test_event_hash_variant/newstyle@2023_01_11/"
	copyFile(sentry+"/grouping_inputs/go-pkg-mod.json", "go-pkg-mod.json", same)
	copyFile(snaps+"go_pkg_mod.pysnap", "go_pkg_mod.pysnap", func(s string) string {
		return strings.Replace(s, "4b8bbc500bd2cabfcadc1f1be867e0bb", "00000000000000000000000000000000", 1)
	})
	copyFile(sentry+"/grouping_inputs/csp.json", "csp.json", same)
	copyFile(snaps+"csp.pysnap", "csp.pysnap", same)
	copyFile(sentry+"/grouping_inputs/javascript-xbrowser-chrome.json", "js-sourcemap.json", same)
	copyFile(snaps+"javascript_polyfills.pysnap", "js_sourcemap.pysnap", same)
	copyFile(sentry+"/grouping_inputs/expectct.json", "lonely.json", same)
	out, errs, code = runRaw("", "check", flat)
	for _, want := range []string{
		"inputs 3 (without a snapshot: 1)\n",
		"claimed final 2, agreeing 1 (50.0%)\n",
		"all inputs: agreeing 1 of 3 (33.3%)\n",
		"disagree go_pkg_mod: Baton 4b8bbc500bd2cabfcadc1f1be867e0bb (app), Sentry 00000000000000000000000000000000 (app); CLAIMED FINAL\n",
		"disagree js_sourcemap: Baton c63e8727af1a8fe75872b6a762797113 (system), Sentry be36642f41f047346396f018f62375d3 (app); not final: JavaScript",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("check %s: output lacks %q\n%s", flat, want, out)
		}
	}
	if code != 1 {
		t.Errorf("check with a claimed-final disagreement: exit %d, want 1 (%s)", code, errs)
	}
	if _, errs, code = runRaw("", "check", t.TempDir()); code != 1 || !strings.Contains(errs, "no grouping inputs") {
		t.Errorf("check of an empty directory: exit %d, stderr %q", code, errs)
	}
	if _, _, code = runRaw("", "check"); code != 2 {
		t.Errorf("check without DIR: exit %d, want 2", code)
	}
}
