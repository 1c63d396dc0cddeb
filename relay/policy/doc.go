// Package policy holds the project policy and edge rules: which projects,
// keys and origins may send (admission), and what a project's config does
// to each class of an envelope (the verdict). It has no HTTP: relay maps a
// Refusal to its status code and error text, and a Verdict's RateLimits to
// X-Sentry-Rate-Limits and Retry-After.
//
// Where it is applied. Every ingest request passes the door: relay calls
// Projects.Admit with the project id, the public key and the request's
// Origin, then, with the envelope's item counts per class, Enforcer.Apply
// where events are forwarded as received (proxy mode, normalization
// disabled), or else in Relay's order: Enforcer.Door (cached upstream
// limits, client address, trace release), normalization, Enforcer.Filter
// on the normalized tree (EventFromTree), Enforcer.Limit (quotas, rate,
// sampling: what the filters left), then PII scrubbing.
// An envelope that arrived before its project's config (Admission.Pending,
// managed mode) is written to a pending stream, and both are applied again
// when the releaser moves it on (relay's releasePolicy): a refusal then
// drops the record with Refusal.Reason, Overload keeps it waiting.
//
// What each rule reads from the project state (project.State):
//
//	door (Admit)         ProjectID, Keys (known, enabled), Disabled, AllowedDomains
//	client address       Filters.ClientIPs, and the address only if that is set
//	release filter       Filters.Releases, and the release of the envelope header's trace context
//	event filters        Filters.Event() (compiled per revision) and the global config's generic
//	                     filters (Admission.global), and the event item, parsed only for a
//	                     project with such a filter (filters.go, event.go); Verdict.Filter
//	                     names the filter, Enforcer.FilterCounts counts per filter
//	feature gates        Features (replays need organizations:session-replay)
//	quotas               Quotas (limit 0 drops; id+window is counted per edge, or fleet-wide
//	                     through Options.Counter: relay/fleet; a class is counted only when
//	                     every quota covering it admits it, the envelope's classes in one
//	                     Counter.Count), OrganizationID, KeyID
//	event rate (static)  events_per_second of the config, a token bucket per project
//	upstream limits      no config: the limits the upstream answered with a 429 for the
//	                     organization, project, key or globally, cached in UpstreamLimits
//	                     until they expire (upstream.go), checked first, also in proxy
//	                     mode and for pending envelopes
//	dynamic sampling     Sampling rules, the trace context, the clock (time ranges)
//
// Projects is immutable: relay swaps the whole value on a reload. The
// Enforcer keeps the quota counters (bounded, swept by window) and lives
// as long as the relay. Both read the clock of Options.Now.
//
// A new edge rule plugs in at one of two places: a rule that refuses
// whole requests before anything is read goes into checkState (or a mode's
// Admit) with a new Refusal, mapped to an answer in relay/projects.go; a
// rule that drops classes of an envelope goes into Enforcer.Door (needs
// no event), judge (reads it) or Limit (counts what is kept), calling
// dropClass with an outcome.Reason and, when the client should back off,
// appending a RateLimit. They are on the hot path: they must not allocate
// for a project without the rule, and reads the header JSON only through
// its lazy trace().
package policy
