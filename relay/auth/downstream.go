package auth

// Serving downstream relays: signature checks against a static trust list
// or the keys the upstream vouches for, and stateless registration tokens
// (docs/relay-protocol.md §3.4–§3.6).

import (
	"bytes"
	"context"
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
	// Relays are the statically trusted relays by relay id (any form
	// ParseRelayID accepts); they take precedence over Keys.
	Relays map[string]TrustedRelay
	// Keys, when set, looks up the other relays at the upstream; without
	// it, requests of other relays never verify.
	Keys *Keys
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
// configs from it: the static relays and those the upstream knows are
// admitted, and every request they sign is checked against the signature
// age window. Registration
// tokens are stateless: an HMAC, under a key made at start, of the relay id
// and the time, so any number of challenges costs no memory.
type Downstream struct {
	relays    map[string]*RelayInfo // static: canonical relay id → key
	keys      *Keys                 // nil: static relays only
	secret    [32]byte              // keys the registration tokens
	maxAge    time.Duration
	maxFuture time.Duration
	now       func() time.Time
}

// tokenMaxAge is how long a registration token from Token stays valid.
const tokenMaxAge = 60 * time.Second

// NewDownstream parses the trusted relays of o. Errors name the relay and
// wrap ErrInvalidRelayID or ErrInvalidKey.
func NewDownstream(o DownstreamOptions) (*Downstream, error) {
	d := &Downstream{
		relays:    make(map[string]*RelayInfo, len(o.Relays)),
		keys:      o.Keys,
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
		d.relays[rid] = &RelayInfo{PublicKey: pk, Internal: r.Internal}
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
	if !ok {
		return nil, false, false
	}
	return t.PublicKey, t.Internal, true
}

// ErrUnknownRelay means a relay is neither static nor known to the
// upstream.
var ErrUnknownRelay = errors.New("unknown relay")

// Relays answers what is known of relays ids (canonical form): static
// relays first, then the upstream's answer through Keys; nil for an unknown
// relay. It waits for at most one upstream lookup (see Keys.Lookup), or
// fails with ErrKeyLookup.
func (d *Downstream) Relays(ctx context.Context, ids ...string) (map[string]*RelayInfo, error) {
	out := make(map[string]*RelayInfo, len(ids))
	var ask []string
	for _, id := range ids {
		if t, ok := d.relays[id]; ok {
			out[id] = t
		} else if d.keys != nil {
			ask = append(ask, id)
		} else {
			out[id] = nil
		}
	}
	if len(ask) > 0 {
		got, err := d.keys.Lookup(ctx, ask...)
		if err != nil {
			return nil, err
		}
		for _, id := range ask {
			out[id] = got[id]
		}
	}
	return out, nil
}

// Cached answers what is known of relay id without waiting: static relays,
// then whatever Keys holds (a lookup is started when it holds nothing
// fresh). Nil means unknown or not known yet.
func (d *Downstream) Cached(id string) *RelayInfo {
	if t, ok := d.relays[id]; ok {
		return t
	}
	if d.keys != nil {
		info, _ := d.keys.Peek(id)
		return info
	}
	return nil
}

// Forget drops what the upstream said of relay id (see Keys.Forget).
func (d *Downstream) Forget(id string) {
	if d.keys != nil {
		d.keys.Forget(id)
	}
}

// Verify checks a signed request: relayID and signature are the values of
// the HeaderRelayID and HeaderRelaySignature headers, body what was signed.
// It answers the canonical relay id, or an error naming what is wrong:
// ErrUnknownRelay, ErrKeyLookup (the upstream could not be asked), or a
// malformed, missing or bad signature.
func (d *Downstream) Verify(ctx context.Context, relayID, signature string, body []byte) (string, error) {
	id, err := ParseRelayID(relayID)
	if err != nil {
		return "", fmt.Errorf("missing or malformed %s", HeaderRelayID)
	}
	got, err := d.Relays(ctx, id)
	if err != nil {
		return "", err
	}
	info := got[id]
	if info == nil {
		return "", fmt.Errorf("%w: relay %s is not trusted (auth.static_relays) nor known to the upstream", ErrUnknownRelay, id)
	}
	return id, d.VerifyWith(info, signature, body)
}

// VerifyWith checks a signature against the key of info.
func (d *Downstream) VerifyWith(info *RelayInfo, signature string, body []byte) error {
	if signature == "" {
		return fmt.Errorf("missing %s", HeaderRelaySignature)
	}
	return VerifySignature(info.PublicKey, body, signature, d.now(), d.maxAge, d.maxFuture)
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
