package auth

// Registration payloads (docs/relay-protocol.md §3.4).

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
)

var (
	// ErrInvalidRelayVersion means a version string is not one Relay parses
	// ("<major>.<minor>.<patch>", each 0–255, optional "-suffix").
	ErrInvalidRelayVersion = errors.New("invalid relay version")
)

// Pack encodes v as compact JSON (as serde_json does) and signs it: the body
// and X-Sentry-Relay-Signature of a signed request, like Relay's
// SecretKey::pack.
func (c *Credentials) Pack(v any, now time.Time) (body []byte, sig string, err error) {
	body, err = marshal(v)
	if err != nil {
		return nil, "", fmt.Errorf("auth: encode signed payload: %w", err)
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
	if err := CheckVersion(version); err != nil {
		return nil, err
	}
	return &RegisterRequest{RelayID: c.ID, PublicKey: c.PublicKey, Version: version}, nil
}

// MarshalJSON encodes {"relay_id","public_key","version"} in Relay's order.
func (r RegisterRequest) MarshalJSON() ([]byte, error) {
	return marshal(struct {
		RelayID   string `json:"relay_id"`
		PublicKey string `json:"public_key"`
		Version   string `json:"version"`
	}{r.RelayID, FormatPublicKey(r.PublicKey), versionOrDefault(r.Version)})
}

// UnmarshalJSON decodes and validates a challenge request.
func (r *RegisterRequest) UnmarshalJSON(data []byte) error {
	obj, err := decodeObject(data)
	if err != nil {
		return fmt.Errorf("auth: register request: %w", err)
	}
	id, err := relayIDField(obj, "register request")
	if err != nil {
		return err
	}
	pks, err := stringField(obj, "public_key", true)
	if err != nil {
		return fmt.Errorf("auth: register request: field \"public_key\": %w", err)
	}
	pk, err := ParsePublicKey(pks)
	if err != nil {
		return fmt.Errorf("auth: register request: field \"public_key\": %w", err)
	}
	v, err := versionField(obj, "register request")
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
	if err := CheckVersion(version); err != nil {
		return nil, err
	}
	return &RegisterResponse{RelayID: ch.RelayID, Token: ch.Token, Version: version}, nil
}

// MarshalJSON encodes {"relay_id","token"}.
func (ch RegisterChallenge) MarshalJSON() ([]byte, error) {
	type plain RegisterChallenge
	return marshal(plain(ch))
}

// UnmarshalJSON decodes and validates a challenge.
func (ch *RegisterChallenge) UnmarshalJSON(data []byte) error {
	id, tok, _, err := decodeTokenMsg(data, "register challenge", false)
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
	return marshal(struct {
		RelayID string `json:"relay_id"`
		Token   string `json:"token"`
		Version string `json:"version"`
	}{r.RelayID, r.Token, versionOrDefault(r.Version)})
}

// UnmarshalJSON decodes and validates a register response.
func (r *RegisterResponse) UnmarshalJSON(data []byte) error {
	id, tok, v, err := decodeTokenMsg(data, "register response", true)
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
	obj, err := decodeObject(data)
	if err != nil {
		return fmt.Errorf("auth: registration: %w", err)
	}
	id, err := relayIDField(obj, "registration")
	if err != nil {
		return err
	}
	r.RelayID = id
	return nil
}

func decodeTokenMsg(data []byte, what string, withVersion bool) (id, token, version string, err error) {
	obj, err := decodeObject(data)
	if err != nil {
		return "", "", "", fmt.Errorf("auth: %s: %w", what, err)
	}
	if id, err = relayIDField(obj, what); err != nil {
		return "", "", "", err
	}
	if token, err = stringField(obj, "token", true); err != nil {
		return "", "", "", fmt.Errorf("auth: %s: field \"token\": %w", what, err)
	}
	if withVersion {
		if version, err = versionField(obj, what); err != nil {
			return "", "", "", err
		}
	}
	return id, token, version, nil
}

func relayIDField(obj map[string]json.RawMessage, what string) (string, error) {
	s, err := stringField(obj, "relay_id", true)
	if err == nil {
		s, err = ParseRelayID(s)
	}
	if err != nil {
		return "", fmt.Errorf("auth: %s: field \"relay_id\": %w", what, err)
	}
	return s, nil
}

func versionField(obj map[string]json.RawMessage, what string) (string, error) {
	v, err := stringField(obj, "version", false)
	if err == nil && v != "" {
		err = CheckVersion(v)
	}
	if err != nil {
		return "", fmt.Errorf("auth: %s: field \"version\": %w", what, err)
	}
	return v, nil
}

// versionOrDefault is what Relay assumes for a missing version.
func versionOrDefault(v string) string {
	if v == "" {
		return "0.0.0"
	}
	return v
}

// CheckVersion applies Relay's RelayVersion parsing: split on '.' and
// '-', the first three parts must be integers 0–255.
func CheckVersion(v string) error {
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
