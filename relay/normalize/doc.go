// Package normalize does what a Sentry Relay does to an event at the first
// (non-processing) relay, before it is forwarded: legacy shapes to current
// ones (message → logentry, exception lists → values, tags and request
// headers as pairs), tags, release, dist and environment as Relay checks
// them (tags.go), level/platform/event_id defaults, timestamps with
// clock-drift correction and past/future clamping, {{auto}} IP addresses,
// browser/OS/device contexts from the User-Agent (uap-core rules through
// github.com/ua-parser/uap-go), security reports (CSP, Expect-CT,
// Expect-Staple, HPKP) to security events and NEL reports to log items.
// Also as Relay's first relay does: requests (method, URL split into query
// string and fragment, cookies, body and inferred_content_type;
// request.go), context types and the runtime/os/browser contexts
// (contexts.go), exception mechanisms (mechanism.go), breadcrumb and span
// timestamps, and transactions (transaction.go: Relay's validation, whose
// failure is ErrInvalidTransaction, then name, source, ops and ids;
// measurements.go), and the span-operation breakdowns of the project's
// breakdownsV2 (breakdowns.go, Input.Breakdowns). Each step runs only when
// its field is there.
//
// The functions are pure: every input (client address, user agent, sent_at,
// receive time, clock) is an argument, nothing is read from the process or the
// network. A field that fails validation is removed and recorded in the
// event's `_meta` only: Relay copies `_meta` errors into the event's `errors`
// list (EmitEventErrors) only under full normalization, which a relay
// without processing does not run (relay-server passes emit_event_errors:
// full_normalization). A payload that is not a JSON object returns an error
// wrapping ErrInvalid (outcome `invalid`).
//
// Events are edited in place on the relay/event tree: Event parses, calls
// Tree and writes; a caller that also scrubs (relay/pii Config.ScrubTree)
// parses once, calls Tree and ScrubTree, and writes once (BenchmarkPipeline).
//
// Last, strings, data bags and stack traces are trimmed to Relay's limits
// (trim.go), with `!limit` remarks and original lengths in `_meta`.
//
// relay/process.go runs this package on the ingest path of static and
// managed relays (normalize → inbound filters of relay/policy → quotas →
// relay/pii scrubbing, Relay's order); the filters are not in this package.
package normalize
