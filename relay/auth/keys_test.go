package auth

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// keysUpstream is a fake upstream of publickeys: it knows the relays in
// known and records every request.
type keysUpstream struct {
	mu    sync.Mutex
	known map[string]*RelayInfo
	calls [][]string
	err   error
}

func (u *keysUpstream) fetch(_ context.Context, ids []string) (map[string]*RelayInfo, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.calls = append(u.calls, slices.Sorted(slices.Values(ids)))
	if u.err != nil {
		return nil, u.err
	}
	out := map[string]*RelayInfo{}
	for _, id := range ids {
		if r, ok := u.known[id]; ok {
			out[id] = r
		}
	}
	return out, nil
}

func (u *keysUpstream) requests() [][]string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return slices.Clone(u.calls)
}

func newRelayInfo(t *testing.T) (*Credentials, *RelayInfo) {
	t.Helper()
	c, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	return c, &RelayInfo{PublicKey: c.PublicKey}
}

// Lookups of several relays at once become one batched request; a relay
// the upstream does not know is answered nil and cached as unknown; cached
// answers need no request.
func TestKeysBatchHitUnknown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, ia := newRelayInfo(t)
		b, ib := newRelayInfo(t)
		stranger, _ := newRelayInfo(t)
		up := &keysUpstream{known: map[string]*RelayInfo{a.ID: ia, b.ID: ib}}
		k, err := NewKeys(KeysOptions{Fetch: up.fetch})
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		var wg sync.WaitGroup
		got := make([]map[string]*RelayInfo, 3)
		for i, id := range []string{a.ID, b.ID, stranger.ID} {
			wg.Go(func() {
				m, err := k.Lookup(ctx, id)
				if err != nil {
					t.Error(err)
				}
				got[i] = m
			})
		}
		wg.Wait()
		if reqs := up.requests(); len(reqs) != 1 || len(reqs[0]) != 3 {
			t.Fatalf("3 concurrent lookups made requests %v, want one of 3 ids", reqs)
		}
		if !got[0][a.ID].PublicKey.Equal(a.PublicKey) || !got[1][b.ID].PublicKey.Equal(b.PublicKey) {
			t.Fatalf("known relays: %v %v", got[0], got[1])
		}
		if r, ok := got[2][stranger.ID]; !ok || r != nil {
			t.Fatalf("unknown relay: %v, want an entry of nil", got[2])
		}
		// Hits: known and unknown alike, no further request.
		m, err := k.Lookup(ctx, a.ID, stranger.ID)
		if err != nil || m[a.ID] == nil || m[stranger.ID] != nil {
			t.Fatalf("cached lookup: %v %v", m, err)
		}
		if info, ok := k.Peek(a.ID); !ok || info == nil {
			t.Fatalf("Peek of a cached relay: %v %v", info, ok)
		}
		if n := len(up.requests()); n != 1 {
			t.Fatalf("cached answers made %d requests, want 1", n)
		}
	})
}

// Known keys expire after Expiry, unknown ones after MissExpiry; an expired
// entry is asked again, and kept when the upstream cannot answer.
func TestKeysExpiry(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	var clock sync.Mutex
	tick := func(d time.Duration) { clock.Lock(); now = now.Add(d); clock.Unlock() }
	a, ia := newRelayInfo(t)
	stranger, _ := newRelayInfo(t)
	up := &keysUpstream{known: map[string]*RelayInfo{a.ID: ia}}
	k, err := NewKeys(KeysOptions{Fetch: up.fetch, Expiry: time.Hour, MissExpiry: time.Minute,
		BatchInterval: time.Millisecond,
		Now:           func() time.Time { clock.Lock(); defer clock.Unlock(); return now }})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	lookup := func(id string) *RelayInfo {
		t.Helper()
		m, err := k.Lookup(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return m[id]
	}
	lookup(a.ID)
	lookup(stranger.ID)
	if n := len(up.requests()); n != 2 {
		t.Fatalf("%d requests, want 2", n)
	}
	tick(59 * time.Second)
	lookup(a.ID)
	lookup(stranger.ID)
	if n := len(up.requests()); n != 2 {
		t.Fatalf("before any expiry: %d requests, want 2", n)
	}
	// The stranger registers meanwhile: once its miss expires it is known.
	up.mu.Lock()
	_, is := newRelayInfo(t)
	up.known[stranger.ID] = is
	up.mu.Unlock()
	tick(2 * time.Second)
	if lookup(stranger.ID) == nil {
		t.Fatal("an unknown relay stayed unknown past MissExpiry")
	}
	if lookup(a.ID) == nil || len(up.requests()) != 3 {
		t.Fatalf("a known relay was asked again before Expiry: %v", up.requests())
	}
	// Past Expiry a known relay is asked again; when the upstream fails,
	// the expired key is still used.
	tick(time.Hour)
	up.mu.Lock()
	up.err = errors.New("upstream down")
	up.mu.Unlock()
	if r := lookup(a.ID); r == nil || !r.PublicKey.Equal(a.PublicKey) {
		t.Fatalf("expired key during an upstream failure: %v", r)
	}
	if n := len(up.requests()); n != 4 {
		t.Fatalf("expired key: %d requests, want 4", n)
	}
	// A relay never seen fails while the upstream cannot be asked.
	never, _ := newRelayInfo(t)
	if _, err := k.Lookup(ctx, never.ID); !errors.Is(err, ErrKeyLookup) {
		t.Fatalf("lookup during an upstream failure: %v, want ErrKeyLookup", err)
	}
	// Forget drops a cached answer: the next lookup asks.
	up.mu.Lock()
	up.err = nil
	up.mu.Unlock()
	lookup(stranger.ID)
	n := len(up.requests())
	k.Forget(stranger.ID)
	lookup(stranger.ID)
	if len(up.requests()) != n+1 {
		t.Fatal("Forget did not make the next lookup ask the upstream")
	}
}

// A lookup waits for the upstream at most MaxWait.
func TestKeysBoundedWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		k, err := NewKeys(KeysOptions{MaxWait: 2 * time.Second, Fetch: func(ctx context.Context, ids []string) (map[string]*RelayInfo, error) {
			<-release
			return nil, nil
		}})
		if err != nil {
			t.Fatal(err)
		}
		c, _ := newRelayInfo(t)
		start := time.Now()
		_, err = k.Lookup(context.Background(), c.ID)
		if !errors.Is(err, ErrKeyLookup) || time.Since(start) != 2*time.Second {
			t.Fatalf("stuck upstream: %v after %s, want ErrKeyLookup after 2s", err, time.Since(start))
		}
		// Peek never waits.
		if info, ok := k.Peek(c.ID); info != nil || ok {
			t.Fatalf("Peek: %v %v", info, ok)
		}
		close(release)
	})
}

// The publickeys wire format: requests need relay_ids of relay ids, the
// answer is Relay's {"relays": …} only, and an upstream's answer is read
// from "relays" or else the legacy "public_keys".
func TestPublicKeysWire(t *testing.T) {
	c, _ := newRelayInfo(t)
	for _, bad := range []string{`{}`, `{"relay_ids": null}`, `{"relay_ids": "x"}`, `{"relay_ids": ["nope"]}`, `[]`, `{"relay_ids": []} x`} {
		if _, err := ParsePublicKeysRequest([]byte(bad)); err == nil {
			t.Errorf("ParsePublicKeysRequest(%s) accepted", bad)
		}
	}
	ids, err := ParsePublicKeysRequest([]byte(`{"relay_ids": ["` + strings.ToUpper(c.ID) + `"]}`))
	if err != nil || len(ids) != 1 || ids[0] != c.ID {
		t.Fatalf("ParsePublicKeysRequest: %v %v", ids, err)
	}

	pk := FormatPublicKey(c.PublicKey)
	b, err := MarshalPublicKeys(map[string]*RelayInfo{c.ID: {PublicKey: c.PublicKey, Internal: true}, "x": nil})
	if err != nil {
		t.Fatal(err)
	}
	var shape map[string]map[string]*struct {
		PublicKey *string `json:"publicKey"`
		Internal  *bool   `json:"internal"`
	}
	if err := json.Unmarshal(b, &shape); err != nil || len(shape) != 1 || shape["relays"] == nil {
		t.Fatalf("answer %s: want only a relays object", b)
	}
	if r := shape["relays"][c.ID]; r == nil || *r.PublicKey != pk || !*r.Internal || shape["relays"]["x"] != nil {
		t.Fatalf("answer %s", b)
	}

	for _, answer := range []string{
		`{"relays": {"` + c.ID + `": {"publicKey": "` + pk + `", "internal": true}}, "public_keys": {}}`,
		`{"public_keys": {"` + c.ID + `": "` + pk + `"}}`,
	} {
		got, err := ParsePublicKeys([]byte(answer))
		if err != nil || got[c.ID] == nil || !got[c.ID].PublicKey.Equal(c.PublicKey) {
			t.Errorf("ParsePublicKeys(%s) = %v, %v", answer, got, err)
		}
	}
}
