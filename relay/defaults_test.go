package relay

import (
	"testing"
	"time"

	"github.com/baton-relay/baton/buffer"
	"github.com/baton-relay/baton/config"
	"github.com/baton-relay/baton/envelope"
	"github.com/baton-relay/baton/relay/aggregate"
	"github.com/baton-relay/baton/relay/auth"
	"github.com/baton-relay/baton/relay/fleet"
	"github.com/baton-relay/baton/relay/forward"
	"github.com/baton-relay/baton/relay/project"
	"github.com/baton-relay/baton/routing"
)

// TestDefaultsAgree: a default lives in config/default.yaml and, where a
// package has the same knob, in that package's exported constant. They must
// be equal, so a package used with its zero Options behaves as Baton does by
// default and neither can drift alone.
func TestDefaultsAgree(t *testing.T) {
	c := config.Default()
	up, kc, m := c.Defaults.Upstream, c.Defaults.KafkaCluster, c.Managed
	for _, d := range []struct {
		setting      string
		config, pkg  any
		pkgConstName string
	}{
		{"buffer.max_bytes", int64(c.Buffer.MaxBytes), int64(buffer.DefaultMaxBytes), "buffer.DefaultMaxBytes"},
		{"buffer.reserve_bytes", int64(c.Buffer.ReserveBytes), min(int64(buffer.DefaultMaxBytes)/16, buffer.DefaultReserveBytes), "buffer.DefaultReserveBytes"},
		{"buffer.sync_interval", c.Buffer.SyncInterval, buffer.DefaultSyncInterval, "buffer.DefaultSyncInterval"},
		{"buffer.memtable_size", int64(c.Buffer.MemtableSize), int64(buffer.DefaultMemTableSize), "buffer.DefaultMemTableSize"},
		{"buffer.durability", c.Buffer.Durability == config.DurabilityStrict, buffer.Durability(0) == buffer.Strict, "buffer.Strict (the zero Durability)"},

		{"defaults.upstream.compression", string(up.Compression), routing.DefaultUpstreamCompression, "routing.DefaultUpstreamCompression"},
		{"defaults.upstream.timeout", up.Timeout, routing.DefaultUpstreamTimeout, "routing.DefaultUpstreamTimeout"},
		{"defaults.upstream.max_conns", up.MaxConns, routing.DefaultUpstreamMaxConns, "routing.DefaultUpstreamMaxConns"},
		{"defaults.upstream.max_failures", up.MaxFailures, routing.DefaultUpstreamMaxFailures, "routing.DefaultUpstreamMaxFailures"},
		{"defaults.upstream.probe_interval", up.ProbeInterval, routing.DefaultUpstreamProbeInterval, "routing.DefaultUpstreamProbeInterval"},
		{"defaults.upstream.max_retry_interval", up.MaxRetryInterval, time.Duration(forward.DefaultMaxBackoff), "forward.DefaultMaxBackoff"},
		{"defaults.upstream.max_retry_interval", up.MaxRetryInterval, routing.DefaultUpstreamMaxRetryInterval, "routing.DefaultUpstreamMaxRetryInterval"},
		{"defaults.upstream.outage_grace_period", up.OutageGracePeriod, routing.DefaultUpstreamOutageGracePeriod, "routing.DefaultUpstreamOutageGracePeriod"},
		{"defaults.upstream.concurrency", up.Concurrency, routing.DefaultUpstreamConcurrency, "routing.DefaultUpstreamConcurrency"},
		{"defaults.kafka_cluster.client_id", kc.ClientID, routing.DefaultKafkaClientID, "routing.DefaultKafkaClientID"},
		{"defaults.kafka_cluster.compression", string(kc.Compression), routing.DefaultKafkaCompression, "routing.DefaultKafkaCompression"},
		{"defaults.kafka_cluster.max_message_bytes", int(kc.MaxMessageBytes), routing.DefaultKafkaMaxMessageBytes, "routing.DefaultKafkaMaxMessageBytes"},
		{"the least kafka max_message_bytes", int(config.MinKafkaMessageBytes), routing.MinKafkaMessageBytes, "routing.MinKafkaMessageBytes"},

		{"redis.project_configs.prefix", c.Redis.ProjectConfigs.Prefix, fleet.DefaultConfigsPrefix, "fleet.DefaultConfigsPrefix"},

		{"managed.cache.max_projects", m.Cache.MaxProjects, project.DefaultMaxProjects, "project.DefaultMaxProjects"},
		{"managed.cache.expiry", m.Cache.Expiry, project.DefaultExpiry, "project.DefaultExpiry"},
		{"managed.cache.grace", m.Cache.Grace, project.DefaultGrace, "project.DefaultGrace"},
		{"managed.cache.miss_expiry", m.Cache.MissExpiry, project.DefaultMissExpiry, "project.DefaultMissExpiry"},
		{"managed.cache.relay_expiry", m.Cache.RelayExpiry, auth.DefaultRelayExpiry, "auth.DefaultRelayExpiry"},
		{"managed.fetch.batch_size", m.Fetch.BatchSize, project.DefaultBatchSize, "project.DefaultBatchSize"},
		{"managed.fetch.batch_interval", m.Fetch.BatchInterval, project.DefaultBatchInterval, "project.DefaultBatchInterval"},
		{"managed.fetch.concurrency", m.Fetch.Concurrency, project.DefaultConcurrency, "project.DefaultConcurrency"},
		{"managed.fetch.timeout", m.Fetch.Timeout, project.DefaultTimeout, "project.DefaultTimeout"},

		{"metrics.bucket_interval", c.Metrics.BucketInterval, aggregate.DefaultBucketInterval, "aggregate.DefaultBucketInterval"},
		{"metrics.initial_delay", c.Metrics.InitialDelay, aggregate.DefaultInitialDelay, "aggregate.DefaultInitialDelay"},
		{"metrics.max_bytes", int64(c.Metrics.MaxBytes), int64(aggregate.DefaultMaxBytes), "aggregate.DefaultMaxBytes"},
		{"metrics.max_past", c.Metrics.MaxPast, aggregate.DefaultMaxSecsInPast, "aggregate.DefaultMaxSecsInPast"},
		{"metrics.max_future", c.Metrics.MaxFuture, aggregate.DefaultMaxSecsInFuture, "aggregate.DefaultMaxSecsInFuture"},
		{"metrics.cardinality_window", c.Metrics.CardinalityWindow, aggregate.DefaultLimitWindow, "aggregate.DefaultLimitWindow"},
		{"metrics.cardinality_scopes", c.Metrics.CardinalityScopes, aggregate.DefaultMaxScopes, "aggregate.DefaultMaxScopes"},

		{"auth.signature_max_age", c.Auth.SignatureMaxAge, auth.DefaultSignatureMaxAge, "auth.DefaultSignatureMaxAge"},
		{"auth.signature_max_future", c.Auth.SignatureMaxFuture, auth.DefaultSignatureMaxFuture, "auth.DefaultSignatureMaxFuture"},
		{"server.shutdown_timeout", c.Server.ShutdownTimeout, DefaultDrainTimeout, "relay.DefaultDrainTimeout"},
	} {
		if d.config != d.pkg {
			t.Errorf("%s defaults to %v in config/default.yaml but %s is %v: make them equal",
				d.setting, d.config, d.pkgConstName, d.pkg)
		}
	}
	// Every limit of the limits section defaults to the envelope parser's
	// default (Relay's): mapping the config's defaults changes nothing.
	if got, want := limitsFrom(c), envelope.DefaultLimits(); got != want {
		t.Errorf("limits.* defaults differ from envelope.DefaultLimits():\nconfig   %+v\nenvelope %+v", got, want)
	}
}
