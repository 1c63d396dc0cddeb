// Package envelope implements Sentry's envelope format: parsing and
// serialization, the item-type registry, traffic classes and the conversions
// the ingest endpoints need. It does no I/O and imports only the standard
// library.
//
// # Parsing
//
// Envelope.Parse reads envelopes exactly as real clients send them (see
// docs/relay-protocol.md section 2.1 and docs/real-clients.md):
//
//   - the envelope header is the first JSON object (it may be {});
//   - an item header with "length" is followed by exactly that many payload
//     bytes (which may contain newlines, and may be 0), then a newline or the
//     end of the body; an item header without length is followed by a
//     payload that runs to the next newline or the end of the body;
//   - the body may or may not end with a newline; the last header may end at
//     the end of the body (an item with an empty payload);
//   - one envelope may mix both framings (Node and browser SDKs do);
//   - unknown header fields and unknown item types are kept: Header.Raw and
//     Item.Header are the header objects verbatim, unknown items keep their
//     type name in Item.TypeName.
//
// Header.Raw, Item.Header and Item.Payload are sub-slices of the parsed
// buffer: nothing is copied per item, and a reused Envelope parses without
// allocating. Header fields are read by a small validating scanner
// (jsonscan.go) that picks the top-level keys Baton needs (type, length,
// content_type, filename, attachment_type, item_count; event_id, dsn,
// sent_at) and checks that the header is one valid JSON object, about six
// times faster than json.Valid alone. Length-framed payloads are skipped
// using the length, never scanned.
//
// Where Baton differs from Relay it is more lenient, never less: it accepts
// spaces, tabs or '\r' between a header's closing brace and its newline, and
// blank lines after the last item, both of which Relay rejects. This cannot
// desynchronise an upstream because Baton re-frames on output.
// Like Relay (serde_json), it rejects a header whose type, length,
// item_count, content_type, filename or attachment_type has the wrong JSON
// type, a length that is not an integer in 0..2^32-1, a duplicated key among
// those (Relay rejects duplicates too, and accepting them would let Baton and
// the upstream frame the body differently), an invalid event_id, dsn or
// sent_at in the envelope header, and Relay-internal item types
// (integration) unless Limits.AllowInternalItems.
//
// Every failure is a *ParseError with the byte offset of the problem; it
// unwraps to ErrInvalid (Relay answers 400) or to a *LimitError, which
// unwraps to ErrTooLarge (413) and names the limit, the item type and the
// sizes. Limits holds Relay's size and count limits with their defaults.
//
// # Serialization
//
// AppendTo writes the header line and every item, always with "length" (as
// Relay does): a header that had a correct length is written unchanged, one
// without gets "length":N inserted before its closing brace, one with
// "length":null (or a payload changed in code) gets the value replaced; all
// other header bytes stay as they were. Every item ends with a newline.
// Parsing the output gives the same envelope, and serializing that gives the
// same bytes.
//
// # Item types and classes
//
// registry.go has one row per item type Relay knows (TypeInfo): wire name,
// data category, class, size-limit key, whether it requires or creates an
// event, whether it is a container. Data categories are the Category type
// with Relay's numeric ids.
//
// Parse assigns every item a Class. Items that must travel together share
// one:
//
//   - an event-creating item gives the envelope an event class: event,
//     unreal_report and crash-report attachments (attachment_type
//     event.minidump, event.applecrashreport, event.payload,
//     event.breadcrumbs, playstation.prosperodump) give ClassError;
//     transaction gives ClassTransaction; security and raw_security give
//     ClassSecurity; feedback gives ClassFeedback. With several, the
//     transaction wins, then the error, then security, then feedback.
//   - attachments (including the crash reports themselves), form_data and
//     user_report items take the envelope's event class; without an event,
//     attachments and form_data are ClassAttachment and user_report is
//     ClassFeedback.
//   - a profile travels with its transaction (ClassTransaction) when the
//     envelope has one, else it is ClassProfile.
//   - every other item has its type's own class: session and sessions
//     ClassSession, statsd and metric_buckets ClassMetric, client_report
//     ClassClientReport, profile_chunk ClassProfile, replay_* ClassReplay,
//     check_in ClassCheckIn, span and otel_* spans ClassSpan, log and
//     otel_log ClassLog, trace_metric ClassTraceMetric, nel ClassSecurity,
//     unknown types ClassUnknown.
//
// Security reports are a choice: Relay turns security and raw_security
// items into events (so they set HasEvent and get an event id), but they
// count against their own data category and browsers can send them in
// floods, so Baton routes them in ClassSecurity, apart from errors, with nel
// reports. Nothing else ever travels with them in practice.
//
// Split and AppendClass cut an envelope into one envelope per class, each
// with the original header line.
//
// # Conversions
//
// FromStore, FromMinidump, FromSecurityReport, FromNEL and FromAttachments
// turn the bodies of the legacy store, minidump, security, NEL and event
// attachments endpoints into envelopes, as Relay's endpoints do. They take bytes (and a content type) and append to a
// dst buffer; they know nothing about HTTP.
package envelope
