package config

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestRelayDirTranslates(t *testing.T) {
	dir := filepath.Join("testdata", "relaydir", "full")
	c, d, err := LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	up := c.Upstreams[RelayUpstream]
	for _, tc := range []struct {
		group, name string
		got, want   any
	}{
		{"relay", "mode", c.Mode, ModeManaged},
		{"relay", "upstream", up.URLs, []string{"http://upstream.example:8080/"}},
		{"relay", "host:port", c.Server.Listen, "0.0.0.0:3001"},
		{"relay", "managed upstream", c.Managed.Upstream, RelayUpstream},
		{"relay", "route", c.Routes[DefaultRoute].Dest, Destination(UpstreamDest{Upstream: RelayUpstream})},
		{"dir", "credentials", c.CredentialsFile(), filepath.Join(dir, "credentials.json")},
		{"dir", "buffer", c.Buffer.Dir, filepath.Join(dir, "baton-data")},
		{"http", "timeout", up.Timeout, 7 * time.Second},
		{"http", "connection_timeout", up.ConnectTimeout, 2 * time.Second},
		{"http", "max_retry_interval", up.MaxRetryInterval, 30 * time.Second},
		{"http", "outage_grace_period", up.OutageGracePeriod, 20 * time.Second},
		{"http", "encoding", up.Compression, CompressionNone},
		{"http", "forward", c.Server.ForwardUnknown, false},
		{"http", "auth_interval", c.Managed.AuthInterval, 300 * time.Second},
		{"limits", "max_envelope_size", c.Limits.MaxEnvelopeSize, 100 * MB},
		{"limits", "max_event_size (Relay's KB is 1024)", c.Limits.MaxEventSize, 2 * KiB},
		{"limits", "max_attachment_size", c.Limits.MaxAttachmentSize, MiB},
		{"limits", "max_api_file_upload_size", c.Limits.MaxAPIFileUploadSize, MiB},
		{"limits", "max_concurrent_requests", up.MaxConns, 50},
		{"limits", "max_concurrent_queries", c.Managed.Fetch.Concurrency, 3},
		{"limits", "query_timeout", c.Managed.Fetch.Timeout, 20 * time.Second},
		{"limits", "shutdown_timeout", c.Server.ShutdownTimeout, 4 * time.Second},
		{"limits", "keepalive_timeout", c.Server.IdleTimeout, 9 * time.Second},
		{"limits", "max_connections", c.Server.MaxConnections, 500},
		{"cache", "project_expiry", c.Managed.Cache.Expiry, time.Minute},
		{"cache", "project_grace_period", c.Managed.Cache.Grace, 5 * time.Second},
		{"cache", "miss_expiry", c.Managed.Cache.MissExpiry, 30 * time.Second},
		{"cache", "relay_expiry", c.Managed.Cache.RelayExpiry, 1800 * time.Second},
		{"cache", "batch_interval 0 (at once)", c.Managed.Fetch.BatchInterval, time.Millisecond},
		{"cache", "batch_size", c.Managed.Fetch.BatchSize, 100},
		{"cache", "file_interval", d.FileInterval, 3 * time.Second},
		{"auth", "static_relays", c.Auth.StaticRelays["3a1e3f0c-6a47-4b0e-9a27-6c2c3fe4e5d1"],
			StaticRelay{PublicKey: "9mK2aXJ8nq0fZRs8kK2V2dY9cP7mUq3aTvdQ8qkVt0A", Internal: true}},
		{"auth", "signature_max_age", c.Auth.SignatureMaxAge, 2 * time.Minute},
		{"aggregator", "bucket_interval", c.Metrics.BucketInterval, 5 * time.Second},
		{"aggregator", "initial_delay", c.Metrics.InitialDelay, time.Second},
		{"aggregator", "max_secs_in_past", c.Metrics.MaxPast, time.Hour},
		{"aggregator", "max_secs_in_future", c.Metrics.MaxFuture, 10 * time.Second},
		{"aggregator", "max_total_bucket_bytes", c.Metrics.MaxBytes, 32 * MiB},
		{"aggregator", "max_project_key_bucket_bytes", c.Metrics.MaxProjectBytes, 8 * MiB},
		{"aggregator", "flush_partitions", c.Metrics.FlushPartitions, 4},
		{"outcomes", "emit_outcomes", c.Outcomes.EmitOutcomes, "true"},
		{"outcomes", "batch_size", c.Outcomes.BatchSize, 200},
		{"outcomes", "batch_interval", c.Outcomes.BatchInterval, 250 * time.Millisecond},
		{"outcomes", "source", c.Outcomes.Source, "edge-relay"},
		{"normalization", "level", c.Normalization.Level, NormalizationDisabled},
		{"logging", "level trace", c.Telemetry.LogLevel, LogDebug},
		{"logging", "format", c.Telemetry.LogFormat, LogFormat("json")},
		{"projects", "keys (enabled only)", c.Projects["42"].PublicKeys, []string{"e12d836b15bb49d7bbf99e64295d995b"}},
		{"projects", "allowedDomains", c.Projects["42"].AllowedDomains, []string{"example.com"}},
	} {
		if !equal(tc.got, tc.want) {
			t.Errorf("%s.%s: got %#v, want %#v", tc.group, tc.name, tc.got, tc.want)
		}
	}
	if len(c.Projects) != 1 {
		t.Errorf("projects: %v", c.Projects)
	}
}

func equal(a, b any) bool {
	as, aok := a.([]string)
	bs, bok := b.([]string)
	if aok && bok {
		return slices.Equal(as, bs)
	}
	return a == b
}

func TestRelayDirIgnored(t *testing.T) {
	c, d, err := LoadDir(filepath.Join("testdata", "relaydir", "full"))
	if err != nil {
		t.Fatal(err)
	}
	// config.quotas, piiConfig and Baton's own parts (grouping,
	// clientOptions) take effect (Project.Relay); config.trustedRelays
	// does not.
	want := []string{
		"aggregator.flush_batching", "limits.max_thread_count",
		"logging.enable_backtraces", "metrics.statsd", "outcomes.emit_client_outcomes",
		"projects/42.json: config.trustedRelays", "relay.tls_identity_path", "sentry",
	}
	if !slices.Equal(d.Ignored, want) {
		t.Errorf("ignored:\n got %q\nwant %q", d.Ignored, want)
	}
	file, err := os.ReadFile(filepath.Join("testdata", "relaydir", "full", "projects", "42.json"))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Projects["42"].Relay; !bytes.Equal(got, file) {
		t.Errorf("projects.42 Relay = %q, want the file verbatim", got)
	}
}

func TestRelayDirProcessing(t *testing.T) {
	c, d, err := LoadDir(filepath.Join("testdata", "relaydir", "processing"))
	if err != nil {
		t.Fatal(err)
	}
	k := c.Kafka.Clusters["processing"]
	if !slices.Equal(k.Brokers, []string{"k1:9092", "k2:9092"}) || !k.TLS.Enabled || k.SASL.Mechanism != SASLScramSHA512 ||
		k.SASL.Username != "relay" || string(k.SASL.Password) != "secret" || k.MaxMessageBytes != 2*MiB {
		t.Errorf("cluster: %+v", k)
	}
	for class, topic := range map[string]string{"error": "my-events", "security": "my-events", "transaction": "ingest-transactions",
		"log": "snuba-items", "check_in": "ingest-monitors"} {
		if got := c.Routes[class].Dest; got != Destination((KafkaDest{Kafka: "processing", Topic: topic})) {
			t.Errorf("route %s = %#v, want topic %s", class, got, topic)
		}
	}
	want := []string{"processing.kafka_config: queue.buffering.max.ms", "processing.redis", "processing.topics.outcomes"}
	if !slices.Equal(d.Ignored, want) {
		t.Errorf("ignored %q, want %q", d.Ignored, want)
	}
}

func writeDir(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestRelayDirDefaults(t *testing.T) {
	dir := writeDir(t, map[string]string{"config.yml": "---\n"})
	c, d, err := LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if c.Mode != ModeManaged || !slices.Equal(c.Upstreams[RelayUpstream].URLs, []string{RelayDefaultUpstream}) ||
		c.Server.Listen != Default().Server.Listen || len(d.Ignored) != 0 || d.FileInterval != DefaultFileInterval {
		t.Errorf("an empty config.yml is not Relay's defaults: mode %s, upstream %v, listen %s, ignored %v",
			c.Mode, c.Upstreams[RelayUpstream].URLs, c.Server.Listen, d.Ignored)
	}
	if _, _, err := LoadDir(t.TempDir()); !errors.Is(err, ErrRead) || !strings.Contains(err.Error(), "config.yml") {
		t.Errorf("a directory without config.yml: %v", err)
	}
}

func TestRelayDirBatonOverlay(t *testing.T) {
	dir := writeDir(t, map[string]string{
		"config.yml": "relay:\n  mode: proxy\nhttp:\n  timeout: 3\n",
		"baton.yml":  "buffer:\n  dir: /var/lib/baton\nupstreams:\n  relay:\n    timeout: 9s\n    max_failures: 2\n",
	})
	c, d, err := LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if up := c.Upstreams[RelayUpstream]; up.Timeout != 9*time.Second || up.MaxFailures != 2 || c.Buffer.Dir != "/var/lib/baton" || c.Mode != ModeProxy {
		t.Errorf("baton.yml does not overlay: %+v, buffer %s", up, c.Buffer.Dir)
	}
	if len(d.Files) != 2 || filepath.Base(d.Files[1]) != "baton.yml" {
		t.Errorf("files %v", d.Files)
	}
}

func TestRelayDirErrors(t *testing.T) {
	dir := writeDir(t, map[string]string{
		"config.yml": `relay:
  mode: capture
  port: three
http:
  timeout: 5s
  encoding: br
limits:
  max_event_size: [1]
cache:
  miss_expiry: 0
auth:
  static_relays: none
logging:
  level: loud
outcomes:
  emit_outcomes: sometimes
  source: [a]
`,
		"baton.yml": "server:\n  listn: x\n",
	})
	_, _, err := LoadDir(dir)
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("want Errors, got %v", err)
	}
	cfg := filepath.Join(dir, "config.yml")
	want := []string{
		cfg + `:2: relay.mode: "capture" is not a mode Baton runs: want managed, proxy or static`,
		cfg + `:3: relay.port: expected a port number, as Relay reads it, got "three"`,
		cfg + `:5: http.timeout: expected a whole number of seconds, as Relay reads it, got "5s"`,
		cfg + `:6: http.encoding: "br": Baton sends identity, gzip or zstd`,
		cfg + `:8: limits.max_event_size: expected a byte size, got a list`,
		cfg + `:10: cache.miss_expiry (managed.cache.miss_expiry): must be a duration greater than 0, e.g. "30s"`,
		cfg + `:12: auth.static_relays: expected a mapping of relay ids to {public_key, internal}, got "none"`,
		cfg + `:14: logging.level: "loud" is not a log level: want off, error, warn, info, debug or trace`,
		cfg + `:16: outcomes.emit_outcomes: expected true or false, got "sometimes"`,
		cfg + `:17: outcomes.source: expected a string, got a list`,
		filepath.Join(dir, "baton.yml") + `:2: server.listn: unknown key (did you mean "listen"?)`,
	}
	got := strings.Split(errs.Error(), "\n")
	if !slices.Equal(got, want) {
		t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestRelayKeysInReadme keeps the README's mapping table complete: each
// translated key is in the first cell of a row, as `section.key` or as a
// `key` after a `section.first` of the same cell.
func TestRelayKeysInReadme(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for line := range strings.Lines(string(readme)) {
		cell, _, ok := strings.Cut(strings.TrimPrefix(line, "| "), " | ")
		if !ok || !strings.HasPrefix(line, "| `") {
			continue
		}
		section := ""
		for i, part := range strings.Split(cell, "`") {
			if i%2 == 0 {
				continue
			}
			if sec, _, ok := strings.Cut(part, "."); ok {
				section = sec
				documented[part] = true
			} else if section != "" {
				documented[section+"."+part] = true
			}
		}
	}
	for k := range relayKeys {
		if !documented[k] {
			t.Errorf("README's Relay mapping table lacks %s", k)
		}
	}
}

// Relay's http.auth_interval of null, like 0, registers once.
func TestRelayDirAuthIntervalNull(t *testing.T) {
	for _, v := range []string{"null", "~", "0"} {
		dir := writeDir(t, map[string]string{"config.yml": "relay:\n  mode: managed\n  upstream: http://127.0.0.1:1/\nhttp:\n  auth_interval: " + v + "\n"})
		c, _, err := LoadDir(dir)
		if err != nil {
			t.Fatalf("auth_interval %s: %v", v, err)
		}
		if c.Managed.AuthInterval != 0 {
			t.Errorf("auth_interval %s: managed.auth_interval %s, want 0", v, c.Managed.AuthInterval)
		}
	}
}

// Relay's outcomes keys take Baton's values: emit_outcomes false and
// as_client_reports, a null source, and a batch_interval of 0 (at once).
func TestRelayDirOutcomes(t *testing.T) {
	for _, tc := range []struct {
		yaml, mode, source string
		interval           time.Duration
	}{
		{"emit_outcomes: false\n  source: null\n  batch_interval: 0", "false", "", time.Millisecond},
		{"emit_outcomes: as_client_reports\n  source: edge", "as_client_reports", "edge", Default().Outcomes.BatchInterval},
	} {
		dir := writeDir(t, map[string]string{"config.yml": "relay:\n  mode: proxy\noutcomes:\n  " + tc.yaml + "\n"})
		c, _, err := LoadDir(dir)
		if err != nil {
			t.Fatalf("%q: %v", tc.yaml, err)
		}
		if o := c.Outcomes; o.EmitOutcomes != tc.mode || o.Source != tc.source || o.BatchInterval != tc.interval {
			t.Errorf("%q: outcomes %+v, want %s, source %q, interval %s", tc.yaml, o, tc.mode, tc.source, tc.interval)
		}
	}
}

// TestRelayDirEnvironment: Relay's documented environment overrides win
// over config.yml, and the credentials they carry replace credentials.json.
func TestRelayDirEnvironment(t *testing.T) {
	dir := writeDir(t, map[string]string{
		"config.yml": "relay: {mode: proxy, upstream: \"http://config.example/\", host: 192.0.2.1, port: 3001}\n",
	})
	t.Setenv("RELAY_MODE", "managed")
	t.Setenv("RELAY_UPSTREAM_URL", "http://env.example:9000/")
	t.Setenv("RELAY_HOST", "127.0.0.1")
	t.Setenv("RELAY_PORT", "3999")
	t.Setenv("RELAY_SECRET_KEY", "sec")
	t.Setenv("RELAY_PUBLIC_KEY", "pub")
	t.Setenv("RELAY_ID", "id")
	c, _, err := LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		got, want any
	}{
		{"mode", c.Mode, ModeManaged},
		{"upstream", c.Upstreams[RelayUpstream].URLs, []string{"http://env.example:9000/"}},
		{"managed upstream", c.Managed.Upstream, RelayUpstream},
		{"listen", c.Server.Listen, "127.0.0.1:3999"},
		{"credentials", [3]string{c.Managed.SecretKey, c.Managed.PublicKey, c.Managed.RelayID}, [3]string{"sec", "pub", "id"}},
	} {
		if !reflect.DeepEqual(tc.got, tc.want) {
			t.Errorf("%s = %v, want %v", tc.name, tc.got, tc.want)
		}
	}

	t.Setenv("RELAY_PORT", "three")
	t.Setenv("RELAY_PUBLIC_KEY", "")
	_, _, err = LoadDir(dir)
	cfg := filepath.Join(dir, "config.yml")
	for _, want := range []string{
		cfg + `:1: RELAY_PORT: expected a port number, as Relay reads it, got "three"`,
		cfg + `:1: RELAY_PUBLIC_KEY: RELAY_SECRET_KEY is set but RELAY_PUBLIC_KEY is not`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("errors %v\nlack %q", err, want)
		}
	}
}
