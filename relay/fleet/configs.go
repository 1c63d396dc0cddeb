package fleet

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// ConfigsOptions configure Configs. The connection fields are as Options'.
type ConfigsOptions struct {
	Addresses          []string
	Cluster            bool
	Username, Password string
	DB                 int
	TLS                *tls.Config
	// Prefix starts every config key (<Prefix>:<public key>:<part>) and
	// names the update channel <Prefix>:updates. Default:
	// DefaultConfigsPrefix.
	Prefix string
	// Parts are the part names read for a key, in order. Required.
	Parts []string
	// MaxPartBytes bounds what Read takes of one part. Default: 256 KiB.
	MaxPartBytes int
	// ReadKeys is the most keys per pipeline of Read, which bounds what
	// one round trip holds (ReadKeys × parts × MaxPartBytes). Default: 50.
	ReadKeys int
	// PoolSize caps connections per node. Default: 16.
	PoolSize int
	// DialTimeout bounds connecting. Default: 1s.
	DialTimeout time.Duration
	// ReadTimeout bounds one Read (its round trip). Default: 5s.
	ReadTimeout time.Duration
	// ProbeInterval is the wait before subscribing again after the update
	// channel was lost. Default: 1s.
	ProbeInterval time.Duration
	// Logger gets one line when the channel is lost and one when it is
	// back. Default: slog.Default().
	Logger *slog.Logger
}

func (o ConfigsOptions) withDefaults() ConfigsOptions {
	if o.Prefix == "" {
		o.Prefix = DefaultConfigsPrefix
	}
	if o.PoolSize <= 0 {
		o.PoolSize = 16
	}
	if o.MaxPartBytes <= 0 {
		o.MaxPartBytes = 256 << 10
	}
	if o.ReadKeys <= 0 {
		o.ReadKeys = 50
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = time.Second
	}
	if o.ReadTimeout <= 0 {
		o.ReadTimeout = 5 * time.Second
	}
	if o.ProbeInterval <= 0 {
		o.ProbeInterval = time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// DefaultConfigsPrefix is ConfigsOptions.Prefix's default, as
// redis.project_configs.prefix's (relay's TestDefaultsAgree checks it).
const DefaultConfigsPrefix = "baton:config"

// Parts are the part names Read returns for a key, in order.
func (c *Configs) Parts() []string { return c.opts.Parts }

// ErrNoParts is returned by OpenConfigs without ConfigsOptions.Parts.
var ErrNoParts = errors.New("fleet: no config part names")

// Configs reads project configs stored in parts in Redis, writes them
// (for the CLI), and follows the update channel. Safe for concurrent use.
type Configs struct {
	opts ConfigsOptions
	rdb  redis.UniversalClient

	subscribed atomic.Bool
	reads      atomic.Int64
	updates    atomic.Int64
	lastErr    atomic.Pointer[failure]
}

// OpenConfigs returns Configs over a new client. Redis need not be up.
func OpenConfigs(opts ConfigsOptions) (*Configs, error) {
	opts = opts.withDefaults()
	if len(opts.Addresses) == 0 {
		return nil, ErrNoAddress
	}
	if len(opts.Parts) == 0 {
		return nil, ErrNoParts
	}
	rdb := redis.NewUniversalClient(&redis.UniversalOptions{
		Addrs:         opts.Addresses,
		IsClusterMode: opts.Cluster,
		Username:      opts.Username,
		Password:      opts.Password,
		DB:            opts.DB,
		TLSConfig:     opts.TLS,
		PoolSize:      opts.PoolSize,
		// Pipelines (config reads) on the same pool: go-redis gives them
		// a second pool of 10 by default, and PoolSize would not bound it.
		PipelinePoolSize: -1,
		DialTimeout:      opts.DialTimeout,
		ReadTimeout:      opts.ReadTimeout,
		WriteTimeout:     opts.ReadTimeout,
		DisableIdentity:  true,
	})
	return &Configs{opts: opts, rdb: rdb}, nil
}

// Close closes the connections; Watch returns.
func (c *Configs) Close() error { return c.rdb.Close() }

// Key is the Redis key of part of publicKey's config.
func (c *Configs) Key(publicKey, part string) string {
	return c.opts.Prefix + ":" + publicKey + ":" + part
}

// Channel is the update channel: a message is a public key whose config
// changed.
func (c *Configs) Channel() string { return c.opts.Prefix + ":updates" }

// Read fetches every part of keys, ReadKeys keys per pipelined round trip
// (per node, in a cluster; a key's parts always in one): out[i][j] is
// keys[i]'s part Parts[j], nil when absent. A part is read with GETRANGE up
// to MaxPartBytes+1 bytes, so a longer one comes back longer than
// MaxPartBytes, cut: the caller treats it as broken. A failure fails the
// whole read.
func (c *Configs) Read(ctx context.Context, keys []string) ([][][]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, c.opts.ReadTimeout)
	defer cancel()
	out := make([][][]byte, 0, len(keys))
	for chunk := range slices.Chunk(keys, c.opts.ReadKeys) {
		rows, err := c.read(ctx, chunk)
		if err != nil {
			c.fail(err)
			return nil, fmt.Errorf("fleet: reading %d project configs: %w", len(keys), err)
		}
		out = append(out, rows...)
	}
	c.reads.Add(1)
	return out, nil
}

// read is one pipeline of Read.
func (c *Configs) read(ctx context.Context, keys []string) ([][][]byte, error) {
	np := len(c.opts.Parts)
	cmds := make([]*redis.StringCmd, 0, len(keys)*np)
	_, err := c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, k := range keys {
			for _, part := range c.opts.Parts {
				cmds = append(cmds, p.GetRange(ctx, c.Key(k, part), 0, int64(c.opts.MaxPartBytes)))
			}
		}
		return nil
	})
	var re redis.Error
	if err != nil && !errors.As(err, &re) {
		return nil, err // the connection, not one key
	}
	out := make([][][]byte, len(keys))
	for i := range keys {
		out[i] = make([][]byte, np)
		for j := range np {
			b, err := cmds[i*np+j].Bytes()
			switch {
			case errors.As(err, &re):
				// One key refused (WRONGTYPE: not a string): its text
				// stands for the part, which then does not decode.
				out[i][j] = []byte(err.Error())
			case err == nil && len(b) > 0:
				// An absent key reads as "": a stored part is never
				// empty (Put deletes on an empty value).
				out[i][j] = b
			}
		}
	}
	return out, nil
}

// Put stores part of publicKey's config and publishes publicKey on the
// update channel, in one MULTI/EXEC on a single server (in a cluster, the
// SET then the PUBLISH). An empty value deletes the part.
func (c *Configs) Put(ctx context.Context, publicKey, part string, value []byte) error {
	key := c.Key(publicKey, part)
	write := func(p redis.Pipeliner) error {
		if len(value) == 0 {
			p.Del(ctx, key)
		} else {
			p.Set(ctx, key, value, 0)
		}
		p.Publish(ctx, c.Channel(), publicKey)
		return nil
	}
	var err error
	if c.opts.Cluster {
		_, err = c.rdb.Pipelined(ctx, write)
	} else {
		_, err = c.rdb.TxPipelined(ctx, write)
	}
	if err != nil {
		return fmt.Errorf("fleet: writing %s: %w", key, err)
	}
	return nil
}

// Get returns part of publicKey's config, nil when absent.
func (c *Configs) Get(ctx context.Context, publicKey, part string) ([]byte, error) {
	b, err := c.rdb.Get(ctx, c.Key(publicKey, part)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("fleet: reading %s: %w", c.Key(publicKey, part), err)
	}
	return b, nil
}

// Watch follows the update channel until ctx ends: changed gets each
// public key published; resync is called whenever updates may have been
// missed (the channel lost, and again when it is back), and every tick of
// lostEvery while it is lost, so the caller falls back to refreshing. It
// subscribes again after ProbeInterval when the channel fails.
func (c *Configs) Watch(ctx context.Context, lostEvery time.Duration, changed func(publicKey string), resync func()) {
	var wg sync.WaitGroup
	defer wg.Wait()
	lost := make(chan bool, 1) // true: lost; false: back
	wg.Go(func() { c.fallback(ctx, lostEvery, lost, resync) })
	signal := func(down bool) { // keeps only the latest state
		for {
			select {
			case lost <- down:
				return
			default:
			}
			select {
			case <-lost:
			default:
			}
		}
	}
	wasUp := true // at start a failure is logged as lost too
	for ctx.Err() == nil {
		err := c.follow(ctx, changed, func() {
			if !c.subscribed.Swap(true) {
				if !wasUp {
					c.opts.Logger.Info("redis project configs: update channel subscribed again", "channel", c.Channel())
				}
				wasUp = true
				signal(false)
			}
		})
		if ctx.Err() != nil {
			return
		}
		c.fail(err)
		if c.subscribed.Swap(false) || wasUp {
			wasUp = false
			c.opts.Logger.Warn("redis project configs: update channel lost; configs read from redis are refreshed on use until it is back",
				"channel", c.Channel(), "err", err)
			signal(true)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(c.opts.ProbeInterval):
		}
	}
}

// follow subscribes to the update channel and receives from it until it
// fails (a refused SUBSCRIBE, a lost connection, a ping unanswered), then
// closes the subscription. up is called when the subscription is
// confirmed.
func (c *Configs) follow(ctx context.Context, changed func(string), up func()) error {
	ps := c.rdb.Subscribe(ctx, c.Channel())
	defer ps.Close()
	stop := context.AfterFunc(ctx, func() { ps.Close() }) // ends a receive in progress
	defer stop()
	for {
		msg, err := ps.ReceiveTimeout(ctx, 5*time.Second)
		if err != nil {
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() || ctx.Err() != nil {
				return err
			}
			// Quiet channel: make sure the connection still answers.
			pctx, cancel := context.WithTimeout(ctx, c.opts.DialTimeout)
			err = ps.Ping(pctx)
			cancel()
			if err != nil {
				return err
			}
			continue
		}
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind == "subscribe" {
				up()
			}
		case *redis.Message:
			c.updates.Add(1)
			changed(m.Payload)
		}
	}
}

// fallback calls resync when the channel is lost or back, and every
// lostEvery while it is lost.
func (c *Configs) fallback(ctx context.Context, every time.Duration, lost <-chan bool, resync func()) {
	t := time.NewTicker(every)
	t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case down := <-lost:
			resync()
			if down {
				t.Reset(every)
			} else {
				t.Stop()
			}
		case <-t.C:
			resync()
		}
	}
}

func (c *Configs) fail(err error) {
	c.lastErr.Store(&failure{err: err.Error(), at: time.Now()})
}

// ConfigsStats are Configs' state for metrics and the status page.
type ConfigsStats struct {
	Subscribed  bool      // the update channel is subscribed
	Reads       int64     // pipelined reads that succeeded
	Updates     int64     // update messages received
	LastError   string    // the last failure, if any
	LastErrorAt time.Time // when
}

// Stats returns the state.
func (c *Configs) Stats() ConfigsStats {
	s := ConfigsStats{Subscribed: c.subscribed.Load(), Reads: c.reads.Load(), Updates: c.updates.Load()}
	if f := c.lastErr.Load(); f != nil {
		s.LastError, s.LastErrorAt = f.err, f.at
	}
	return s
}
