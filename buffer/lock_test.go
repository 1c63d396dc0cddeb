//go:build unix

package buffer

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// TestLockNamesOwner: a second Open (here in the same process, as a second
// Baton would be) and Inspect of a directory in use fail with ErrLocked and
// the holder's pid, instead of Pebble's "resource temporarily unavailable".
func TestLockNamesOwner(t *testing.T) {
	dir := t.TempDir()
	b, err := Open(dir, Options{Logger: &testLogger{tb: t}})
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := os.ReadFile(filepath.Join(dir, pidFile))
	if got := parsePID(pid); got != os.Getpid() {
		t.Fatalf("pid file holds %q, want %d", pid, os.Getpid())
	}
	var le *LockedError
	if _, err := Open(dir, Options{Logger: &testLogger{tb: t}}); !errors.Is(err, ErrLocked) || !errors.As(err, &le) || le.PID != os.Getpid() {
		t.Fatalf("second Open: %v, want ErrLocked naming pid %d", err, os.Getpid())
	}
	if _, err := Inspect(dir); !errors.As(err, &le) || le.PID != os.Getpid() {
		t.Fatalf("Inspect of a buffer in use: %v, want a LockedError naming pid %d", err, os.Getpid())
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	// A pid file left by a process that is gone (not locked) is taken over.
	if err := os.WriteFile(filepath.Join(dir, pidFile), []byte(strconv.Itoa(1<<22)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Inspect(dir); err != nil {
		t.Fatalf("Inspect of a stopped buffer: %v", err)
	}
	b, err = Open(dir, Options{Logger: &testLogger{tb: t}})
	if err != nil {
		t.Fatalf("Open after the owner stopped: %v", err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if pid, _ := os.ReadFile(filepath.Join(dir, pidFile)); parsePID(pid) != os.Getpid() {
		t.Errorf("pid file after takeover holds %q", pid)
	}
}
