// Package pii is Relay's data scrubbing as the first relay applies it, so
// personal data never leaves the customer's network: pure functions over an
// event's JSON, no I/O. Config.ScrubEvent parses, scrubs and writes bytes;
// Config.ScrubTree scrubs a relay/event tree in place, for a caller that
// also normalizes it and writes it once.
// Config.ScrubLogs scrubs the logs of a log container as Relay's logs
// processor does (log.go), Config.ScrubOtelLog an otel_log item's OTLP
// record the same way, in its own shape (otellog.go); Attachments scrubs
// the bytes of a plain attachment (attachment.go); ViewHierarchy the
// strings of a view hierarchy attachment's JSON (viewhierarchy.go);
// Config.ScrubRecording the custom events of a replay recording, as
// Relay's RecordingScrubber (recording.go: what it scrubs and where Baton
// differs). A replay_event is scrubbed with Config.ScrubEvent.
//
// # Model
//
// A project's scrubbing is two PII configs applied in order, as Relay does:
// its `piiConfig`, then the config converted from its legacy
// `datascrubbingSettings` (Compile; Config.ScrubEvent). A PII config has
// rules and applications:
//
//   - A rule has a type that finds what to redact (`pattern` with
//     `replaceGroups`, `redact_pair` with `keyPattern`, `anything`, `imei`,
//     `mac`, `uuid`, `email`, `ip`, `creditcard`, `iban`, `userpath`,
//     `password`, `bearer`, `pemkey`, `urlauth`, `usssn`) and a redaction
//     method: `replace` (with `text`, default "[Filtered]"), `mask` (one `*`
//     per character), `hash` (HMAC-SHA1, empty key, upper-case hex) or
//     `remove`. `multiple` and `alias` combine rules; with `hideInner` the
//     remark names the outer rule. The built-in rules (`@ip`, `@email`,
//     `@creditcard`, `@password`, `@common`, `@common:filter`, ... with their
//     `:replace`/`:mask`/`:hash`/`:remove`/`:filter` variants) are Relay's
//     builtin.rs.
//   - `password` and `redact_pair` match the key: a matching key's string
//     value is redacted whole, a container or number is removed; otherwise
//     the key pattern runs over the value. `anything` on a container always
//     removes it. Booleans and the strings "", "true", "false", "null",
//     "undefined" are never touched.
//   - An application maps a selector to rule ids. Selectors match the path
//     of a value below the event: keys (case-insensitive, quoted as
//     'a.b' with ” for a quote), indexes, `*` (one level), `**` (any depth,
//     once per path), value types (`$string`, `$number`, `$array`,
//     `$object`, `$error`/`$exception`, `$stack`, `$frame`, `$http`/`$request`,
//     `$user`, `$logentry`/`$message`, `$thread`, `$breadcrumb`, `$span`,
//     `$sdk`, ...), combined with `&&`, `||`, `!` and parentheses. A path
//     matches from its end; the root (the event) is not part of it.
//   - Each field has Relay's pii attribute (schema.go): `false` fields
//     (event_id, level, release, ...) are never scrubbed, `maybe` fields
//     (tags, frame filenames and functions, debug_meta paths) only by
//     specific selectors (no `**`, no basic value type), `true` fields by any.
//     Two-element arrays whose first element is a string are key/value pairs:
//     the value's path ends in the key, as headers' and frame vars' do.
//
// Every change is recorded as Relay records it under "_meta": the value's
// path, then "" → {"rem": [[rule, type, start, end]], "len": original
// characters}; type is "s" substituted, "m" masked, "p" hashed, "x" removed
// (a removed value becomes null and its remark has no range). Ranges are
// byte offsets in the new value. The remarks are the tree's Meta
// (relay/event), merged into the event's "_meta" when it is written.
//
// datascrubbingSettings convert as Relay's to_pii_config: scrubData with
// scrubDefaults applies `@common:filter` (credit cards, IBANs, PEM keys, URL
// passwords, user paths, password-like keys, US SSNs → "[Filtered]") to all
// values except the never-scrubbed ones (debug_meta.**, $frame.filename,
// $frame.abs_path, $logentry.formatted, $error.value, the User-Agent header)
// and the excludeFields (safe fields: selectors, or keys when they do not
// parse); sensitive session and CSRF cookies are filtered; $logentry.formatted
// only gets substitutions. scrubIpAddresses removes the known IP fields
// ($user.ip_address, $sdk.client_ip, REMOTE_ADDR) and replaces IPs anywhere
// with "[ip]". sensitiveFields become a `redact_pair` rule "strip-fields".
//
// A config that does not compile (bad regex, bad selector) is an error
// wrapping ErrInvalidConfig: Relay then drops the project's events with
// outcome invalid, reason ProjectStateReason, rather than forward them
// unscrubbed.
//
// # Speed
//
// Compile prepares a Config for the walk over every value of an event
// (BENCHMARKS.md: the load event in about 30 µs with the defaults): its
// selectors' keys are numbered, so a value's key is looked up once per
// pass and paths compare ids (keys.go); each pass has a necessary
// condition on the value its selectors select, which most values of a
// stack trace fail with a few mask tests; fields whose pii attribute is
// false down to their leaves are not visited (schema.go); the built-in
// regexes have prefilters that rule out strings they cannot match without
// running them (prefilter.go). An object whose members are all scalars that no
// selector of a pass can select, judged from its keys alone, is passed over
// without a state per member; a lazy stack frame (relay/event), whose
// members may also be arrays of scalars (context lines), without parsing
// it (flat.go, TestFlatMatchesWalk). TestCompiledMatchesReference checks that a
// compiled Config writes byte for byte what the plain rules write.
//
// Attachments are scrubbed by Attachments: plain ones as bytes
// (attachment.go), minidumps by their structure (minidump.go); view
// hierarchies as JSON by ViewHierarchy (viewhierarchy.go), replay
// recordings by ScrubRecording (recording.go).
//
// # Not implemented yet
//
// The `vars.hashKey` of legacy hash redactions; `original_value` in _meta;
// scrubbing of GraphQL request variables; the schema covers the common event
// interfaces only (unknown fields of the event are pii true, of interfaces
// maybe). `@bearer` (a newer Relay rule) is modelled as replacing the token
// after "Bearer " with "[token]"; its exact regex is not confirmed.
package pii
