package relay

import (
	"bytes"
	"errors"
	"io"

	"github.com/valyala/fasthttp"

	"github.com/baton-relay/baton/config"
)

// forwardAPI proxies an /api/ request Baton does not serve to the upstream
// (Relay's http.forward), streaming the body through without holding it:
// it is never written to the buffer, so it costs no more than the
// connection's buffers. Its size is capped like Relay caps it: release file
// and chunk uploads have their own limits, every other API request
// limits.max_api_payload_size. A body over its limit gets 413.
func (r *Relay) forwardAPI(ctx *fasthttp.RequestCtx) {
	limit, field := apiLimit(&r.cfg.Limits, ctx.Path())
	tooLarge := func() {
		r.reject(ctx, fasthttp.StatusRequestEntityTooLarge, rejectTooLarge,
			"request body exceeds the size limit (limits."+field+")")
	}
	var lb *limitedBody
	if n := ctx.Request.Header.ContentLength(); n > limit {
		tooLarge()
		return
	} else if stream := ctx.RequestBodyStream(); stream != nil && n == -1 {
		lb = &limitedBody{r: stream, left: limit}
		ctx.Request.SetBodyStream(lb, -1)
	}
	if err := r.forwardTo.Forward(ctx, &ctx.Request, &ctx.Response); err != nil {
		ctx.Response.Reset()
		if lb != nil && lb.over {
			tooLarge()
			return
		}
		if isTimeout(err) { // Relay: an upstream that does not answer in time is 504
			jsonError(ctx, fasthttp.StatusGatewayTimeout, "upstream request timed out: "+err.Error())
			return
		}
		jsonError(ctx, fasthttp.StatusBadGateway, "upstream request failed: "+err.Error())
	}
}

// isTimeout reports whether err is an upstream request that ran out of
// time (fasthttp's deadline, or a network timeout).
func isTimeout(err error) bool {
	if errors.Is(err, fasthttp.ErrTimeout) || errors.Is(err, fasthttp.ErrDialTimeout) {
		return true
	}
	var ne interface{ Timeout() bool }
	return errors.As(err, &ne) && ne.Timeout()
}

// apiLimit is the body limit of a forwarded API path, and the config field
// that sets it: Relay's special routes for release files, legacy dSYM
// uploads and chunk uploads, then everything else.
func apiLimit(l *config.Limits, path []byte) (int, string) {
	seg := bytes.Split(bytes.Trim(path, "/"), []byte{'/'})
	is := func(pattern ...string) bool {
		if len(seg) != len(pattern) {
			return false
		}
		for i, p := range pattern {
			if p != "*" && string(seg[i]) != p {
				return false
			}
		}
		return true
	}
	switch {
	case is("api", "0", "projects", "*", "*", "releases", "*", "files"),
		is("api", "0", "projects", "*", "*", "releases", "*", "dsyms"):
		return int(l.MaxAPIFileUploadSize), "max_api_file_upload_size"
	case is("api", "0", "organizations", "*", "chunk-upload"):
		return int(l.MaxAPIChunkUploadSize), "max_api_chunk_upload_size"
	}
	return int(l.MaxAPIPayloadSize), "max_api_payload_size"
}

// errBodyLimit ends a forwarded body that passed its limit.
var errBodyLimit = errors.New("request body exceeds the size limit")

// limitedBody passes a chunked body through until it passes left bytes.
type limitedBody struct {
	r    io.Reader
	left int
	over bool
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.over {
		return 0, errBodyLimit
	}
	n, err := b.r.Read(p)
	if b.left -= n; b.left < 0 {
		b.over = true
		return 0, errBodyLimit
	}
	return n, err
}
