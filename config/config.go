package config

import (
	"encoding/json"
	"log/slog"
	"path/filepath"
	"time"
)

// Config is Baton's whole configuration. The zero value is not useful: start
// from Default or Load, which decode the embedded default.yaml, so every field
// below has the default written there (and repeated here).
//
// A Config obtained from Load or Parse remembers the file and line every value
// came from, so Validate can point at it. That memory is shared by copies; a
// Config built or changed in code validates with field paths only.
type Config struct {
	// Mode selects how projects are admitted. Default: proxy.
	Mode Mode `yaml:"mode"`
	// Server is the SDK-facing HTTP listener.
	Server Server `yaml:"server"`
	// Limits are the per-request and per-item size limits.
	Limits Limits `yaml:"limits"`
	// Buffer is the durable write-ahead buffer.
	Buffer Buffer `yaml:"buffer"`
	// Upstreams are the named groups of upstream relays, by name.
	// Default: none. Unset fields of each entry come from Defaults.Upstream.
	Upstreams map[string]Upstream `yaml:"upstreams"`
	// Kafka is the embedded broker and the named Kafka clusters.
	Kafka Kafka `yaml:"kafka"`
	// Routes maps a class name (see envelope.Classes) or "default" to the
	// destination of that class. Default: {"default": {kafka: embedded,
	// topic: "baton.{class}"}}. Unset fields come from Defaults.Route.
	Routes map[string]Route `yaml:"routes"`
	// Projects are the static projects by decimal project id (static mode;
	// in managed mode they override fetched configs). Default: none.
	// Unset fields of each entry come from Defaults.Project.
	Projects map[string]Project `yaml:"projects"`
	// ProjectFiles are YAML or JSON files with more projects, each shaped like
	// the projects map; relative paths are relative to the config file that
	// names them. Load reads them into Projects. Default: none.
	ProjectFiles []string `yaml:"project_files"`
	// Managed configures project-config fetching in managed mode.
	Managed Managed `yaml:"managed"`
	// Auth decides which downstream relays Baton serves.
	Auth Auth `yaml:"auth"`
	// Metrics configures metric aggregation, cardinality limits and
	// steering.
	Metrics Metrics `yaml:"metrics"`
	// Outcomes configures how Baton reports what it drops to Sentry.
	Outcomes Outcomes `yaml:"outcomes"`
	// Normalization configures the first-relay event normalization.
	Normalization Normalization `yaml:"normalization"`
	// Telemetry configures logs and metrics.
	Telemetry Telemetry `yaml:"telemetry"`
	// Runtime tunes the Go runtime Baton runs on.
	Runtime Runtime `yaml:"runtime"`
	// Redis is the state a fleet of Batons shares (global quotas and
	// metric cardinality limits).
	Redis Redis `yaml:"redis"`
	// Lanes configures `baton lanes`, the deadline-lane worker.
	Lanes Lanes `yaml:"lanes"`
	// TailSampling holds traces of some projects until they are complete
	// and keeps or drops each whole.
	TailSampling TailSampling `yaml:"tail_sampling"`
	// Defaults holds the per-entry defaults of the maps above. Load has
	// already applied them to every entry; they are kept for display.
	Defaults Defaults `yaml:"defaults"`

	origins origins // field path → where the value came from; nil if built in code
}

// Mode is how Baton admits projects.
type Mode string

// Modes.
const (
	ModeProxy   Mode = "proxy"   // accept every project id and public key
	ModeStatic  Mode = "static"  // accept only Config.Projects
	ModeManaged Mode = "managed" // fetch project configs from Managed.Upstream
)

// Server is the SDK-facing HTTP listener.
type Server struct {
	// Listen is the host:port to listen on. Default: 127.0.0.1:3000.
	Listen string `yaml:"listen"`
	// MaxConnections caps concurrent client connections (count).
	// Default: 10000.
	MaxConnections int `yaml:"max_connections"`
	// ReadTimeout bounds reading a whole request, headers and body.
	// Default: 30s.
	ReadTimeout time.Duration `yaml:"read_timeout"`
	// WriteTimeout bounds writing a response. Default: 30s.
	WriteTimeout time.Duration `yaml:"write_timeout"`
	// IdleTimeout closes keep-alive connections idle this long. Default: 60s.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// ShutdownTimeout bounds the graceful drain on shutdown. Default: 10s.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	// MaxHeaderBytes caps the request line and headers (bytes).
	// Default: 16KiB.
	MaxHeaderBytes ByteSize `yaml:"max_header_bytes"`
	// MaxInflightBytes is the memory budget of request bodies: wire bytes,
	// decoded bytes and the records built from them, reserved before they
	// are allocated. A request that does not fit now gets 503, one that
	// could never fit 413. Default: 48MiB.
	MaxInflightBytes ByteSize `yaml:"max_inflight_bytes"`
	// ForwardUnknown proxies /api/ paths Baton does not serve to the
	// upstream named by Config.ForwardUpstream, if any. Default: true.
	ForwardUnknown bool `yaml:"forward_unknown"`
	// ClientOptionsMaxAge is how long an SDK may keep a client options
	// answer before it asks again: Cache-Control max-age of GET
	// /api/{project_id}/client-options/ (docs/client-options.md).
	// Default: 60s.
	ClientOptionsMaxAge time.Duration `yaml:"client_options_max_age"`
}

// Limits are size and count limits, with Sentry Relay's defaults (relay-
// config's `limits:` section). A request over MaxEnvelopeSize, or whose
// envelope has an item over its limit, is refused with 413 (counted as
// rejected too_large). The replay limits MaxReplayUncompressedSize and
// MaxReplayMessageSize are checked after acceptance, when the replay is
// forwarded: a replay over one is dropped whole with outcome too_large.
type Limits struct {
	// MaxEnvelopeSize caps a whole envelope after decompression (bytes).
	// Default: 200MiB.
	MaxEnvelopeSize ByteSize `yaml:"max_envelope_size"`
	// MaxDecompressedSize caps any request body after Content-Encoding is
	// removed, a decompression-bomb guard (bytes). Default: 200MiB.
	MaxDecompressedSize ByteSize `yaml:"max_decompressed_size"`
	// MaxEventSize caps an event, transaction, security report, replay event
	// or feedback item, and store/security request bodies (bytes).
	// Default: 1MiB.
	MaxEventSize ByteSize `yaml:"max_event_size"`
	// MaxAttachmentSize caps one attachment, and a minidump once
	// decompressed (bytes). Default: 200MiB.
	MaxAttachmentSize ByteSize `yaml:"max_attachment_size"`
	// MaxAttachmentsSize caps all attachments of an envelope (bytes).
	// Default: 200MiB.
	MaxAttachmentsSize ByteSize `yaml:"max_attachments_size"`
	// MaxAttachmentCount caps attachments per envelope (count). Default: 30.
	MaxAttachmentCount int `yaml:"max_attachment_count"`
	// MaxSessionCount caps session updates per envelope (count). Default: 100.
	MaxSessionCount int `yaml:"max_session_count"`
	// MaxSessionsSize caps the session items of an envelope (bytes).
	// Default: 10MiB.
	MaxSessionsSize ByteSize `yaml:"max_sessions_size"`
	// MaxClientReportsSize caps the client reports of an envelope (bytes).
	// Default: 100KiB.
	MaxClientReportsSize ByteSize `yaml:"max_client_reports_size"`
	// MaxClientReportsCount caps client reports per envelope (count).
	// Default: 100.
	MaxClientReportsCount int `yaml:"max_client_reports_count"`
	// MaxStatsdSize caps a statsd item (bytes). Default: 1MiB.
	MaxStatsdSize ByteSize `yaml:"max_statsd_size"`
	// MaxMetricBucketsSize caps a metric_buckets item (bytes). Default: 1MiB.
	MaxMetricBucketsSize ByteSize `yaml:"max_metric_buckets_size"`
	// MaxCheckInSize caps a check_in item (bytes). Default: 100KiB.
	MaxCheckInSize ByteSize `yaml:"max_check_in_size"`
	// MaxProfileSize caps a profile or profile_chunk item (bytes).
	// Default: 50MiB.
	MaxProfileSize ByteSize `yaml:"max_profile_size"`
	// MaxReplayCompressedSize caps a compressed replay recording (bytes).
	// Default: 10MiB.
	MaxReplayCompressedSize ByteSize `yaml:"max_replay_compressed_size"`
	// MaxReplayUncompressedSize caps a replay recording after
	// decompression, counted without holding it (bytes). Default: 100MiB.
	MaxReplayUncompressedSize ByteSize `yaml:"max_replay_uncompressed_size"`
	// MaxReplayMessageSize caps a combined replay message: its
	// replay_event, replay_recording and replay_video plus 2000 bytes of
	// metadata; one that reaches it is too large (bytes). Default: 15MiB.
	MaxReplayMessageSize ByteSize `yaml:"max_replay_message_size"`
	// MaxLogSize caps one log inside a container item (bytes). Default: 2MiB.
	MaxLogSize ByteSize `yaml:"max_log_size"`
	// MaxSpanSize caps one span inside a container item (bytes).
	// Default: 10MiB.
	MaxSpanSize ByteSize `yaml:"max_span_size"`
	// MaxTraceMetricSize caps one trace metric inside a container item
	// (bytes). Default: 1MiB.
	MaxTraceMetricSize ByteSize `yaml:"max_trace_metric_size"`
	// MaxContainerSize caps one container item (bytes). Default: 12MiB.
	MaxContainerSize ByteSize `yaml:"max_container_size"`
	// MaxAPIPayloadSize caps a forwarded non-ingest API request (bytes).
	// Default: 20MiB.
	MaxAPIPayloadSize ByteSize `yaml:"max_api_payload_size"`
	// MaxAPIFileUploadSize caps a forwarded file upload (bytes).
	// Default: 40MiB.
	MaxAPIFileUploadSize ByteSize `yaml:"max_api_file_upload_size"`
	// MaxAPIChunkUploadSize caps a forwarded chunk upload (bytes).
	// Default: 100MiB.
	MaxAPIChunkUploadSize ByteSize `yaml:"max_api_chunk_upload_size"`
}

// Buffer is the durable write-ahead buffer.
type Buffer struct {
	// Dir is the buffer directory. Default: ./baton-data.
	Dir string `yaml:"dir"`
	// MaxBytes is the disk budget; once pending data passes it less
	// ReserveBytes, routes apply WhenFull (bytes). Default: 10GiB.
	MaxBytes ByteSize `yaml:"max_bytes"`
	// ReserveBytes is headroom kept below MaxBytes for what the budget
	// does not count (WAL, memtables, deleted data not yet compacted), and
	// the free disk space Baton always leaves, whatever MaxBytes says; more
	// than 0 and less than MaxBytes (bytes). Default: 512MiB.
	ReserveBytes ByteSize `yaml:"reserve_bytes"`
	// MaxAge drops records older than this with outcome "expired"; 0 keeps
	// them forever. Default: 72h.
	MaxAge time.Duration `yaml:"max_age"`
	// Durability is when a request is acknowledged. Default: strict.
	Durability Durability `yaml:"durability"`
	// SyncInterval is the fsync period under relaxed durability.
	// Default: 100ms.
	SyncInterval time.Duration `yaml:"sync_interval"`
	// Partitions is the number of buffer streams per class (count, 1..256).
	// Default: 1.
	Partitions int `yaml:"partitions"`
	// MemtableSize is Pebble's memtable size (bytes, MinMemtableSize up to
	// under MaxMemtableSize, and under MaxBytes). Default: 48MiB.
	MemtableSize ByteSize `yaml:"memtable_size"`
}

// Durability is when Baton acknowledges a request.
type Durability string

// Durabilities.
const (
	// DurabilityStrict acknowledges after the data is fsynced.
	DurabilityStrict Durability = "strict"
	// DurabilityRelaxed acknowledges before fsync and syncs every
	// Buffer.SyncInterval: a power loss loses up to that much data.
	DurabilityRelaxed Durability = "relaxed"
)

// Upstream is a group of upstream relays that share load, hashed by project.
type Upstream struct {
	// URLs are the base URLs of the relays, absolute http or https.
	// Required.
	URLs []string `yaml:"urls"`
	// Compression is the request Content-Encoding: gzip, zstd or none.
	// Default: gzip.
	Compression Compression `yaml:"compression"`
	// Timeout bounds one request, connect to last response byte.
	// Default: 30s.
	Timeout time.Duration `yaml:"timeout"`
	// ConnectTimeout bounds establishing a connection. Default: 3s.
	ConnectTimeout time.Duration `yaml:"connect_timeout"`
	// MaxConns caps connections per URL (count). Default: 100.
	MaxConns int `yaml:"max_conns"`
	// MaxFailures is how many consecutive failures eject a URL until a probe
	// succeeds (count; 0 never ejects). Default: 5.
	MaxFailures int `yaml:"max_failures"`
	// ProbeInterval is how often an ejected URL is probed. Default: 10s.
	ProbeInterval time.Duration `yaml:"probe_interval"`
	// MaxRetryInterval caps the backoff between retries. Default: 60s.
	MaxRetryInterval time.Duration `yaml:"max_retry_interval"`
	// OutageGracePeriod is how long a URL's requests may fail at the
	// network level before Baton pauses it and probes its health check
	// (Relay's http.outage_grace_period). Default: 10s.
	OutageGracePeriod time.Duration `yaml:"outage_grace_period"`
	// Concurrency caps the requests one forwarding batch (one class
	// stream) has in flight to the group (count). Sessions and check-ins
	// of one project still go one at a time, in order. At most MaxConns
	// apply. Default: 8.
	Concurrency int `yaml:"concurrency"`
}

// Compression is a compression codec name.
type Compression string

// Codecs. Upstreams accept gzip, zstd and none; Kafka accepts all five.
const (
	CompressionNone   Compression = "none"
	CompressionGzip   Compression = "gzip"
	CompressionZstd   Compression = "zstd"
	CompressionSnappy Compression = "snappy"
	CompressionLZ4    Compression = "lz4"
)

// Kafka is the embedded broker and the named clusters.
type Kafka struct {
	// Embedded is the in-process broker (cluster name "embedded").
	Embedded EmbeddedKafka `yaml:"embedded"`
	// Clusters are the external clusters by name; "embedded" is reserved.
	// Default: none. Unset fields come from Defaults.KafkaCluster.
	Clusters map[string]KafkaCluster `yaml:"clusters"`
}

// EmbeddedKafka is the in-process kfake broker, started only when a route
// uses cluster "embedded". It keeps data in memory, emptied on every
// restart: for development and tests.
type EmbeddedKafka struct {
	// Listen is the broker's host:port. Default: 127.0.0.1:9092.
	Listen string `yaml:"listen"`
	// Advertised is the host:port the broker tells clients to connect to
	// (Kafka's advertised.listeners): set it when clients reach Baton by
	// another name or port, as from outside a container. "" advertises
	// Listen, with 127.0.0.1 for a wildcard host. Default: "".
	Advertised string `yaml:"advertised"`
	// RetentionBytes is what each topic partition keeps; older batches
	// are removed (bytes). Default: 64MiB.
	RetentionBytes ByteSize `yaml:"retention_bytes"`
}

// EmbeddedCluster is the reserved name of the embedded broker.
const EmbeddedCluster = "embedded"

// KafkaCluster is an external Kafka cluster.
type KafkaCluster struct {
	// Brokers are seed brokers, host:port. Required.
	Brokers []string `yaml:"brokers"`
	// ClientID is the Kafka client id. Default: baton.
	ClientID string `yaml:"client_id"`
	// Compression is the batch codec: snappy, lz4, zstd, gzip or none.
	// Default: snappy.
	Compression Compression `yaml:"compression"`
	// MaxMessageBytes caps one produced record (bytes, MinKafkaMessageBytes
	// to MaxKafkaMessageBytes). Default: 1MiB.
	MaxMessageBytes ByteSize `yaml:"max_message_bytes"`
	// DeadLetterTopic receives records over MaxMessageBytes; empty drops
	// them with an outcome. Default: "".
	DeadLetterTopic string `yaml:"dead_letter_topic"`
	// SASL authenticates the client; off when Mechanism is empty.
	SASL SASL `yaml:"sasl"`
	// TLS encrypts connections; off unless Enabled.
	TLS TLS `yaml:"tls"`
	// CreateTopics creates a routed topic the cluster does not have.
	CreateTopics CreateTopics `yaml:"create_topics"`
}

// CreateTopics is what Baton does about a routed topic the cluster does not
// have, found when it first produces to it.
type CreateTopics struct {
	// Enabled creates it; off, its records wait in the buffer and the
	// delivery error names the topic and this setting. Default: false.
	Enabled bool `yaml:"enabled"`
	// Partitions of a created topic; -1 is the broker's num.partitions.
	// Default: -1.
	Partitions int `yaml:"partitions"`
	// Replication is the replication factor of a created topic; -1 is the
	// broker's default.replication.factor. Default: -1.
	Replication int `yaml:"replication"`
}

// SASL is Kafka SASL authentication.
type SASL struct {
	// Mechanism is plain, scram-sha-256 or scram-sha-512; empty is off.
	// Default: "".
	Mechanism SASLMechanism `yaml:"mechanism"`
	// Username; required with a mechanism. Default: "".
	Username string `yaml:"username"`
	// Password; required with a mechanism. Use ${ENV}. Default: "".
	Password Secret `yaml:"password"`
}

// SASLMechanism is a SASL mechanism name.
type SASLMechanism string

// SASL mechanisms.
const (
	SASLPlain       SASLMechanism = "plain"
	SASLScramSHA256 SASLMechanism = "scram-sha-256"
	SASLScramSHA512 SASLMechanism = "scram-sha-512"
)

// TLS is client TLS towards Kafka.
type TLS struct {
	// Enabled turns TLS on. Default: false.
	Enabled bool `yaml:"enabled"`
	// CAFile is a PEM bundle of roots; empty uses the system roots.
	// Default: "".
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are a PEM client certificate and key for mutual
	// TLS; both or neither. Default: "".
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ServerName overrides the name verified in the broker certificate.
	// Default: "" (the broker host).
	ServerName string `yaml:"server_name"`
	// InsecureSkipVerify disables certificate verification. Default: false.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
}

// Route is where one class goes: one destination, and what happens when the
// buffer is full.
type Route struct {
	// Dest is the destination, a tagged choice written as the route keys of
	// one kind (see Destination): `upstream: NAME` (UpstreamDest) or
	// `kafka: NAME, topic: T` (KafkaDest). Required.
	Dest Destination `yaml:",inline"`
	// WhenFull is what happens to the class's data when the buffer is
	// full. Default: reject.
	WhenFull WhenFull `yaml:"when_full"`
	// Steer is what picks the next relay of a pool (rendezvous hashing)
	// and the Kafka record key: SteerProject or SteerTrace. Default:
	// project.
	Steer Steer `yaml:"steer"`
}

// Steer is what a route's envelopes are spread over upstream nodes and
// Kafka partitions by.
type Steer string

// Steering choices.
const (
	// SteerProject picks the node by the DSN public key and keys Kafka
	// records by project id.
	SteerProject Steer = "project"
	// SteerTrace picks the node and keys Kafka records by the trace id of
	// the envelope header's dynamic sampling context, so every item of a
	// trace reaches the same next relay or partition from any number of
	// relays; envelopes without one are steered by project. Metric
	// buckets steered by metrics.flush_partitions keep their shard.
	SteerTrace Steer = "trace"
)

// WhenFull is a route's policy when the buffer is over its budget.
type WhenFull string

// Full-buffer policies.
const (
	// WhenFullReject refuses requests that carry data of the class with
	// 503 and Retry-After until there is room.
	WhenFullReject WhenFull = "reject"
	// WhenFullDropOldest deletes the class's oldest records to make room,
	// with outcome buffer_full.
	WhenFullDropOldest WhenFull = "drop_oldest"
)

// Project is a statically configured project.
type Project struct {
	// PublicKeys are the DSN public keys, 32 lowercase hex characters.
	// Required (at least one).
	PublicKeys []string `yaml:"public_keys"`
	// Disabled rejects everything for the project with 403. Default: false.
	Disabled bool `yaml:"disabled"`
	// AllowedDomains are the origins browsers may send from; "*" is any.
	// Default: ["*"].
	AllowedDomains []string `yaml:"allowed_domains"`
	// RateLimit limits the project's events.
	RateLimit RateLimit `yaml:"rate_limit"`
	// Grouping is the project's grouping part (docs/grouping.md "At the
	// edge"). Default: none (events are not hashed).
	Grouping ProjectGrouping `yaml:"grouping"`
	// ClientOptions is the project's client options document, the SDK
	// settings it pushes into its clients (docs/client-options.md): the
	// clientOptions part of a managed project, in YAML. Default: none
	// (GET /api/{project_id}/client-options/ answers 404).
	ClientOptions *ProjectClientOptions `yaml:"client_options"`
	// TailSampling tail-samples the project's traces under rules of its
	// own (config/tailsampling.go). Default: none.
	TailSampling *ProjectTailSampling `yaml:"tail_sampling"`
	// Relay is the project's full Relay config, projects/<id>.json of a
	// Relay config directory verbatim (nil otherwise): the relay decodes
	// its filters, quotas, sampling and features like an upstream's
	// answer. Not a YAML setting.
	Relay json.RawMessage `yaml:"-"`
}

// ProjectGrouping is a static project's grouping part.
type ProjectGrouping struct {
	// DiscardedHashes are issue hashes (Sentry's primary hash) whose events
	// are dropped at the edge, outcome filtered. When set, even to [],
	// the project's error events are hashed at ingest. Default: unset.
	DiscardedHashes []string `yaml:"discarded_hashes"`
	// Storm is storm control: per issue, keep the first Limit events of
	// each Window, drop the rest (outcome filtered, reason
	// grouping_storm), and count every event in the per-issue metric
	// c:custom/baton.grouping.events@none. Setting it hashes the
	// project's error events at ingest.
	Storm ProjectStorm `yaml:"storm"`
	// Count counts every event not discarded in the per-issue metric
	// c:custom/baton.grouping.events@none and drops none (metrics
	// extraction without storm control, which always counts). Setting it
	// hashes the project's error events at ingest. Default: false.
	Count bool `yaml:"count"`
	// CustomRules says the project has stack-trace or fingerprint rules of
	// its own in Sentry, which Baton does not apply: its hashes travel
	// with grouping_final false. Setting it hashes the project's error
	// events at ingest. Default: false.
	CustomRules bool `yaml:"custom_rules"`
}

// ProjectStorm is a static project's storm control.
type ProjectStorm struct {
	// Limit is the events of one issue kept per window; 0 is off.
	// Default: 0.
	Limit int `yaml:"limit"`
	// Window is the window. Default: 1m.
	Window time.Duration `yaml:"window"`
}

// RateLimit is a project's local rate limit.
type RateLimit struct {
	// EventsPerSecond is the sustained event rate (events/s; 0 is
	// unlimited). Default: 0.
	EventsPerSecond float64 `yaml:"events_per_second"`
}

// Managed configures project-config fetching in managed mode.
type Managed struct {
	// Upstream names the entry of Config.Upstreams that serves project
	// configs. Required in managed mode. Default: "".
	Upstream string `yaml:"upstream"`
	// Credentials is the relay credentials file; empty means
	// <buffer.dir>/credentials.json (see Config.CredentialsFile).
	// Default: "".
	Credentials string `yaml:"credentials"`
	// SecretKey and PublicKey, when set, are the relay's key pair
	// (base64url, as credentials.json holds them) and the credentials
	// file is not read: for secrets handed in by the environment
	// (${RELAY_SECRET_KEY}; a Relay config directory reads Relay's
	// RELAY_SECRET_KEY, RELAY_PUBLIC_KEY and RELAY_ID itself). Both or
	// neither. Default: "".
	SecretKey string `yaml:"secret_key"`
	PublicKey string `yaml:"public_key"`
	// RelayID goes with SecretKey and PublicKey; empty derives a stable
	// id from the public key. Default: "".
	RelayID string `yaml:"relay_id"`
	// Cache is the project-config cache.
	Cache ProjectCache `yaml:"cache"`
	// Fetch is how cache misses are fetched.
	Fetch ProjectFetch `yaml:"fetch"`
	// Parts asks an upstream Baton for only these parts of each project
	// config (keys, client, quotas, filters, sampling, metrics, features,
	// grouping, clientOptions, tailSampling, other); a Sentry upstream
	// ignores it. With redis.project_configs, only these parts (and keys)
	// are read from Redis. Empty asks for everything.
	// Default: none.
	Parts []string `yaml:"parts"`
	// ClientOptions are client options documents (docs/client-options.md)
	// this Baton adds to the project configs it fetches, by project id:
	// each replaces the project's clientOptions part, whatever the upstream
	// sent (Sentry sends none), in what this Baton serves to SDKs and to
	// downstream relays. Reloaded on SIGHUP. Default: none.
	ClientOptions map[string]*ProjectClientOptions `yaml:"client_options"`
	// MaxWaitingBytesPerKey caps the bytes of envelopes one public key
	// may have waiting for its config; past it the key gets 503 until
	// they are released. Default: 64MiB.
	MaxWaitingBytesPerKey ByteSize `yaml:"max_waiting_bytes_per_key"`
	// MaxPendingAge drops envelopes still waiting for their project's
	// config after this long (outcome invalid/project_state). It is the
	// backstop for keys whose fetches keep failing (upstream unreachable);
	// a key the upstream keeps answering pending is given up sooner, after
	// Fetch.Timeout. Default: 24h.
	MaxPendingAge time.Duration `yaml:"max_pending_age"`
	// AuthInterval re-registers with the upstream this often, as Relay's
	// http.auth_interval does; 0 registers once. Default: 600s.
	AuthInterval time.Duration `yaml:"auth_interval"`
}

// Auth decides which downstream relays may register with Baton, fetch
// project configs from it, and sign what they send.
type Auth struct {
	// StaticRelays are the relays Baton trusts without asking its upstream
	// (managed mode also admits the relays the upstream knows), by relay
	// id. Default: none.
	StaticRelays map[string]StaticRelay `yaml:"static_relays"`
	// SignatureMaxAge rejects relay signatures older than this.
	// Default: 300s.
	SignatureMaxAge time.Duration `yaml:"signature_max_age"`
	// SignatureMaxFuture rejects relay signatures from further ahead than
	// this (clock skew). Default: 60s.
	SignatureMaxFuture time.Duration `yaml:"signature_max_future"`
}

// Metrics configures what Baton does with statsd and metric_buckets items.
type Metrics struct {
	// Aggregate merges metric items into buckets before forwarding them;
	// false forwards them as received. Default: true.
	Aggregate bool `yaml:"aggregate"`
	// BucketInterval is the width of a bucket's time window. Default: 10s.
	BucketInterval time.Duration `yaml:"bucket_interval"`
	// InitialDelay is how long after its window closes a bucket waits for
	// late data before it is flushed. Default: 30s.
	InitialDelay time.Duration `yaml:"initial_delay"`
	// MaxBytes is the memory budget of buckets held, counting those
	// flushed early until written; over it the oldest are flushed early
	// and the metrics readers wait for the writes. Default: 64MiB.
	MaxBytes ByteSize `yaml:"max_bytes"`
	// MaxProjectBytes is one project key's share of MaxBytes; over it that
	// project's oldest buckets are flushed early. Default: 16MiB.
	MaxProjectBytes ByteSize `yaml:"max_project_bytes"`
	// MaxPast and MaxFuture bound bucket timestamps against the receive
	// time. Defaults: 120h and 60s.
	MaxPast   time.Duration `yaml:"max_past"`
	MaxFuture time.Duration `yaml:"max_future"`
	// FlushPartitions, when > 0, splits flushed buckets by a stable hash of
	// their metric key into this many partitions, each sent with
	// X-Sentry-Relay-Shard (upstream) or as the record key (Kafka).
	// Default: 0 (off).
	FlushPartitions int `yaml:"flush_partitions"`
	// CardinalityLimit caps the distinct metric keys of a project and
	// namespace per CardinalityWindow; 0 is unlimited. Project configs may
	// set their own. Default: 0.
	CardinalityLimit int `yaml:"cardinality_limit"`
	// CardinalityWindow is the limiter's window. Default: 1h.
	CardinalityWindow time.Duration `yaml:"cardinality_window"`
	// CardinalityScopes bounds the (project, namespace) pairs tracked.
	// Default: 10000.
	CardinalityScopes int `yaml:"cardinality_scopes"`
}

// Outcomes configures how Baton reports the data it drops to Sentry, as
// Relay's outcomes section does.
type Outcomes struct {
	// EmitOutcomes is "as_client_reports" (filtered, sampled and
	// rate-limited drops go upstream as merged client_report items, per
	// project key), "true" (every drop as Relay's raw outcomes, and SDK
	// client reports turned into outcomes, sent where the client_report
	// class is routed: POST /api/0/relays/outcomes/ to an upstream, or the
	// Topic and BillingTopic of a Kafka cluster) or "false" (counted in
	// Baton's stats only). Default: as_client_reports.
	EmitOutcomes string `yaml:"emit_outcomes"`
	// BatchInterval is how often merged drops are written as client
	// reports or outcomes. Default: 500ms.
	BatchInterval time.Duration `yaml:"batch_interval"`
	// BatchSize is the most lines (reason, category) one client report
	// carries, or outcomes one batch; more make several, and with raw
	// outcomes that many pending start a batch before BatchInterval.
	// Default: 1000.
	BatchSize int `yaml:"batch_size"`
	// Source is put in the source field of raw outcomes. Default: "".
	Source string `yaml:"source"`
	// Topic is the Kafka topic of raw outcomes when client_report is
	// routed to Kafka. Default: outcomes (Relay's).
	Topic string `yaml:"topic"`
	// BillingTopic is the Kafka topic of accepted and rate-limited
	// outcomes (Relay's billing outcomes). Default: outcomes-billing.
	BillingTopic string `yaml:"billing_topic"`
}

// Normalization configures what Baton does to events before it forwards
// them, as Relay's normalization section.
type Normalization struct {
	// Level is "default": in static and managed mode, event, transaction
	// and security items are normalized as a first Relay does (security
	// reports become security events, NEL reports log items) and scrubbed
	// with their project's PII config; proxy mode forwards every payload
	// as received. "disabled" forwards payloads as received in every mode
	// (no PII scrubbing either). Default: default.
	Level NormalizationLevel `yaml:"level"`
	// AndroidModels is a CSV file of Android device models and their
	// marketing names in the form of Relay's android_models.csv (Google
	// Play's supported devices list: a header naming "Model" and
	// "Marketing Name"); a device context of a listed model gets the
	// marketing name as its name, as Relay does. Read at startup; the
	// table is held in memory (about 100 bytes a device). Default: ""
	// (device names stay as sent).
	AndroidModels string `yaml:"android_models"`
}

// NormalizationLevel is normalization.level.
type NormalizationLevel string

// Normalization levels.
const (
	NormalizationDefault  NormalizationLevel = "default"
	NormalizationDisabled NormalizationLevel = "disabled"
)

// StaticRelay is one trusted downstream relay.
type StaticRelay struct {
	// PublicKey is the relay's Ed25519 public key, base64url without
	// padding (`baton credentials show`). Required.
	PublicKey string `yaml:"public_key"`
	// Internal relays get full configs. Default: false.
	Internal bool `yaml:"internal"`
}

// ProjectCache is the project-config cache.
type ProjectCache struct {
	// MaxProjects caps cached project keys (count). Default: 10000.
	MaxProjects int `yaml:"max_projects"`
	// Expiry is when a config is refreshed. Default: 300s.
	Expiry time.Duration `yaml:"expiry"`
	// Grace keeps using an expired config while it refreshes. Default: 120s.
	Grace time.Duration `yaml:"grace"`
	// MissExpiry caches an unknown or failed key this long. Default: 60s.
	MissExpiry time.Duration `yaml:"miss_expiry"`
	// RelayExpiry is how long a downstream relay's public key, looked up
	// at the upstream, is used before it is asked again (Relay's
	// cache.relay_expiry). Default: 3600s.
	RelayExpiry time.Duration `yaml:"relay_expiry"`
}

// ProjectFetch is how cache misses are fetched from the upstream.
type ProjectFetch struct {
	// BatchSize caps keys per request (count). Default: 500.
	BatchSize int `yaml:"batch_size"`
	// BatchInterval is how long misses are collected into a batch.
	// Default: 100ms.
	BatchInterval time.Duration `yaml:"batch_interval"`
	// Concurrency caps requests in flight (count). Default: 5.
	Concurrency int `yaml:"concurrency"`
	// Timeout bounds one batch request, retries included (Relay's
	// limits.query_timeout). It is also the give-up time of a key the
	// upstream keeps answering pending: its waiting envelopes are dropped
	// (invalid/project_state) once it has been pending this long, while
	// the key is still asked for with backoff. Default: 30s.
	Timeout time.Duration `yaml:"timeout"`
}

// Telemetry configures Baton's own logs, metrics and traces.
type Telemetry struct {
	// LogLevel is debug, info, warn or error. Default: info.
	LogLevel LogLevel `yaml:"log_level"`
	// LogFormat is text or json. Default: text.
	LogFormat LogFormat `yaml:"log_format"`
	// MetricsListen is the host:port of the Prometheus endpoint; empty is
	// off. Default: "".
	MetricsListen string `yaml:"metrics_listen"`
	// OTLPEndpoint is the URL Baton pushes its metrics to, OTLP over HTTP
	// with protobuf (e.g. http://collector:4318/v1/metrics); empty leaves
	// it to OTEL_EXPORTER_OTLP_METRICS_ENDPOINT or OTEL_EXPORTER_OTLP_ENDPOINT,
	// and push is off when none is set. Default: "".
	OTLPEndpoint string `yaml:"otlp_endpoint"`
	// OTLPHeaders are HTTP headers sent with every push (e.g. an API
	// key), over those of OTEL_EXPORTER_OTLP_HEADERS. Default: none.
	OTLPHeaders map[string]string `yaml:"otlp_headers"`
	// OTLPInterval is how often metrics are pushed; 0 is
	// OTEL_METRIC_EXPORT_INTERVAL, else 60s. Default: 0.
	OTLPInterval time.Duration `yaml:"otlp_interval"`
	// TraceSampleRatio is the share of requests without a sampled
	// traceparent that get an ingest span, when spans are pushed (an OTLP
	// endpoint, as for metrics, with /v1/traces for /v1/metrics). A
	// request whose traceparent says sampled is always traced, one that
	// says not sampled never. 0 traces only what an upstream sampled.
	// Default: 0.01.
	TraceSampleRatio float64 `yaml:"trace_sample_ratio"`
	// PprofListen is the host:port of Go's net/http/pprof endpoints
	// (/debug/pprof/), on a listener of their own; empty is off. Keep it
	// on loopback: profiles show the process's internals. Default: "".
	PprofListen string `yaml:"pprof_listen"`
}

// Runtime tunes the Go runtime.
type Runtime struct {
	// MemoryLimit is the Go runtime's soft memory limit (bytes): the
	// garbage collector works harder as Go's memory nears it. 0 derives it
	// from the cgroup's memory limit (a container's --memory), if there is
	// one: 90% of it, less what Pebble keeps outside the Go heap in a cgo
	// build; none if that leaves less than 64MiB. The GOMEMLIMIT
	// environment variable, when set, wins.
	// Default: 0.
	MemoryLimit ByteSize `yaml:"memory_limit"`
}

// LogLevel is a log level name.
type LogLevel string

// Log levels.
const (
	LogDebug LogLevel = "debug"
	LogInfo  LogLevel = "info"
	LogWarn  LogLevel = "warn"
	LogError LogLevel = "error"
)

// Slog returns the slog level; unknown names map to info.
func (l LogLevel) Slog() slog.Level {
	switch l {
	case LogDebug:
		return slog.LevelDebug
	case LogWarn:
		return slog.LevelWarn
	case LogError:
		return slog.LevelError
	}
	return slog.LevelInfo
}

// LogFormat is a log encoding.
type LogFormat string

// Log formats.
const (
	LogText LogFormat = "text"
	LogJSON LogFormat = "json"
)

// Defaults are the per-entry defaults of Config's maps: each entry starts as
// a copy of its template and the entry's own keys are merged over it.
type Defaults struct {
	// Upstream is the template for Config.Upstreams entries.
	Upstream Upstream `yaml:"upstream"`
	// KafkaCluster is the template for Kafka.Clusters entries.
	KafkaCluster KafkaCluster `yaml:"kafka_cluster"`
	// Route is the template for Config.Routes entries. Load applies it key
	// by key, so a template key of a kind it does not choose (the default
	// topic) takes effect in entries but not in this value's Dest.
	Route Route `yaml:"route"`
	// Project is the template for Config.Projects entries.
	Project Project `yaml:"project"`
	// Lane is the template for Lanes.Topics entries.
	Lane Lane `yaml:"lane"`
}

// Secret is a string that formats as "[redacted]" so it stays out of logs and
// `baton config` output. Convert to string to use it.
type Secret string

// String returns "[redacted]" for a non-empty secret.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return "[redacted]"
}

// MarshalText redacts like String.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// CredentialsFile returns Managed.Credentials, or credentials.json in the
// buffer directory when it is empty.
func (c Config) CredentialsFile() string {
	if c.Managed.Credentials != "" {
		return c.Managed.Credentials
	}
	return filepath.Join(c.Buffer.Dir, "credentials.json")
}

// ForwardUpstream returns the upstream that unknown /api/ requests are
// proxied to: none unless Server.ForwardUnknown; else Managed.Upstream when
// set, else the upstream of the "default" route, else the only upstream.
func (c Config) ForwardUpstream() (string, bool) {
	switch {
	case !c.Server.ForwardUnknown:
		return "", false
	case c.Managed.Upstream != "":
		return c.Managed.Upstream, true
	case isUpstream(c.Routes[DefaultRoute].Dest):
		return c.Routes[DefaultRoute].Dest.(UpstreamDest).Upstream, true
	case len(c.Upstreams) == 1:
		for name := range c.Upstreams {
			return name, true
		}
	}
	return "", false
}

func isUpstream(d Destination) bool {
	_, ok := d.(UpstreamDest)
	return ok
}
