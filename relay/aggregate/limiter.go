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
	Project     uint64 // the organization's id when Scope is ScopeOrganization
	Namespace   string
	Hash        uint64
	Limit       int
	Window      time.Duration
	Granularity time.Duration

	// For a project's configured limit (SetProjectLimits): its id, its
	// scope, and the scope's value (the metric type or MRI for ScopeType
	// and ScopeName, else ""). All "" for the default limit.
	ID, Scope, Value string
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
	Admitted uint64 `json:"admitted"`          // series admitted
	Limited  uint64 `json:"limited"`           // series refused
	Evicted  uint64 `json:"evicted"`           // scopes evicted by MaxScopes
	Passive  uint64 `json:"passive,omitempty"` // series a passive limit would have limited
	Scopes   int    `json:"scopes"`            // scopes tracked
	Bytes    int64  `json:"bytes"`             // estimated memory of the tracked scopes

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

	scopes   map[limitKey]*limitScope
	lru      limitScope               // sentinel: lru.next is the most recently used
	projects map[uint64]projectLimits // SetProjectLimits
	scratch  []target                 // AdmitSeries's targets, under mu
	store    SeriesStore
	bytes    int64
	stats    LimiterStats
}

// limitKey names a scope. The default limit's scopes are (project,
// namespace); a configured limit's add its id, scope and scope value, and
// count in the organization's id for ScopeOrganization.
type limitKey struct {
	project   uint64
	namespace string
	id        string
	scope     string
	value     string
}

// limitSpec is a scope's limit, and the window and granularity the
// Store counts it in (0: the Limiter's window, one granule).
type limitSpec struct {
	limit       int
	window, gra time.Duration
	passive     bool
}

// Scopes of a ProjectLimit (Relay's CardinalityScope,
// docs/relay-protocol.md 6.4).
const (
	ScopeOrganization = "organization" // all projects of the organization share the count
	ScopeProject      = "project"      // per project and namespace
	ScopeType         = "type"         // per metric type, within project and namespace
	ScopeName         = "name"         // per metric name (MRI), within project and namespace
)

// ProjectLimit is one of a project's configured cardinality limits (an
// entry of its config's metrics.cardinalityLimits).
type ProjectLimit struct {
	ID        string
	Namespace string // the namespace it applies to; "" applies to all
	Scope     string // a Scope* constant; "" or unknown is ScopeProject
	Passive   bool   // counted, never rejects (Relay only reports them)
	Limit     int    // distinct series per window; 0 is unlimited
	Window    time.Duration
	// Granularity of the Store's sliding window (0: one granule).
	Granularity time.Duration
}

type projectLimits struct {
	org    uint64
	limits []ProjectLimit
}

type limitScope struct {
	key        limitKey
	prev, next *limitScope
	window     int64
	spec       limitSpec // its limit: the default, or its configured limit's latest
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
		projects:  make(map[uint64]projectLimits),
		store:     o.Store,
	}
	l.lru.next, l.lru.prev = &l.lru, &l.lru
	return l
}

// AdmitSeries reports whether a series (bucket identity) may pass every
// scope deciding it: true if each admitted it before in the current window
// or has room (it is then remembered), false if the caller must drop the
// bucket with outcome cardinality_limited. Its Name (MRI) is what the
// project's type and name scoped limits count by. With a Store it is
// AdmitBatch of one series.
func (l *Limiter) AdmitSeries(se Series) bool {
	if l.store != nil {
		var ok [1]bool
		l.AdmitBatch([]Series{se}, ok[:])
		return ok[0]
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.unlimited() {
		l.stats.Admitted++
		return true
	}
	now := l.now().UnixNano()
	ok := true
	l.scratch = l.targets(se, l.scratch[:0])
	for i := range l.scratch {
		s := l.track(l.scratch[i], now)
		if !l.admitLocal(s, se.Hash) {
			ok = l.reject(s) && ok
		}
	}
	clear(l.scratch) // holds the series' name, maybe part of a large record
	l.count(ok)
	return ok
}

// unlimited reports whether no limit is set at all.
func (l *Limiter) unlimited() bool {
	return l.limit == 0 && len(l.projects) == 0
}

// reject accounts a scope's refusal and reports whether the series may
// still pass: it may if the scope's limit is passive.
func (l *Limiter) reject(s *limitScope) bool {
	if s.spec.passive {
		l.stats.Passive++
		return true
	}
	return false
}

// target is a scope deciding a series, with its configured limit (when
// configured; else the default).
type target struct {
	key        limitKey
	spec       limitSpec
	configured bool
}

// targets appends the scopes deciding se to dst: every configured limit
// of its project whose namespace matches (a series passes only if none
// rejects it; each counts it independently, as Relay's did), else the
// (project, namespace) scope of the default limit.
func (l *Limiter) targets(se Series, dst []target) []target {
	pl := l.projects[se.Project]
	n := len(dst)
	for i := range pl.limits {
		pli := &pl.limits[i]
		if pli.Namespace != "" && pli.Namespace != se.Namespace {
			continue
		}
		k := limitKey{project: se.Project, namespace: se.Namespace, id: pli.ID, scope: ScopeProject}
		switch pli.Scope {
		case ScopeOrganization:
			if pl.org != 0 { // else counted per project
				k.project, k.scope = pl.org, ScopeOrganization
			}
		case ScopeType:
			k.scope, k.value = ScopeType, metricType(se.Name)
		case ScopeName:
			k.scope, k.value = ScopeName, se.Name
		}
		dst = append(dst, target{key: k, configured: true,
			spec: limitSpec{limit: pli.Limit, window: pli.Window, gra: pli.Granularity, passive: pli.Passive}})
	}
	if len(dst) == n {
		dst = append(dst, target{key: limitKey{project: se.Project, namespace: se.Namespace}})
	}
	return dst
}

// metricType is the type of an MRI "<type>:<namespace>/<name>@<unit>".
func metricType(mri string) string {
	if len(mri) >= 2 && mri[1] == ':' {
		return mri[:1]
	}
	return ""
}

// track returns t's scope, tracked and most recently used, with its
// limit and its local set of the window at now.
func (l *Limiter) track(t target, now int64) *limitScope {
	k := t.key
	window := now / l.windowNs
	s := l.scopes[k]
	if s == nil {
		s = l.add(k)
	} else if l.lru.next != s {
		s.unlink()
		l.pushFront(s)
	}
	if t.configured {
		s.spec = t.spec // SetProjectLimits may have changed it
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
		l.bytes -= limitScopeOverhead + old.key.size() + old.set.bytes() + old.cache.bytes()
		l.stats.Evicted++
	}
	k.namespace = strings.Clone(k.namespace) // may be a substring of a large bucket name
	k.value = strings.Clone(k.value)
	s := &limitScope{key: k, spec: limitSpec{limit: l.limit}, window: -1, granule: -1}
	l.scopes[k] = s
	l.pushFront(s)
	l.bytes += limitScopeOverhead + k.size()
	return s
}

// size is the memory of k's strings the scope holds (id and scope are
// shared with the configured limit).
func (k *limitKey) size() int64 { return int64(len(k.namespace) + len(k.value)) }

func (l *Limiter) pushFront(s *limitScope) {
	s.prev, s.next = &l.lru, l.lru.next
	s.next.prev, l.lru.next = s, s
}

func (s *limitScope) unlink() {
	s.prev.next, s.next.prev = s.next, s.prev
	s.prev, s.next = nil, nil
}

// SetProjectLimits sets the configured limits of a project (its config's
// metrics.cardinalityLimits), replacing the previous ones; orgID (0 if
// unknown: organization limits then count per project) is the
// organization its ScopeOrganization limits count in. A namespace
// without a matching limit keeps the default; an empty
// list removes the project's. The caller keeps them bounded (the
// configured projects' limits).
func (l *Limiter) SetProjectLimits(projectID, orgID uint64, limits []ProjectLimit) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(limits) == 0 {
		delete(l.projects, projectID)
	} else {
		cp := make([]ProjectLimit, len(limits))
		for i, pl := range limits {
			pl.ID, pl.Namespace = strings.Clone(pl.ID), strings.Clone(pl.Namespace)
			pl.Limit, pl.Window, pl.Granularity = max(pl.Limit, 0), max(pl.Window, 0), max(pl.Granularity, 0)
			switch pl.Scope {
			case ScopeOrganization, ScopeType, ScopeName:
			default:
				pl.Scope = ScopeProject
			}
			cp[i] = pl
		}
		l.projects[projectID] = projectLimits{org: orgID, limits: cp}
	}
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
