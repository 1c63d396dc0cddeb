// Package clientopts is the client options document: SDK settings a
// project pushes into its clients through Baton (docs/client-options.md).
//
// A Document is versioned and validated as a whole (Parse): every problem
// is a *FieldError naming the path of the bad value ("rules[2].match.
// percentage"), so `config check` can point at the YAML line of a static
// project and a managed project's broken part names what is wrong. A
// Document is compiled once per revision and immutable: Resolve evaluates
// its rules for one client (release, environment, platform, SDK name and
// version, device id) without allocating, and returns the answer rendered
// once per combination of matched rules, with its ETag.
//
// Rules apply in order; each matching rule overrides the options it sets.
// A percentage rule matches a stable share of devices: the device id is
// hashed with the rule id, so a device stays in (or out of) a rollout
// across requests and Batons, and two rules pick independent cohorts.
//
// The package is standard library only: config validates static documents
// with it, relay/project decodes the clientOptions part with it.
package clientopts
