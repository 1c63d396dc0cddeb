package relay

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"

	"github.com/valyala/fasthttp"
)

// handle routes a request. Routes follow Relay's (docs/relay-protocol.md §1.1);
// trailing slashes are optional.
func (r *Relay) handle(ctx *fasthttp.RequestCtx) {
	path := ctx.Path()
	if !bytes.HasPrefix(path, []byte("/api/")) {
		jsonError(ctx, fasthttp.StatusNotFound, "not found")
		return
	}
	rest := bytes.TrimSuffix(path[len("/api/"):], []byte{'/'})
	if len(rest) == 0 { // Relay: /api/ is a web UI path, never forwarded
		jsonError(ctx, fasthttp.StatusNotFound, "not found")
		return
	}

	if bytes.HasPrefix(rest, []byte("relay/")) {
		r.handleOperational(ctx, rest[len("relay/"):])
		return
	}

	if what, ok := bytes.CutPrefix(rest, []byte("0/relays/")); ok {
		r.handleRelays(ctx, string(what))
		return
	}

	if string(rest) == "store" {
		r.handleLegacyStore(ctx)
		return
	}

	pidStr, endpoint, _ := bytes.Cut(rest, []byte{'/'})
	pid, err := strconv.ParseUint(string(pidStr), 10, 64)
	if err != nil || pid == 0 {
		r.handleUnknown(ctx)
		return
	}

	if string(endpoint) == "client-options" {
		r.handleClientOptions(ctx, pid)
		return
	}
	if ctx.IsOptions() && !sdkEndpoint(endpoint) {
		r.handleUnknown(ctx) // not under Relay's CORS layer: the preflight is forwarded
		return
	}
	setCORS(ctx)
	if ctx.IsOptions() {
		ctx.SetStatusCode(fasthttp.StatusOK)
		return
	}
	switch {
	case string(endpoint) == "envelope":
		if !ctx.IsPost() {
			methodNotAllowed(ctx)
			return
		}
		r.handleEnvelope(ctx, pid)
	case string(endpoint) == "store":
		r.handleStore(ctx, pid)
	case string(endpoint) == "minidump":
		r.handleMinidump(ctx, pid)
	case string(endpoint) == "security", string(endpoint) == "csp-report":
		r.handleSecurity(ctx, pid)
	case string(endpoint) == "nel":
		r.handleNEL(ctx, pid)
	case bytes.HasPrefix(endpoint, []byte("events/")) && bytes.HasSuffix(endpoint, []byte("/attachments")):
		r.handleAttachments(ctx, pid, endpoint[len("events/"):len(endpoint)-len("/attachments")])
	case bytes.HasPrefix(endpoint, []byte("integration/otlp/")):
		r.handleOTLP(ctx, pid, string(endpoint))
	default:
		r.handleUnknown(ctx)
	}
}

// handleLegacyStore serves Relay's legacy POST /api/store/, whose path has
// no project id: the project is the one of the request's key.
func (r *Relay) handleLegacyStore(ctx *fasthttp.RequestCtx) {
	setCORS(ctx)
	if ctx.IsOptions() {
		ctx.SetStatusCode(fasthttp.StatusOK)
		return
	}
	var a sdkAuth
	if err := parseAuth(&ctx.Request, &a); err != nil {
		res := authRefusal(err)
		r.respond(ctx, &res)
		return
	}
	pid, ok := r.projects().ProjectOf(a.PublicKey)
	if !ok {
		r.reject(ctx, fasthttp.StatusForbidden, rejectProjectID,
			"event submission rejected with_reason: ProjectId (the key's project is not known here; use /api/{project_id}/store/)")
		return
	}
	r.handleStore(ctx, pid)
}

// sdkEndpoint reports whether endpoint (the path after /api/{pid}/) is one
// of the SDK routes Baton serves, which answer CORS preflights.
func sdkEndpoint(endpoint []byte) bool {
	switch string(endpoint) {
	case "envelope", "store", "minidump", "security", "csp-report", "nel",
		"integration/otlp/v1/traces", "integration/otlp/v1/logs":
		return true
	}
	return bytes.HasPrefix(endpoint, []byte("events/")) && bytes.HasSuffix(endpoint, []byte("/attachments"))
}

func (r *Relay) handleOperational(ctx *fasthttp.RequestCtx, what []byte) {
	switch string(what) {
	case "healthcheck/live":
		ctx.SetContentType("application/json")
		ctx.SetBodyString(`{"is_healthy":true}`)
	case "healthcheck/ready":
		ctx.SetContentType("application/json")
		if r.ready() {
			ctx.SetBodyString(`{"is_healthy":true}`)
		} else {
			ctx.SetStatusCode(fasthttp.StatusServiceUnavailable)
			ctx.SetBodyString(`{"is_healthy":false}`)
		}
	case "stats":
		r.handleStats(ctx)
	default:
		jsonError(ctx, fasthttp.StatusNotFound, "not found")
	}
}

// handleUnknown forwards unknown /api/ requests to the upstream when one is
// configured (Relay's http.forward), and answers 404 otherwise.
func (r *Relay) handleUnknown(ctx *fasthttp.RequestCtx) {
	if r.forwardUnknown != nil {
		r.forwardUnknown(ctx)
		return
	}
	jsonError(ctx, fasthttp.StatusNotFound, "not found")
}

// setCORS answers like Relay: any origin, the headers SDKs need to see rate
// limits, preflight cached for an hour. Every SDK route allows POST only, as
// Relay's CORS layer does (the GET store beacon is a simple request, which
// needs no preflight); a preflight for another method gets 200 without it,
// which the browser refuses, exactly as Relay answers.
func setCORS(ctx *fasthttp.RequestCtx) {
	h := &ctx.Response.Header
	origin := ctx.Request.Header.Peek("Origin")
	if len(origin) == 0 {
		h.SetCanonical(corsAllowOrigin, corsAny)
	} else {
		h.SetCanonical(corsAllowOrigin, origin)
		h.SetCanonical(corsVary, corsOrigin)
	}
	h.SetCanonical(corsExposeHeaders, corsExposed)
	h.SetCanonical(corsResourcePolicy, corsCrossOrigin)
	if ctx.IsOptions() {
		h.SetCanonical(corsAllowMethods, corsPost)
		h.SetCanonical(corsAllowHeaders, corsAllowed)
		h.SetCanonical(corsMaxAge, corsHour)
	}
}

// The CORS headers every SDK answer carries, names already canonical:
// SetCanonical skips the normalising copies Set makes of name and value,
// 1.5% of a strict Baton's CPU per envelope (BENCHMARKS.md, issue 21).
var (
	corsAllowOrigin    = []byte("Access-Control-Allow-Origin")
	corsVary           = []byte("Vary")
	corsExposeHeaders  = []byte("Access-Control-Expose-Headers")
	corsResourcePolicy = []byte("Cross-Origin-Resource-Policy")
	corsAllowMethods   = []byte("Access-Control-Allow-Methods")
	corsAllowHeaders   = []byte("Access-Control-Allow-Headers")
	corsMaxAge         = []byte("Access-Control-Max-Age")

	corsAny         = []byte("*")
	corsOrigin      = []byte("Origin")
	corsExposed     = []byte("x-sentry-error, x-sentry-rate-limits, retry-after, x-baton-client-options")
	corsCrossOrigin = []byte("cross-origin")
	corsPost        = []byte("POST")
	corsAllowed     = []byte("x-sentry-auth, x-requested-with, x-forwarded-for, origin, referer, accept, content-type, authentication, authorization, content-encoding, transfer-encoding")
	corsHour        = []byte("3600")
)

func methodNotAllowed(ctx *fasthttp.RequestCtx) {
	jsonError(ctx, fasthttp.StatusMethodNotAllowed, "method not allowed")
}

// jsonError writes Relay's error body: {"detail": "..."}.
func jsonError(ctx *fasthttp.RequestCtx, status int, detail string) {
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	d, _ := json.Marshal(detail)
	ctx.Response.SetBodyString(`{"detail":` + string(d) + `}`)
	ctx.Response.Header.Set("X-Sentry-Error", detail)
}

// handleServerError answers requests fasthttp refused before the handler
// ran, in Relay's error shape, and counts them.
func (r *Relay) handleServerError(ctx *fasthttp.RequestCtx, err error) {
	setCORS(ctx)
	switch {
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		r.reject(ctx, fasthttp.StatusRequestEntityTooLarge, rejectTooLarge, "request body exceeds the size limit")
	case errors.As(err, new(*fasthttp.ErrSmallBuffer)):
		r.reject(ctx, fasthttp.StatusRequestHeaderFieldsTooLarge, rejectInvalid, "request headers too large")
	default:
		var netErr interface{ Timeout() bool }
		if errors.As(err, &netErr) && netErr.Timeout() {
			r.reject(ctx, fasthttp.StatusRequestTimeout, rejectInvalid, "request read timed out")
			return
		}
		r.reject(ctx, fasthttp.StatusBadRequest, rejectInvalid, "malformed request: "+err.Error())
	}
}
