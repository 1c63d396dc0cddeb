package main

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
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
	run := func(stdin string, args ...string) (result, string, int) {
		cmd := exec.Command(bin, append([]string{"grouping"}, args...)...)
		cmd.Stdin = strings.NewReader(stdin)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		var r result
		if code == 0 {
			if jerr := json.Unmarshal(out.Bytes(), &r); jerr != nil {
				t.Fatalf("output is not JSON: %v\n%s", jerr, out.String())
			}
		}
		return r, errb.String(), code
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
}
