// Package grouping computes, at the edge, the issue hash Sentry's default
// grouping configuration (newstyle:2023-01-11) gives an event, so Baton can
// act per issue before Sentry sees the event. docs/grouping.md describes
// the algorithm, where each rule comes from and what is not reproduced.
//
// Hash is a pure function of a normalized event tree (relay/event): no I/O,
// no project state. It returns every variant Sentry would compute (app,
// system, default, custom fingerprint, checksum) with its component tree,
// and the primary hash. The stack-trace rules Sentry applies before hashing
// (in_app and "-group" decisions) ship as data: rules/, versioned by name.
//
// Final is false when Sentry would hash different values after processing
// Baton does not do: symbolication (native frames), source maps (minified
// JavaScript), ProGuard/R8 (obfuscated Java), fingerprint variables, thread
// selection and exception groups. Final also assumes the project uses the
// default grouping config without its own stack-trace or fingerprint rules:
// a caller that knows otherwise must not treat the hash as final.
package grouping
