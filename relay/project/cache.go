package project

import (
	"context"
	"encoding/json"
	"errors"
	"hash/maphash"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"go.opentelemetry.io/otel/metric"

	lru "github.com/hashicorp/golang-lru/v2"
)

// Request is the body of POST /api/0/relays/projectconfigs/?version=3.
type Request struct {
	PublicKeys []string  `json:"publicKeys"`
	Revisions  []*string `json:"revisions,omitempty"`
	FullConfig bool      `json:"fullConfig,omitempty"`
	NoCache    bool      `json:"noCache,omitempty"`
	Global     bool      `json:"global,omitempty"`
	// Parts is Baton's extension: only these parts are wanted. A real
	// Sentry ignores it and sends everything.
	Parts []string `json:"parts,omitempty"`
}

// Response is the answer to a Request.
type Response struct {
	Configs      map[string]json.RawMessage `json:"configs"`
	Pending      []string                   `json:"pending,omitempty"`
	Unchanged    []string                   `json:"unchanged,omitempty"`
	Global       json.RawMessage            `json:"global,omitempty"`
	GlobalStatus string                     `json:"globalStatus,omitempty"`
	// Sources names, per key of Configs, a source other than the upstream
	// the config came from (Baton's own, never on the wire): ExpireSource
	// finds the entries by it.
	Sources map[string]string `json:"-"`
}

// Fetcher asks the upstream for project configs.
type Fetcher func(ctx context.Context, req *Request) (*Response, error)

// Defaults of Options, which are Relay's. Baton's config (managed.cache and
// managed.fetch) has the same; relay's TestDefaultsAgree checks it.
const (
	DefaultMaxProjects   = 10000
	DefaultExpiry        = 300 * time.Second
	DefaultGrace         = 120 * time.Second
	DefaultMissExpiry    = 60 * time.Second
	DefaultBatchSize     = 500
	DefaultBatchInterval = 100 * time.Millisecond
	DefaultConcurrency   = 5
	DefaultTimeout       = 30 * time.Second
)

// Options configures a Cache. Zero values select the defaults.
type Options struct {
	// MaxProjects bounds the cached configs, and separately the cached
	// misses (pending and unknown keys). Default DefaultMaxProjects.
	MaxProjects int
	// Expiry is the age at which a config is refreshed. Default
	// DefaultExpiry.
	Expiry time.Duration
	// Grace is how long an expired config keeps serving while it
	// refreshes. Default DefaultGrace; negative is none.
	Grace time.Duration
	// MissExpiry is how long an unknown key is remembered. Default
	// DefaultMissExpiry.
	MissExpiry time.Duration
	// BatchSize is the most keys per request. Default DefaultBatchSize.
	BatchSize int
	// BatchInterval is how long misses are collected into one request.
	// Default DefaultBatchInterval.
	BatchInterval time.Duration
	// Concurrency is the most requests in flight. Default
	// DefaultConcurrency.
	Concurrency int
	// Timeout bounds one request, and a lookup the upstream keeps
	// answering pending: a key still without a config this long after it
	// was first asked for is given up (GaveUp), as Relay's query_timeout
	// ends its fetch. Default DefaultTimeout.
	Timeout time.Duration
	// MaxQueued bounds the keys waiting to be fetched (the outstanding
	// lookups); past it a new miss is not queued and Get answers Busy.
	// Default 4×BatchSize×Concurrency.
	MaxQueued int
	// Parts, when not zero, is sent as the parts extension.
	Parts PartSet
	// Fetch performs a request. Required.
	Fetch Fetcher
	// Logger receives one line per broken part per revision, and fetch
	// failures. Default slog.Default().
	Logger *slog.Logger
	// Now returns the current time. Default time.Now.
	Now func() time.Time
	// MeterProvider takes the cache's instruments (lookups, evictions,
	// fetch latency). Default: the OTel API's no-op provider.
	MeterProvider metric.MeterProvider
}

func (o Options) withDefaults() Options {
	def := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	if o.MaxProjects <= 0 {
		o.MaxProjects = DefaultMaxProjects
	}
	def(&o.Expiry, DefaultExpiry)
	if o.Grace == 0 {
		o.Grace = DefaultGrace
	}
	o.Grace = max(o.Grace, 0)
	def(&o.MissExpiry, DefaultMissExpiry)
	def(&o.BatchInterval, DefaultBatchInterval)
	def(&o.Timeout, DefaultTimeout)
	if o.BatchSize <= 0 {
		o.BatchSize = DefaultBatchSize
	}
	if o.Concurrency <= 0 {
		o.Concurrency = DefaultConcurrency
	}
	if o.MaxQueued <= 0 {
		o.MaxQueued = 4 * o.BatchSize * o.Concurrency
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// Status is what the cache knows about a key.
type Status uint8

const (
	// Pending: no usable config yet; a fetch is queued or in flight.
	Pending Status = iota
	// Ready: State is the project's config (possibly stale, within grace).
	Ready
	// Unknown: the upstream said the key does not exist; remembered for
	// MissExpiry.
	Unknown
	// Busy: no usable config, and the lookup could not be queued because
	// MaxQueued lookups are outstanding; the caller sheds the request
	// (known keys are unaffected).
	Busy
)

func (s Status) String() string {
	return [...]string{"pending", "ready", "unknown", "busy"}[s]
}

// ErrNoFetcher is returned by New without Options.Fetch.
var ErrNoFetcher = errors.New("project: Options.Fetch is required")

const shards = 32

// Cache holds project configs by public key, fetched on demand in batches.
//
// Get never blocks on the network and locks only one of 32 shards, so
// concurrent requests for different projects rarely meet. Configs and
// misses live in separate LRUs: a flood of random keys evicts other
// misses, never a real project's config.
type Cache struct {
	opts   Options
	seed   maphash.Seed
	ready  [shards]*lru.Cache[string, *entry]
	misses [shards]*lru.Cache[string, *miss]
	queue  chan string
	global atomic.Pointer[json.RawMessage]
	// globalFilters are the generic inbound filters of global.
	globalFilters atomic.Pointer[GenericFilters]

	mu      sync.Mutex
	changed chan struct{} // closed and replaced when a fetch completes

	stats struct {
		requests, failures, fetched, unknown, pending, unchanged, dropped, broken atomic.Int64
	}
	tm *instruments
}

type entry struct {
	state      *State
	fetchedAt  time.Time
	expiry     time.Duration // Options.Expiry, or MissExpiry for a disabled project (ttl)
	refreshing atomic.Bool   // a refresh is queued or in flight
	retryAt    atomic.Int64  // unix nanos: no refresh before (after a failure)
	tries      atomic.Int32
	touched    atomic.Int64 // unix second of the last recency update
	source     string       // Response.Sources: "" for the upstream
	stale      atomic.Bool  // Invalidate or ExpireSource: refresh on use, serve through grace
}

type miss struct {
	unknown bool      // the upstream has no such key
	retryAt time.Time // when to ask again
	tries   int
	since   time.Time // first asked for; zero until the upstream said pending
}

// New returns a cache. Run must be running for misses to be fetched.
func New(opts Options) (*Cache, error) {
	if opts.Fetch == nil {
		return nil, ErrNoFetcher
	}
	opts = opts.withDefaults()
	in, err := newInstruments(opts.MeterProvider)
	if err != nil {
		return nil, err
	}
	c := &Cache{opts: opts, tm: in, seed: maphash.MakeSeed(), queue: make(chan string, opts.MaxQueued), changed: make(chan struct{})}
	per := max(opts.MaxProjects/shards, 1)
	for i := range shards {
		c.ready[i], _ = lru.New[string, *entry](per)
		c.misses[i], _ = lru.New[string, *miss](per)
	}
	return c, nil
}

func (c *Cache) shard(key string) int { return int(maphash.String(c.seed, key) % shards) }

// GetBytes is Get for a key in a byte slice: a cached config is found
// without allocating; only a miss copies the key.
func (c *Cache) GetBytes(key []byte) (*State, Status) {
	if len(key) == 0 {
		return nil, Unknown
	}
	k := unsafe.String(&key[0], len(key)) // not retained: only looked up
	now := c.opts.Now()
	if e, ok := c.peek(c.shard(k), k, now); ok && now.Sub(e.fetchedAt) < e.expiry && !e.stale.Load() {
		c.tm.lookup(true)
		return e.state, Ready
	}
	return c.Get(string(key))
}

// Get returns what the cache knows about key and, when the config is
// missing or stale, queues a fetch. It never waits for the network.
func (c *Cache) Get(key string) (*State, Status) {
	st, status := c.get(key)
	c.tm.lookup(status == Ready)
	return st, status
}

func (c *Cache) get(key string) (*State, Status) {
	now := c.opts.Now()
	sh := c.shard(key)
	if e, ok := c.peek(sh, key, now); ok {
		age := now.Sub(e.fetchedAt)
		if age < e.expiry && !e.stale.Load() {
			return e.state, Ready
		}
		if now.UnixNano() >= e.retryAt.Load() && e.refreshing.CompareAndSwap(false, true) && !c.enqueue(key) {
			e.refreshing.Store(false)
		}
		if age < e.expiry+c.opts.Grace {
			return e.state, Ready
		}
		return nil, Pending
	}
	m, ok := c.misses[sh].Get(key)
	if !ok {
		if prev, found, _ := c.misses[sh].PeekOrAdd(key, &miss{retryAt: now.Add(time.Hour)}); found {
			return nil, prev.status()
		}
		if !c.enqueue(key) {
			c.misses[sh].Remove(key)
			return nil, Busy
		}
		return nil, Pending
	}
	if now.Before(m.retryAt) {
		return nil, m.status()
	}
	// Due again: one caller swaps in a fresh miss and queues the fetch. An
	// unknown key stays unknown while it is asked again.
	next := &miss{unknown: m.unknown, tries: m.tries, since: m.since, retryAt: now.Add(time.Hour)}
	if c.misses[sh].Contains(key) && c.swapMiss(sh, key, m, next) && !c.enqueue(key) {
		c.misses[sh].Remove(key)
		if !m.unknown {
			return nil, Busy
		}
	}
	return nil, m.status()
}

// peek looks key up under the shard's read lock; it refreshes the key's
// recency (an exclusive lock) at most once a second per entry, so readers
// of a hot project do not serialize.
func (c *Cache) peek(sh int, key string, now time.Time) (*entry, bool) {
	e, ok := c.ready[sh].Peek(key)
	if ok && now.Unix() != e.touched.Load() {
		e.touched.Store(now.Unix())
		c.ready[sh].Get(key)
	}
	return e, ok
}

func (m *miss) status() Status {
	if m.unknown {
		return Unknown
	}
	return Pending
}

// swapMiss replaces old with next if old is still the shard's value.
func (c *Cache) swapMiss(sh int, key string, old, next *miss) bool {
	c.mu.Lock() // rare: only when a miss is due again
	defer c.mu.Unlock()
	if cur, ok := c.misses[sh].Peek(key); !ok || cur != old {
		return false
	}
	c.misses[sh].Add(key, next)
	return true
}

func (c *Cache) enqueue(key string) bool {
	select {
	case c.queue <- key:
		return true
	default:
		c.stats.dropped.Add(1)
		return false
	}
}

// Changed returns a channel closed when the next fetch completes: callers
// waiting for configs select on it rather than polling.
func (c *Cache) Changed() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.changed
}

func (c *Cache) notify() {
	c.mu.Lock()
	close(c.changed)
	c.changed = make(chan struct{})
	c.mu.Unlock()
}

// Global returns the last global config the upstream sent, or nil.
func (c *Cache) Global() json.RawMessage {
	if g := c.global.Load(); g != nil {
		return *g
	}
	return nil
}

// GlobalFilters returns the generic inbound filters of the last global
// config, or nil.
func (c *Cache) GlobalFilters() *GenericFilters { return c.globalFilters.Load() }

// Run fetches queued keys until ctx is done. One goroutine runs it; it
// starts up to Concurrency fetches at a time and waits for them on return.
func (c *Cache) Run(ctx context.Context) {
	sem := make(chan struct{}, c.opts.Concurrency)
	var wg sync.WaitGroup
	defer wg.Wait()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	var batch []string
	inBatch := map[string]bool{}
	flush := func() {
		if len(batch) == 0 {
			return
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return
		}
		keys := batch
		batch, inBatch = nil, map[string]bool{}
		wg.Go(func() {
			defer func() { <-sem }()
			c.fetch(ctx, keys)
		})
	}
	for {
		select {
		case <-ctx.Done():
			return
		case key := <-c.queue:
			if inBatch[key] {
				continue
			}
			if len(batch) == 0 {
				timer.Reset(c.opts.BatchInterval)
			}
			inBatch[key] = true
			batch = append(batch, key)
			if len(batch) >= c.opts.BatchSize {
				timer.Stop()
				flush()
			}
		case <-timer.C:
			flush()
		}
	}
}

// fetch asks the upstream for keys and stores the answers.
func (c *Cache) fetch(ctx context.Context, keys []string) {
	defer c.notify()
	req := &Request{PublicKeys: keys, Revisions: make([]*string, len(keys)), Global: true}
	for i, k := range keys {
		if e, ok := c.ready[c.shard(k)].Peek(k); ok && e.state.Rev != "" {
			rev := e.state.Rev
			req.Revisions[i] = &rev
		}
	}
	if c.opts.Parts != 0 {
		req.Parts = c.opts.Parts.Names()
	}
	c.stats.requests.Add(1)
	fctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	started := time.Now()
	resp, err := c.opts.Fetch(fctx, req)
	cancel()
	if err == nil && resp == nil {
		err = errors.New("project: fetcher returned no response")
	}
	c.tm.fetched(time.Since(started).Seconds(), err != nil)
	now := c.opts.Now()
	if err != nil {
		c.stats.failures.Add(1)
		if ctx.Err() == nil {
			c.opts.Logger.Warn("project config fetch failed; configs keep serving through grace, new projects wait", "keys", len(keys), "err", err)
		}
		for _, k := range keys {
			c.retryLater(k, now, false)
		}
		return
	}
	if len(resp.Global) > 0 && string(resp.Global) != "null" {
		g := resp.Global
		c.global.Store(&g)
		if gf, err := ParseGlobalFilters(g); err != nil {
			c.opts.Logger.Warn("global config: generic filters unusable; keeping the previous ones", "err", err)
		} else {
			c.globalFilters.Store(gf)
		}
	}
	done := make(map[string]bool, len(keys))
	for k, raw := range resp.Configs {
		done[k] = true
		c.store(k, raw, now, resp.Sources[k])
	}
	for _, k := range resp.Unchanged {
		done[k] = true
		c.stats.unchanged.Add(1)
		sh := c.shard(k)
		if e, ok := c.ready[sh].Peek(k); ok {
			if c.ready[sh].Add(k, &entry{state: e.state, fetchedAt: now, expiry: e.expiry, source: e.source}) {
				c.tm.evicted()
			}
		}
	}
	for _, k := range keys {
		if !done[k] { // pending, or not answered at all: ask again soon
			c.stats.pending.Add(1)
			c.retryLater(k, now, true)
		}
	}
}

// store records one answered key.
func (c *Cache) store(key string, raw json.RawMessage, now time.Time, source string) {
	sh := c.shard(key)
	var st *State
	if len(raw) > 0 && string(raw) != "null" {
		var err error
		if st, err = DecodeState(raw); err != nil {
			// A config Baton cannot read is a failed fetch, not an unknown
			// key: the last good config keeps serving, or envelopes wait.
			c.opts.Logger.Warn("project config unusable; treated as a failed fetch", "key", key, "err", err)
			c.stats.failures.Add(1)
			c.retryLater(key, now, false)
			return
		}
	}
	if st == nil {
		c.stats.unknown.Add(1)
		c.ready[sh].Remove(key)
		c.misses[sh].Add(key, &miss{unknown: true, retryAt: now.Add(c.opts.MissExpiry)})
		return
	}
	c.stats.fetched.Add(1)
	if len(st.Broken) > 0 {
		c.stats.broken.Add(1)
		// Logged once per revision: an unchanged config is not stored again.
		if prev, ok := c.ready[sh].Peek(key); !ok || prev.state.Rev != st.Rev || st.Rev == "" {
			for p, why := range st.Broken {
				c.opts.Logger.Warn("project config part broken; its features are off for this revision",
					"project", st.ProjectID, "key", key, "rev", st.Rev, "part", p.String(), "err", why)
			}
		}
	}
	if c.ready[sh].Add(key, &entry{state: st, fetchedAt: now, expiry: c.ttl(st), source: source}) {
		c.tm.evicted()
	}
	c.misses[sh].Remove(key)
}

// Invalidate makes key's config due at once, as when its source announces a
// change: a cached config is refetched now and serves (within its grace)
// until the answer is in; a cached miss is forgotten and asked again. A key
// the cache does not hold is left alone.
func (c *Cache) Invalidate(key string) {
	sh := c.shard(key)
	if e, ok := c.ready[sh].Peek(key); ok {
		e.retryAt.Store(0)
		e.stale.Store(true)
		// Queued even when a refresh is in flight: that one may carry
		// what was there before the change.
		e.refreshing.Store(true)
		if !c.enqueue(key) {
			e.refreshing.Store(false) // the next Get queues it
		}
		return
	}
	if c.misses[sh].Contains(key) {
		c.misses[sh].Remove(key)
		c.get(key) // queues the fetch
	}
}

// ExpireSource makes every config that came from source due: each is
// refreshed when next used (serving through its grace meanwhile), and
// returns how many. For a source whose change notifications were lost.
func (c *Cache) ExpireSource(source string) int {
	n := 0
	for sh := range shards {
		for _, k := range c.ready[sh].Keys() {
			if e, ok := c.ready[sh].Peek(k); ok && e.source == source && !e.stale.Swap(true) {
				n++
			}
		}
	}
	return n
}

// ttl is how long st is used before it is refreshed: as in Relay, a
// disabled project is refreshed after MissExpiry, like an unknown key;
// an enabled one after Expiry.
func (c *Cache) ttl(st *State) time.Duration {
	if st.Disabled {
		return c.opts.MissExpiry
	}
	return c.opts.Expiry
}

// retryLater keeps key due for another fetch after a backoff doubling from
// 1s to 60s, whether the upstream said it is computing the config
// (pending) or the fetch failed. A stale config keeps serving until its
// grace runs out.
func (c *Cache) retryLater(key string, now time.Time, pending bool) {
	sh := c.shard(key)
	if e, ok := c.ready[sh].Peek(key); ok {
		tries := int(e.tries.Add(1))
		e.retryAt.Store(now.Add(retryDelay(tries - 1)).UnixNano())
		e.refreshing.Store(false)
		return
	}
	m, ok := c.misses[sh].Peek(key)
	if !ok {
		m = &miss{}
	}
	since := m.since
	if pending && since.IsZero() {
		since = now
	}
	c.misses[sh].Add(key, &miss{unknown: m.unknown, tries: m.tries + 1, since: since, retryAt: now.Add(retryDelay(m.tries))})
}

// GaveUp reports whether key has no config and the upstream has answered it
// pending for Options.Timeout: its waiting envelopes are given up (Relay
// drops them as project_state). The key keeps being asked for, with
// backoff, and recovers when a config comes.
func (c *Cache) GaveUp(key []byte) bool {
	m, ok := c.misses[c.shard(string(key))].Peek(string(key))
	return ok && !m.unknown && !m.since.IsZero() && c.opts.Now().Sub(m.since) >= c.opts.Timeout
}

// Retry backoff: the first retry after pendingRetry, doubling up to
// maxRetry (Relay's http.max_retry_interval default), for pending answers
// and failures alike.
const (
	pendingRetry = time.Second
	maxRetry     = 60 * time.Second
)

func retryDelay(tries int) time.Duration {
	return min(pendingRetry<<min(tries, 6), maxRetry)
}

// Stats are the cache's counters.
type Stats struct {
	Projects  int   `json:"projects"` // configs cached
	Misses    int   `json:"misses"`   // keys cached as pending or unknown
	Requests  int64 `json:"requests"` // fetch requests sent
	Failures  int64 `json:"failures"` // failed fetches (and configs that did not decode)
	Fetched   int64 `json:"fetched"`
	Unknown   int64 `json:"unknown"`
	Pending   int64 `json:"pending"`
	Unchanged int64 `json:"unchanged"`
	Broken    int64 `json:"broken"`  // fetched configs with a broken part
	Dropped   int64 `json:"dropped"` // misses not queued: lookups at their cap (Busy)
}

// Stats returns the cache's counters.
func (c *Cache) Stats() Stats {
	s := Stats{
		Requests: c.stats.requests.Load(), Failures: c.stats.failures.Load(),
		Fetched: c.stats.fetched.Load(), Unknown: c.stats.unknown.Load(),
		Pending: c.stats.pending.Load(), Unchanged: c.stats.unchanged.Load(),
		Broken: c.stats.broken.Load(), Dropped: c.stats.dropped.Load(),
	}
	for i := range shards {
		s.Projects += c.ready[i].Len()
		s.Misses += c.misses[i].Len()
	}
	return s
}

// Answer builds the response to a downstream relay's request from the
// cache, queueing fetches for what it does not have: those keys are
// reported pending, and the downstream asks again. view, when not nil, is
// applied to each cached state before it is compared and served (this
// Baton's own additions, policy.Projects.View).
func (c *Cache) Answer(req *Request, view func(*State) *State) *Response {
	parts := AllParts
	if len(req.Parts) > 0 {
		parts = 0
		for _, name := range req.Parts {
			if p, ok := ParsePart(name); ok {
				parts = parts.With(p)
			}
		}
		parts = parts.With(PartKeys)
	}
	resp := &Response{Configs: make(map[string]json.RawMessage, len(req.PublicKeys))}
	for i, key := range req.PublicKeys {
		st, status := c.Get(key)
		switch status {
		case Ready:
			if view != nil {
				st = view(st)
			}
			if i < len(req.Revisions) && req.Revisions[i] != nil && st.Rev != "" && *req.Revisions[i] == st.Rev {
				resp.Unchanged = append(resp.Unchanged, key)
				continue
			}
			resp.Configs[key] = st.AppendJSON(nil, parts)
		case Unknown:
			resp.Configs[key] = json.RawMessage("null")
		default:
			resp.Pending = append(resp.Pending, key)
		}
	}
	if req.Global {
		resp.Global, resp.GlobalStatus = c.Global(), "ready"
		if resp.Global == nil {
			resp.Global, resp.GlobalStatus = json.RawMessage("{}"), "pending"
		}
	}
	return resp
}
