package routing

import (
	"fmt"
	"net"

	"github.com/valyala/fasthttp"

	"github.com/baton-relay/baton/config"
)

// Routes with `upstream: NAME` go to the pool of config.Upstreams[NAME],
// one pool per name however many classes use it.
func init() {
	Register(config.UpstreamDest{}.Kind(), func(d config.Destination, env *Env) (Sink, error) {
		return openUpstream(env, d.(config.UpstreamDest).Upstream)
	})
}

func openUpstream(env *Env, name string) (*Upstream, error) {
	return Shared(env, "upstream/"+name, func() (*Upstream, error) {
		uc, ok := env.Config.Upstreams[name]
		if !ok {
			return nil, fmt.Errorf("routing: route names unknown upstream %q", name)
		}
		maxFailures := uc.MaxFailures
		if maxFailures == 0 {
			maxFailures = -1 // config: 0 never ejects
		}
		connectTimeout := uc.ConnectTimeout
		// More could never run at once: a node's requests share MaxConns.
		concurrency := min(uc.Concurrency, uc.MaxConns)
		u, err := NewUpstream(UpstreamOptions{
			URLs:              uc.URLs,
			Compression:       string(uc.Compression),
			Timeout:           uc.Timeout,
			MaxFailures:       maxFailures,
			ProbeInterval:     uc.ProbeInterval,
			OutageGracePeriod: uc.OutageGracePeriod,
			MaxRetryInterval:  uc.MaxRetryInterval,
			MaxConnsPerHost:   uc.MaxConns,
			Concurrency:       concurrency,
			UserAgent:         env.UserAgent,
			Sign:              env.Sign,
			Logger:            env.Logger.With("upstream", name),
			Dial: func(addr string) (net.Conn, error) {
				return fasthttp.DialTimeout(addr, connectTimeout)
			},
		})
		if err != nil {
			return nil, fmt.Errorf("routing: upstream %q: %w", name, err)
		}
		return u, nil
	})
}

// Upstream returns the pool of config.Upstreams[name], opening it unless a
// route already did (managed mode fetches project configs through it).
func (s *Sinks) Upstream(name string) (*Upstream, error) {
	env := s.env
	return openUpstream(&env, name)
}

// Upstreams returns the upstream pools opened, by name.
func (s *Sinks) Upstreams() map[string]*Upstream {
	return sharedByName[*Upstream](s, "upstream")
}
