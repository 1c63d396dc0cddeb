package policy

import (
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/baton-relay/baton/envelope"
	"github.com/baton-relay/baton/relay/outcome"
)

// UpstreamLimit is one rate limit the upstream answered with a 429, as the
// forwarder parsed it from X-Sentry-Rate-Limits (or Retry-After alone).
type UpstreamLimit struct {
	RetryAfter time.Duration
	// Categories are data category names; empty means all categories.
	// Names Baton does not know are ignored, so a limit naming only
	// unknown categories applies to nothing (as in Relay).
	Categories []string
	// Scope is organization, project, key or global; anything else is
	// the most specific scope, key (as Relay's QuotaScope::Unknown).
	Scope  string
	Reason string
	// Namespaces limit metric buckets of these namespaces only. The edge
	// does not read metric namespaces, so such a limit is not cached.
	Namespaces []string
}

// Scoping names what a throttled message belonged to: the scopes a limit
// it brought back applies to. OrganizationID is 0 when not known.
type Scoping struct {
	OrganizationID uint64
	ProjectID      uint64
	PublicKey      string
}

// MaxUpstreamScopes bounds the scopes (organizations, projects, keys, and
// global) UpstreamLimits holds limits for at once, and
// maxLimitsPerScope the distinct limits (by categories) of one scope: at
// most 4096 × 8 limits of ~100 bytes, about 3 MiB. A limit that finds the
// cache full after expired ones were let go is not cached: the upstream
// keeps refusing that data and the forwarder keeps waiting, as without
// the cache.
const (
	MaxUpstreamScopes = 4096
	maxLimitsPerScope = 8
)

// UpstreamLimits caches the rate limits the upstream answered for a
// scoping until they expire, so the door refuses data the upstream would
// refuse instead of buffering it (Relay's CachedRateLimits, kept per
// scope rather than per project key: a project's limit learned through
// one key applies to all its keys). It is safe for concurrent use; a
// lookup takes no lock and allocates nothing while no limit is active.
type UpstreamLimits struct {
	now func() time.Time
	max int // scopes; 0: MaxUpstreamScopes

	// active is the unix nanosecond the last cached limit ends: a lookup
	// after it has nothing to find.
	active atomic.Int64

	mu      sync.RWMutex
	global  scopeLimits
	orgs    map[uint64]*scopeLimits
	prjs    map[uint64]*scopeLimits
	keys    map[string]*scopeLimits
	nscopes int
	swept   int64
}

// cachedLimit is one cached limit: the categories it covers (a bit per
// envelope.Category; 0 is all), how it is reported, and when it ends.
type cachedLimit struct {
	cats   uint64
	names  string // the categories as the header lists them
	scope  string // the scope name reported
	reason string
	until  int64 // unix nanoseconds
}

type scopeLimits struct {
	limits []cachedLimit
}

// NewUpstreamLimits returns an empty cache reading the clock of opts.
func NewUpstreamLimits(opts Options) *UpstreamLimits {
	return &UpstreamLimits{now: opts.withDefaults().Now}
}

// Record caches the limits of a 429 the upstream answered for a message of
// sc. An organization limit is cached for sc's organization when it is
// known, else for its project (narrower: Baton does not know the other
// projects of the organization).
func (u *UpstreamLimits) Record(sc Scoping, limits []UpstreamLimit) {
	if u == nil || len(limits) == 0 {
		return
	}
	now := u.now().UnixNano()
	u.mu.Lock()
	defer u.mu.Unlock()
	if now-u.swept >= int64(time.Minute) {
		u.sweep(now)
	}
	for i := range limits {
		l := &limits[i]
		if len(l.Namespaces) > 0 || l.RetryAfter <= 0 {
			continue
		}
		cats, names, ok := categoryMask(l.Categories)
		if !ok {
			continue
		}
		c := cachedLimit{cats: cats, names: names, reason: l.Reason, until: now + int64(l.RetryAfter)}
		var s *scopeLimits
		switch l.Scope {
		case "global":
			c.scope, s = "global", &u.global
		case "organization":
			c.scope = "organization"
			if sc.OrganizationID != 0 {
				s = u.scope(&u.orgs, sc.OrganizationID, now)
			} else {
				s = u.scope(&u.prjs, sc.ProjectID, now)
			}
		case "project":
			c.scope, s = "project", u.scope(&u.prjs, sc.ProjectID, now)
		default:
			c.scope = "key"
			if sc.PublicKey != "" {
				s = u.keyScope(sc.PublicKey, now)
			}
		}
		if s != nil && s.add(c, now) && c.until > u.active.Load() {
			u.active.Store(c.until)
		}
	}
}

// scope returns the limits of id in *m, making them if there is room.
func (u *UpstreamLimits) scope(m *map[uint64]*scopeLimits, id uint64, now int64) *scopeLimits {
	if s := (*m)[id]; s != nil {
		return s
	}
	if !u.room(now) {
		return nil
	}
	if *m == nil {
		*m = make(map[uint64]*scopeLimits)
	}
	s := &scopeLimits{}
	(*m)[id] = s
	u.nscopes++
	return s
}

func (u *UpstreamLimits) keyScope(key string, now int64) *scopeLimits {
	if s := u.keys[key]; s != nil {
		return s
	}
	if !u.room(now) {
		return nil
	}
	if u.keys == nil {
		u.keys = make(map[string]*scopeLimits)
	}
	s := &scopeLimits{}
	u.keys[strings.Clone(key)] = s
	u.nscopes++
	return s
}

// room reports whether one more scope fits, letting expired ones go first
// when the cache is full.
func (u *UpstreamLimits) room(now int64) bool {
	if u.nscopes >= u.cap() {
		u.sweep(now)
	}
	return u.nscopes < u.cap()
}

func (u *UpstreamLimits) cap() int {
	if u.max > 0 {
		return u.max
	}
	return MaxUpstreamScopes
}

// sweep lets go of the limits that ended by now, and of scopes left empty.
func (u *UpstreamLimits) sweep(now int64) {
	u.swept = now
	u.global.expire(now)
	for _, m := range []map[uint64]*scopeLimits{u.orgs, u.prjs} {
		for id, s := range m {
			if s.expire(now) == 0 {
				delete(m, id)
				u.nscopes--
			}
		}
	}
	for k, s := range u.keys {
		if s.expire(now) == 0 {
			delete(u.keys, k)
			u.nscopes--
		}
	}
}

// expire drops the limits that ended by now and returns how many remain.
func (s *scopeLimits) expire(now int64) int {
	n := 0
	for _, l := range s.limits {
		if l.until > now {
			s.limits[n] = l
			n++
		}
	}
	clear(s.limits[n:])
	s.limits = s.limits[:n]
	return n
}

// add merges c into s as Relay's RateLimits.add: a limit of the same
// categories is replaced when c lasts longer. It reports whether c was
// kept.
func (s *scopeLimits) add(c cachedLimit, now int64) bool {
	for i := range s.limits {
		if l := &s.limits[i]; l.cats == c.cats && l.scope == c.scope {
			if l.until < c.until {
				*l = c
				return true
			}
			return false
		}
	}
	if len(s.limits) >= maxLimitsPerScope && s.expire(now) >= maxLimitsPerScope {
		return false
	}
	s.limits = append(s.limits, c)
	return true
}

// categoryMask maps category names to a bit set and the header's list of
// them. ok is false when names are given but none is known.
func categoryMask(names []string) (mask uint64, list string, ok bool) {
	if len(names) == 0 {
		return 0, "", true
	}
	for _, n := range names {
		if c, known := envelope.ParseCategory(n); known && c >= 0 && c < 64 {
			mask |= 1 << uint(c)
		}
	}
	if mask == 0 {
		return 0, "", false
	}
	var b strings.Builder
	for c := range 64 {
		if mask&(1<<uint(c)) != 0 {
			if b.Len() > 0 {
				b.WriteByte(';')
			}
			b.WriteString(envelope.Category(c).String())
		}
	}
	return mask, b.String(), true
}

// covers reports whether l limits category cat.
func (l *cachedLimit) covers(cat envelope.Category) bool {
	return l.cats == 0 || (cat >= 0 && cat < 64 && l.cats&(1<<uint(cat)) != 0)
}

// apply drops the classes of items an active cached limit of the scoping
// (orgID, pid, key) covers, with outcome rate_limited, and appends each
// limit that dropped something to v.RateLimits once, with its remaining
// time (as Relay reports every limit that applies, not only the longest).
// Classes another rule dropped, and client reports, are not judged.
func (u *UpstreamLimits) apply(v *Verdict, orgID, pid uint64, key []byte, items *[envelope.NumClasses]int) {
	if u == nil || u.active.Load() == 0 {
		return
	}
	now := u.now().UnixNano()
	if now >= u.active.Load() {
		return // every cached limit has ended
	}
	u.mu.RLock()
	defer u.mu.RUnlock()
	u.global.apply(v, items, now)
	if orgID != 0 {
		if s := u.orgs[orgID]; s != nil {
			s.apply(v, items, now)
		}
	}
	if s := u.prjs[pid]; s != nil {
		s.apply(v, items, now)
	}
	if s := u.keys[string(key)]; s != nil { // not allocated: a lookup
		s.apply(v, items, now)
	}
}

func (s *scopeLimits) apply(v *Verdict, items *[envelope.NumClasses]int, now int64) {
	for i := range s.limits {
		l := &s.limits[i]
		if l.until <= now {
			continue
		}
		hit := false
		for c := range envelope.NumClasses {
			cat := classCategory[c]
			if items[c] == 0 || cat == envelope.CategoryUnknown || !l.covers(cat) ||
				(v.Drop[c] && v.Why[c] != outcome.ReasonRateLimited) {
				continue
			}
			v.dropClass(c, outcome.ReasonRateLimited)
			hit = true
		}
		if hit {
			v.RateLimits = append(v.RateLimits, RateLimit{
				After: time.Duration(l.until - now), Category: envelope.CategoryUnknown,
				Cached: true, Categories: l.names, Scope: l.scope, Reason: l.reason,
			})
		}
	}
}
