package relay

import (
	"bytes"
	"crypto/subtle"
	"fmt"
	"strconv"

	"github.com/valyala/fasthttp"

	"github.com/baton-relay/baton/config"
)

// projectPolicy decides at the door whether a project and key may send.
// It answers a status and detail to refuse, or 0 to accept.
type projectPolicy interface {
	check(pid uint64, key []byte, req *fasthttp.Request) (status int, detail string)
}

func newProjectPolicy(cfg config.Config) (projectPolicy, error) {
	switch cfg.Mode {
	case "static":
		return newStaticProjects(cfg)
	default: // proxy; managed mode's cache comes with project configs
		return proxyProjects{}, nil
	}
}

// proxyProjects accepts every project id and key: upstream decides.
type proxyProjects struct{}

func (proxyProjects) check(uint64, []byte, *fasthttp.Request) (int, string) { return 0, "" }

// staticProjects serves the projects listed in the config.
type staticProjects map[uint64]*staticProject

type staticProject struct {
	keys           [][]byte
	disabled       bool
	allowedDomains []string
}

func newStaticProjects(cfg config.Config) (staticProjects, error) {
	sp := staticProjects{}
	for id, p := range cfg.Projects {
		pid, err := strconv.ParseUint(id, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("relay: project id %q: %w", id, err)
		}
		prj := &staticProject{disabled: p.Disabled, allowedDomains: p.AllowedDomains}
		for _, k := range p.PublicKeys {
			prj.keys = append(prj.keys, []byte(k))
		}
		sp[pid] = prj
	}
	return sp, nil
}

func (sp staticProjects) check(pid uint64, key []byte, req *fasthttp.Request) (int, string) {
	p := sp[pid]
	if p == nil {
		return fasthttp.StatusForbidden, "event submission rejected with_reason: ProjectId"
	}
	known := 0
	for _, k := range p.keys {
		known |= subtle.ConstantTimeCompare(k, key)
	}
	if known == 0 {
		return fasthttp.StatusUnauthorized, "invalid public key for this project"
	}
	if p.disabled {
		return fasthttp.StatusForbidden, "event submission rejected with_reason: ProjectDisabled"
	}
	if !originAllowed(p.allowedDomains, req) {
		return fasthttp.StatusForbidden, "event submission rejected with_reason: Cors"
	}
	return 0, ""
}

// originAllowed checks Origin (or Referer) against allowedDomains as Relay
// does: "*" allows all, an empty list allows none, a request without an
// origin is allowed, and patterns may carry "*" wildcards.
func originAllowed(domains []string, req *fasthttp.Request) bool {
	origin := req.Header.Peek("Origin")
	if len(origin) == 0 {
		origin = req.Header.Referer()
	}
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
