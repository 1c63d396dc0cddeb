package integration

// fakeSentry: an in-process upstream Sentry that does for relays what the
// real one does (docs/relay-protocol.md §3.3–§3.5, §4.1–§4.3): relay-auth
// registration with a stateless HMAC token, signed project-config fetches
// (protocol version 3: configs / pending / unchanged / global), relay public
// key lookups and envelope intake. Tests script it with the set* controls and
// inspect what it saw; every control is safe while Baton is polling it.

import (
	"bytes"
	"compress/gzip"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/baton-relay/baton/relay/auth"
)

// Limits the fake applies, as Sentry does.
const (
	fakeSentrySigMaxAge    = 300 * time.Second // signature timestamp age
	fakeSentrySigMaxFuture = 60 * time.Second  // signature timestamp ahead of now
	fakeSentryTokenMaxAge  = 60 * time.Second  // challenge token age at register/response
)

// fakeSentryGlobalConfigPath is the global config the fake serves: the one
// Relay's own test mock serves.
var fakeSentryGlobalConfigPath = filepath.Join(fixtures, "global_config.json")

// fakeSentryB64 is Relay's BASE64URL_NOPAD.
var fakeSentryB64 = base64.RawURLEncoding

// fakeSentryConfigRequest is one POST /api/0/relays/projectconfigs/ the fake
// received, rejected ones included (their body is still parsed when possible).
type fakeSentryConfigRequest struct {
	At       time.Time
	RelayID  string // X-Sentry-Relay-Id as sent ("" when absent)
	SignedOK bool   // signature verified against the registered key of RelayID
	Status   int    // what the fake answered
	Reason   string // why it was rejected, if it was
	Version  string // the ?version= query value
	Header   http.Header
	Body     []byte // with Content-Encoding undone

	Keys       []string
	Revisions  []*string // parallel to Keys as sent; nil entries are JSON null
	Global     bool
	FullConfig bool
	NoCache    bool
	Parts      json.RawMessage // raw "parts" field (nil when absent); ignored like Sentry does

	// What was answered (a 200 only).
	Served    []string // keys answered with a project state
	Nulls     []string // keys answered null (unknown)
	Pending   []string
	Unchanged []string
}

// fakeSentryEnvelope is one POST /api/{pid}/envelope/ the fake received.
type fakeSentryEnvelope struct {
	At         time.Time
	ProjectID  string
	RequestURI string
	Header     http.Header
	Wire       []byte // body as sent
	Body       []byte // Content-Encoding undone (fakeDecode)
	Status     int
	// Relay signature, when the request carried X-Sentry-Relay-Signature:
	Signed  bool   // the header was present
	SigOK   bool   // it verified against the registered key of X-Sentry-Relay-Id
	SigOver string // what it verified over: "body" (decoded), "wire" or "empty"
	SigErr  string // why it did not verify
}

// fakeSentryRejection is one 401 the fake answered.
type fakeSentryRejection struct {
	At      time.Time
	Path    string
	RelayID string
	Reason  string
}

// fakeSentryRequest is the log line of any request the fake received.
type fakeSentryRequest struct {
	At         time.Time
	Method     string
	RequestURI string
	RelayID    string
	Status     int
}

type fakeSentryProject struct {
	raw json.RawMessage
	rev string
}

// fakeSentry is a scriptable upstream Sentry on 127.0.0.1.
type fakeSentry struct {
	t      *testing.T
	srv    *httptest.Server
	secret []byte // HMAC key of challenge tokens

	mu           sync.Mutex
	down         bool
	envStatus    int
	regStatus    int  // answer to registration challenges; 0 serves them
	regStop      bool // the regStatus answer carries "relay": "stop"
	global       json.RawMessage
	projects     map[string]fakeSentryProject
	pending      map[string]int
	relays       map[string]string // relay id -> public key
	configAnswer func(r fakeSentryConfigRequest) *fakeAnswer
	cfgReqs      []fakeSentryConfigRequest
	downAsked    map[string]int // key → projectconfigs requests naming it answered 503 (down)
	envs         []fakeSentryEnvelope
	outs         []fakeSentryOutcome
	rejects      []fakeSentryRejection
	reqs         []fakeSentryRequest
}

// newFakeSentry starts a fake Sentry, closed when the test ends.
func newFakeSentry(t *testing.T) *fakeSentry {
	t.Helper()
	s := &fakeSentry{
		t:         t,
		secret:    make([]byte, 32),
		global:    json.RawMessage(`{}`),
		projects:  map[string]fakeSentryProject{},
		pending:   map[string]int{},
		relays:    map[string]string{},
		downAsked: map[string]int{},
	}
	rand.Read(s.secret)
	b, err := os.ReadFile(fakeSentryGlobalConfigPath)
	if err != nil {
		t.Fatalf("fake sentry: %v", err)
	}
	if !json.Valid(b) {
		t.Fatalf("fake sentry: %s is not valid JSON", fakeSentryGlobalConfigPath)
	}
	s.global = json.RawMessage(b)
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/0/relays/register/challenge/{$}", s.relaysEndpoint(s.serveChallenge))
	mux.HandleFunc("POST /api/0/relays/register/response/{$}", s.relaysEndpoint(s.serveRegisterResponse))
	mux.HandleFunc("POST /api/0/relays/projectconfigs/{$}", s.relaysEndpoint(s.serveProjectConfigs))
	mux.HandleFunc("POST /api/0/relays/publickeys/{$}", s.relaysEndpoint(s.servePublicKeys))
	mux.HandleFunc("POST /api/0/relays/outcomes/{$}", s.relaysEndpoint(s.serveOutcomes))
	mux.HandleFunc("/api/0/relays/", s.relaysEndpoint(func(w http.ResponseWriter, r *http.Request, _ []byte) {
		fakeSentryJSON(w, http.StatusNotFound, map[string]string{"detail": "not found"})
	}))
	mux.HandleFunc("POST /api/{pid}/envelope/{$}", s.serveEnvelope)
	s.srv = httptest.NewServer(s.logged(mux))
	t.Cleanup(s.srv.Close)
	return s
}

// url is the base URL to configure as Baton's upstream.
func (s *fakeSentry) url() string { return s.srv.URL }

// ---- controls ----

// setProject serves state (raw project-state JSON, e.g. from
// fakeSentryProjectState) for key; its "rev" field drives "unchanged".
// Invalid JSON fails the test (use setConfigAnswer to serve broken bodies).
func (s *fakeSentry) setProject(key, state string) {
	if !json.Valid([]byte(state)) {
		s.t.Errorf("fake sentry: setProject(%q): not valid JSON: %.200s", key, state)
		return
	}
	var head struct {
		Rev any `json:"rev"`
	}
	_ = json.Unmarshal([]byte(state), &head)
	rev, _ := head.Rev.(string)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.projects[key] = fakeSentryProject{raw: json.RawMessage(state), rev: rev}
}

// removeProject makes key unknown again (answered null).
func (s *fakeSentry) removeProject(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.projects, key)
}

// setPending lists key as pending in the next times project-config answers
// that ask for it (times ≤ 0 clears); after that it is answered normally.
func (s *fakeSentry) setPending(key string, times int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if times <= 0 {
		delete(s.pending, key)
		return
	}
	s.pending[key] = times
}

// setDown makes every /api/0/relays/ endpoint answer 503 (envelopes are not
// affected: see setEnvelopeStatus).
func (s *fakeSentry) setDown(down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = down
}

// askedWhileDown returns how many project-config requests naming key were
// answered 503 because the fake was down.
func (s *fakeSentry) askedWhileDown(key string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.downAsked[key]
}

// setEnvelopeStatus makes envelope posts answer status (0 restores 200).
func (s *fakeSentry) setEnvelopeStatus(status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.envStatus = status
}

// setRegisterStatus makes registration challenges answer status (0
// restores serving them).
func (s *fakeSentry) setRegisterStatus(status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.regStatus, s.regStop = status, false
}

// denyRegistration refuses registration challenges for good, as Sentry
// refuses a relay it will not admit: 403 with "relay": "stop".
func (s *fakeSentry) denyRegistration() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.regStatus, s.regStop = http.StatusForbidden, true
}

// setConfigAnswer overrides project-config answers to authenticated,
// well-formed requests: fn sees the parsed request and returns the reply, or
// nil for the normal answer (pending counts are consumed only by normal
// answers). nil fn removes the override.
func (s *fakeSentry) setConfigAnswer(fn func(r fakeSentryConfigRequest) *fakeAnswer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.configAnswer = fn
}

// unregister forgets a relay, as if Sentry lost it: its signed requests get
// 401 until it registers again.
func (s *fakeSentry) unregister(relayID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.relays, relayID)
}

// registered returns the registered relays: id → public key.
func (s *fakeSentry) registered() map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]string, len(s.relays))
	for k, v := range s.relays {
		out[k] = v
	}
	return out
}

// configRequests returns the project-config requests so far, in order.
func (s *fakeSentry) configRequests() []fakeSentryConfigRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.cfgReqs)
}

// envelopes returns the envelopes received so far, in order.
func (s *fakeSentry) envelopes() []fakeSentryEnvelope {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.envs)
}

// rejected returns every 401 answered so far with its reason; len is the count.
func (s *fakeSentry) rejected() []fakeSentryRejection {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.rejects)
}

// requests returns a log of every request received, in order.
func (s *fakeSentry) requests() []fakeSentryRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.reqs)
}

// ---- project state ----

// fakeSentryProjectState builds a realistic project state (docs/relay-protocol.md
// §4.3) for one DSN key; mutate, when not nil, may change anything (the
// "config" member is a map[string]any) before it is encoded.
func fakeSentryProjectState(projectID uint64, key, rev string, mutate func(m map[string]any)) string {
	m := map[string]any{
		"projectId":      projectID,
		"lastChange":     "2026-01-01T00:00:00Z",
		"rev":            rev,
		"disabled":       false,
		"slug":           fmt.Sprintf("project-%d", projectID),
		"organizationId": 1,
		"publicKeys": []any{
			map[string]any{"publicKey": key, "numericId": projectID*100 + 1, "isEnabled": true},
		},
		"config": map[string]any{
			"allowedDomains":       []any{"*"},
			"trustedRelays":        []any{},
			"trustedRelaySettings": map[string]any{"verifySignature": "disabled"},
			"piiConfig":            nil,
			"datascrubbingSettings": map[string]any{
				"scrubData": true, "scrubDefaults": true,
				"sensitiveFields": []any{}, "excludeFields": []any{},
			},
			"groupingConfig":            map[string]any{"id": "newstyle:2023-01-11", "enhancements": ""},
			"filterSettings":            map[string]any{},
			"eventRetention":            90,
			"downsampledEventRetention": 90,
			"quotas":                    []any{},
			"sampling":                  map[string]any{"version": 2, "rules": []any{}},
			"measurements":              nil,
			"breakdownsV2":              nil,
			"performanceScore":          nil,
			"sessionMetrics":            map[string]any{"version": 1},
			"metricExtraction":          nil,
			"features":                  []any{},
			"txNameRules":               []any{},
			"spanDescriptionRules":      nil,
		},
	}
	if mutate != nil {
		mutate(m)
	}
	b, err := json.Marshal(m)
	if err != nil {
		panic(fmt.Sprintf("fakeSentryProjectState: %v", err))
	}
	return string(b)
}

// ---- serving ----

// fakeSentryOutcome is one raw outcome a relay sent to
// /api/0/relays/outcomes/, as decoded JSON, and the relay that sent it.
type fakeSentryOutcome struct {
	RelayID string
	Outcome map[string]any
}

// serveOutcomes takes the outcomes of a registered relay whose signature
// verifies and answers 202 {}, as Sentry does.
func (s *fakeSentry) serveOutcomes(w http.ResponseWriter, r *http.Request, body []byte) {
	id, err := s.verifyKnown(r, body)
	if err != nil {
		s.reject(w, r, err.Error())
		return
	}
	var req struct {
		Outcomes []map[string]any `json:"outcomes"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		fakeSentryJSON(w, http.StatusBadRequest, map[string]string{"detail": err.Error()})
		return
	}
	s.mu.Lock()
	for _, o := range req.Outcomes {
		s.outs = append(s.outs, fakeSentryOutcome{RelayID: id, Outcome: o})
	}
	s.mu.Unlock()
	fakeSentryJSON(w, http.StatusAccepted, map[string]any{})
}

// outcomes returns the outcomes received so far.
func (s *fakeSentry) outcomes() []fakeSentryOutcome {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.outs)
}

// fakeSentryStatusWriter remembers the status a handler wrote.
type fakeSentryStatusWriter struct {
	http.ResponseWriter
	status int
}

func (w *fakeSentryStatusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *fakeSentryStatusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (s *fakeSentry) logged(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &fakeSentryStatusWriter{ResponseWriter: w}
		h.ServeHTTP(sw, r)
		if sw.status == 0 {
			sw.status = http.StatusOK
		}
		s.mu.Lock()
		s.reqs = append(s.reqs, fakeSentryRequest{At: time.Now(), Method: r.Method, RequestURI: r.RequestURI,
			RelayID: r.Header.Get(auth.HeaderRelayID), Status: sw.status})
		s.mu.Unlock()
	})
}

func fakeSentryJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"detail":"fake sentry: encode reply"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(b)
}

// reject answers 401 and records why.
func (s *fakeSentry) reject(w http.ResponseWriter, r *http.Request, reason string) {
	s.mu.Lock()
	s.rejects = append(s.rejects, fakeSentryRejection{At: time.Now(), Path: r.URL.Path,
		RelayID: r.Header.Get(auth.HeaderRelayID), Reason: reason})
	s.mu.Unlock()
	fakeSentryJSON(w, http.StatusUnauthorized, map[string]string{"detail": reason})
}

// relaysEndpoint wraps an /api/0/relays/ handler: 503 while down, body read
// and Content-Encoding undone.
func (s *fakeSentry) relaysEndpoint(h func(w http.ResponseWriter, r *http.Request, body []byte)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		down := s.down
		s.mu.Unlock()
		wire, err := io.ReadAll(r.Body)
		if err != nil {
			fakeSentryJSON(w, http.StatusBadRequest, map[string]string{"detail": err.Error()})
			return
		}
		body, err := fakeDecode(r.Header.Get("Content-Encoding"), wire)
		if down {
			// Counted before the answer, so a test that sees the count knows
			// the 503 is on its way.
			var req struct {
				PublicKeys []string `json:"publicKeys"`
			}
			if err == nil && strings.HasSuffix(r.URL.Path, "/projectconfigs/") && json.Unmarshal(body, &req) == nil {
				s.mu.Lock()
				for _, k := range req.PublicKeys {
					s.downAsked[k]++
				}
				s.mu.Unlock()
			}
			fakeSentryJSON(w, http.StatusServiceUnavailable, map[string]string{"detail": "fake sentry is down"})
			return
		}
		if err != nil {
			fakeSentryJSON(w, http.StatusBadRequest, map[string]string{"detail": "undecodable body: " + err.Error()})
			return
		}
		h(w, r, body)
	}
}

// verifyKnown checks that a request comes from a registered relay and is
// signed by it; it returns the relay id or why not.
func (s *fakeSentry) verifyKnown(r *http.Request, body []byte) (string, error) {
	hid := r.Header.Get(auth.HeaderRelayID)
	if hid == "" {
		return "", errors.New("missing " + auth.HeaderRelayID)
	}
	id, err := auth.ParseRelayID(hid)
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	pks, ok := s.relays[id]
	s.mu.Unlock()
	if !ok {
		return id, fmt.Errorf("relay %s is not registered", id)
	}
	return id, fakeSentryVerify(pks, r, body)
}

func fakeSentryVerify(pks string, r *http.Request, body []byte) error {
	sig := r.Header.Get(auth.HeaderRelaySignature)
	if sig == "" {
		return errors.New("missing " + auth.HeaderRelaySignature)
	}
	pk, err := auth.ParsePublicKey(pks)
	if err != nil {
		return err
	}
	return auth.VerifySignature(pk, body, sig, time.Now(), fakeSentrySigMaxAge, fakeSentrySigMaxFuture)
}

// fakeSentryTokenState is the state inside a challenge token.
type fakeSentryTokenState struct {
	Timestamp int64  `json:"timestamp"`
	RelayID   string `json:"relay_id"`
	PublicKey string `json:"public_key"`
	Rand      string `json:"rand"`
}

func (s *fakeSentry) tokenMAC(state string) []byte {
	m := hmac.New(sha512.New, s.secret)
	m.Write([]byte(state))
	return m.Sum(nil)
}

func (s *fakeSentry) serveChallenge(w http.ResponseWriter, r *http.Request, body []byte) {
	s.mu.Lock()
	status, stop := s.regStatus, s.regStop
	s.mu.Unlock()
	if stop {
		fakeSentryJSON(w, status, map[string]string{"detail": "relay is not allowed to register", "relay": "stop"})
		return
	}
	if status != 0 {
		fakeSentryJSON(w, status, map[string]string{"detail": "fake sentry refuses registration"})
		return
	}
	var req auth.RegisterRequest
	if err := json.Unmarshal(body, &req); err != nil {
		fakeSentryJSON(w, http.StatusBadRequest, map[string]string{"detail": err.Error()})
		return
	}
	// The relay is not known yet: the request is signed with the key it
	// brings along.
	sig := r.Header.Get(auth.HeaderRelaySignature)
	if sig == "" {
		s.reject(w, r, "missing "+auth.HeaderRelaySignature)
		return
	}
	if err := auth.VerifySignature(req.PublicKey, body, sig, time.Now(), fakeSentrySigMaxAge, fakeSentrySigMaxFuture); err != nil {
		s.reject(w, r, "challenge: "+err.Error())
		return
	}
	if hid, err := auth.ParseRelayID(r.Header.Get(auth.HeaderRelayID)); err != nil || hid != req.RelayID {
		fakeSentryJSON(w, http.StatusBadRequest, map[string]string{"detail": "relay_id in payload did not match header"})
		return
	}
	pks := auth.FormatPublicKey(req.PublicKey)
	s.mu.Lock()
	known, ok := s.relays[req.RelayID]
	s.mu.Unlock()
	if ok && known != pks {
		fakeSentryJSON(w, http.StatusBadRequest, map[string]string{"detail": "Attempted to register agent with a different public key"})
		return
	}
	rnd := make([]byte, 32)
	rand.Read(rnd)
	st, _ := json.Marshal(fakeSentryTokenState{Timestamp: time.Now().Unix(), RelayID: req.RelayID,
		PublicKey: pks, Rand: fakeSentryB64.EncodeToString(rnd)})
	state := fakeSentryB64.EncodeToString(st)
	token := state + ":" + fakeSentryB64.EncodeToString(s.tokenMAC(state))
	fakeSentryJSON(w, http.StatusOK, map[string]string{"relay_id": req.RelayID, "token": token})
}

func (s *fakeSentry) serveRegisterResponse(w http.ResponseWriter, r *http.Request, body []byte) {
	var resp auth.RegisterResponse
	if err := json.Unmarshal(body, &resp); err != nil {
		fakeSentryJSON(w, http.StatusBadRequest, map[string]string{"detail": err.Error()})
		return
	}
	state, mac, ok := strings.Cut(resp.Token, ":")
	macb, err := fakeSentryB64.DecodeString(mac)
	if !ok || err != nil || !hmac.Equal(macb, s.tokenMAC(state)) {
		s.reject(w, r, "register response: invalid token signature")
		return
	}
	stb, err := fakeSentryB64.DecodeString(state)
	var st fakeSentryTokenState
	if err == nil {
		err = json.Unmarshal(stb, &st)
	}
	if err != nil {
		s.reject(w, r, "register response: bad token state: "+err.Error())
		return
	}
	if age := time.Since(time.Unix(st.Timestamp, 0)); age > fakeSentryTokenMaxAge+time.Second {
		s.reject(w, r, fmt.Sprintf("register response: token expired (%s old)", age.Round(time.Second)))
		return
	}
	if st.RelayID != resp.RelayID {
		s.reject(w, r, "register response: relay_id does not match the token")
		return
	}
	if hid, err := auth.ParseRelayID(r.Header.Get(auth.HeaderRelayID)); err != nil || hid != resp.RelayID {
		s.reject(w, r, "register response: relay_id in payload did not match header")
		return
	}
	if err := fakeSentryVerify(st.PublicKey, r, body); err != nil {
		s.reject(w, r, "register response: "+err.Error())
		return
	}
	s.mu.Lock()
	s.relays[st.RelayID] = st.PublicKey
	s.mu.Unlock()
	fakeSentryJSON(w, http.StatusOK, map[string]string{"relay_id": st.RelayID})
}

func (s *fakeSentry) serveProjectConfigs(w http.ResponseWriter, r *http.Request, body []byte) {
	rec := fakeSentryConfigRequest{At: time.Now(), RelayID: r.Header.Get(auth.HeaderRelayID),
		Version: r.URL.Query().Get("version"), Header: r.Header.Clone(), Body: body}
	var req struct {
		PublicKeys []string        `json:"publicKeys"`
		Revisions  []*string       `json:"revisions"`
		Global     bool            `json:"global"`
		FullConfig bool            `json:"fullConfig"`
		NoCache    bool            `json:"noCache"`
		Parts      json.RawMessage `json:"parts"`
	}
	perr := json.Unmarshal(body, &req)
	if perr == nil {
		rec.Keys, rec.Revisions, rec.Global = req.PublicKeys, req.Revisions, req.Global
		rec.FullConfig, rec.NoCache, rec.Parts = req.FullConfig, req.NoCache, req.Parts
	}
	record := func(status int, reason string) {
		rec.Status, rec.Reason = status, reason
		s.mu.Lock()
		s.cfgReqs = append(s.cfgReqs, rec)
		s.mu.Unlock()
	}
	if _, err := s.verifyKnown(r, body); err != nil {
		record(http.StatusUnauthorized, err.Error())
		s.reject(w, r, "projectconfigs: "+err.Error())
		return
	}
	rec.SignedOK = true
	if perr != nil {
		record(http.StatusBadRequest, perr.Error())
		fakeSentryJSON(w, http.StatusBadRequest, map[string]string{"detail": perr.Error()})
		return
	}
	if rec.Version != "2" && rec.Version != "3" {
		record(http.StatusBadRequest, "unsupported version")
		fakeSentryJSON(w, http.StatusBadRequest, map[string]string{"detail": "unsupported version " + rec.Version})
		return
	}

	s.mu.Lock()
	override := s.configAnswer
	s.mu.Unlock()
	if override != nil {
		if ans := override(rec); ans != nil {
			record(ans.Status, "")
			for k, v := range ans.Header {
				w.Header().Set(k, v)
			}
			w.WriteHeader(ans.Status)
			io.WriteString(w, ans.Body)
			return
		}
	}

	type reply struct {
		Configs      map[string]json.RawMessage `json:"configs"`
		Pending      []string                   `json:"pending"`
		Unchanged    []string                   `json:"unchanged"`
		Global       json.RawMessage            `json:"global,omitempty"`
		GlobalStatus string                     `json:"globalStatus,omitempty"`
	}
	out := reply{Configs: map[string]json.RawMessage{}, Pending: []string{}, Unchanged: []string{}}
	seen := map[string]bool{}
	s.mu.Lock()
	for i, key := range req.PublicKeys {
		if seen[key] {
			continue
		}
		seen[key] = true
		if n := s.pending[key]; n > 0 {
			if n == 1 {
				delete(s.pending, key)
			} else {
				s.pending[key] = n - 1
			}
			out.Pending = append(out.Pending, key)
			continue
		}
		p, ok := s.projects[key]
		switch {
		case !ok:
			out.Configs[key] = json.RawMessage("null")
			rec.Nulls = append(rec.Nulls, key)
		case i < len(req.Revisions) && req.Revisions[i] != nil && p.rev != "" && *req.Revisions[i] == p.rev:
			out.Unchanged = append(out.Unchanged, key)
		default:
			out.Configs[key] = p.raw
			rec.Served = append(rec.Served, key)
		}
	}
	if req.Global {
		out.Global, out.GlobalStatus = s.global, "ready"
	}
	s.mu.Unlock()
	rec.Pending, rec.Unchanged = out.Pending, out.Unchanged
	record(http.StatusOK, "")
	fakeSentryJSON(w, http.StatusOK, out)
}

func (s *fakeSentry) servePublicKeys(w http.ResponseWriter, r *http.Request, body []byte) {
	if _, err := s.verifyKnown(r, body); err != nil {
		s.reject(w, r, "publickeys: "+err.Error())
		return
	}
	var req struct {
		RelayIDs []string `json:"relay_ids"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		fakeSentryJSON(w, http.StatusBadRequest, map[string]string{"detail": err.Error()})
		return
	}
	type info struct {
		PublicKey string `json:"publicKey"`
		Internal  bool   `json:"internal"`
	}
	keys := map[string]*string{}
	relays := map[string]*info{}
	s.mu.Lock()
	for _, raw := range req.RelayIDs {
		keys[raw], relays[raw] = nil, nil
		id, err := auth.ParseRelayID(raw)
		if err != nil {
			continue
		}
		if pk, ok := s.relays[id]; ok {
			keys[raw], relays[raw] = &pk, &info{PublicKey: pk}
		}
	}
	s.mu.Unlock()
	fakeSentryJSON(w, http.StatusOK, map[string]any{"public_keys": keys, "relays": relays})
}

func (s *fakeSentry) serveEnvelope(w http.ResponseWriter, r *http.Request) {
	wire, err := io.ReadAll(r.Body)
	if err != nil {
		fakeSentryJSON(w, http.StatusBadRequest, map[string]string{"detail": err.Error()})
		return
	}
	body, err := fakeDecode(r.Header.Get("Content-Encoding"), wire)
	if err != nil {
		s.t.Errorf("fake sentry: %s: undecodable body: %v", r.RequestURI, err)
		fakeSentryJSON(w, http.StatusBadRequest, map[string]string{"detail": err.Error()})
		return
	}
	env := fakeSentryEnvelope{At: time.Now(), ProjectID: r.PathValue("pid"), RequestURI: r.RequestURI,
		Header: r.Header.Clone(), Wire: wire, Body: body}
	if r.Header.Get(auth.HeaderRelaySignature) != "" {
		env.Signed = true
		s.verifyEnvelope(&env, r)
	}
	s.mu.Lock()
	env.Status = s.envStatus
	if env.Status == 0 {
		env.Status = http.StatusOK
	}
	s.envs = append(s.envs, env)
	s.mu.Unlock()
	if env.Status == http.StatusOK {
		fakeSentryJSON(w, http.StatusOK, map[string]any{})
		return
	}
	fakeSentryJSON(w, env.Status, map[string]string{"detail": "fake sentry: scripted failure"})
}

// verifyEnvelope checks an envelope's relay signature: over the decoded
// body, the wire body, or an empty body (trusted-relay signatures, §3.6).
func (s *fakeSentry) verifyEnvelope(env *fakeSentryEnvelope, r *http.Request) {
	id, err := auth.ParseRelayID(r.Header.Get(auth.HeaderRelayID))
	if err != nil {
		env.SigErr = err.Error()
		return
	}
	s.mu.Lock()
	pks, ok := s.relays[id]
	s.mu.Unlock()
	if !ok {
		env.SigErr = fmt.Sprintf("relay %s is not registered", id)
		return
	}
	for _, c := range []struct {
		over string
		body []byte
	}{{"body", env.Body}, {"wire", env.Wire}, {"empty", nil}} {
		err := fakeSentryVerify(pks, r, c.body)
		if err == nil {
			env.SigOK, env.SigOver, env.SigErr = true, c.over, ""
			return
		}
		if env.SigErr == "" || !errors.Is(err, auth.ErrSignatureInvalid) {
			env.SigErr = err.Error()
		}
	}
}

// ---- a plain relay client for the self-tests ----

type fakeSentryClient struct {
	t     *testing.T
	base  string
	creds *auth.Credentials
	hc    *http.Client
}

func newFakeSentryClient(t *testing.T, base string) *fakeSentryClient {
	t.Helper()
	creds, err := auth.Generate()
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &fakeSentryClient{t: t, base: base, creds: creds, hc: &http.Client{Transport: tr, Timeout: 5 * time.Second}}
}

// post sends body to path, signed at signAt unless it is zero, and returns
// the status and reply.
func (c *fakeSentryClient) post(path string, body []byte, signAt time.Time, hdr map[string]string) (int, []byte) {
	c.t.Helper()
	req, err := http.NewRequest(http.MethodPost, c.base+path, bytes.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(auth.HeaderRelayID, c.creds.ID)
	if !signAt.IsZero() {
		req.Header.Set(auth.HeaderRelaySignature, c.creds.Sign(body, signAt))
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func (c *fakeSentryClient) postJSON(path string, v any, signAt time.Time) (int, []byte) {
	c.t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		c.t.Fatal(err)
	}
	return c.post(path, b, signAt, nil)
}

// register runs the two-step registration and fails the test unless it works.
func (c *fakeSentryClient) register() {
	c.t.Helper()
	rr, err := auth.NewRegisterRequest(c.creds, "25.1.0")
	if err != nil {
		c.t.Fatal(err)
	}
	body, sig, err := c.creds.Pack(rr, time.Now())
	if err != nil {
		c.t.Fatal(err)
	}
	st, reply := c.post("/api/0/relays/register/challenge/", body, time.Time{}, map[string]string{auth.HeaderRelaySignature: sig})
	if st != http.StatusOK {
		c.t.Fatalf("challenge: %d %s", st, reply)
	}
	var ch auth.RegisterChallenge
	if err := json.Unmarshal(reply, &ch); err != nil {
		c.t.Fatalf("challenge reply %s: %v", reply, err)
	}
	resp, err := ch.Response("25.1.0")
	if err != nil {
		c.t.Fatal(err)
	}
	body, sig, err = c.creds.Pack(resp, time.Now())
	if err != nil {
		c.t.Fatal(err)
	}
	st, reply = c.post("/api/0/relays/register/response/", body, time.Time{}, map[string]string{auth.HeaderRelaySignature: sig})
	if st != http.StatusOK {
		c.t.Fatalf("register response: %d %s", st, reply)
	}
	var res auth.RegisterResult
	if err := json.Unmarshal(reply, &res); err != nil || res.RelayID != c.creds.ID {
		c.t.Fatalf("register result %s: %v", reply, err)
	}
}

// fakeSentryReply is a decoded project-config answer.
type fakeSentryReply struct {
	Configs      map[string]json.RawMessage `json:"configs"`
	Pending      []string                   `json:"pending"`
	Unchanged    []string                   `json:"unchanged"`
	Global       json.RawMessage            `json:"global"`
	GlobalStatus string                     `json:"globalStatus"`
}

func (c *fakeSentryClient) fetch(req map[string]any) fakeSentryReply {
	c.t.Helper()
	st, b := c.postJSON("/api/0/relays/projectconfigs/?version=3", req, time.Now())
	if st != http.StatusOK {
		c.t.Fatalf("projectconfigs: %d %s", st, b)
	}
	var out fakeSentryReply
	if err := json.Unmarshal(b, &out); err != nil {
		c.t.Fatalf("projectconfigs reply %s: %v", b, err)
	}
	return out
}

// ---- self-tests ----

func TestFakeSentryRegistration(t *testing.T) {
	s := newFakeSentry(t)
	c := newFakeSentryClient(t, s.url())
	cfg := map[string]any{"publicKeys": []string{testKey}, "global": false}

	// Before registering, even a well-signed request is refused.
	if st, b := c.postJSON("/api/0/relays/projectconfigs/?version=3", cfg, time.Now()); st != http.StatusUnauthorized {
		t.Fatalf("unregistered relay: %d %s", st, b)
	}

	// A challenge signed by another key is refused.
	other, _ := auth.Generate()
	rr, _ := auth.NewRegisterRequest(c.creds, "25.1.0")
	body, _, _ := c.creds.Pack(rr, time.Now())
	if st, b := c.post("/api/0/relays/register/challenge/", body, time.Time{},
		map[string]string{auth.HeaderRelaySignature: other.Sign(body, time.Now())}); st != http.StatusUnauthorized || !strings.Contains(string(b), `"detail"`) {
		t.Fatalf("challenge with a foreign signature: %d %s", st, b)
	}

	// A forged token is refused.
	forged := auth.RegisterResponse{RelayID: c.creds.ID, Token: "e30:AAAA", Version: "25.1.0"}
	if st, b := c.postJSON("/api/0/relays/register/response/", forged, time.Now()); st != http.StatusUnauthorized {
		t.Fatalf("forged token: %d %s", st, b)
	}
	if len(s.registered()) != 0 {
		t.Fatalf("registered after failures: %v", s.registered())
	}

	c.register()
	if got := s.registered(); len(got) != 1 || got[c.creds.ID] != auth.FormatPublicKey(c.creds.PublicKey) {
		t.Fatalf("registered = %v, want %s → %s", got, c.creds.ID, auth.FormatPublicKey(c.creds.PublicKey))
	}

	// Registered: signed requests pass; unsigned and replayed-old ones do not.
	c.fetch(cfg)
	if st, b := c.postJSON("/api/0/relays/projectconfigs/?version=3", cfg, time.Time{}); st != http.StatusUnauthorized {
		t.Fatalf("unsigned: %d %s", st, b)
	}
	if st, b := c.postJSON("/api/0/relays/projectconfigs/?version=3", cfg, time.Now().Add(-10*time.Minute)); st != http.StatusUnauthorized || !strings.Contains(string(b), "expired") {
		t.Fatalf("replayed-old: %d %s", st, b)
	}
	// A signature over a different body does not verify.
	if st, b := c.post("/api/0/relays/projectconfigs/?version=3", []byte(`{"publicKeys":[]}`), time.Time{},
		map[string]string{auth.HeaderRelaySignature: c.creds.Sign([]byte(`{}`), time.Now())}); st != http.StatusUnauthorized {
		t.Fatalf("signature over another body: %d %s", st, b)
	}

	reqs := s.configRequests()
	if len(reqs) != 5 {
		t.Fatalf("config requests = %d, want 5", len(reqs))
	}
	wantOK := []bool{false, true, false, false, false}
	for i, r := range reqs {
		if r.SignedOK != wantOK[i] || r.RelayID != c.creds.ID {
			t.Errorf("request %d: SignedOK %v RelayID %q (%s), want %v %q", i, r.SignedOK, r.RelayID, r.Reason, wantOK[i], c.creds.ID)
		}
	}
	if !slices.Equal(reqs[1].Keys, []string{testKey}) {
		t.Errorf("keys recorded = %v", reqs[1].Keys)
	}
	// 401s: unregistered, foreign challenge, forged token, unsigned, old, other body.
	if rej := s.rejected(); len(rej) != 6 {
		t.Errorf("rejected = %d (%v), want 6", len(rej), rej)
	}

	// Public keys of relays.
	unknown := "00000000-0000-4000-8000-000000000000"
	st, b := c.postJSON("/api/0/relays/publickeys/", map[string]any{"relay_ids": []string{c.creds.ID, unknown}}, time.Now())
	if st != http.StatusOK {
		t.Fatalf("publickeys: %d %s", st, b)
	}
	var pk struct {
		PublicKeys map[string]*string `json:"public_keys"`
		Relays     map[string]*struct {
			PublicKey string `json:"publicKey"`
			Internal  *bool  `json:"internal"`
		} `json:"relays"`
	}
	if err := json.Unmarshal(b, &pk); err != nil {
		t.Fatal(err)
	}
	me := auth.FormatPublicKey(c.creds.PublicKey)
	if p := pk.PublicKeys[c.creds.ID]; p == nil || *p != me {
		t.Errorf("public_keys = %s", b)
	}
	if r := pk.Relays[c.creds.ID]; r == nil || r.PublicKey != me || r.Internal == nil || *r.Internal {
		t.Errorf("relays = %s", b)
	}
	if v, ok := pk.Relays[unknown]; !ok || v != nil || pk.PublicKeys[unknown] != nil {
		t.Errorf("unknown relay: %s", b)
	}

	// Forgotten by Sentry: 401 until it registers again.
	s.unregister(c.creds.ID)
	if st, b := c.postJSON("/api/0/relays/projectconfigs/?version=3", cfg, time.Now()); st != http.StatusUnauthorized {
		t.Fatalf("after unregister: %d %s", st, b)
	}
	c.register()
	c.fetch(cfg)
}

func TestFakeSentryProjectConfigs(t *testing.T) {
	s := newFakeSentry(t)
	c := newFakeSentryClient(t, s.url())
	c.register()

	const known, unknown, cached, slow = "11111111111111111111111111111111", "22222222222222222222222222222222",
		"33333333333333333333333333333333", "44444444444444444444444444444444"
	s.setProject(known, fakeSentryProjectState(42, known, "rev-a", nil))
	s.setProject(cached, fakeSentryProjectState(43, cached, "rev-c", func(m map[string]any) {
		m["config"].(map[string]any)["sampling"] = "garbage"
	}))
	s.setProject(slow, fakeSentryProjectState(44, slow, "rev-s", nil))
	s.setPending(slow, 2)

	ask := map[string]any{
		"publicKeys": []string{known, unknown, cached, slow},
		"revisions":  []any{nil, nil, "rev-c", nil},
		"global":     true,
		"parts":      []string{"config"},
	}
	for round := 1; round <= 3; round++ {
		got := c.fetch(ask)
		var st struct {
			ProjectID  uint64 `json:"projectId"`
			Rev        string `json:"rev"`
			Disabled   bool   `json:"disabled"`
			PublicKeys []struct {
				PublicKey string `json:"publicKey"`
				IsEnabled bool   `json:"isEnabled"`
			} `json:"publicKeys"`
			Config struct {
				AllowedDomains []string        `json:"allowedDomains"`
				Sampling       json.RawMessage `json:"sampling"`
			} `json:"config"`
		}
		if err := json.Unmarshal(got.Configs[known], &st); err != nil {
			t.Fatalf("round %d: known config %s: %v", round, got.Configs[known], err)
		}
		if st.ProjectID != 42 || st.Rev != "rev-a" || st.Disabled || len(st.PublicKeys) != 1 ||
			st.PublicKeys[0].PublicKey != known || !st.PublicKeys[0].IsEnabled ||
			!slices.Equal(st.Config.AllowedDomains, []string{"*"}) || !json.Valid(st.Config.Sampling) {
			t.Errorf("round %d: known config = %s", round, got.Configs[known])
		}
		if v, ok := got.Configs[unknown]; !ok || string(v) != "null" {
			t.Errorf("round %d: unknown key = %s (present %v), want null", round, v, ok)
		}
		if _, ok := got.Configs[cached]; ok || !slices.Equal(got.Unchanged, []string{cached}) {
			t.Errorf("round %d: unchanged = %v, configs has cached: %v", round, got.Unchanged, ok)
		}
		if round <= 2 {
			if _, ok := got.Configs[slow]; ok || !slices.Equal(got.Pending, []string{slow}) {
				t.Errorf("round %d: pending = %v, want [%s] and no config", round, got.Pending, slow)
			}
		} else if len(got.Pending) != 0 || got.Configs[slow] == nil {
			t.Errorf("round %d: pending = %v, slow config %s; want it served", round, got.Pending, got.Configs[slow])
		}
		if got.GlobalStatus != "ready" || !json.Valid(got.Global) {
			t.Errorf("round %d: global %s status %q", round, got.Global, got.GlobalStatus)
		}
		want, err := os.ReadFile(fakeSentryGlobalConfigPath)
		if err != nil {
			t.Fatal(err)
		}
		var a, b any
		json.Unmarshal(want, &a)
		json.Unmarshal(got.Global, &b)
		if fmt.Sprint(a) != fmt.Sprint(b) {
			t.Errorf("round %d: global = %s, want the fixture", round, got.Global)
		}
	}

	// A stale revision gets the config; the garbage sampling comes through as set.
	got := c.fetch(map[string]any{"publicKeys": []string{cached}, "revisions": []string{"rev-old"}})
	if !strings.Contains(string(got.Configs[cached]), `"sampling":"garbage"`) || len(got.Unchanged) != 0 {
		t.Errorf("stale revision: %+v", got)
	}
	if got.Global != nil || got.GlobalStatus != "" {
		t.Errorf("global not asked for, yet served: %s %q", got.Global, got.GlobalStatus)
	}

	// Removed projects become null; a scripted answer replaces the normal one.
	s.removeProject(known)
	if got := c.fetch(map[string]any{"publicKeys": []string{known}}); string(got.Configs[known]) != "null" {
		t.Errorf("removed project: %s", got.Configs[known])
	}
	s.setConfigAnswer(func(r fakeSentryConfigRequest) *fakeAnswer {
		return &fakeAnswer{Status: http.StatusOK, Body: `{"configs":`}
	})
	if st, b := c.postJSON("/api/0/relays/projectconfigs/?version=3", ask, time.Now()); st != http.StatusOK || string(b) != `{"configs":` {
		t.Errorf("scripted answer: %d %s", st, b)
	}
	s.setConfigAnswer(nil)

	reqs := s.configRequests()
	if len(reqs) != 6 {
		t.Fatalf("config requests = %d, want 6", len(reqs))
	}
	r := reqs[0]
	if !r.SignedOK || r.Version != "3" || !r.Global || string(r.Parts) != `["config"]` ||
		len(r.Revisions) != 4 || r.Revisions[0] != nil || *r.Revisions[2] != "rev-c" ||
		!slices.Equal(r.Served, []string{known}) || !slices.Equal(r.Nulls, []string{unknown}) {
		t.Errorf("first request recorded as %+v", r)
	}
	if reqs[3].Parts != nil {
		t.Errorf("parts absent yet recorded as %s", reqs[3].Parts)
	}
}

func TestFakeSentryDownAndEnvelopes(t *testing.T) {
	s := newFakeSentry(t)
	c := newFakeSentryClient(t, s.url())
	c.register()
	ask := map[string]any{"publicKeys": []string{testKey}, "global": true}

	s.setDown(true)
	for _, path := range []string{"/api/0/relays/register/challenge/", "/api/0/relays/register/response/",
		"/api/0/relays/projectconfigs/?version=3", "/api/0/relays/publickeys/"} {
		if st, b := c.postJSON(path, ask, time.Now()); st != http.StatusServiceUnavailable {
			t.Errorf("%s while down: %d %s", path, st, b)
		}
	}
	s.setDown(false)
	if got := c.fetch(ask); string(got.Configs[testKey]) != "null" {
		t.Errorf("back up: %s", got.Configs[testKey])
	}

	// Envelopes: decoded, recorded with headers and signature checks.
	env := []byte("{\"event_id\":\"9ec79c33ec9942ab8353589fcb2e04dc\"}\n{\"type\":\"event\"}\n{}\n")
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(env)
	zw.Close()
	st, b := c.post("/api/42/envelope/", gz.Bytes(), time.Time{}, map[string]string{
		"Content-Encoding":        "gzip",
		"Content-Type":            "application/x-sentry-envelope",
		"X-Sentry-Auth":           "Sentry sentry_key=" + testKey + ", sentry_version=7",
		auth.HeaderRelaySignature: c.creds.Sign(nil, time.Now()),
		"X-Forwarded-For":         "203.0.113.9",
	})
	if st != http.StatusOK || string(b) != "{}" {
		t.Fatalf("envelope: %d %s", st, b)
	}
	if st, b := c.post("/api/43/envelope/", env, time.Now(), nil); st != http.StatusOK {
		t.Fatalf("signed envelope: %d %s", st, b)
	}
	s.setEnvelopeStatus(http.StatusTooManyRequests)
	if st, _ := c.post("/api/44/envelope/", env, time.Time{}, map[string]string{auth.HeaderRelayID: ""}); st != http.StatusTooManyRequests {
		t.Fatalf("scripted envelope status: %d", st)
	}
	envs := s.envelopes()
	if len(envs) != 3 {
		t.Fatalf("envelopes = %d, want 3", len(envs))
	}
	if e := envs[0]; e.ProjectID != "42" || !bytes.Equal(e.Body, env) || e.Header.Get("X-Forwarded-For") != "203.0.113.9" ||
		!e.Signed || !e.SigOK || e.SigOver != "empty" {
		t.Errorf("envelope 0 = %+v", e)
	}
	if e := envs[1]; e.ProjectID != "43" || !e.SigOK || e.SigOver != "body" {
		t.Errorf("envelope 1 = %+v", e)
	}
	if e := envs[2]; e.ProjectID != "44" || e.Signed || e.Status != http.StatusTooManyRequests {
		t.Errorf("envelope 2 = %+v", e)
	}
	reqs := s.requests()
	var unavailable int
	for _, r := range reqs {
		if r.Status == http.StatusServiceUnavailable {
			unavailable++
		}
	}
	// challenge + response, 4 while down, 1 fetch, 3 envelopes
	if unavailable != 4 || len(reqs) != 2+4+1+3 {
		t.Errorf("request log: %d requests, %d unavailable: %+v", len(reqs), unavailable, reqs)
	}
}
