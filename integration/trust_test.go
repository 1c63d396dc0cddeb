package integration

// Relay-to-relay trust as Relay does it (docs/relay-protocol.md §3.4–§3.6):
// a managed Baton admits the downstream relays its upstream knows, not only
// auth.static_relays.

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/baton-relay/baton/relay/auth"
)

// trustUpstream is an upstream that registers anybody, records every
// request and answers publickeys from a script.
type trustUpstream struct {
	t        *testing.T
	srv      *httptest.Server
	mu       sync.Mutex
	reqs     []trustRequest
	keys     map[string]*auth.RelayInfo // what publickeys answers
	keysFail int                        // answer publickeys with this status
	regFail  int                        // answer downstream challenges with this status
	self     string                     // Baton's relay id: its registration is served
}

type trustRequest struct {
	Path    string
	RelayID string
	Sig     string
	Body    []byte
}

func newTrustUpstream(t *testing.T, self string) *trustUpstream {
	u := &trustUpstream{t: t, keys: map[string]*auth.RelayInfo{}, self: self}
	u.srv = httptest.NewServer(http.HandlerFunc(u.serve))
	t.Cleanup(u.srv.Close)
	return u
}

func (u *trustUpstream) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	id := r.Header.Get(auth.HeaderRelayID)
	u.mu.Lock()
	u.reqs = append(u.reqs, trustRequest{Path: r.URL.Path, RelayID: id, Sig: r.Header.Get(auth.HeaderRelaySignature), Body: body})
	keysFail, regFail := u.keysFail, u.regFail
	u.mu.Unlock()
	reply := func(status int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(v)
	}
	switch r.URL.Path {
	case "/api/0/relays/register/challenge/":
		if id != u.self && regFail != 0 {
			reply(regFail, map[string]string{"detail": "upstream says no"})
			return
		}
		reply(200, map[string]string{"relay_id": id, "token": "upstream-token-" + id})
	case "/api/0/relays/register/response/":
		var resp auth.RegisterResponse
		if err := json.Unmarshal(body, &resp); err != nil || resp.Token != "upstream-token-"+id {
			reply(401, map[string]string{"detail": "bad token"})
			return
		}
		reply(200, map[string]string{"relay_id": id})
	case "/api/0/relays/publickeys/":
		if keysFail != 0 {
			reply(keysFail, map[string]string{"detail": "scripted failure"})
			return
		}
		var req auth.PublicKeysRequest
		_ = json.Unmarshal(body, &req)
		keys, relays := map[string]*string{}, map[string]any{}
		u.mu.Lock()
		for _, rid := range req.RelayIDs {
			keys[rid], relays[rid] = nil, nil
			if info := u.keys[rid]; info != nil {
				pk := auth.FormatPublicKey(info.PublicKey)
				keys[rid], relays[rid] = &pk, map[string]any{"publicKey": pk, "internal": false}
			}
		}
		u.mu.Unlock()
		reply(200, map[string]any{"public_keys": keys, "relays": relays})
	case "/api/0/relays/projectconfigs/":
		var req struct {
			PublicKeys []string `json:"publicKeys"`
		}
		_ = json.Unmarshal(body, &req)
		configs := map[string]json.RawMessage{}
		for _, k := range req.PublicKeys {
			configs[k] = json.RawMessage(fakeSentryProjectState(42, k, "r1", nil))
		}
		reply(200, map[string]any{"configs": configs})
	default:
		reply(200, map[string]string{})
	}
}

func (u *trustUpstream) requests(path string) []trustRequest {
	u.mu.Lock()
	defer u.mu.Unlock()
	var out []trustRequest
	for _, r := range u.reqs {
		if r.Path == path {
			out = append(out, r)
		}
	}
	return out
}

// A relay Baton has no static trust for registers through Baton with the
// upstream: its signed registration steps reach the upstream as it signed
// them, and the upstream's answer comes back as is. Baton then asks the
// upstream for the relay's key (signed by Baton, one batched request, then
// cached), verifies its projectconfigs (v2 and v3), publickeys and envelope
// signatures against it, and answers publickeys in Relay's shape; malformed
// bodies get 400, unknown relays 401, a failing key lookup 503.
func TestTrustThroughUpstream(t *testing.T) {
	settleDialer(t)
	batonCreds, err := auth.Generate()
	if err != nil {
		t.Fatal(err)
	}
	credPath := filepath.Join(t.TempDir(), "credentials.json")
	if err := batonCreds.Save(credPath); err != nil {
		t.Fatal(err)
	}
	up := newTrustUpstream(t, batonCreds.ID)
	n := startNode(t, managedYAML(up.srv.URL, "  credentials: "+credPath+"\n"))
	down := newFakeSentryClient(t, n.url) // the downstream relay

	// Refused by the upstream: the refusal comes back as is.
	up.mu.Lock()
	up.regFail = 403
	up.mu.Unlock()
	rr, _ := auth.NewRegisterRequest(down.creds, "25.1.0")
	body, sig, _ := down.creds.Pack(rr, time.Now())
	if st, b := down.post("/api/0/relays/register/challenge/", body, time.Time{}, map[string]string{auth.HeaderRelaySignature: sig}); st != 403 || !strings.Contains(string(b), "upstream says no") {
		t.Fatalf("refused challenge: %d %s, want the upstream's 403", st, b)
	}
	up.mu.Lock()
	up.regFail = 0
	up.mu.Unlock()

	// Before it registers, the relay is unknown: its API requests are 401.
	cfgBody := map[string]any{"publicKeys": []string{managedKey}}
	if st, b := down.postJSON("/api/0/relays/projectconfigs/?version=3", cfgBody, time.Now()); st != 401 {
		t.Fatalf("unknown relay: %d %s, want 401", st, b)
	}
	down.register()
	for _, path := range []string{"/api/0/relays/register/challenge/", "/api/0/relays/register/response/"} {
		var mine []trustRequest
		for _, r := range up.requests(path) {
			if r.RelayID == down.creds.ID {
				mine = append(mine, r)
			}
		}
		if len(mine) == 0 {
			t.Fatalf("%s of the downstream relay never reached the upstream", path)
		}
		last := mine[len(mine)-1]
		if err := auth.VerifySignature(down.creds.PublicKey, last.Body, last.Sig, time.Now(), time.Minute, time.Minute); err != nil {
			t.Fatalf("%s reached the upstream without the downstream's own signature: %v", path, err)
		}
	}
	// The upstream vouches for it now.
	up.mu.Lock()
	up.keys[down.creds.ID] = &auth.RelayInfo{PublicKey: down.creds.PublicKey}
	up.mu.Unlock()
	lookups := len(up.requests("/api/0/relays/publickeys/"))

	for _, v := range []string{"2", "3", "3"} {
		st, b := down.postJSON("/api/0/relays/projectconfigs/?version="+v, cfgBody, time.Now())
		if st != 200 {
			t.Fatalf("projectconfigs v%s of a relay the upstream knows: %d %s", v, st, b)
		}
	}
	keyReqs := up.requests("/api/0/relays/publickeys/")[lookups:]
	if len(keyReqs) != 1 {
		t.Fatalf("%d publickeys requests for 3 config requests, want 1 (cached)", len(keyReqs))
	}
	if keyReqs[0].RelayID != batonCreds.ID || auth.VerifySignature(batonCreds.PublicKey, keyReqs[0].Body, keyReqs[0].Sig, time.Now(), time.Minute, time.Minute) != nil {
		t.Fatalf("publickeys request not signed by Baton: relay id %s", keyReqs[0].RelayID)
	}
	if !strings.Contains(string(keyReqs[0].Body), down.creds.ID) {
		t.Fatalf("publickeys request %s does not name the relay", keyReqs[0].Body)
	}

	// publickeys: Relay's shape, nothing else.
	stranger, _ := auth.Generate()
	st, b := down.postJSON("/api/0/relays/publickeys/", map[string]any{"relay_ids": []string{down.creds.ID, stranger.ID}}, time.Now())
	if st != 200 {
		t.Fatalf("publickeys: %d %s", st, b)
	}
	var shape map[string]map[string]*struct {
		PublicKey string `json:"publicKey"`
		Internal  bool   `json:"internal"`
	}
	if err := json.Unmarshal(b, &shape); err != nil || len(shape) != 1 {
		t.Fatalf("publickeys answer %s: want exactly {\"relays\": …}", b)
	}
	if r := shape["relays"][down.creds.ID]; r == nil || r.PublicKey != auth.FormatPublicKey(down.creds.PublicKey) {
		t.Fatalf("publickeys answer %s: the relay's own key missing", b)
	}
	if r, ok := shape["relays"][stranger.ID]; !ok || r != nil {
		t.Fatalf("publickeys answer %s: want null for an unknown relay", b)
	}
	for _, bad := range []string{`{"relay_ids": ["not-a-relay-id"]}`, `{"relay_ids": 5}`, `{}`, `not json`} {
		if st, b := down.post("/api/0/relays/publickeys/", []byte(bad), time.Now(), nil); st != 400 {
			t.Errorf("publickeys %s: %d %s, want 400", bad, st, b)
		}
	}

	// Envelopes: a known relay's signature is checked.
	env := envelopeFor(42, managedKey, "event")
	if st, b, _ := postEnvelope(t, n, 42, managedKey, env, map[string]string{
		auth.HeaderRelayID: down.creds.ID, auth.HeaderRelaySignature: stranger.Sign(nil, time.Now()),
	}); st != 401 {
		t.Fatalf("envelope with a forged signature of a known relay: %d %s, want 401", st, b)
	}
	if st, b, _ := postEnvelope(t, n, 42, managedKey, env, map[string]string{
		auth.HeaderRelayID: down.creds.ID, auth.HeaderRelaySignature: down.creds.Sign(nil, time.Now()),
	}); st != 200 {
		t.Fatalf("envelope of a known relay: %d %s", st, b)
	}

	// An unknown relay is 401; when the upstream cannot be asked, 503.
	other := newFakeSentryClient(t, n.url)
	if st, b := other.postJSON("/api/0/relays/projectconfigs/?version=3", cfgBody, time.Now()); st != 401 {
		t.Fatalf("relay the upstream does not know: %d %s, want 401", st, b)
	}
	up.mu.Lock()
	up.keysFail = 500
	up.mu.Unlock()
	third := newFakeSentryClient(t, n.url)
	if st, b := third.postJSON("/api/0/relays/projectconfigs/?version=3", cfgBody, time.Now()); st != 503 {
		t.Fatalf("key lookup failing: %d %s, want 503", st, b)
	}
	// The relay already known keeps being served.
	if st, b := down.postJSON("/api/0/relays/projectconfigs/?version=3", cfgBody, time.Now()); st != 200 {
		t.Fatalf("known relay while the upstream fails: %d %s", st, b)
	}
	waitBalanced(t, n, 5*time.Second)
}

// Three relays: fake Sentry ← Baton A ← Baton B. A has no static_relays; B
// registers with Sentry through A, A learns B's key from Sentry, and B's
// config requests and events flow through A.
func TestTrustChainLearnsFromUpstream(t *testing.T) {
	settleDialer(t)
	s := newFakeSentry(t)
	s.setProject(managedKey, fakeSentryProjectState(42, managedKey, "r1", nil))

	dirs := t.TempDir()
	creds := map[string]*auth.Credentials{}
	for _, name := range []string{"a", "b"} {
		c, err := auth.Generate()
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Save(filepath.Join(dirs, name+".json")); err != nil {
			t.Fatal(err)
		}
		creds[name] = c
	}
	a := startNode(t, managedYAML(s.url(), "  credentials: "+filepath.Join(dirs, "a.json")+"\n"))
	b := startNode(t, managedYAML(a.url, "  credentials: "+filepath.Join(dirs, "b.json")+"\n"))

	for i := range 3 {
		marker := fmt.Sprintf("chain-%d", i)
		env := fmt.Appendf(nil, "{\"dsn\":\"http://%s@h/42\"}\n{\"type\":\"event\"}\n{\"message\":%q}\n", managedKey, marker)
		if st, body, _ := postEnvelope(t, b, 42, managedKey, env, nil); st != 200 {
			t.Fatalf("B: %d %s", st, body)
		}
	}
	fakeWaitFor(t, 20*time.Second, func() bool {
		for i := range 3 {
			if deliveredTo(s, 42, fmt.Sprintf("chain-%d", i)) != 1 {
				return false
			}
		}
		return true
	}, func() string {
		return fmt.Sprintf("not delivered through the chain; A %+v B %+v", a.r.Stats(), b.r.Stats())
	})

	// Sentry registered both relays, B's registration forwarded by A.
	reg := s.registered()
	if reg[creds["a"].ID] == "" || reg[creds["b"].ID] != auth.FormatPublicKey(creds["b"].PublicKey) {
		t.Fatalf("Sentry registered %v; want A %s and B %s", reg, creds["a"].ID, creds["b"].ID)
	}
	// A asked Sentry for B's key, and Sentry's config requests came from A
	// only (B's went to A, which answered them).
	var asked bool
	for _, r := range s.requests() {
		if strings.HasPrefix(r.RequestURI, "/api/0/relays/publickeys/") && r.RelayID == creds["a"].ID && r.Status == 200 {
			asked = true
		}
		if strings.HasPrefix(r.RequestURI, "/api/0/relays/projectconfigs/") && r.RelayID != creds["a"].ID {
			t.Errorf("Sentry got a projectconfigs request from %s, not A", r.RelayID)
		}
	}
	if !asked {
		t.Fatal("A never looked B's key up at Sentry")
	}
	if st := a.r.Stats(); st.Rejected["relay_auth"] != 0 {
		t.Fatalf("A refused B: %+v", st.Rejected)
	}
	// B's own config requests to A succeed (it got the config it used).
	body, _ := json.Marshal(map[string]any{"publicKeys": []string{managedKey}})
	st, resp, _ := post(t, a.url+"/api/0/relays/projectconfigs/?version=3", body, map[string]string{
		auth.HeaderRelayID: creds["b"].ID, auth.HeaderRelaySignature: creds["b"].Sign(body, time.Now()), "Content-Type": "application/json",
	})
	if st != 200 || !strings.Contains(resp, `"projectId":42`) {
		t.Fatalf("B's projectconfigs at A: %d %s", st, resp)
	}
	if envs := s.envelopes(); !slices.ContainsFunc(envs, func(e fakeSentryEnvelope) bool { return e.ProjectID == "42" }) {
		t.Fatal("no envelope reached Sentry")
	}
	waitBalanced(t, b, 5*time.Second)
	waitBalanced(t, a, 5*time.Second)
}
