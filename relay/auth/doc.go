// Package auth is Baton's relay identity, compatible with Sentry Relay's
// relay-auth crate.
//
// A relay identity is an Ed25519 key pair and a relay id (a UUID), kept in
// credentials.json (docs/relay-protocol.md §3.2, §3.8): Generate makes one,
// Load and Save read and write the file, Parse builds one from its three
// strings. Keys, signatures and tokens are written in base64url without
// padding, as Relay writes them.
//
// Relays authenticate every request between them by signing it
// (docs/relay-protocol.md §3.3). Credentials.Sign puts a header JSON
// {"t":"<RFC 3339 time>"} in front of the body, separated by one 0x00 byte,
// signs that message with Ed25519 and answers
// base64url(signature) "." base64url(header JSON), the value of the
// X-Sentry-Relay-Signature header; X-Sentry-Relay-Id carries the relay id.
// VerifySignature rebuilds the message from the body and the header half,
// checks the signature against the sender's public key, then the signed time
// against a maximum age and (unlike Relay) a maximum lead into the future.
// Public keys must decode to a point on the curve; the decoding is
// filippo.io/edwards25519's, which accepts what Relay's curve25519-dalek
// accepts.
//
// A relay introduces itself to its upstream by registering
// (docs/relay-protocol.md §3.4): a RegisterRequest with its id, key and
// version, signed with its own key, answered by a RegisterChallenge with an
// opaque token; the relay sends the token back in a RegisterResponse and is
// registered once the RegisterResult names it. Baton plays both sides: its
// upstream client (in package relay) registers with Sentry or a Relay, and a
// Downstream authenticates the relays that register with Baton, trusting
// the keys listed in auth.static_relays (docs/relay-protocol.md §3.6) and
// those the upstream vouches for, which Keys looks up with batched
// publickeys requests (§3.5) and caches; it hands out stateless HMAC tokens
// to the static relays, whose registration it answers itself.
package auth
