package auth

// Serving downstream relays: signature checks against a static trust list
// and stateless registration tokens (docs/relay-protocol.md §3.4, §3.6).

import (
	"bytes"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// TrustedRelay is one downstream relay a Downstream admits.
type TrustedRelay struct {
	// PublicKey is the relay's public key in Relay's string form
	// (see ParsePublicKey).
	PublicKey string
	// Internal marks a relay of the same organisation; it is reported to
	// whoever asks for public keys.
	Internal bool
}

// DownstreamOptions configure NewDownstream.
type DownstreamOptions struct {
	// Relays are the trusted relays by relay id (any form ParseRelayID
	// accepts). Requests of other relays never verify.
	Relays map[string]TrustedRelay
	// MaxAge rejects signatures older than this; 0 means
	// DefaultSignatureMaxAge.
	MaxAge time.Duration
	// MaxFuture rejects signatures from further ahead than this (and bounds
	// how far ahead a token's time may be); 0 means
	// DefaultSignatureMaxFuture.
	MaxFuture time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Downstream authenticates the relays that register with Baton and fetch
// configs from it: only the trusted relays are admitted, and every request
// they sign is checked against the signature age window. Registration
// tokens are stateless: an HMAC, under a key made at start, of the relay id
// and the time, so any number of challenges costs no memory.
type Downstream struct {
	relays    map[string]trusted // canonical relay id → key
	secret    [32]byte           // keys the registration tokens
	maxAge    time.Duration
	maxFuture time.Duration
	now       func() time.Time
}

type trusted struct {
	key      ed25519.PublicKey
	internal bool
}

// tokenMaxAge is how long a registration token from Token stays valid.
const tokenMaxAge = 60 * time.Second

// NewDownstream parses the trusted relays of o. Errors name the relay and
// wrap ErrInvalidRelayID or ErrInvalidKey.
func NewDownstream(o DownstreamOptions) (*Downstream, error) {
	d := &Downstream{
		relays:    make(map[string]trusted, len(o.Relays)),
		maxAge:    o.MaxAge,
		maxFuture: o.MaxFuture,
		now:       o.Now,
	}
	if d.maxAge == 0 {
		d.maxAge = DefaultSignatureMaxAge
	}
	if d.maxFuture == 0 {
		d.maxFuture = DefaultSignatureMaxFuture
	}
	if d.now == nil {
		d.now = time.Now
	}
	for id, r := range o.Relays {
		rid, err := ParseRelayID(id)
		if err != nil {
			return nil, err
		}
		pk, err := ParsePublicKey(r.PublicKey)
		if err != nil {
			return nil, fmt.Errorf("relay %s: public key: %w", id, err)
		}
		d.relays[rid] = trusted{key: pk, internal: r.Internal}
	}
	if _, err := rand.Read(d.secret[:]); err != nil {
		return nil, fmt.Errorf("auth: make the registration token key: %w", err)
	}
	return d, nil
}

// Trusted reports the public key of a trusted relay (id in canonical form,
// as ParseRelayID returns it) and whether it is internal.
func (d *Downstream) Trusted(id string) (key ed25519.PublicKey, internal, ok bool) {
	t, ok := d.relays[id]
	return t.key, t.internal, ok
}

// Verify checks a signed request: relayID and signature are the values of
// the HeaderRelayID and HeaderRelaySignature headers, body what was signed.
// It answers the canonical relay id, or an error naming what is wrong.
func (d *Downstream) Verify(relayID, signature string, body []byte) (string, error) {
	id, err := ParseRelayID(relayID)
	if err != nil {
		return "", fmt.Errorf("missing or malformed %s", HeaderRelayID)
	}
	t, ok := d.relays[id]
	if !ok {
		return "", fmt.Errorf("relay %s is not trusted (auth.static_relays)", id)
	}
	if signature == "" {
		return "", fmt.Errorf("missing %s", HeaderRelaySignature)
	}
	if err := VerifySignature(t.key, body, signature, d.now(), d.maxAge, d.maxFuture); err != nil {
		return "", err
	}
	return id, nil
}

// registerToken is the state a token carries: the relay id and a timestamp.
type registerToken struct {
	RelayID string `json:"relay_id"`
	Time    int64  `json:"t"`
}

// Token is the challenge token for relay id: base64url(state) ":"
// base64url(HMAC-SHA256(state)). It is opaque to the relay, which sends it
// back in its RegisterResponse.
func (d *Downstream) Token(id string) string {
	state, _ := json.Marshal(registerToken{RelayID: id, Time: d.now().Unix()})
	s := base64.RawURLEncoding.EncodeToString(state)
	mac := hmac.New(sha256.New, d.secret[:])
	mac.Write([]byte(s))
	return s + ":" + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// CheckToken accepts a token this Downstream issued to relay id within
// tokenMaxAge (a minute).
func (d *Downstream) CheckToken(tok, id string) error {
	s, m, ok := bytes.Cut([]byte(tok), []byte{':'})
	if !ok {
		return errors.New("malformed token")
	}
	mac := hmac.New(sha256.New, d.secret[:])
	mac.Write(s)
	want := base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
	if !hmac.Equal(m, []byte(want)) {
		return errors.New("token signature does not match")
	}
	raw, err := base64.RawURLEncoding.DecodeString(string(s))
	if err != nil {
		return errors.New("malformed token")
	}
	var rt registerToken
	if err := json.Unmarshal(raw, &rt); err != nil {
		return errors.New("malformed token")
	}
	if rt.RelayID != id {
		return errors.New("token was issued to another relay")
	}
	if age := d.now().Sub(time.Unix(rt.Time, 0)); age > tokenMaxAge || age < -d.maxFuture {
		return errors.New("token expired; start over with a new challenge")
	}
	return nil
}
