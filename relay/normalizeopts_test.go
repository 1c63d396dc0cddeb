package relay

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/baton-relay/baton/config"
)

// A normalization.android_models table that cannot be read or has no
// Model / Marketing Name header stops the start, naming the setting.
func TestAndroidModelsConfigErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.csv")
	if err := os.WriteFile(bad, []byte("Brand,Name\nx,y\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{filepath.Join(dir, "missing.csv"), bad} {
		var cfg config.Config
		cfg.Mode = config.ModeManaged
		cfg.Normalization.AndroidModels = path
		if _, err := newProcessor(cfg); err == nil || !strings.Contains(err.Error(), "normalization.android_models") || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: %v; want an error naming the setting and the file", path, err)
		}
	}
}
