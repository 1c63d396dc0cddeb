package auth

// Request signatures (docs/relay-protocol.md §3.3).

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Header names of signed relay-to-relay requests.
const (
	HeaderRelayID        = "X-Sentry-Relay-Id"
	HeaderRelaySignature = "X-Sentry-Relay-Signature"
)

// Default limits on a signature's timestamp (auth.signature_max_age in Relay;
// Relay does not bound the future, Baton does).
const (
	DefaultSignatureMaxAge    = 300 * time.Second
	DefaultSignatureMaxFuture = 60 * time.Second
)

var (
	// ErrSignatureFormat means the signature header is not
	// base64url(signature) "." base64url(header JSON), or the signed header
	// JSON is malformed.
	ErrSignatureFormat = errors.New("malformed relay signature")
	// ErrSignatureInvalid means the signature does not match the key and body.
	ErrSignatureInvalid = errors.New("relay signature does not verify")
	// ErrSignatureExpired means the signed timestamp is too old, too far in
	// the future, or missing while an age limit applies.
	ErrSignatureExpired = errors.New("relay signature expired")
)

// Sign signs body the way Relay does and returns the X-Sentry-Relay-Signature
// value: base64url(Ed25519 signature) "." base64url(`{"t":"<now, RFC 3339
// UTC>"}`), the signed message being the header JSON, one 0x00 byte and body.
// c must be valid (see Validate); Sign panics on a malformed key like
// ed25519.Sign.
func (c *Credentials) Sign(body []byte, now time.Time) string {
	header := headerJSON(now)
	msg := make([]byte, 0, len(header)+1+len(body))
	msg = append(append(append(msg, header...), 0), body...)
	sig := ed25519.Sign(c.SecretKey, msg)
	out := make([]byte, 0, b64.EncodedLen(len(sig))+1+b64.EncodedLen(len(header)))
	out = b64.AppendEncode(out, sig)
	out = append(out, '.')
	out = b64.AppendEncode(out, header)
	return string(out)
}

// headerJSON is serde_json's encoding of Relay's SignatureHeader: chrono
// writes DateTime<Utc> as RFC 3339 with "Z" and 0, 3, 6 or 9 fractional
// digits, the fewest that show every non-zero sub-second digit
// (SecondsFormat::AutoSi).
func headerJSON(now time.Time) []byte {
	t := now.UTC()
	b := make([]byte, 0, 48)
	b = append(b, `{"t":"`...)
	b = t.AppendFormat(b, "2006-01-02T15:04:05")
	ns, digits := t.Nanosecond(), 9
	switch {
	case ns == 0:
		digits = 0
	case ns%1_000_000 == 0:
		digits, ns = 3, ns/1_000_000
	case ns%1_000 == 0:
		digits, ns = 6, ns/1_000
	}
	if digits > 0 {
		b = append(b, '.')
		s := strconv.Itoa(ns)
		for range digits - len(s) {
			b = append(b, '0')
		}
		b = append(b, s...)
	}
	return append(b, `Z"}`...)
}

// VerifySignature checks an X-Sentry-Relay-Signature value over body against
// pub, then the signed timestamp against now: older than maxAge or more than
// maxFuture ahead gives ErrSignatureExpired (both bounds inclusive-valid). A
// limit ≤ 0 disables that check; with both disabled a header without "t" is
// accepted, as Relay does, otherwise a missing "t" is ErrSignatureExpired.
// Relay itself checks only the age (see DefaultSignatureMaxAge).
//
// Errors wrap ErrSignatureFormat, ErrSignatureInvalid or ErrSignatureExpired.
func VerifySignature(pub ed25519.PublicKey, body []byte, sigHeader string, now time.Time, maxAge, maxFuture time.Duration) error {
	sigPart, headerPart, ok := strings.Cut(sigHeader, ".")
	if !ok {
		return fmt.Errorf("%w: no '.' between signature and header", ErrSignatureFormat)
	}
	sig, err := decodeB64(sigPart)
	if err != nil {
		return fmt.Errorf("%w: signature: %w", ErrSignatureFormat, err)
	}
	if len(sig) != ed25519.SignatureSize {
		return fmt.Errorf("%w: signature is %d bytes, want %d", ErrSignatureFormat, len(sig), ed25519.SignatureSize)
	}
	header, err := decodeB64(headerPart)
	if err != nil {
		return fmt.Errorf("%w: header: %w", ErrSignatureFormat, err)
	}
	if len(header) == 0 {
		return fmt.Errorf("%w: empty header", ErrSignatureFormat)
	}
	if len(pub) != ed25519.PublicKeySize {
		return fmt.Errorf("%w: public key is %d bytes, want %d", ErrSignatureInvalid, len(pub), ed25519.PublicKeySize)
	}
	msg := make([]byte, 0, len(header)+1+len(body))
	msg = append(append(append(msg, header...), 0), body...)
	if !ed25519.Verify(pub, msg, sig) {
		return ErrSignatureInvalid
	}
	ts, hasTS, err := parseHeader(header)
	if err != nil {
		return fmt.Errorf("%w: header: %w", ErrSignatureFormat, err)
	}
	if maxAge <= 0 && maxFuture <= 0 {
		return nil
	}
	if !hasTS {
		return fmt.Errorf("%w: header has no \"t\" timestamp", ErrSignatureExpired)
	}
	if maxAge > 0 && ts.Before(now.Add(-maxAge)) {
		return fmt.Errorf("%w: signed at %s, %s before now (limit %s)", ErrSignatureExpired, ts.Format(time.RFC3339Nano), now.Sub(ts), maxAge)
	}
	if maxFuture > 0 && ts.After(now.Add(maxFuture)) {
		return fmt.Errorf("%w: signed at %s, %s in the future (limit %s); check the clocks", ErrSignatureExpired, ts.Format(time.RFC3339Nano), ts.Sub(now), maxFuture)
	}
	return nil
}

// parseHeader decodes Relay's SignatureHeader with serde's rules: a JSON
// object, exact key "t" (string or null), unknown keys ignored, duplicates
// rejected.
func parseHeader(header []byte) (time.Time, bool, error) {
	obj, err := decodeObject(header)
	if err != nil {
		return time.Time{}, false, err
	}
	raw, ok := obj["t"]
	if !ok || string(raw) == "null" {
		return time.Time{}, false, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return time.Time{}, false, fmt.Errorf(`"t" is not a string: %w`, err)
	}
	ts, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, false, fmt.Errorf(`"t" is not an RFC 3339 timestamp: %w`, err)
	}
	return ts, true, nil
}
