package config

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Relay's config.yml, translated. Relay's keys and units are in
// docs/relay-protocol.md (3.8, 2.7, 4.4, 6.3, 7.2, 5.1); the README has the
// table this file implements. A Relay key is either translated (relayKeys),
// or listed in Dir.Ignored, never dropped silently; a value of the wrong
// type is a Problem at its file and line, under the Relay key's name.

// RelayUpstream is the name of the upstream config.yml's relay.upstream
// becomes; baton.yml may refer to it.
const RelayUpstream = "relay"

// RelayDefaultUpstream is Relay's relay.upstream default.
const RelayDefaultUpstream = "https://sentry.io/"

// relayRule translates the value v of the Relay key key.
type relayRule func(t *relayTr, key string, v *yaml.Node)

// relaySections are the config.yml sections translated key by key; a key of
// them not in relayKeys is ignored. Other sections are ignored whole.
var relaySections = []string{"relay", "http", "limits", "cache", "auth", "aggregator", "outcomes", "processing", "logging", "metrics", "normalization"}

// relayKeys maps each translated Relay key to its rule.
var relayKeys map[string]relayRule

func init() {
	relayKeys = map[string]relayRule{
		"relay.mode":     (*relayTr).mode,
		"relay.upstream": (*relayTr).upstream,
		"relay.host":     (*relayTr).hostKey,
		"relay.port":     (*relayTr).portKey,

		"http.timeout":             secs("upstreams." + RelayUpstream + ".timeout"),
		"http.connection_timeout":  secs("upstreams." + RelayUpstream + ".connect_timeout"),
		"http.max_retry_interval":  secs("upstreams." + RelayUpstream + ".max_retry_interval"),
		"http.outage_grace_period": secs("upstreams." + RelayUpstream + ".outage_grace_period"),
		"http.encoding":            (*relayTr).encoding,
		"http.forward":             flag("server.forward_unknown"),
		"http.auth_interval":       (*relayTr).authInterval,

		"limits.max_concurrent_requests":  count("upstreams." + RelayUpstream + ".max_conns"),
		"limits.max_concurrent_queries":   count("managed.fetch.concurrency"),
		"limits.query_timeout":            secs("managed.fetch.timeout"),
		"limits.shutdown_timeout":         secs("server.shutdown_timeout"),
		"limits.keepalive_timeout":        secs("server.idle_timeout"),
		"limits.max_connections":          count("server.max_connections"),
		"limits.max_attachment_count":     count("limits.max_attachment_count"),
		"limits.max_session_count":        count("limits.max_session_count"),
		"limits.max_client_reports_count": count("limits.max_client_reports_count"),

		"cache.project_expiry":       secs("managed.cache.expiry"),
		"cache.project_grace_period": secs("managed.cache.grace"),
		"cache.miss_expiry":          secs("managed.cache.miss_expiry"),
		"cache.relay_expiry":         secs("managed.cache.relay_expiry"),
		"cache.batch_interval":       millis("managed.fetch.batch_interval"),
		"cache.batch_size":           count("managed.fetch.batch_size"),
		"cache.file_interval":        (*relayTr).fileInterval,

		"auth.static_relays":     (*relayTr).staticRelays,
		"auth.signature_max_age": secs("auth.signature_max_age"),

		"aggregator.bucket_interval":              secs("metrics.bucket_interval"),
		"aggregator.initial_delay":                secs("metrics.initial_delay"),
		"aggregator.max_secs_in_past":             secs("metrics.max_past"),
		"aggregator.max_secs_in_future":           secs("metrics.max_future"),
		"aggregator.max_total_bucket_bytes":       size("metrics.max_bytes"),
		"aggregator.max_project_key_bucket_bytes": size("metrics.max_project_bytes"),
		"aggregator.flush_partitions":             count("metrics.flush_partitions"),

		"normalization.level": (*relayTr).normalizationLevel,

		"outcomes.emit_outcomes":  (*relayTr).emitOutcomes,
		"outcomes.batch_size":     count("outcomes.batch_size"),
		"outcomes.batch_interval": millis("outcomes.batch_interval"),
		"outcomes.source":         (*relayTr).outcomesSource,

		"logging.level":  (*relayTr).logLevel,
		"logging.format": (*relayTr).logFormat,

		"processing.enabled":      func(t *relayTr, k string, v *yaml.Node) { t.processing = t.boolean(k, v); t.procAt = v },
		"processing.kafka_config": (*relayTr).kafkaConfig,
		"processing.topics":       (*relayTr).topics,
	}
	// Relay's limits that Baton has under the same name and unit.
	for _, k := range []string{"max_envelope_size", "max_event_size", "max_attachment_size", "max_attachments_size",
		"max_sessions_size", "max_client_reports_size", "max_statsd_size", "max_metric_buckets_size",
		"max_check_in_size", "max_profile_size", "max_replay_compressed_size", "max_replay_uncompressed_size",
		"max_replay_message_size", "max_log_size", "max_span_size", "max_trace_metric_size", "max_container_size",
		"max_api_payload_size", "max_api_file_upload_size", "max_api_chunk_upload_size"} {
		relayKeys["limits."+k] = size("limits." + k)
	}
}

// relayTr is the state of one translation.
type relayTr struct {
	l    *loader
	d    *Dir
	rank int
	top  *yaml.Node // Relay's tree
	out  *yaml.Node // Baton's tree

	modeVal    Mode
	host       string
	port       string
	listenAt   *yaml.Node
	processing bool
	procAt     *yaml.Node
	brokers    *yaml.Node
	topicsSet  map[string]*yaml.Node // Baton class → topic node
	ignored    []string
	cur        string // the Relay key being translated
}

// translateRelay returns Relay's config.yml tree n as a tree in Baton's
// schema, whose nodes keep n's file and lines, and records what it ignored
// in d.
func (l *loader) translateRelay(n *yaml.Node, d *Dir) *yaml.Node {
	t := &relayTr{l: l, d: d, rank: l.fileOf[n], top: n, topicsSet: map[string]*yaml.Node{}}
	t.out = t.mapping(n)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if isNull(v) {
			continue
		}
		if !slices.Contains(relaySections, k.Value) {
			t.ignore(k.Value)
			continue
		}
		if v.Kind != yaml.MappingNode {
			t.l.problem(v, k.Value, ErrType, "expected a mapping, got %s", kindName(v))
			continue
		}
		for j := 0; j+1 < len(v.Content); j += 2 {
			kk, vv := v.Content[j], v.Content[j+1]
			key := k.Value + "." + kk.Value
			if isNull(vv) && key != "http.auth_interval" {
				continue // Relay's "unset"; auth_interval's null disables it
			}
			if rule := relayKeys[key]; rule != nil {
				t.cur = key
				rule(t, key, vv)
				t.cur = ""
			} else {
				t.ignore(key)
			}
		}
	}
	t.environment(os.LookupEnv)
	t.finish()
	slices.Sort(t.ignored)
	d.Ignored = slices.Compact(t.ignored)
	return t.out
}

func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" }

func (t *relayTr) ignore(key string) { t.ignored = append(t.ignored, key) }

// finish adds what a Relay config directory implies even when config.yml
// does not say it: Relay's default mode and upstream, every class routed to
// that upstream, the credentials and buffer inside the directory, and the
// local project configs.
func (t *relayTr) finish() {
	at := t.top
	if t.modeVal == "" {
		t.modeVal = ModeManaged // Relay's default
		t.set("mode", at, string(ModeManaged))
	}
	if lookup(t.out, "upstreams", RelayUpstream, "urls") == nil {
		t.setNode("upstreams."+RelayUpstream+".urls", t.seq(at, RelayDefaultUpstream))
	}
	t.set("routes.default.upstream", at, RelayUpstream)
	if t.modeVal == ModeManaged {
		t.set("managed.upstream", at, RelayUpstream)
	}
	t.set("managed.credentials", at, filepath.Join(t.d.Path, CredentialsName))
	t.set("buffer.dir", at, filepath.Join(t.d.Path, BufferDirName))
	if t.host != "" || t.port != "" {
		host, port := t.host, t.port
		if host == "" {
			host = "127.0.0.1" // Relay's default
		}
		if port == "" {
			port = "3000"
		}
		t.set("server.listen", t.listenAt, net.JoinHostPort(host, port))
	}
	if t.processing {
		t.routeProcessing()
	}
	if t.modeVal != ModeProxy {
		t.readProjects()
	}
}

// relayEnv are the environment variables Relay reads over its config.yml
// (relay-protocol.md 3.8), in the order they apply, with the rule of the
// config.yml key each overrides.
var relayEnv = []struct {
	name string
	rule relayRule
}{
	{"RELAY_MODE", (*relayTr).mode},
	{"RELAY_UPSTREAM_URL", (*relayTr).upstream},
	{"RELAY_HOST", (*relayTr).hostKey},
	{"RELAY_PORT", (*relayTr).portKey},
}

// environment applies Relay's environment overrides, as a Relay in the same
// directory would: the settings over config.yml's, and the relay's
// credentials instead of credentials.json. A problem is reported against
// the variable's name.
func (t *relayTr) environment(lookup func(string) (string, bool)) {
	for _, e := range relayEnv {
		if v, ok := lookup(e.name); ok && v != "" {
			tag := "!!str"
			if e.name == "RELAY_PORT" {
				tag = "!!int"
			}
			e.rule(t, e.name, t.scalar(t.top, v, tag))
		}
	}
	sec, _ := lookup("RELAY_SECRET_KEY")
	pub, _ := lookup("RELAY_PUBLIC_KEY")
	switch {
	case sec != "" && pub == "":
		t.l.problem(t.top, "RELAY_PUBLIC_KEY", ErrInvalid, "RELAY_SECRET_KEY is set but RELAY_PUBLIC_KEY is not: the relay's credentials need both")
	case pub != "" && sec == "":
		t.l.problem(t.top, "RELAY_SECRET_KEY", ErrInvalid, "RELAY_PUBLIC_KEY is set but RELAY_SECRET_KEY is not: the relay's credentials need both")
	case sec != "":
		t.set("managed.secret_key", t.top, sec)
		t.set("managed.public_key", t.top, pub)
		if id, _ := lookup("RELAY_ID"); id != "" {
			t.set("managed.relay_id", t.top, id)
		}
	}
}

// node returns a scalar positioned at at, recorded as from config.yml.
func (t *relayTr) scalar(at *yaml.Node, value, tag string) *yaml.Node {
	n := &yaml.Node{Kind: yaml.ScalarNode, Tag: tag, Value: value, Line: at.Line, Column: at.Column}
	t.l.fileOf[n] = t.rank
	return n
}

func (t *relayTr) mapping(at *yaml.Node) *yaml.Node {
	n := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: at.Line, Column: at.Column}
	t.l.fileOf[n] = t.rank
	return n
}

func (t *relayTr) seq(at *yaml.Node, values ...string) *yaml.Node {
	n := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Line: at.Line, Column: at.Column}
	t.l.fileOf[n] = t.rank
	for _, v := range values {
		n.Content = append(n.Content, t.scalar(at, v, "!!str"))
	}
	return n
}

// set puts a string scalar at the dotted Baton path.
func (t *relayTr) set(path string, at *yaml.Node, value string) {
	if at == nil {
		at = t.top
	}
	t.setNode(path, t.scalar(at, value, "!!str"))
}

// setNode puts n at the dotted Baton path, creating mappings on the way.
// Problems Validate finds at that path are named after the Relay key.
func (t *relayTr) setNode(path string, n *yaml.Node) {
	if t.cur != "" {
		t.l.relayNames[path] = t.cur
	}
	m := t.out
	keys := strings.Split(path, ".")
	for i, k := range keys {
		j := keyIndex(m, k)
		if i == len(keys)-1 {
			if j >= 0 {
				m.Content[j+1] = n
			} else {
				m.Content = append(m.Content, t.scalar(n, k, "!!str"), n)
			}
			return
		}
		if j < 0 || m.Content[j+1].Kind != yaml.MappingNode {
			c := t.mapping(n)
			if j >= 0 {
				m.Content[j+1] = c
			} else {
				m.Content = append(m.Content, t.scalar(n, k, "!!str"), c)
			}
			m = c
			continue
		}
		m = m.Content[j+1]
	}
}

// Value readers: each reports a wrong type under the Relay key and returns
// ok false.

func (t *relayTr) str(key string, v *yaml.Node) string {
	if v.Kind != yaml.ScalarNode {
		t.l.problem(v, key, ErrType, "expected a string, got %s", kindName(v))
		return ""
	}
	return v.Value
}

func (t *relayTr) uint(key string, v *yaml.Node, unit string) (uint64, bool) {
	if v.Kind == yaml.ScalarNode {
		if n, err := strconv.ParseUint(v.Value, 10, 63); err == nil {
			return n, true
		}
	}
	t.l.problem(v, key, ErrType, "expected %s, as Relay reads it, got %s", unit, kindName(v))
	return 0, false
}

func (t *relayTr) boolean(key string, v *yaml.Node) bool {
	if v.Kind == yaml.ScalarNode {
		switch v.Value {
		case "true", "True", "TRUE":
			return true
		case "false", "False", "FALSE":
			return false
		}
	}
	t.l.problem(v, key, ErrType, "expected true or false, got %s", kindName(v))
	return false
}

// Rule constructors, by Relay unit.

func secs(path string) relayRule {
	return func(t *relayTr, key string, v *yaml.Node) {
		if n, ok := t.uint(key, v, "a whole number of seconds"); ok {
			t.set(path, v, strconv.FormatUint(n, 10)+"s")
		}
	}
}

// authInterval maps http.auth_interval; Relay's null, like its 0,
// registers once.
func (t *relayTr) authInterval(key string, v *yaml.Node) {
	if isNull(v) {
		t.set("managed.auth_interval", v, "0s")
		return
	}
	secs("managed.auth_interval")(t, key, v)
}

func millis(path string) relayRule {
	return func(t *relayTr, key string, v *yaml.Node) {
		if n, ok := t.uint(key, v, "a whole number of milliseconds"); ok {
			// Relay's 0 is "at once"; Baton's intervals are positive.
			t.set(path, v, strconv.FormatUint(max(n, 1), 10)+"ms")
		}
	}
}

func count(path string) relayRule {
	return func(t *relayTr, key string, v *yaml.Node) {
		if n, ok := t.uint(key, v, "a whole number"); ok {
			t.set(path, v, strconv.FormatUint(n, 10))
		}
	}
}

func flag(path string) relayRule {
	return func(t *relayTr, key string, v *yaml.Node) {
		if t.boolean(key, v) {
			t.set(path, v, "true")
		} else if !t.l.bad[v] {
			t.set(path, v, "false")
		}
	}
}

// size translates Relay's byte sizes: an integer, or a number with a unit
// where, as in Relay, "KB" is 1024 bytes ("kB" 1000, "MB" 1000000).
func size(path string) relayRule {
	return func(t *relayTr, key string, v *yaml.Node) {
		if v.Kind != yaml.ScalarNode {
			t.l.problem(v, key, ErrType, "expected a byte size, got %s", kindName(v))
			return
		}
		s := strings.TrimSpace(v.Value)
		if num, ok := strings.CutSuffix(s, "KB"); ok {
			s = num + "KiB"
		}
		b, err := ParseByteSize(s)
		if err != nil {
			t.l.problem(v, key, ErrType, "%v", err)
			return
		}
		t.set(path, v, strconv.FormatInt(int64(b), 10))
	}
}

// Rules of keys that need more than a unit.

func (t *relayTr) mode(key string, v *yaml.Node) {
	switch m := t.str(key, v); m {
	case "managed", "proxy", "static":
		t.modeVal = Mode(m)
		t.set("mode", v, m)
	case "":
	default:
		t.l.problem(v, key, ErrInvalid, "%q is not a mode Baton runs: want managed, proxy or static", m)
	}
}

func (t *relayTr) upstream(key string, v *yaml.Node) {
	if u := t.str(key, v); u != "" {
		t.setNode("upstreams."+RelayUpstream+".urls", t.seq(v, u))
	}
}

func (t *relayTr) hostKey(key string, v *yaml.Node) {
	if t.host = t.str(key, v); t.listenAt == nil {
		t.listenAt = v
	}
}

func secondsDuration(n uint64) time.Duration { return time.Duration(n) * time.Second }

func (t *relayTr) portKey(key string, v *yaml.Node) {
	if n, ok := t.uint(key, v, "a port number"); ok {
		if n > 65535 {
			t.l.problem(v, key, ErrInvalid, "port %d is out of range 0-65535", n)
			return
		}
		t.port, t.listenAt = strconv.FormatUint(n, 10), v
	}
}

func (t *relayTr) encoding(key string, v *yaml.Node) {
	switch e := t.str(key, v); e {
	case "identity":
		t.set("upstreams."+RelayUpstream+".compression", v, string(CompressionNone))
	case "gzip", "zstd":
		t.set("upstreams."+RelayUpstream+".compression", v, e)
	case "":
	default:
		t.l.problem(v, key, ErrInvalid, "%q: Baton sends identity, gzip or zstd", e)
	}
}

func (t *relayTr) fileInterval(key string, v *yaml.Node) {
	if n, ok := t.uint(key, v, "a whole number of seconds"); ok {
		if n == 0 {
			t.l.problem(v, key, ErrInvalid, "must be at least 1 second")
			return
		}
		t.d.FileInterval = secondsDuration(n)
	}
}

func (t *relayTr) staticRelays(key string, v *yaml.Node) {
	if v.Kind != yaml.MappingNode {
		t.l.problem(v, key, ErrType, "expected a mapping of relay ids to {public_key, internal}, got %s", kindName(v))
		return
	}
	t.setNode("auth.static_relays", v) // same shape in both schemas
}

func (t *relayTr) logLevel(key string, v *yaml.Node) {
	lv := map[string]LogLevel{"off": LogError, "error": LogError, "warn": LogWarn, "info": LogInfo, "debug": LogDebug, "trace": LogDebug}
	s := t.str(key, v)
	if l, ok := lv[s]; ok {
		t.set("telemetry.log_level", v, string(l))
	} else if s != "" {
		t.l.problem(v, key, ErrInvalid, "%q is not a log level: want off, error, warn, info, debug or trace", s)
	}
}

// normalizationLevel maps Relay's normalization.level: its default and
// full (what a last-layer relay runs) are Baton's default, the first
// relay's normalization; an older Relay's disabled is disabled.
func (t *relayTr) normalizationLevel(key string, v *yaml.Node) {
	switch s := t.str(key, v); s {
	case "default", "full":
		t.set("normalization.level", v, string(NormalizationDefault))
	case "disabled":
		t.set("normalization.level", v, string(NormalizationDisabled))
	case "":
	default:
		t.l.problem(v, key, ErrInvalid, "%q is not a normalization level: want default, full or disabled", s)
	}
}

// emitOutcomes maps Relay's outcomes.emit_outcomes: true, false or
// "as_client_reports", the same values as Baton's.
func (t *relayTr) emitOutcomes(key string, v *yaml.Node) {
	if v.Kind == yaml.ScalarNode && v.Value == "as_client_reports" {
		t.set("outcomes.emit_outcomes", v, v.Value)
		return
	}
	if b := t.boolean(key, v); b {
		t.set("outcomes.emit_outcomes", v, "true")
	} else if !t.l.bad[v] {
		t.set("outcomes.emit_outcomes", v, "false")
	}
}

// outcomesSource maps Relay's outcomes.source; null, Relay's default, is
// no source.
func (t *relayTr) outcomesSource(key string, v *yaml.Node) {
	if isNull(v) {
		t.set("outcomes.source", v, "")
		return
	}
	if s := t.str(key, v); !t.l.bad[v] {
		t.set("outcomes.source", v, s)
	}
}

func (t *relayTr) logFormat(key string, v *yaml.Node) {
	switch s := t.str(key, v); s {
	case "json":
		t.set("telemetry.log_format", v, "json")
	case "auto", "pretty", "simplified", "text":
		t.set("telemetry.log_format", v, "text")
	case "":
	default:
		t.l.problem(v, key, ErrInvalid, "%q is not a log format: want auto, pretty, simplified or json", s)
	}
}

// relayProjectConfig are the keys of a project file's config that take
// effect: the relay decodes the file as an upstream's project config
// (Project.Relay). Other config keys are listed as ignored.
var relayProjectConfig = []string{"allowedDomains", "filterSettings", "quotas", "sampling", "dynamicSampling", "metrics", "features", "piiConfig", "datascrubbingSettings", "grouping", "clientOptions"}

// readProjects turns Relay's local project configs, projects/<id>.json,
// into Baton projects: public keys (those not isEnabled: false), disabled
// and config.allowedDomains, and the file verbatim as Project.Relay, whose
// relayProjectConfig keys the relay applies. Their other keys are listed as
// ignored.
func (t *relayTr) readProjects() {
	dir := t.d.ProjectsDir()
	entries, err := os.ReadDir(dir)
	if err != nil {
		return // no local project configs
	}
	for _, e := range entries {
		id, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || e.IsDir() {
			continue
		}
		path := filepath.Join(dir, e.Name())
		data, err := os.ReadFile(path)
		n := t.l.parse(source{name: path, data: data, err: err})
		if n == nil {
			continue
		}
		t.project(id, e.Name(), n)
		if t.l.relayProjects == nil {
			t.l.relayProjects = map[string][]byte{}
		}
		t.l.relayProjects[id] = data
	}
}

func (t *relayTr) project(id, name string, n *yaml.Node) {
	p := "projects." + id
	keys := t.seq(n)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		switch k.Value {
		case "publicKeys":
			if v.Kind != yaml.SequenceNode {
				t.l.problem(v, "publicKeys", ErrType, "expected a list, got %s", kindName(v))
				continue
			}
			for _, pk := range v.Content {
				if en := lookup(pk, "isEnabled"); en != nil && en.Value == "false" {
					continue
				}
				if key := lookup(pk, "publicKey"); key != nil && key.Kind == yaml.ScalarNode {
					keys.Content = append(keys.Content, key)
				} else {
					t.l.problem(pk, "publicKeys", ErrType, "expected {\"publicKey\": \"<32 hex>\"}, got %s", kindName(pk))
				}
			}
		case "disabled":
			if b := t.boolean("disabled", v); b || !t.l.bad[v] {
				t.set(p+".disabled", v, strconv.FormatBool(b))
			}
		case "config":
			if v.Kind != yaml.MappingNode {
				t.l.problem(v, "config", ErrType, "expected a mapping, got %s", kindName(v))
				continue
			}
			for j := 0; j+1 < len(v.Content); j += 2 {
				ck, cv := v.Content[j], v.Content[j+1]
				switch {
				case ck.Value == "allowedDomains" && cv.Kind == yaml.SequenceNode:
					t.setNode(p+".allowed_domains", cv)
				case slices.Contains(relayProjectConfig, ck.Value):
					// applied from Project.Relay
				default:
					t.ignore(ProjectsDirName + "/" + name + ": config." + ck.Value)
				}
			}
		case "projectId", "slug", "lastChange", "rev", "organizationId", "lastFetch":
			// identification only
		default:
			t.ignore(ProjectsDirName + "/" + name + ": " + k.Value)
		}
	}
	t.setNode(p+".public_keys", keys)
}

// kafkaProps maps librdkafka properties in processing.kafka_config to the
// Baton cluster setting each becomes.
var kafkaProps = map[string]string{
	"client.id":                "client_id",
	"compression.type":         "compression",
	"message.max.bytes":        "max_message_bytes",
	"sasl.username":            "sasl.username",
	"sasl.password":            "sasl.password",
	"ssl.ca.location":          "tls.ca_file",
	"ssl.certificate.location": "tls.cert_file",
	"ssl.key.location":         "tls.key_file",
}

// processingCluster is the Kafka cluster processing.kafka_config becomes.
const processingCluster = "processing"

func (t *relayTr) kafkaConfig(key string, v *yaml.Node) {
	if v.Kind != yaml.SequenceNode {
		t.l.problem(v, key, ErrType, "expected a list of {name, value}, got %s", kindName(v))
		return
	}
	cl := "kafka.clusters." + processingCluster + "."
	for i, item := range v.Content {
		field := fmt.Sprintf("%s[%d]", key, i)
		name, val := lookup(item, "name"), lookup(item, "value")
		if name == nil || val == nil || name.Kind != yaml.ScalarNode || val.Kind != yaml.ScalarNode {
			t.l.problem(item, field, ErrType, "expected {name: <librdkafka property>, value: <string>}, got %s", kindName(item))
			continue
		}
		switch p := name.Value; p {
		case "bootstrap.servers":
			var brokers []string
			for b := range strings.SplitSeq(val.Value, ",") {
				if b = strings.TrimSpace(b); b != "" {
					brokers = append(brokers, b)
				}
			}
			t.brokers = t.seq(val, brokers...)
			t.setNode(cl+"brokers", t.brokers)
		case "sasl.mechanism", "sasl.mechanisms":
			t.set(cl+"sasl.mechanism", val, strings.ToLower(val.Value))
		case "security.protocol":
			switch strings.ToUpper(val.Value) {
			case "SSL", "SASL_SSL":
				t.set(cl+"tls.enabled", val, "true")
			case "PLAINTEXT", "SASL_PLAINTEXT":
			default:
				t.l.problem(val, field, ErrInvalid, "security.protocol %q: want PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL", val.Value)
			}
		default:
			if b, ok := kafkaProps[p]; ok {
				t.set(cl+b, val, val.Value)
			} else {
				t.ignore(key + ": " + p)
			}
		}
	}
}

// relayTopics maps processing.topics keys to the Baton classes routed to
// them (docs/relay-protocol.md 5.1), with Relay's default topic names.
var relayTopics = []struct {
	key, topic string
	classes    []string
}{
	{"events", "ingest-events", []string{"error", "security"}},
	{"attachments", "ingest-attachments", []string{"attachment"}},
	{"transactions", "ingest-transactions", []string{"transaction"}},
	{"metrics_sessions", "ingest-metrics", []string{"session"}},
	{"metrics_generic", "ingest-performance-metrics", []string{"metric"}},
	{"profiles", "profiles", []string{"profile"}},
	{"replay_recordings", "ingest-replay-recordings", []string{"replay"}},
	{"monitors", "ingest-monitors", []string{"check_in"}},
	{"spans", "ingest-spans", []string{"span"}},
	{"feedback", "ingest-feedback-events", []string{"feedback"}},
	{"items", "snuba-items", []string{"log", "trace_metric"}},
}

func (t *relayTr) topics(key string, v *yaml.Node) {
	if v.Kind != yaml.MappingNode {
		t.l.problem(v, key, ErrType, "expected a mapping of topic keys to names, got %s", kindName(v))
		return
	}
	for i := 0; i+1 < len(v.Content); i += 2 {
		k, val := v.Content[i], v.Content[i+1]
		j := slices.IndexFunc(relayTopics, func(rt struct {
			key, topic string
			classes    []string
		}) bool {
			return rt.key == k.Value
		})
		if j < 0 || val.Kind != yaml.ScalarNode {
			t.ignore(key + "." + k.Value) // outcomes, sharded or secondary-cluster topics
			continue
		}
		for _, cl := range relayTopics[j].classes {
			t.topicsSet[cl] = val
		}
	}
}

// routeProcessing routes each class with a Relay topic to the processing
// cluster, as a processing Relay writes them to Kafka.
func (t *relayTr) routeProcessing() {
	if t.brokers == nil {
		t.l.problem(t.procAt, "processing.kafka_config", ErrInvalid, "processing needs bootstrap.servers in processing.kafka_config")
		return
	}
	for _, rt := range relayTopics {
		for _, cl := range rt.classes {
			at := t.procAt
			topic := rt.topic
			if n := t.topicsSet[cl]; n != nil {
				at, topic = n, n.Value
			}
			t.set("routes."+cl+".kafka", at, processingCluster)
			t.set("routes."+cl+".topic", at, topic)
		}
	}
}
