package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestConfigDirCommands(t *testing.T) {
	dir := t.TempDir()
	must(t, os.WriteFile(filepath.Join(dir, "config.yml"), []byte("relay:\n  mode: proxy\n  upstream: http://127.0.0.1:9/\nsentry:\n  dsn: x\n"), 0o600))
	for _, flag := range [][]string{{"-c", dir}, {"--config", dir}, {"--config-dir=" + dir}} {
		code, out, errs := runCLI(t, append(flag, "config", "check")...)
		if code != 0 || !strings.Contains(out, "config.yml: ok") || !strings.Contains(out, "not use: sentry") {
			t.Errorf("%v config check: exit %d %q %q", flag, code, out, errs)
		}
	}
	code, out, errs := runCLI(t, "-c", dir, "credentials", "generate")
	if code != 0 || !strings.Contains(out, filepath.Join(dir, "credentials.json")) {
		t.Fatalf("credentials generate: exit %d %q %q", code, out, errs)
	}
	if code, again, _ := runCLI(t, "-c", dir, "credentials", "show"); code != 0 || again != out {
		t.Errorf("credentials show: %d %q", code, again)
	}
	must(t, os.WriteFile(filepath.Join(dir, "config.yml"), []byte("http:\n  timeout: 5s\n"), 0o600))
	code, _, errs = runCLI(t, "-c", dir, "config", "check")
	if code != exitError || !strings.Contains(errs, filepath.Join(dir, "config.yml")+":2: http.timeout: ") {
		t.Errorf("bad config.yml: exit %d %q", code, errs)
	}
	if code, _, errs := runCLI(t, "-c"); code != exitUsage || !strings.Contains(errs, "needs a directory") {
		t.Errorf("-c without a directory: exit %d %q", code, errs)
	}
	if code, out, _ := runCLI(t, "--version"); code != 0 || out != "baton "+version+"\nrelay "+relayVersion+"\n" {
		t.Errorf("--version: %d %q", code, out)
	}
}
