package config

import (
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"math"
	"net"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"filippo.io/edwards25519"

	"github.com/baton-relay/baton/envelope"
)

// Validate checks the rules that decoding cannot: enumerations, ranges,
// addresses, URLs, names that refer to each other, and that every class has
// a route. It returns nil or an Errors with every problem, each at the file
// and line of its value when c came from Load or Parse.
//
// Validate does not modify c.
func (c *Config) Validate() error {
	if errs := c.validate().sorted(); errs != nil {
		return errs
	}
	return nil
}

// validator collects problems, positioned through the config's origins.
type validator struct {
	c     *Config
	probs problems
}

func (v *validator) errorf(field, format string, args ...any) {
	v.probs.add(v.c.origins.at(field), field, ErrInvalid, fmt.Sprintf(format, args...))
}

// errorfNear is errorf for a rule that involves another field: when the
// user did not set field itself, the problem is reported at near if the user
// set that ("mode: managed" for a missing managed.upstream, "max_bytes:
// 100MiB" for the default reserve_bytes it falls under).
func (v *validator) errorfNear(field, near, format string, args ...any) {
	at := v.c.origins.at(field)
	if f, set := v.c.origins[field]; !set || f.rank == defaultRank {
		if n, set := v.c.origins[near]; set && n.rank != defaultRank {
			at = n
		}
	}
	v.probs.add(at, field, ErrInvalid, fmt.Sprintf(format, args...))
}

func (c *Config) validate() problems {
	v := &validator{c: c}
	v.mode()
	v.server()
	v.limits()
	v.buffer()
	v.upstreams()
	v.kafka()
	v.routes()
	v.projects()
	v.managed()
	v.auth()
	v.metrics()
	v.outcomes()
	oneOf(v, "normalization.level", v.c.Normalization.Level, NormalizationDefault, NormalizationDisabled)
	v.telemetry()
	v.runtime()
	v.redis()
	v.lanes()
	v.tailSampling()
	return v.probs
}

// oneOf checks that val is one of allowed.
func oneOf[T ~string](v *validator, field string, val T, allowed ...T) {
	if slices.Contains(allowed, val) {
		return
	}
	names := make([]string, len(allowed))
	for i, a := range allowed {
		names[i] = string(a)
	}
	v.errorf(field, "%q is not one of %s%s", val, strings.Join(names, ", "), suggest(string(val), names))
}

func (v *validator) positive(field string, val int64) {
	if val <= 0 {
		v.errorf(field, "must be greater than 0")
	}
}

func (v *validator) durationPositive(field string, d time.Duration) {
	if d <= 0 {
		v.errorf(field, "must be a duration greater than 0, e.g. \"30s\"")
	}
}

// hostPort checks a host:port address; listen addresses may omit the host
// and use port 0.
func (v *validator) hostPort(field, addr string, listen bool) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		v.errorf(field, "%q is not a host:port address: %v", addr, unwrapAddrErr(err))
		return
	}
	p, err := strconv.ParseUint(port, 10, 16)
	switch {
	case err != nil:
		v.errorf(field, "%q: port %q is not a number from 0 to 65535", addr, port)
	case !listen && p == 0:
		v.errorf(field, "%q: port must be from 1 to 65535", addr)
	case !listen && host == "":
		v.errorf(field, "%q: missing host", addr)
	}
}

func unwrapAddrErr(err error) string {
	if ae, ok := err.(*net.AddrError); ok {
		return ae.Err
	}
	return err.Error()
}

func (v *validator) mode() {
	oneOf(v, "mode", v.c.Mode, ModeProxy, ModeStatic, ModeManaged)
}

func (v *validator) server() {
	s := v.c.Server
	v.hostPort("server.listen", s.Listen, true)
	v.positive("server.max_connections", int64(s.MaxConnections))
	v.durationPositive("server.read_timeout", s.ReadTimeout)
	v.durationPositive("server.write_timeout", s.WriteTimeout)
	v.durationPositive("server.idle_timeout", s.IdleTimeout)
	v.durationPositive("server.client_options_max_age", s.ClientOptionsMaxAge)
	v.durationPositive("server.shutdown_timeout", s.ShutdownTimeout)
	v.positive("server.max_header_bytes", int64(s.MaxHeaderBytes))
	v.positive("server.max_inflight_bytes", int64(s.MaxInflightBytes))
}

// limits checks that every limit is greater than 0.
func (v *validator) limits() {
	val := reflect.ValueOf(v.c.Limits)
	fields := structFields(val.Type())
	for _, name := range fields.names {
		if val.Field(fields.index(name)).Int() <= 0 {
			v.errorf("limits."+name, "must be greater than 0")
		}
	}
}

func (v *validator) buffer() {
	b := v.c.Buffer
	if b.Dir == "" {
		v.errorf("buffer.dir", "must not be empty")
	}
	v.positive("buffer.max_bytes", int64(b.MaxBytes))
	if b.ReserveBytes <= 0 {
		v.errorf("buffer.reserve_bytes", "must be greater than 0: it keeps the disk from filling up, which Pebble treats as fatal")
	}
	if b.MaxAge < 0 {
		v.errorf("buffer.max_age", "must not be negative (0 keeps records forever)")
	}
	oneOf(v, "buffer.durability", b.Durability, DurabilityStrict, DurabilityRelaxed)
	if b.Durability == DurabilityRelaxed {
		v.durationPositive("buffer.sync_interval", b.SyncInterval)
	}
	if b.Partitions < 1 || b.Partitions > 256 {
		v.errorf("buffer.partitions", "must be from 1 to 256, got %d", b.Partitions)
	}
	if b.ReserveBytes > 0 && b.MaxBytes > 0 && b.ReserveBytes >= b.MaxBytes {
		v.errorfNear("buffer.reserve_bytes", "buffer.max_bytes", "%s leaves nothing of buffer.max_bytes (%s) for records; lower reserve_bytes or raise max_bytes",
			b.ReserveBytes, b.MaxBytes)
	}
	v.positive("buffer.memtable_size", int64(b.MemtableSize))
	switch {
	case b.MemtableSize > 0 && b.MemtableSize < MinMemtableSize:
		v.errorf("buffer.memtable_size", "%s is too small: at least %s (Pebble fails to open with tiny memtables)", b.MemtableSize, MinMemtableSize)
	case b.MemtableSize >= MaxMemtableSize:
		v.errorf("buffer.memtable_size", "%s is too large: Pebble takes memtables up to %d bytes (just under 4GiB)", b.MemtableSize, int64(MaxMemtableSize-1))
	case b.MemtableSize > 0 && b.MaxBytes > 0 && b.MemtableSize >= b.MaxBytes:
		v.errorf("buffer.memtable_size", "%s must be less than buffer.max_bytes (%s)", b.MemtableSize, b.MaxBytes)
	}
}

// The range of buffer.memtable_size. Pebble refuses memtables from
// MaxMemtableSize up (its arena is addressed with 32-bit offsets) and panics
// on open when one is smaller than an empty memtable's arena (some KiB);
// buffer.Open refuses sizes under MinMemtableSize, the size Pebble starts its
// first memtable at.
const (
	MinMemtableSize = 256 * KiB
	MaxMemtableSize = ByteSize(1<<32 - 1)
)

func (v *validator) upstreams() {
	for _, name := range slices.Sorted(maps.Keys(v.c.Upstreams)) {
		u, p := v.c.Upstreams[name], "upstreams."+name
		if len(u.URLs) == 0 {
			v.errorf(p+".urls", "at least one URL is required")
		}
		bases := make([]string, len(u.URLs))
		for i, raw := range u.URLs {
			field := fmt.Sprintf("%s.urls[%d]", p, i)
			if msg := checkURL(raw); msg != "" {
				v.errorf(field, "%q %s", raw, msg)
				continue
			}
			bases[i] = urlBase(raw)
			if j := slices.Index(bases, bases[i]); j < i {
				v.errorf(field, "%q is listed twice (also at urls[%d])", raw, j)
			}
		}
		oneOf(v, p+".compression", u.Compression, CompressionGzip, CompressionZstd, CompressionNone)
		v.durationPositive(p+".timeout", u.Timeout)
		v.durationPositive(p+".connect_timeout", u.ConnectTimeout)
		v.positive(p+".max_conns", int64(u.MaxConns))
		if u.MaxFailures < 0 {
			v.errorf(p+".max_failures", "must not be negative (0 never ejects)")
		}
		v.durationPositive(p+".probe_interval", u.ProbeInterval)
		v.durationPositive(p+".max_retry_interval", u.MaxRetryInterval)
		v.durationPositive(p+".outage_grace_period", u.OutageGracePeriod)
		v.positive(p+".concurrency", int64(u.Concurrency))
	}
}

// checkURL returns why raw is not an absolute http(s) base URL, or "".
func checkURL(raw string) string {
	u, err := url.Parse(raw)
	var ue *url.Error
	switch {
	case errors.As(err, &ue):
		return "is not a URL: " + ue.Err.Error()
	case err != nil:
		return "is not a URL: " + err.Error()
	case u.Scheme != "http" && u.Scheme != "https":
		return "must be an absolute http:// or https:// URL"
	case u.Host == "":
		return "has no host"
	case u.RawQuery != "" || u.Fragment != "":
		return "must not have a query or fragment"
	case u.User != nil:
		return "must not carry a user name or password"
	}
	return ""
}

// urlBase is what makes two upstream URLs the same node: scheme, host and
// path without trailing slashes (routing.NewUpstream refuses duplicates).
func urlBase(raw string) string {
	u, _ := url.Parse(raw)
	return u.Scheme + "://" + u.Host + strings.TrimRight(u.EscapedPath(), "/")
}

func (v *validator) kafka() {
	k := v.c.Kafka
	v.hostPort("kafka.embedded.listen", k.Embedded.Listen, true)
	if a := k.Embedded.Advertised; a != "" {
		v.hostPort("kafka.embedded.advertised", a, false)
		if h, _, err := net.SplitHostPort(a); err == nil && h != "" && listenHost(h) == "" {
			v.errorf("kafka.embedded.advertised", "%q is a wildcard address no client can connect to; give the name or address clients reach Baton by", a)
		}
	}
	if k.Embedded.RetentionBytes <= 0 {
		v.errorf("kafka.embedded.retention_bytes", "must be positive")
	}
	for _, name := range slices.Sorted(maps.Keys(k.Clusters)) {
		c, p := k.Clusters[name], "kafka.clusters."+name
		if name == EmbeddedCluster {
			v.errorf(p, "the name %q is reserved for the embedded broker (kafka.embedded); pick another", EmbeddedCluster)
		}
		if len(c.Brokers) == 0 {
			v.errorf(p+".brokers", "at least one broker host:port is required")
		}
		for i, b := range c.Brokers {
			v.hostPort(fmt.Sprintf("%s.brokers[%d]", p, i), b, false)
		}
		if c.ClientID == "" || len(c.ClientID) > maxKafkaClientID {
			v.errorf(p+".client_id", "must be 1 to %d bytes long", maxKafkaClientID)
		}
		oneOf(v, p+".compression", c.Compression, CompressionSnappy, CompressionLZ4, CompressionZstd, CompressionGzip, CompressionNone)
		if c.MaxMessageBytes < MinKafkaMessageBytes || c.MaxMessageBytes > MaxKafkaMessageBytes {
			v.errorf(p+".max_message_bytes", "must be from %d to %d bytes (%s less 256), got %d",
				int64(MinKafkaMessageBytes), int64(MaxKafkaMessageBytes), MaxKafkaMessageBytes+256, int64(c.MaxMessageBytes))
		}
		if ct := c.CreateTopics; ct.Partitions == 0 || ct.Partitions < -1 || ct.Partitions > math.MaxInt32 {
			v.errorf(p+".create_topics.partitions", "must be -1 (the broker's default) or from 1 to %d, got %d", math.MaxInt32, ct.Partitions)
		}
		if ct := c.CreateTopics; ct.Replication == 0 || ct.Replication < -1 || ct.Replication > math.MaxInt16 {
			v.errorf(p+".create_topics.replication", "must be -1 (the broker's default) or from 1 to %d, got %d", math.MaxInt16, ct.Replication)
		}
		if c.DeadLetterTopic != "" {
			if msg := checkTopic(c.DeadLetterTopic); msg != "" {
				v.errorf(p+".dead_letter_topic", "%q %s", c.DeadLetterTopic, msg)
			}
		}
		switch s := c.SASL; {
		case s.Mechanism != "":
			oneOf(v, p+".sasl.mechanism", s.Mechanism, SASLPlain, SASLScramSHA256, SASLScramSHA512)
			if s.Username == "" {
				v.errorf(p+".sasl.username", "is required with sasl.mechanism %q", s.Mechanism)
			}
			if s.Password == "" {
				v.errorf(p+".sasl.password", "is required with sasl.mechanism %q", s.Mechanism)
			}
		case s.Username != "" || s.Password != "":
			v.errorf(p+".sasl.mechanism", "is required when sasl.username or sasl.password is set")
		}
		t := c.TLS
		if !t.Enabled && (t.CAFile != "" || t.CertFile != "" || t.KeyFile != "" || t.ServerName != "" || t.InsecureSkipVerify) {
			v.errorf(p+".tls.enabled", "is false but other tls settings are set; set enabled: true or remove them")
		}
		if (t.CertFile == "") != (t.KeyFile == "") {
			v.errorf(p+".tls.cert_file", "cert_file and key_file must be set together")
		}
	}
}

// The range of kafka.clusters.*.max_message_bytes: the Kafka client (franz-go)
// refuses record batches over its 100MiB request limit, a batch is one
// message plus up to 256 bytes of framing, and a record carries up to 1.25
// KiB of key and headers besides its envelope (routing.maxRecordMeta), so
// 4KiB is the least that leaves room for one.
const (
	MinKafkaMessageBytes = 4 * KiB
	MaxKafkaMessageBytes = 100*MiB - 256

	maxKafkaClientID = 256 // the Kafka client refuses longer ids
)

// checkTopic returns why name is not a valid Kafka topic name, or "".
func checkTopic(name string) string {
	switch {
	case name == "":
		return "is empty"
	case len(name) > 249:
		return fmt.Sprintf("is %d characters long; Kafka allows at most 249", len(name))
	case name == "." || name == "..":
		return "is not a valid Kafka topic name"
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return fmt.Sprintf("contains %q; Kafka topic names allow only a-z, A-Z, 0-9, '.', '_' and '-'", r)
		}
	}
	return ""
}

func (v *validator) routes() {
	routes := v.c.Routes
	var classNames []string
	for _, cl := range envelope.Classes() {
		classNames = append(classNames, cl.String())
	}
	for _, key := range slices.Sorted(maps.Keys(routes)) {
		r, p := routes[key], "routes."+key
		class, isClass := envelope.ParseClass(key)
		if !isClass && key != DefaultRoute {
			v.errorf(p, "%q is not a class name or %q%s; classes: %s", key, DefaultRoute,
				suggest(key, append(classNames, DefaultRoute)), strings.Join(classNames, ", "))
			continue
		}
		if r.Dest == nil {
			v.errorf(p, "needs a sink: set %s", destinationKinds())
		} else {
			r.Dest.check(v, p, v.routeClasses(class, isClass))
		}
		oneOf(v, p+".when_full", r.WhenFull, WhenFullReject, WhenFullDropOldest)
		oneOf(v, p+".steer", r.Steer, SteerProject, SteerTrace)
	}
	if _, ok := routes[DefaultRoute]; ok {
		return
	}
	var missing []string
	for _, name := range classNames {
		if _, ok := routes[name]; !ok {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		v.errorf("routes", "no route for class %s and no %q route; add routes for them or a %q route",
			strings.Join(missing, ", "), DefaultRoute, DefaultRoute)
	}
}

// routeClasses returns the classes a route serves: class, or for the
// default route every class without its own route.
func (v *validator) routeClasses(class envelope.Class, isClass bool) []envelope.Class {
	if isClass {
		return []envelope.Class{class}
	}
	var classes []envelope.Class
	for _, cl := range envelope.Classes() {
		if _, ok := v.c.Routes[cl.String()]; !ok {
			classes = append(classes, cl)
		}
	}
	return classes
}

// topic checks a Kafka route's topic template for each class it serves.
func (v *validator) topic(field, topic string, classes []envelope.Class) {
	if topic == "" {
		v.errorf(field, "a kafka route needs a topic, e.g. \"baton.{class}\"")
		return
	}
	for _, cl := range classes {
		if name := ExpandTopic(topic, cl); checkTopic(name) != "" {
			v.errorf(field, "%q expands to %q for class %s, which %s", topic, name, cl, checkTopic(name))
			return
		}
	}
}

func (v *validator) projects() {
	c := v.c
	switch {
	case c.Mode == ModeProxy && len(c.Projects) > 0:
		v.errorf("projects", "projects are not used in proxy mode; set mode: static or managed, or remove them")
	case c.Mode == ModeStatic && len(c.Projects) == 0:
		v.errorfNear("projects", "mode", "static mode needs at least one project in projects or project_files")
	}
	keyOwner := make(map[string]string)
	for _, id := range slices.Sorted(maps.Keys(c.Projects)) {
		pr, p := c.Projects[id], "projects."+id
		if n, err := strconv.ParseUint(id, 10, 64); err != nil || n == 0 || strconv.FormatUint(n, 10) != id {
			v.errorf(p, "project id %q must be a positive decimal number without leading zeros", id)
		}
		if len(pr.PublicKeys) == 0 {
			v.errorf(p+".public_keys", "at least one public key is required")
		}
		for i, k := range pr.PublicKeys {
			field := fmt.Sprintf("%s.public_keys[%d]", p, i)
			if !isPublicKey(k) {
				v.errorf(field, "%q is not a public key: want 32 lowercase hex characters, the user part of the DSN", k)
			} else if owner, dup := keyOwner[k]; dup {
				v.errorf(field, "public key %s is also used by project %s", k, owner)
			} else {
				keyOwner[k] = id
			}
		}
		for i, d := range pr.AllowedDomains {
			if strings.TrimSpace(d) == "" {
				v.errorf(fmt.Sprintf("%s.allowed_domains[%d]", p, i), "must not be empty; use \"*\" for any origin")
			}
		}
		for i, h := range pr.Grouping.DiscardedHashes {
			if h == "" {
				v.errorf(fmt.Sprintf("%s.grouping.discarded_hashes[%d]", p, i), "must not be empty; want an issue hash as `baton grouping hash` prints it")
			}
		}
		v.clientOptions(p+".client_options", pr.ClientOptions)
		if st := pr.Grouping.Storm; st.Limit < 0 {
			v.errorf(p+".grouping.storm.limit", "must not be negative (0 is off)")
		} else if st.Limit > 0 && (st.Window < time.Second || st.Window%time.Second != 0) {
			v.errorf(p+".grouping.storm.window", "must be a whole number of seconds, at least 1s, e.g. \"1m\"")
		}
		if pr.RateLimit.EventsPerSecond < 0 {
			v.errorf(p+".rate_limit.events_per_second", "must not be negative (0 is unlimited)")
		}
	}
}

func isPublicKey(s string) bool {
	if len(s) != 32 {
		return false
	}
	for _, r := range s {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f') {
			return false
		}
	}
	return true
}

func (v *validator) managed() {
	m := v.c.Managed
	if _, ok := v.c.Upstreams[m.Upstream]; m.Upstream != "" && !ok {
		v.errorf("managed.upstream", "no upstream named %q%s", m.Upstream, suggest(m.Upstream, slices.Sorted(maps.Keys(v.c.Upstreams))))
	} else if m.Upstream == "" && v.c.Mode == ModeManaged {
		v.errorfNear("managed.upstream", "mode", "managed mode needs the name of the upstream that serves project configs")
	}
	switch {
	case m.SecretKey != "" && m.PublicKey == "":
		v.errorfNear("managed.public_key", "managed.secret_key", "managed.secret_key needs managed.public_key")
	case m.PublicKey != "" && m.SecretKey == "":
		v.errorfNear("managed.secret_key", "managed.public_key", "managed.public_key needs managed.secret_key")
	case m.RelayID != "" && m.SecretKey == "":
		v.errorf("managed.relay_id", "needs managed.secret_key and managed.public_key (else the id comes from the credentials file)")
	}
	v.positive("managed.cache.max_projects", int64(m.Cache.MaxProjects))
	v.durationPositive("managed.cache.expiry", m.Cache.Expiry)
	if m.Cache.Grace < 0 {
		v.errorf("managed.cache.grace", "must not be negative")
	}
	v.durationPositive("managed.cache.miss_expiry", m.Cache.MissExpiry)
	v.durationPositive("managed.cache.relay_expiry", m.Cache.RelayExpiry)
	if m.AuthInterval < 0 {
		v.errorf("managed.auth_interval", "must not be negative (0 registers once)")
	}
	v.positive("managed.fetch.batch_size", int64(m.Fetch.BatchSize))
	v.durationPositive("managed.fetch.batch_interval", m.Fetch.BatchInterval)
	v.positive("managed.fetch.concurrency", int64(m.Fetch.Concurrency))
	v.durationPositive("managed.fetch.timeout", m.Fetch.Timeout)
	v.durationPositive("managed.max_pending_age", m.MaxPendingAge)
	v.positive("managed.max_waiting_bytes_per_key", int64(m.MaxWaitingBytesPerKey))
	v.managedClientOptions()
	parts := []string{"keys", "client", "quotas", "filters", "sampling", "metrics", "features", "grouping", "clientOptions", "tailSampling", "other"}
	for i, p := range m.Parts {
		if !slices.Contains(parts, p) {
			v.errorf(fmt.Sprintf("managed.parts.%d", i), "unknown part %q%s", p, suggest(p, parts))
		}
	}
}

func (v *validator) outcomes() {
	o := v.c.Outcomes
	oneOf(v, "outcomes.emit_outcomes", o.EmitOutcomes, "as_client_reports", "true", "false")
	v.durationPositive("outcomes.batch_interval", o.BatchInterval)
	v.positive("outcomes.batch_size", int64(o.BatchSize))
	if o.EmitOutcomes != "true" {
		return
	}
	if o.BatchSize > maxOutcomeBatch {
		v.errorf("outcomes.batch_size", "must be at most %d with raw outcomes (a buffer record counts its outcomes in 16 bits)", maxOutcomeBatch)
	}
	if _, ok := v.c.RouteFor(envelope.ClassClientReport).Dest.(KafkaDest); ok {
		for _, t := range []struct{ field, name string }{{"outcomes.topic", o.Topic}, {"outcomes.billing_topic", o.BillingTopic}} {
			if t.name == "" {
				v.errorf(t.field, "raw outcomes routed to Kafka need a topic, e.g. %q", "outcomes")
			} else if why := checkTopic(t.name); why != "" {
				v.errorf(t.field, "%q %s", t.name, why)
			}
		}
	}
}

// maxOutcomeBatch is the largest outcomes.batch_size of raw outcomes.
const maxOutcomeBatch = 0xffff

func (v *validator) metrics() {
	m := v.c.Metrics
	v.durationPositive("metrics.bucket_interval", m.BucketInterval)
	if m.BucketInterval > 0 && m.BucketInterval%time.Second != 0 {
		v.errorf("metrics.bucket_interval", "must be whole seconds (bucket timestamps are unix seconds)")
	}
	if m.InitialDelay < 0 {
		v.errorf("metrics.initial_delay", "must not be negative")
	}
	v.positive("metrics.max_bytes", int64(m.MaxBytes))
	v.positive("metrics.max_project_bytes", int64(m.MaxProjectBytes))
	v.durationPositive("metrics.max_past", m.MaxPast)
	v.durationPositive("metrics.max_future", m.MaxFuture)
	if m.FlushPartitions < 0 || m.FlushPartitions > 256 {
		v.errorf("metrics.flush_partitions", "must be 0 to 256")
	}
	if m.CardinalityLimit < 0 {
		v.errorf("metrics.cardinality_limit", "must not be negative (0 is unlimited)")
	}
	v.durationPositive("metrics.cardinality_window", m.CardinalityWindow)
	v.positive("metrics.cardinality_scopes", int64(m.CardinalityScopes))
}

func (v *validator) auth() {
	a := v.c.Auth
	v.durationPositive("auth.signature_max_age", a.SignatureMaxAge)
	v.durationPositive("auth.signature_max_future", a.SignatureMaxFuture)
	for id, r := range a.StaticRelays {
		field := "auth.static_relays." + id
		if !isUUID(id) {
			v.errorf(field, "a relay id is a UUID like 3a1e3f0c-6a47-4b0e-9a27-6c2c3fe4e5d1")
		}
		if r.PublicKey == "" {
			v.errorf(field+".public_key", "required: the relay's public key (baton credentials show)")
		} else if b, err := base64.RawURLEncoding.DecodeString(r.PublicKey); err != nil || len(b) != 32 {
			v.errorf(field+".public_key", "not an Ed25519 public key in base64url without padding (43 characters)")
		} else if _, err := new(edwards25519.Point).SetBytes(b); err != nil { // decodes as Relay (curve25519-dalek) does
			v.errorf(field+".public_key", "not an Ed25519 public key: not a point on the curve (copy it from `baton credentials show` of that relay)")
		}
	}
}

// isUUID accepts the hyphenated form of a UUID, any case.
func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, c := range s {
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
				return false
			}
		}
	}
	return true
}

func (v *validator) telemetry() {
	t := v.c.Telemetry
	oneOf(v, "telemetry.log_level", t.LogLevel, LogDebug, LogInfo, LogWarn, LogError)
	oneOf(v, "telemetry.log_format", t.LogFormat, LogText, LogJSON)
	if t.MetricsListen != "" {
		v.hostPort("telemetry.metrics_listen", t.MetricsListen, true)
		if sameFixedPort(t.MetricsListen, v.c.Server.Listen) {
			v.errorf("telemetry.metrics_listen", "%q is also server.listen; use another port", t.MetricsListen)
		}
	}
	if t.PprofListen != "" {
		v.hostPort("telemetry.pprof_listen", t.PprofListen, true)
		for _, o := range []struct{ name, addr string }{{"server.listen", v.c.Server.Listen}, {"telemetry.metrics_listen", t.MetricsListen}} {
			if o.addr != "" && sameFixedPort(t.PprofListen, o.addr) {
				v.errorf("telemetry.pprof_listen", "%q is also %s; use another port", t.PprofListen, o.name)
			}
		}
	}
	if t.OTLPEndpoint != "" {
		if why := checkURL(t.OTLPEndpoint); why != "" && !strings.HasPrefix(why, "must not have") {
			v.errorf("telemetry.otlp_endpoint", "%q %s", t.OTLPEndpoint, why)
		}
	}
	if t.OTLPInterval < 0 {
		v.errorf("telemetry.otlp_interval", "must not be negative (0 is the environment's or 60s)")
	}
	if !(t.TraceSampleRatio >= 0 && t.TraceSampleRatio <= 1) { // NaN too
		v.errorf("telemetry.trace_sample_ratio", "%v is not a ratio from 0 to 1", t.TraceSampleRatio)
	}
	for name := range t.OTLPHeaders {
		if name == "" || strings.ContainsAny(name, " :\r\n") {
			v.errorf("telemetry.otlp_headers", "%q is not an HTTP header name", name)
		}
	}
	if v.c.UsesEmbeddedKafka() {
		k := v.c.Kafka.Embedded.Listen
		switch {
		case sameFixedPort(k, v.c.Server.Listen):
			v.errorfNear("kafka.embedded.listen", "server.listen", "%q is also server.listen; use another port", v.c.Server.Listen)
		case t.MetricsListen != "" && sameFixedPort(k, t.MetricsListen):
			v.errorfNear("kafka.embedded.listen", "telemetry.metrics_listen", "%q is also telemetry.metrics_listen; use another port", t.MetricsListen)
		}
	}
}

// MinMemoryLimit is the smallest runtime.memory_limit accepted: below it the
// garbage collector would run without pause while the memtables alone fill it.
const MinMemoryLimit = 64 * MiB

func (v *validator) runtime() {
	if l := v.c.Runtime.MemoryLimit; l != 0 && l < MinMemoryLimit {
		v.errorf("runtime.memory_limit", "%s is below %s; 0 derives it from the cgroup's limit", l, MinMemoryLimit)
	}
}

// sameFixedPort reports whether two listen addresses would collide: the same
// port, and the same host or either one a wildcard (":3000" also takes
// 127.0.0.1:3000). Port 0 (any free port) never collides.
func sameFixedPort(a, b string) bool {
	ha, pa, errA := net.SplitHostPort(a)
	hb, pb, errB := net.SplitHostPort(b)
	if errA != nil || errB != nil {
		return a == b
	}
	if pa != pb || pa == "0" {
		return false
	}
	ha, hb = listenHost(ha), listenHost(hb)
	return ha == hb || ha == "" || hb == ""
}

// listenHost normalises a listen host: "" for every wildcard form.
func listenHost(h string) string {
	switch h {
	case "", "0.0.0.0", "::", "[::]":
		return ""
	case "localhost":
		return "127.0.0.1"
	}
	return h
}
