// Package fleet keeps the state a fleet of Batons shares in Redis. Its
// first part is global quota counting: Counter is a policy.Counter whose
// windows live in Redis, so N Batons behind a load balancer admit one
// quota's limit in total instead of N times it.
//
// Leases. A decision must not wait on a round trip: a Baton takes a lease
// of a window's budget (1/32 of the limit, 1 to 256 items) with one Lua
// script call that checks the window's count and adds the lease to it
// atomically, then spends the lease locally. A lease is never returned, so
// items a Baton leased but did not use in a window are not admitted
// elsewhere; a window whose budget is gone is remembered locally until
// it ends, so refusals cost no round trip either.
//
// Fallback. A script call that fails or takes longer than Options.MaxWait
// makes that decision, and every one after it, local: a window then
// admits limit/FallbackShare on this Baton (what it already spent counts),
// baton_redis_up goes to 0, and one log line says so. A probe tries Redis
// every ProbeInterval; once it answers, counting goes back to Redis, and
// what was admitted locally meanwhile is added to the window's count with
// the next lease. Ingest is never blocked longer than MaxWait and nothing
// is dropped for lack of Redis.
//
// Cardinality. AdmitSeries is the store of relay/aggregate's cardinality
// Limiter: Relay's sliding window (docs/relay-protocol.md, 6.4). A scope
// (project, namespace) with a window W in granules of G keeps one Redis
// set of series hashes per granule; the current granule's set (the
// working set) holds every series admitted in the last W. One Lua script
// call per scope checks a batch of hashes against the working set and its
// limit and adds the admitted ones to the sets of the granules from now to
// W later, atomically; the scopes of a batch go in one pipeline, so a batch
// costs one round trip, bounded by MaxWait. Its failures share the quota
// counter's fallback: the Limiter then decides locally, and counting
// returns to Redis with the probe. Series admitted locally meanwhile are
// not copied to Redis: at their next sighting they are checked there as
// new ones (admitted while the limit has room).
//
// Memory: one entry per live window (quota, scope), at most MaxKeys,
// swept once a minute; the cardinality store keeps nothing in Go between
// calls. See DESIGN.md "Fleet state in Redis".
//
// Project configs. Configs reads project configs kept in Redis one key per
// part (<prefix>:<public key>:<part>): every part of up to ReadKeys keys in
// one pipeline, each part cut at MaxPartBytes. Put writes a part and
// publishes the public key on <prefix>:updates; Watch follows that channel,
// subscribing again after a failure, and asks its caller to resync while
// it is lost (DESIGN.md "Project configs in Redis"). What a part means is
// relay/project's business: this package moves bytes.
package fleet
