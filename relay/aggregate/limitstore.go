package aggregate

import "time"

// Series is one decision of AdmitBatch: a bucket identity (KeyHash) of a
// (project, namespace) scope, and its MRI (Name), which the project's
// type and name scoped limits count by.
type Series struct {
	Project   uint64
	Namespace string
	Hash      uint64
	Name      string
}

// maxGranules bounds the granules of a store window (each a Redis set a
// series is added to).
const maxGranules = 64

// AdmitBatch decides every series at once: ok[i] (len(ok) == len(series))
// as AdmitSeries would answer for series[i]. Without a Store it is
// AdmitSeries in a loop. With one, a series its store admitted in the
// current granule of a scope passes it from the local cache, and the
// other (series, scope) pairs go to the store in one AdmitSeries call,
// made without holding the Limiter's lock; if that fails, they are
// decided by the local sets (the fallback), which every admitted series
// also feeds so that they know this Baton's recent traffic.
func (l *Limiter) AdmitBatch(series []Series, ok []bool) {
	if l.store == nil {
		for i, se := range series {
			ok[i] = l.AdmitSeries(se)
		}
		return
	}
	var (
		checks []SeriesCheck
		at     []int    // checks[j] decides series[at[j]]
		tg     []target // in checks[j]'s scope
		ts     []target // scratch
	)
	l.mu.Lock()
	if l.unlimited() {
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
		ok[i] = true
		ts = l.targets(se, ts[:0])
		for _, t := range ts {
			s := l.track(t, now)
			if s.spec.limit == 0 {
				continue
			}
			window, gran := l.storeWindow(s.spec)
			if g := now / int64(gran); s.granule != g {
				l.bytes -= s.cache.bytes()
				s.cache, s.granule = hashSet{}, g
			}
			if s.cache.has(se.Hash) {
				l.admitLocal(s, se.Hash)
				l.stats.Cached++
				continue
			}
			t.key = s.key // its strings, cloned
			checks = append(checks, SeriesCheck{Project: s.key.project, Namespace: s.key.namespace, Hash: se.Hash,
				Limit: s.spec.limit, Window: window, Granularity: gran,
				ID: s.key.id, Scope: s.key.scope, Value: s.key.value})
			at = append(at, i)
			tg = append(tg, t)
		}
	}
	if len(checks) == 0 {
		l.countAll(ok)
		l.mu.Unlock()
		return
	}
	l.mu.Unlock()
	res := make([]bool, len(checks))
	err := l.store.AdmitSeries(clock, checks, res)
	l.mu.Lock()
	defer l.mu.Unlock()
	// Another reader may have moved the scopes to a later window while
	// the store answered: never take them back to an earlier one.
	later := max(l.now().UnixNano(), now)
	for j := range checks {
		c := &checks[j]
		s := l.track(tg[j], later)
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
		if !admitted && !l.reject(s) {
			ok[at[j]] = false
		}
	}
	l.countAll(ok)
}

func (l *Limiter) countAll(ok []bool) {
	for _, v := range ok {
		l.count(v)
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
