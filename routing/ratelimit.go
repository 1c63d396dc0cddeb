package routing

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/baton-relay/baton/envelope"
)

// RateLimit is one entry of an X-Sentry-Rate-Limits header:
// <retry_after>:<categories>:<scope>[:<reason>[:<namespaces>]].
type RateLimit struct {
	RetryAfter time.Duration
	// Categories are data category names; empty means all categories.
	Categories []string
	// Scope is "organization", "project", "key" or "global"; empty when the
	// entry did not say.
	Scope  string
	Reason string // reason code, optional
	// Namespaces are metric namespaces (metric_bucket limits only).
	Namespaces []string
}

// limitFor is how long the upstream asks env to wait: the longest limit
// that applies to a category of env's items (a limit without categories
// applies to all). A limit on another category does not hold env back: a
// 429 whose limits name only transactions is not a reason to park errors
// for a minute. When no limit applies, or env does not parse, the longest
// of all is the safe answer.
func limitFor(limits []RateLimit, env []byte) time.Duration {
	var all, applies time.Duration
	matched := false
	var e envelope.Envelope
	parsed := e.Parse(env, nil) == nil
	for _, l := range limits {
		all = max(all, l.RetryAfter)
		if parsed && l.covers(&e) {
			applies, matched = max(applies, l.RetryAfter), true
		}
	}
	if !matched {
		return all
	}
	return applies
}

// covers reports whether l limits a category of e's items.
func (l *RateLimit) covers(e *envelope.Envelope) bool {
	if len(l.Categories) == 0 {
		return true
	}
	for i := range e.Items {
		c := e.Items[i].Category().String()
		for _, name := range l.Categories {
			if name == c {
				return true
			}
		}
	}
	return false
}

// ErrBadRateLimit is wrapped by ParseRateLimits for malformed entries.
var ErrBadRateLimit = errors.New("routing: malformed rate limit")

// maxRetryAfter caps parsed waits so a hostile header cannot overflow a
// time.Duration or park a class for years.
const maxRetryAfter = 30 * 24 * time.Hour

// ParseRateLimits parses an X-Sentry-Rate-Limits header value. Entries are
// comma separated; empty entries are ignored. A malformed entry is skipped
// and reported in err, so callers still get every valid limit.
func ParseRateLimits(header string) ([]RateLimit, error) {
	var (
		limits []RateLimit
		errs   []error
	)
	for entry := range strings.SplitSeq(header, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		l, err := parseRateLimit(entry)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		limits = append(limits, l)
	}
	return limits, errors.Join(errs...)
}

func parseRateLimit(entry string) (RateLimit, error) {
	fields := strings.SplitN(entry, ":", 5)
	d, ok := parseSeconds(fields[0])
	if !ok {
		return RateLimit{}, fmt.Errorf("%w: retry_after %q", ErrBadRateLimit, fields[0])
	}
	l := RateLimit{RetryAfter: d}
	if len(fields) > 1 {
		l.Categories = splitList(fields[1])
	}
	if len(fields) > 2 {
		l.Scope = strings.TrimSpace(fields[2])
	}
	if len(fields) > 3 {
		l.Reason = strings.TrimSpace(fields[3])
	}
	if len(fields) > 4 {
		l.Namespaces = splitList(fields[4])
	}
	return l, nil
}

// splitList splits a ;-separated list, dropping empty names.
func splitList(s string) []string {
	var out []string
	for name := range strings.SplitSeq(s, ";") {
		if name = strings.TrimSpace(name); name != "" {
			out = append(out, name)
		}
	}
	return out
}

// parseSeconds parses a non-negative number of seconds (Relay writes
// integers, SDKs accept fractions), capped at maxRetryAfter.
func parseSeconds(s string) (time.Duration, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, false
	}
	if n, err := strconv.ParseUint(s, 10, 64); err == nil {
		if n > uint64(maxRetryAfter/time.Second) {
			return maxRetryAfter, true
		}
		return time.Duration(n) * time.Second, true
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || f < 0 {
		return 0, false
	}
	if f > maxRetryAfter.Seconds() {
		return maxRetryAfter, true
	}
	return time.Duration(f * float64(time.Second)), true
}

// parseRetryAfter parses a Retry-After value: seconds or an HTTP date
// (relative to now; a date in the past means 0).
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	if d, ok := parseSeconds(v); ok {
		return d, true
	}
	t, err := http.ParseTime(strings.TrimSpace(v))
	if err != nil {
		return 0, false
	}
	return min(max(t.Sub(now), 0), maxRetryAfter), true
}
