package auth

// Downstream relays the upstream vouches for: a bounded cache of relay id →
// public key, filled by batched POST /api/0/relays/publickeys/ requests
// (docs/relay-protocol.md §3.5), as Relay's RelayCache does.

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
)

// Defaults of KeysOptions; the expiries and the batch interval are Relay's
// cache.relay_expiry, cache.miss_expiry and cache.batch_interval.
const (
	DefaultRelayExpiry        = time.Hour
	DefaultRelayMissExpiry    = 60 * time.Second
	DefaultKeysBatchInterval  = 100 * time.Millisecond
	DefaultKeysSize           = 10_000
	DefaultKeysFetchTimeout   = 5 * time.Second // Relay's http.timeout
	maxRelayIDsPerKeysRequest = 1000            // keeps one upstream request bounded
)

// ErrKeyLookup means the upstream could not be asked about a relay (it did
// not answer, or answered an error): the relay is neither known nor unknown.
var ErrKeyLookup = errors.New("relay key lookup failed")

// RelayInfo is what is known of a relay: its public key and whether it is
// internal (of the same organisation as the upstream).
type RelayInfo struct {
	PublicKey ed25519.PublicKey
	Internal  bool
}

// KeyFetcher asks the upstream about relays (canonical ids). Relays it does
// not know are missing from the answer or nil.
type KeyFetcher func(ctx context.Context, ids []string) (map[string]*RelayInfo, error)

// KeysOptions configure NewKeys.
type KeysOptions struct {
	// Fetch asks the upstream; required.
	Fetch KeyFetcher
	// Size bounds the cached relays (least recently used go first);
	// 0 means DefaultKeysSize.
	Size int
	// Expiry is how long a known relay's key is used before it is asked
	// again; 0 means DefaultRelayExpiry.
	Expiry time.Duration
	// MissExpiry is how long an unknown relay stays unknown; 0 means
	// DefaultRelayMissExpiry.
	MissExpiry time.Duration
	// BatchInterval gathers the lookups of this long into one request;
	// 0 means DefaultKeysBatchInterval.
	BatchInterval time.Duration
	// FetchTimeout bounds one upstream request; 0 means
	// DefaultKeysFetchTimeout.
	FetchTimeout time.Duration
	// MaxWait bounds how long Lookup waits for the upstream; 0 means
	// BatchInterval + FetchTimeout (one batch).
	MaxWait time.Duration
	// Now is the clock of the expiries; nil means time.Now.
	Now func() time.Time
}

// Keys caches what the upstream knows of downstream relays. Lookups of
// relays missing or expired in the cache wait (at most MaxWait) for the
// next batch request; one request is in flight at a time. A relay the
// upstream does not know is cached as unknown. When the upstream cannot be
// asked, an expired key is still used (a downstream relay keeps its configs
// through an upstream outage), and a relay never seen fails with
// ErrKeyLookup.
type Keys struct {
	o     KeysOptions
	cache *lru.Cache[string, keyEntry]

	flushing sync.Mutex // one upstream request at a time
	mu       sync.Mutex
	pending  map[string]struct{} // ids the next batch asks for
	next     *keyBatch           // nil while nothing is pending
}

type keyEntry struct {
	info *RelayInfo // nil: unknown to the upstream
	at   time.Time
}

// keyBatch is one upstream request; done closes when its answer (or error)
// is in the cache.
type keyBatch struct {
	done chan struct{}
	err  error
}

// NewKeys makes an empty cache.
func NewKeys(o KeysOptions) (*Keys, error) {
	if o.Fetch == nil {
		return nil, errors.New("auth: KeysOptions.Fetch is required")
	}
	if o.Size <= 0 {
		o.Size = DefaultKeysSize
	}
	if o.Expiry <= 0 {
		o.Expiry = DefaultRelayExpiry
	}
	if o.MissExpiry <= 0 {
		o.MissExpiry = DefaultRelayMissExpiry
	}
	if o.BatchInterval <= 0 {
		o.BatchInterval = DefaultKeysBatchInterval
	}
	if o.FetchTimeout <= 0 {
		o.FetchTimeout = DefaultKeysFetchTimeout
	}
	if o.MaxWait <= 0 {
		o.MaxWait = o.BatchInterval + o.FetchTimeout
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	c, err := lru.New[string, keyEntry](o.Size)
	if err != nil {
		return nil, err
	}
	return &Keys{o: o, cache: c, pending: map[string]struct{}{}}, nil
}

// fresh reports whether e may be used without asking again.
func (k *Keys) fresh(e keyEntry) bool {
	ttl := k.o.Expiry
	if e.info == nil {
		ttl = k.o.MissExpiry
	}
	return k.o.Now().Sub(e.at) < ttl
}

// Peek answers from the cache without waiting: the relay's info (nil when
// unknown), and whether the cache had an entry, expired ones included. A
// missing or expired entry is asked for in the next batch, unless that
// batch is already full (Peek serves request paths that never wait, so
// that any client can call it).
func (k *Keys) Peek(id string) (*RelayInfo, bool) {
	e, ok := k.cache.Get(id)
	if !ok || !k.fresh(e) {
		k.mu.Lock()
		if len(k.pending) < maxRelayIDsPerKeysRequest {
			k.enqueueLocked(id)
		}
		k.mu.Unlock()
	}
	return e.info, ok
}

// Lookup answers what the upstream knows of the relays ids (canonical
// form): an entry per id, nil for relays it does not know. It waits for
// the batch that asks for them, at most MaxWait or until ctx is done.
func (k *Keys) Lookup(ctx context.Context, ids ...string) (map[string]*RelayInfo, error) {
	out := make(map[string]*RelayInfo, len(ids))
	var wait *keyBatch // every id enqueued under one lock goes to the same batch
	k.mu.Lock()
	for _, id := range ids {
		if e, ok := k.cache.Get(id); ok && k.fresh(e) {
			out[id] = e.info
			continue
		}
		wait = k.enqueueLocked(id)
	}
	k.mu.Unlock()
	if wait != nil {
		timer := time.NewTimer(k.o.MaxWait)
		defer timer.Stop()
		select {
		case <-wait.done:
		case <-timer.C:
			return nil, fmt.Errorf("%w: no answer from the upstream within %s", ErrKeyLookup, k.o.MaxWait)
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: %w", ErrKeyLookup, ctx.Err())
		}
	}
	for _, id := range ids {
		if _, ok := out[id]; ok {
			continue
		}
		e, ok := k.cache.Get(id)
		if !ok { // the batch failed and nothing was ever known
			if wait.err != nil {
				return nil, wait.err
			}
			return nil, ErrKeyLookup
		}
		out[id] = e.info // fresh, or stale when the batch failed
	}
	return out, nil
}

// Forget drops what is cached of relay id, so that the next lookup asks the
// upstream (after the relay registered, an "unknown" is out of date).
func (k *Keys) Forget(id string) { k.cache.Remove(id) }

// enqueueLocked adds id to the next batch, starting its timer when it is
// the first, and returns that batch.
func (k *Keys) enqueueLocked(id string) *keyBatch {
	if k.next == nil {
		k.next = &keyBatch{done: make(chan struct{})}
		time.AfterFunc(k.o.BatchInterval, k.flush)
	}
	k.pending[id] = struct{}{}
	return k.next
}

// flush sends the pending ids in one request (or several of at most
// maxRelayIDsPerKeysRequest ids) and caches the answers.
func (k *Keys) flush() {
	k.flushing.Lock()
	defer k.flushing.Unlock()
	k.mu.Lock()
	b := k.next
	ids := make([]string, 0, len(k.pending))
	for id := range k.pending {
		ids = append(ids, id)
	}
	k.pending, k.next = map[string]struct{}{}, nil
	k.mu.Unlock()
	if b == nil { // each batch has its own flush; nothing was pending
		return
	}
	defer close(b.done)

	for len(ids) > 0 {
		n := min(len(ids), maxRelayIDsPerKeysRequest)
		chunk := ids[:n]
		ids = ids[n:]
		ctx, cancel := context.WithTimeout(context.Background(), k.o.FetchTimeout)
		got, err := k.o.Fetch(ctx, chunk)
		cancel()
		if err != nil {
			b.err = fmt.Errorf("%w: %w", ErrKeyLookup, err)
			continue
		}
		now := k.o.Now()
		for _, id := range chunk {
			k.cache.Add(id, keyEntry{info: got[id], at: now})
		}
	}
}

// PublicKeysRequest is the body of POST /api/0/relays/publickeys/.
type PublicKeysRequest struct {
	RelayIDs []string `json:"relay_ids"`
}

// ParsePublicKeysRequest reads a publickeys request as Relay does: the
// relay_ids field is required and every entry must be a relay id. The ids
// come back in canonical form.
func ParsePublicKeysRequest(data []byte) ([]string, error) {
	obj, err := decodeObject(data)
	if err != nil {
		return nil, err
	}
	raw, ok := obj["relay_ids"]
	if !ok {
		return nil, errors.New("relay_ids: missing")
	}
	var ids []string
	if err := json.Unmarshal(raw, &ids); err != nil || ids == nil {
		return nil, errors.New("relay_ids: want an array of relay ids")
	}
	for i, s := range ids {
		if ids[i], err = ParseRelayID(s); err != nil {
			return nil, fmt.Errorf("relay_ids[%d]: %w", i, err)
		}
	}
	return ids, nil
}

// relayInfoJSON is RelayInfo on the wire (Relay's relay_config::RelayInfo).
type relayInfoJSON struct {
	PublicKey string `json:"publicKey"`
	Internal  bool   `json:"internal"`
}

// MarshalPublicKeys is the answer to a publickeys request in Relay's shape:
// {"relays": {"<id>": {"publicKey": "…", "internal": bool} | null}}. A
// relay's own endpoint sends no legacy "public_keys" field.
func MarshalPublicKeys(relays map[string]*RelayInfo) ([]byte, error) {
	out := make(map[string]*relayInfoJSON, len(relays))
	for id, r := range relays {
		out[id] = nil
		if r != nil {
			out[id] = &relayInfoJSON{PublicKey: FormatPublicKey(r.PublicKey), Internal: r.Internal}
		}
	}
	return marshal(struct {
		Relays map[string]*relayInfoJSON `json:"relays"`
	}{out})
}

// ParsePublicKeys reads an upstream's answer to a publickeys request. Like
// Relay, it takes "relays" and falls back to the legacy "public_keys" map
// (Sentry sends both) when "relays" is empty. Ids come back canonical;
// entries whose id or key does not parse are left out (unknown).
func ParsePublicKeys(data []byte) (map[string]*RelayInfo, error) {
	var resp struct {
		PublicKeys map[string]*string        `json:"public_keys"`
		Relays     map[string]*relayInfoJSON `json:"relays"`
	}
	if err := json.Unmarshal(data, &resp); err != nil {
		return nil, fmt.Errorf("publickeys answer: %w", err)
	}
	if len(resp.Relays) == 0 {
		resp.Relays = make(map[string]*relayInfoJSON, len(resp.PublicKeys))
		for id, pk := range resp.PublicKeys {
			if pk != nil {
				resp.Relays[id] = &relayInfoJSON{PublicKey: *pk}
			}
		}
	}
	out := make(map[string]*RelayInfo, len(resp.Relays))
	for raw, r := range resp.Relays {
		id, err := ParseRelayID(raw)
		if err != nil || r == nil {
			continue
		}
		pk, err := ParsePublicKey(r.PublicKey)
		if err != nil {
			continue
		}
		out[id] = &RelayInfo{PublicKey: pk, Internal: r.Internal}
	}
	return out, nil
}
