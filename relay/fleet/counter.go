package fleet

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Options configure a Counter.
type Options struct {
	// Addresses are the Redis server, or seed nodes of a cluster,
	// host:port. Required.
	Addresses []string
	// Cluster speaks the Redis Cluster protocol. Default: false.
	Cluster bool
	// Username and Password authenticate (AUTH). Default: none.
	Username, Password string
	// DB is a single server's database number. Default: 0.
	DB int
	// TLS, when set, encrypts connections. Default: nil (plain TCP).
	TLS *tls.Config
	// KeyPrefix starts every key. Default: "baton".
	KeyPrefix string
	// PoolSize caps connections per node. Default: 16.
	PoolSize int
	// DialTimeout bounds connecting, and a probe. Default: 1s.
	DialTimeout time.Duration
	// MaxWait bounds a decision's wait for Redis. Default: 50ms.
	MaxWait time.Duration
	// FallbackShare divides limits while Redis is unreachable. Default: 1.
	FallbackShare int
	// ProbeInterval is the period of the probe after a failure.
	// Default: 1s.
	ProbeInterval time.Duration
	// MaxKeys bounds the windows counted at once. Default: 65536.
	MaxKeys int
	// Logger gets one line when Redis is lost and one when it is back.
	// Default: slog.Default().
	Logger *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.KeyPrefix == "" {
		o.KeyPrefix = "baton"
	}
	if o.PoolSize <= 0 {
		o.PoolSize = 16
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = time.Second
	}
	if o.MaxWait <= 0 {
		o.MaxWait = 50 * time.Millisecond
	}
	if o.FallbackShare <= 0 {
		o.FallbackShare = 1
	}
	if o.ProbeInterval <= 0 {
		o.ProbeInterval = time.Second
	}
	if o.MaxKeys <= 0 {
		o.MaxKeys = 1 << 16
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// ErrNoAddress is returned by Open without Options.Addresses.
var ErrNoAddress = errors.New("fleet: no Redis address")

// Lease sizes: a lease is limit/leaseDivisor items, within these bounds.
const (
	leaseDivisor = 32
	minLease     = 1
	maxLease     = 256
)

// sweepEvery is how often the windows that ended are let go (seconds).
const sweepEvery = 60

// leaseScript takes a lease on one window. KEYS[1] is the window's count;
// ARGV: need (the least that admits the decision), want (the lease),
// limit, unsynced (admitted during a fallback, added first), ttl. It
// returns {granted, left}: granted 0 refuses (left < need).
var leaseScript = redis.NewScript(`
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
local unsynced = tonumber(ARGV[4])
if unsynced > 0 then
  used = redis.call('INCRBY', KEYS[1], unsynced)
  redis.call('EXPIRE', KEYS[1], ARGV[5])
end
local avail = tonumber(ARGV[3]) - used
if avail < tonumber(ARGV[1]) then
  return {0, avail}
end
local grant = math.min(tonumber(ARGV[2]), avail)
redis.call('INCRBY', KEYS[1], grant)
redis.call('EXPIRE', KEYS[1], ARGV[5])
return {grant, avail - grant}
`)

// Counter counts quota windows in Redis, with local leases and a local
// fallback (see the package doc). It implements policy.Counter and is safe
// for concurrent use.
type Counter struct {
	opts Options
	rdb  redis.UniversalClient

	up        atomic.Bool
	probing   atomic.Bool
	leases    atomic.Int64
	fallbacks atomic.Int64
	lastErr   atomic.Pointer[failure]

	seriesCalls     atomic.Int64 // AdmitSeries round trips that answered
	seriesFallbacks atomic.Int64 // series decided locally

	mu    sync.Mutex
	m     map[string]*window
	swept int64

	ctx    context.Context // ends with Close: stops the probe
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

type failure struct {
	err string
	at  time.Time
}

// window is one quota window as this Baton sees it.
type window struct {
	mu       sync.Mutex // held across a lease call: one per window at a time
	slot     int64      // the window's index (unix second / window)
	end      int64      // unix second it ends
	length   int64      // seconds
	left     int64      // leased from Redis, not spent yet
	used     int64      // admitted here in this window
	unsynced int64      // admitted by the fallback, not yet in Redis
	full     bool       // Redis has nothing left for this window
}

// Open connects to Redis and returns a Counter. Redis need not be up: the
// Counter then starts in fallback and probes.
func Open(opts Options) (*Counter, error) {
	opts = opts.withDefaults()
	if len(opts.Addresses) == 0 {
		return nil, ErrNoAddress
	}
	uo := &redis.UniversalOptions{
		Addrs:                 opts.Addresses,
		IsClusterMode:         opts.Cluster,
		Username:              opts.Username,
		Password:              opts.Password,
		DB:                    opts.DB,
		TLSConfig:             opts.TLS,
		PoolSize:              opts.PoolSize,
		DialTimeout:           opts.DialTimeout,
		ReadTimeout:           opts.DialTimeout,
		WriteTimeout:          opts.DialTimeout,
		ContextTimeoutEnabled: true, // a decision's MaxWait bounds its I/O
		MaxRetries:            -1,   // a retry cannot fit in MaxWait; the fallback is the retry
		DisableIdentity:       true,
	}
	c := &Counter{opts: opts, rdb: redis.NewUniversalClient(uo), m: map[string]*window{}}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	ctx, cancel := context.WithTimeout(c.ctx, opts.DialTimeout)
	err := c.rdb.Ping(ctx).Err()
	cancel()
	if err != nil {
		c.lost(err)
	} else {
		c.up.Store(true)
	}
	return c, nil
}

// Close stops the probe and closes the connections.
func (c *Counter) Close() error {
	c.cancel()
	c.wg.Wait()
	return c.rdb.Close()
}

// Stats are a Counter's state for metrics and the status page.
type Stats struct {
	Up          bool  // the last call to Redis succeeded
	Leases      int64 // leases Redis granted
	Fallbacks   int64 // decisions made locally because Redis failed
	Windows     int   // windows held
	SeriesCalls int64 // cardinality batches Redis decided
	// SeriesFallbacks counts series decided locally because Redis
	// failed, was slower than MaxWait, or was known to be down.
	SeriesFallbacks int64
	LastError       string    // the last failure, if any
	LastErrorAt     time.Time // when
}

// Stats returns the counter's state.
func (c *Counter) Stats() Stats {
	s := Stats{Up: c.up.Load(), Leases: c.leases.Load(), Fallbacks: c.fallbacks.Load(),
		SeriesCalls: c.seriesCalls.Load(), SeriesFallbacks: c.seriesFallbacks.Load()}
	if f := c.lastErr.Load(); f != nil {
		s.LastError, s.LastErrorAt = f.err, f.at
	}
	c.mu.Lock()
	s.Windows = len(c.m)
	c.mu.Unlock()
	return s
}

// Add is policy.Counter's Add: it adds n to key's window at now (unix
// seconds) of a quota of limit per window seconds, and reports whether
// that went over the limit.
func (c *Counter) Add(key []byte, limit, window, n, now int64) bool {
	w := c.window(key, now)
	if w == nil {
		return false // at the bound: not counted, as the local counters
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if slot := now / window; w.slot != slot {
		w.slot, w.end, w.length = slot, (slot+1)*window, window
		w.left, w.used, w.unsynced, w.full = 0, 0, 0, false
	}
	if w.left >= n {
		w.left -= n
		w.used += n
		return false
	}
	if c.up.Load() {
		if w.full && w.unsynced == 0 {
			return true
		}
		need := n - w.left
		granted, left, err := c.lease(key, w, limit, need, max(need, leaseSize(limit)))
		if err == nil {
			w.unsynced = 0
			if granted == 0 {
				w.full = left <= 0
				return true
			}
			w.left += granted - n
			w.used += n
			return false
		}
		c.lost(err)
	}
	// Fallback: this Baton's share of the limit, what it spent included.
	c.fallbacks.Add(1)
	if w.used+n > max(limit/int64(c.opts.FallbackShare), 1) {
		return true
	}
	w.used += n
	w.unsynced += n
	return false
}

// leaseSize is the lease taken for a limit: 1/32 of it, 1 to 256.
func leaseSize(limit int64) int64 {
	return min(max(limit/leaseDivisor, minLease), maxLease)
}

// lease runs leaseScript for w within MaxWait.
func (c *Counter) lease(key []byte, w *window, limit, need, want int64) (granted, left int64, err error) {
	ctx, cancel := context.WithTimeout(c.ctx, c.opts.MaxWait)
	defer cancel()
	k := c.redisKey(key, w.slot)
	// Kept a minute past its end, so Batons whose clocks are a little
	// apart still find it.
	ttl := w.length + sweepEvery
	res, err := leaseScript.Run(ctx, c.rdb, []string{k}, need, want, limit, w.unsynced, ttl).Int64Slice()
	if err != nil {
		return 0, 0, err
	}
	if len(res) != 2 {
		return 0, 0, fmt.Errorf("fleet: lease script answered %v", res)
	}
	if res[0] > 0 {
		c.leases.Add(1)
	}
	return res[0], res[1], nil
}

// redisKey is the Redis key of key's window slot: prefix:q:key:slot.
func (c *Counter) redisKey(key []byte, slot int64) string {
	b := make([]byte, 0, len(c.opts.KeyPrefix)+len(key)+24)
	b = append(b, c.opts.KeyPrefix...)
	b = append(b, ":q:"...)
	b = append(b, key...)
	b = append(b, ':')
	b = strconv.AppendInt(b, slot, 10)
	return string(b)
}

// window returns key's window entry, creating it, or nil at MaxKeys.
func (c *Counter) window(key []byte, now int64) *window {
	c.mu.Lock()
	defer c.mu.Unlock()
	if now-c.swept >= sweepEvery {
		c.sweep(now)
	}
	w := c.m[string(key)]
	if w == nil {
		if len(c.m) >= c.opts.MaxKeys && now != c.swept {
			c.sweep(now)
		}
		if len(c.m) >= c.opts.MaxKeys {
			return nil
		}
		w = &window{slot: -1}
		c.m[string(key)] = w
	}
	return w
}

// sweep lets go of the windows that ended by now.
func (c *Counter) sweep(now int64) {
	c.swept = now
	for k, w := range c.m {
		if !w.mu.TryLock() {
			continue // in use (perhaps waiting on Redis): not ended
		}
		ended := w.end <= now && w.unsynced == 0
		w.mu.Unlock()
		if ended {
			delete(c.m, k)
		}
	}
}

// lost records a failure and, the first time since Redis was up, logs it
// and starts the probe.
func (c *Counter) lost(err error) {
	c.lastErr.Store(&failure{err: err.Error(), at: time.Now()})
	wasUp := c.up.Swap(false)
	if !c.probing.CompareAndSwap(false, true) {
		return
	}
	if wasUp {
		c.opts.Logger.Warn("redis unreachable; counting quotas locally (and metric cardinality) until it answers",
			"err", err, "fallback_share", c.opts.FallbackShare, "probe_interval", c.opts.ProbeInterval)
	} else {
		c.opts.Logger.Warn("redis unreachable at start; counting quotas locally (and metric cardinality) until it answers", "err", err)
	}
	c.wg.Go(c.probe)
}

// probe pings Redis every ProbeInterval until it answers.
func (c *Counter) probe() {
	t := time.NewTicker(c.opts.ProbeInterval)
	defer t.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(c.ctx, c.opts.DialTimeout)
		err := c.rdb.Ping(ctx).Err()
		cancel()
		if err == nil {
			// probing first: a failure right after up must start a probe.
			c.probing.Store(false)
			c.up.Store(true)
			c.opts.Logger.Info("redis reachable again; counting quotas and metric cardinality in redis")
			return
		}
		c.lastErr.Store(&failure{err: err.Error(), at: time.Now()})
	}
}
