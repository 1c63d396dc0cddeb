// Command baton-load is a closed-loop HTTP load generator for Baton, in the
// spirit of wrk: N keep-alive connections each send a Sentry envelope, wait for
// the answer and send the next one.
//
// It measures accepted (2xx) envelopes per second, latency percentiles and
// body throughput; with --ceiling it also loads a no-op fasthttp server with
// the same client and settings and prints Baton's throughput as a ratio of
// that ceiling (the project's headline metric); with --kafka it checks that
// what Baton accepted arrived in the baton.* topics.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"io"
	"net"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// options are the parsed command-line flags.
type options struct {
	url          string
	connections  int
	duration     time.Duration
	warmup       time.Duration
	timeout      time.Duration
	runs         int
	mix          string
	fixtures     string
	size         int
	pool         int
	project      int
	key          string
	keys         string
	requests     uint64
	rssPID       int
	cpuPIDs      []int    // --cpu-pid, one per target
	urls         []string // --url, split at commas; url is the first
	sizes        []int    // --sizes
	connSweep    []int    // --connections-sweep
	ceiling      bool
	ceilingURL   string
	ceilingLocal bool
	serveNoop    string
	serveKafka   string
	serveSentry  string
	knownKeys    []string
	kafka        string
	drainSettle  time.Duration
	drainTimeout time.Duration
	json         bool
	quiet        bool
	batonBin     string        // --baton: binary the scenarios start
	chain        bool          // --chain
	outage       time.Duration // --outage
	outageAfter  time.Duration // --outage-after
	rate         float64       // --rate

	projectsSweep []int  // --projects-sweep
	metricsSweep  []int  // --metrics-sweep
	metricLines   int    // --metric-lines
	batonConfig   string // --baton-config

	floors         []string // --floor
	floorDir       string   // --floor-dir
	floorKafka     string   // --floor-kafka
	serveFloor     string   // --serve-floor KIND
	serveFloorAddr string   // --serve-floor's ADDR

	// chainConcurrency, when > 0, is the edge's upstreams.up.concurrency
	// in --chain (else Baton's default).
	chainConcurrency int
}

const usageHeader = `baton-load: closed-loop load generator for Baton (Sentry envelope intake).

Usage:
  baton-load --url http://127.0.0.1:3000 --connections 64 --duration 15s [flags]
  baton-load --ceiling --runs 3 --kafka 127.0.0.1:9092      # headline metric: Baton ÷ no-op ceiling
  baton-load --serve-noop 127.0.0.1:8081                    # only run the no-op server (own process)
  baton-load --serve-kafka 127.0.0.1:9093                   # only run a kfake broker (own process) for Baton to drain into
  baton-load --serve-sentry 127.0.0.1:3900                  # only run a fake upstream Sentry (own process) for managed mode
  baton-load --serve-floor kafka 127.0.0.1:8082 --floor-dir ./floor --floor-kafka 127.0.0.1:9093   # only run one floor server (own process)

  # the durable floor beside Baton strict/relaxed and the no-op, each a process of its own, CPU of each:
  baton-load --url http://127.0.0.1:3000,http://127.0.0.1:3001 --cpu-pid $STRICT,$RELAXED --ceiling \
    --floor pebble,pebble-nosync,kafka,kafka-nosync --floor-kafka 127.0.0.1:9093 --floor-dir ./floor \
    --connections-sweep 64,256 --runs 3 --duration 10s --warmup 3s

  # cost curves, one table each (one row per point; --json for JSON):
  baton-load --url http://127.0.0.1:3000 --cpu-pid $(pgrep -f 'baton run') --ceiling --sizes 500,5k,50k,1m
  baton-load --url http://127.0.0.1:3000,http://127.0.0.1:3001 --cpu-pid $STRICT,$RELAXED \
    --connections-sweep 1,16,64,256,1024                    # two Batons: the table has first ÷ second per point

  # scenarios that start their own Batons from --baton (and Kafka: kfake in this process):
  baton-load --baton ./baton --chain --connections 64 --duration 15s --runs 3   # SDK → edge Baton → upstream Baton → Kafka, CPU per hop
  baton-load --baton ./baton --outage 10m --rate 2000                          # Kafka down 10 min at 2k req/s: backlog, RSS, drain rate
  baton-load --baton ./baton --projects-sweep 10,10000,1000000 --warmup 10s --duration 20s   # managed mode: CPU, RSS per distinct keys
  baton-load --baton ./baton --metrics-sweep 1000,100000,1000000 --duration 20s               # statsd: CPU per line, RSS per distinct series

  # 1M random keys against managed Baton (memory bound):
  baton-load --serve-sentry 127.0.0.1:3900 &
  baton run --config managed.yaml &   # mode: managed, upstream http://127.0.0.1:3900
  baton-load --url http://127.0.0.1:3000 --keys random --requests 1000000 --connections 64 --rss-pid $(pgrep -f 'baton run')

Each connection is one goroutine with its own keep-alive connection that sends
a request, waits for the answer, then sends the next. A run lasts --duration,
or until --requests have been sent (over all connections), whichever comes
first. Progress goes to stderr once per second; the report goes to stdout
(JSON with --json). Answers are counted by status code (2xx included).
Exit status: 0 ok; 1 a run accepted nothing or --kafka found missing records;
2 bad flags or setup failure.

Sweeps (--sizes, --connections-sweep, or both: every combination) measure
each point with the other flags unchanged: per point and target an unreported
--warmup, then --runs runs of --duration (targets interleaved run by run),
reported as medians. --url may then list several targets, loaded in turn at
each point; the table gives first ÷ second, and with --ceiling each target ÷
the no-op ceiling. Sizes of 100k and more are an attachment envelope: a 2 KB
error event and an attachment of random bytes making up the size. Sweeps do
not take --kafka or --rss-pid.

Flags:
`

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("baton-load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usageHeader)
		fs.PrintDefaults()
	}
	fs.StringVar(&o.url, "url", "http://127.0.0.1:3000", "Baton base `URL` (scheme://host:port, no path); with a sweep, several comma-separated")
	fs.IntVar(&o.connections, "connections", 64, "number of concurrent keep-alive connections, one closed-loop worker each")
	fs.DurationVar(&o.duration, "duration", 15*time.Second, "length of each measured run")
	fs.DurationVar(&o.warmup, "warmup", 0, "unreported warm-up load before the first run of each target (0: none)")
	fs.DurationVar(&o.timeout, "timeout", 10*time.Second, "per-request dial, write and read timeout; a timeout counts as a transport error")
	fs.IntVar(&o.runs, "runs", 1, "number of runs; with more than one the median is printed too")
	fs.StringVar(&o.mix, "mix", mixSynthetic, "payload mix: synthetic (JS error envelopes with distinct event ids), fixtures (the captured SDK requests replayed as captured: path, query, headers, gzip and chunked bodies), or both (alternating 1:1)")
	fs.StringVar(&o.fixtures, "fixtures", "cmd/baton-load/testdata/sdk-envelopes", "`dir`ectory of captured SDK requests (*.json + bodies), for --mix fixtures|both")
	fs.IntVar(&o.size, "size", 5120, "target size in `bytes` of each synthetic envelope")
	fs.IntVar(&o.pool, "pool", 16, "number of distinct synthetic envelope templates, sent round-robin")
	fs.IntVar(&o.project, "project", 1, "project id in the synthetic requests' path /api/<project>/envelope/")
	fs.StringVar(&o.key, "key", "a7c3e9f1b5d24680ace13579bdf02468", "32-hex public key sent in the synthetic requests' X-Sentry-Auth and envelope dsn (--keys fixed)")
	fs.StringVar(&o.keys, "keys", keysFixed, "public keys of the synthetic requests: fixed (--key in every request) or random (a fresh random 32-hex key per request, in X-Sentry-Auth and the envelope's dsn and trace; needs --mix synthetic)")
	fs.Uint64Var(&o.requests, "requests", 0, "stop each run after `N` requests over all connections (0: no limit); without an explicit --duration the run has no time limit, with one it stops at whichever comes first")
	fs.IntVar(&o.rssPID, "rss-pid", 0, "during each Baton run, sample /proc/`PID`/status every 250ms and report that process's peak VmRSS, final VmHWM and RSS over the run (0: off)")
	cpuPIDs := fs.String("cpu-pid", "", "read utime+stime of process `PID` from /proc/PID/stat before and after each measured run of the target and report its CPU µs per request answered (the ceiling's child process is measured too; an in-process ceiling is not: it shares this process with the load generator); with several --url targets, one comma-separated PID per target")
	sizes := fs.String("sizes", "", "payload size sweep: comma-separated synthetic envelope `sizes` in bytes, k = 1000, m = 1000000 (e.g. 500,5k,50k,1m); 100k and more are attachment envelopes")
	connSweep := fs.String("connections-sweep", "", "connections sweep: comma-separated connection `counts` (e.g. 1,16,64,256,1024)")
	fs.BoolVar(&o.ceiling, "ceiling", false, "before each Baton run, load a no-op fasthttp server with the same settings and report Baton ÷ ceiling. The server runs in a child process, as Baton runs in its own")
	fs.StringVar(&o.ceilingURL, "ceiling-url", "", "base `URL` of an external no-op server (see --serve-noop) to use as the ceiling; implies --ceiling")
	fs.BoolVar(&o.ceilingLocal, "ceiling-in-process", false, "run the ceiling's no-op server inside this process instead of a child; it then shares the load generator's scheduler and runs faster than any separate server could (about 30% on a 2-core VM); implies --ceiling")
	fs.StringVar(&o.serveKafka, "serve-kafka", "", "run only a kfake Kafka broker on `addr` (baton.* topics seeded, others created on first produce; 64 MiB retained per partition) until SIGINT/SIGTERM, so Baton's sink drains into another process")
	fs.StringVar(&o.serveSentry, "serve-sentry", "", "run only a fake upstream Sentry on `addr` until SIGINT/SIGTERM, for Baton in managed mode: relay registration, projectconfigs answering null for every key but --known-keys, envelopes 200 {}; prints the requests served on exit")
	knownKeys := fs.String("known-keys", "", "with --serve-sentry: comma-separated 32-hex public `keys` answered with a valid config of project --project (all other keys are unknown); any: every key")
	fs.StringVar(&o.serveNoop, "serve-noop", "", "run only the no-op server on `addr` (e.g. 127.0.0.1:8081) until SIGINT/SIGTERM, then print what it served")
	floors := fs.String("floor", "", "comma-separated floor server `kinds` to load beside the --url targets (a sweep; implied at --connections): pebble, pebble-nosync, kafka, kafka-nosync. Each is the least a durable relay does: a fasthttp handler that appends the body to a Pebble WAL as one batch committed with Sync (group commit; -nosync: NoSync) and answers 200; kafka kinds also produce it to Kafka (--floor-kafka) and delete it once acknowledged. Each runs in a child process whose CPU per request is measured")
	fs.StringVar(&o.floorDir, "floor-dir", "", "`directory` for the floor servers' Pebble data (put it on Baton's buffer disk; a temporary directory when empty); with --serve-floor, the Pebble directory itself, kept on exit")
	fs.StringVar(&o.floorKafka, "floor-kafka", "", "Kafka bootstrap `addr` the kafka floors produce to (topic "+floorTopic+"), e.g. a --serve-kafka broker")
	fs.StringVar(&o.serveFloor, "serve-floor", "", "run only one floor server of this `kind` (pebble, pebble-nosync, kafka, kafka-nosync) until SIGINT/SIGTERM, on the address given as the one argument after the kind (default 127.0.0.1:0); prints what it served on exit")
	fs.StringVar(&o.kafka, "kafka", "", "Kafka bootstrap `addr`; verify delivery by watching the end offsets of the baton.* topics")
	fs.DurationVar(&o.drainSettle, "drain-settle", 2*time.Second, "with --kafka: offsets must stop growing this long after the load before counting")
	fs.IntVar(&o.chainConcurrency, "chain-concurrency", 0, "with --chain: the edge's upstreams concurrency (requests in flight to the upstream Baton); 0 keeps Baton's default")
	fs.DurationVar(&o.drainTimeout, "drain-timeout", 60*time.Second, "with --kafka: stop waiting for the offsets to settle after this long")
	fs.StringVar(&o.batonBin, "baton", "", "`path` of the baton binary that --chain and --outage start (each Baton with its own config and buffer in a temporary directory, HTTP on a free port)")
	fs.BoolVar(&o.chain, "chain", false, "chain scenario: start an upstream Baton routing to Kafka (--kafka, else a kfake broker in this process) and an edge Baton forwarding to it over HTTP, load the edge with --connections for --duration, --runs times, and report req/s, p99 and each Baton's CPU per accepted request from load start until both hold nothing pending; needs --baton")
	fs.DurationVar(&o.outage, "outage", 0, "backlog drain scenario: start a Baton routing to a kfake broker in this process, send at --rate; after --outage-after stop the broker for this `duration`, then bring it back while intake continues; report the buffer on disk and Baton's RSS while the backlog grows, and the drain rate once Kafka is back ÷ the intake rate; needs --baton and --rate")
	fs.DurationVar(&o.outageAfter, "outage-after", 5*time.Second, "with --outage: steady intake before Kafka goes away")
	fs.Float64Var(&o.rate, "rate", 0, "with --outage (required) or --chain: intake in `requests/s` over all connections (paced; a connection that falls behind sends at once); --chain without it is closed-loop, and its edge then accepts faster than it forwards")
	projectsSweep := fs.String("projects-sweep", "", "projects curve: comma-separated `counts` of distinct public keys (k = 1000, m = 1000000; e.g. 10,10k,1m); per count a fresh managed Baton from --baton in front of a fake Sentry (in this process) that knows every key, routing to a kfake broker in this process, loaded for --duration after --warmup with --size error envelopes, each with one of the keys at random; reports req/s, Baton's CPU per request and RSS from the run's start until it holds nothing, and the config cache's size and fetches")
	metricsSweep := fs.String("metrics-sweep", "", "metrics curve: comma-separated `counts` of distinct metric series (e.g. 1k,100k,1m); per count a fresh Baton from --baton routing to a kfake broker in this process, loaded with envelopes of one statsd item of --metric-lines counter lines, each line one of the series at random; reports lines/s, Baton's CPU per line and RSS from the run's start until its aggregator has flushed everything, and the aggregator's buckets and bytes")
	fs.IntVar(&o.metricLines, "metric-lines", 100, "with --metrics-sweep: statsd lines per envelope")
	fs.StringVar(&o.batonConfig, "baton-config", "", "with --projects-sweep or --metrics-sweep: a YAML `file` merged over the config of every Baton started (e.g. metrics: {initial_delay: 1s} or managed: {cache: {max_projects: 100}})")
	fs.BoolVar(&o.json, "json", false, "print the report as JSON on stdout")
	fs.BoolVar(&o.quiet, "quiet", false, "no per-second progress on stderr")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if o.serveFloor != "" && fs.NArg() > 0 { // --serve-floor KIND ADDR [more flags]
		o.serveFloorAddr = fs.Arg(0)
		if err := fs.Parse(fs.Args()[1:]); err != nil {
			return o, err
		}
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q: all options are flags, see -help", fs.Args())
	}
	if o.ceilingURL != "" && o.ceilingLocal {
		return o, errors.New("--ceiling-url and --ceiling-in-process are exclusive")
	}
	if o.ceilingURL != "" || o.ceilingLocal {
		o.ceiling = true
	}
	durationSet := false
	fs.Visit(func(f *flag.Flag) { durationSet = durationSet || f.Name == "duration" })
	if o.requests > 0 && !durationSet {
		o.duration = 0 // --requests alone: no time limit
	}
	drainTimeoutSet := false
	fs.Visit(func(f *flag.Flag) { drainTimeoutSet = drainTimeoutSet || f.Name == "drain-timeout" })
	if o.outage > 0 && !drainTimeoutSet {
		o.drainTimeout = max(o.drainTimeout, 2*o.outage) // drain at 1.5× the intake takes 2× the outage
	}
	var err error
	o.urls = strings.Split(o.url, ",")
	o.url = o.urls[0]
	if o.cpuPIDs, err = parseList(*cpuPIDs, "--cpu-pid", parseCount); err != nil {
		return o, err
	}
	if o.sizes, err = parseList(*sizes, "--sizes", parseSize); err != nil {
		return o, err
	}
	if o.connSweep, err = parseList(*connSweep, "--connections-sweep", parseCount); err != nil {
		return o, err
	}
	if o.projectsSweep, err = parseList(*projectsSweep, "--projects-sweep", parseSize); err != nil {
		return o, err
	}
	if o.metricsSweep, err = parseList(*metricsSweep, "--metrics-sweep", parseSize); err != nil {
		return o, err
	}
	if *floors != "" {
		for k := range strings.SplitSeq(*floors, ",") {
			o.floors = append(o.floors, strings.TrimSpace(k))
		}
	}
	if o.serveFloor != "" && o.serveFloorAddr == "" {
		o.serveFloorAddr = "127.0.0.1:0"
	}
	if *knownKeys != "" {
		for k := range strings.SplitSeq(*knownKeys, ",") {
			o.knownKeys = append(o.knownKeys, strings.TrimSpace(k))
		}
	}
	return o, o.validate()
}

func (o *options) validate() error {
	switch {
	case o.connections < 1 || o.connections > 65535:
		return fmt.Errorf("--connections must be between 1 and 65535, got %d", o.connections)
	case o.duration < 0 || (o.duration == 0 && o.requests == 0):
		return fmt.Errorf("--duration must be positive (or 0 with --requests), got %s", o.duration)
	case o.timeout <= 0:
		return fmt.Errorf("--timeout must be positive, got %s", o.timeout)
	case o.runs < 1:
		return fmt.Errorf("--runs must be at least 1, got %d", o.runs)
	case o.size < 256:
		return fmt.Errorf("--size must be at least 256 bytes, got %d", o.size)
	case o.pool < 1:
		return fmt.Errorf("--pool must be at least 1, got %d", o.pool)
	case o.project < 1:
		return fmt.Errorf("--project must be a positive integer, got %d", o.project)
	case !isHex32(o.key):
		return fmt.Errorf("--key must be 32 lower-case hex digits, got %q", o.key)
	case o.mix != mixSynthetic && o.mix != mixFixtures && o.mix != mixBoth:
		return fmt.Errorf("--mix must be synthetic, fixtures or both, got %q", o.mix)
	case o.keys != keysFixed && o.keys != keysRandom:
		return fmt.Errorf("--keys must be fixed or random, got %q", o.keys)
	case o.keys == keysRandom && o.mix != mixSynthetic:
		return fmt.Errorf("--keys random needs --mix synthetic: fixture requests carry their captured keys in query strings, headers and compressed bodies")
	case o.rssPID < 0:
		return fmt.Errorf("--rss-pid must be a process id, got %d", o.rssPID)
	}
	if err := o.validateFloor(); err != nil {
		return err
	}
	if err := o.validateSweep(); err != nil {
		return err
	}
	if err := o.validateScenario(); err != nil {
		return err
	}
	if err := o.validateCurve(); err != nil {
		return err
	}
	for _, k := range o.knownKeys {
		if !isHex32(k) && k != anyKeys {
			return fmt.Errorf("--known-keys: %q is not 32 lower-case hex digits", k)
		}
	}
	return nil
}

// sweeping reports whether the flags ask for a sweep (--floor is one).
func (o *options) sweeping() bool {
	return len(o.sizes) > 0 || len(o.connSweep) > 0 || len(o.floors) > 0
}

func (o *options) validateFloor() error {
	kafka := false
	for i, k := range o.floors {
		if !slices.Contains(floorKinds, k) {
			return fmt.Errorf("--floor: unknown kind %q, want some of %s", k, strings.Join(floorKinds, ","))
		}
		if slices.Contains(o.floors[:i], k) {
			return fmt.Errorf("--floor: %s listed twice", k)
		}
		kafka = kafka || floorProduces(k)
	}
	switch {
	case o.serveFloor != "" && !slices.Contains(floorKinds, o.serveFloor):
		return fmt.Errorf("--serve-floor: unknown kind %q, want one of %s", o.serveFloor, strings.Join(floorKinds, ", "))
	case o.serveFloor != "" && floorProduces(o.serveFloor) && o.floorKafka == "":
		return fmt.Errorf("--serve-floor %s produces to Kafka: give the broker with --floor-kafka", o.serveFloor)
	case kafka && o.floorKafka == "":
		return errors.New("--floor kafka kinds produce to Kafka: give the broker with --floor-kafka (e.g. a --serve-kafka process)")
	case o.serveFloor == "" && len(o.floors) == 0 && (o.floorDir != "" || o.floorKafka != ""):
		return errors.New("--floor-dir and --floor-kafka apply to --floor and --serve-floor only")
	}
	return nil
}

func (o *options) validateSweep() error {
	for _, u := range o.urls {
		if _, err := parseTarget(u); err != nil {
			return fmt.Errorf("--url: %w", err)
		}
	}
	for _, n := range o.sizes {
		if n < 256 {
			return fmt.Errorf("--sizes: %d is below the smallest envelope, 256 bytes", n)
		}
	}
	for _, n := range o.connSweep {
		if n > 65535 {
			return fmt.Errorf("--connections-sweep: %d is more than 65535 connections", n)
		}
	}
	switch {
	case len(o.cpuPIDs) > 0 && len(o.cpuPIDs) != len(o.urls):
		return fmt.Errorf("--cpu-pid lists %d processes for %d --url targets: give one per target", len(o.cpuPIDs), len(o.urls))
	case !o.sweeping() && len(o.urls) > 1:
		return fmt.Errorf("--url lists %d targets: several targets need a sweep (--sizes or --connections-sweep)", len(o.urls))
	case !o.sweeping():
		return nil
	case len(o.sizes) > 0 && o.mix != mixSynthetic:
		return fmt.Errorf("--sizes needs --mix synthetic: fixtures have their captured sizes")
	case o.kafka != "":
		return fmt.Errorf("--kafka does not apply to sweeps: check delivery with a plain run")
	case o.rssPID != 0:
		return fmt.Errorf("--rss-pid does not apply to sweeps: measure memory with a plain run")
	}
	return nil
}

func (o *options) validateScenario() error {
	switch {
	case o.outage < 0:
		return fmt.Errorf("--outage must be a positive duration, got %s", o.outage)
	case o.rate < 0:
		return fmt.Errorf("--rate must be positive, got %g", o.rate)
	case !o.chain && o.outage == 0 && o.rate > 0:
		return errors.New("--rate applies to --outage and --chain only")
	case !o.chain && o.outage == 0:
		return nil
	case o.chain && o.outage > 0:
		return errors.New("--chain and --outage are separate scenarios: give one")
	case o.batonBin == "":
		return errors.New("--chain and --outage start their own Batons: give the binary with --baton")
	case o.sweeping() || o.ceiling || o.rssPID != 0 || len(o.cpuPIDs) > 0:
		return errors.New("--chain and --outage measure the Batons they start: drop --sizes, --connections-sweep, --ceiling, --rss-pid and --cpu-pid")
	case o.mix != mixSynthetic:
		return errors.New("--chain and --outage send synthetic envelopes (they count them in Kafka): drop --mix")
	case o.outage > 0 && o.rate == 0:
		return errors.New("--outage needs an intake rate: --rate")
	case o.outage > 0 && o.kafka != "":
		return errors.New("--outage stops and restarts its own kfake broker: drop --kafka")
	case o.outageAfter <= 0:
		return fmt.Errorf("--outage-after must be positive, got %s", o.outageAfter)
	}
	return nil
}

// curving reports whether the flags ask for --projects-sweep or --metrics-sweep.
func (o *options) curving() bool { return len(o.projectsSweep) > 0 || len(o.metricsSweep) > 0 }

func (o *options) validateCurve() error {
	switch {
	case !o.curving():
		if o.batonConfig != "" {
			return errors.New("--baton-config applies to --projects-sweep and --metrics-sweep only")
		}
		return nil
	case len(o.projectsSweep) > 0 && len(o.metricsSweep) > 0:
		return errors.New("--projects-sweep and --metrics-sweep are separate curves: give one")
	case o.batonBin == "":
		return errors.New("--projects-sweep and --metrics-sweep start their own Batons: give the binary with --baton")
	case o.sweeping() || o.chain || o.outage > 0 || o.ceiling || o.rssPID != 0 || len(o.cpuPIDs) > 0 || o.kafka != "":
		return errors.New("--projects-sweep and --metrics-sweep measure the Batons they start, into their own kfake: drop --sizes, --connections-sweep, --chain, --outage, --ceiling, --rss-pid, --cpu-pid and --kafka")
	case o.mix != mixSynthetic || o.keys != keysFixed:
		return errors.New("--projects-sweep and --metrics-sweep choose their own payloads and keys: drop --mix and --keys")
	case o.metricLines < 1:
		return fmt.Errorf("--metric-lines must be at least 1, got %d", o.metricLines)
	}
	if o.batonConfig != "" {
		if _, err := os.Stat(o.batonConfig); err != nil {
			return fmt.Errorf("--baton-config: %w", err)
		}
	}
	return nil
}

// parseList parses a comma-separated list with parse; empty is nil.
func parseList(s, flagName string, parse func(string) (int, error)) ([]int, error) {
	if s == "" {
		return nil, nil
	}
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		n, err := parse(strings.TrimSpace(f))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", flagName, err)
		}
		out = append(out, n)
	}
	return out, nil
}

// parseCount parses a positive integer.
func parseCount(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("%q is not a positive integer", s)
	}
	return n, nil
}

// parseSize parses a byte count with an optional decimal suffix: k (1000)
// or m (1000000), so that 1m stays under Kafka's default 1 MiB record limit.
func parseSize(s string) (int, error) {
	num, mult := s, 1
	switch {
	case strings.HasSuffix(strings.ToLower(s), "k"):
		num, mult = s[:len(s)-1], 1000
	case strings.HasSuffix(strings.ToLower(s), "m"):
		num, mult = s[:len(s)-1], 1000_000
	}
	n, err := strconv.Atoi(num)
	if err != nil || n < 1 || n > 100_000_000/mult {
		return 0, fmt.Errorf("%q is not a size: want bytes with an optional k or m, e.g. 500, 5k, 1m", s)
	}
	return n * mult, nil
}

func isHex32(s string) bool {
	if len(s) != 32 {
		return false
	}
	for i := range len(s) {
		if !strings.ContainsRune(hexDigits, rune(s[i])) {
			return false
		}
	}
	return true
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is the whole tool behind main; it returns the exit status: 0 on
// success, 1 when a run accepted nothing or a Kafka delivery check found
// missing records, 2 on errors (bad flags, unreachable broker, unreadable fixtures).
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "baton-load:", err)
		return 2
	}
	if o.serveKafka != "" {
		return serveKafka(ctx, o.serveKafka, stdout, stderr)
	}
	if o.serveNoop != "" {
		if os.Getenv(childEnv) != "" {
			var cancel context.CancelFunc
			ctx, cancel = untilStdinEOF(ctx, os.Stdin)
			defer cancel()
		}
		return serveNoop(ctx, o.serveNoop, stdout, stderr)
	}
	if o.serveSentry != "" {
		return serveSentry(ctx, o, stdout, stderr)
	}
	if o.serveFloor != "" {
		if os.Getenv(childEnv) != "" {
			var cancel context.CancelFunc
			ctx, cancel = untilStdinEOF(ctx, os.Stdin)
			defer cancel()
		}
		return serveFloor(ctx, o, stdout, stderr)
	}
	if o.sweeping() {
		return runSweep(ctx, o, stdout, stderr)
	}
	if o.chain {
		return runChain(ctx, o, stdout, stderr)
	}
	if o.outage > 0 {
		return runOutage(ctx, o, stdout, stderr)
	}
	if o.curving() {
		return runCurve(ctx, o, stdout, stderr)
	}
	rep, err := benchmark(ctx, o, stderr)
	return finish(rep, err, writeReport, (*report).failure, o.json, stdout, stderr)
}

// finish writes a scenario's report rep and returns baton-load's exit
// status: 2 when the scenario could not run (err) or the report could not
// be written, 1 when failure(rep) names what went wrong, 0 otherwise.
func finish[R any](rep R, err error, write func(io.Writer, R, bool) error, failure func(R) string, asJSON bool, stdout, stderr io.Writer) int {
	if err != nil {
		fmt.Fprintln(stderr, "baton-load:", err)
		return 2
	}
	if err := write(stdout, rep, asJSON); err != nil {
		fmt.Fprintln(stderr, "baton-load: write report:", err)
		return 2
	}
	if msg := failure(rep); msg != "" {
		fmt.Fprintln(stderr, "baton-load: FAIL:", msg)
		return 1
	}
	return 0
}

// serveKafka runs only a kfake broker until ctx is done.
func serveKafka(ctx context.Context, addr string, stdout, stderr io.Writer) int {
	c, err := startKfake(ctx, addr)
	if err != nil {
		fmt.Fprintln(stderr, "baton-load:", err)
		return 2
	}
	defer c.Close()
	fmt.Fprintf(stdout, "kfake broker listening on %s; stop with Ctrl-C\n", c.ListenAddrs()[0])
	<-ctx.Done()
	return 0
}

// batonTopics are seeded in every kfake broker baton-load runs.
var batonTopics = []string{"baton.error", "baton.transaction", "baton.session", "baton.check_in", "baton.log",
	"baton.span", "baton.client_report", "baton.attachment", "baton.security", "baton.metric"}

// startKfake starts a kfake broker on addr (host:port) with the baton.*
// topics and the floor servers' topic seeded. Retention is set per topic, so a long benchmark does not
// fill memory.
func startKfake(ctx context.Context, addr string) (*kfake.Cluster, error) {
	host, portStr, err := net.SplitHostPort(addr)
	port, perr := strconv.Atoi(portStr)
	if err != nil || perr != nil {
		return nil, fmt.Errorf("kafka address %q: want host:port", addr)
	}
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(port), kfake.AllowAutoTopicCreation(),
		kfake.ListenFn(func(network, _ string) (net.Listener, error) {
			return net.Listen(network, net.JoinHostPort(host, portStr))
		}),
		kfake.BrokerConfigs(map[string]string{"log.cleaner.backoff.ms": "5000"}),
		kfake.SeedTopics(1, append(slices.Clone(batonTopics), floorTopic)...))
	if err != nil {
		return nil, fmt.Errorf("start kfake: %w", err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		c.Close()
		return nil, err
	}
	retention := strconv.Itoa(64 << 20)
	_, err = kadm.NewClient(cl).AlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: "retention.bytes", Value: &retention}}, append(slices.Clone(batonTopics), floorTopic)...)
	cl.Close()
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("set retention: %w", err)
	}
	return c, nil
}

// serveNoop runs only the no-op server until ctx is done.
func serveNoop(ctx context.Context, addr string, stdout, stderr io.Writer) int {
	n, err := startNoop(addr)
	if err != nil {
		fmt.Fprintln(stderr, "baton-load:", err)
		return 2
	}
	fmt.Fprintf(stdout, noopListening, n.URL())
	<-ctx.Done()
	if err := n.Close(); err != nil {
		fmt.Fprintln(stderr, "baton-load:", err)
		return 2
	}
	fmt.Fprintf(stdout, "no-op server served %d requests, %d body bytes\n", n.served.Load(), n.bytes.Load())
	return 0
}
