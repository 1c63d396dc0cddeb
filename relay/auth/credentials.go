package auth

// The credentials.json file, keys and relay ids (docs/relay-protocol.md
// §3.2, §3.8).

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"filippo.io/edwards25519"
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
)

// b64 is Relay's key and signature encoding (data_encoding's
// BASE64URL_NOPAD): URL alphabet, no padding, zero trailing bits.
var b64 = base64.RawURLEncoding.Strict()

// decodeB64 decodes like BASE64URL_NOPAD. The standard decoder skips
// '\r' and '\n'; Relay does not, so any byte outside the alphabet fails.
func decodeB64(s string) ([]byte, error) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return nil, fmt.Errorf("bad base64url encoding: byte %q at offset %d", c, i)
		}
	}
	b, err := b64.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("bad base64url encoding: %w", err)
	}
	return b, nil
}

// Credentials identify this Baton to an upstream relay or Sentry: an Ed25519
// key pair and a relay id (UUID). They are the content of credentials.json.
//
// The zero value is not usable; get Credentials from Generate,
// Parse or Load.
type Credentials struct {
	SecretKey ed25519.PrivateKey
	PublicKey ed25519.PublicKey
	// ID is the relay id, a lower-case hyphenated UUID.
	ID string
}

// Generate creates a fresh key pair and a random (version 4) relay id.
func Generate() (*Credentials, error) {
	pub, sec, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("auth: generate relay key pair: %w", err)
	}
	var u [16]byte
	if _, err := rand.Read(u[:]); err != nil {
		return nil, fmt.Errorf("auth: generate relay id: %w", err)
	}
	u[6] = u[6]&0x0f | 0x40 // version 4
	u[8] = u[8]&0x3f | 0x80 // RFC 4122 variant
	return &Credentials{SecretKey: sec, PublicKey: pub, ID: formatUUID(u)}, nil
}

// IDFromPublicKey derives a relay id from a public key (base64url), for
// credentials given as a key pair without an id: the same key always names
// the same relay, so an upstream that knows it keeps knowing it across
// restarts. The id is a version-5-style UUID of the key's SHA-256.
func IDFromPublicKey(publicKey string) string {
	sum := sha256.Sum256([]byte(publicKey))
	var u [16]byte
	copy(u[:], sum[:16])
	u[6] = u[6]&0x0f | 0x50 // version 5 (name-based, SHA)
	u[8] = u[8]&0x3f | 0x80 // RFC 4122 variant
	return formatUUID(u)
}

// Parse builds Credentials from the three strings of
// credentials.json (or RELAY_SECRET_KEY / RELAY_PUBLIC_KEY / RELAY_ID). The
// public key must belong to the secret key. Errors wrap ErrInvalidCredentials
// and name the field.
func Parse(secretKey, publicKey, id string) (*Credentials, error) {
	sec, err := ParseSecretKey(secretKey)
	if err != nil {
		return nil, fieldErr("secret_key", err)
	}
	pub, err := ParsePublicKey(publicKey)
	if err != nil {
		return nil, fieldErr("public_key", err)
	}
	if !bytes.Equal(pub, sec.Public().(ed25519.PublicKey)) {
		return nil, fieldErr("public_key", errors.New("does not belong to secret_key"))
	}
	rid, err := ParseRelayID(id)
	if err != nil {
		return nil, fieldErr("id", err)
	}
	return &Credentials{SecretKey: sec, PublicKey: pub, ID: rid}, nil
}

func fieldErr(field string, err error) error {
	return fmt.Errorf("%w: field %q: %w", ErrInvalidCredentials, field, err)
}

// Validate reports whether c holds a consistent key pair and a relay id.
func (c *Credentials) Validate() error {
	switch {
	case c == nil:
		return fmt.Errorf("%w: nil", ErrInvalidCredentials)
	case len(c.SecretKey) != ed25519.PrivateKeySize:
		return fieldErr("secret_key", fmt.Errorf("%w: %d bytes, want %d", ErrInvalidKey, len(c.SecretKey), ed25519.PrivateKeySize))
	case !c.SecretKey.Equal(ed25519.NewKeyFromSeed(c.SecretKey.Seed())):
		return fieldErr("secret_key", fmt.Errorf("%w: public half does not match the seed", ErrInvalidKey))
	case !bytes.Equal(c.PublicKey, c.SecretKey.Public().(ed25519.PublicKey)):
		return fieldErr("public_key", errors.New("does not belong to secret_key"))
	}
	if id, err := ParseRelayID(c.ID); err != nil {
		return fieldErr("id", err)
	} else if id != c.ID {
		return fieldErr("id", fmt.Errorf("%w: %q is not in canonical form %q", ErrInvalidRelayID, c.ID, id))
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
	return fmt.Sprintf("&auth.Credentials{ID: %q, PublicKey: %q, SecretKey: <redacted>}", c.ID, FormatPublicKey(c.PublicKey))
}

// fileJSON is credentials.json, in Relay's field order.
type fileJSON struct {
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
	return marshal(fileJSON{
		SecretKey: FormatSecretKey(c.SecretKey),
		PublicKey: FormatPublicKey(c.PublicKey),
		ID:        c.ID,
	})
}

// UnmarshalJSON decodes Relay's credentials.json format. All three fields are
// required; unknown fields are ignored (as Relay does).
func (c *Credentials) UnmarshalJSON(data []byte) error {
	obj, err := decodeObject(data)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidCredentials, err)
	}
	var vals [3]string
	for i, field := range [3]string{"secret_key", "public_key", "id"} {
		if vals[i], err = stringField(obj, field, true); err != nil {
			return fieldErr(field, err)
		}
	}
	parsed, err := Parse(vals[0], vals[1], vals[2])
	if err != nil {
		return err
	}
	*c = *parsed
	return nil
}

// Load reads a credentials.json file. A missing file gives
// ErrNoCredentials; a malformed one ErrInvalidCredentials naming the field.
func Load(path string) (*Credentials, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("auth: credentials %s: %w", path, ErrNoCredentials)
	}
	if err != nil {
		return nil, fmt.Errorf("auth: read credentials: %w", err)
	}
	var c Credentials
	if err := json.Unmarshal(data, &c); err != nil {
		// json.Unmarshal reports syntax errors itself, before UnmarshalJSON.
		if !errors.Is(err, ErrInvalidCredentials) {
			err = fmt.Errorf("%w: %w", ErrInvalidCredentials, err)
		}
		return nil, &FileError{Path: path, Err: err}
	}
	return &c, nil
}

// FileError is a credentials file that does not parse or lacks a field.
type FileError struct {
	Path string
	Err  error // wraps ErrInvalidCredentials
}

func (e *FileError) Error() string {
	return fmt.Sprintf("auth: credentials %s: %v; fix the file or replace it with `baton credentials generate --overwrite`", e.Path, e.Err)
}

func (e *FileError) Unwrap() error { return e.Err }

// Save writes c to path as credentials.json with mode 0600, atomically (temp
// file, fsync, link into place). It creates missing parent directories with
// mode 0700 and fails with ErrCredentialsExist if path exists.
func (c *Credentials) Save(path string) error { return c.save(path, false) }

// SaveOverwrite is Save, but atomically replaces an existing file.
func (c *Credentials) SaveOverwrite(path string) error { return c.save(path, true) }

func (c *Credentials) save(path string, overwrite bool) (err error) {
	if err := c.Validate(); err != nil { // before MarshalJSON: c may be nil
		return err
	}
	data, err := c.MarshalJSON()
	if err != nil {
		return err
	}
	data, err = indent(data)
	if err != nil {
		return err
	}
	if !overwrite {
		if _, err := os.Lstat(path); err == nil {
			return fmt.Errorf("auth: credentials %s: %w", path, ErrCredentialsExist)
		}
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("auth: save credentials: %w", err)
	}
	f, err := os.CreateTemp(dir, ".credentials-*.tmp")
	if err != nil {
		return fmt.Errorf("auth: save credentials: %w", err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = os.Remove(tmp)
		}
	}()
	if err := f.Chmod(0o600); err != nil {
		_ = f.Close()
		return fmt.Errorf("auth: save credentials: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		_ = f.Close()
		return fmt.Errorf("auth: save credentials: %w", err)
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return fmt.Errorf("auth: save credentials: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("auth: save credentials: %w", err)
	}
	if overwrite {
		if err := os.Rename(tmp, path); err != nil {
			return fmt.Errorf("auth: save credentials: %w", err)
		}
	} else {
		// A hard link never replaces an existing file, so a concurrent
		// writer cannot be clobbered between the check above and here.
		switch err := os.Link(tmp, path); {
		case err == nil:
			_ = os.Remove(tmp)
		case errors.Is(err, fs.ErrExist):
			return fmt.Errorf("auth: credentials %s: %w", path, ErrCredentialsExist)
		default:
			// No hard links on this filesystem: check, then rename (the
			// check above already ran; this narrows the race further).
			if _, err := os.Lstat(path); err == nil {
				return fmt.Errorf("auth: credentials %s: %w", path, ErrCredentialsExist)
			}
			if err := os.Rename(tmp, path); err != nil {
				return fmt.Errorf("auth: save credentials: %w", err)
			}
		}
	}
	syncDir(dir)
	return nil
}

// syncDir makes the new directory entry durable; best effort, as not
// every platform can fsync a directory.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
}

// indent pretty-prints JSON as Relay writes credentials.json.
func indent(data []byte) ([]byte, error) {
	var out bytes.Buffer
	if err := json.Indent(&out, data, "", "  "); err != nil {
		return nil, fmt.Errorf("auth: encode credentials: %w", err)
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}

// Keys and ids.

// ParsePublicKey parses Relay's public key string: base64url without
// padding of the 32-byte Ed25519 key. Like Relay it rejects bytes that do not
// decode to a curve point. Errors wrap ErrInvalidKey.
func ParsePublicKey(s string) (ed25519.PublicKey, error) {
	b, err := decodeB64(s)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidKey, err)
	}
	if len(b) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%w: bad key data: %d bytes, want %d", ErrInvalidKey, len(b), ed25519.PublicKeySize)
	}
	if !onCurve(b) {
		return nil, fmt.Errorf("%w: bad key data: not a point on Ed25519", ErrInvalidKey)
	}
	return ed25519.PublicKey(b), nil
}

// FormatPublicKey is the inverse of ParsePublicKey.
func FormatPublicKey(pk ed25519.PublicKey) string { return b64.EncodeToString(pk) }

// ParseSecretKey parses Relay's secret key string: base64url without padding
// of the 32-byte seed, or of the 64-byte seed‖public key (whose public half
// must match the seed). Errors wrap ErrInvalidKey.
func ParseSecretKey(s string) (ed25519.PrivateKey, error) {
	b, err := decodeB64(s)
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
func FormatSecretKey(sk ed25519.PrivateKey) string { return b64.EncodeToString(sk.Seed()) }

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
	return formatUUID(u), nil
}

func formatUUID(u [16]byte) string {
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

// onCurve reports whether a 32-byte compressed Edwards point decompresses.
// edwards25519 decodes as curve25519-dalek does (which Relay's key parsing
// uses): y is taken mod p, so non-canonical encodings are accepted, and so is
// x = 0 with the sign bit set; RFC 8032 §5.1.3 would reject both. Config
// validation (auth.static_relays) makes the same call, so a key that `baton
// config check` accepts also starts.
func onCurve(b []byte) bool {
	_, err := new(edwards25519.Point).SetBytes(b)
	return err == nil
}
