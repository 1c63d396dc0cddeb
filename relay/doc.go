// Package relay is Baton's HTTP front and its wiring. It serves Sentry's
// endpoints and runs ingest as four steps, admit → frame → commit →
// respond: request auth and the project policy's verdict (relay/policy),
// the records of each class (relay/record), the fsync'd buffer append, and
// the one place a result becomes HTTP. It builds and stops everything
// else in order (New, Start, Close): the buffer, the sinks (routing), the
// loops that drain the buffer (relay/forward), the managed-mode config
// cache (relay/project) and registration with the upstream (relay/auth for
// the identity), the outcome counters and client reports (relay/outcome).
// DESIGN.md's package table says which goroutines each part owns.
package relay
