// Command baton is Baton's single binary: the relay and its operational
// subcommands.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/KimMachineGun/automemlimit/memlimit"

	"github.com/baton-relay/baton/config"
	"github.com/baton-relay/baton/relay"
	"github.com/baton-relay/baton/relay/auth"
	"github.com/baton-relay/baton/relay/record"
	"github.com/baton-relay/baton/relay/telemetry"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const usage = `baton is an edge relay for Sentry telemetry: it accepts envelopes from SDKs,
acknowledges them once they are fsync'd to its buffer, and forwards them by
traffic class to upstream relays or Kafka.

Usage:
  baton run [--config FILE]...     run the relay (no --config: the embedded default)
  baton config check FILE...       validate config files (merged in order); exit 1 on errors
  baton config default             print the embedded default config, commented
  baton credentials generate [--config FILE]... [--overwrite]
                                   create this relay's identity (Ed25519 key pair and relay id)
  baton credentials show [--config FILE]...
                                   print the relay id and public key (never the secret)
  baton buffer inspect [--data-dir DIR]
                                   show what the buffer holds (while baton is stopped)
  baton lanes [--config FILE]...   run the deadline-lane worker over the lanes section (Kafka topics
                                   chained fast to slow; DESIGN.md "Deadline lanes")
  baton normalize [--type event|security|nel] [--client-ip IP] [--user-agent UA] [FILE]
                                   print the normalized event (stdin when no FILE)
  baton grouping hash [--normalized] [FILE]
                                   print Sentry's grouping variants and issue hash of an event
  baton grouping check [--normalized] DIR
                                   compare Baton's hashes with Sentry's grouping snapshots (inputs
                                   and .pysnap files in the layout of Sentry's tests/sentry/grouping)
  baton topology check|render|graph FILE
                                   check a fleet declaration, render its node configs, draw it
  baton redis put-config|get-config|delete-config [--redis ADDR] [--prefix P] KEY PART [FILE|-]
                                   write, show or delete a project config part kept in Redis and
                                   announce it to the fleet (redis.project_configs)
  baton version                    print the version
  baton help                       print this help

A Relay config directory (Relay's -c/--config DIR) runs as is:
  baton -c DIR run                 DIR/config.yml (Relay's keys), then DIR/baton.yml (Baton's) if present
  baton -c DIR config check        validate the directory
  baton -c DIR credentials generate|show
                                   DIR/credentials.json, in Relay's format
  baton --version                  Baton's version, then Relay's form ("relay X.Y.Z") on a second line
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// exit codes
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

func run(args []string, stdout, stderr io.Writer) int {
	dir, args, err := configDirFlag(args)
	if err != nil {
		fmt.Fprintf(stderr, "baton: %v\n\n%s", err, usage)
		return exitUsage
	}
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	if dir != "" {
		return runInDir(dir, args, stdout, stderr)
	}
	switch args[0] {
	case "run":
		return cmdRun(args[1:], stdout, stderr)
	case "config":
		return cmdConfig(args[1:], stdout, stderr)
	case "buffer":
		return cmdBuffer(args[1:], stdout, stderr)
	case "credentials":
		return cmdCredentials(args[1:], stdout, stderr)
	case "lanes":
		return cmdLanes(args[1:], stdout, stderr)
	case "normalize":
		return cmdNormalize(args[1:], os.Stdin, stdout, stderr)
	case "grouping":
		return cmdGrouping(args[1:], os.Stdin, stdout, stderr)
	case "topology":
		return cmdTopology(args[1:], stdout, stderr)
	case "redis":
		return cmdRedis(args[1:], os.Stdin, stdout, stderr)
	case "version", "--version", "-version", "-V":
		printVersion(stdout)
		return exitOK
	case "help", "--help", "-help", "-h":
		fmt.Fprint(stdout, usage)
		return exitOK
	default:
		fmt.Fprintf(stderr, "baton: unknown command %q\n\n%s", args[0], usage)
		return exitUsage
	}
}

// configFlags collects repeated --config flags.
type configFlags []string

func (c *configFlags) String() string     { return strings.Join(*c, ",") }
func (c *configFlags) Set(v string) error { *c = append(*c, v); return nil }

func newFlagSet(name string, stderr io.Writer, help string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: %s\n", help)
		fs.PrintDefaults()
	}
	return fs
}

// loadConfigArgs parses the --config flags of a command that takes no
// other argument (baton run, baton lanes) and loads the files. A non-zero
// code is the exit status to return: usage or configuration error.
func loadConfigArgs(name, configHelp string, args []string, stderr io.Writer) (cfg config.Config, files configFlags, code int) {
	fs := newFlagSet(name, stderr, name+" [--config FILE]...")
	fs.Var(&files, "config", configHelp)
	if err := fs.Parse(args); err != nil {
		return cfg, nil, exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "%s: unexpected argument %q\n", name, fs.Arg(0))
		fs.Usage()
		return cfg, nil, exitUsage
	}
	cfg, err := config.Load(files...)
	if err != nil {
		fmt.Fprintf(stderr, "baton: invalid configuration:\n%v\n", err)
		return cfg, nil, exitError
	}
	return cfg, files, 0
}

func cmdRun(args []string, stdout, stderr io.Writer) int {
	cfg, files, code := loadConfigArgs("baton run", "config file; repeat to overlay (later files override earlier ones)", args, stderr)
	if code != 0 {
		return code
	}
	return serve(cfg, func() (config.Config, error) { return config.Load(files...) }, nil, stdout, stderr)
}

// serve runs the relay until SIGINT or SIGTERM. reload re-reads the
// configuration for SIGHUP; dir, when not nil, is a Relay config directory
// whose projects/ is re-read every cache.file_interval.
func serve(cfg config.Config, reload func() (config.Config, error), dir *config.Dir, stdout, stderr io.Writer) int {
	log := newLogger(cfg, stderr)
	if dir != nil && len(dir.Ignored) > 0 {
		log.Warn("Relay settings Baton does not use (README: Relay's config directory)", "dir", dir.Path, "ignored", strings.Join(dir.Ignored, ", "))
	}
	mem, err := decideMemoryLimit(cfg, limitSources{env: os.LookupEnv, cgroup: memlimit.FromCgroup, cgo: cgoBuild})
	if err != nil {
		log.Warn("no memory limit derived", "err", err)
	}
	mem.apply()
	// Signals are handled, never left to their default action (as a
	// container's PID 1 that would ignore them), and from before the
	// banner: a SIGHUP sent once Baton answers must not kill it.
	quit := make(chan os.Signal, 2)
	signal.Notify(quit, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(quit)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	r, err := relay.New(cfg, relay.Settings{Logger: log, Version: version, RelayVersion: relayVersion, DrainTimeout: cfg.Server.ShutdownTimeout})
	if err != nil {
		fmt.Fprintf(stderr, "baton: %v\n", err)
		return exitError
	}
	if err := r.Start(); err != nil {
		fmt.Fprintf(stderr, "baton: %v\n", err)
		return exitError
	}
	addr := relay.Reachable(r.Addr())
	fmt.Fprintf(stdout, "baton %s listening on http://%s (mode %s, buffer %s)\n", version, addr, cfg.Mode, cfg.Buffer.Dir)
	fmt.Fprintf(stdout, "  example DSN:  http://%s@%s/1\n", exampleKey, addr)
	if k := r.KafkaAddr(); k != "" {
		fmt.Fprintf(stdout, "  embedded Kafka broker on %s, in memory: emptied when Baton restarts; read a class with: kcat -b %s -C -t baton.error -o beginning\n", k, k)
	}
	if m := r.MetricsAddr(); m != nil {
		fmt.Fprintf(stdout, "  metrics on http://%s/metrics\n", relay.Reachable(m))
		fmt.Fprintf(stdout, "  status page on http://%s/\n", relay.Reachable(m))
	}
	fmt.Fprintf(stdout, "  memory limit %s\n", mem)
	fmt.Fprintf(stdout, "  Ctrl-C stops after delivering what it can within %s; a second Ctrl-C stops at once. What is not delivered stays in the buffer.\n", cfg.Server.ShutdownTimeout)

	var poll <-chan time.Time
	var stamp string
	if dir != nil && cfg.Mode != config.ModeProxy {
		t := time.NewTicker(dir.FileInterval)
		defer t.Stop()
		poll, stamp = t.C, projectsStamp(dir.ProjectsDir())
	}
	running := cfg // what is in force: reloads apply projects only
	var failed error
	for reloading := true; reloading; {
		select {
		case <-quit:
			reloading = false
		case failed = <-r.Failed():
			reloading = false
		case <-hup:
			reloadProjects(r, &running, reload, log)
		case <-poll:
			if s := projectsStamp(dir.ProjectsDir()); s != stamp {
				stamp = s
				reloadProjects(r, &running, reload, log)
			}
		}
	}
	log.Info("shutting down: delivering what the buffer holds; Ctrl-C again (or a second SIGTERM) stops at once, keeping it on disk",
		"drain_timeout", cfg.Server.ShutdownTimeout)
	start := time.Now()
	closed := make(chan error, 1)
	go func() { closed <- r.Close() }()
	var closeErr error
	for waiting := true; waiting; {
		select {
		case <-quit:
			log.Warn("second signal: stopping now")
			r.Abandon()
		case closeErr = <-closed:
			waiting = false
		}
	}
	if closeErr != nil {
		fmt.Fprintf(stderr, "baton: shutdown: %v\n", closeErr)
		return exitError
	}
	log.Info("stopped", "took", time.Since(start).Round(time.Millisecond))
	if failed != nil {
		fmt.Fprintf(stderr, "baton: %v\n", failed)
		return exitError
	}
	return exitOK
}

// reloadProjects re-reads the config files on SIGHUP and swaps in their
// projects; a bad file keeps the projects in force. It reports the
// changed settings against running, the configuration in force, one line
// for those applied and one for those that need a restart, and updates
// running with what was applied.
func reloadProjects(r *relay.Relay, running *config.Config, reload func() (config.Config, error), log *slog.Logger) {
	cfg, err := reload()
	if err != nil {
		log.Error("reload failed; the current projects stay in force", "err", err)
		return
	}
	n, err := r.ReloadProjects(cfg)
	if err != nil {
		log.Error("reload failed; the current projects stay in force", "err", err)
		return
	}
	var applied, restart []string
	for _, p := range config.Changed(*running, cfg) {
		if relay.AppliedOnReload(p) {
			applied = append(applied, p)
		} else {
			restart = append(restart, p)
		}
	}
	running.Projects, running.ProjectFiles, running.Defaults.Project = cfg.Projects, cfg.ProjectFiles, cfg.Defaults.Project
	running.Managed.ClientOptions = cfg.Managed.ClientOptions
	if len(applied) == 0 {
		log.Info("reloaded; no applicable setting changed", "projects", n)
	} else {
		log.Info("reloaded; applied", "settings", strings.Join(applied, ", "), "projects", n)
	}
	if len(restart) > 0 {
		log.Warn("reload: changed settings that need a restart; not applied", "settings", strings.Join(restart, ", "))
	}
}

// exampleKey is printed in the example DSN; proxy mode accepts any key.
const exampleKey = "a7c3e9f1b5d24680ace13579bdf02468"

func newLogger(cfg config.Config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.Telemetry.LogLevel.Slog()}
	if cfg.Telemetry.LogFormat == "json" {
		// Lines logged with a sampled request's context carry its trace.
		return slog.New(telemetry.LogHandler(slog.NewJSONHandler(w, opts)))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func cmdConfig(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, "Usage: baton config check FILE... | baton config default\n")
		return exitUsage
	}
	switch args[0] {
	case "check":
		if len(args) < 2 {
			fmt.Fprint(stderr, "Usage: baton config check FILE...\n")
			return exitUsage
		}
		c, err := config.Load(args[1:]...)
		if err == nil {
			err = relay.CheckProjects(c)
		}
		if err != nil {
			fmt.Fprintln(stderr, err)
			return exitError
		}
		fmt.Fprintf(stdout, "%s: ok\n", strings.Join(args[1:], ", "))
		return exitOK
	case "default":
		if len(args) > 1 {
			fmt.Fprint(stderr, "Usage: baton config default\n")
			return exitUsage
		}
		_, _ = stdout.Write(config.DefaultYAML())
		return exitOK
	default:
		fmt.Fprintf(stderr, "baton config: unknown subcommand %q\nUsage: baton config check FILE... | baton config default\n", args[0])
		return exitUsage
	}
}

func cmdBuffer(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "inspect" {
		fmt.Fprint(stderr, "Usage: baton buffer inspect [--data-dir DIR]\n")
		return exitUsage
	}
	fs := newFlagSet("baton buffer inspect", stderr, "baton buffer inspect [--data-dir DIR]")
	dir := fs.String("data-dir", config.Default().Buffer.Dir, "the buffer directory")
	if err := fs.Parse(args[1:]); err != nil {
		return exitUsage
	}
	streams, err := relay.InspectBuffer(*dir)
	if err != nil {
		var se *relay.StartupError
		if errors.As(err, &se) {
			fmt.Fprintf(stderr, "baton: %v\n", err)
		} else if errors.Is(err, os.ErrNotExist) {
			fmt.Fprintf(stderr, "baton: no buffer in %s (pass --data-dir)\n", *dir)
		} else {
			fmt.Fprintf(stderr, "baton: inspect %s: %v (is baton still running? stop it first)\n", *dir, err)
		}
		return exitError
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "stream\tclass\tpartition\tpending\titems\tbytes\toldest age\twatermark\t")
	for _, s := range streams {
		age := "-"
		if !s.Oldest.IsZero() {
			age = time.Since(s.Oldest).Round(time.Second).String()
		}
		rs := record.Stream(s.Stream)
		class := rs.Class().String()
		switch {
		case rs.IsPending():
			class += " (waiting for config)"
		case rs.IsFlushed():
			class += " (aggregated)"
		case rs.IsOutcomes():
			class += " (outcomes)"
		case rs.IsMarks():
			class = "tail sampling error marks"
		case rs.IsTail():
			class += " (waiting for its trace)"
		}
		fmt.Fprintf(tw, "%d\t%s\t%d\t%d\t%d\t%d\t%s\t%d\t\n", s.Stream, class, rs.Partition(),
			s.Pending, s.PendingWeight, s.PendingBytes, age, s.Watermark)
	}
	_ = tw.Flush()
	return exitOK
}

const credentialsUsage = "Usage: baton credentials generate [--config FILE]... [--overwrite] | baton credentials show [--config FILE]...\n"

// cmdCredentials manages the relay identity in managed.credentials (by
// default <buffer.dir>/credentials.json), in Relay's file format.
func cmdCredentials(args []string, stdout, stderr io.Writer) int {
	return credentials(args, stdout, stderr, strings.TrimPrefix(strings.TrimSpace(credentialsUsage), "Usage: "),
		func(files []string) (config.Config, error) { return config.Load(files...) })
}

// credentials runs a credentials subcommand; load reads the configuration
// that names the credentials file (--config files, when help offers them).
func credentials(args []string, stdout, stderr io.Writer, help string, load func([]string) (config.Config, error)) int {
	if len(args) == 0 || (args[0] != "generate" && args[0] != "show") {
		fmt.Fprintf(stderr, "Usage: %s\n", help)
		return exitUsage
	}
	fs := newFlagSet("baton credentials "+args[0], stderr, help)
	var files configFlags
	if strings.Contains(help, "--config") {
		fs.Var(&files, "config", "config file naming managed.credentials; repeat to overlay")
	}
	overwrite := false
	if args[0] == "generate" {
		fs.BoolVar(&overwrite, "overwrite", false, "replace existing credentials (the upstream must then accept the new key)")
	}
	if err := fs.Parse(args[1:]); err != nil || fs.NArg() > 0 {
		if err == nil {
			fs.Usage()
		}
		return exitUsage
	}
	cfg, err := load(files)
	if err != nil {
		fmt.Fprintf(stderr, "baton: invalid configuration:\n%v\n", err)
		return exitError
	}
	path := cfg.CredentialsFile()
	var c *auth.Credentials
	if args[0] == "generate" {
		if c, err = auth.Generate(); err == nil {
			if overwrite {
				err = c.SaveOverwrite(path)
			} else {
				err = c.Save(path)
			}
		}
	} else {
		c, err = auth.Load(path)
	}
	if err != nil {
		fmt.Fprintf(stderr, "baton: %v\n", err)
		return exitError
	}
	fmt.Fprintf(stdout, "credentials: %s\nrelay id:    %s\npublic key:  %s\n", path, c.ID, auth.FormatPublicKey(c.PublicKey))
	return exitOK
}
