package relay

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/baton-relay/baton/config"
	"github.com/baton-relay/baton/relay/auth" // relay has its own type auth (SDK request auth)
	"github.com/baton-relay/baton/relay/project"
	"github.com/baton-relay/baton/routing"
)

// upstreamAuth is Baton's identity towards its upstream in managed mode:
// it registers (challenge, then response), signs every request, and
// registers again when the upstream stops recognising it.
type upstreamAuth struct {
	creds   *auth.Credentials
	version string
	up      *routing.Upstream
	log     *slog.Logger
	// interval re-registers this often once registered, as Relay's
	// http.auth_interval (0: register once).
	interval time.Duration
	// where names the upstream and the credentials file, for the error of
	// a permanent rejection.
	where string

	mu         sync.Mutex // one registration at a time
	registered atomic.Bool
	rejected   error // the upstream's permanent rejection, under mu
	// gen counts successful registrations: a 401 to a request made under
	// an older generation says nothing about the current registration.
	gen atomic.Uint64
	// lost wakes keep when the registration is lost or a registration
	// fails (capacity 1; nil in tests that do not run keep).
	lost chan struct{}
}

// Registration backoff: the first retry after a failure, doubling up to the
// upstream's max_retry_interval.
const registerFirstRetry = 500 * time.Millisecond

// jitter spreads a retry wait over [d/2, d]: a fleet of relays that lost
// their upstream together must not register again in lockstep when it
// returns.
func jitter(d time.Duration) time.Duration {
	if d <= 1 {
		return d
	}
	return d/2 + rand.N(d-d/2+1)
}

// keep registers at start, again every interval (as Relay renews), and
// whenever the registration is lost and no request has registered since,
// retrying failures with backoff up to maxBackoff, until ctx is done. It
// runs beside ingest, which never waits for it: envelopes wait in the
// buffer until configs can be fetched. It returns an error only for a
// permanent rejection (ErrRejected): then Baton must stop.
func (ua *upstreamAuth) keep(ctx context.Context, maxBackoff time.Duration) error {
	wait := registerFirstRetry
	renewing := false
	for {
		var err error
		switch {
		case renewing:
			err = ua.renew(ctx)
		case !ua.registered.Load():
			err = ua.register(ctx)
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, ErrRejected) {
				return fmt.Errorf("%s: %w; trust relay %s (public key %s) at the upstream, or use credentials it trusts, then start Baton again",
					ua.where, err, ua.creds.ID, auth.FormatPublicKey(ua.creds.PublicKey))
			}
			sleep := jitter(wait)
			ua.log.Warn("relay registration failed; retrying", "err", err, "retry_in", sleep)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(sleep):
			}
			wait = min(wait*2, max(maxBackoff, registerFirstRetry))
			continue
		}
		wait, renewing = registerFirstRetry, false
		var renew <-chan time.Time
		var t *time.Timer
		if ua.interval > 0 {
			t = time.NewTimer(ua.interval)
			renew = t.C
		}
		select {
		case <-ctx.Done():
		case <-ua.lost:
		case <-renew:
			renewing = true
		}
		if t != nil {
			t.Stop()
		}
		if ctx.Err() != nil {
			return nil
		}
	}
}

// renew registers again although registered, as Relay's auth_interval
// does: Baton stays registered meanwhile, and loses the registration only
// when the upstream answers with an error (a network failure keeps it, as
// in Relay).
func (ua *upstreamAuth) renew(ctx context.Context) error {
	ua.mu.Lock()
	defer ua.mu.Unlock()
	if ua.rejected != nil {
		return ua.rejected
	}
	status, err := ua.handshake(ctx)
	if err != nil {
		ua.failed(status, err)
	}
	return err
}

// failed records a failed handshake that the upstream answered with
// status (0: no answer). Under mu.
func (ua *upstreamAuth) failed(status int, err error) {
	if errors.Is(err, ErrRejected) {
		ua.rejected = err
	}
	if status != 0 {
		ua.registered.Store(false)
	}
}

// Ready reports whether Baton is registered with its upstream: what
// /api/relay/healthcheck/ready/ answers in managed mode, as Relay's
// auth.ready: authenticated does.
func (ua *upstreamAuth) Ready() bool { return ua.registered.Load() }

// signalLost wakes keep without blocking.
func (ua *upstreamAuth) signalLost() {
	select {
	case ua.lost <- struct{}{}:
	default:
	}
}

// ErrUpstreamAuth means the upstream refused Baton's relay credentials.
var ErrUpstreamAuth = errors.New("upstream refused this relay's credentials")

// ErrRejected means the upstream refused this relay for good: it answered
// 403 with {"relay": "stop"} in the body, Relay's permanent rejection
// (Relay's is_permanent_rejection). Relay then stops authenticating and
// fails every upstream request; Baton stops.
var ErrRejected = errors.New(`upstream rejected this relay for good (403, "relay": "stop")`)

// managedCredentials returns the relay's credentials: the inline key pair
// of m when it has one, else the credentials file at path.
func managedCredentials(m config.Managed, path string, log *slog.Logger) (*auth.Credentials, error) {
	if m.SecretKey == "" {
		c, err := loadOrCreateCredentials(path, log)
		if err != nil {
			return nil, credentialsError(path, err)
		}
		return c, nil
	}
	id := m.RelayID
	if id == "" {
		id = auth.IDFromPublicKey(m.PublicKey)
	}
	c, err := auth.Parse(m.SecretKey, m.PublicKey, id)
	if err != nil {
		return nil, &StartupError{Resource: "managed.secret_key, managed.public_key, managed.relay_id", Err: err,
			Problem: err.Error(), Fix: "set a key pair and id as `baton credentials generate` writes them (for a Relay directory: RELAY_SECRET_KEY, RELAY_PUBLIC_KEY, RELAY_ID)"}
	}
	return c, nil
}

// loadOrCreateCredentials reads the credentials file, creating it on first
// start so that managed mode works out of the box; the public key must
// then be trusted by the upstream.
func loadOrCreateCredentials(path string, log *slog.Logger) (*auth.Credentials, error) {
	c, err := auth.Load(path)
	if err == nil {
		return c, nil
	}
	if !errors.Is(err, auth.ErrNoCredentials) {
		return nil, err
	}
	if c, err = auth.Generate(); err != nil {
		return nil, err
	}
	if err := c.Save(path); err != nil {
		return nil, fmt.Errorf("relay: save new credentials: %w", err)
	}
	log.Warn("generated relay credentials; add this relay to the upstream's trusted relays",
		"file", path, "relay_id", c.ID, "public_key", auth.FormatPublicKey(c.PublicKey))
	return c, nil
}

// signRequest adds the relay signature headers to an upstream request. API
// requests sign their body; envelope requests sign an empty body, as Relay
// does (the upstream checks those against trustedRelays).
func signRequest(c *auth.Credentials, req *fasthttp.Request) {
	body := req.Body()
	if bytes.HasSuffix(req.URI().Path(), []byte("/envelope/")) {
		body = nil
	}
	req.Header.Set(auth.HeaderRelayID, c.ID)
	req.Header.Set(auth.HeaderRelaySignature, c.Sign(body, time.Now()))
}

// registrationVersion is the version Baton registers with: the first of
// versions in Relay's x.y.z form, else 0.0.0. The upstream reads it as a
// Relay version: Sentry and Relay parse it (three parts of 0-255) and accept
// any version from their oldest supported one, 0.0.0 (relay-auth's
// OLDEST_VERSION), so the Relay release Baton follows is the honest answer.
func registrationVersion(versions ...string) string {
	for _, v := range versions {
		if auth.CheckVersion(v) == nil {
			return v
		}
	}
	return "0.0.0"
}

// post sends a signed JSON request to the upstream and decodes a 2xx
// answer into out.
func (ua *upstreamAuth) post(ctx context.Context, path string, in, out any) (int, error) {
	body, err := json.Marshal(in)
	if err != nil {
		return 0, err
	}
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI(path)
	req.Header.SetMethod(fasthttp.MethodPost)
	req.Header.SetContentType("application/json")
	req.SetBodyRaw(body)
	signRequest(ua.creds, req)
	if err := ua.up.Forward(ctx, req, resp); err != nil {
		return 0, err
	}
	status := resp.StatusCode()
	if status < 200 || status > 299 {
		err := fmt.Errorf("%s answered %d: %s", path, status, routing.Snippet(resp.Body()))
		var answer struct {
			Relay string `json:"relay"`
		}
		if status == fasthttp.StatusForbidden && json.Unmarshal(resp.Body(), &answer) == nil && answer.Relay == "stop" {
			err = fmt.Errorf("%w: %w", ErrRejected, err)
		}
		return status, err
	}
	data, err := resp.BodyUncompressed()
	if err != nil {
		return status, fmt.Errorf("%s: decode body: %w", path, err)
	}
	if err := json.Unmarshal(data, out); err != nil {
		return status, fmt.Errorf("%s: %w", path, err)
	}
	return status, nil
}

// register runs the registration handshake unless another call just did.
func (ua *upstreamAuth) register(ctx context.Context) error {
	ua.mu.Lock()
	defer ua.mu.Unlock()
	return ua.registerLocked(ctx)
}

// Generation is the count of successful registrations; read it before a
// request, and pass it to Reregister if the upstream answers 401.
func (ua *upstreamAuth) Generation() uint64 { return ua.gen.Load() }

// Reregister registers again after a 401 to a request made under
// generation gen, unless a registration has happened since: then the 401
// was late (the request was signed before it), and many requests refused
// at once cause one registration, not one each.
func (ua *upstreamAuth) Reregister(ctx context.Context, gen uint64) error {
	ua.mu.Lock()
	defer ua.mu.Unlock()
	if ua.gen.Load() != gen {
		return nil
	}
	ua.registered.Store(false)
	return ua.registerLocked(ctx)
}

// forget marks the registration of generation gen as lost, so the next
// request registers first; a later registration is kept.
func (ua *upstreamAuth) forget(gen uint64) {
	ua.mu.Lock()
	defer ua.mu.Unlock()
	if ua.gen.Load() == gen {
		ua.registered.Store(false)
		ua.signalLost()
	}
}

func (ua *upstreamAuth) registerLocked(ctx context.Context) error {
	if ua.rejected != nil {
		return ua.rejected
	}
	if ua.registered.Load() {
		return nil
	}
	status, err := ua.handshake(ctx)
	if err != nil {
		ua.failed(status, err)
		ua.signalLost() // keep retries it, also when no request asks again
	}
	return err
}

// handshake registers: challenge, then response. status is the upstream's
// answer to a failed step (0 when it did not answer).
func (ua *upstreamAuth) handshake(ctx context.Context) (status int, err error) {
	req, err := auth.NewRegisterRequest(ua.creds, ua.version)
	if err != nil {
		return 0, err
	}
	var ch auth.RegisterChallenge
	if status, err := ua.post(ctx, "/api/0/relays/register/challenge/", req, &ch); err != nil {
		return status, fmt.Errorf("relay registration: challenge: %w", err)
	}
	resp, err := ch.Response(ua.version)
	if err != nil {
		return 0, err
	}
	var res auth.RegisterResult
	if status, err := ua.post(ctx, "/api/0/relays/register/response/", resp, &res); err != nil {
		return status, fmt.Errorf("relay registration: response: %w", err)
	}
	if res.RelayID != ua.creds.ID {
		return fasthttp.StatusOK, fmt.Errorf("relay registration: upstream registered relay %s, not %s", res.RelayID, ua.creds.ID)
	}
	ua.registered.Store(true)
	ua.gen.Add(1)
	ua.log.Info("registered with upstream", "relay_id", ua.creds.ID)
	return 0, nil
}

// fetchConfigs is the project cache's Fetcher: one signed projectconfigs
// request, registering first when needed.
func (ua *upstreamAuth) fetchConfigs(ctx context.Context, req *project.Request) (*project.Response, error) {
	if err := ua.register(ctx); err != nil {
		return nil, err
	}
	gen := ua.Generation()
	var resp project.Response
	status, err := ua.post(ctx, "/api/0/relays/projectconfigs/?version=3", req, &resp)
	if status == fasthttp.StatusUnauthorized || status == fasthttp.StatusForbidden {
		ua.forget(gen) // the upstream forgot us (restart, expiry): register again
		return nil, fmt.Errorf("%w: %w", ErrUpstreamAuth, err)
	}
	if err != nil {
		return nil, err
	}
	return &resp, nil
}

// newProjectCache builds the config cache: over ua in managed mode, or
// over opts.Fetch alone (Redis in static mode, when ua is nil).
func newProjectCache(cfg config.Config, ua *upstreamAuth, opts project.Options) (*project.Cache, error) {
	m := cfg.Managed
	opts.MaxProjects = m.Cache.MaxProjects
	opts.Expiry, opts.Grace, opts.MissExpiry = m.Cache.Expiry, m.Cache.Grace, m.Cache.MissExpiry
	if opts.Grace == 0 {
		opts.Grace = -1 // the config's 0 is no grace; the cache's 0 is its default
	}
	opts.BatchSize, opts.BatchInterval = m.Fetch.BatchSize, m.Fetch.BatchInterval
	opts.Concurrency, opts.Timeout = m.Fetch.Concurrency, m.Fetch.Timeout
	if opts.Fetch == nil {
		opts.Fetch = ua.fetchConfigs
	}
	for _, name := range m.Parts {
		if p, ok := project.ParsePart(name); ok {
			opts.Parts = opts.Parts.With(p)
		}
	}
	return project.New(opts)
}

// fetchRelays is the relay key cache's Fetcher: one signed publickeys
// request, registering first when needed.
func (ua *upstreamAuth) fetchRelays(ctx context.Context, ids []string) (map[string]*auth.RelayInfo, error) {
	if err := ua.register(ctx); err != nil {
		return nil, err
	}
	gen := ua.Generation()
	var raw json.RawMessage
	status, err := ua.post(ctx, "/api/0/relays/publickeys/", auth.PublicKeysRequest{RelayIDs: ids}, &raw)
	if status == fasthttp.StatusUnauthorized || status == fasthttp.StatusForbidden {
		ua.forget(gen)
		return nil, fmt.Errorf("%w: %w", ErrUpstreamAuth, err)
	}
	if err != nil {
		return nil, err
	}
	return auth.ParsePublicKeys(raw)
}

// ---- serving downstream relays ----

// newDownstream authenticates the relays in auth.static_relays and, through
// ua, those the upstream knows (docs/relay-protocol.md §3.5, §3.6).
func newDownstream(cfg config.Config, ua *upstreamAuth) (*auth.Downstream, error) {
	relays := make(map[string]auth.TrustedRelay, len(cfg.Auth.StaticRelays))
	for id, r := range cfg.Auth.StaticRelays {
		relays[id] = auth.TrustedRelay{PublicKey: r.PublicKey, Internal: r.Internal}
	}
	var keys *auth.Keys
	if ua != nil {
		var err error
		keys, err = auth.NewKeys(auth.KeysOptions{
			Fetch:      ua.fetchRelays,
			Expiry:     cfg.Managed.Cache.RelayExpiry,
			MissExpiry: cfg.Managed.Cache.MissExpiry,
		})
		if err != nil {
			return nil, err
		}
	}
	d, err := auth.NewDownstream(auth.DownstreamOptions{
		Relays:    relays,
		Keys:      keys,
		MaxAge:    cfg.Auth.SignatureMaxAge,
		MaxFuture: cfg.Auth.SignatureMaxFuture,
	})
	if err != nil {
		return nil, fmt.Errorf("relay: auth.static_relays: %w", err)
	}
	return d, nil
}

// verifyRelay checks the relay signature of a request over body, refusing
// it when it does not verify (see verifiedRelay).
func (r *Relay) verifyRelay(ctx *fasthttp.RequestCtx, body []byte) bool {
	_, ok := r.verifiedRelay(ctx, body)
	return ok
}

// handleRelays serves /api/0/relays/...: registration, project configs and
// outcomes for downstream relays in managed mode, outcomes only in static
// mode (of its internal static relays, as Relay). Anything else there, and
// everything in proxy mode, is forwarded upstream.
func (r *Relay) handleRelays(ctx *fasthttp.RequestCtx, what string) {
	if r.downstream == nil || !ctx.IsPost() || r.auth == nil && what != "outcomes" {
		r.handleUnknown(ctx)
		return
	}
	s, ok := r.begin(ctx)
	if !ok {
		return
	}
	defer r.end(s)
	body, ok := r.readBody(ctx, s, int(r.cfg.Limits.MaxAPIPayloadSize))
	if !ok {
		return
	}
	switch what {
	case "register/challenge":
		r.serveChallenge(ctx, body)
	case "register/response":
		r.serveRegisterResponse(ctx, body)
	case "projectconfigs":
		r.serveProjectConfigs(ctx, body)
	case "publickeys":
		r.servePublicKeys(ctx, body)
	case "outcomes":
		r.serveOutcomes(ctx, body)
	default:
		r.handleUnknown(ctx)
	}
}

// serveChallenge answers a static relay's challenge itself and forwards any
// other relay's to the upstream, as Relay does: the upstream decides.
func (r *Relay) serveChallenge(ctx *fasthttp.RequestCtx, body []byte) {
	var req auth.RegisterRequest
	if err := json.Unmarshal(body, &req); err != nil {
		jsonError(ctx, fasthttp.StatusBadRequest, err.Error())
		return
	}
	if hdr, err := auth.ParseRelayID(string(ctx.Request.Header.Peek(auth.HeaderRelayID))); err != nil || hdr != req.RelayID {
		r.reject(ctx, fasthttp.StatusBadRequest, rejectRelayAuth, "relay id of the header and the body differ")
		return
	}
	pk, _, static := r.downstream.Trusted(req.RelayID)
	if !static {
		r.forwardRegistration(ctx, "/api/0/relays/register/challenge/", body, "")
		return
	}
	if !pk.Equal(req.PublicKey) {
		r.reject(ctx, fasthttp.StatusUnauthorized, rejectRelayAuth, "relay "+req.RelayID+" is trusted with another public key (auth.static_relays)")
		return
	}
	if !r.verifyRelay(ctx, body) {
		return
	}
	writeJSON(ctx, auth.RegisterChallenge{RelayID: req.RelayID, Token: r.downstream.Token(req.RelayID)})
}

// serveRegisterResponse checks a static relay's token itself and forwards
// any other relay's response to the upstream; once the upstream accepts,
// what Baton cached of the relay is dropped so it is asked again.
func (r *Relay) serveRegisterResponse(ctx *fasthttp.RequestCtx, body []byte) {
	var resp auth.RegisterResponse
	if err := json.Unmarshal(body, &resp); err != nil {
		jsonError(ctx, fasthttp.StatusBadRequest, err.Error())
		return
	}
	id, err := auth.ParseRelayID(string(ctx.Request.Header.Peek(auth.HeaderRelayID)))
	if err == nil && id != resp.RelayID {
		err = errors.New("relay id of the header and the body differ")
	}
	if err != nil {
		r.reject(ctx, fasthttp.StatusUnauthorized, rejectRelayAuth, err.Error())
		return
	}
	if _, _, static := r.downstream.Trusted(id); !static {
		r.forwardRegistration(ctx, "/api/0/relays/register/response/", body, id)
		return
	}
	if !r.verifyRelay(ctx, body) {
		return
	}
	if err := r.downstream.CheckToken(resp.Token, id); err != nil {
		r.reject(ctx, fasthttp.StatusUnauthorized, rejectRelayAuth, err.Error())
		return
	}
	writeJSON(ctx, map[string]string{"relay_id": id})
}

// forwardRegistration sends a downstream relay's registration step to the
// upstream as the relay signed it (Baton does not sign it: the upstream
// checks the relay's own key) and answers what the upstream answered. A
// 2xx to a response step (registered names the relay) makes Baton forget
// what it cached of the relay.
func (r *Relay) forwardRegistration(ctx *fasthttp.RequestCtx, path string, body []byte, registered string) {
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI(path)
	req.Header.SetMethod(fasthttp.MethodPost)
	req.Header.SetContentType("application/json")
	for _, h := range []string{auth.HeaderRelayID, auth.HeaderRelaySignature, fasthttp.HeaderUserAgent} {
		if v := ctx.Request.Header.Peek(h); len(v) > 0 {
			req.Header.SetBytesV(h, v)
		}
	}
	req.SetBody(body)
	if err := r.auth.up.Forward(ctx, req, resp); err != nil {
		if isTimeout(err) {
			jsonError(ctx, fasthttp.StatusGatewayTimeout, "upstream request timed out: "+err.Error())
			return
		}
		jsonError(ctx, fasthttp.StatusBadGateway, "upstream request failed: "+err.Error())
		return
	}
	data, err := resp.BodyUncompressed()
	if err != nil {
		jsonError(ctx, fasthttp.StatusBadGateway, "upstream answer: "+err.Error())
		return
	}
	status := resp.StatusCode()
	if registered != "" && status >= 200 && status <= 299 {
		r.downstream.Forget(registered)
	}
	ctx.SetStatusCode(status)
	ctx.Response.Header.SetContentTypeBytes(resp.Header.ContentType())
	ctx.SetBody(data)
}

func (r *Relay) serveProjectConfigs(ctx *fasthttp.RequestCtx, body []byte) {
	if !r.verifyRelay(ctx, body) {
		return
	}
	if r.cache == nil {
		jsonError(ctx, fasthttp.StatusNotFound, "this relay does not serve project configs (mode is not managed)")
		return
	}
	var req project.Request
	if err := json.Unmarshal(body, &req); err != nil {
		jsonError(ctx, fasthttp.StatusBadRequest, err.Error())
		return
	}
	writeJSON(ctx, r.cache.Answer(&req, r.projects().View))
}

// servePublicKeys answers in Relay's shape (docs/relay-protocol.md §3.5):
// static relays, then what the upstream knows. A body that is not a list of
// relay ids is 400, after the signature check (as Relay orders them).
func (r *Relay) servePublicKeys(ctx *fasthttp.RequestCtx, body []byte) {
	if !r.verifyRelay(ctx, body) {
		return
	}
	ids, err := auth.ParsePublicKeysRequest(body)
	if err != nil {
		jsonError(ctx, fasthttp.StatusBadRequest, err.Error())
		return
	}
	relays, err := r.downstream.Relays(ctx, ids...)
	if err != nil {
		jsonError(ctx, fasthttp.StatusServiceUnavailable, err.Error())
		return
	}
	b, err := auth.MarshalPublicKeys(relays)
	if err != nil {
		jsonError(ctx, fasthttp.StatusInternalServerError, err.Error())
		return
	}
	ctx.SetContentType("application/json")
	ctx.SetBody(b)
}

func writeJSON(ctx *fasthttp.RequestCtx, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		jsonError(ctx, fasthttp.StatusInternalServerError, err.Error())
		return
	}
	ctx.SetContentType("application/json")
	ctx.SetBody(b)
}

// verifyRelayEnvelope checks the signature of an envelope sent by a
// downstream relay Baton knows (signed over an empty body, as Relay does).
// Other requests, including those of relays Baton does not know (yet), are
// treated as clients' (as Relay treats them) and pass. It never waits on the
// upstream: it uses what is known now, and a relay not seen before is
// looked up in the background. ok is false when it answered the request;
// trusted is true when the signature was verified (Relay's
// RequestTrust::Trusted: the relay's fully_normalized marks are believed).
func (r *Relay) verifyRelayEnvelope(ctx *fasthttp.RequestCtx) (ok, trusted bool) {
	if r.downstream == nil || r.auth == nil { // static mode knows its static relays for outcomes only
		return true, false
	}
	id, err := auth.ParseRelayID(string(ctx.Request.Header.Peek(auth.HeaderRelayID)))
	if err != nil {
		return true, false
	}
	info := r.downstream.Cached(id)
	if info == nil {
		return true, false
	}
	if err := r.downstream.VerifyWith(info, string(ctx.Request.Header.Peek(auth.HeaderRelaySignature)), nil); err != nil {
		r.reject(ctx, fasthttp.StatusUnauthorized, rejectRelayAuth, "relay signature rejected: "+err.Error())
		return false, false
	}
	return true, true
}
