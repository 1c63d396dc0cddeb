package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.yaml.in/yaml/v3"

	"github.com/baton-relay/baton/envelope"
)

var testdataFS = os.DirFS("testdata")

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// problemsOf returns the problem lines of err, failing if err is not Errors.
func problemsOf(t *testing.T, err error) []string {
	t.Helper()
	if err == nil {
		return nil
	}
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("error is %T, not config.Errors: %v", err, err)
	}
	return strings.Split(errs.Error(), "\n")
}

// parse parses one YAML document given as lines.
func parse(t *testing.T, lines ...string) (Config, []string) {
	t.Helper()
	c, err := Parse("test.yaml", []byte(strings.Join(lines, "\n")+"\n"))
	return c, problemsOf(t, err)
}

func TestDefault(t *testing.T) {
	c := Default()
	if err := c.Validate(); err != nil {
		t.Fatalf("default config is invalid:\n%v", err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"mode", c.Mode, ModeProxy},
		{"server.listen", c.Server.Listen, "127.0.0.1:3000"},
		{"server.read_timeout", c.Server.ReadTimeout, 30 * time.Second},
		{"server.max_header_bytes", c.Server.MaxHeaderBytes, 16 * KiB},
		{"server.max_inflight_bytes", c.Server.MaxInflightBytes, 48 * MiB},
		{"server.forward_unknown", c.Server.ForwardUnknown, true},
		{"limits.max_envelope_size", c.Limits.MaxEnvelopeSize, 200 * MiB},
		{"limits.max_event_size", c.Limits.MaxEventSize, 1 * MiB},
		{"limits.max_attachment_count", c.Limits.MaxAttachmentCount, 30},
		{"buffer.dir", c.Buffer.Dir, "./baton-data"},
		{"buffer.max_bytes", c.Buffer.MaxBytes, 10 * GiB},
		{"buffer.max_age", c.Buffer.MaxAge, 72 * time.Hour},
		{"buffer.durability", c.Buffer.Durability, DurabilityStrict},
		{"kafka.embedded.listen", c.Kafka.Embedded.Listen, "127.0.0.1:9092"},
		{"routes", c.Routes, map[string]Route{DefaultRoute: {Dest: KafkaDest{Kafka: EmbeddedCluster, Topic: "baton.{class}"},
			WhenFull: WhenFullReject, Steer: SteerProject}}},
		{"managed.cache.expiry", c.Managed.Cache.Expiry, 300 * time.Second},
		{"managed.fetch.batch_size", c.Managed.Fetch.BatchSize, 500},
		{"telemetry.log_level", c.Telemetry.LogLevel, LogInfo},
		{"telemetry.trace_sample_ratio", c.Telemetry.TraceSampleRatio, 0.01},
		{"runtime.memory_limit", c.Runtime.MemoryLimit, ByteSize(0)},
		{"defaults.upstream.compression", c.Defaults.Upstream.Compression, CompressionGzip},
		{"defaults.project.allowed_domains", c.Defaults.Project.AllowedDomains, []string{"*"}},
		{"credentials file", c.CredentialsFile(), "baton-data/credentials.json"},
		{"uses embedded kafka", c.UsesEmbeddedKafka(), true},
		{"error route", c.RouteFor(envelope.ClassError).Dest, Destination(KafkaDest{Kafka: EmbeddedCluster, Topic: "baton.error"})},
	}
	for _, ch := range checks {
		if !reflect.DeepEqual(ch.got, ch.want) {
			t.Errorf("%s = %#v, want %#v", ch.name, ch.got, ch.want)
		}
	}
	if c.Upstreams == nil || len(c.Upstreams) != 0 || len(c.Projects) != 0 {
		t.Errorf("default upstreams/projects = %v/%v, want empty", c.Upstreams, c.Projects)
	}
	loaded, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(loaded, c) {
		t.Errorf("Load() differs from Default()")
	}
	// Default returns a fresh copy each time.
	c.Routes["error"] = Route{Dest: UpstreamDest{Upstream: "x"}}
	if _, ok := Default().Routes["error"]; ok {
		t.Error("mutating one Default() changed the next")
	}
}

// TestDefaultYAMLDocumentsEverything checks that default.yaml sets every field
// of the schema (map entries through the defaults templates) and that every
// key has a comment.
func TestDefaultYAMLDocumentsEverything(t *testing.T) {
	var doc yaml.Node
	if err := yaml.Unmarshal(DefaultYAML(), &doc); err != nil {
		t.Fatal(err)
	}
	root := doc.Content[0]
	var walk func(n *yaml.Node, typ reflect.Type, path string)
	walk = func(n *yaml.Node, typ reflect.Type, path string) {
		if typ.Kind() != reflect.Struct || typ == durationType {
			return
		}
		fields := structFields(typ)
		for _, name := range fields.names {
			i := keyIndex(n, name)
			if i < 0 {
				t.Errorf("default.yaml lacks %s", joinPath(path, name))
				continue
			}
			if k := n.Content[i]; k.HeadComment == "" && k.LineComment == "" {
				t.Errorf("default.yaml:%d: %s has no comment", k.Line, joinPath(path, name))
			}
			if f := typ.Field(fields.index(name)); f.Type.Kind() == reflect.Struct {
				walk(n.Content[i+1], f.Type, joinPath(path, name))
			}
		}
	}
	walk(root, reflect.TypeFor[Config](), "")
	// Map entries are documented by their templates; check the pairing.
	for _, tm := range templates {
		if lookup(root, tm.template...) == nil || lookup(root, tm.entries...) == nil {
			t.Errorf("template %v for %v missing from default.yaml", tm.template, tm.entries)
		}
	}
	if got := string(DefaultYAML()); got != string(defaultYAML) {
		t.Error("DefaultYAML does not return the embedded file")
	}
}

func TestOverlay(t *testing.T) {
	c, err := Load("testdata/base.yaml", "testdata/region-eu.yaml")
	if err != nil {
		t.Fatal(err)
	}
	sentry := c.Upstreams["sentry"]
	checks := []struct {
		name      string
		got, want any
	}{
		// Later scalars win; earlier keys the later file does not touch stay.
		{"server.listen", c.Server.Listen, "0.0.0.0:3100"},
		{"server.read_timeout", c.Server.ReadTimeout, 20 * time.Second},
		{"server.write_timeout (default)", c.Server.WriteTimeout, 30 * time.Second},
		// Lists are replaced, not appended; maps merge deeply.
		{"sentry urls", sentry.URLs, []string{"https://eu.ingest.example.com/"}},
		{"sentry timeout (base)", sentry.Timeout, 10 * time.Second},
		{"sentry compression (region)", sentry.Compression, CompressionZstd},
		{"sentry max_conns (template)", sentry.MaxConns, 100},
		{"main brokers", c.Kafka.Clusters["main"].Brokers, []string{"eu-kafka:9092"}},
		{"main client_id (base)", c.Kafka.Clusters["main"].ClientID, "baton-base"},
		{"main compression (template)", c.Kafka.Clusters["main"].Compression, CompressionSnappy},
		// null removes the metric route; setting upstream on default drops
		// the inherited kafka and topic.
		{"routes", c.Routes, map[string]Route{
			"error":      {Dest: UpstreamDest{Upstream: "sentry"}, WhenFull: WhenFullReject, Steer: SteerProject},
			DefaultRoute: {Dest: UpstreamDest{Upstream: "sentry"}, WhenFull: WhenFullReject, Steer: SteerProject},
		}},
		{"uses embedded kafka", c.UsesEmbeddedKafka(), false},
		{"forward upstream", must(c.ForwardUpstream()), "sentry"},
	}
	for _, ch := range checks {
		if !reflect.DeepEqual(ch.got, ch.want) {
			t.Errorf("%s = %#v, want %#v", ch.name, ch.got, ch.want)
		}
	}

	// Problems point into the file each value came from: the bad values come
	// from region-bad.yaml, the untouched metric route from base.yaml.
	_, err = Load("testdata/base.yaml", "testdata/region-bad.yaml")
	want := []string{
		`testdata/region-bad.yaml:3: upstreams.sentry.max_conns: must be greater than 0`,
		`testdata/region-bad.yaml:7: kafka.clusters.main.compression: "brotli" is not one of snappy, lz4, zstd, gzip, none`,
	}
	if got := problemsOf(t, err); !slices.Equal(got, want) {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	_, err = Load("testdata/region-bad.yaml", "testdata/base.yaml")
	want = []string{
		`testdata/region-bad.yaml:3: upstreams.sentry.max_conns: must be greater than 0`,
		`testdata/region-bad.yaml:7: kafka.clusters.main.compression: "brotli" is not one of snappy, lz4, zstd, gzip, none`,
	}
	if got := problemsOf(t, err); !slices.Equal(got, want) {
		t.Errorf("reversed order problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func must[T any](v T, ok bool) T {
	if !ok {
		panic("must: not ok")
	}
	return v
}

func TestRouteExclusivity(t *testing.T) {
	// A kafka route overlaid with upstream becomes an upstream route, and
	// the other way round.
	c, probs := parse(t,
		"upstreams: {sentry: {urls: ['https://s.example.com/']}}",
		"routes:",
		"  default: {upstream: sentry}",
		"  error: {kafka: embedded, topic: errors}",
	)
	if probs != nil {
		t.Fatal(probs)
	}
	if r := c.RouteFor(envelope.ClassSession); r.Dest != Destination(UpstreamDest{Upstream: "sentry"}) {
		t.Errorf("session route = %+v, want upstream sentry only", r)
	}
	if r := c.RouteFor(envelope.ClassError); r.Dest != Destination(KafkaDest{Kafka: EmbeddedCluster, Topic: "errors"}) {
		t.Errorf("error route = %+v, want embedded/errors", r)
	}
	// Setting both in one entry is still an error.
	_, probs = parse(t,
		"upstreams: {sentry: {urls: ['https://s.example.com/']}}",
		"routes: {error: {upstream: sentry, kafka: embedded}}",
	)
	want := []string{`test.yaml:2: routes.error: sets both upstream ("sentry") and kafka ("embedded"); set exactly one`}
	if !slices.Equal(probs, want) {
		t.Errorf("got %q, want %q", probs, want)
	}
}

func TestRouteFor(t *testing.T) {
	c, probs := parse(t,
		"kafka: {clusters: {main: {brokers: ['k:9092']}}}",
		"routes:",
		"  default: {kafka: main, topic: 'ingest-{class}'}",
		"  metric: {kafka: main, topic: 'metrics.{class}.v1', when_full: drop_oldest}",
		"  span: {kafka: main, steer: trace}",
	)
	if probs != nil {
		t.Fatal(probs)
	}
	for class, want := range map[envelope.Class]Route{
		envelope.ClassError:        {Dest: KafkaDest{Kafka: "main", Topic: "ingest-error"}, WhenFull: WhenFullReject, Steer: SteerProject},
		envelope.ClassSpan:         {Dest: KafkaDest{Kafka: "main", Topic: "baton.span"}, WhenFull: WhenFullReject, Steer: SteerTrace},
		envelope.ClassClientReport: {Dest: KafkaDest{Kafka: "main", Topic: "ingest-client_report"}, WhenFull: WhenFullReject, Steer: SteerProject},
		envelope.ClassMetric:       {Dest: KafkaDest{Kafka: "main", Topic: "metrics.metric.v1"}, WhenFull: WhenFullDropOldest, Steer: SteerProject},
	} {
		if got := c.RouteFor(class); got != want {
			t.Errorf("RouteFor(%s) = %+v, want %+v", class, got, want)
		}
	}
	if c.UsesEmbeddedKafka() {
		t.Error("UsesEmbeddedKafka with every class on cluster main")
	}
	var empty Config
	if got := empty.RouteFor(envelope.ClassError); got != (Route{}) {
		t.Errorf("RouteFor without routes = %+v, want zero", got)
	}
	if name, ok := c.ForwardUpstream(); ok {
		t.Errorf("ForwardUpstream without upstreams = %q", name)
	}
	c.Upstreams = map[string]Upstream{"a": {}, "b": {}}
	if name, ok := c.ForwardUpstream(); ok {
		t.Errorf("ForwardUpstream with two upstreams and no rule = %q", name)
	}
	c.Managed.Upstream, c.Managed.Credentials = "b", "/etc/baton/creds.json"
	if name, ok := c.ForwardUpstream(); !ok || name != "b" {
		t.Errorf("ForwardUpstream = %q, %v; want managed.upstream b", name, ok)
	}
	c.Server.ForwardUnknown = false
	if name, ok := c.ForwardUpstream(); ok {
		t.Errorf("ForwardUpstream with forward_unknown false = %q", name)
	}
	if got := c.CredentialsFile(); got != "/etc/baton/creds.json" {
		t.Errorf("CredentialsFile = %q", got)
	}
}

func TestEnvExpansion(t *testing.T) {
	t.Setenv("BATON_TEST_LISTEN", "0.0.0.0:4000")
	t.Setenv("BATON_TEST_EMPTY", "")
	t.Setenv("BATON_TEST_PASSWORD", "s3cr$t")
	c, probs := parse(t,
		"server:",
		"  listen: ${BATON_TEST_LISTEN}",
		"  max_inflight_bytes: ${BATON_TEST_UNSET_1:-512MiB}",
		"  read_timeout: ${BATON_TEST_EMPTY:-5s}",
		"buffer:",
		"  dir: /var/lib/$${literal}/${BATON_TEST_UNSET_2:-baton}",
		"kafka:",
		"  clusters:",
		"    main:",
		"      brokers: ['${BATON_TEST_UNSET_3:-localhost}:9092']",
		"      sasl: {mechanism: plain, username: u, password: '${BATON_TEST_PASSWORD}'}",
	)
	if probs != nil {
		t.Fatal(probs)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"set", c.Server.Listen, "0.0.0.0:4000"},
		{"unset with fallback", c.Server.MaxInflightBytes, 512 * MiB},
		{"empty with fallback", c.Server.ReadTimeout, 5 * time.Second},
		{"escape and fallback", c.Buffer.Dir, "/var/lib/${literal}/baton"},
		{"in a list", c.Kafka.Clusters["main"].Brokers, []string{"localhost:9092"}},
		{"secret", string(c.Kafka.Clusters["main"].SASL.Password), "s3cr$t"},
		{"secret redacted", c.Kafka.Clusters["main"].SASL.Password.String(), "[redacted]"},
	}
	for _, ch := range checks {
		if !reflect.DeepEqual(ch.got, ch.want) {
			t.Errorf("%s = %#v, want %#v", ch.name, ch.got, ch.want)
		}
	}

	_, probs = parse(t,
		"server:",
		"  listen: ${BATON_TEST_UNSET_4}",
		"  read_timeout: ${BATON_TEST_EMPTY}",
		"buffer: {dir: '${1BAD}'}",
		"telemetry: {metrics_listen: '${BATON_TEST_LISTEN'}",
	)
	want := []string{
		`test.yaml:2: server.listen: environment variable BATON_TEST_UNSET_4 is not set (use ${BATON_TEST_UNSET_4:-fallback} for a default)`,
		`test.yaml:3: server.read_timeout: invalid duration "": want a number with a unit (ns, us, ms, s, m, h), e.g. "30s" or "72h" (expanded from "${BATON_TEST_EMPTY}")`,
		`test.yaml:4: buffer.dir: invalid environment variable reference ${1BAD}: want ${NAME} or ${NAME:-fallback} with NAME of letters, digits and _`,
		`test.yaml:5: telemetry.metrics_listen: unterminated "${BATON_TEST_LISTEN": want ${NAME} or ${NAME:-fallback} (write $$ for a literal $)`,
	}
	if !slices.Equal(probs, want) {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(probs, "\n"), strings.Join(want, "\n"))
	}
}

func TestExpand(t *testing.T) {
	env := map[string]string{"A": "1", "E": ""}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	for in, want := range map[string]string{
		"":                  "",
		"plain $ and $x":    "plain $ and $x",
		"${A}${A}":          "11",
		"${E}":              "",
		"${E:-d}":           "d",
		"${MISSING:-}":      "",
		"${MISSING:-a:-b}":  "a:-b",
		"$${A}":             "${A}",
		"a$$b":              "a$b",
		"$$${A}":            "$1",
		"pre-${A}-post":     "pre-1-post",
		"${MISSING:-${A}}x": "${A}x", // fallbacks are literal; the first } ends the reference
	} {
		got, err := expand(in, lookup)
		if err != nil || got != want {
			t.Errorf("expand(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"${MISSING}", "${}", "${A", "${A B}", "${-x}"} {
		if got, err := expand(in, lookup); err == nil {
			t.Errorf("expand(%q) = %q, want an error", in, got)
		}
	}
}

// TestValidation runs each rule once: a small file and the exact problems.
func TestValidation(t *testing.T) {
	const up = "upstreams: {sentry: {urls: ['https://s.example.com/']}}"
	for _, tc := range []struct {
		name string
		yaml []string
		want []string
	}{
		{"mode", []string{"mode: prxy"},
			[]string{`test.yaml:1: mode: "prxy" is not one of proxy, static, managed (did you mean "proxy"?)`}},
		{"listen", []string{"server: {listen: 'localhost'}", "telemetry: {metrics_listen: ':99999'}"},
			[]string{
				`test.yaml:1: server.listen: "localhost" is not a host:port address: missing port in address`,
				`test.yaml:2: telemetry.metrics_listen: ":99999": port "99999" is not a number from 0 to 65535`,
			}},
		{"durations and sizes", []string{
			"server: {read_timeout: 0s, max_header_bytes: 0}",
			"buffer: {max_age: -1h, durability: relaxed, sync_interval: 0s, partitions: 0}",
			"limits: {max_event_size: 0}",
		}, []string{
			`test.yaml:1: server.read_timeout: must be a duration greater than 0, e.g. "30s"`,
			`test.yaml:1: server.max_header_bytes: must be greater than 0`,
			`test.yaml:2: buffer.max_age: must not be negative (0 keeps records forever)`,
			`test.yaml:2: buffer.sync_interval: must be a duration greater than 0, e.g. "30s"`,
			`test.yaml:2: buffer.partitions: must be from 1 to 256, got 0`,
			`test.yaml:3: limits.max_event_size: must be greater than 0`,
		}},
		{"redis", []string{
			"redis: {addresses: ['localhost', '127.0.0.1:6379'], cluster: true, db: 2, max_wait: 2s, fallback_share: 0,",
			"  password: x, password_file: /run/pw, tls: {ca_file: ca.pem}}",
		}, []string{
			`test.yaml:1: redis.addresses[0]: "localhost" is not a host:port address: missing port in address`,
			`test.yaml:1: redis.db: must be 0 with redis.cluster: Redis Cluster has only database 0`,
			`test.yaml:1: redis.max_wait: 2s is over 1s: ingest waits this long for Redis at most; keep it small (default 50ms)`,
			`test.yaml:1: redis.fallback_share: must be greater than 0`,
			`test.yaml:2: redis.password_file: password and password_file are both set; set one`,
			`test.yaml:2: redis.tls.enabled: is false but other tls settings are set; set enabled: true or remove them`,
		}},
		{"redis project configs", []string{
			"redis: {project_configs: {enabled: true, prefix: '', fallback_refresh: 0s}}",
		}, []string{
			`test.yaml:1: redis.project_configs.enabled: needs redis.addresses`,
			`test.yaml:1: redis.project_configs.enabled: needs mode: static or managed (proxy mode reads no project configs)`,
			`test.yaml:1: redis.project_configs.prefix: must not be empty`,
			`test.yaml:1: redis.project_configs.fallback_refresh: must be a duration greater than 0, e.g. "30s"`,
		}},
		{"no body budget", []string{"server: {max_inflight_bytes: 0}"},
			[]string{`test.yaml:1: server.max_inflight_bytes: must be greater than 0`}},
		{"reserve", []string{"buffer: {reserve_bytes: 0}"},
			[]string{`test.yaml:1: buffer.reserve_bytes: must be greater than 0: it keeps the disk from filling up, which Pebble treats as fatal`}},
		{"reserve over budget", []string{"buffer: {max_bytes: 1GiB, reserve_bytes: 1GiB, memtable_size: 1MiB}"},
			[]string{`test.yaml:1: buffer.reserve_bytes: 1GiB leaves nothing of buffer.max_bytes (1GiB) for records; lower reserve_bytes or raise max_bytes`}},
		{"upstream", []string{
			"upstreams:",
			"  sentry:",
			"    urls: ['/relative', 'http://', 'https://x/?q=1', 'https://a/', 'https://a/']",
			"    compression: snappy",
			"  empty: {}",
		}, []string{
			`test.yaml:3: upstreams.sentry.urls[0]: "/relative" must be an absolute http:// or https:// URL`,
			`test.yaml:3: upstreams.sentry.urls[1]: "http://" has no host`,
			`test.yaml:3: upstreams.sentry.urls[2]: "https://x/?q=1" must not have a query or fragment`,
			`test.yaml:3: upstreams.sentry.urls[4]: "https://a/" is listed twice (also at urls[3])`,
			`test.yaml:4: upstreams.sentry.compression: "snappy" is not one of gzip, zstd, none`,
			`test.yaml:5: upstreams.empty.urls: at least one URL is required`,
		}},
		{"upstream concurrency", []string{
			"upstreams:",
			"  sentry: {urls: ['https://a/'], concurrency: 0}",
		}, []string{
			`test.yaml:2: upstreams.sentry.concurrency: must be greater than 0`,
		}},
		{"kafka cluster", []string{
			"kafka:",
			"  clusters:",
			"    embedded: {brokers: ['k:9092']}",
			"    main:",
			"      brokers: ['k', ':9092']",
			"      max_message_bytes: 4GiB",
			"      dead_letter_topic: 'bad topic'",
			"      sasl: {mechanism: scram-sha-1, username: u}",
			"      tls: {ca_file: ca.pem, cert_file: c.pem}",
		}, []string{
			`test.yaml:3: kafka.clusters.embedded: the name "embedded" is reserved for the embedded broker (kafka.embedded); pick another`,
			`test.yaml:5: kafka.clusters.main.brokers[0]: "k" is not a host:port address: missing port in address`,
			`test.yaml:5: kafka.clusters.main.brokers[1]: ":9092": missing host`,
			`test.yaml:6: kafka.clusters.main.max_message_bytes: must be from 4096 to 104857344 bytes (100MiB less 256), got 4294967296`,
			`test.yaml:7: kafka.clusters.main.dead_letter_topic: "bad topic" contains ' '; Kafka topic names allow only a-z, A-Z, 0-9, '.', '_' and '-'`,
			`test.yaml:8: kafka.clusters.main.sasl.password: is required with sasl.mechanism "scram-sha-1"`,
			`test.yaml:8: kafka.clusters.main.sasl.mechanism: "scram-sha-1" is not one of plain, scram-sha-256, scram-sha-512 (did you mean "scram-sha-512"?)`,
			`test.yaml:9: kafka.clusters.main.tls.enabled: is false but other tls settings are set; set enabled: true or remove them`,
			`test.yaml:9: kafka.clusters.main.tls.cert_file: cert_file and key_file must be set together`,
		}},
		{"kafka topics and advertised", []string{
			"kafka:",
			"  embedded: {advertised: '[::]:9092'}",
			"  clusters:",
			"    main:",
			"      brokers: ['k:9092']",
			"      create_topics: {enabled: true, partitions: 0, replication: -2}",
		}, []string{
			`test.yaml:2: kafka.embedded.advertised: "[::]:9092" is a wildcard address no client can connect to; give the name or address clients reach Baton by`,
			`test.yaml:6: kafka.clusters.main.create_topics.partitions: must be -1 (the broker's default) or from 1 to 2147483647, got 0`,
			`test.yaml:6: kafka.clusters.main.create_topics.replication: must be -1 (the broker's default) or from 1 to 32767, got -2`,
		}},
		{"route sinks", []string{
			up,
			"routes:",
			"  error: {upstream: sentyr}",
			"  session: {kafka: mian}",
			"  span: {when_full: drop}",
			"  transaction: {upstream: sentry, steer: traces}",
		}, []string{
			`test.yaml:3: routes.error.upstream: no upstream named "sentyr" (did you mean "sentry"?)`,
			`test.yaml:4: routes.session.kafka: no Kafka cluster named "mian"`,
			`test.yaml:5: routes.span: needs a sink: set upstream or kafka`,
			`test.yaml:5: routes.span.when_full: "drop" is not one of reject, drop_oldest (did you mean "drop_oldest"?)`,
			`test.yaml:6: routes.transaction.steer: "traces" is not one of project, trace (did you mean "trace"?)`,
		}},
		{"topics", []string{
			"routes:",
			"  default: {kafka: embedded, topic: 'baton/{class}'}",
			"  error: {kafka: embedded, topic: ''}",
			"  replay: {kafka: embedded, topic: '" + strings.Repeat("x", 245) + "{class}'}",
		}, []string{
			`test.yaml:2: routes.default.topic: "baton/{class}" expands to "baton/unknown" for class unknown, which contains '/'; Kafka topic names allow only a-z, A-Z, 0-9, '.', '_' and '-'`,
			`test.yaml:3: routes.error.topic: a kafka route needs a topic, e.g. "baton.{class}"`,
			`test.yaml:4: routes.replay.topic: "` + strings.Repeat("x", 245) + `{class}" expands to "` + strings.Repeat("x", 245) + `replay" for class replay, which is 251 characters long; Kafka allows at most 249`,
		}},
		{"unknown class", []string{"routes: {erorr: {kafka: embedded}, Default: {kafka: embedded}}"},
			[]string{
				`test.yaml:1: routes.erorr: "erorr" is not a class name or "default" (did you mean "error"?); classes: unknown, error, transaction, security, attachment, session, metric, client_report, profile, replay, check_in, span, log, feedback, trace_metric`,
				`test.yaml:1: routes.Default: "Default" is not a class name or "default" (did you mean "default"?); classes: unknown, error, transaction, security, attachment, session, metric, client_report, profile, replay, check_in, span, log, feedback, trace_metric`,
			}},
		{"missing classes", []string{"routes:", "  default: null", "  error: {kafka: embedded}", "  span: {kafka: embedded}"},
			[]string{`test.yaml:1: routes: no route for class unknown, transaction, security, attachment, session, metric, client_report, profile, replay, check_in, log, feedback, trace_metric and no "default" route; add routes for them or a "default" route`}},
		{"managed", []string{"mode: managed"},
			[]string{`test.yaml:1: managed.upstream: managed mode needs the name of the upstream that serves project configs`}},
		{"managed unknown upstream", []string{up, "mode: managed", "managed: {upstream: sentri, cache: {grace: -1s}, fetch: {concurrency: 0}}"},
			[]string{
				`test.yaml:3: managed.upstream: no upstream named "sentri" (did you mean "sentry"?)`,
				`test.yaml:3: managed.cache.grace: must not be negative`,
				`test.yaml:3: managed.fetch.concurrency: must be greater than 0`,
			}},
		{"static without projects", []string{"mode: static"},
			[]string{`test.yaml:1: projects: static mode needs at least one project in projects or project_files`}},
		{"projects in proxy mode", []string{"projects: {'1': {public_keys: [e12d836b15bb49d7bbf99e64295d995b]}}"},
			[]string{`test.yaml:1: projects: projects are not used in proxy mode; set mode: static or managed, or remove them`}},
		{"projects", []string{
			"mode: static",
			"projects:",
			"  '042': {public_keys: [E12D836B15BB49D7BBF99E64295D995B]}",
			"  '7': {public_keys: []}",
			"  '8':",
			"    public_keys: [e12d836b15bb49d7bbf99e64295d995b, e12d836b15bb49d7bbf99e64295d995b]",
			"    allowed_domains: ['']",
			"    rate_limit: {events_per_second: -1}",
			"  abc: {public_keys: [e12d836b15bb49d7]}",
			"  '9': {public_keys: [0123456789abcdef0123456789abcdef], grouping: {discarded_hashes: [4b8bbc500bd2cabfcadc1f1be867e0bb, '']}}",
			"  '10': {public_keys: [1123456789abcdef0123456789abcdef], grouping: {storm: {limit: -1}}}",
			"  '11': {public_keys: [2123456789abcdef0123456789abcdef], grouping: {storm: {limit: 5, window: 1500ms}}}",
		}, []string{
			`test.yaml:3: projects.042: project id "042" must be a positive decimal number without leading zeros`,
			`test.yaml:3: projects.042.public_keys[0]: "E12D836B15BB49D7BBF99E64295D995B" is not a public key: want 32 lowercase hex characters, the user part of the DSN`,
			`test.yaml:4: projects.7.public_keys: at least one public key is required`,
			`test.yaml:6: projects.8.public_keys[1]: public key e12d836b15bb49d7bbf99e64295d995b is also used by project 8`,
			`test.yaml:7: projects.8.allowed_domains[0]: must not be empty; use "*" for any origin`,
			`test.yaml:8: projects.8.rate_limit.events_per_second: must not be negative (0 is unlimited)`,
			`test.yaml:9: projects.abc: project id "abc" must be a positive decimal number without leading zeros`,
			`test.yaml:9: projects.abc.public_keys[0]: "e12d836b15bb49d7" is not a public key: want 32 lowercase hex characters, the user part of the DSN`,
			"test.yaml:10: projects.9.grouping.discarded_hashes[1]: must not be empty; want an issue hash as `baton grouping hash` prints it",
			"test.yaml:11: projects.10.grouping.storm.limit: must not be negative (0 is off)",
			`test.yaml:12: projects.11.grouping.storm.window: must be a whole number of seconds, at least 1s, e.g. "1m"`,
		}},
		{"telemetry", []string{"telemetry: {log_level: verbose, log_format: xml, metrics_listen: '127.0.0.1:3000', trace_sample_ratio: 1.5}"},
			[]string{
				`test.yaml:1: telemetry.log_level: "verbose" is not one of debug, info, warn, error`,
				`test.yaml:1: telemetry.log_format: "xml" is not one of text, json`,
				`test.yaml:1: telemetry.metrics_listen: "127.0.0.1:3000" is also server.listen; use another port`,
				`test.yaml:1: telemetry.trace_sample_ratio: 1.5 is not a ratio from 0 to 1`,
			}},
		// Combinations that pass each field's own rule but that baton run
		// refuses (buffer.Open, routing.NewKafka, routing.NewUpstream,
		// relay's key parsing, listeners that collide).
		{"reserve above max_bytes", []string{"buffer:", "  max_bytes: 100MiB"},
			[]string{`test.yaml:2: buffer.reserve_bytes: 512MiB leaves nothing of buffer.max_bytes (100MiB) for records; lower reserve_bytes or raise max_bytes`}},
		{"reserve equal to max_bytes", []string{"buffer:", "  max_bytes: 1GiB", "  reserve_bytes: 1GiB"},
			[]string{`test.yaml:3: buffer.reserve_bytes: 1GiB leaves nothing of buffer.max_bytes (1GiB) for records; lower reserve_bytes or raise max_bytes`}},
		{"memtable too large", []string{"buffer: {max_bytes: 100GiB, memtable_size: 4GiB}"},
			[]string{`test.yaml:1: buffer.memtable_size: 4GiB is too large: Pebble takes memtables up to 4294967294 bytes (just under 4GiB)`}},
		{"memtable too small", []string{"buffer: {memtable_size: 1KiB}"},
			[]string{`test.yaml:1: buffer.memtable_size: 1KiB is too small: at least 256KiB (Pebble fails to open with tiny memtables)`}},
		{"kafka message size out of the client's range", []string{
			"kafka:",
			"  clusters:",
			"    big: {brokers: ['k:9092'], max_message_bytes: 100MiB}",
			"    tiny: {brokers: ['k:9092'], max_message_bytes: 4095}",
			"    long: {brokers: ['k:9092'], client_id: '" + strings.Repeat("c", 257) + "'}",
		}, []string{
			`test.yaml:3: kafka.clusters.big.max_message_bytes: must be from 4096 to 104857344 bytes (100MiB less 256), got 104857600`,
			`test.yaml:4: kafka.clusters.tiny.max_message_bytes: must be from 4096 to 104857344 bytes (100MiB less 256), got 4095`,
			`test.yaml:5: kafka.clusters.long.client_id: must be 1 to 256 bytes long`,
		}},
		{"upstream URLs the pool refuses", []string{
			"upstreams:",
			"  sentry:",
			"    urls: ['https://user:pw@s.example.com/', 'https://a.example.com', 'https://a.example.com/']",
		}, []string{
			`test.yaml:3: upstreams.sentry.urls[0]: "https://user:pw@s.example.com/" must not carry a user name or password`,
			`test.yaml:3: upstreams.sentry.urls[2]: "https://a.example.com/" is listed twice (also at urls[1])`,
		}},
		{"static relay key off the curve", []string{
			"auth:",
			"  static_relays:",
			"    3a1e3f0c-6a47-4b0e-9a27-6c2c3fe4e5d1: {public_key: AgAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA}",
		}, []string{"test.yaml:3: auth.static_relays.3a1e3f0c-6a47-4b0e-9a27-6c2c3fe4e5d1.public_key: not an Ed25519 public key: not a point on the curve (copy it from `baton credentials show` of that relay)"}},
		{"metrics and embedded broker on one port", []string{
			"telemetry: {metrics_listen: '127.0.0.1:9300'}",
			"kafka: {embedded: {listen: '127.0.0.1:9300'}}",
		}, []string{`test.yaml:2: kafka.embedded.listen: "127.0.0.1:9300" is also telemetry.metrics_listen; use another port`}},
		{"wildcard listen takes the port", []string{
			"server: {listen: ':3000'}",
			"telemetry: {metrics_listen: '127.0.0.1:3000'}",
			"kafka: {embedded: {listen: 'localhost:0'}}",
		}, []string{`test.yaml:2: telemetry.metrics_listen: "127.0.0.1:3000" is also server.listen; use another port`}},
		{"pprof on another listener's port", []string{
			"telemetry: {metrics_listen: '127.0.0.1:9300', pprof_listen: '127.0.0.1:9300'}",
		}, []string{`test.yaml:1: telemetry.pprof_listen: "127.0.0.1:9300" is also telemetry.metrics_listen; use another port`}},
		{"pprof on the server port", []string{"telemetry: {pprof_listen: '127.0.0.1:3000'}"},
			[]string{`test.yaml:1: telemetry.pprof_listen: "127.0.0.1:3000" is also server.listen; use another port`}},
		{"pprof not host:port", []string{"telemetry: {pprof_listen: 'nope'}"},
			[]string{`test.yaml:1: telemetry.pprof_listen: "nope" is not a host:port address: missing port in address`}},
		{"memory limit too small", []string{"runtime:", "  memory_limit: 10MiB"},
			[]string{`test.yaml:2: runtime.memory_limit: 10MiB is below 64MiB; 0 derives it from the cgroup's limit`}},
		{"embedded broker on the server port", []string{"kafka: {embedded: {listen: '127.0.0.1:3000'}}"},
			[]string{`test.yaml:1: kafka.embedded.listen: "127.0.0.1:3000" is also server.listen; use another port`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, got := parse(t, tc.yaml...)
			if !slices.Equal(got, tc.want) {
				t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
			// Validate on the returned Config finds the same problems.
			if again := problemsOf(t, c.Validate()); !slices.Equal(again, tc.want) {
				t.Errorf("Validate() again:\n%s", strings.Join(again, "\n"))
			}
		})
	}
}

func TestThreeMistakes(t *testing.T) {
	_, err := Load("testdata/three-mistakes.yaml")
	got := problemsOf(t, err)
	want := []string{
		`testdata/three-mistakes.yaml:3: server.listn: unknown key (did you mean "listen"?)`,
		`testdata/three-mistakes.yaml:5: buffer.max_bytes: invalid byte size "10 parsecs": want a whole number of bytes or a number with a unit (B, KB, MB, GB, TB, KiB, MiB, GiB, TiB), e.g. "64MiB"`,
		`testdata/three-mistakes.yaml:8: routes.transactoin: "transactoin" is not a class name or "default" (did you mean "transaction"?); classes: unknown, error, transaction, security, attachment, session, metric, client_report, profile, replay, check_in, span, log, feedback, trace_metric`,
	}
	if !slices.Equal(got, want) {
		t.Fatalf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for kind, want := range map[error]bool{ErrUnknownKey: true, ErrType: true, ErrInvalid: true, ErrEnv: false, ErrSyntax: false} {
		if errors.Is(err, kind) != want {
			t.Errorf("errors.Is(err, %v) = %v, want %v", kind, !want, want)
		}
	}
}

func TestUnknownKeysAndTypes(t *testing.T) {
	_, got := parse(t,
		"upstream: {}",            // 1
		"server:",                 // 2
		"  listn: ':1'",           // 3
		"  max_connections: many", // 4
		"  forward_unknown: yes",  // 5
		"  read_timeout: 30",      // 6
		"  listen: [a, b]",        // 7
		"buffer: {max_bytes: -1GiB, max_age: 10 parsecs, partitions: 1.5}", // 8
		"limits: {max_event: 1MiB, max_attachment: 1}",                     // 9
		"routes: [a]", // 10
		"defaults: {project: {rate_limit: {events_per_second: fast}}}", // 11
		"telemetry: {qwertyuiop: 1, [x]: 2}",                           // 12
	)
	want := []string{
		`test.yaml:1: upstream: unknown key (did you mean "upstreams"?)`,
		`test.yaml:3: server.listn: unknown key (did you mean "listen"?)`,
		`test.yaml:4: server.max_connections: expected an integer, got "many"`,
		`test.yaml:5: server.forward_unknown: expected true or false, got "yes"`,
		`test.yaml:6: server.read_timeout: invalid duration "30": missing unit, e.g. "30s"`,
		`test.yaml:7: server.listen: expected a string, got a list`,
		`test.yaml:8: buffer.max_bytes: invalid byte size "-1GiB": must not be negative`,
		`test.yaml:8: buffer.max_age: invalid duration "10 parsecs": want a number with a unit (ns, us, ms, s, m, h), e.g. "30s" or "72h"`,
		`test.yaml:8: buffer.partitions: expected an integer, got "1.5"`,
		`test.yaml:9: limits.max_event: unknown key (did you mean "max_event_size"?)`,
		`test.yaml:9: limits.max_attachment: unknown key (did you mean one of "max_attachment_size", "max_attachments_size", "max_attachment_count"?)`,
		`test.yaml:10: routes: expected a mapping, got a list`,
		`test.yaml:11: defaults.project.rate_limit.events_per_second: expected a number, got "fast"`,
		`test.yaml:12: telemetry.qwertyuiop: unknown key`,
		`test.yaml:12: telemetry.a list: unknown key`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// A key that was removed from the schema says so and what replaces it.
func TestRemovedKey(t *testing.T) {
	_, got := parse(t,
		"routes:",
		"  metric: {kafka: embedded, topic: m, partition_by: metric_key}",
		"defaults:",
		"  route: {partition_by: project}",
	)
	const why = `unknown key: partition_by was removed: it never had an effect; delete it (metric buckets are steered with metrics.flush_partitions)`
	want := []string{
		`test.yaml:2: routes.metric.partition_by: ` + why,
		`test.yaml:4: defaults.route.partition_by: ` + why,
	}
	if !slices.Equal(got, want) {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestYAMLFeatures(t *testing.T) {
	// Anchors, aliases and merge keys work; explicit keys beat merged ones.
	c, probs := parse(t,
		"defaults:",
		"  upstream: &up {timeout: 7s, compression: zstd}",
		"upstreams:",
		"  a: {<<: *up, urls: ['https://a/'], compression: none}",
		"  b:",
		"    <<: [*up, {max_conns: 3}]",
		"    urls: ['https://b/']",
	)
	if probs != nil {
		t.Fatal(probs)
	}
	a, b := c.Upstreams["a"], c.Upstreams["b"]
	if a.Timeout != 7*time.Second || a.Compression != CompressionNone || b.MaxConns != 3 || b.Compression != CompressionZstd {
		t.Errorf("a = %+v, b = %+v", a, b)
	}
	if c.Upstreams["a"].ProbeInterval != 10*time.Second {
		t.Errorf("template default lost: %+v", a)
	}

	for _, tc := range []struct {
		name, yaml string
		want       []string
		kind       error
	}{
		{"syntax", "server:\n  listen: [\n", []string{`test.yaml:2: did not find expected node content`}, ErrSyntax},
		{"tab", "server:\n\tlisten: x\n", []string{`test.yaml:2: found character that cannot start any token`}, ErrSyntax},
		{"duplicate key", "mode: proxy\nserver: {}\nmode: static\n", []string{`test.yaml:3: key "mode" is already defined at line 1`}, ErrSyntax},
		{"two documents", "mode: proxy\n---\nmode: static\n", []string{`test.yaml:2: a config file must hold one YAML document; remove the second "---" and what follows`}, ErrSyntax},
		{"not a mapping", "- a\n- b\n", []string{`test.yaml:1: the top level must be a mapping of keys to values, got a list`}, ErrType},
		{"alias bomb", "a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n",
			[]string{`test.yaml:1: aliases expand to more than 16384 nodes`}, ErrSyntax},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("test.yaml", []byte(tc.yaml))
			if got := problemsOf(t, err); !slices.Equal(got, tc.want) {
				t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
			if !errors.Is(err, tc.kind) {
				t.Errorf("error does not wrap %v", tc.kind)
			}
		})
	}

	// An empty file is the default configuration.
	c, probs = parse(t, "# only a comment")
	if probs != nil || c.Server.Listen != "127.0.0.1:3000" {
		t.Errorf("empty file: %v, listen %q", probs, c.Server.Listen)
	}
}

func TestProjectFiles(t *testing.T) {
	c, err := Load("testdata/static.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]Project{
		"42": {PublicKeys: []string{"e12d836b15bb49d7bbf99e64295d995b"}, AllowedDomains: []string{"*"}, Grouping: ProjectGrouping{Storm: ProjectStorm{Window: time.Minute}}},
		"43": {PublicKeys: []string{"0123456789abcdef0123456789abcdef"}, AllowedDomains: []string{"example.com"}, Grouping: ProjectGrouping{Storm: ProjectStorm{Window: time.Minute}}},
		"44": {PublicKeys: []string{"fedcba9876543210fedcba9876543210"}, AllowedDomains: []string{"*"}, Disabled: true, Grouping: ProjectGrouping{Storm: ProjectStorm{Window: time.Minute}}},
	}
	if !reflect.DeepEqual(c.Projects, want) {
		t.Errorf("projects = %+v\nwant %+v", c.Projects, want)
	}

	_, err = Load("testdata/static-dup.yaml")
	got := problemsOf(t, err)
	wantProbs := []string{
		`testdata/static-dup.yaml:5: project_files[1]: cannot read project file: no such file or directory`,
		`testdata/projects/dup.yaml:1: projects.42: project 42 is already defined at testdata/static-dup.yaml:3`,
	}
	if !slices.Equal(got, wantProbs) {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(wantProbs, "\n"))
	}
	if !errors.Is(err, fs.ErrNotExist) || !errors.Is(err, ErrRead) {
		t.Error("missing project file does not wrap fs.ErrNotExist and ErrRead")
	}
}

func TestLoadStopsAtUnparsableFiles(t *testing.T) {
	// three-mistakes.yaml parses, so its problems wait until every file
	// parses: only the syntax error and the missing file are reported.
	_, err := Load("testdata/three-mistakes.yaml", "testdata/syntax-error.yaml", "testdata/nope.yaml")
	want := []string{
		`testdata/syntax-error.yaml:1: did not find expected ',' or ']'`,
		`testdata/nope.yaml: cannot read file: no such file or directory`,
	}
	if got := problemsOf(t, err); !slices.Equal(got, want) {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load("testdata/base.yaml", "testdata/nope.yaml")
	want := []string{`testdata/nope.yaml: cannot read file: no such file or directory`}
	if got := problemsOf(t, err); !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	if !errors.Is(err, fs.ErrNotExist) || !errors.Is(err, ErrRead) {
		t.Error("error does not wrap fs.ErrNotExist and ErrRead")
	}
}

func TestValidateBuiltInCode(t *testing.T) {
	c := Default()
	c.origins = nil // as if built in code
	c.Routes = map[string]Route{"error": {Dest: KafkaDest{Kafka: EmbeddedCluster, Topic: "e"}}}
	c.Mode = "bogus"
	got := problemsOf(t, c.Validate())
	want := []string{
		`mode: "bogus" is not one of proxy, static, managed`,
		`routes: no route for class unknown, transaction, security, attachment, session, metric, client_report, profile, replay, check_in, span, log, feedback, trace_metric and no "default" route; add routes for them or a "default" route`,
		`routes.error.steer: "" is not one of project, trace`,
		`routes.error.when_full: "" is not one of reject, drop_oldest`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestParseByteSize(t *testing.T) {
	for in, want := range map[string]ByteSize{
		"0": 0, "1048576": MiB, "512KiB": 512 * KiB, "64MiB": 64 * MiB, "10GiB": 10 * GiB, "2TiB": 2 * TiB,
		"10GB": 10 * GB, "1kb": KB, "5 MB": 5 * MB, "1.5GiB": 3 * GiB / 2, "0.5KB": 500, " 7B ": 7,
		"8191PiB": 8191 * PiB, ".5KiB": 512,
	} {
		got, err := ParseByteSize(in)
		if err != nil || got != want {
			t.Errorf("ParseByteSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "MiB", "-1", "10 parsecs", "1.0001KB", "8192PiB", "1..5KiB", "1.", "1e3", "0x10", "10M", "1_000"} {
		if got, err := ParseByteSize(in); err == nil || !errors.Is(err, ErrByteSize) {
			t.Errorf("ParseByteSize(%q) = %d, %v; want an ErrByteSize error", in, got, err)
		}
	}
	for b, want := range map[ByteSize]string{0: "0B", 64 * MiB: "64MiB", 10 * GB: "10GB", 1234: "1234B", 1536: "1536B", 2 * KiB: "2KiB", 3 * TB: "3TB"} {
		if got := b.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", int64(b), got, want)
		}
		if back, err := ParseByteSize(b.String()); err != nil || back != b {
			t.Errorf("round trip of %d: %d, %v", int64(b), back, err)
		}
	}
}

func TestParseDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{"30s": 30 * time.Second, "72h": 72 * time.Hour, "100ms": 100 * time.Millisecond, "1m30s": 90 * time.Second, "0": 0} {
		got, err := parseDuration(in)
		if err != nil || got != want {
			t.Errorf("parseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for in, want := range map[string]string{
		"30":         `invalid duration "30": missing unit, e.g. "30s"`,
		"10 parsecs": `invalid duration "10 parsecs": want a number with a unit (ns, us, ms, s, m, h), e.g. "30s" or "72h"`,
		"":           `invalid duration "": want a number with a unit (ns, us, ms, s, m, h), e.g. "30s" or "72h"`,
	} {
		if _, err := parseDuration(in); err == nil || err.Error() != want {
			t.Errorf("parseDuration(%q) error = %v, want %s", in, err, want)
		}
	}
}

func TestSuggest(t *testing.T) {
	names := []string{"listen", "max_connections", "read_timeout", "write_timeout", "max_header_bytes"}
	for in, want := range map[string]string{
		"listn":        ` (did you mean "listen"?)`,
		"lsiten":       ` (did you mean "listen"?)`, // transposition
		"raed_timeout": ` (did you mean "read_timeout"?)`,
		"max_conn":     ` (did you mean "max_connections"?)`,
		"timeout":      ``,
		"xyz":          ``,
		"max":          ` (did you mean one of "max_connections", "max_header_bytes"?)`,
	} {
		if got := suggest(in, names); got != want {
			t.Errorf("suggest(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzLoad(f *testing.F) {
	for _, name := range []string{"base.yaml", "region-eu.yaml", "three-mistakes.yaml", "static.yaml"} {
		data, err := fs.ReadFile(testdataFS, name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("a: &a [x]\nb: [*a, *a]\nc: {<<: {mode: static}}\n"))
	f.Add([]byte("server: {listen: ${X:-:0}, max_header_bytes: 1.5KiB}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("fuzz.yaml", data)
		if err == nil {
			// A config that loads must also validate on its own.
			if verr := c.Validate(); verr != nil {
				t.Fatalf("Parse succeeded but Validate fails: %v", verr)
			}
			return
		}
		var errs Errors
		if !errors.As(err, &errs) || len(errs) == 0 {
			t.Fatalf("error is not a non-empty Errors: %#v", err)
		}
		for _, p := range errs {
			if p.Msg == "" || p.Err == nil {
				t.Fatalf("incomplete problem %#v", p)
			}
		}
	})
}

// TestRouteChoice: a route's destination is the one kind its keys name;
// keys of another kind, a misspelt kind key and a route of both kinds are
// reported where they are written.
func TestRouteChoice(t *testing.T) {
	_, probs := parse(t,
		"upstreams: {sentry: {urls: ['https://s.example.com/']}}",
		"routes:",
		"  default: {upstream: sentry}",
		"  error: {upstream: sentry, topic: errors}",
		"  span: {upstrem: sentry}",
		"  log:",
		"    kafka: embedded",
		"    upstream: sentry",
	)
	want := []string{
		`test.yaml:4: routes.error.topic: only applies to kafka routes`,
		`test.yaml:5: routes.span: needs a sink: set upstream or kafka`,
		`test.yaml:5: routes.span.upstrem: unknown key (did you mean "upstream"?)`,
		`test.yaml:6: routes.log: sets both upstream ("sentry") and kafka ("embedded"); set exactly one`,
	}
	if !slices.Equal(probs, want) {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(probs, "\n"), strings.Join(want, "\n"))
	}
	if got, want := destinationKinds(), "upstream or kafka"; got != want {
		t.Errorf("destinationKinds() = %q, want %q", got, want)
	}
	// Every kind's selecting key is its first field, and no two kinds
	// share a key (the decoder picks the kind by key).
	seen := map[string]string{}
	for _, d := range destinations {
		fs := structFields(reflect.TypeOf(d))
		if len(fs.names) == 0 || fs.names[0] != d.Kind() {
			t.Errorf("%T: first route key %v, want Kind() %q", d, fs.names, d.Kind())
		}
		for _, k := range fs.names {
			if other, dup := seen[k]; dup {
				t.Errorf("route key %q is in both %s and %T", k, other, d)
			}
			seen[k] = fmt.Sprintf("%T", d)
		}
	}
}
