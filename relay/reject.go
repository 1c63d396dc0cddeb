package relay

import (
	"errors"
	"sync/atomic"

	"github.com/valyala/fasthttp"

	"github.com/baton-relay/baton/envelope"
)

// rejectReason says why a request was refused at the door. Every refusal is
// counted by reason (Relay's "discard reasons" at ingest).
type rejectReason uint8

const (
	rejectAuth rejectReason = iota
	rejectVersion
	rejectInvalid
	rejectTooLarge
	rejectEncoding
	rejectContentType
	rejectProjectID
	rejectProject  // unknown project or key
	rejectDisabled // disabled project or key
	rejectCORS     // origin not in allowedDomains
	rejectRateLimited
	rejectRelayAuth // a downstream relay's signature or registration failed
	rejectBufferFull
	rejectBufferError
	rejectOverload
	rejectShutdown
	numRejectReasons
)

var rejectNames = [numRejectReasons]string{
	"auth", "version", "invalid", "too_large", "encoding", "content_type",
	"project_id", "project", "disabled", "cors", "rate_limited", "relay_auth", "buffer_full", "buffer_error", "overload", "shutdown",
}

type rejections [numRejectReasons]atomic.Int64

func (rj *rejections) snapshot() map[string]int64 {
	m := make(map[string]int64)
	for i := range rj {
		if n := rj[i].Load(); n > 0 {
			m[rejectNames[i]] = n
		}
	}
	return m
}

// reject answers a request refused outside the ingest steps, through the
// same respond.
func (r *Relay) reject(ctx *fasthttp.RequestCtx, status int, why rejectReason, detail string) {
	res := refusal(status, why, detail)
	r.respond(ctx, &res)
}

// authRefusal maps a request auth failure: a protocol version Baton does
// not speak is 400, anything else 401.
func authRefusal(err error) result {
	if errors.Is(err, errAuthVersion) {
		return refusal(fasthttp.StatusBadRequest, rejectVersion, err.Error())
	}
	return refusal(fasthttp.StatusUnauthorized, rejectAuth, err.Error())
}

// parseRefusal maps an envelope parse failure: size limits are 413,
// anything else is a 400 whose detail names the problem and its byte
// offset.
func parseRefusal(err error) result {
	if errors.Is(err, envelope.ErrTooLarge) {
		return refusal(fasthttp.StatusRequestEntityTooLarge, rejectTooLarge, err.Error())
	}
	return refusal(fasthttp.StatusBadRequest, rejectInvalid, err.Error())
}
