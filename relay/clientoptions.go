package relay

import (
	"bytes"
	"strconv"

	"github.com/valyala/fasthttp"

	"github.com/baton-relay/baton/config"
	"github.com/baton-relay/baton/relay/clientopts"
	"github.com/baton-relay/baton/relay/policy"
	"github.com/baton-relay/baton/relay/project"
)

// handleClientOptions serves GET /api/{project_id}/client-options/: the
// project's client options resolved for the asking client
// (docs/client-options.md). It is authenticated like ingest (the DSN key
// in X-Sentry-Auth, Authorization or sentry_key) and answered from the
// project config Baton already holds: nothing is fetched per request but
// the config itself. Proxy mode holds no configs and forwards the request
// to its upstream like any path it does not serve.
func (r *Relay) handleClientOptions(ctx *fasthttp.RequestCtx, pid uint64) {
	if r.cfg.Mode == config.ModeProxy {
		r.handleUnknown(ctx)
		return
	}
	setClientOptionsCORS(ctx)
	switch {
	case ctx.IsOptions():
		ctx.SetStatusCode(fasthttp.StatusOK)
		return
	case !ctx.IsGet() && !ctx.IsHead():
		methodNotAllowed(ctx)
		return
	}
	var a sdkAuth
	if err := parseAuth(&ctx.Request, &a); err != nil {
		jsonError(ctx, fasthttp.StatusUnauthorized, err.Error())
		return
	}
	if !validKey(a.PublicKey) {
		jsonError(ctx, fasthttp.StatusUnauthorized, errAuthInvalid.Error())
		return
	}
	adm := r.projects().Admit(pid, a.PublicKey, requestOrigin(&ctx.Request))
	switch {
	case adm.Pending:
		ctx.Response.Header.Set("Retry-After", "1")
		jsonError(ctx, fasthttp.StatusServiceUnavailable, "the project config is being fetched; retry shortly")
		return
	case adm.Refusal == policy.UnknownProject:
		jsonError(ctx, fasthttp.StatusNotFound, "unknown project")
		return
	case adm.Refusal != policy.Admitted:
		// Answered as ingest answers it, but not counted with ingest's
		// rejections: no envelope was refused.
		res := doorRefusal(adm.Refusal)
		if res.retryAfter != "" {
			ctx.Response.Header.Set("Retry-After", res.retryAfter)
		}
		jsonError(ctx, res.status, res.detail)
		return
	}
	doc := adm.State.ClientOptions
	if doc == nil {
		if why := adm.State.ClientOptionsBroken(); why != "" {
			jsonError(ctx, fasthttp.StatusNotFound, "the project's client options are broken, so off: "+why)
			return
		}
		jsonError(ctx, fasthttp.StatusNotFound, "the project has no client options")
		return
	}
	ans := doc.Resolve(clientOf(ctx, &a))
	h := &ctx.Response.Header
	h.SetCanonical(hdrETag, ans.ETag)
	h.SetCanonical(hdrClientOptions, doc.HintValue())
	var b [32]byte
	h.SetCanonical(hdrCacheControl, strconv.AppendInt(append(b[:0], "private, max-age="...), int64(r.cfg.Server.ClientOptionsMaxAge.Seconds()), 10))
	if etagMatches(ctx.Request.Header.PeekBytes(hdrIfNoneMatch), ans.ETag) {
		ctx.SetStatusCode(fasthttp.StatusNotModified)
		return
	}
	ctx.SetContentTypeBytes(contentJSON)
	ctx.SetBody(ans.Body)
}

// clientOf reads what a client says about itself from the query; without
// sdk and version, the sentry_client of its auth ("sentry.go/0.50.0").
func clientOf(ctx *fasthttp.RequestCtx, a *sdkAuth) *clientopts.Client {
	q := ctx.QueryArgs()
	c := &clientopts.Client{
		SDK:         q.Peek("sdk"),
		SDKVersion:  q.Peek("version"),
		Release:     q.Peek("release"),
		Environment: q.Peek("environment"),
		Platform:    q.Peek("platform"),
		DeviceID:    q.Peek("device_id"),
	}
	if len(c.SDK) == 0 && len(a.Client) > 0 {
		c.SDK, c.SDKVersion, _ = bytes.Cut(a.Client, []byte{'/'})
	}
	return c
}

// etagMatches reports whether If-None-Match (a list, or "*") names etag.
func etagMatches(inm, etag []byte) bool {
	for len(inm) > 0 {
		var tag []byte
		tag, inm, _ = bytes.Cut(inm, []byte{','})
		tag = bytes.TrimPrefix(bytes.TrimSpace(tag), []byte("W/"))
		if bytes.Equal(tag, etag) || bytes.Equal(tag, []byte("*")) {
			return true
		}
	}
	return false
}

// setClientOptionsHint puts the revision of st's client options on an
// ingest answer: an SDK that holds another revision fetches again, on its
// next envelope rather than its next poll. Nothing for projects without.
func setClientOptionsHint(ctx *fasthttp.RequestCtx, st *project.State) {
	if st != nil && st.ClientOptions != nil {
		ctx.Response.Header.SetCanonical(hdrClientOptions, st.ClientOptions.HintValue())
	}
}

// setClientOptionsCORS is setCORS for the one GET route browsers read:
// the answer's ETag and revision are exposed, and preflights allow GET.
func setClientOptionsCORS(ctx *fasthttp.RequestCtx) {
	h := &ctx.Response.Header
	if origin := ctx.Request.Header.Peek("Origin"); len(origin) == 0 {
		h.SetCanonical(corsAllowOrigin, corsAny)
	} else {
		h.SetCanonical(corsAllowOrigin, origin)
		h.SetCanonical(corsVary, corsOrigin)
	}
	h.SetCanonical(corsExposeHeaders, clientOptionsExposed)
	if ctx.IsOptions() {
		h.SetCanonical(corsAllowMethods, clientOptionsMethods)
		h.SetCanonical(corsAllowHeaders, corsAllowed)
		h.SetCanonical(corsMaxAge, corsHour)
	}
}

var (
	hdrETag          = []byte("Etag")
	hdrIfNoneMatch   = []byte("If-None-Match")
	hdrCacheControl  = []byte("Cache-Control")
	hdrClientOptions = []byte("X-Baton-Client-Options")
	contentJSON      = []byte("application/json")

	clientOptionsExposed = []byte("etag, x-baton-client-options, x-sentry-error, retry-after")
	clientOptionsMethods = []byte("GET, OPTIONS")
)
