// Package topology is Baton's fleet declaration: one versioned YAML file
// describes the regions, tiers and node groups of a fleet, where each
// traffic class goes from each group (another group, an external upstream
// such as Sentry, or a Kafka topic), the Kafka clusters, the Redis
// instances groups count fleet-wide quotas in, and the relay identities;
// every node's ordinary Baton config is derived from it.
//
// Parse decodes a file with the config package's strict decoder, so
// unknown keys and type errors carry file:line like `baton config check`.
// Check reports every mistake of the fleet at once, each at the line of
// the value that is wrong: a class that reaches no terminal sink from an
// entry tier, a cycle anywhere, a route to a group that does not exist, a
// managed group whose project config requests reach no managed pool that
// trusts it (nor Sentry), trust and secrets declared where Baton never
// reads them, steering that differs within a pool, a secret written
// as a value, ports, data directories and budgets that collide on a host,
// and Redis that would leave quotas uncounted, counted apart or twice
// (redis.go).
// Render writes one config per node plus the fleet base and per-region
// overlays, touching only files whose content changed; Graph draws the
// fleet as Mermaid or Graphviz DOT. The format is documented in the
// README ("Topology").
package topology
