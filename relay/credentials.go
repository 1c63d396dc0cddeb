package relay

// Relay identity: the credentials.json file, request signatures and the
// registration payloads, compatible with Sentry Relay's relay-auth crate
// (docs/relay-protocol.md §3.2–§3.4, §3.8).

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/baton-relay/baton/config"
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
	// ErrNoCredentials means the credentials file does not exist.
	ErrNoCredentials = errors.New("no relay credentials; run `baton credentials generate`")
	// ErrCredentialsExist means Save refused to replace an existing file.
	ErrCredentialsExist = errors.New("relay credentials already exist; keep them, remove the file, or replace it with `baton credentials generate --overwrite`")
	// ErrInvalidCredentials means a credentials file or value is malformed;
	// the wrapping error names the field.
	ErrInvalidCredentials = errors.New("invalid relay credentials")
	// ErrInvalidKey means a public or secret key string could not be parsed.
	ErrInvalidKey = errors.New("invalid relay key")
	// ErrInvalidRelayID means a relay id is not a UUID.
	ErrInvalidRelayID = errors.New("invalid relay id")
	// ErrInvalidRelayVersion means a version string is not one Relay parses
	// ("<major>.<minor>.<patch>", each 0–255, optional "-suffix").
	ErrInvalidRelayVersion = errors.New("invalid relay version")

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

// credB64 is Relay's key and signature encoding (data_encoding's
// BASE64URL_NOPAD): URL alphabet, no padding, zero trailing bits.
var credB64 = base64.RawURLEncoding.Strict()

// credB64Decode decodes like BASE64URL_NOPAD. The standard decoder skips
// '\r' and '\n'; Relay does not, so any byte outside the alphabet fails.
func credB64Decode(s string) ([]byte, error) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return nil, fmt.Errorf("bad base64url encoding: byte %q at offset %d", c, i)
		}
	}
	b, err := credB64.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("bad base64url encoding: %w", err)
	}
	return b, nil
}

// Credentials identify this Baton to an upstream relay or Sentry: an Ed25519
// key pair and a relay id (UUID). They are the content of credentials.json.
//
// The zero value is not usable; get Credentials from GenerateCredentials,
// ParseCredentials or LoadCredentials.
type Credentials struct {
	SecretKey ed25519.PrivateKey
	PublicKey ed25519.PublicKey
	// ID is the relay id, a lower-case hyphenated UUID.
	ID string
}

// GenerateCredentials creates a fresh key pair and a random (version 4) relay id.
func GenerateCredentials() (*Credentials, error) {
	pub, sec, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("relay: generate relay key pair: %w", err)
	}
	var u [16]byte
	if _, err := rand.Read(u[:]); err != nil {
		return nil, fmt.Errorf("relay: generate relay id: %w", err)
	}
	u[6] = u[6]&0x0f | 0x40 // version 4
	u[8] = u[8]&0x3f | 0x80 // RFC 4122 variant
	return &Credentials{SecretKey: sec, PublicKey: pub, ID: credFormatUUID(u)}, nil
}

// ParseCredentials builds Credentials from the three strings of
// credentials.json (or RELAY_SECRET_KEY / RELAY_PUBLIC_KEY / RELAY_ID). The
// public key must belong to the secret key. Errors wrap ErrInvalidCredentials
// and name the field.
func ParseCredentials(secretKey, publicKey, id string) (*Credentials, error) {
	sec, err := ParseSecretKey(secretKey)
	if err != nil {
		return nil, credFieldErr("secret_key", err)
	}
	pub, err := ParsePublicKey(publicKey)
	if err != nil {
		return nil, credFieldErr("public_key", err)
	}
	if !bytes.Equal(pub, sec.Public().(ed25519.PublicKey)) {
		return nil, credFieldErr("public_key", errors.New("does not belong to secret_key"))
	}
	rid, err := ParseRelayID(id)
	if err != nil {
		return nil, credFieldErr("id", err)
	}
	return &Credentials{SecretKey: sec, PublicKey: pub, ID: rid}, nil
}

func credFieldErr(field string, err error) error {
	return fmt.Errorf("%w: field %q: %w", ErrInvalidCredentials, field, err)
}

// Validate reports whether c holds a consistent key pair and a relay id.
func (c *Credentials) Validate() error {
	switch {
	case c == nil:
		return fmt.Errorf("%w: nil", ErrInvalidCredentials)
	case len(c.SecretKey) != ed25519.PrivateKeySize:
		return credFieldErr("secret_key", fmt.Errorf("%w: %d bytes, want %d", ErrInvalidKey, len(c.SecretKey), ed25519.PrivateKeySize))
	case !c.SecretKey.Equal(ed25519.NewKeyFromSeed(c.SecretKey.Seed())):
		return credFieldErr("secret_key", fmt.Errorf("%w: public half does not match the seed", ErrInvalidKey))
	case !bytes.Equal(c.PublicKey, c.SecretKey.Public().(ed25519.PublicKey)):
		return credFieldErr("public_key", errors.New("does not belong to secret_key"))
	}
	if id, err := ParseRelayID(c.ID); err != nil {
		return credFieldErr("id", err)
	} else if id != c.ID {
		return credFieldErr("id", fmt.Errorf("%w: %q is not in canonical form %q", ErrInvalidRelayID, c.ID, id))
	}
	return nil
}

// String identifies the relay without revealing the secret key. (Value
// receivers, so printing a Credentials value cannot leak the key either.)
func (c Credentials) String() string {
	return "relay " + c.ID + " (public key " + FormatPublicKey(c.PublicKey) + ")"
}

// GoString keeps %#v from printing the secret key.
func (c Credentials) GoString() string {
	return fmt.Sprintf("&relay.Credentials{ID: %q, PublicKey: %q, SecretKey: <redacted>}", c.ID, FormatPublicKey(c.PublicKey))
}

// credFile is credentials.json, in Relay's field order.
type credFile struct {
	SecretKey string `json:"secret_key"`
	PublicKey string `json:"public_key"`
	ID        string `json:"id"`
}

// MarshalJSON encodes c in Relay's credentials.json format. It includes the
// secret key (as the 32-byte seed).
func (c Credentials) MarshalJSON() ([]byte, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return credMarshal(credFile{
		SecretKey: FormatSecretKey(c.SecretKey),
		PublicKey: FormatPublicKey(c.PublicKey),
		ID:        c.ID,
	})
}

// UnmarshalJSON decodes Relay's credentials.json format. All three fields are
// required; unknown fields are ignored (as Relay does).
func (c *Credentials) UnmarshalJSON(data []byte) error {
	obj, err := credDecodeObject(data)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidCredentials, err)
	}
	var vals [3]string
	for i, field := range [3]string{"secret_key", "public_key", "id"} {
		if vals[i], err = credStringField(obj, field, true); err != nil {
			return credFieldErr(field, err)
		}
	}
	parsed, err := ParseCredentials(vals[0], vals[1], vals[2])
	if err != nil {
		return err
	}
	*c = *parsed
	return nil
}

// LoadCredentials reads a credentials.json file. A missing file gives
// ErrNoCredentials; a malformed one ErrInvalidCredentials naming the field.
func LoadCredentials(path string) (*Credentials, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("relay: credentials %s: %w", path, ErrNoCredentials)
	}
	if err != nil {
		return nil, fmt.Errorf("relay: read credentials: %w", err)
	}
	var c Credentials
	if err := json.Unmarshal(data, &c); err != nil {
		// json.Unmarshal reports syntax errors itself, before UnmarshalJSON.
		if !errors.Is(err, ErrInvalidCredentials) {
			err = fmt.Errorf("%w: %w", ErrInvalidCredentials, err)
		}
		return nil, &credFileError{path: path, err: err}
	}
	return &c, nil
}

// credFileError is a credentials file that does not parse or lacks a field.
type credFileError struct {
	path string
	err  error // wraps ErrInvalidCredentials
}

func (e *credFileError) Error() string {
	return fmt.Sprintf("relay: credentials %s: %v; fix the file or replace it with `baton credentials generate --overwrite`", e.path, e.err)
}

func (e *credFileError) Unwrap() error { return e.err }

// Save writes c to path as credentials.json with mode 0600, atomically (temp
// file, fsync, link into place). It creates missing parent directories with
// mode 0700 and fails with ErrCredentialsExist if path exists.
func (c *Credentials) Save(path string) error { return c.credSave(path, false) }

// SaveOverwrite is Save, but atomically replaces an existing file.
func (c *Credentials) SaveOverwrite(path string) error { return c.credSave(path, true) }

func (c *Credentials) credSave(path string, overwrite bool) (err error) {
	if err := c.Validate(); err != nil { // before MarshalJSON: c may be nil
		return err
	}
	data, err := c.MarshalJSON()
	if err != nil {
		return err
	}
	data, err = credIndent(data)
	if err != nil {
		return err
	}
	if !overwrite {
		if _, err := os.Lstat(path); err == nil {
			return fmt.Errorf("relay: credentials %s: %w", path, ErrCredentialsExist)
		}
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("relay: save credentials: %w", err)
	}
	f, err := os.CreateTemp(dir, ".credentials-*.tmp")
	if err != nil {
		return fmt.Errorf("relay: save credentials: %w", err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = os.Remove(tmp)
		}
	}()
	if err := f.Chmod(0o600); err != nil {
		_ = f.Close()
		return fmt.Errorf("relay: save credentials: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		_ = f.Close()
		return fmt.Errorf("relay: save credentials: %w", err)
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return fmt.Errorf("relay: save credentials: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("relay: save credentials: %w", err)
	}
	if overwrite {
		if err := os.Rename(tmp, path); err != nil {
			return fmt.Errorf("relay: save credentials: %w", err)
		}
	} else {
		// A hard link never replaces an existing file, so a concurrent
		// writer cannot be clobbered between the check above and here.
		switch err := os.Link(tmp, path); {
		case err == nil:
			_ = os.Remove(tmp)
		case errors.Is(err, fs.ErrExist):
			return fmt.Errorf("relay: credentials %s: %w", path, ErrCredentialsExist)
		default:
			// No hard links on this filesystem: check, then rename (the
			// check above already ran; this narrows the race further).
			if _, err := os.Lstat(path); err == nil {
				return fmt.Errorf("relay: credentials %s: %w", path, ErrCredentialsExist)
			}
			if err := os.Rename(tmp, path); err != nil {
				return fmt.Errorf("relay: save credentials: %w", err)
			}
		}
	}
	credSyncDir(dir)
	return nil
}

// credSyncDir makes the new directory entry durable; best effort, as not
// every platform can fsync a directory.
func credSyncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
}

// credIndent pretty-prints JSON as Relay writes credentials.json.
func credIndent(data []byte) ([]byte, error) {
	var out bytes.Buffer
	if err := json.Indent(&out, data, "", "  "); err != nil {
		return nil, fmt.Errorf("relay: encode credentials: %w", err)
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}

// ---- keys and ids ----

// ParsePublicKey parses Relay's public key string: base64url without
// padding of the 32-byte Ed25519 key. Like Relay it rejects bytes that do not
// decode to a curve point. Errors wrap ErrInvalidKey.
func ParsePublicKey(s string) (ed25519.PublicKey, error) {
	b, err := credB64Decode(s)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidKey, err)
	}
	if len(b) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%w: bad key data: %d bytes, want %d", ErrInvalidKey, len(b), ed25519.PublicKeySize)
	}
	if !sigOnCurve(b) {
		return nil, fmt.Errorf("%w: bad key data: not a point on Ed25519", ErrInvalidKey)
	}
	return ed25519.PublicKey(b), nil
}

// FormatPublicKey is the inverse of ParsePublicKey.
func FormatPublicKey(pk ed25519.PublicKey) string { return credB64.EncodeToString(pk) }

// ParseSecretKey parses Relay's secret key string: base64url without padding
// of the 32-byte seed, or of the 64-byte seed‖public key (whose public half
// must match the seed). Errors wrap ErrInvalidKey.
func ParseSecretKey(s string) (ed25519.PrivateKey, error) {
	b, err := credB64Decode(s)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidKey, err)
	}
	switch len(b) {
	case ed25519.SeedSize:
		return ed25519.NewKeyFromSeed(b), nil
	case ed25519.PrivateKeySize:
		sk := ed25519.NewKeyFromSeed(b[:ed25519.SeedSize])
		if !bytes.Equal(sk[ed25519.SeedSize:], b[ed25519.SeedSize:]) {
			return nil, fmt.Errorf("%w: bad key data: public half of the 64-byte key does not match its seed", ErrInvalidKey)
		}
		return sk, nil
	default:
		return nil, fmt.Errorf("%w: bad key data: %d bytes, want %d (seed) or %d (key pair)", ErrInvalidKey, len(b), ed25519.SeedSize, ed25519.PrivateKeySize)
	}
}

// FormatSecretKey encodes the 32-byte seed, as Relay writes it.
func FormatSecretKey(sk ed25519.PrivateKey) string { return credB64.EncodeToString(sk.Seed()) }

// ParseRelayID parses a UUID in any form Relay's uuid crate accepts
// (hyphenated, 32 hex digits, {braced}, urn:uuid:) and returns it lower-case
// hyphenated, as Relay prints it. Errors wrap ErrInvalidRelayID.
func ParseRelayID(s string) (string, error) {
	h := s
	switch {
	case len(h) == 45 && strings.EqualFold(h[:9], "urn:uuid:"):
		h = h[9:]
	case len(h) == 38 && h[0] == '{' && h[37] == '}':
		h = h[1:37]
	}
	if len(h) == 36 {
		if h[8] != '-' || h[13] != '-' || h[18] != '-' || h[23] != '-' {
			return "", fmt.Errorf("%w: %q is not a UUID", ErrInvalidRelayID, s)
		}
		h = h[:8] + h[9:13] + h[14:18] + h[19:23] + h[24:]
	}
	var u [16]byte
	if len(h) != 32 {
		return "", fmt.Errorf("%w: %q is not a UUID", ErrInvalidRelayID, s)
	}
	if _, err := hex.Decode(u[:], []byte(h)); err != nil {
		return "", fmt.Errorf("%w: %q is not a UUID", ErrInvalidRelayID, s)
	}
	return credFormatUUID(u), nil
}

func credFormatUUID(u [16]byte) string {
	var b [36]byte
	hex.Encode(b[0:8], u[0:4])
	b[8] = '-'
	hex.Encode(b[9:13], u[4:6])
	b[13] = '-'
	hex.Encode(b[14:18], u[6:8])
	b[18] = '-'
	hex.Encode(b[19:23], u[8:10])
	b[23] = '-'
	hex.Encode(b[24:], u[10:])
	return string(b[:])
}

// sigOnCurve reports whether a 32-byte compressed Edwards point
// decompresses (see config.IsEd25519Point, which config validation uses too).
func sigOnCurve(b []byte) bool { return config.IsEd25519Point(b) }

// ---- signatures ----

// Sign signs body the way Relay does and returns the X-Sentry-Relay-Signature
// value: base64url(Ed25519 signature) "." base64url(`{"t":"<now, RFC 3339
// UTC>"}`), the signed message being the header JSON, one 0x00 byte and body.
// c must be valid (see Validate); Sign panics on a malformed key like
// ed25519.Sign.
func (c *Credentials) Sign(body []byte, now time.Time) string {
	header := sigHeaderJSON(now)
	msg := make([]byte, 0, len(header)+1+len(body))
	msg = append(append(append(msg, header...), 0), body...)
	sig := ed25519.Sign(c.SecretKey, msg)
	out := make([]byte, 0, credB64.EncodedLen(len(sig))+1+credB64.EncodedLen(len(header)))
	out = credB64.AppendEncode(out, sig)
	out = append(out, '.')
	out = credB64.AppendEncode(out, header)
	return string(out)
}

// sigHeaderJSON is serde_json's encoding of Relay's SignatureHeader: chrono
// writes DateTime<Utc> as RFC 3339 with "Z" and 0, 3, 6 or 9 fractional
// digits, the fewest that show every non-zero sub-second digit
// (SecondsFormat::AutoSi).
func sigHeaderJSON(now time.Time) []byte {
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
	sig, err := credB64Decode(sigPart)
	if err != nil {
		return fmt.Errorf("%w: signature: %w", ErrSignatureFormat, err)
	}
	if len(sig) != ed25519.SignatureSize {
		return fmt.Errorf("%w: signature is %d bytes, want %d", ErrSignatureFormat, len(sig), ed25519.SignatureSize)
	}
	header, err := credB64Decode(headerPart)
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
	ts, hasTS, err := sigParseHeader(header)
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

// sigParseHeader decodes Relay's SignatureHeader with serde's rules: a JSON
// object, exact key "t" (string or null), unknown keys ignored, duplicates
// rejected.
func sigParseHeader(header []byte) (time.Time, bool, error) {
	obj, err := credDecodeObject(header)
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

// ---- registration (§3.4) ----

// Pack encodes v as compact JSON (as serde_json does) and signs it: the body
// and X-Sentry-Relay-Signature of a signed request, like Relay's
// SecretKey::pack.
func (c *Credentials) Pack(v any, now time.Time) (body []byte, sig string, err error) {
	body, err = credMarshal(v)
	if err != nil {
		return nil, "", fmt.Errorf("relay: encode signed payload: %w", err)
	}
	return body, c.Sign(body, now), nil
}

// RegisterRequest is the body of POST /api/0/relays/register/challenge/,
// signed with the registering relay's own key.
type RegisterRequest struct {
	RelayID   string
	PublicKey ed25519.PublicKey
	// Version is the registering relay's version; empty when a sender
	// omitted it (Relay reads that as 0.0.0).
	Version string
}

// NewRegisterRequest builds the challenge request for c. version must be
// "<major>.<minor>.<patch>" (each 0–255, optional "-suffix"): the upstream
// rejects the whole request if it cannot parse it.
func NewRegisterRequest(c *Credentials, version string) (*RegisterRequest, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if err := sigCheckVersion(version); err != nil {
		return nil, err
	}
	return &RegisterRequest{RelayID: c.ID, PublicKey: c.PublicKey, Version: version}, nil
}

// MarshalJSON encodes {"relay_id","public_key","version"} in Relay's order.
func (r RegisterRequest) MarshalJSON() ([]byte, error) {
	return credMarshal(struct {
		RelayID   string `json:"relay_id"`
		PublicKey string `json:"public_key"`
		Version   string `json:"version"`
	}{r.RelayID, FormatPublicKey(r.PublicKey), sigVersionOrDefault(r.Version)})
}

// UnmarshalJSON decodes and validates a challenge request.
func (r *RegisterRequest) UnmarshalJSON(data []byte) error {
	obj, err := credDecodeObject(data)
	if err != nil {
		return fmt.Errorf("relay: register request: %w", err)
	}
	id, err := sigRelayIDField(obj, "register request")
	if err != nil {
		return err
	}
	pks, err := credStringField(obj, "public_key", true)
	if err != nil {
		return fmt.Errorf("relay: register request: field \"public_key\": %w", err)
	}
	pk, err := ParsePublicKey(pks)
	if err != nil {
		return fmt.Errorf("relay: register request: field \"public_key\": %w", err)
	}
	v, err := sigVersionField(obj, "register request")
	if err != nil {
		return err
	}
	*r = RegisterRequest{RelayID: id, PublicKey: pk, Version: v}
	return nil
}

// RegisterChallenge is the reply to a RegisterRequest. Token is opaque to
// downstream relays and is sent back unchanged in the RegisterResponse.
type RegisterChallenge struct {
	RelayID string `json:"relay_id"`
	Token   string `json:"token"`
}

// Response builds the RegisterResponse answering ch.
func (ch *RegisterChallenge) Response(version string) (*RegisterResponse, error) {
	if err := sigCheckVersion(version); err != nil {
		return nil, err
	}
	return &RegisterResponse{RelayID: ch.RelayID, Token: ch.Token, Version: version}, nil
}

// MarshalJSON encodes {"relay_id","token"}.
func (ch RegisterChallenge) MarshalJSON() ([]byte, error) {
	type plain RegisterChallenge
	return credMarshal(plain(ch))
}

// UnmarshalJSON decodes and validates a challenge.
func (ch *RegisterChallenge) UnmarshalJSON(data []byte) error {
	id, tok, _, err := sigDecodeTokenMsg(data, "register challenge", false)
	if err != nil {
		return err
	}
	*ch = RegisterChallenge{RelayID: id, Token: tok}
	return nil
}

// RegisterResponse is the body of POST /api/0/relays/register/response/,
// signed with the relay's key.
type RegisterResponse struct {
	RelayID string
	Token   string
	// Version is empty when a sender omitted it (Relay reads 0.0.0).
	Version string
}

// MarshalJSON encodes {"relay_id","token","version"} in Relay's order.
func (r RegisterResponse) MarshalJSON() ([]byte, error) {
	return credMarshal(struct {
		RelayID string `json:"relay_id"`
		Token   string `json:"token"`
		Version string `json:"version"`
	}{r.RelayID, r.Token, sigVersionOrDefault(r.Version)})
}

// UnmarshalJSON decodes and validates a register response.
func (r *RegisterResponse) UnmarshalJSON(data []byte) error {
	id, tok, v, err := sigDecodeTokenMsg(data, "register response", true)
	if err != nil {
		return err
	}
	*r = RegisterResponse{RelayID: id, Token: tok, Version: v}
	return nil
}

// RegisterResult is the reply to a RegisterResponse (Relay's Registration):
// the relay is now authenticated.
type RegisterResult struct {
	RelayID string `json:"relay_id"`
}

// UnmarshalJSON decodes and validates the final registration reply.
func (r *RegisterResult) UnmarshalJSON(data []byte) error {
	obj, err := credDecodeObject(data)
	if err != nil {
		return fmt.Errorf("relay: registration: %w", err)
	}
	id, err := sigRelayIDField(obj, "registration")
	if err != nil {
		return err
	}
	r.RelayID = id
	return nil
}

func sigDecodeTokenMsg(data []byte, what string, withVersion bool) (id, token, version string, err error) {
	obj, err := credDecodeObject(data)
	if err != nil {
		return "", "", "", fmt.Errorf("relay: %s: %w", what, err)
	}
	if id, err = sigRelayIDField(obj, what); err != nil {
		return "", "", "", err
	}
	if token, err = credStringField(obj, "token", true); err != nil {
		return "", "", "", fmt.Errorf("relay: %s: field \"token\": %w", what, err)
	}
	if withVersion {
		if version, err = sigVersionField(obj, what); err != nil {
			return "", "", "", err
		}
	}
	return id, token, version, nil
}

func sigRelayIDField(obj map[string]json.RawMessage, what string) (string, error) {
	s, err := credStringField(obj, "relay_id", true)
	if err == nil {
		s, err = ParseRelayID(s)
	}
	if err != nil {
		return "", fmt.Errorf("relay: %s: field \"relay_id\": %w", what, err)
	}
	return s, nil
}

func sigVersionField(obj map[string]json.RawMessage, what string) (string, error) {
	v, err := credStringField(obj, "version", false)
	if err == nil && v != "" {
		err = sigCheckVersion(v)
	}
	if err != nil {
		return "", fmt.Errorf("relay: %s: field \"version\": %w", what, err)
	}
	return v, nil
}

// sigVersionOrDefault is what Relay assumes for a missing version.
func sigVersionOrDefault(v string) string {
	if v == "" {
		return "0.0.0"
	}
	return v
}

// sigCheckVersion applies Relay's RelayVersion parsing: split on '.' and
// '-', the first three parts must be integers 0–255.
func sigCheckVersion(v string) error {
	ok, start, n := true, 0, 0
	for i := 0; ok && n < 3 && i <= len(v); i++ {
		if i == len(v) || v[i] == '.' || v[i] == '-' {
			_, err := strconv.ParseUint(v[start:i], 10, 8)
			ok, start, n = err == nil, i+1, n+1
		}
	}
	if !ok || n < 3 {
		return fmt.Errorf("%w: %q; want <major>.<minor>.<patch> with each part 0-255", ErrInvalidRelayVersion, v)
	}
	return nil
}

// ---- JSON helpers ----

// credDecodeObject decodes one JSON object into its raw members, matching
// keys exactly (encoding/json matches struct fields case-insensitively; serde
// does not) and rejecting duplicate keys and trailing data, as serde does.
func credDecodeObject(data []byte) (map[string]json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	tok, err := dec.Token()
	if err != nil {
		return nil, fmt.Errorf("bad JSON: %w", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, errors.New("bad JSON: want an object")
	}
	obj := map[string]json.RawMessage{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("bad JSON: %w", err)
		}
		key := tok.(string) // object keys are always strings
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("bad JSON: %w", err)
		}
		if _, dup := obj[key]; dup {
			return nil, fmt.Errorf("bad JSON: duplicate field %q", key)
		}
		obj[key] = v
	}
	if _, err := dec.Token(); err != nil {
		return nil, fmt.Errorf("bad JSON: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("bad JSON: trailing data after the object")
	}
	return obj, nil
}

// credStringField returns obj[field] as a string; null counts as missing.
func credStringField(obj map[string]json.RawMessage, field string, required bool) (string, error) {
	raw, ok := obj[field]
	if !ok || string(raw) == "null" {
		if required {
			return "", errors.New("missing")
		}
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", errors.New("not a string")
	}
	return s, nil
}

// credMarshal encodes like serde_json: compact, struct field order, no HTML
// escaping.
func credMarshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte{'\n'}), nil
}
