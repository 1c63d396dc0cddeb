package aggregate

import (
	"math/bits"
	"strings"
	"sync"
	"time"
	"unsafe"
)

// Defaults of LimitOptions.
const (
	DefaultLimitWindow = time.Hour
	DefaultMaxScopes   = 10000
)

// LimitOptions configures a Limiter. A zero field selects its default;
// negative values count as zero.
type LimitOptions struct {
	// Limit is the number of distinct bucket identities (KeyHash: name,
	// type and tags, not the timestamp) a (project, namespace) scope may
	// have per window; 0 means unlimited.
	Limit int
	// Window is the length of the fixed windows (default 1h), aligned to
	// multiples of it since the Unix epoch.
	Window time.Duration
	// MaxScopes bounds the number of scopes tracked (default 10000); the
	// least recently used is evicted, forgetting its admissions.
	MaxScopes int
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Store, when set, keeps the admitted series of every scope for a
	// whole fleet (relay/fleet's Redis store); the local sets then cache
	// its answers and decide while it fails. Default nil: local only.
	Store SeriesStore
}

// SeriesCheck asks a SeriesStore to admit one series (bucket identity)
// of a scope under its limit, in a sliding window of Window made of
// granules of Granularity (Relay's cardinality limiter).
type SeriesCheck struct {
	Project     uint64
	Namespace   string
	Hash        uint64
	Limit       int
	Window      time.Duration
	Granularity time.Duration
}

// SeriesStore decides series for the Limiter, fleet-wide. AdmitSeries
// sets ok[i] for checks[i] (len(ok) == len(checks)) at time now in one
// round trip; an error means it could not decide in time, and the Limiter
// decides the whole call locally.
type SeriesStore interface {
	AdmitSeries(now time.Time, checks []SeriesCheck, ok []bool) error
}

// LimiterStats is a snapshot of a Limiter's counters.
type LimiterStats struct {
	Admitted uint64 `json:"admitted"` // Admit calls that returned true
	Limited  uint64 `json:"limited"`  // Admit calls that returned false
	Evicted  uint64 `json:"evicted"`  // scopes evicted by MaxScopes
	Scopes   int    `json:"scopes"`   // scopes tracked
	Bytes    int64  `json:"bytes"`    // estimated memory of the tracked scopes

	// With a Store: series answered from the local cache of the current
	// granule, series sent to the store, and series decided locally
	// because the store failed (Fallbacks).
	Cached    uint64 `json:"cached,omitempty"`
	Stored    uint64 `json:"stored,omitempty"`
	Fallbacks uint64 `json:"fallbacks,omitempty"`
}

// Limiter bounds the cardinality of metric buckets per (project, namespace)
// scope and window. See the package doc.
type Limiter struct {
	mu        sync.Mutex
	limit     int
	windowNs  int64
	maxScopes int
	now       func() time.Time

	scopes    map[limitKey]*limitScope
	lru       limitScope // sentinel: lru.next is the most recently used
	overrides map[limitKey]limitSpec
	store     SeriesStore
	gen       uint64 // bumped by SetProjectLimit; scopes re-resolve their limit
	bytes     int64
	stats     LimiterStats
}

type limitKey struct {
	project   uint64
	namespace string
}

// limitSpec is a scope's limit, and the window and granularity the
// Store counts it in (0: the Limiter's window, one granule).
type limitSpec struct {
	limit       int
	window, gra time.Duration
}

type limitScope struct {
	key        limitKey
	prev, next *limitScope
	window     int64
	spec       limitSpec // its limit, resolved at gen
	gen        uint64
	set        hashSet

	// With a Store: the series it admitted in the current granule, which
	// stay admitted until the granule ends.
	granule int64
	cache   hashSet
}

// limitScopeOverhead is a scope's struct, map slot and key header.
const limitScopeOverhead = int64(unsafe.Sizeof(limitScope{})) + 48

// NewLimiter returns an empty Limiter.
func NewLimiter(o LimitOptions) *Limiter {
	if o.Window <= 0 {
		o.Window = DefaultLimitWindow
	}
	if o.MaxScopes <= 0 {
		o.MaxScopes = DefaultMaxScopes
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	l := &Limiter{
		limit:     max(o.Limit, 0),
		windowNs:  int64(o.Window),
		maxScopes: o.MaxScopes,
		now:       o.Now,
		scopes:    make(map[limitKey]*limitScope),
		overrides: make(map[limitKey]limitSpec),
		store:     o.Store,
	}
	l.lru.next, l.lru.prev = &l.lru, &l.lru
	return l
}

// Admit reports whether a bucket with identity keyHash may pass for the
// scope (projectID, namespace): true if it was admitted before in the
// current window or the scope has room (it is then remembered), false if
// the caller must drop the bucket with outcome cardinality_limited. With a
// Store it is AdmitBatch of one series.
func (l *Limiter) Admit(projectID uint64, namespace string, keyHash uint64) bool {
	if l.store != nil {
		var ok [1]bool
		l.AdmitBatch([]Series{{Project: projectID, Namespace: namespace, Hash: keyHash}}, ok[:])
		return ok[0]
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.limit == 0 && len(l.overrides) == 0 {
		l.stats.Admitted++
		return true
	}
	s := l.scope(limitKey{projectID, namespace}, l.now().UnixNano())
	ok := l.admitLocal(s, keyHash)
	l.count(ok)
	return ok
}

// scope returns k's scope, tracked and most recently used, with its limit
// resolved and its local set of the window at now.
func (l *Limiter) scope(k limitKey, now int64) *limitScope {
	window := now / l.windowNs
	s := l.scopes[k]
	if s == nil {
		s = l.add(k)
	} else if l.lru.next != s {
		s.unlink()
		l.pushFront(s)
	}
	if s.gen != l.gen {
		s.spec, s.gen = l.resolve(k), l.gen
	}
	if s.window != window {
		l.bytes -= s.set.bytes()
		s.set = hashSet{}
		s.window = window
	}
	return s
}

// admitLocal decides keyHash with the scope's local set.
func (l *Limiter) admitLocal(s *limitScope, keyHash uint64) bool {
	if s.spec.limit == 0 {
		return true
	}
	before := s.set.bytes()
	ok := s.set.admit(keyHash, s.spec.limit)
	l.bytes += s.set.bytes() - before
	return ok
}

func (l *Limiter) count(ok bool) {
	if ok {
		l.stats.Admitted++
	} else {
		l.stats.Limited++
	}
}

// add tracks a new scope, evicting the least recently used one if full.
func (l *Limiter) add(k limitKey) *limitScope {
	if len(l.scopes) >= l.maxScopes {
		old := l.lru.prev
		old.unlink()
		delete(l.scopes, old.key)
		l.bytes -= limitScopeOverhead + int64(len(old.key.namespace)) + old.set.bytes() + old.cache.bytes()
		l.stats.Evicted++
	}
	k.namespace = strings.Clone(k.namespace) // may be a substring of a large bucket name
	spec := l.resolve(k)
	s := &limitScope{key: k, gen: l.gen, spec: spec, window: -1, granule: -1}
	l.scopes[k] = s
	l.pushFront(s)
	l.bytes += limitScopeOverhead + int64(len(k.namespace))
	return s
}

func (l *Limiter) pushFront(s *limitScope) {
	s.prev, s.next = &l.lru, l.lru.next
	s.next.prev, l.lru.next = s, s
}

func (s *limitScope) unlink() {
	s.prev.next, s.next.prev = s.next, s.prev
	s.prev, s.next = nil, nil
}

// resolve returns the limit of a scope: its own override, else its
// project's, else the default.
func (l *Limiter) resolve(k limitKey) limitSpec {
	if v, ok := l.overrides[k]; ok {
		return v
	}
	if v, ok := l.overrides[limitKey{project: k.project}]; ok {
		return v
	}
	return limitSpec{limit: l.limit}
}

// SetProjectLimit overrides the limit of (projectID, namespace), or of every
// namespace of the project without its own override when namespace is "".
// A limit of 0 means unlimited; a negative limit removes the override.
// Lowering a limit below what a scope already admitted keeps those
// admissions until the window ends. The caller keeps the overrides bounded
// (one per configured project).
func (l *Limiter) SetProjectLimit(projectID uint64, namespace string, limit int) {
	l.SetProjectWindow(projectID, namespace, limit, 0, 0)
}

// SetProjectWindow is SetProjectLimit with the sliding window a Store
// counts the scope in: window and granularity (Relay's windowSeconds and
// granularitySeconds; 0 selects LimitOptions.Window and one granule). The
// local sets keep their fixed window of LimitOptions.Window.
func (l *Limiter) SetProjectWindow(projectID uint64, namespace string, limit int, window, granularity time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	k := limitKey{projectID, strings.Clone(namespace)}
	if limit < 0 {
		delete(l.overrides, k)
	} else {
		l.overrides[k] = limitSpec{limit: limit, window: max(window, 0), gra: max(granularity, 0)}
	}
	l.gen++
}

// Stats returns a snapshot of the counters.
func (l *Limiter) Stats() LimiterStats {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.stats
	s.Scopes, s.Bytes = len(l.scopes), l.bytes
	return s
}

// Namespace returns the namespace of an MRI "<type>:<namespace>/<name>@<unit>",
// or "custom", Relay's default, when the name has none.
func Namespace(mri string) string {
	if len(mri) >= 2 && mri[1] == ':' {
		mri = mri[2:]
	}
	if at := strings.IndexByte(mri, '@'); at >= 0 {
		mri = mri[:at]
	}
	if slash := strings.IndexByte(mri, '/'); slash >= 0 {
		return mri[:slash]
	}
	return "custom"
}

// hashSet is an open-addressing set of uint64 (linear probing, load ≤ 3/4,
// no deletion). Zero marks an empty slot, so the hash 0 is kept aside.
type hashSet struct {
	slots []uint64
	n     int
	shift uint8 // 64 - log2(len(slots))
	zero  bool
}

func (s *hashSet) bytes() int64 { return int64(len(s.slots)) * 8 }

// admit reports whether h is in the set, adding it if the set has fewer
// than limit members.
func (s *hashSet) admit(h uint64, limit int) bool {
	if h == 0 {
		if !s.zero && s.n < limit {
			s.zero = true
			s.n++
		}
		return s.zero
	}
	if len(s.slots) > 0 {
		i, found := s.find(h)
		if found {
			return true
		}
		if s.n >= limit {
			return false
		}
		if 4*(s.n+1) <= 3*len(s.slots) {
			s.slots[i] = h
			s.n++
			return true
		}
	} else if limit <= 0 {
		return false
	}
	s.grow()
	i, _ := s.find(h)
	s.slots[i] = h
	s.n++
	return true
}

// find returns h's slot, or the empty slot where it would go.
func (s *hashSet) find(h uint64) (int, bool) {
	mask := len(s.slots) - 1
	// Fibonacci hashing spreads FNV's weak low bits over the table.
	for i := int((h * 0x9e3779b97f4a7c15) >> s.shift); ; i = (i + 1) & mask {
		switch s.slots[i] {
		case h:
			return i, true
		case 0:
			return i, false
		}
	}
}

func (s *hashSet) grow() {
	n := max(2*len(s.slots), 16)
	old := s.slots
	s.slots = make([]uint64, n)
	s.shift = uint8(64 - bits.TrailingZeros(uint(n)))
	for _, h := range old {
		if h != 0 {
			i, _ := s.find(h)
			s.slots[i] = h
		}
	}
}
