package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/baton-relay/baton/config"
	"github.com/baton-relay/baton/relay"
)

// relayVersion is the Sentry Relay release whose protocol and config Baton
// follows (docs/relay-protocol.md is checked against it); `baton --version`
// prints it in Relay's form. Set at build time with
// -ldflags "-X main.relayVersion=...".
var relayVersion = "26.4.2"

// printVersion prints Baton's version, then Relay's form of it, "relay
// X.Y.Z", for tools that run `relay --version`.
func printVersion(w io.Writer) {
	fmt.Fprintf(w, "baton %s\nrelay %s\n", version, relayVersion)
}

// configDirFlag takes Relay's global -c/--config DIR (also --config-dir) off
// the front of args.
func configDirFlag(args []string) (string, []string, error) {
	if len(args) == 0 {
		return "", args, nil
	}
	a := args[0]
	for _, name := range []string{"-c", "--config", "--config-dir", "-config", "-config-dir"} {
		if a == name {
			if len(args) < 2 || args[1] == "" {
				return "", nil, fmt.Errorf("%s needs a directory", name)
			}
			return args[1], args[2:], nil
		}
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			if v == "" {
				return "", nil, fmt.Errorf("%s needs a directory", name)
			}
			return v, args[1:], nil
		}
	}
	return "", args, nil
}

// runInDir runs a command against a Relay config directory.
func runInDir(dir string, args []string, stdout, stderr io.Writer) int {
	load := func(extra []string) (config.Config, *config.Dir, error) {
		c, d, err := config.LoadDir(dir, extra...)
		return c, &d, err
	}
	switch args[0] {
	case "run":
		fs := newFlagSet("baton run", stderr, "baton -c DIR run [--config FILE]...")
		var files configFlags
		fs.Var(&files, "config", "Baton config file overlaid after DIR/baton.yml; repeat to overlay")
		if err := fs.Parse(args[1:]); err != nil {
			return exitUsage
		}
		if fs.NArg() > 0 {
			fmt.Fprintf(stderr, "baton run: unexpected argument %q\n", fs.Arg(0))
			fs.Usage()
			return exitUsage
		}
		cfg, d, err := load(files)
		if err != nil {
			fmt.Fprintf(stderr, "baton: invalid configuration in %s:\n%v\n", dir, err)
			return exitError
		}
		reload := func() (config.Config, error) { c, _, err := load(files); return c, err }
		return serve(cfg, reload, d, stdout, stderr)
	case "config":
		if len(args) != 2 || args[1] != "check" {
			return cmdConfig(args[1:], stdout, stderr)
		}
		c, d, err := load(nil)
		if err == nil {
			err = relay.CheckProjects(c)
		}
		if err != nil {
			fmt.Fprintln(stderr, err)
			return exitError
		}
		fmt.Fprintf(stdout, "%s: ok\n", strings.Join(d.Files, ", "))
		if len(d.Ignored) > 0 {
			fmt.Fprintf(stdout, "Relay settings Baton does not use: %s\n", strings.Join(d.Ignored, ", "))
		}
		return exitOK
	case "credentials":
		return credentials(args[1:], stdout, stderr, "baton -c DIR credentials generate [--overwrite] | show",
			func([]string) (config.Config, error) { c, _, err := load(nil); return c, err })
	default:
		return run(args, stdout, stderr)
	}
}

// projectsStamp fingerprints the names, sizes and times of the files in
// Relay's projects/ directory, so they are re-read only when they change.
func projectsStamp(dir string) string {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return ""
	}
	h := sha256.New()
	for _, e := range entries {
		info, err := os.Stat(filepath.Join(dir, e.Name()))
		if err != nil {
			continue
		}
		fmt.Fprintf(h, "%s\x00%d\x00%d\n", e.Name(), info.Size(), info.ModTime().UnixNano())
	}
	return hex.EncodeToString(h.Sum(nil))
}
