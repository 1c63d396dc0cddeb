// Package fleet keeps the state a fleet of Batons shares in Redis. Its
// first part is global quota counting: Counter counts the windows of
// policy.Counter (relay adapts one to the other) in Redis, so N Batons
// behind a load balancer admit one quota's limit in total instead of N
// times it.
//
// Leases. A decision must not wait on a round trip: a Baton takes a lease
// of a window's budget (1/32 of the limit, 1 to 256 items) with a Lua
// script call that checks the window's count and adds the lease to it
// atomically, then spends the lease locally. A lease is never returned, so
// items a Baton leased but did not use in a window are not admitted
// elsewhere; a window whose budget is gone is remembered locally until
// it ends, so refusals cost no round trip either.
//
// Prefetch. When a window's lease left falls under half a lease (leases
// of 8 items or more), one background goroutine refills it: the queued
// windows (at most 1024) go in one script call (up to 64 windows, one
// call per hash tag in a Cluster), bounded by MaxWait, so a decision
// rarely waits on Redis. A window has one refill in flight at most; a
// decision short of lease on it waits for that refill, then decides
// again, within MaxWait in all. A prefetched lease is counted in Redis
// when it is granted, as any lease: the fleet never admits more than the
// limit (a refill answering after its window ended is dropped, counted
// in the old window). A Baton holds up to 1.5 leases of a window unspent
// instead of one, so one whose traffic stops strands up to 1.5/32 of the
// limit (admits less, never more).
//
// Groups. A decision (Count) is one envelope: its charges come in groups,
// one per class of items, each the quotas covering it. As Relay's
// is_rate_limited.lua, a group is counted only when every quota admits it,
// and groups are decided in order. A group whose windows' leases cover it
// is decided locally, charging nothing until all admit; one a window known
// spent refuses is refused locally; the windows short of lease go to one
// script call with every group's charges on them, which decides the
// groups as the leases and Redis's counts allow and takes leases only for
// windows no refused group touched. So an envelope costs one round trip
// at most, and a refused one takes nothing. Keys are hash-tagged with the
// organization, so a Cluster serves the call from one slot; an envelope
// with a global quota beside an organization's is two calls in one
// pipeline there, each atomic on its own (a group one admits and the
// other refuses keeps what the first took as lease, spent by later
// envelopes).
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
