package relay

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/baton-relay/baton/config"
	"github.com/baton-relay/baton/relay/project"
)

// admission is what the project policy says about a request at the door.
type admission struct {
	// state is the project's config: nil in proxy mode and while pending.
	state *project.State
	// pending: managed mode has no config for the key yet; the envelope
	// waits in the buffer's pending streams until it arrives.
	pending bool
	// limiter is a static project's local event rate, if it has one.
	limiter *tokenBucket
	// status, when not 0, refuses the request with why and detail.
	status int
	why    rejectReason
	detail string
}

// projectPolicy decides at the door whether a project and key may send.
type projectPolicy interface {
	// admit judges a request of project pid with key; origin is its Origin
	// (or Referer) header, nil when it has none.
	admit(pid uint64, key, origin []byte) admission
}

// policyBox holds the current policy for atomic swaps.
type policyBox struct{ projectPolicy }

// projects is the project policy in force.
func (r *Relay) projects() projectPolicy { return r.policy.Load().projectPolicy }

// ErrReloadMode means a reload tried to change the mode, which needs a
// restart.
var ErrReloadMode = errors.New("relay: the mode cannot change on reload; restart Baton")

// ReloadProjects replaces the static projects (static mode, and the
// overrides of managed mode) with those of cfg, without a restart: the
// requests after it see the new set. Other settings of cfg are ignored.
func (r *Relay) ReloadProjects(cfg config.Config) (int, error) {
	if cfg.Mode != r.cfg.Mode {
		return 0, fmt.Errorf("%w (from %s to %s)", ErrReloadMode, r.cfg.Mode, cfg.Mode)
	}
	policy, err := newProjectPolicy(cfg, r.cache)
	if err != nil {
		return 0, err
	}
	r.policy.Store(&policyBox{policy})
	return len(cfg.Projects), nil
}

func newProjectPolicy(cfg config.Config, cache *project.Cache) (projectPolicy, error) {
	switch cfg.Mode {
	case config.ModeStatic:
		return newStaticProjects(cfg)
	case config.ModeManaged:
		static, err := newStaticProjects(cfg)
		if err != nil {
			return nil, err
		}
		return &managedProjects{cache: cache, static: static}, nil
	default:
		return proxyProjects{}, nil
	}
}

// proxyProjects accepts every project id and key: upstream decides.
type proxyProjects struct{}

func (proxyProjects) admit(uint64, []byte, []byte) admission { return admission{} }

// staticProjects serves the projects listed in the config.
type staticProjects map[uint64]*staticProject

type staticProject struct {
	state   *project.State
	limiter *tokenBucket
}

func newStaticProjects(cfg config.Config) (staticProjects, error) {
	sp := staticProjects{}
	for id, p := range cfg.Projects {
		pid, err := strconv.ParseUint(id, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("relay: project id %q: %w", id, err)
		}
		st := &project.State{ProjectID: pid, Disabled: p.Disabled, AllowedDomains: p.AllowedDomains}
		for _, k := range p.PublicKeys {
			st.Keys = append(st.Keys, project.Key{PublicKey: k})
		}
		prj := &staticProject{state: st}
		if eps := p.RateLimit.EventsPerSecond; eps > 0 {
			prj.limiter = newTokenBucket(eps, time.Now)
		}
		sp[pid] = prj
	}
	return sp, nil
}

func (sp staticProjects) admit(pid uint64, key, origin []byte) admission {
	p := sp[pid]
	if p == nil {
		return refuse(fasthttp.StatusForbidden, rejectProject, "event submission rejected with_reason: ProjectId")
	}
	a := checkState(p.state, pid, key, origin)
	a.limiter = p.limiter
	return a
}

// managedProjects serves configs fetched from the upstream; static
// projects of the same id take precedence.
type managedProjects struct {
	cache  *project.Cache
	static staticProjects
}

// admit answers from the cache without waiting: a known key is checked, an
// unknown one refused, and one being looked up is parked (pending) — or
// refused with 503 when the lookups outstanding are at their cap, so a
// flood of random keys is shed while known projects flow.
func (mp *managedProjects) admit(pid uint64, key, origin []byte) admission {
	if p := mp.static[pid]; p != nil {
		return mp.static.admit(pid, key, origin)
	}
	st, status := mp.cache.GetBytes(key)
	switch status {
	case project.Ready:
		return checkState(st, pid, key, origin)
	case project.Unknown:
		return refuse(fasthttp.StatusForbidden, rejectProject, "event submission rejected with_reason: ProjectId")
	case project.Busy:
		return refuse(fasthttp.StatusServiceUnavailable, rejectOverload, "too many project configs are being looked up; retry later")
	default:
		return admission{pending: true}
	}
}

func refuse(status int, why rejectReason, detail string) admission {
	return admission{status: status, why: why, detail: detail}
}

// checkState applies a known project's door rules: the key must be the
// project's and enabled, the project enabled, and the origin allowed.
func checkState(st *project.State, pid uint64, key, origin []byte) admission {
	if st.ProjectID != 0 && st.ProjectID != pid {
		return refuse(fasthttp.StatusForbidden, rejectProject, "event submission rejected with_reason: ProjectId")
	}
	known, enabled := st.KeyEnabled(key)
	if !known {
		return refuse(fasthttp.StatusUnauthorized, rejectProject, "invalid public key for this project")
	}
	if !enabled {
		return refuse(fasthttp.StatusForbidden, rejectDisabled, "event submission rejected with_reason: DisabledKey")
	}
	if st.Disabled {
		return refuse(fasthttp.StatusForbidden, rejectDisabled, "event submission rejected with_reason: ProjectDisabled")
	}
	if !originAllowed(st.AllowedDomains, origin) {
		return refuse(fasthttp.StatusForbidden, rejectCORS, "event submission rejected with_reason: Cors")
	}
	return admission{state: st}
}

// requestOrigin is the Origin header, or the origin of the Referer when
// there is none: what allowedDomains is checked against, and what a record
// keeps for the check on release. The Referer is cut to scheme://host[:port]
// (see refererOrigin), so its path and query, often long and sometimes
// secret, are not written to the buffer; the Origin header is kept whole.
func requestOrigin(req *fasthttp.Request) []byte {
	if origin := req.Header.Peek("Origin"); len(origin) > 0 {
		return origin
	}
	return refererOrigin(req.Header.Referer())
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

// originAllowed checks an origin against allowedDomains as Relay does: "*"
// allows all, an empty list allows none, a request without an origin is
// allowed, and patterns may carry "*" wildcards.
func originAllowed(domains []string, origin []byte) bool {
	if len(origin) == 0 {
		return true
	}
	host := origin
	if i := bytes.Index(host, []byte("://")); i >= 0 {
		host = host[i+3:]
	}
	if i := bytes.IndexAny(host, "/?#"); i >= 0 {
		host = host[:i]
	}
	if i := bytes.LastIndexByte(host, ':'); i >= 0 && !bytes.Contains(host[i:], []byte("]")) {
		host = host[:i]
	}
	for _, d := range domains {
		if d == "*" || wildcardMatch(d, string(host)) {
			return true
		}
	}
	return false
}

// wildcardMatch matches s against a pattern where '*' stands for any run of
// characters (including dots, as Relay's glob does for domains).
func wildcardMatch(pattern, s string) bool {
	for len(pattern) > 0 {
		if pattern[0] == '*' {
			pattern = pattern[1:]
			if pattern == "" {
				return true
			}
			for i := 0; i <= len(s); i++ {
				if wildcardMatch(pattern, s[i:]) {
					return true
				}
			}
			return false
		}
		if s == "" || pattern[0] != s[0] {
			return false
		}
		pattern, s = pattern[1:], s[1:]
	}
	return s == ""
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
