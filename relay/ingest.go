package relay

import (
	"bytes"
	"errors"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/baton-relay/baton/buffer"
	"github.com/baton-relay/baton/envelope"
)

// scratch is the per-request memory of the ingest path, pooled so that a
// request in steady state allocates nothing of its own.
type scratch struct {
	env     envelope.Envelope
	body    []byte // the decoded body, when the request was compressed
	conv    []byte // an envelope built from a store/minidump/security body
	zbuf    []byte // one compressed class envelope, on its way into recs
	recs    []byte // the class records, back to back
	offs    []int
	classes []envelope.Class
	items   []int // items per class, parallel to classes
	entries []buffer.Entry
	ip      []byte
	hdr     []byte // an envelope header rewritten with a generated event_id
	resp    []byte // the response body
	verdict verdict
	limits  []byte // X-Sentry-Rate-Limits
}

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

func getScratch() *scratch { return scratchPool.Get().(*scratch) }

// maxPooledBody keeps one huge request from pinning its memory in the pool.
const maxPooledBody = 4 << 20

func putScratch(s *scratch) {
	s.env.Reset()
	if cap(s.body) > maxPooledBody {
		s.body = nil
	}
	if cap(s.recs) > maxPooledBody {
		s.recs = nil
	}
	if cap(s.zbuf) > maxPooledBody {
		s.zbuf = nil
	}
	if cap(s.conv) > maxPooledBody {
		s.conv = nil
	}
	clear(s.entries[:cap(s.entries)]) // drop references to request memory
	scratchPool.Put(s)
}

// readBody returns the request body with Content-Encoding undone, capped at
// limit decoded bytes. On failure it has answered the request.
func (r *Relay) readBody(ctx *fasthttp.RequestCtx, s *scratch, limit int) ([]byte, bool) {
	raw := ctx.PostBody()
	enc := ctx.Request.Header.ContentEncoding()
	if len(enc) == 0 {
		if len(raw) > limit {
			r.reject(ctx, fasthttp.StatusRequestEntityTooLarge, rejectTooLarge, "request body exceeds the size limit")
			return nil, false
		}
		return raw, true
	}
	var err error
	s.body, err = decodeBody(s.body[:0], enc, raw, limit)
	switch {
	case err == nil:
		return s.body, true
	case errors.Is(err, errBodyTooLarge):
		r.reject(ctx, fasthttp.StatusRequestEntityTooLarge, rejectTooLarge, "decompressed body exceeds the size limit")
	case errors.Is(err, errBadEncoding):
		r.reject(ctx, fasthttp.StatusBadRequest, rejectEncoding, "unsupported content encoding "+strconv.Quote(string(enc)))
	default:
		r.reject(ctx, fasthttp.StatusBadRequest, rejectEncoding, "failed to decode request body: "+err.Error())
	}
	return nil, false
}

// handleEnvelope serves POST /api/{pid}/envelope/.
func (r *Relay) handleEnvelope(ctx *fasthttp.RequestCtx, pid uint64) {
	n, ok := r.admit(ctx)
	if !ok {
		return
	}
	defer r.release(n)
	s := getScratch()
	defer putScratch(s)

	if !r.verifyRelayEnvelope(ctx) {
		return
	}
	var a auth
	aerr := parseAuth(&ctx.Request, &a)
	if aerr != nil && !errors.Is(aerr, errAuthMissing) {
		r.rejectAuth(ctx, aerr)
		return
	}
	body, ok := r.readBody(ctx, s, r.limits.MaxEnvelopeSize)
	if !ok {
		return
	}
	if err := s.env.Parse(body, &r.limits); err != nil {
		r.rejectParse(ctx, err)
		return
	}
	if aerr != nil { // no request auth: fall back to the envelope header's dsn
		if s.env.Header.DSN == "" {
			r.rejectAuth(ctx, errAuthMissing)
			return
		}
		dsn, err := envelope.ParseDSN(s.env.Header.DSN)
		if err != nil {
			r.rejectAuth(ctx, errAuthInvalid)
			return
		}
		if dsn.ProjectID != pid {
			r.reject(ctx, fasthttp.StatusBadRequest, rejectProjectID, "project id in the path does not match the envelope's dsn")
			return
		}
		a.PublicKey = []byte(dsn.PublicKey)
	}
	r.accept(ctx, pid, &a, s)
}

// accept checks the project, writes one record per traffic class to the
// buffer and answers only when every record is durable.
func (r *Relay) accept(ctx *fasthttp.RequestCtx, pid uint64, a *auth, s *scratch) {
	if !validKey(a.PublicKey) {
		r.rejectAuth(ctx, errAuthInvalid)
		return
	}
	origin := requestOrigin(&ctx.Request)
	adm := r.projects().admit(pid, a.PublicKey, origin)
	if adm.status != 0 {
		if adm.status == fasthttp.StatusServiceUnavailable {
			ctx.Response.Header.Set("Retry-After", retryAfterFull)
		}
		r.reject(ctx, adm.status, adm.why, adm.detail)
		return
	}

	var perClass [envelope.NumClasses]int // items of each class, one pass
	for i := range s.env.Items {
		perClass[s.env.Items[i].Class]++
	}
	v := &s.verdict
	v.drop = [envelope.NumClasses]bool{}
	v.limited = v.limited[:0]
	if adm.state != nil || adm.limiter != nil {
		r.enforcer.apply(v, adm.state, adm.limiter, a.PublicKey, &perClass, s.env.Header.Raw, func() netip.Addr { return clientAddr(ctx) })
		if len(v.limited) > 0 {
			s.limits = appendRateLimits(s.limits[:0], v.limited)
			ctx.Response.Header.SetBytesV("X-Sentry-Rate-Limits", s.limits)
			if allDropped(v, &perClass) {
				// Nothing left to keep: the client is told to back off,
				// and its SDK records the loss (Relay answers the same).
				ctx.Response.Header.Set("Retry-After", strconv.FormatInt(retryAfter(v.limited), 10))
				r.reject(ctx, fasthttp.StatusTooManyRequests, rejectRateLimited, "event submission rejected with_reason: RateLimited")
				return
			}
		}
	}

	if s.env.Header.EventID.IsZero() && s.env.NeedsEventID() {
		// Like Relay: an envelope that creates an event gets an id here,
		// so the client learns it and every relay after us keeps it.
		s.hdr = s.env.SetEventID(s.hdr[:0], envelope.NewEventID())
	}
	s.ip = appendClientIP(s.ip[:0], ctx)
	rec := record{
		ReceivedAt: time.Now().UnixNano(),
		ProjectID:  pid,
		PublicKey:  a.PublicKey,
		Client:     a.Client,
		ClientIP:   s.ip,
		Origin:     origin,
	}
	if len(rec.Client) == 0 {
		rec.Client = ctx.Request.Header.UserAgent()
	}
	s.recs, s.offs, s.classes, s.items = s.recs[:0], s.offs[:0], s.classes[:0], s.items[:0]
	s.entries = s.entries[:0]
	for c := range envelope.NumClasses {
		if perClass[c] == 0 || v.drop[c] {
			continue
		}
		rec.Class, rec.Items = c, perClass[c]
		s.offs = append(s.offs, len(s.recs))
		s.classes = append(s.classes, c)
		s.items = append(s.items, rec.Items)
		start := len(s.recs)
		s.recs = appendRecordHeader(s.recs, &rec)
		body := len(s.recs)
		s.recs = s.env.AppendClass(s.recs, c)
		s.recs, s.zbuf = compressRecord(s.recs, start, body, s.zbuf)
	}
	s.offs = append(s.offs, len(s.recs))

	for i, c := range s.classes {
		stream := r.stream(c, a.PublicKey)
		if adm.pending {
			stream = pendingStream(stream)
		}
		s.entries = append(s.entries, buffer.Entry{Stream: stream, Value: s.recs[s.offs[i]:s.offs[i+1]]})
	}
	if adm.pending && !r.waiting.add(a.PublicKey, int64(len(s.recs))) {
		ctx.Response.Header.Set("Retry-After", retryAfterFull)
		r.reject(ctx, fasthttp.StatusServiceUnavailable, rejectOverload, "too much data is waiting for this project's config; retry later")
		return
	}
	if len(s.entries) > 0 {
		if err := r.buf.Append(r.ctx, s.entries); err != nil {
			if adm.pending {
				r.waiting.sub(a.PublicKey, int64(len(s.recs)))
			}
			if errors.Is(err, buffer.ErrFull) {
				ctx.Response.Header.Set("Retry-After", retryAfterFull)
				r.reject(ctx, fasthttp.StatusServiceUnavailable, rejectBufferFull, "failed to queue envelope: buffer full")
			} else {
				ctx.Response.Header.Set("Retry-After", retryAfterFull)
				r.reject(ctx, fasthttp.StatusServiceUnavailable, rejectBufferError, "failed to queue envelope")
				r.log.Error("buffer append failed", "err", err)
			}
			return
		}
	}
	for i, c := range s.classes {
		r.outcomes.accepted[c].add(1, s.items[i])
	}
	for c := range envelope.NumClasses {
		if v.drop[c] && perClass[c] > 0 { // accepted, and dropped by the project's rules
			r.outcomes.accepted[c].add(1, perClass[c])
			r.outcomes.dropped[c][v.why[c]].add(1, perClass[c])
		}
	}

	ctx.SetContentType("application/json")
	s.resp = s.resp[:0]
	if !s.env.Header.EventID.IsZero() {
		s.resp = append(s.resp, `{"id":"`...)
		s.resp = s.env.Header.EventID.AppendHex(s.resp)
		s.resp = append(s.resp, `"}`...)
	} else {
		s.resp = append(s.resp, "{}"...)
	}
	ctx.SetBody(s.resp) // copied into fasthttp's pooled body buffer
}

// retryAfterFull is what a client is told to wait when the buffer is full.
const retryAfterFull = "5"

// validKey accepts what a DSN public key can be: Relay's are 32 hex digits,
// but proxy mode forwards whatever an upstream may understand, so any short
// alphanumeric token passes here; managed mode checks it against configs.
func validKey(k []byte) bool {
	if len(k) == 0 || len(k) > 64 {
		return false
	}
	for _, c := range k {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// allDropped reports whether v drops every class the envelope has.
func allDropped(v *verdict, perClass *[envelope.NumClasses]int) bool {
	for c := range envelope.NumClasses {
		if perClass[c] > 0 && !v.drop[c] {
			return false
		}
	}
	return true
}

// clientAddr is the address filters judge: the first hop of
// X-Forwarded-For when another relay or proxy passed it on, else the peer.
func clientAddr(ctx *fasthttp.RequestCtx) netip.Addr {
	if xff := ctx.Request.Header.Peek("X-Forwarded-For"); len(xff) > 0 {
		return firstAddr(xff)
	}
	a, _ := netip.AddrFromSlice(ctx.RemoteIP())
	return a.Unmap()
}

// firstAddr parses the first address of a forwarded-for chain.
func firstAddr(chain []byte) netip.Addr {
	first, _, _ := bytes.Cut(chain, []byte{','})
	a, err := netip.ParseAddr(string(bytes.TrimSpace(first)))
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap()
}

// appendClientIP appends the forwarded-for chain as the next relay should
// see it: the incoming X-Forwarded-For, then the peer address.
func appendClientIP(dst []byte, ctx *fasthttp.RequestCtx) []byte {
	if xff := ctx.Request.Header.Peek("X-Forwarded-For"); len(xff) > 0 {
		dst = append(dst, xff...)
		dst = append(dst, ", "...)
	}
	if addr, ok := netip.AddrFromSlice(ctx.RemoteIP()); ok {
		dst = addr.Unmap().AppendTo(dst)
	}
	return dst
}
