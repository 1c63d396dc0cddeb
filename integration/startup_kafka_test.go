package integration

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestStartEmbeddedKafkaPortTaken runs the real binary with the embedded
// broker's port held by another listener (a second `baton run`, a local
// Kafka): it must exit 1 with a one-line error naming the address and the
// setting, not panic.
func TestStartEmbeddedKafkaPortTaken(t *testing.T) {
	bin := crashBuildBaton(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	addr := ln.Addr().String()

	dir := t.TempDir()
	cfg := filepath.Join(dir, "baton.yml")
	yml := fmt.Sprintf("server:\n  listen: 127.0.0.1:0\nbuffer:\n  dir: %s\nkafka:\n  embedded:\n    listen: %s\n",
		filepath.Join(dir, "data"), addr)
	if err := os.WriteFile(cfg, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "run", "--config", cfg).CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) {
		t.Fatalf("baton run with the broker port taken: %v (want exit 1)\n%s", err, out)
	}
	if code := exit.ExitCode(); code != 1 {
		t.Errorf("exit code %d, want 1", code)
	}
	s := string(out)
	for _, bad := range []string{"panic", "goroutine "} {
		if strings.Contains(s, bad) {
			t.Errorf("output contains %q:\n%s", bad, s)
		}
	}
	for _, want := range []string{"baton: kafka.embedded.listen " + addr + ": the address is in use by another process"} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q:\n%s", want, s)
		}
	}
	t.Logf("baton said: %s", strings.TrimSpace(s))
}
