package relay

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"
	"unsafe"

	"go.opentelemetry.io/otel/metric"

	"github.com/baton-relay/baton/config"
	"github.com/baton-relay/baton/relay/aggregate"
	"github.com/baton-relay/baton/relay/fleet"
	"github.com/baton-relay/baton/relay/policy"
	"github.com/baton-relay/baton/relay/status"
)

// redisSecrets reads the password of the redis: section (password_file
// over password) and builds its TLS config.
func redisSecrets(c config.Redis) (pass string, tc *tls.Config, err error) {
	pass = string(c.Password)
	if c.PasswordFile != "" {
		b, err := os.ReadFile(c.PasswordFile)
		if err != nil {
			return "", nil, fmt.Errorf("relay: redis.password_file: %w", err)
		}
		pass = strings.TrimRight(string(b), "\r\n")
	}
	tc, err = redisTLS(c.TLS)
	return pass, tc, err
}

// openFleet opens the Redis quota counter of the redis: section, or
// returns nil when no address is set. Redis need not be up.
func openFleet(c config.Redis, log *slog.Logger) (*fleet.Counter, error) {
	if !c.Enabled() {
		return nil, nil
	}
	pass, tc, err := redisSecrets(c)
	if err != nil {
		return nil, err
	}
	fc, err := fleet.Open(fleet.Options{
		Addresses: c.Addresses, Cluster: c.Cluster, Username: c.Username, Password: pass, DB: c.DB,
		TLS: tc, KeyPrefix: c.KeyPrefix, PoolSize: c.PoolSize, DialTimeout: c.DialTimeout,
		MaxWait: c.MaxWait, FallbackShare: c.FallbackShare, ProbeInterval: c.ProbeInterval,
		Logger: log,
	})
	if err != nil {
		return nil, fmt.Errorf("relay: redis: %w", err)
	}
	return fc, nil
}

// redisTLS builds the client TLS config of redis.tls, or nil when off.
func redisTLS(t config.TLS) (*tls.Config, error) {
	if !t.Enabled {
		return nil, nil
	}
	c := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         t.ServerName,
		InsecureSkipVerify: t.InsecureSkipVerify, //nolint:gosec // the operator's explicit choice
	}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("relay: redis.tls.ca_file: %w", err)
		}
		c.RootCAs = x509.NewCertPool()
		if !c.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("relay: redis.tls.ca_file: %s holds no PEM certificate", t.CAFile)
		}
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("relay: redis.tls.cert_file and key_file (%s, %s): %w", t.CertFile, t.KeyFile, err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}

// closeFleet closes the Redis counter, if any.
func (r *Relay) closeFleet() {
	if r.fleet != nil {
		_ = r.fleet.Close()
	}
}

// registerFleetMetrics registers baton_redis_up, baton_quota_leases_total,
// baton_quota_fallbacks_total and the baton_cardinality_* counters, read
// from the counter at each scrape.
func (r *Relay) registerFleetMetrics() error {
	if r.fleet == nil || !r.tel.Enabled() {
		return nil
	}
	m := r.meter
	up, err := m.Int64ObservableGauge("baton_redis_up", metric.WithDescription("1 while quota counting reaches Redis, 0 while it falls back to local counting."))
	if err != nil {
		return err
	}
	leases, err := m.Int64ObservableCounter("baton_quota_leases_total", metric.WithDescription("Quota leases Redis granted (each a share of a window's limit spent locally)."))
	if err != nil {
		return err
	}
	fallbacks, err := m.Int64ObservableCounter("baton_quota_fallbacks_total", metric.WithDescription("Quota decisions made by local counting because Redis failed or was slower than redis.max_wait."))
	if err != nil {
		return err
	}
	cardCalls, err := m.Int64ObservableCounter("baton_cardinality_redis_calls_total", metric.WithDescription("Metric cardinality batches Redis decided (one round trip each)."))
	if err != nil {
		return err
	}
	cardFallbacks, err := m.Int64ObservableCounter("baton_cardinality_fallbacks_total", metric.WithDescription("Metric series whose cardinality limit was decided by the local limiter because Redis failed, was slower than redis.max_wait, or was down."))
	if err != nil {
		return err
	}
	_, err = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		st := r.fleet.Stats()
		var v int64
		if st.Up {
			v = 1
		}
		o.ObserveInt64(up, v)
		o.ObserveInt64(leases, st.Leases)
		o.ObserveInt64(fallbacks, st.Fallbacks)
		o.ObserveInt64(cardCalls, st.SeriesCalls)
		o.ObserveInt64(cardFallbacks, st.SeriesFallbacks)
		return nil
	}, up, leases, fallbacks, cardCalls, cardFallbacks)
	return err
}

// seriesStore is the fleet Counter as the cardinality limiter's store:
// relay/aggregate and relay/fleet do not know each other.
// One copy per batch (no shared buffer, so the metrics readers'
// round trips do not wait on each other).
type seriesStore struct{ c *fleet.Counter }

func (s *seriesStore) AdmitSeries(now time.Time, checks []aggregate.SeriesCheck, ok []bool) error {
	series := make([]fleet.Series, len(checks))
	for i, c := range checks {
		series[i] = fleet.Series(c) // the same fields, in the same order
	}
	return s.c.AdmitSeries(now, series, ok)
}

// quotaStore is the fleet Counter as the Enforcer's quota counter:
// relay/policy and relay/fleet do not know each other. Their Charge types
// have the same fields in the same order (the conversion below fails to
// compile otherwise), so the same memory layout: the Counter decides the
// caller's charges in place, with no copy either way.
type quotaStore struct{ c *fleet.Counter }

var _ = fleet.Charge(policy.Charge{}) // the types stay convertible

func (s quotaStore) Count(cs []policy.Charge, now int64) {
	if len(cs) == 0 {
		return
	}
	s.c.Count(unsafe.Slice((*fleet.Charge)(unsafe.Pointer(&cs[0])), len(cs)), now)
}

// fleetStatus is the Redis part of /api/status, or nil without Redis.
func (r *Relay) fleetStatus() *status.Redis {
	if r.fleet == nil {
		return nil
	}
	st := r.fleet.Stats()
	return &status.Redis{Addresses: r.cfg.Redis.Addresses, Up: st.Up, Leases: st.Leases, Fallbacks: st.Fallbacks,
		Windows: st.Windows, CardinalityCalls: st.SeriesCalls, CardinalityFallbacks: st.SeriesFallbacks,
		LastError: st.LastError, LastErrorAt: st.LastErrorAt}
}
