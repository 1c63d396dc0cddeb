package policy

import (
	"bytes"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/baton-relay/baton/config"
	"github.com/baton-relay/baton/relay/outcome"
	"github.com/baton-relay/baton/relay/project"
)

// Options are the settings of Projects and the Enforcer.
type Options struct {
	// Now is the clock of rate buckets, quota windows and sampling rules.
	// Default: time.Now.
	Now func() time.Time
	// Counter counts the quotas with an id and a window. Default: the
	// Enforcer's own counters, in memory (this edge's share only);
	// relay/fleet counts them in Redis for a whole fleet.
	Counter Counter
}

// Counter counts quota windows; it is safe for concurrent use and called
// on the ingest path, so it must answer within a small bound.
type Counter interface {
	// Count decides the groups of cs (consecutive charges with the same
	// Group) in order at now (unix seconds), as Relay checks an
	// envelope's categories one after another: a group is admitted, N
	// counted in each of its windows, only when none of its quotas would
	// go over; otherwise nothing of it is counted and Over marks the
	// quotas that would. A later group sees what an earlier one counted.
	Count(cs []Charge, now int64)
}

// Charge is one quota window a Counter decision counts items in.
type Charge struct {
	// Key names the window: quota id, scope tag, scope. Only valid
	// during the call.
	Key []byte
	// Org is the organization id, 0 for a global quota: it shifts the
	// windows (Relay's RedisQuota: org % window), and one envelope's
	// windows share it, so a store can keep them together.
	Org uint64
	// Limit per Window seconds; N items to count.
	Limit, Window, N int64
	// Group is the class of the items: one group is admitted or refused
	// whole.
	Group int
	// Over is set by Count when this quota refused its group.
	Over bool
}

func (o Options) withDefaults() Options {
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// Cache is where managed mode finds a key's project config:
// *project.Cache, which answers without waiting.
type Cache interface {
	GetBytes(key []byte) (*project.State, project.Status)
}

// Refusal says why a request is refused at the door.
type Refusal uint8

const (
	Admitted        Refusal = iota // not refused
	UnknownProject                 // the project is not served here, or the key is another project's
	UnknownKey                     // the key is not one of the project's
	DisabledKey                    // the key is disabled
	DisabledProject                // the project is disabled
	CORS                           // the origin is not in the project's allowedDomains
	Overload                       // managed: the config lookups outstanding are at their cap
	NumRefusals
)

var refusalNames = [NumRefusals]string{"admitted", "unknown_project", "unknown_key", "disabled_key", "disabled_project", "cors", "overload"}

func (r Refusal) String() string {
	if r < NumRefusals {
		return refusalNames[r]
	}
	return "refusal(" + strconv.Itoa(int(r)) + ")"
}

// Reason is the outcome of a record refused when it is released after it
// waited for its config.
func (r Refusal) Reason() outcome.Reason {
	switch r {
	case DisabledKey, DisabledProject:
		return outcome.ReasonProjectDisabled
	case CORS:
		return outcome.ReasonCORS
	default:
		return outcome.ReasonProjectUnknown
	}
}

// Admission is what the project policy says about a request at the door.
type Admission struct {
	// ProjectID is the project the request names.
	ProjectID uint64
	// State is the project's config: nil in proxy mode and while pending.
	State *project.State
	// Pending: managed mode has no config for the key yet; the envelope
	// waits in the buffer's pending streams until it arrives.
	Pending bool
	// Refusal, when not Admitted, refuses the request.
	Refusal Refusal
	// limiter is a static project's local event rate, if it has one.
	limiter *tokenBucket
	// global are the generic inbound filters of the global config.
	global *project.GenericFilters
}

func refuse(why Refusal) Admission { return Admission{Refusal: why} }

// Projects is the project policy of one config: which projects and keys
// may send, and from which origins. It is immutable; a reload builds a new
// one.
type Projects struct {
	mode   mode
	static map[uint64]*staticProject // static mode, and managed mode's overrides
	cache  Cache                     // managed mode (and static with Redis configs)
	// added are managed.client_options: this Baton's client options for
	// projects whose configs it fetches.
	added map[uint64]*addedOptions
}

// mode is config.Mode, compared per request without a string compare.
type mode uint8

const (
	proxy mode = iota
	static
	managed
)

type staticProject struct {
	state   *project.State
	limiter *tokenBucket
}

// New builds the project policy of cfg's mode: proxy accepts every
// project and key (upstream decides), static serves cfg.Projects, managed
// asks cache, with cfg.Projects taking precedence for their ids. cache is
// read in managed mode, and in static mode when not nil (projects kept in
// Redis): static projects are then judged as managed mode's overrides.
func New(cfg config.Config, cache Cache, opts Options) (*Projects, error) {
	opts = opts.withDefaults()
	p := &Projects{}
	switch cfg.Mode {
	case config.ModeStatic:
		p.mode = static
		if cache != nil {
			p.mode, p.cache = managed, cache
		}
	case config.ModeManaged:
		p.mode, p.cache = managed, cache
	default:
		return p, nil
	}
	if p.mode == managed {
		var err error
		if p.added, err = addedClientOptions(cfg.Managed.ClientOptions); err != nil {
			return nil, err
		}
	}
	p.static = make(map[uint64]*staticProject, len(cfg.Projects))
	for id, c := range cfg.Projects {
		pid, err := strconv.ParseUint(id, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("relay: project id %q: %w", id, err)
		}
		st, err := staticState(id, pid, c)
		if err != nil {
			return nil, err
		}
		prj := &staticProject{state: st}
		if eps := c.RateLimit.EventsPerSecond; eps > 0 {
			prj.limiter = newTokenBucket(eps, opts.Now)
		}
		p.static[pid] = prj
	}
	return p, nil
}

// staticState is the State of the static project id: its Relay project
// file decoded as an upstream's answer (filters, quotas, sampling,
// features), with the keys, disabled and allowedDomains of c, which
// baton.yml may have overlaid; or, for a project of Baton's own config, just
// those. A file DecodeState refuses, or with a broken part, is an error
// naming the file, so `config check` and start-up report it.
func staticState(id string, pid uint64, c config.Project) (*project.State, error) {
	st := &project.State{}
	if c.Relay != nil {
		file := config.ProjectsDirName + "/" + id + ".json"
		var err error
		if st, err = project.DecodeState(c.Relay); err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		if len(st.Broken) > 0 {
			whys := make([]string, 0, len(st.Broken))
			for _, why := range st.Broken {
				if !strings.HasPrefix(why, "config ") { // a part's key: "quotas: ..."
					why = "config." + why
				}
				whys = append(whys, why)
			}
			slices.Sort(whys)
			return nil, fmt.Errorf("%s: %w: %s", file, project.ErrInvalidState, strings.Join(slices.Compact(whys), "; "))
		}
		if st.ProjectID != 0 && st.ProjectID != pid {
			return nil, fmt.Errorf("%s: %w: projectId %d is not the file's project %d", file, project.ErrInvalidState, st.ProjectID, pid)
		}
	}
	st.ProjectID, st.Disabled, st.AllowedDomains = pid, c.Disabled, c.AllowedDomains
	if cg := c.Grouping; cg.DiscardedHashes != nil || cg.Storm.Limit > 0 || cg.Count || cg.CustomRules {
		g, err := project.NewGrouping(project.Grouping{
			DiscardedHashes: cg.DiscardedHashes,
			Storm:           project.Storm{Limit: cg.Storm.Limit, Window: int64(cg.Storm.Window / time.Second)},
			Count:           cg.Count,
			CustomRules:     cg.CustomRules,
		})
		if err != nil {
			return nil, fmt.Errorf("projects.%s.grouping: %w", id, err)
		}
		st.Grouping = g
	}
	if c.ClientOptions != nil {
		d, err := c.ClientOptions.Document()
		if err != nil {
			return nil, fmt.Errorf("projects.%s.client_options: %w", id, err)
		}
		st.ClientOptions = d
	}
	keys := st.Keys
	for _, k := range c.PublicKeys {
		if !slices.ContainsFunc(keys, func(fk project.Key) bool { return fk.PublicKey == k }) {
			st.Keys = append(st.Keys, project.Key{PublicKey: k})
		}
	}
	return st, nil
}

// addedOptions is one project's document of managed.client_options, with
// the states it was added to: a config is copied once per fetched state
// (one per key and revision), not per request.
type addedOptions struct {
	add   func(*project.State) *project.State
	views sync.Map // fetched *project.State → its view
	mu    sync.Mutex
	n     int // entries in views, at most maxViews
}

// maxViews bounds a project's views: states of revisions gone from the
// cache are let go when the map is cleared at this size (a project with
// more keys in use than this recopies its views after each clear).
const maxViews = 256

func (a *addedOptions) view(st *project.State) *project.State {
	if v, ok := a.views.Load(st); ok {
		return v.(*project.State)
	}
	v := a.add(st)
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.n >= maxViews {
		a.views.Clear()
		a.n = 0
	}
	got, loaded := a.views.LoadOrStore(st, v)
	if !loaded {
		a.n++
	}
	return got.(*project.State)
}

func addedClientOptions(docs map[string]*config.ProjectClientOptions) (map[uint64]*addedOptions, error) {
	if len(docs) == 0 {
		return nil, nil
	}
	added := make(map[uint64]*addedOptions, len(docs))
	for id, o := range docs {
		pid, err := strconv.ParseUint(id, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("managed.client_options: project id %q: %w", id, err)
		}
		d, err := o.Document()
		if err != nil {
			return nil, fmt.Errorf("managed.client_options.%s: %w", id, err)
		}
		raw := o.JSON()
		added[pid] = &addedOptions{add: func(st *project.State) *project.State { return st.WithClientOptions(raw, d) }}
	}
	return added, nil
}

// View is a fetched config as this Baton serves it, to SDKs and to
// downstream relays: with its managed.client_options, if the project has
// any. It allocates only for a state it has not seen.
func (p *Projects) View(st *project.State) *project.State {
	if len(p.added) == 0 || st == nil {
		return st
	}
	a := p.added[st.ProjectID]
	if a == nil {
		return st
	}
	// Each key of a project has its own state of the same revision, so
	// views are found by the state, never by its rev.
	return a.view(st)
}

// Admit judges a request of project pid with key; origin is its Origin
// (see Origin), nil when it has none. It allocates nothing.
func (p *Projects) Admit(pid uint64, key, origin []byte) Admission {
	var a Admission
	switch p.mode {
	case static:
		a = p.admitStatic(pid, key, origin)
	case managed:
		a = p.admitManaged(pid, key, origin)
	}
	a.ProjectID = pid
	return a
}

func (p *Projects) admitStatic(pid uint64, key, origin []byte) Admission {
	prj := p.static[pid]
	if prj == nil {
		return refuse(UnknownProject)
	}
	a := checkState(prj.state, pid, key, origin)
	a.limiter = prj.limiter
	return a
}

// admitManaged answers from the cache without waiting: a known key is
// checked, an unknown one refused, and one being looked up is parked
// (pending) — or refused with Overload when the lookups outstanding are at
// their cap, so a flood of random keys is shed while known projects flow.
func (p *Projects) admitManaged(pid uint64, key, origin []byte) Admission {
	if p.static[pid] != nil {
		return p.admitStatic(pid, key, origin)
	}
	st, status := p.cache.GetBytes(key)
	switch status {
	case project.Ready:
		a := checkState(p.View(st), pid, key, origin)
		if g, ok := p.cache.(interface {
			GlobalFilters() *project.GenericFilters
		}); ok {
			a.global = g.GlobalFilters()
		}
		return a
	case project.Unknown:
		return refuse(UnknownProject)
	case project.Busy:
		return refuse(Overload)
	default:
		return Admission{Pending: true}
	}
}

// ProjectOf is the project of a public key, for Relay's legacy
// POST /api/store/ whose path carries no project id: a static project that
// lists the key, else (managed mode) the key's cached config. ok is false
// when the key's project is not known here (proxy mode, an unknown key, or
// a config not fetched yet).
func (p *Projects) ProjectOf(key []byte) (pid uint64, ok bool) {
	for id, prj := range p.static {
		if known, _ := prj.state.KeyEnabled(key); known {
			return id, true
		}
	}
	if p.mode == managed {
		if st, status := p.cache.GetBytes(key); status == project.Ready && st.ProjectID != 0 {
			return st.ProjectID, true
		}
	}
	return 0, false
}

// checkState applies a known project's door rules: the key must be the
// project's and enabled, the project enabled, and the origin allowed.
func checkState(st *project.State, pid uint64, key, origin []byte) Admission {
	if st.ProjectID != 0 && st.ProjectID != pid {
		return refuse(UnknownProject)
	}
	known, enabled := st.KeyEnabled(key)
	if !known {
		return refuse(UnknownKey)
	}
	if !enabled {
		return refuse(DisabledKey)
	}
	if st.Disabled {
		return refuse(DisabledProject)
	}
	if !originAllowed(st.AllowedDomains, origin) {
		return refuse(CORS)
	}
	return Admission{State: st}
}

// Origin is what allowedDomains is checked against, and what a record
// keeps for the check on release: the Origin header, or the origin of the
// Referer when there is none. The Referer is cut to scheme://host[:port]
// (see refererOrigin), so its path and query, often long and sometimes
// secret, are not written to the buffer; the Origin header is kept whole.
func Origin(origin, referer []byte) []byte {
	if len(origin) > 0 {
		return origin
	}
	return refererOrigin(referer)
}

// refererOrigin cuts a Referer before its path, query or fragment, exactly
// where originAllowed stops reading the host: both judge it the same.
func refererOrigin(ref []byte) []byte {
	host := 0
	if i := bytes.Index(ref, []byte("://")); i >= 0 {
		host = i + 3
	}
	if i := bytes.IndexAny(ref[host:], "/?#"); i >= 0 {
		return ref[:host+i]
	}
	return ref
}

// originAllowed checks an origin against allowedDomains as Relay does
// (docs/relay-protocol.md §1.3): a request without an origin is allowed, an
// empty list allows none, and each pattern is [scheme://]domain[:port]
// where "*" in any position matches anything, "*" alone (or "*:*",
// "*://*:*") allows all, and a domain "*.example.com" matches example.com
// and every name ending in .example.com. A pattern without a scheme or port
// matches any. Names compare without case; the origin is judged as the URL
// Relay parses from it, so a default port (http 80, https 443) is no port.
func originAllowed(domains []string, origin []byte) bool {
	if len(origin) == 0 {
		return true
	}
	scheme, host, port := splitOrigin(origin)
	for _, d := range domains {
		if o := project.ParseOrigin(d); o.Any() || o.Match(scheme, host, port) {
			return true
		}
	}
	return false
}

// splitOrigin cuts an Origin (or a Referer) into scheme, host and port; port
// is nil when absent or the scheme's default. A bracketed IPv6 host keeps
// its colons.
func splitOrigin(o []byte) (scheme, host, port []byte) {
	if i := bytes.Index(o, []byte("://")); i >= 0 {
		scheme, o = o[:i], o[i+3:]
	}
	if i := bytes.IndexAny(o, "/?#"); i >= 0 {
		o = o[:i]
	}
	host = o
	if i := bytes.LastIndexByte(o, ':'); i >= 0 && !bytes.Contains(o[i:], []byte("]")) {
		host, port = o[:i], o[i+1:]
	}
	if len(port) == 0 || bytes.EqualFold(scheme, []byte("http")) && string(port) == "80" ||
		bytes.EqualFold(scheme, []byte("https")) && string(port) == "443" {
		port = nil
	}
	return scheme, host, port
}

// tokenBucket is a static project's local event rate: rate tokens a
// second, bursts of up to one second's worth.
type tokenBucket struct {
	mu     sync.Mutex
	rate   float64
	tokens float64
	last   time.Time
	now    func() time.Time
}

func newTokenBucket(rate float64, now func() time.Time) *tokenBucket {
	return &tokenBucket{rate: rate, tokens: max(rate, 1), last: now(), now: now}
}

// take removes n tokens if there are enough, else reports how long until
// there would be.
func (tb *tokenBucket) take(n int) (ok bool, wait time.Duration) {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	now := tb.now()
	tb.tokens = min(tb.tokens+now.Sub(tb.last).Seconds()*tb.rate, max(tb.rate, 1))
	tb.last = now
	if tb.tokens >= float64(n) {
		tb.tokens -= float64(n)
		return true, 0
	}
	return false, time.Duration((float64(n) - tb.tokens) / tb.rate * float64(time.Second))
}

// OrganizationID returns the organization of the config serving pid and
// key, 0 when Baton has none (proxy mode, or a key not looked up yet).
func (p *Projects) OrganizationID(pid uint64, key []byte) uint64 {
	if st := p.StateOf(pid, key); st != nil {
		return st.OrganizationID
	}
	return 0
}

// StateOf returns the config serving pid and key, nil when Baton has none
// (proxy mode, or a key not looked up yet).
func (p *Projects) StateOf(pid uint64, key []byte) *project.State {
	if prj := p.static[pid]; prj != nil && prj.state != nil {
		return prj.state
	}
	if p.mode == managed {
		if st, status := p.cache.GetBytes(key); status == project.Ready && st != nil {
			return st
		}
	}
	return nil
}
