// Package otlp turns OTLP/HTTP export requests (traces and logs, protobuf or
// JSON) into the Sentry envelope items Relay makes of them: one span v2
// container and one log container (docs/relay-protocol.md §1.1, §2.4).
//
// Relay accepts an OTLP body as an internal "integration" item and converts
// it later; that item must never leave a relay unconverted. Baton forwards to
// upstream relays and to Kafka, so it converts at the door, the way Relay's
// relay-spans (otel_to_sentry_v2) and relay-ourlogs (otel_to_sentry) do:
//
//   - spans: trace_id, parent_span_id, span_id, name (or "db", "http.server",
//     "http.client", "http" from the attributes when empty), status ("ok" or
//     "error"), is_segment (remote spans), start_timestamp and
//     end_timestamp (seconds, microsecond precision), links, and the
//     attributes: the span's own, the resource's as "resource.<key>", the
//     scope's as "instrumentation.<key>" plus instrumentation.name and
//     .version, sentry.origin "auto.otlp.spans", sentry.platform (from
//     telemetry.sdk.language), sentry.status.message, sentry.is_remote and
//     sentry.kind;
//   - logs: timestamp, trace_id, span_id, level (from the severity number,
//     else its text), body (string bodies) and the attributes, with the
//     resource and scope ones as for spans and sentry.origin
//     "auto.otlp.logs".
//
// Attribute values take Sentry's typed form, {"type": "string"|"boolean"|
// "integer"|"double", "value": ...}; arrays and key-value lists become JSON
// strings. When a key repeats, the last value wins, as in Relay's map.
//
// Bodies are decoded with the official OTLP types (go.opentelemetry.io/
// proto/otlp). TracesData and LogsData have the wire and JSON shape of the
// collector's Export*ServiceRequest messages; decoding into them keeps gRPC
// out of the binary. OTLP/JSON writes trace and span ids in hex where
// protojson expects base64, so the JSON path rewrites them first.
package otlp
