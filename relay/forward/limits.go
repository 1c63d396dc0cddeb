package forward

import (
	"errors"

	"github.com/baton-relay/baton/routing"
)

// LimitRecorder learns the rate limits the upstream answered a 429 with,
// for the project and key of the message it refused: relay caches them
// (policy.UpstreamLimits) so the door refuses what the upstream would,
// instead of buffering it.
type LimitRecorder interface {
	RecordLimits(projectID uint64, publicKey string, limits []routing.RateLimit)
}

// recordLimits passes the limits of a 429 refusing m to the LimitRecorder,
// if there is one. A 429 without X-Sentry-Rate-Limits limits every
// category of m's key for its Retry-After, as Relay scopes it; a 503 is
// the upstream's overload, not a limit, and is not recorded.
func (f *Forwarder) recordLimits(m *routing.Message, err error) {
	if f.o.RateLimits == nil {
		return
	}
	var se *routing.StatusError
	if !errors.As(err, &se) || se.Status != 429 {
		return
	}
	limits := se.Limits
	if len(limits) == 0 {
		after, _ := routing.RetryAfter(err)
		if after <= 0 {
			return
		}
		limits = []routing.RateLimit{{RetryAfter: after, Scope: "key"}}
	}
	f.o.RateLimits.RecordLimits(m.ProjectID, m.PublicKey, limits)
}
