package relay

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/baton-relay/baton/config"
	"github.com/baton-relay/baton/relay/policy"
)

// projects is the project policy in force.
func (r *Relay) projects() *policy.Projects { return r.policy.Load() }

// ErrReloadMode means a reload tried to change the mode, which needs a
// restart.
var ErrReloadMode = errors.New("relay: the mode cannot change on reload; restart Baton")

// ReloadProjects replaces the static projects (static mode, and the
// overrides of managed mode) and managed.client_options with those of
// cfg, without a restart: the
// requests after it see the new set. Other settings of cfg are ignored.
func (r *Relay) ReloadProjects(cfg config.Config) (int, error) {
	if cfg.Mode != r.cfg.Mode {
		return 0, fmt.Errorf("%w (from %s to %s)", ErrReloadMode, r.cfg.Mode, cfg.Mode)
	}
	p, err := r.newProjects(cfg)
	if err != nil {
		return 0, err
	}
	r.policy.Store(p)
	return len(cfg.Projects), nil
}

// CheckProjects reports what would stop cfg's static projects from
// starting (a Relay project file that does not decode), for `config check`.
func CheckProjects(cfg config.Config) error {
	_, err := policy.New(cfg, nil, policy.Options{})
	return err
}

func (r *Relay) newProjects(cfg config.Config) (*policy.Projects, error) {
	var cache policy.Cache
	if r.cache != nil { // a nil *project.Cache is not a nil Cache
		cache = r.cache
	}
	return policy.New(cfg, cache, policy.Options{})
}

// requestOrigin is the origin a request's allowedDomains are checked
// against (see policy.Origin).
func requestOrigin(req *fasthttp.Request) []byte {
	return policy.Origin(req.Header.Peek("Origin"), req.Header.Referer())
}

// doorAnswers is how a refusal at the door is answered: Relay's status
// and error text, counted under a reject reason.
var doorAnswers = [policy.NumRefusals]struct {
	status int
	why    rejectReason
	detail string
}{
	policy.UnknownProject:  {fasthttp.StatusForbidden, rejectProject, "event submission rejected with_reason: ProjectId"},
	policy.UnknownKey:      {fasthttp.StatusUnauthorized, rejectProject, "invalid public key for this project"},
	policy.DisabledKey:     {fasthttp.StatusForbidden, rejectDisabled, "event submission rejected with_reason: DisabledKey"},
	policy.DisabledProject: {fasthttp.StatusForbidden, rejectDisabled, "event submission rejected with_reason: ProjectDisabled"},
	policy.CORS:            {fasthttp.StatusForbidden, rejectCORS, "event submission rejected with_reason: Cors"},
	policy.Overload:        {fasthttp.StatusServiceUnavailable, rejectOverload, "too many project configs are being looked up; retry later"},
}

// doorRefusal is the answer to a request the project policy refused.
func doorRefusal(why policy.Refusal) result {
	a := &doorAnswers[why]
	if a.status == fasthttp.StatusServiceUnavailable {
		return busy(a.why, retryAfterFull, a.detail)
	}
	return refusal(a.status, a.why, a.detail)
}

// appendRateLimits appends the X-Sentry-Rate-Limits value for a verdict's
// limits: "seconds:categories:scope:reason", comma separated.
func appendRateLimits(dst []byte, limits []policy.RateLimit) []byte {
	for i, l := range limits {
		if i > 0 {
			dst = append(dst, ", "...)
		}
		secs := int64((l.After + time.Second - 1) / time.Second)
		dst = strconv.AppendInt(dst, max(secs, 1), 10)
		dst = append(dst, ':')
		if l.Cached {
			dst = append(dst, l.Categories...)
		} else {
			dst = append(dst, l.Category.String()...)
		}
		dst = append(dst, ':')
		dst = append(dst, l.Scope...)
		if l.Reason != "" {
			dst = append(dst, ':')
			dst = append(dst, strings.ReplaceAll(l.Reason, ",", "_")...)
		}
	}
	return dst
}

// retryAfter is the longest wait among limits, in whole seconds.
func retryAfter(limits []policy.RateLimit) int64 {
	var longest time.Duration
	for _, l := range limits {
		longest = max(longest, l.After)
	}
	return max(int64((longest+time.Second-1)/time.Second), 1)
}

// reloadable are the settings ReloadProjects applies (with what is under
// them); every other setting needs a restart.
var reloadable = []string{"projects", "project_files", "defaults.project", "managed.client_options"}

// AppliedOnReload reports whether the setting at path (as config.Changed
// names it) takes effect on ReloadProjects, rather than at the next start.
func AppliedOnReload(path string) bool {
	for _, p := range reloadable {
		if path == p || strings.HasPrefix(path, p+".") {
			return true
		}
	}
	return false
}
