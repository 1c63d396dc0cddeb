package telemetry

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// TestExportErrorsRateLimited: one line per exportErrorEvery, the next one
// counting the failures held back.
func TestExportErrorsRateLimited(t *testing.T) {
	var out bytes.Buffer
	now := time.Unix(1_700_000_000, 0)
	e := &exportErrors{log: slog.New(slog.NewTextHandler(&out, nil)), now: func() time.Time { return now }}
	for range 5 {
		e.Handle(errors.New("connection refused"))
		now = now.Add(10 * time.Second)
	}
	if n := strings.Count(out.String(), "telemetry export failed"); n != 1 {
		t.Fatalf("%d lines in the first 50s, want 1:\n%s", n, out.String())
	}
	now = now.Add(exportErrorEvery)
	e.Handle(errors.New("connection refused"))
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[1], "failures_not_logged=4") || !strings.Contains(lines[1], "connection refused") {
		t.Errorf("log:\n%s\nwant a second line with failures_not_logged=4", out.String())
	}
}
