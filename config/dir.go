package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// Names inside a Relay config directory (docs/relay-protocol.md, 3.8).
const (
	// RelayConfigName is Relay's own config file, in Relay's schema.
	RelayConfigName = "config.yml"
	// BatonConfigName holds Baton-only settings, in Baton's schema; it
	// overlays what config.yml translates to.
	BatonConfigName = "baton.yml"
	// CredentialsName is the relay identity, in Relay's format.
	CredentialsName = "credentials.json"
	// ProjectsDirName holds Relay's local project configs, <id>.json.
	ProjectsDirName = "projects"
	// BufferDirName is where a config directory's buffer lives unless
	// baton.yml says otherwise.
	BufferDirName = "baton-data"
)

// DefaultFileInterval is Relay's cache.file_interval default: how often the
// projects/ directory is re-read.
const DefaultFileInterval = 10 * time.Second

// Dir describes a Relay config directory loaded by LoadDir.
type Dir struct {
	// Path is the directory.
	Path string
	// Files are the config files read, in order: config.yml, then baton.yml
	// if present, then the extra files given to LoadDir.
	Files []string
	// Ignored are the Relay keys Baton has no use for, as dotted paths
	// (keys of project files as "projects/<file>: key"), sorted; the caller
	// reports them once at start.
	Ignored []string
	// FileInterval is Relay's cache.file_interval: how often projects/ is
	// re-read in static and managed mode. Default: DefaultFileInterval.
	FileInterval time.Duration
}

// ProjectsDir returns the directory of Relay's local project configs.
func (d Dir) ProjectsDir() string { return filepath.Join(d.Path, ProjectsDirName) }

// LoadDir loads a Relay config directory: DIR/config.yml in Relay's schema,
// translated to Baton's (see relayKeys), then DIR/baton.yml if it exists and
// each of extra, both in Baton's schema, as overlays. The credentials file is
// DIR/credentials.json and the buffer DIR/baton-data, unless baton.yml sets
// them. Errors are reported like Load's, at the file and line of the value.
func LoadDir(dir string, extra ...string) (Config, Dir, error) {
	d := Dir{Path: dir, FileInterval: DefaultFileInterval}
	rc := filepath.Join(dir, RelayConfigName)
	data, err := os.ReadFile(rc)
	srcs := []source{{name: rc, data: data, err: err, relay: &d}}
	d.Files = append(d.Files, rc)
	bc := filepath.Join(dir, BatonConfigName)
	if data, err := os.ReadFile(bc); err == nil || !errors.Is(err, fs.ErrNotExist) {
		srcs = append(srcs, source{name: bc, data: data, err: err})
		d.Files = append(d.Files, bc)
	}
	for _, p := range extra {
		data, err := os.ReadFile(p)
		srcs = append(srcs, source{name: p, data: data, err: err})
		d.Files = append(d.Files, p)
	}
	c, err := load(srcs)
	return c, d, err
}
