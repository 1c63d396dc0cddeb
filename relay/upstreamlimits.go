package relay

import (
	"github.com/baton-relay/baton/relay/policy"
	"github.com/baton-relay/baton/routing"
)

// upstreamLimits is the forwarders' forward.LimitRecorder: the limits of
// an upstream 429 go into the enforcer's cache (policy.UpstreamLimits),
// scoped by the refused message's project and key and, when Baton has the
// project's config, its organization. The door then answers the SDK 429
// with them until they expire.
type upstreamLimits struct{ r *Relay }

func (u upstreamLimits) RecordLimits(pid uint64, key string, limits []routing.RateLimit) {
	sc := policy.Scoping{
		OrganizationID: u.r.projects().OrganizationID(pid, []byte(key)),
		ProjectID:      pid,
		PublicKey:      key,
	}
	var buf [4]policy.UpstreamLimit
	ls := buf[:0]
	for _, l := range limits {
		ls = append(ls, policy.UpstreamLimit{
			RetryAfter: l.RetryAfter, Categories: l.Categories, Scope: l.Scope,
			Reason: l.Reason, Namespaces: l.Namespaces,
		})
	}
	u.r.enforcer.Upstream().Record(sc, ls)
}
