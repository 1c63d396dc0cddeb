// Package topology is Baton's fleet declaration: one versioned YAML file
// describes the regions, tiers and node groups of a fleet, where each
// traffic class goes from each group (another group, an external upstream
// such as Sentry, or a Kafka topic), the Kafka clusters, and the relay
// identities; every node's ordinary Baton config is derived from it.
//
// Parse decodes a file with the config package's strict decoder, so
// unknown keys and type errors carry file:line like `baton config check`.
// Check reports every mistake of the fleet at once, each at the line of
// the value that is wrong: a class that reaches no terminal sink from an
// entry tier, a cycle, a route to a group that does not exist or does not
// trust the sender, steering that differs within a pool, a secret written
// as a value, ports, data directories and budgets that collide on a host.
// Render writes one config per node plus the fleet base and per-region
// overlays, touching only files whose content changed; Graph draws the
// fleet as Mermaid or Graphviz DOT. The format is documented in the
// README ("Topology").
package topology
