package fleet

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"slices"
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
	// MaxWait bounds a decision's wait for Redis (a background refill's
	// call too). Default: 50ms.
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

// Prefetch: a window whose lease left falls under half a lease is
// refilled in the background, when its leases are of minPrefetch items or
// more (under that, a lease reserved ahead would be a large share of a
// small limit). At most refillQueue windows wait for a refill, and one
// script call refills up to refillBatch of them.
const (
	minPrefetch = 8
	refillQueue = 1024
	refillBatch = 64
)

// sweepEvery is how often the windows that ended are let go (seconds).
const sweepEvery = 60

// leaseScript decides one envelope's groups of charges on the windows
// its caller has too little lease for, and takes their leases, atomically.
// KEYS are those windows. ARGV: m (#KEYS); per key limit, unsynced
// (admitted during a fallback, added first), ttl, loc (the caller's lease
// left), want (the lease); then per group its count of charges and, per
// charge, its key's index and n. Groups are decided in order, as Relay
// checks one category after another: a group is admitted only when every
// charge fits what is leased and what Redis has left, otherwise it takes
// nothing (Relay's is_rate_limited.lua). A key no refused group touched
// is granted up to want, what its groups took included: a refused
// envelope takes no lease. It returns, per key, {granted, left in Redis},
// then, per charge, 1 when it was over.
var leaseScript = redis.NewScript(`
local m = tonumber(ARGV[1])
local avail, loc, take, refused = {}, {}, {}, {}
for i = 1, m do
  local a = 2 + (i-1)*5
  local used = tonumber(redis.call('GET', KEYS[i]) or '0')
  local unsynced = tonumber(ARGV[a+1])
  if unsynced > 0 then
    used = redis.call('INCRBY', KEYS[i], unsynced)
    redis.call('EXPIRE', KEYS[i], ARGV[a+2])
  end
  avail[i] = math.max(tonumber(ARGV[a]) - used, 0)
  loc[i] = tonumber(ARGV[a+3])
  take[i] = 0
  refused[i] = false
end
local out = {}
local p = 2 + m*5
while p <= #ARGV do
  local k = tonumber(ARGV[p])
  local ok = true
  for j = 1, k do
    local i, n = tonumber(ARGV[p+2*j-1]), tonumber(ARGV[p+2*j])
    if loc[i] + avail[i] < n then
      ok = false
    end
  end
  for j = 1, k do
    local i, n = tonumber(ARGV[p+2*j-1]), tonumber(ARGV[p+2*j])
    if not ok then
      out[#out+1] = (loc[i] + avail[i] < n) and 1 or 0
      refused[i] = true
    else
      out[#out+1] = 0
      if loc[i] >= n then
        loc[i] = loc[i] - n
      else
        avail[i] = avail[i] - (n - loc[i])
        take[i] = take[i] + n - loc[i]
        loc[i] = 0
      end
    end
  end
  p = p + 1 + 2*k
end
local res = {}
for i = 1, m do
  local a = 2 + (i-1)*5
  local grant = take[i]
  if not refused[i] then
    local extra = math.min(math.max(tonumber(ARGV[a+4]) - take[i], 0), avail[i])
    grant = grant + extra
    avail[i] = avail[i] - extra
  end
  if grant > 0 then
    redis.call('INCRBY', KEYS[i], grant)
    redis.call('EXPIRE', KEYS[i], ARGV[a+2])
  end
  res[#res+1] = grant
  res[#res+1] = avail[i]
end
for _, v in ipairs(out) do res[#res+1] = v end
return res
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

	refills chan *window // windows to prefetch a lease for

	mu     sync.Mutex
	m      map[string]*window
	swept  int64
	lastID uint64

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
	mu        sync.Mutex    // held across a lease call: one per window at a time
	id        uint64        // the lock order
	slot      int64         // the window's index (unix second / window)
	end       int64         // unix second it ends
	length    int64         // seconds
	left      int64         // leased from Redis, not spent yet
	used      int64         // admitted here in this window
	unsynced  int64         // admitted by the fallback, not yet in Redis
	full      bool          // Redis has nothing left for this window
	gone      bool          // the sweep let it go: no longer in Counter.m
	org       uint64        // the hash tag
	limit     int64         // the limit of the last decision
	rkey      string        // the Redis key of slot
	args      []any         // a refill's arguments, boxed once (not per refill)
	refilling bool          // a prefetch is in flight
	refilled  chan struct{} // closed when it is done; made by a decision waiting for it
}

// Open connects to Redis and returns a Counter. Redis need not be up: the
// Counter then starts in fallback and probes.
func Open(opts Options) (*Counter, error) {
	opts = opts.withDefaults()
	if len(opts.Addresses) == 0 {
		return nil, ErrNoAddress
	}
	uo := &redis.UniversalOptions{
		Addrs:         opts.Addresses,
		IsClusterMode: opts.Cluster,
		Username:      opts.Username,
		Password:      opts.Password,
		DB:            opts.DB,
		TLSConfig:     opts.TLS,
		PoolSize:      opts.PoolSize,
		// Pipelines (leases, cardinality batches) on the same pool:
		// go-redis gives them a second pool of 10 by default, and
		// PoolSize would not bound them.
		PipelinePoolSize:      -1,
		DialTimeout:           opts.DialTimeout,
		ReadTimeout:           opts.DialTimeout,
		WriteTimeout:          opts.DialTimeout,
		ContextTimeoutEnabled: true, // a decision's MaxWait bounds its I/O
		MaxRetries:            -1,   // a retry cannot fit in MaxWait; the fallback is the retry
		DisableIdentity:       true,
	}
	c := &Counter{opts: opts, rdb: redis.NewUniversalClient(uo), m: map[string]*window{},
		refills: make(chan *window, refillQueue)}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.wg.Go(c.refiller)
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

// Charge is one quota window a decision counts items in. It has
// policy.Charge's fields, in the same order (relay converts one into the
// other: the packages do not know each other).
type Charge struct {
	// Key names the window: quota id, scope tag, scope. Only valid
	// during the call.
	Key []byte
	// Org is the organization, the Redis key's hash tag (0 for a global
	// quota): one envelope's windows share a Redis Cluster slot, so one
	// script call decides them.
	Org uint64
	// Limit per Window seconds; N items to count.
	Limit, Window, N int64
	// Group: consecutive charges of one Group (one class of items) are
	// admitted or refused together.
	Group int
	// Over is set by Count when this quota refused its group.
	Over bool
}

// Add counts n items in one window at now (unix seconds) of a quota of
// limit per window seconds, and reports whether that went over the limit:
// Count with one charge.
func (c *Counter) Add(key []byte, limit, window, n, now int64) bool {
	cs := [1]Charge{{Key: key, Limit: limit, Window: window, N: n}}
	c.Count(cs[:], now)
	return cs[0].Over
}

// Count is policy.Counter's Count: it decides the groups of cs in order at
// now (unix seconds). A group is admitted, and counted in each of its
// windows, only when none of its quotas would go over; otherwise nothing
// of it is counted and Over marks the quotas that would. What a group's
// windows lack in lease is asked for in one script call (one per hash tag
// in a Cluster, pipelined): one round trip at most, bounded by MaxWait.
// A window whose lease runs low is refilled in the background (prefetch),
// so that call is rare; a decision short of lease on a window being
// refilled waits for that refill (within MaxWait) instead of asking too.
func (c *Counter) Count(cs []Charge, now int64) {
	d := decisions.Get().(*decision)
	defer decisions.Put(d)
	d.deadline, d.late = time.Time{}, false
	for {
		ch := c.count(cs, now, d)
		if ch == nil {
			return
		}
		// Wait for the refill, then decide again, all within MaxWait:
		// past it the decision is local (the fallback's share).
		if d.deadline.IsZero() {
			d.deadline = time.Now().Add(c.opts.MaxWait)
		}
		t := time.NewTimer(time.Until(d.deadline))
		select {
		case <-ch:
		case <-t.C:
			d.late = true
		}
		t.Stop()
	}
}

// count is one try of Count. It returns nil once cs are decided, or a
// refill to wait for before trying again.
func (c *Counter) count(cs []Charge, now int64, d *decision) <-chan struct{} {
	for {
		c.windows(cs, now, d)
		if testAfterLookup != nil {
			testAfterLookup()
		}
		// Windows are locked in one order, so two decisions on the same
		// ones cannot wait on each other; a window short of lease stays
		// locked across its lease call (one call per window at a time),
		// the others are reserved and let go meanwhile (lease).
		slices.SortFunc(d.ws, func(a, b *window) int { return cmp.Compare(a.id, b.id) })
		d.size(len(cs))
		d.lockAll()
		// A window the sweep let go between the lookup and the lock is
		// no longer the key's: what it counted would be lost. Look again.
		if !slices.ContainsFunc(d.ws, func(w *window) bool { return w.gone }) {
			break
		}
		d.unlockAll()
	}
	defer d.unlockAll()
	for i := range cs {
		cs[i].Over = false // each try decides afresh
		j := slices.Index(d.ws, d.of[i])
		if d.at[i] = j; j < 0 {
			continue // at MaxKeys: not counted, as the local counters
		}
		w := d.ws[j]
		if slot, end := windowSlot(cs[i].Org, cs[i].Window, now); w.slot != slot {
			w.slot, w.end, w.length = slot, end, cs[i].Window
			w.left, w.used, w.unsynced, w.full = 0, 0, 0, false
			w.rkey = c.redisKey(cs[i].Org, slot, cs[i].Key)
			w.args = nil // the ttl may change
			w.org = cs[i].Org
		}
		if w.limit != cs[i].Limit || w.args == nil {
			w.limit = cs[i].Limit
			w.args = []any{w.limit, 0, w.length + sweepEvery, 0, leaseSize(w.limit)}
		}
		d.slot[j] = w.slot
		d.org[j] = cs[i].Org
		d.limit[j] = cs[i].Limit
	}
	for j, w := range d.ws {
		d.loc[j] = w.left
	}
	// A group a window known spent cannot admit is refused here, and
	// asks Redis for nothing: a refused envelope costs no round trip.
	up := c.up.Load() && !d.late
	for i := 0; i < len(cs); {
		e := group(cs, i)
		for k := i; k < e; k++ {
			if j := d.at[k]; j >= 0 && up && d.ws[j].full && d.ws[j].unsynced == 0 && d.loc[j] < cs[k].N {
				cs[k].Over = true
			}
		}
		if !slices.ContainsFunc(cs[i:e], over) {
			for k := i; k < e; k++ {
				if j := d.at[k]; j >= 0 {
					d.demand[j] += cs[k].N
				}
			}
		}
		i = e
	}
	short, ask := false, false
	for j, w := range d.ws {
		if d.loc[j] < d.demand[j] {
			if up && w.refilling {
				// Its refill may cover it: one call at a time.
				if w.refilled == nil {
					w.refilled = make(chan struct{})
				}
				return w.refilled
			}
			short = true
			ask = ask || !w.full || w.unsynced > 0
		}
	}
	if up {
		if !ask {
			// The leases cover it, or the windows short of them are
			// known spent: no round trip.
			d.decide(cs, false)
			d.apply(false)
			for _, w := range d.ws {
				c.prefetch(w)
			}
			return nil
		}
		err := c.lease(cs, d)
		if err == nil {
			return nil
		}
		c.lost(err)
	}
	if !short {
		d.decide(cs, false)
		d.apply(false)
		return nil
	}
	// Fallback: this Baton's share of each limit, what it spent included.
	c.fallbacks.Add(1)
	for j, w := range d.ws {
		d.loc[j] = w.left
		d.avail[j] = max(max(d.limit[j]/int64(c.opts.FallbackShare), 1)-w.used, 0)
	}
	d.decide(cs, true)
	d.apply(true)
	return nil
}

// windowSlot is the index of the window of a quota of org that holds now, and
// the unix second it ends. As Relay's RedisQuota, an organization's
// windows are shifted by its id modulo the window (a global quota's org
// is 0: not shifted), so the windows of many organizations do not all
// start afresh at the same second.
func windowSlot(org uint64, window, now int64) (slot, end int64) {
	shift := int64(org % uint64(window))
	slot = (now - shift) / window
	return slot, (slot+1)*window + shift
}

// group returns the end of the group of charges starting at i.
func group(cs []Charge, i int) int {
	e := i + 1
	for e < len(cs) && cs[e].Group == cs[i].Group {
		e++
	}
	return e
}

func over(c Charge) bool { return c.Over }

// decision is the scratch of one Count, per distinct window unless said.
type decision struct {
	of     []*window // per charge: its window, nil for none
	ws     []*window // locked, in id order
	at     []int     // per charge: its window's index, -1 for none
	demand []int64   // what every group would spend
	org    []uint64  // the hash tag
	limit  []int64
	loc    []int64 // lease left as the groups are decided
	avail  []int64 // what may be spent beyond the lease
	spent  []int64 // admitted
	beyond []int64 // admitted beyond the lease (the fallback's unsynced)
	call   []int   // its key's index in the script call + 1; 0: not in it
	slot   []int64 // the window's slot when the decision began
	held   []bool  // its lock is held

	deadline time.Time // set once the decision waited for a refill
	late     bool      // it waited MaxWait: decided locally
}

// lockAll locks every window, in id order.
func (d *decision) lockAll() {
	for j, w := range d.ws {
		w.mu.Lock()
		d.held[j] = true
	}
}

// unlockAll unlocks the windows still held.
func (d *decision) unlockAll() {
	for j, w := range d.ws {
		if d.held[j] {
			w.mu.Unlock()
			d.held[j] = false
		}
	}
}

var decisions = sync.Pool{New: func() any { return new(decision) }}

// size makes the slices fit len(d.ws) windows and n charges, zeroed.
func (d *decision) size(n int) {
	m := len(d.ws)
	d.at = resize(d.at, n)
	d.demand, d.limit, d.loc = resize(d.demand, m), resize(d.limit, m), resize(d.loc, m)
	d.avail, d.spent, d.beyond = resize(d.avail, m), resize(d.spent, m), resize(d.beyond, m)
	d.org, d.call = resize(d.org, m), resize(d.call, m)
	d.slot, d.held = resize(d.slot, m), resize(d.held, m)
}

func resize[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	s = s[:n]
	clear(s)
	return s
}

// decide decides the groups against loc and avail, in order, as
// leaseScript does; in fallback a charge is spent from the lease alone or
// from avail alone (the fallback share counts what the lease spent).
func (d *decision) decide(cs []Charge, fallback bool) {
	for i := 0; i < len(cs); {
		e := group(cs, i)
		if slices.ContainsFunc(cs[i:e], over) {
			i = e
			continue // refused before: by a window known spent
		}
		ok := true
		for k := i; k < e; k++ {
			j, n := d.at[k], cs[k].N
			if j < 0 {
				continue
			}
			if fallback && d.loc[j] < n && d.avail[j] < n || !fallback && d.loc[j]+d.avail[j] < n {
				cs[k].Over, ok = true, false
			}
		}
		if ok {
			for k := i; k < e; k++ {
				if j := d.at[k]; j >= 0 {
					d.spend(j, cs[k].N, fallback)
				}
			}
		}
		i = e
	}
}

func (d *decision) spend(j int, n int64, fallback bool) {
	d.spent[j] += n
	switch {
	case fallback && d.loc[j] >= n:
		d.loc[j] -= n
		d.avail[j] = max(d.avail[j]-n, 0)
	case fallback:
		d.avail[j] -= n
		d.beyond[j] += n
	case d.loc[j] >= n:
		d.loc[j] -= n
	default:
		d.avail[j] -= n - d.loc[j]
		d.beyond[j] += n - d.loc[j]
		d.loc[j] = 0
	}
}

// apply writes a decision's spending to its windows.
func (d *decision) apply(fallback bool) {
	for j, w := range d.ws {
		w.left = d.loc[j]
		w.used += d.spent[j]
		if fallback {
			w.unsynced += d.beyond[j]
		}
	}
}

// leaseSize is the lease taken for a limit: 1/32 of it, 1 to 256.
func leaseSize(limit int64) int64 {
	return min(max(limit/leaseDivisor, minLease), maxLease)
}

// scriptCall is one leaseScript call: the windows of one hash tag.
type scriptCall struct {
	keys    []string
	args    []any
	charges []int // the charges passed, in order
	ws      []int // the windows of keys, in order
	cmd     *redis.Cmd
}

// lease decides cs with leaseScript over the windows short of lease,
// within MaxWait, and applies the answer. The other windows' shares of the
// decision are taken out of their leases and their locks let go during
// the round trip, so decisions on a busy window (an organization's) do not
// wait on another window's lease; what the groups Redis refused reserved
// is given back after. On an error the reservations are given back and
// every window is locked again, for the fallback.
func (c *Counter) lease(cs []Charge, d *decision) error {
	for j, w := range d.ws {
		if d.loc[j] >= d.demand[j] {
			w.left -= d.demand[j]
			d.loc[j] = d.demand[j]
			w.mu.Unlock()
			d.held[j] = false
		}
	}
	err := c.leaseCall(cs, d)
	if err != nil {
		d.unlockAll()
		d.lockAll()
		for j, w := range d.ws {
			if d.call[j] == 0 && w.slot == d.slot[j] {
				w.left += d.demand[j]
			}
			d.loc[j] = w.left
		}
		return err
	}
	// The short windows are held: apply, then the reserved ones.
	for j, w := range d.ws {
		if d.held[j] {
			w.left = d.loc[j]
			w.used += d.spent[j]
			c.prefetch(w)
		}
	}
	d.unlockAll()
	for j, w := range d.ws {
		if d.call[j] == 0 {
			w.mu.Lock()
			if w.slot == d.slot[j] { // not a window that ended meanwhile
				w.left += d.loc[j]
				w.used += d.spent[j]
				c.prefetch(w)
			}
			w.mu.Unlock()
		}
	}
	return nil
}

// leaseCall runs leaseScript for lease and decides the groups; the
// windows' lease left is in d.loc, what they admitted in d.spent.
func (c *Counter) leaseCall(cs []Charge, d *decision) error {
	var calls []scriptCall // one per hash tag in a Cluster; one otherwise
	for j, w := range d.ws {
		if d.loc[j] >= d.demand[j] {
			continue
		}
		ci := 0
		if c.opts.Cluster {
			ci = slices.IndexFunc(calls, func(sc scriptCall) bool { return d.org[sc.ws[0]] == d.org[j] })
		}
		if ci < 0 || ci >= len(calls) {
			ci = len(calls)
			calls = append(calls, scriptCall{args: []any{0}})
		}
		sc := &calls[ci]
		sc.ws = append(sc.ws, j)
		d.call[j] = len(sc.ws)
		sc.keys = append(sc.keys, w.rkey)
		// Kept a minute past its end, so Batons whose clocks are a little
		// apart still find it.
		sc.args = append(sc.args, d.limit[j], w.unsynced, w.length+sweepEvery, d.loc[j], leaseSize(d.limit[j]))
	}
	for ci := range calls {
		sc := &calls[ci]
		sc.args[0] = len(sc.ws)
		for i := 0; i < len(cs); {
			e := group(cs, i)
			if slices.ContainsFunc(cs[i:e], over) {
				i = e
				continue // refused already
			}
			at := len(sc.args)
			sc.args = append(sc.args, 0)
			k := 0
			for x := i; x < e; x++ {
				if j := d.at[x]; j >= 0 && d.call[j] > 0 && slices.Contains(sc.ws, j) {
					sc.args = append(sc.args, d.call[j], cs[x].N)
					sc.charges = append(sc.charges, x)
					k++
				}
			}
			if k == 0 {
				sc.args = sc.args[:at]
			} else {
				sc.args[at] = k
			}
			i = e
		}
	}
	deadline := d.deadline
	if deadline.IsZero() {
		deadline = time.Now().Add(c.opts.MaxWait)
	}
	ctx, cancel := context.WithDeadline(c.ctx, deadline)
	defer cancel()
	if err := c.runCalls(ctx, calls); err != nil {
		return err
	}
	results := make([][]int64, len(calls))
	for ci := range calls {
		res, err := calls[ci].cmd.Int64Slice()
		if err != nil {
			return err
		}
		if len(res) != 2*len(calls[ci].ws)+len(calls[ci].charges) {
			return fmt.Errorf("fleet: lease script answered %v", res)
		}
		results[ci] = res
	}
	// Redis decided; what it granted is this Baton's now, spent by the
	// groups every call admitted and kept as lease otherwise.
	for ci, sc := range calls {
		res := results[ci]
		for n, j := range sc.ws {
			w := d.ws[j]
			if res[2*n] > 0 {
				c.leases.Add(1)
			}
			d.loc[j] += res[2*n]
			w.unsynced = 0
			w.full = res[2*n+1] <= 0
		}
		for n, x := range sc.charges {
			cs[x].Over = cs[x].Over || res[2*len(sc.ws)+n] == 1
		}
	}
	clear(d.avail)
	for i := 0; i < len(cs); {
		e := group(cs, i)
		if !slices.ContainsFunc(cs[i:e], over) {
			for x := i; x < e; x++ {
				if j := d.at[x]; j >= 0 {
					d.spend(j, cs[x].N, false)
				}
			}
		}
		i = e
	}
	return nil
}

// runCalls runs calls, each with its cmd set; the answers are in the cmds.
// One call (the usual) goes without a pipeline: fewer allocations. A
// pipeline's calls go with EVALSHA; those a node answered NOSCRIPT (a new
// or restarted node of a Cluster: each has its own script cache) run again
// with EVAL, which loads the script, and those alone: the others ran, and
// running them again would charge their windows twice.
func (c *Counter) runCalls(ctx context.Context, calls []scriptCall) error {
	if len(calls) == 1 {
		sc := &calls[0]
		sc.cmd = leaseScript.Run(ctx, c.rdb, sc.keys, sc.args...)
		return sc.cmd.Err()
	}
	pipe := c.rdb.Pipeline()
	for ci := range calls {
		sc := &calls[ci]
		sc.cmd = leaseScript.EvalSha(ctx, pipe, sc.keys, sc.args...)
	}
	_, err := pipe.Exec(ctx)
	again := noScript(calls)
	if err == nil || len(again) == 0 {
		return err
	}
	pipe = c.rdb.Pipeline()
	for _, ci := range again {
		sc := &calls[ci]
		sc.cmd = leaseScript.Eval(ctx, pipe, sc.keys, sc.args...)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return err
	}
	// Every call ran once; one that failed otherwise fails the decision
	// when its answer is read.
	return nil
}

// noScript returns the indexes of the calls a node answered NOSCRIPT.
func noScript(calls []scriptCall) []int {
	var again []int
	for ci := range calls {
		if err := calls[ci].cmd.Err(); err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
			again = append(again, ci)
		}
	}
	return again
}

// redisKey is the Redis key of key's window slot, hash-tagged with its
// organization: prefix:q:{org}:key:slot.
func (c *Counter) redisKey(org uint64, slot int64, key []byte) string {
	b := make([]byte, 0, len(c.opts.KeyPrefix)+len(key)+48)
	b = append(b, c.opts.KeyPrefix...)
	b = append(b, ":q:{"...)
	b = strconv.AppendUint(b, org, 10)
	b = append(b, "}:"...)
	b = append(b, key...)
	b = append(b, ':')
	b = strconv.AppendInt(b, slot, 10)
	return string(b)
}

// testAfterLookup, when set by a test, runs between a decision's window
// lookup and its locks.
var testAfterLookup func()

// windows looks up the windows of cs into d.of (per charge) and d.ws
// (distinct), under one lock.
func (c *Counter) windows(cs []Charge, now int64, d *decision) {
	d.ws, d.of = d.ws[:0], resize(d.of, len(cs))
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range cs {
		w := c.window(cs[i].Key, now)
		if d.of[i] = w; w != nil && !slices.Contains(d.ws, w) {
			d.ws = append(d.ws, w)
		}
	}
}

// window returns key's window entry, creating it, or nil at MaxKeys.
// c.mu is held.
func (c *Counter) window(key []byte, now int64) *window {
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
		c.lastID++
		w = &window{slot: -1, id: c.lastID}
		c.m[string(key)] = w
	}
	return w
}

// sweep lets go of the windows that ended by now. A window not started
// yet (slot -1: looked up by a decision that has not locked it) is kept;
// one let go is marked gone, for a decision that looked it up before.
func (c *Counter) sweep(now int64) {
	c.swept = now
	for k, w := range c.m {
		if !w.mu.TryLock() {
			continue // in use (perhaps waiting on Redis): not ended
		}
		ended := w.slot >= 0 && w.end <= now && w.unsynced == 0
		if ended {
			w.gone = true
			delete(c.m, k)
		}
		w.mu.Unlock()
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

// prefetch queues a refill of w's lease when it runs low: under half a
// lease, Redis up and known to have some left, nothing unsynced (the
// decisions' calls add that), no refill in flight. w.mu is held.
func (c *Counter) prefetch(w *window) {
	lease := leaseSize(w.limit)
	if w.refilling || lease < minPrefetch || 2*w.left >= lease || w.full || w.unsynced > 0 || w.slot < 0 || !c.up.Load() {
		return
	}
	select {
	case c.refills <- w:
		w.refilling = true
	default: // the queue is full: the decisions' calls lease meanwhile
	}
}

// refiller refills the queued windows' leases until Close, taking what is
// queued at once into one round trip.
func (c *Counter) refiller() {
	batch := make([]*window, 0, refillBatch)
	r := new(refill)
	for {
		select {
		case <-c.ctx.Done():
			return
		case w := <-c.refills:
			batch = append(batch[:0], w)
		}
	more:
		for len(batch) < refillBatch {
			select {
			case w := <-c.refills:
				batch = append(batch, w)
			default:
				break more
			}
		}
		c.refillAll(batch, r)
	}
}

// refill is the refiller's scratch, kept from one batch to the next.
type refill struct {
	asks    []refillAsk
	calls   []scriptCall
	orgs    []uint64 // per call: its hash tag
	results [][]int64
}

// refillAsk is one window of a refill batch.
type refillAsk struct {
	w        *window
	slot     int64 // when asked
	call, at int   // its call, its key's index in it
}

// call returns a new call of r, reusing an earlier batch's slices.
func (r *refill) call(org uint64) int {
	ci := len(r.calls)
	if ci < cap(r.calls) {
		r.calls = r.calls[:ci+1]
		sc := &r.calls[ci]
		clear(sc.keys)
		clear(sc.args)
		sc.keys, sc.args, sc.cmd = sc.keys[:0], append(sc.args[:0], 0), nil
	} else {
		r.calls = append(r.calls, scriptCall{args: []any{0}})
	}
	r.orgs = append(r.orgs, org)
	return ci
}

// refillAll takes a lease for each window of batch with leaseScript (no
// charges: the script grants up to a lease of what Redis has left), one
// call per hash tag in a Cluster, within MaxWait, and adds it to the
// window's lease unless the window ended meanwhile. Every window's refill
// is done (its waiters let go) when it returns.
func (c *Counter) refillAll(batch []*window, r *refill) {
	r.asks, r.calls, r.orgs = r.asks[:0], r.calls[:0], r.orgs[:0]
	for _, w := range batch {
		w.mu.Lock()
		if w.gone || w.slot < 0 || w.full || w.unsynced > 0 || !c.up.Load() {
			w.refillDone()
			w.mu.Unlock()
			continue
		}
		ci := 0
		if c.opts.Cluster {
			ci = slices.Index(r.orgs, w.org)
		}
		if ci < 0 || ci >= len(r.calls) {
			ci = r.call(w.org)
		}
		sc := &r.calls[ci]
		r.asks = append(r.asks, refillAsk{w: w, slot: w.slot, call: ci, at: len(sc.keys)})
		sc.keys = append(sc.keys, w.rkey)
		sc.args = append(sc.args, w.args...)
		w.mu.Unlock()
	}
	calls := r.calls
	if len(calls) == 0 {
		return
	}
	for ci := range calls {
		calls[ci].args[0] = len(calls[ci].keys)
	}
	ctx, cancel := context.WithTimeout(c.ctx, c.opts.MaxWait)
	err := c.runCalls(ctx, calls)
	cancel()
	r.results = resize(r.results, len(calls))
	results := r.results
	for ci := range calls {
		if err != nil {
			break
		}
		res, rerr := calls[ci].cmd.Int64Slice()
		if rerr == nil && len(res) != 2*len(calls[ci].keys) {
			rerr = fmt.Errorf("fleet: lease script answered %v", res)
		}
		results[ci], err = res, rerr
	}
	for _, a := range r.asks {
		w := a.w
		w.mu.Lock()
		if err == nil && w.slot == a.slot { // not a window that ended meanwhile
			res := results[a.call]
			if g := res[2*a.at]; g > 0 {
				c.leases.Add(1)
				w.left += g
			}
			w.full = res[2*a.at+1] <= 0
		}
		w.refillDone()
		w.mu.Unlock()
	}
	clear(r.asks) // the windows may be let go
	if err != nil && c.ctx.Err() == nil {
		c.lost(err)
	}
}

// refillDone ends w's refill and lets go the decisions waiting for it.
// w.mu is held.
func (w *window) refillDone() {
	w.refilling = false
	if w.refilled != nil {
		close(w.refilled)
		w.refilled = nil
	}
}
