package relay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"go.opentelemetry.io/otel/metric"

	"github.com/baton-relay/baton/config"
	"github.com/baton-relay/baton/relay/fleet"
	"github.com/baton-relay/baton/relay/project"
	"github.com/baton-relay/baton/relay/status"
)

// Project configs in Redis (redis.project_configs; DESIGN.md "Project
// configs in Redis"): the managed cache asks Redis first, one pipelined
// read of every part of a batch's keys, and the upstream for the keys
// Redis has no keys part of; a clientOptions part Redis holds for such a
// key is laid over the upstream's config (project.LayClientOptions). The update channel invalidates cached
// entries; while it is lost, configs from Redis are refreshed on use after
// fallback_refresh.

// redisSource names the configs read from Redis in the cache
// (project.Response.Sources).
const redisSource = "redis"

// openRedisConfigs opens the project config source of redis.project_configs
// reading parts, or returns nil when it is off.
func openRedisConfigs(c config.Redis, parts project.PartSet, log *slog.Logger) (*fleet.Configs, error) {
	if !c.Enabled() || !c.ProjectConfigs.Enabled {
		return nil, nil
	}
	rc, err := openConfigs(c, parts, log)
	if err != nil {
		return nil, fmt.Errorf("relay: redis.project_configs: %w", err)
	}
	return rc, nil
}

// OpenRedisConfigs opens the project configs kept in the Redis of c (its
// address, credentials, TLS and project_configs.prefix), whether or not
// project_configs is enabled: `baton redis put-config` writes through it.
func OpenRedisConfigs(c config.Redis, log *slog.Logger) (*fleet.Configs, error) {
	return openConfigs(c, project.AllParts, log)
}

// redisParts are the parts a Baton reads from Redis: in managed mode with
// managed.parts, those and keys (without which Redis serves no config),
// as an upstream Baton is asked for only them; otherwise every part.
func redisParts(cfg config.Config) project.PartSet {
	if cfg.Mode != config.ModeManaged || len(cfg.Managed.Parts) == 0 {
		return project.AllParts
	}
	set := project.PartSet(0).With(project.PartKeys)
	for _, name := range cfg.Managed.Parts {
		if p, ok := project.ParsePart(name); ok {
			set = set.With(p)
		}
	}
	return set
}

func openConfigs(c config.Redis, parts project.PartSet, log *slog.Logger) (*fleet.Configs, error) {
	pass, tc, err := redisSecrets(c)
	if err != nil {
		return nil, err
	}
	return fleet.OpenConfigs(fleet.ConfigsOptions{
		Addresses: c.Addresses, Cluster: c.Cluster, Username: c.Username, Password: pass, DB: c.DB, TLS: tc,
		Prefix: c.ProjectConfigs.Prefix, Parts: parts.Names(), MaxPartBytes: project.MaxPartBytes, PoolSize: c.PoolSize,
		DialTimeout: c.DialTimeout, ProbeInterval: c.ProbeInterval, Logger: log,
	})
}

// PutProjectConfig checks value as part of a project config and stores it
// for publicKey, announcing the change on the update channel (`baton redis
// put-config`). rev is the part's revision. An empty value deletes the
// part.
func PutProjectConfig(ctx context.Context, rc *fleet.Configs, publicKey, part, rev string, value []byte) error {
	p, ok := project.ParsePart(part)
	if !ok {
		return fmt.Errorf("relay: unknown part %q (one of %s)", part, strings.Join(project.AllParts.Names(), ", "))
	}
	if publicKey == "" || strings.ContainsAny(publicKey, ": \t\r\n") {
		return fmt.Errorf("relay: public key %q: must be non-empty, without spaces or colons", publicKey)
	}
	var stored []byte
	if len(value) > 0 {
		if err := project.CheckPart(p, value); err != nil {
			return err
		}
		var err error
		if stored, err = project.EncodePart(rev, value); err != nil {
			return err
		}
	}
	return rc.Put(ctx, publicKey, part, stored)
}

// ProjectConfigParts are the part names of a project config, in order.
func ProjectConfigParts() []string { return project.AllParts.Names() }

// redisConfigsFetcher is the cache's Fetcher with Redis ahead of the
// upstream's fetch; without an upstream (static mode), a key Redis has no
// keys part of is unknown.
func (r *Relay) redisConfigsFetcher(upstream project.Fetcher) project.Fetcher {
	if upstream == nil {
		upstream = func(_ context.Context, req *project.Request) (*project.Response, error) {
			resp := &project.Response{Configs: make(map[string]json.RawMessage, len(req.PublicKeys))}
			for _, k := range req.PublicKeys {
				resp.Configs[k] = json.RawMessage("null")
			}
			return resp, nil
		}
	}
	// Read's columns, as parts: those the configs source reads.
	var parts []project.Part
	for _, name := range r.configs.Parts() {
		p, _ := project.ParsePart(name)
		parts = append(parts, p)
	}
	return func(ctx context.Context, req *project.Request) (*project.Response, error) {
		rows, err := r.configs.Read(ctx, req.PublicKeys)
		if err != nil {
			// A key last served from Redis waits for Redis (its config keeps
			// serving through grace): asking the upstream would silently
			// drop what the operator put there. Others go upstream.
			rest := upstreamOnly(req)
			r.log.Warn("redis project configs: read failed; configs from redis keep serving through grace, other keys are asked upstream",
				"keys", len(req.PublicKeys), "upstream", len(rest), "err", err)
			if len(rest) == 0 {
				return nil, err
			}
			return upstream(ctx, subRequest(req, rest))
		}
		resp := &project.Response{Configs: map[string]json.RawMessage{}, Sources: map[string]string{}}
		var rest []string
		var laid map[string][]byte // clientOptions parts of keys without a keys part
		for i, key := range req.PublicKeys {
			var raw [project.NumParts][]byte
			for j, p := range parts {
				raw[p] = rows[i][j]
			}
			state, rev, err := project.AssembleParts(&raw)
			switch {
			case err == nil && i < len(req.Revisions) && req.Revisions[i] != nil && *req.Revisions[i] == rev:
				resp.Unchanged = append(resp.Unchanged, key) // not decoded again
			case errors.Is(err, project.ErrNoKeysPart):
				rest = append(rest, key)
				if co := raw[project.PartClientOptions]; co != nil {
					if laid == nil {
						laid = map[string][]byte{}
					}
					laid[key] = co
				}
			case err != nil:
				// Not answered: asked again with backoff; the last good
				// config keeps serving.
				r.log.Warn("redis project config unusable; its last good config keeps serving", "key", key, "err", err)
			default:
				resp.Configs[key] = state
				resp.Sources[key] = redisSource
			}
		}
		if len(rest) == 0 {
			return resp, nil
		}
		sub := subRequest(req, rest)
		for i, k := range sub.PublicKeys {
			// A config with a part laid over it, or to be laid over it, is
			// asked for whole: "unchanged" would keep the cached layer.
			if rev := sub.Revisions[i]; laid[k] != nil || rev != nil && strings.Contains(*rev, project.LaidRevMarker) {
				sub.Revisions[i] = nil
			}
		}
		up, err := upstream(ctx, sub)
		if err != nil {
			if len(resp.Configs)+len(resp.Unchanged) == 0 {
				return nil, err
			}
			r.log.Warn("project config fetch failed; configs keep serving through grace, new projects wait", "keys", len(rest), "err", err)
			return resp, nil // the rest is not answered: asked again
		}
		for k, v := range up.Configs {
			if co := laid[k]; co != nil && string(v) != "null" {
				v = project.LayClientOptions(v, co)
				resp.Sources[k] = redisSource // expired with Redis's configs when the channel is lost
			}
			resp.Configs[k] = v
		}
		resp.Pending, resp.Unchanged = up.Pending, append(resp.Unchanged, up.Unchanged...)
		resp.Global, resp.GlobalStatus = up.Global, up.GlobalStatus
		return resp, nil
	}
}

// upstreamOnly are the keys of req not last served from Redis, wholly or
// with a part of Redis laid over the upstream's config.
func upstreamOnly(req *project.Request) []string {
	var rest []string
	for i, k := range req.PublicKeys {
		if i < len(req.Revisions) && req.Revisions[i] != nil &&
			(strings.HasPrefix(*req.Revisions[i], project.PartsRevPrefix) || strings.Contains(*req.Revisions[i], project.LaidRevMarker)) {
			continue
		}
		rest = append(rest, k)
	}
	return rest
}

// subRequest is req for keys only, with their revisions.
func subRequest(req *project.Request, keys []string) *project.Request {
	sub := *req
	sub.PublicKeys, sub.Revisions = keys, make([]*string, 0, len(keys))
	rev := make(map[string]*string, len(req.PublicKeys))
	for i, k := range req.PublicKeys {
		if i < len(req.Revisions) {
			rev[k] = req.Revisions[i]
		}
	}
	for _, k := range keys {
		sub.Revisions = append(sub.Revisions, rev[k])
	}
	return &sub
}

// watchRedisConfigs follows the update channel until ctx ends.
func (r *Relay) watchRedisConfigs(ctx context.Context) {
	r.configs.Watch(ctx, r.cfg.Redis.ProjectConfigs.FallbackRefresh, r.cache.Invalidate, func() {
		r.cache.ExpireSource(redisSource)
	})
}

// closeRedisConfigs closes the config source, if any.
func (r *Relay) closeRedisConfigs() {
	if r.configs != nil {
		_ = r.configs.Close()
	}
}

// registerRedisConfigMetrics registers baton_redis_configs_subscribed and
// baton_redis_config_updates_total.
func (r *Relay) registerRedisConfigMetrics() error {
	if r.configs == nil || !r.tel.Enabled() {
		return nil
	}
	sub, err := r.meter.Int64ObservableGauge("baton_redis_configs_subscribed", metric.WithDescription("1 while the project config update channel in Redis is subscribed; 0 while configs from Redis are refreshed every redis.project_configs.fallback_refresh instead."))
	if err != nil {
		return err
	}
	updates, err := r.meter.Int64ObservableCounter("baton_redis_config_updates_total", metric.WithDescription("Project config updates received on the Redis update channel."))
	if err != nil {
		return err
	}
	_, err = r.meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		st := r.configs.Stats()
		var v int64
		if st.Subscribed {
			v = 1
		}
		o.ObserveInt64(sub, v)
		o.ObserveInt64(updates, st.Updates)
		return nil
	}, sub, updates)
	return err
}

// redisConfigsStatus is the project_configs part of /api/status's redis.
func (r *Relay) redisConfigsStatus() *status.RedisConfigs {
	if r.configs == nil {
		return nil
	}
	st := r.configs.Stats()
	return &status.RedisConfigs{Prefix: r.cfg.Redis.ProjectConfigs.Prefix, Subscribed: st.Subscribed, Reads: st.Reads,
		Updates: st.Updates, LastError: st.LastError, LastErrorAt: st.LastErrorAt}
}
