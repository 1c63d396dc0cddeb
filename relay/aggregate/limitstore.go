package aggregate

import "time"

// Series is one decision of AdmitBatch: a bucket identity (KeyHash) of a
// (project, namespace) scope.
type Series struct {
	Project   uint64
	Namespace string
	Hash      uint64
}

// maxGranules bounds the granules of a store window (each a Redis set a
// series is added to).
const maxGranules = 64

// AdmitBatch decides every series at once: ok[i] (len(ok) == len(series))
// as Admit would answer for series[i]. Without a Store it is Admit in a
// loop. With one, a series its store admitted in the current granule
// passes from the local cache, and the others go to the store in one
// AdmitSeries call, made without holding the Limiter's lock; if that
// fails, they are decided by the local sets (the fallback), which every
// admitted series also feeds so that they know this Baton's recent
// traffic.
func (l *Limiter) AdmitBatch(series []Series, ok []bool) {
	if l.store == nil {
		for i, se := range series {
			ok[i] = l.Admit(se.Project, se.Namespace, se.Hash)
		}
		return
	}
	var (
		checks []SeriesCheck
		at     []int // checks[j] decides series[at[j]]
	)
	l.mu.Lock()
	if l.limit == 0 && len(l.overrides) == 0 {
		for i := range ok {
			ok[i] = true
		}
		l.stats.Admitted += uint64(len(ok))
		l.mu.Unlock()
		return
	}
	clock := l.now()
	now := clock.UnixNano()
	for i, se := range series {
		s := l.scope(limitKey{se.Project, se.Namespace}, now)
		if s.spec.limit == 0 {
			ok[i] = true
			l.stats.Admitted++
			continue
		}
		window, gran := l.storeWindow(s.spec)
		if g := now / int64(gran); s.granule != g {
			l.bytes -= s.cache.bytes()
			s.cache, s.granule = hashSet{}, g
		}
		if s.cache.has(se.Hash) {
			ok[i] = true
			l.admitLocal(s, se.Hash)
			l.stats.Admitted++
			l.stats.Cached++
			continue
		}
		checks = append(checks, SeriesCheck{Project: se.Project, Namespace: s.key.namespace, Hash: se.Hash,
			Limit: s.spec.limit, Window: window, Granularity: gran})
		at = append(at, i)
	}
	l.mu.Unlock()
	if len(checks) == 0 {
		return
	}
	res := make([]bool, len(checks))
	err := l.store.AdmitSeries(clock, checks, res)
	l.mu.Lock()
	defer l.mu.Unlock()
	// Another reader may have moved the scopes to a later window while
	// the store answered: never take them back to an earlier one.
	later := max(l.now().UnixNano(), now)
	for j := range checks {
		c := &checks[j]
		s := l.scope(limitKey{c.Project, c.Namespace}, later)
		var admitted bool
		if err != nil {
			admitted = l.admitLocal(s, c.Hash)
			l.stats.Fallbacks++
		} else {
			admitted = res[j]
			l.stats.Stored++
			if admitted {
				l.admitLocal(s, c.Hash)
				if s.granule == now/int64(c.Granularity) {
					before := s.cache.bytes()
					s.cache.admit(c.Hash, s.spec.limit)
					l.bytes += s.cache.bytes() - before
				}
			}
		}
		ok[at[j]] = admitted
		l.count(admitted)
	}
}

// storeWindow is the window and granularity a Store counts a scope in:
// the scope's own, else LimitOptions.Window in one granule; at most
// maxGranules granules of at least a second.
func (l *Limiter) storeWindow(sp limitSpec) (window, gran time.Duration) {
	window = sp.window
	if window <= 0 {
		window = time.Duration(l.windowNs)
	}
	window = max(window.Truncate(time.Second), time.Second)
	gran = sp.gra
	if gran <= 0 || gran > window {
		gran = window
	}
	gran = max(gran, (window+maxGranules-1)/maxGranules)
	return window, max((gran + time.Second - 1).Truncate(time.Second), time.Second)
}

// has reports whether h is in the set.
func (s *hashSet) has(h uint64) bool {
	if h == 0 {
		return s.zero
	}
	if len(s.slots) == 0 {
		return false
	}
	_, found := s.find(h)
	return found
}
