package relay

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/baton-relay/baton/config"
)

// TestConfigCheckMatchesNew holds config validation and the constructors of
// a run (buffer.Open, routing.NewKafka, routing.NewUpstream, relay key
// parsing) to the same rules, on both sides of each boundary: what `baton
// config check` accepts, relay.New accepts, and what it refuses, relay.New
// refuses too.
func TestConfigCheckMatchesNew(t *testing.T) {
	kafka := func(mmb int64, id string) string {
		return fmt.Sprintf("kafka: {clusters: {k: {brokers: ['127.0.0.1:1'], max_message_bytes: %d, client_id: %s}}}\nroutes: {default: {kafka: k}}", mmb, id)
	}
	managed := func(key string) string {
		return "mode: managed\nupstreams: {up: {urls: ['http://127.0.0.1:1']}}\nmanaged: {upstream: up}\nroutes: {default: {upstream: up}}\n" +
			"auth: {static_relays: {3a1e3f0c-6a47-4b0e-9a27-6c2c3fe4e5d1: {public_key: " + key + "}}}"
	}
	for _, tc := range []struct {
		name string
		yaml string
		ok   bool
	}{
		{"reserve just under max_bytes", "buffer: {max_bytes: 100MiB, reserve_bytes: 99MiB}", true},
		{"reserve equal to max_bytes", "buffer: {max_bytes: 100MiB, reserve_bytes: 100MiB}", false},
		{"default reserve over max_bytes", "buffer: {max_bytes: 100MiB}", false},
		{"largest memtable", fmt.Sprintf("buffer: {max_bytes: 100GiB, memtable_size: %d}", int64(config.MaxMemtableSize-1)), true},
		{"memtable too large", fmt.Sprintf("buffer: {max_bytes: 100GiB, memtable_size: %d}", int64(config.MaxMemtableSize)), false},
		{"smallest memtable", fmt.Sprintf("buffer: {memtable_size: %d}", int64(config.MinMemtableSize)), true},
		{"memtable too small", fmt.Sprintf("buffer: {memtable_size: %d}", int64(config.MinMemtableSize-1)), false},
		{"largest kafka message", kafka(int64(config.MaxKafkaMessageBytes), "baton"), true},
		{"kafka message too large", kafka(int64(config.MaxKafkaMessageBytes)+1, "baton"), false},
		{"smallest kafka message", kafka(int64(config.MinKafkaMessageBytes), "baton"), true},
		{"kafka message too small", kafka(int64(config.MinKafkaMessageBytes)-1, "baton"), false},
		{"longest kafka client id", kafka(1<<20, strings.Repeat("c", 256)), true},
		{"kafka client id too long", kafka(1<<20, strings.Repeat("c", 257)), false},
		{"upstream URL with a password", "upstreams: {up: {urls: ['http://u:p@127.0.0.1:1']}}\nroutes: {default: {upstream: up}}", false},
		{"upstream URL twice", "upstreams: {up: {urls: ['http://127.0.0.1:1/x', 'http://127.0.0.1:1/x/']}}\nroutes: {default: {upstream: up}}", false},
		{"static relay key on the curve", managed("AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"), true},
		{"static relay key off the curve", managed("AgAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			// Routed to an upstream, so that no embedded broker outlives a
			// constructor that panics.
			base := fmt.Sprintf("server: {listen: '127.0.0.1:0'}\nbuffer: {dir: %q}\nupstreams: {base: {urls: ['http://127.0.0.1:1']}}\nroutes: {default: {upstream: base}}\n", dir)
			basePath, casePath := filepath.Join(dir, "base.yml"), filepath.Join(dir, "case.yml")
			if err := errors.Join(os.WriteFile(basePath, []byte(base), 0o600), os.WriteFile(casePath, []byte(tc.yaml+"\n"), 0o600)); err != nil {
				t.Fatal(err)
			}
			cfg, err := config.Load(basePath, casePath) // decoded even when invalid
			if (err == nil) != tc.ok {
				t.Fatalf("config check: %v, want ok=%v", err, tc.ok)
			}
			if err != nil && strings.Contains(err.Error(), "\n") {
				t.Errorf("one problem expected:\n%v", err)
			}
			r, err := New(cfg, Settings{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
			t.Logf("relay.New: %v", err)
			if (err == nil) != tc.ok {
				t.Fatalf("relay.New: %v, want ok=%v", err, tc.ok)
			}
			if r != nil {
				if err := r.Close(); err != nil {
					t.Error(err)
				}
			}
		})
	}
}
