package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestConfigCheck(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yml")
	bad := filepath.Join(dir, "bad.yml")
	must(t, os.WriteFile(good, []byte("server:\n  listen: 127.0.0.1:3100\nbuffer:\n  max_bytes: 2GiB\n"), 0o600))
	must(t, os.WriteFile(bad, []byte(`server:
  listn: 127.0.0.1:3100
buffer:
  max_age: 10 parsecs
routes:
  eror:
    kafka: embedded
`), 0o600))

	if code, out, errs := runCLI(t, "config", "check", good); code != 0 || !strings.Contains(out, "ok") {
		t.Fatalf("valid file: exit %d\nstdout: %s\nstderr: %s", code, out, errs)
	}
	code, _, errs := runCLI(t, "config", "check", bad)
	if code != 1 {
		t.Fatalf("invalid file: exit %d, want 1\n%s", code, errs)
	}
	lines := strings.Split(strings.TrimSpace(errs), "\n")
	re := regexp.MustCompile(`^` + regexp.QuoteMeta(bad) + `:(\d+): `)
	var lineNos []string
	for _, l := range lines {
		m := re.FindStringSubmatch(l)
		if m == nil {
			t.Errorf("not a file:line: error: %q", l)
			continue
		}
		lineNos = append(lineNos, m[1])
	}
	if strings.Join(lineNos, ",") != "2,4,6" {
		t.Errorf("error lines = %v, want 2,4,6:\n%s", lineNos, errs)
	}
	if !strings.Contains(errs, `did you mean "listen"`) {
		t.Errorf("no did-you-mean for listn:\n%s", errs)
	}
}

func TestConfigDefaultIsValid(t *testing.T) {
	code, out, errs := runCLI(t, "config", "default")
	if code != 0 || !strings.Contains(out, "listen: 127.0.0.1:3000") || !strings.Contains(out, "#") {
		t.Fatalf("config default: exit %d, %d bytes\n%s", code, len(out), errs)
	}
	f := filepath.Join(t.TempDir(), "default.yml")
	must(t, os.WriteFile(f, []byte(out), 0o600))
	if code, _, errs := runCLI(t, "config", "check", f); code != 0 {
		t.Fatalf("the printed default does not pass config check: %s", errs)
	}
}

func TestUsage(t *testing.T) {
	for _, args := range [][]string{{}, {"frobnicate"}, {"config"}, {"config", "check"}, {"run", "--nope"}, {"buffer"}} {
		code, _, errs := runCLI(t, args...)
		if code != exitUsage || !strings.Contains(errs, "Usage") && !strings.Contains(errs, "usage") {
			t.Errorf("baton %v: exit %d, stderr %q; want usage and exit %d", args, code, errs, exitUsage)
		}
	}
	if code, out, _ := runCLI(t, "version"); code != 0 || !strings.HasPrefix(out, "baton ") {
		t.Errorf("version: %d %q", code, out)
	}
	if code, out, _ := runCLI(t, "help"); code != 0 || !strings.Contains(out, "baton run") {
		t.Errorf("help: %d %q", code, out)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestCredentials(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "baton.yml")
	creds := filepath.Join(dir, "creds", "credentials.json")
	must(t, os.WriteFile(cfg, []byte("managed:\n  credentials: "+creds+"\n"), 0o600))

	if code, _, errs := runCLI(t, "credentials", "show", "--config", cfg); code != 1 || !strings.Contains(errs, "baton credentials generate") {
		t.Fatalf("show before generate: exit %d, %q", code, errs)
	}
	code, out, errs := runCLI(t, "credentials", "generate", "--config", cfg)
	if code != 0 || !strings.Contains(out, "public key:") {
		t.Fatalf("generate: exit %d\n%s%s", code, out, errs)
	}
	st, err := os.Stat(creds)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("credentials file: %v %v", st, err)
	}
	raw, _ := os.ReadFile(creds)
	for _, k := range []string{`"secret_key"`, `"public_key"`, `"id"`} {
		if !strings.Contains(string(raw), k) {
			t.Errorf("credentials.json lacks %s: %s", k, raw)
		}
	}
	code, shown, _ := runCLI(t, "credentials", "show", "--config", cfg)
	if code != 0 || shown != out {
		t.Fatalf("show = %d %q, want what generate printed %q", code, shown, out)
	}
	if strings.Contains(shown, "secret") {
		t.Errorf("show printed the secret: %s", shown)
	}
	if code, _, errs := runCLI(t, "credentials", "generate", "--config", cfg); code != 1 || !strings.Contains(errs, "overwrite") {
		t.Fatalf("second generate: exit %d %q; want a refusal naming --overwrite", code, errs)
	}
	if code, again, _ := runCLI(t, "credentials", "generate", "--config", cfg, "--overwrite"); code != 0 || again == out {
		t.Fatalf("generate --overwrite: exit %d, same identity %v", code, again == out)
	}
	if code, _, _ := runCLI(t, "credentials", "rotate"); code != exitUsage {
		t.Errorf("unknown credentials subcommand: exit %d", code)
	}
}

func TestBufferInspectMissing(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nothing-here")
	code, _, errs := runCLI(t, "buffer", "inspect", "--data-dir", dir)
	if code != 1 || !strings.Contains(errs, dir) {
		t.Fatalf("inspect of a missing dir: exit %d %q", code, errs)
	}
}
