// Package project holds project configs in managed mode: the state of each
// project as its upstream describes it, split into independently decoded
// parts, and the cache that fetches those states on demand.
//
// A state's parts (keys, client, quotas, filters, sampling, metrics,
// features, grouping, clientOptions, tailSampling) are decoded one by one:
// a malformed sampling part turns sampling
// off for that revision and is counted and logged once, while the project's
// events keep flowing. Only an unusable top level (not an object, bad
// publicKeys) makes a key unknown.
//
// The Cache answers Get from memory without waiting: Ready with a state
// (fresh, or stale within the grace period while it refreshes), Pending
// while a fetch is queued or in flight, or Unknown for keys the upstream
// does not have (remembered for the miss expiry). Misses are gathered by
// one goroutine (Run) into batched POST /api/0/relays/projectconfigs/
// requests, a few in parallel, through the caller's Fetcher, which signs
// and sends them. Configs and misses are kept in separate sharded LRUs, so
// a flood of random keys can neither grow memory past its bound nor evict
// the configs of real projects.
//
// A config may also be stored with each part apart (Redis): AssembleParts
// builds the state an upstream would send from them, listing the parts it
// could not read under "brokenParts", which DecodeState turns off alone.
// Invalidate and ExpireSource let such a source's change notifications
// (or their loss) reach the cache.
package project
