package main

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestNormalizeBinary runs the built baton on fixtures: a legacy JS message
// event from a file and a CSP report from stdin.
func TestNormalizeBinary(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "baton")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	run := func(stdin string, args ...string) (map[string]any, string, error) {
		cmd := exec.Command(bin, append([]string{"normalize"}, args...)...)
		cmd.Stdin = strings.NewReader(stdin)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		var ev map[string]any
		if err == nil {
			if jerr := json.Unmarshal(out.Bytes(), &ev); jerr != nil {
				t.Fatalf("output is not JSON: %v\n%s", jerr, out.String())
			}
		}
		return ev, errb.String(), err
	}

	ev, errs, err := run("", "--client-ip", "192.0.2.5", "--received", "2018-07-24T14:58:05Z", "testdata/legacy_js_message.json")
	if err != nil {
		t.Fatalf("%v: %s", err, errs)
	}
	if ev["event_id"] != "b2c595e016164e5baa63ed087e44978b" || ev["platform"] != "javascript" {
		t.Errorf("event_id/platform: %v %v", ev["event_id"], ev["platform"])
	}
	if le, _ := ev["logentry"].(map[string]any); le["formatted"] == nil || ev["message"] != nil {
		t.Errorf("message not moved to logentry: %v / %v", ev["logentry"], ev["message"])
	}
	if _, ok := ev["tags"].([]any); !ok {
		t.Errorf("tags not pairs: %v", ev["tags"])
	}
	if ev["received"] == nil || ev["level"] == nil {
		t.Errorf("received/level missing: %v", ev)
	}

	csp := `{"csp-report":{"document-uri":"https://example.com/foo/bar","referrer":"https://www.google.com/","violated-directive":"default-src self","original-policy":"default-src self; report-uri /csp-hotline.php","blocked-uri":"http://evilhackerscripts.com"}}`
	ev, errs, err = run(csp, "--type", "security", "--client-ip", "127.0.0.1", "--user-agent", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/74.0.3729.169 Safari/537.36")
	if err != nil {
		t.Fatalf("%v: %s", err, errs)
	}
	if ev["type"] != "csp" || ev["culprit"] != "default-src self" {
		t.Errorf("type/culprit: %v %v", ev["type"], ev["culprit"])
	}
	if le, _ := ev["logentry"].(map[string]any); le["formatted"] != "Blocked 'default-src' from 'evilhackerscripts.com'" {
		t.Errorf("logentry: %v", ev["logentry"])
	}
	if b, _ := ev["contexts"].(map[string]any)["browser"].(map[string]any); b["name"] != "Chrome" {
		t.Errorf("browser context: %v", ev["contexts"])
	}

	// A Reporting API batch: one event per CSP report, a line each.
	batch := `[{"type":"csp-violation","body":{"documentURL":"https://a.example/","blockedURL":"https://evil.example/x.js","effectiveDirective":"script-src","originalPolicy":"script-src 'self'","disposition":"enforce"}},` +
		`{"type":"deprecation","body":{}},` +
		`{"type":"csp-violation","body":{"documentURL":"https://b.example/","blockedURL":"inline","effectiveDirective":"style-src","originalPolicy":"style-src 'self'","disposition":"report"}}]`
	cmd := exec.Command(bin, "normalize", "--type", "security")
	cmd.Stdin = strings.NewReader(batch)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("batch: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "https://a.example/") || !strings.Contains(lines[1], "https://b.example/") {
		t.Errorf("batch: want one event per CSP report, got %d lines:\n%s", len(lines), out)
	}

	if _, errs, err = run("[1]"); err == nil || !strings.Contains(errs, "not a JSON object") {
		t.Errorf("invalid input: err %v, stderr %q", err, errs)
	}
}
