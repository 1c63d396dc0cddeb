package policy

import (
	"encoding/json"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/baton-relay/baton/envelope"
	"github.com/baton-relay/baton/relay/outcome"
	"github.com/baton-relay/baton/relay/project"
)

// classCategory is the data category quotas count a class's items in.
var classCategory = [envelope.NumClasses]envelope.Category{
	envelope.ClassUnknown:      envelope.CategoryDefault,
	envelope.ClassError:        envelope.CategoryError,
	envelope.ClassTransaction:  envelope.CategoryTransaction,
	envelope.ClassSecurity:     envelope.CategorySecurity,
	envelope.ClassAttachment:   envelope.CategoryAttachment,
	envelope.ClassSession:      envelope.CategorySession,
	envelope.ClassMetric:       envelope.CategoryMetricBucket,
	envelope.ClassClientReport: envelope.CategoryUnknown, // never limited: it reports limits
	envelope.ClassProfile:      envelope.CategoryProfile,
	envelope.ClassReplay:       envelope.CategoryReplay,
	envelope.ClassCheckIn:      envelope.CategoryMonitor,
	envelope.ClassSpan:         envelope.CategorySpan,
	envelope.ClassLog:          envelope.CategoryLogItem,
	envelope.ClassFeedback:     envelope.CategoryFeedback,
	envelope.ClassTraceMetric:  envelope.CategoryTraceMetric,
}

// featureSessionReplay is the feature flag replays need.
const featureSessionReplay = "organizations:session-replay"

// eventClass marks the classes a static project's events_per_second counts.
var eventClass = [envelope.NumClasses]bool{
	envelope.ClassError: true, envelope.ClassTransaction: true,
	envelope.ClassSecurity: true, envelope.ClassFeedback: true,
}

// Verdict is what a project's config says about each class of one
// envelope: which to drop and why, and the rate limits to report.
type Verdict struct {
	Drop       [envelope.NumClasses]bool
	Why        [envelope.NumClasses]outcome.Reason // of each dropped class
	RateLimits []RateLimit                         // for X-Sentry-Rate-Limits
	// Filter names the inbound filter that dropped classes with
	// ReasonFiltered (Relay's FilterStatKey, or a generic filter's id).
	Filter string
	// Rule is the sampling rule that dropped the transaction class.
	Rule uint32

	dsc     *project.DSC // the envelope header's trace context (trace)
	dscRead bool
}

// Code is Relay's reason string for the drop of class c: the filter's name,
// "Sampled:<rule id>", the quota's reason code ("" without one), or the
// outcome reason's name.
func (v *Verdict) Code(c envelope.Class) string {
	switch v.Why[c] {
	case outcome.ReasonFiltered:
		return v.Filter
	case outcome.ReasonSampled:
		return "Sampled:" + strconv.FormatUint(uint64(v.Rule), 10)
	case outcome.ReasonRateLimited:
		for _, l := range v.RateLimits {
			if l.Category == classCategory[c] {
				return l.Reason
			}
		}
		return ""
	}
	return v.Why[c].String()
}

// RateLimit is one limit a verdict applied: the client should hold back
// Category for After.
type RateLimit struct {
	After    time.Duration
	Category envelope.Category
	Scope    string // key, project, organization or global
	Reason   string // the quota's reason code, if any
	// Cached marks a limit the upstream answered (UpstreamLimits): it is
	// reported with its own Categories (;-separated, "" for all), not
	// Category.
	Cached     bool
	Categories string
}

func (v *Verdict) dropClass(c envelope.Class, why outcome.Reason) {
	if !v.Drop[c] {
		v.Drop[c], v.Why[c] = true, why
	}
}

// Enforcer applies project configs to envelopes: inbound filters (client
// address, release), feature gates, quotas, a static project's event rate,
// and dynamic sampling. It is shared by the ingest path and by the release
// of envelopes that waited for a config, and it is safe for concurrent use.
// It keeps the quota counters, so it outlives reloads of Projects.
type Enforcer struct {
	quotas   quotaCounters // counts when counter is nil (the default)
	counter  Counter
	filtered filterCounts
	upstream *UpstreamLimits
	now      func() time.Time
}

// Upstream returns the cache of the upstream's rate limits the Enforcer
// applies at the door; the forwarders record into it.
func (e *Enforcer) Upstream() *UpstreamLimits { return e.upstream }

// FilterCounts returns how many envelopes each inbound filter dropped, by
// filter name.
func (e *Enforcer) FilterCounts() map[string]int64 { return e.filtered.snapshot() }

// filter drops the classes an inbound filter named name matched.
func (e *Enforcer) filter(v *Verdict, name string, items *[envelope.NumClasses]int, match func(envelope.Class) bool) {
	for c := range envelope.NumClasses {
		if items[c] > 0 && match(c) {
			v.dropClass(c, outcome.ReasonFiltered)
		}
	}
	if v.Filter == "" {
		v.Filter = name
		e.filtered.add(name)
	}
}

// FilterClass drops class c as filtered by name, counted like an inbound
// filter: for what the ingest side judges outside the filters (a
// discarded issue hash).
func (e *Enforcer) FilterClass(v *Verdict, c envelope.Class, name string) {
	var items [envelope.NumClasses]int
	items[c] = 1
	e.filter(v, name, &items, func(x envelope.Class) bool { return x == c })
}

// NewEnforcer returns an Enforcer with no quota counted yet.
func NewEnforcer(opts Options) *Enforcer {
	opts = opts.withDefaults()
	return &Enforcer{now: opts.Now, upstream: NewUpstreamLimits(opts), counter: opts.Counter}
}

// maxQuotaCounters bounds the quota windows an edge counts at once: one
// per quota and scope (key, project or organization) seen in a window.
const maxQuotaCounters = 1 << 16

// quotaSweepEvery is how often counters of windows that ended are let go.
const quotaSweepEvery = 60 // seconds

// quotaCounters counts quotas in fixed windows. A lookup builds its key in
// a stack buffer and allocates nothing; only a new counter allocates, its
// key once. Counters of windows that ended are swept every
// quotaSweepEvery seconds, or sooner when maxQuotaCounters are held; when
// that many windows are live, a new one is not counted (the edge's count
// is a local share; the processing tier keeps the global one).
type quotaCounters struct {
	mu    sync.Mutex
	m     map[string]*windowCounter // quota id, scope tag, scope → window
	max   int                       // 0: maxQuotaCounters
	swept int64                     // unix second of the last sweep
}

// windowCounter counts one quota's fixed window: slot is the window's
// index, end the unix second it ends, n what it counted so far.
type windowCounter struct {
	slot, end, n int64
}

// Count is Counter's Count, in memory.
func (qc *quotaCounters) Count(cs []Charge, now int64) {
	qc.mu.Lock()
	defer qc.mu.Unlock()
	if now-qc.swept >= quotaSweepEvery {
		qc.sweep(now)
	}
	for i := 0; i < len(cs); {
		e := i + 1
		for e < len(cs) && cs[e].Group == cs[i].Group {
			e++
		}
		ok := true
		for k := i; k < e; k++ {
			ch := &cs[k]
			ch.Over = false
			if w := qc.window(ch, now); w != nil && w.n+ch.N > ch.Limit {
				ch.Over, ok = true, false
			}
		}
		if ok {
			for k := i; k < e; k++ {
				if w := qc.window(&cs[k], now); w != nil {
					w.n += cs[k].N
				}
			}
		}
		i = e
	}
}

// Add counts n in one window: Count with one charge.
func (qc *quotaCounters) Add(key []byte, limit, window, n, now int64) bool {
	cs := [1]Charge{{Key: key, Limit: limit, Window: window, N: n}}
	qc.Count(cs[:], now)
	return cs[0].Over
}

// window returns ch's counter of the window holding now, or nil at the
// bound (not counted here). qc.mu is held.
func (qc *quotaCounters) window(ch *Charge, now int64) *windowCounter {
	key := ch.Key
	w := qc.m[string(key)] // not allocated: the compiler reads key in place
	if w == nil {
		if len(qc.m) >= qc.cap() && now != qc.swept {
			qc.sweep(now)
		}
		if len(qc.m) >= qc.cap() {
			return nil
		}
		if qc.m == nil {
			qc.m = make(map[string]*windowCounter)
		}
		w = &windowCounter{slot: -1}
		qc.m[string(key)] = w
	}
	if slot, end := ch.slot(now); w.slot != slot {
		w.slot, w.end, w.n = slot, end, 0
	}
	return w
}

// sweep lets go of the counters whose window ended by now.
func (qc *quotaCounters) sweep(now int64) {
	qc.swept = now
	for k, w := range qc.m {
		if w.end <= now {
			delete(qc.m, k)
		}
	}
}

func (qc *quotaCounters) cap() int {
	if qc.max > 0 {
		return qc.max
	}
	return maxQuotaCounters
}

func (qc *quotaCounters) len() int {
	qc.mu.Lock()
	defer qc.mu.Unlock()
	return len(qc.m)
}

// Apply fills v for an envelope admitted with a (Admitted) and key, with
// items per class: Door, then the event filters on event, then Limit, in
// one call, for an envelope whose event is judged as received (proxy mode,
// normalization disabled, and records whose event was normalized before
// they were stored). hdr is the envelope header JSON, read only when
// sampling or a release filter needs its trace context; addr gives the
// client address, asked only when the project filters addresses; event
// gives the event item, asked (and parsed) only when a filter reads the
// event. v's RateLimits array is reused: Apply allocates only to parse
// hdr or the event, to count a new quota window, or to grow RateLimits.
func (e *Enforcer) Apply(v *Verdict, a *Admission, key []byte, items *[envelope.NumClasses]int, hdr []byte, addr func() netip.Addr, event EventItem) {
	if !e.Door(v, a, key, items, hdr, addr) {
		return
	}
	e.FilterItem(v, a, items, event, addr)
	e.Limit(v, a, key, items, hdr)
}

// FilterItem is Apply's middle step for a caller that runs Door and Limit
// itself: the event filters on the event as received (event, nil for
// none), when FiltersEvent. It reports whether it dropped a class.
func (e *Enforcer) FilterItem(v *Verdict, a *Admission, items *[envelope.NumClasses]int, event EventItem, addr func() netip.Addr) bool {
	if event == nil || !e.FiltersEvent(v, a, items) {
		return false
	}
	return e.applyEventFilters(v, a, items, event, addr)
}

// Door resets v and applies what needs neither the event nor counting:
// the upstream's cached limits, the client-address filter and the release
// of the trace context. It reports whether the project has more to apply
// (Filter, then Limit): false in proxy mode, while pending, and when the
// client's address is filtered. Relay checks cached limits on the request
// and runs the event filters on the normalized event, before quotas: an
// ingest that normalizes calls Door, normalizes, calls Filter on the
// normalized event, then Limit.
func (e *Enforcer) Door(v *Verdict, a *Admission, key []byte, items *[envelope.NumClasses]int, hdr []byte, addr func() netip.Addr) bool {
	*v = Verdict{RateLimits: v.RateLimits[:0]}
	st := a.State
	// The upstream's limits come first, as Relay checks its cached limits
	// on the request; they need no config (proxy mode, pending).
	var org uint64
	if st != nil {
		org = st.OrganizationID
	}
	e.upstream.apply(v, org, a.ProjectID, key, items)
	if st == nil && a.limiter == nil {
		return false // proxy mode, or pending: no config to apply
	}
	if st != nil && st.Filters.HasIPFilter() && st.Filters.BlockedIP(addr()) {
		e.filter(v, FilterClientIPs, items, func(c envelope.Class) bool { return c != envelope.ClassClientReport })
		return false
	}
	if st != nil && st.Filters.HasReleaseFilter() && hasEvents(items) {
		// The edge judges the release the trace context carries; events
		// without one are left to the processing relay's filter.
		if d := v.trace(hdr); d != nil && st.Filters.BlockedRelease(d.Release) {
			e.filter(v, FilterReleases, items, func(c envelope.Class) bool { return eventClass[c] })
		}
	}
	return true
}

// FiltersEvent reports whether Filter would read the envelope's event:
// after a Door that left more to apply, for a project with a filter that
// reads events, when no filter matched yet and the envelope has an event
// class. It costs no allocation.
func (e *Enforcer) FiltersEvent(v *Verdict, a *Admission, items *[envelope.NumClasses]int) bool {
	st := a.State
	if st == nil || v.Filter != "" {
		return false
	}
	if ef := st.Filters.Event(); !ef.On() && ef.Generic == nil && a.global == nil {
		return false
	}
	return items[envelope.ClassError] > 0 || items[envelope.ClassTransaction] > 0 || items[envelope.ClassSecurity] > 0
}

// Filter runs the filters that read the event (filters.go) on ev, the
// envelope's event, when FiltersEvent, and drops the event's class when
// one matches: its attachments and profile share that class. It reports
// whether it dropped the class.
func (e *Enforcer) Filter(v *Verdict, a *Admission, items *[envelope.NumClasses]int, ev Event) bool {
	if ev.e == nil || !e.FiltersEvent(v, a, items) {
		return false
	}
	return e.judge(v, a, items, ev.e)
}

// judge drops the class of ev when one of the project's event filters
// matches it.
func (e *Enforcer) judge(v *Verdict, a *Admission, items *[envelope.NumClasses]int, ev *event) bool {
	class, ok := eventItemClass(ev.kind)
	if !ok || items[class] == 0 {
		return false
	}
	st := a.State
	if name := eventFilters(st.Filters.Event(), &st.Filters, a.global, ev); name != "" {
		e.filter(v, name, items, func(c envelope.Class) bool { return c == class })
		return true
	}
	return false
}

// Limit applies, after Door (and Filter), what counts or gates what the
// filters left: feature gates, quotas, a static project's event rate, and
// dynamic sampling. Quotas are not charged for filtered classes.
func (e *Enforcer) Limit(v *Verdict, a *Admission, key []byte, items *[envelope.NumClasses]int, hdr []byte) {
	st, lim := a.State, a.limiter
	if st != nil && items[envelope.ClassReplay] > 0 && st.FeatureOff(featureSessionReplay) {
		// As Relay: replays of an organization without session replay
		// are not ingested.
		v.dropClass(envelope.ClassReplay, outcome.ReasonFeatureDisabled)
	}
	if st != nil && len(st.Quotas) > 0 {
		e.applyQuotas(v, st, key, items)
	}
	if lim != nil {
		n := 0
		for c := range envelope.NumClasses {
			if eventClass[c] && !v.Drop[c] {
				n += items[c]
			}
		}
		if ok, wait := lim.take(n); n > 0 && !ok {
			for c := range envelope.NumClasses {
				if eventClass[c] && items[c] > 0 {
					v.dropClass(c, outcome.ReasonRateLimited)
					v.RateLimits = append(v.RateLimits, RateLimit{After: wait, Category: classCategory[c], Scope: "project", Reason: "events_per_second"})
				}
			}
		}
	}
	// A tail-sampled project's traces are decided whole once complete
	// (relay/tailsample), not here; a broken tailSampling part leaves
	// TailSampled false, so head sampling stays.
	if st != nil && st.Sampling != nil && !st.TailSampled() && items[envelope.ClassTransaction] > 0 && !v.Drop[envelope.ClassTransaction] {
		if d := v.trace(hdr); d != nil && d.TraceID != "" {
			if dec := st.Sampling.Decide(d, e.now()); !dec.Keep {
				v.dropClass(envelope.ClassTransaction, outcome.ReasonSampled)
				v.Rule = dec.Rule
			}
		}
	}
}

// trace is the trace context (DSC) of the envelope header hdr, parsed once
// per verdict and only when a rule needs it.
func (v *Verdict) trace(hdr []byte) *project.DSC {
	if !v.dscRead {
		v.dscRead = true
		var h struct {
			Trace *project.DSC `json:"trace"`
		}
		if json.Unmarshal(hdr, &h) == nil {
			v.dsc = h.Trace
		}
	}
	return v.dsc
}

// eventItemClass is the class of an event item of type kind.
func eventItemClass(kind envelope.ItemType) (envelope.Class, bool) {
	switch kind {
	case envelope.ItemEvent:
		return envelope.ClassError, true
	case envelope.ItemTransaction:
		return envelope.ClassTransaction, true
	case envelope.ItemSecurity, envelope.ItemRawSecurity:
		return envelope.ClassSecurity, true
	}
	return envelope.ClassUnknown, false
}

// applyEventFilters judges the event item as received: parsed from its
// JSON, with {{auto}} resolved to the client's address as Relay's
// normalization would.
func (e *Enforcer) applyEventFilters(v *Verdict, a *Admission, items *[envelope.NumClasses]int, event EventItem, addr func() netip.Addr) bool {
	kind, payload := event()
	if class, ok := eventItemClass(kind); !ok || items[class] == 0 {
		return false
	}
	ev := parseEvent(kind, payload)
	if ev.User != nil && ev.User.IPAddress == "{{auto}}" {
		// Set here, not kept as a closure: addr must not escape to the heap.
		ev.User.IPAddress = ""
		if a := addr(); a.IsValid() {
			ev.User.IPAddress = lenient(a.String())
		}
	}
	return e.judge(v, a, items, ev)
}

func hasEvents(items *[envelope.NumClasses]int) bool {
	for c := range envelope.NumClasses {
		if eventClass[c] && items[c] > 0 {
			return true
		}
	}
	return false
}

// applyQuotas enforces the project's quotas as Relay does: a class that
// a limit 0 quota covers is dropped without counting; otherwise the counted
// quotas (id, limit, window) covering it are one group, admitted only when
// none is over, and counted only then. All the envelope's groups go to
// the counter in one call (one round trip to Redis at most). Without
// Options.Counter they are counted here, per edge, in fixed windows, which
// bounds this edge's share while the processing tier keeps the global
// count.
func (e *Enforcer) applyQuotas(v *Verdict, st *project.State, key []byte, items *[envelope.NumClasses]int) {
	b := chargeBufs.Get().(*chargeBuf)
	defer chargeBufs.Put(b)
	b.cs, b.qs, b.ends, b.keys = b.cs[:0], b.qs[:0], b.ends[:0], b.keys[:0]
	for c := range envelope.NumClasses {
		cat := classCategory[c]
		if items[c] == 0 || cat == envelope.CategoryUnknown || v.Drop[c] {
			continue
		}
		name := cat.String()
		first := len(b.cs)
		for i := range st.Quotas {
			q := &st.Quotas[i]
			if q.Limit == nil || !q.Covers(name) || !scopeMatches(q, st, key) {
				continue
			}
			if *q.Limit == 0 {
				// The strictest: no counting for this class (Relay does
				// not call Redis).
				b.cs, b.qs, b.ends = b.cs[:first], b.qs[:first], b.ends[:first]
				b.keys = b.keys[:b.start(first)]
				v.dropClass(c, outcome.ReasonRateLimited)
				v.RateLimits = append(v.RateLimits, RateLimit{After: time.Minute, Category: cat, Scope: scopeName(q.Scope), Reason: q.ReasonCode})
				break
			}
			if q.ID == "" || q.Window <= 0 {
				continue
			}
			b.keys = quotaKey(b.keys, q, st, key)
			org := st.OrganizationID
			if q.Scope == "global" {
				org = 0
			}
			b.cs = append(b.cs, Charge{Org: org, Limit: *q.Limit, Window: q.Window, N: int64(items[c]), Group: int(c)})
			b.qs = append(b.qs, q)
			b.ends = append(b.ends, len(b.keys))
		}
	}
	if len(b.cs) == 0 {
		return
	}
	for i := range b.cs {
		b.cs[i].Key = b.keys[b.start(i):b.ends[i]]
	}
	sec := e.now().Unix()
	if e.counter != nil {
		e.counter.Count(b.cs, sec)
	} else {
		e.quotas.Count(b.cs, sec)
	}
	for i := range b.cs {
		ch := &b.cs[i]
		if !ch.Over {
			continue
		}
		// Every quota that refused is reported, as Relay does.
		c, q := envelope.Class(ch.Group), b.qs[i]
		v.dropClass(c, outcome.ReasonRateLimited)
		_, end := ch.slot(sec)
		after := time.Duration(end-sec) * time.Second
		v.RateLimits = append(v.RateLimits, RateLimit{After: after, Category: classCategory[c], Scope: scopeName(q.Scope), Reason: q.ReasonCode})
	}
	clear(b.qs) // the states may go
}

// slot is the index of ch's window that holds now, and the unix second
// it ends. As Relay's RedisQuota, an organization's windows are shifted by
// its id modulo the window (Org is 0 for a global quota: not shifted), so
// the windows of many organizations do not all start afresh at once.
func (ch *Charge) slot(now int64) (slot, end int64) {
	shift := int64(ch.Org % uint64(ch.Window))
	slot = (now - shift) / ch.Window
	return slot, (slot+1)*ch.Window + shift
}

// chargeBuf is the scratch of one applyQuotas: the charges, their quotas,
// and their keys end to end in keys (charge i's ends at ends[i]).
type chargeBuf struct {
	cs   []Charge
	qs   []*project.Quota
	ends []int
	keys []byte
}

// start is where charge i's key starts: where the one before it ends.
func (b *chargeBuf) start(i int) int {
	if i == 0 {
		return 0
	}
	return b.ends[i-1]
}

// chargeBufs keep applyQuotas from allocating: the charges go through an
// interface, so they would escape.
var chargeBufs = sync.Pool{New: func() any { return new(chargeBuf) }}

// scopeMatches reports whether a quota with a scopeId applies to this
// request: a key quota names the key's numeric id, a project quota the
// project id, an organization quota the organization id (as in Relay).
func scopeMatches(q *project.Quota, st *project.State, key []byte) bool {
	if q.ScopeID == "" {
		return true
	}
	var id uint64
	switch q.Scope {
	case "key":
		id = st.KeyID(key)
	case "project":
		id = st.ProjectID
	case "organization", "":
		id = st.OrganizationID
	default:
		return true
	}
	var b [20]byte // a uint64 in decimal, on the stack
	return q.ScopeID == string(strconv.AppendUint(b[:0], id, 10))
}

func scopeName(s string) string {
	if s == "" {
		return "organization"
	}
	return s
}

// quotaKey appends the counter key of quota q to k: its id, scope tag and
// scope.
func quotaKey(k []byte, q *project.Quota, st *project.State, key []byte) []byte {
	k = append(k, q.ID...)
	switch q.Scope {
	case "key":
		k = append(append(k, 0, 'k'), key...)
	case "project":
		k = strconv.AppendUint(append(k, 0, 'p'), st.ProjectID, 10)
	case "global":
		k = append(k, 0, 'g')
	default:
		k = strconv.AppendUint(append(k, 0, 'o'), st.OrganizationID, 10)
	}
	return k
}
