package auth

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func newTestDownstream(t *testing.T, now *time.Time, c *Credentials) *Downstream {
	t.Helper()
	d, err := NewDownstream(DownstreamOptions{
		Relays: map[string]TrustedRelay{
			strings.ToUpper(c.ID): {PublicKey: FormatPublicKey(c.PublicKey), Internal: true},
		},
		Now: func() time.Time { return *now },
	})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestDownstreamVerify(t *testing.T) {
	c := fixedCreds(t)
	now := knownTime
	d := newTestDownstream(t, &now, c)

	// The id is looked up in canonical form, whatever form the config used.
	if pk, internal, ok := d.Trusted(c.ID); !ok || !internal || !pk.Equal(c.PublicKey) {
		t.Fatalf("Trusted(%s) = %v %v %v", c.ID, pk, internal, ok)
	}
	body := []byte(`{"publicKeys":["abc"]}`)
	if id, err := d.Verify(context.Background(), strings.ToUpper(c.ID), c.Sign(body, now), body); err != nil || id != c.ID {
		t.Fatalf("Verify = %q, %v", id, err)
	}

	stranger, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		id, sig, want string
		is            error
	}{
		"no id":         {"", c.Sign(body, now), "missing or malformed X-Sentry-Relay-Id", nil},
		"untrusted id":  {stranger.ID, stranger.Sign(body, now), "is not trusted", nil},
		"no signature":  {c.ID, "", "missing X-Sentry-Relay-Signature", nil},
		"other key":     {c.ID, stranger.Sign(body, now), "", ErrSignatureInvalid},
		"too old":       {c.ID, c.Sign(body, now.Add(-DefaultSignatureMaxAge-time.Second)), "", ErrSignatureExpired},
		"too far ahead": {c.ID, c.Sign(body, now.Add(DefaultSignatureMaxFuture+time.Second)), "", ErrSignatureExpired},
	} {
		_, err := d.Verify(context.Background(), tc.id, tc.sig, body)
		switch {
		case err == nil:
			t.Errorf("%s: verified", name)
		case tc.is != nil && !errors.Is(err, tc.is):
			t.Errorf("%s: %v, want %v", name, err, tc.is)
		case tc.want != "" && !strings.Contains(err.Error(), tc.want):
			t.Errorf("%s: %v, want it to say %q", name, err, tc.want)
		}
	}
}

func TestDownstreamToken(t *testing.T) {
	c := fixedCreds(t)
	start := knownTime.Truncate(time.Second) // tokens carry whole seconds
	now := start
	d := newTestDownstream(t, &now, c)

	tok := d.Token(c.ID)
	if err := d.CheckToken(tok, c.ID); err != nil {
		t.Fatalf("fresh token: %v", err)
	}
	if err := d.CheckToken(tok, "6b7d15b8-cee2-4354-9fee-dae7ef43e434"); err == nil || !strings.Contains(err.Error(), "another relay") {
		t.Errorf("token of another relay: %v", err)
	}
	state, mac, _ := strings.Cut(tok, ":")
	for name, bad := range map[string]string{
		"no mac":     state,
		"wrong mac":  state + ":" + strings.Repeat("A", len(mac)),
		"other key":  newTestDownstream(t, &now, c).Token(c.ID),
		"empty":      "",
		"state only": ":" + mac,
	} {
		if err := d.CheckToken(bad, c.ID); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}

	now = start.Add(tokenMaxAge)
	if err := d.CheckToken(tok, c.ID); err != nil {
		t.Errorf("at max age: %v", err)
	}
	now = start.Add(tokenMaxAge + time.Second)
	if err := d.CheckToken(tok, c.ID); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Errorf("past max age: %v", err)
	}
	// A token stamped further ahead than the signature window is refused too.
	now = start.Add(DefaultSignatureMaxFuture + 2*time.Second)
	ahead := d.Token(c.ID)
	now = start
	if err := d.CheckToken(ahead, c.ID); err == nil {
		t.Error("token from the future accepted")
	}
}

func TestNewDownstreamRejects(t *testing.T) {
	c := fixedCreds(t)
	for name, relays := range map[string]map[string]TrustedRelay{
		"bad id":  {"not-a-uuid": {PublicKey: FormatPublicKey(c.PublicKey)}},
		"bad key": {c.ID: {PublicKey: "AgAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}},
		"no key":  {c.ID: {}},
	} {
		_, err := NewDownstream(DownstreamOptions{Relays: relays})
		if !errors.Is(err, ErrInvalidRelayID) && !errors.Is(err, ErrInvalidKey) {
			t.Errorf("%s: %v", name, err)
		}
	}
}
