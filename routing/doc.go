// Package routing gets class envelopes from Baton's buffer to their
// destinations.
//
// A destination is a [Sink]: Send delivers a batch and reports one result
// per message, classified for the forwarder with [Permanent] (drop with an
// outcome), [Throttled] (wait [RetryAfter], keep) or plain errors (retry
// with backoff, keep). Sinks never decide to drop data on their own except
// through those errors.
//
// Two sinks exist:
//
//   - [Kafka] (NewKafka, then Kafka.Topic per route): one franz-go client
//     per cluster, idempotent, acks=all. Records carry the envelope as value,
//     the message key (default: the decimal project id) and project_id,
//     public_key, class, received_at, client_ip and client headers (error
//     records also the event's grouping_hash and grouping_final). Records
//     above MaxMessageBytes go to a dead-letter topic or fail Permanent.
//     Because franz-go fails every record buffered on a partition when one
//     batch is rejected, a rejected record is re-produced alone before it
//     is declared Permanent, so its neighbours are never dropped. SASL, TLS
//     and ACL refusals are retryable and reported by Kafka.Health and
//     OnFault; a topic deleted and recreated is purged from the client
//     and produced to again.
//   - [Upstream] (NewUpstream): POSTs envelopes to a pool of upstream relays
//     with fasthttp, compressed, with the client's auth and address, and
//     sent_at moved forward by the time spent in the buffer. Public keys are
//     spread over the pool by rendezvous hashing; nodes that keep failing
//     are ejected for ProbeInterval and re-admitted by a trial request;
//     nodes unreachable for OutageGracePeriod are paused and re-admitted
//     when their health check answers (outage mode, outage.go).
//
// Destinations are opened through a registry: [Open] reads every class's
// route (a config.Destination, one kind per route) and calls the [Factory]
// registered for its kind with [Register]. A kind is one file here whose
// init registers its factory (dest_upstream.go, dest_kafka.go; the embedded
// broker, kfake, is embedded.go), plus its config struct in config; clients
// several routes use are shared by name with [Shared].
//
// [ParseRateLimits] parses X-Sentry-Rate-Limits headers for both this
// package and the ingest side.
package routing
