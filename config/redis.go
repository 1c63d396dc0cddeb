package config

import (
	"fmt"
	"time"
)

// Redis is the Redis a fleet of Batons shares state in (relay/fleet). With
// no Addresses, every Baton counts quotas in its own memory.
type Redis struct {
	// Addresses are Redis nodes, host:port: the one server, or seed nodes
	// of a Redis Cluster. Default: none (Redis off).
	Addresses []string `yaml:"addresses"`
	// Cluster speaks the Redis Cluster protocol to Addresses. Default: false.
	Cluster bool `yaml:"cluster"`
	// Username for Redis ACLs (AUTH user pass); empty authenticates with
	// Password alone. Default: "".
	Username string `yaml:"username"`
	// Password; use ${ENV}, or PasswordFile. Default: "".
	Password Secret `yaml:"password"`
	// PasswordFile is a file holding the password (trailing newline
	// ignored); not with Password. Default: "".
	PasswordFile string `yaml:"password_file"`
	// DB is the database number of a single server (0 in a cluster).
	// Default: 0.
	DB int `yaml:"db"`
	// TLS encrypts connections; off unless Enabled.
	TLS TLS `yaml:"tls"`
	// KeyPrefix starts every key Baton writes. Default: baton.
	KeyPrefix string `yaml:"key_prefix"`
	// PoolSize caps connections per node (count). Default: 16.
	PoolSize int `yaml:"pool_size"`
	// DialTimeout bounds connecting to a node. Default: 1s.
	DialTimeout time.Duration `yaml:"dial_timeout"`
	// MaxWait bounds how long a quota decision waits for Redis before it
	// is made locally (fallback). Default: 50ms.
	MaxWait time.Duration `yaml:"max_wait"`
	// FallbackShare divides a quota's limit while Redis is unreachable:
	// each Baton then admits limit/FallbackShare per window, so a fleet of
	// that many stays near the global limit (count, 1 or more). Default: 1.
	FallbackShare int `yaml:"fallback_share"`
	// ProbeInterval is how often Baton tries Redis again after it failed.
	// Default: 1s.
	ProbeInterval time.Duration `yaml:"probe_interval"`
	// ProjectConfigs reads project configs, part by part, from this Redis
	// (managed or static mode; DESIGN.md "Project configs in Redis").
	ProjectConfigs RedisProjectConfigs `yaml:"project_configs"`
}

// RedisProjectConfigs is redis.project_configs: project configs kept in
// Redis, one key per part (<prefix>:<public key>:<part>), ahead of the
// upstream's (managed mode) or beside projects: (static mode).
type RedisProjectConfigs struct {
	// Enabled reads a key's config from Redis first; keys without a keys
	// part there are asked from the upstream (managed mode) or unknown
	// (static mode). Default: false.
	Enabled bool `yaml:"enabled"`
	// Prefix starts every config key, and names the update channel
	// (<prefix>:updates). Default: baton:config.
	Prefix string `yaml:"prefix"`
	// FallbackRefresh is how stale a config read from Redis may get while
	// the update channel is not subscribed (Redis lost): such configs are
	// refreshed on use after this. Default: 5s.
	FallbackRefresh time.Duration `yaml:"fallback_refresh"`
}

// Enabled reports whether Redis is configured.
func (r Redis) Enabled() bool { return len(r.Addresses) > 0 }

// redis checks the redis: section.
func (v *validator) redis() {
	r := v.c.Redis
	for i, a := range r.Addresses {
		v.hostPort(fmt.Sprintf("redis.addresses[%d]", i), a, false)
	}
	if r.Cluster && r.DB != 0 {
		v.errorf("redis.db", "must be 0 with redis.cluster: Redis Cluster has only database 0")
	}
	if r.DB < 0 || r.DB > 15 {
		v.errorf("redis.db", "%d is not a database number from 0 to 15", r.DB)
	}
	if r.Password != "" && r.PasswordFile != "" {
		v.errorf("redis.password_file", "password and password_file are both set; set one")
	}
	if r.Username != "" && r.Password == "" && r.PasswordFile == "" {
		v.errorf("redis.username", "needs redis.password or redis.password_file")
	}
	t := r.TLS
	if !t.Enabled && (t.CAFile != "" || t.CertFile != "" || t.KeyFile != "" || t.ServerName != "" || t.InsecureSkipVerify) {
		v.errorf("redis.tls.enabled", "is false but other tls settings are set; set enabled: true or remove them")
	}
	if (t.CertFile == "") != (t.KeyFile == "") {
		v.errorf("redis.tls.cert_file", "cert_file and key_file must be set together")
	}
	if r.KeyPrefix == "" {
		v.errorf("redis.key_prefix", "must not be empty: it keeps Baton's keys apart from others in the same Redis")
	}
	v.positive("redis.pool_size", int64(r.PoolSize))
	v.durationPositive("redis.dial_timeout", r.DialTimeout)
	v.durationPositive("redis.max_wait", r.MaxWait)
	if r.MaxWait > time.Second {
		v.errorf("redis.max_wait", "%v is over 1s: ingest waits this long for Redis at most; keep it small (default 50ms)", r.MaxWait)
	}
	v.positive("redis.fallback_share", int64(r.FallbackShare))
	v.durationPositive("redis.probe_interval", r.ProbeInterval)
	if pc := r.ProjectConfigs; pc.Enabled {
		if !r.Enabled() {
			v.errorf("redis.project_configs.enabled", "needs redis.addresses")
		}
		if v.c.Mode == ModeProxy {
			v.errorf("redis.project_configs.enabled", "needs mode: static or managed (proxy mode reads no project configs)")
		}
		if pc.Prefix == "" {
			v.errorf("redis.project_configs.prefix", "must not be empty")
		}
		v.durationPositive("redis.project_configs.fallback_refresh", pc.FallbackRefresh)
	}
}
