package relay

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/baton-relay/baton/buffer"
	"github.com/baton-relay/baton/envelope"
	"github.com/baton-relay/baton/relay/intake"
	"github.com/baton-relay/baton/relay/record"
)

// scratch is the per-request memory of the ingest path, pooled so that a
// request in steady state allocates nothing of its own. Every buffer that
// grows with the request is an intake.Buf charged to lease, the request's
// share of the relay's memory budget for bodies.
type scratch struct {
	lease   intake.Lease
	env     envelope.Envelope
	raw     intake.Buf // the body as read off the wire
	body    intake.Buf // the decoded body, when the request was compressed
	conv    intake.Buf // an envelope built from a store/minidump/security body
	dump    intake.Buf // a minidump out of its compression container
	dumpErr error      // the budget failure that stopped decoding dump
	zbuf    intake.Buf // one compressed class envelope, on its way into recs
	recs    intake.Buf // the class records, back to back
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

// maxPooledBuf keeps the arrays of large requests out of the pool: the
// pool holds memory no lease pays for, so only small arrays stay in it.
const maxPooledBuf = 64 << 10

// begin starts a request that reads a body: it refuses new work during
// shutdown, and takes a scratch whose lease draws on the body budget. The
// caller must end(s).
func (r *Relay) begin(ctx *fasthttp.RequestCtx) (*scratch, bool) {
	if r.closing.Load() {
		ctx.Response.Header.Set("Retry-After", retryAfterFull)
		r.reject(ctx, fasthttp.StatusServiceUnavailable, rejectShutdown, "relay is shutting down")
		return nil, false
	}
	s := scratchPool.Get().(*scratch)
	s.lease = r.bodies.Lease()
	return s, true
}

// end hands the request's memory back: the lease to the budget, small
// arrays to the pool, large ones to the allocator.
func (r *Relay) end(s *scratch) {
	s.lease.Release()
	s.env.Reset()
	s.dumpErr = nil
	s.raw.Recycle(maxPooledBuf)
	s.body.Recycle(maxPooledBuf)
	s.conv.Recycle(maxPooledBuf)
	s.dump.Recycle(maxPooledBuf)
	s.zbuf.Recycle(maxPooledBuf)
	s.recs.Recycle(maxPooledBuf)
	clear(s.entries[:cap(s.entries)]) // drop references to request memory
	scratchPool.Put(s)
}

// readBody reads the request body off the wire and undoes its
// Content-Encoding, holding at most limit bytes of either (and at most
// limits.max_decompressed_size decoded) and only what the request's lease
// can reserve. On failure it has answered the request.
func (r *Relay) readBody(ctx *fasthttp.RequestCtx, s *scratch, limit int) ([]byte, bool) {
	enc, err := intake.ParseEncoding(ctx.Request.Header.ContentEncoding())
	if err != nil {
		r.reject(ctx, fasthttp.StatusBadRequest, rejectEncoding,
			"unsupported content encoding "+strconv.Quote(string(ctx.Request.Header.ContentEncoding())))
		return nil, false
	}
	var raw []byte
	if stream := ctx.RequestBodyStream(); stream != nil {
		n := ctx.Request.Header.ContentLength() // -1: chunked
		if err := intake.Read(&s.raw, stream, n, limit, &s.lease); err != nil {
			r.refuseBody(ctx, err, "read", "request body")
			return nil, false
		}
		raw = s.raw.B
	} else { // a body the handler set itself (GET /store/ from the query)
		raw = ctx.Request.Body()
	}
	if enc == intake.Identity {
		return raw, true
	}
	if err := intake.Decode(&s.body, enc, raw, min(limit, r.maxDecoded), &s.lease); err != nil {
		r.refuseBody(ctx, err, "decode", "decompressed body")
		return nil, false
	}
	return s.body.B, true
}

// refuseBody answers a request whose body could not be read: what passes a
// size limit or the whole budget is 413, a budget others hold is 503 with
// Retry-After, a broken stream 400 (408 when the client was too slow).
func (r *Relay) refuseBody(ctx *fasthttp.RequestCtx, err error, verb, what string) {
	var netErr interface{ Timeout() bool }
	switch {
	case errors.Is(err, intake.ErrTooLarge):
		r.reject(ctx, fasthttp.StatusRequestEntityTooLarge, rejectTooLarge, what+" exceeds the size limit")
	case errors.Is(err, intake.ErrOverBudget):
		r.reject(ctx, fasthttp.StatusRequestEntityTooLarge, rejectTooLarge,
			what+" needs more memory than server.max_inflight_bytes allows one request")
	case errors.Is(err, intake.ErrBusy):
		ctx.Response.Header.Set("Retry-After", "1")
		r.reject(ctx, fasthttp.StatusServiceUnavailable, rejectOverload,
			"relay overloaded: too many request bytes in memory; retry later")
	case errors.As(err, &netErr) && netErr.Timeout():
		r.reject(ctx, fasthttp.StatusRequestTimeout, rejectInvalid, "request body read timed out")
	case verb == "decode":
		r.reject(ctx, fasthttp.StatusBadRequest, rejectEncoding, "failed to decode request body: "+err.Error())
	default: // the client broke off, or sent a malformed chunked body
		r.reject(ctx, fasthttp.StatusBadRequest, rejectInvalid, "failed to "+verb+" request body: "+err.Error())
	}
}

// handleEnvelope serves POST /api/{pid}/envelope/.
func (r *Relay) handleEnvelope(ctx *fasthttp.RequestCtx, pid uint64) {
	s, ok := r.begin(ctx)
	if !ok {
		return
	}
	defer r.end(s)

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
	rec := record.Record{
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
	s.recs.B, s.offs, s.classes, s.items = s.recs.B[:0], s.offs[:0], s.classes[:0], s.items[:0]
	s.entries = s.entries[:0]
	if err := r.reserveRecords(s, &perClass, v); err != nil {
		r.refuseBody(ctx, err, "hold", "request")
		return
	}
	for c := range envelope.NumClasses {
		if perClass[c] == 0 || v.drop[c] {
			continue
		}
		rec.Class, rec.Items = c, perClass[c]
		s.offs = append(s.offs, len(s.recs.B))
		s.classes = append(s.classes, c)
		s.items = append(s.items, rec.Items)
		start := len(s.recs.B)
		s.recs.B = record.AppendHeader(s.recs.B, &rec)
		body := len(s.recs.B)
		s.recs.B = s.env.AppendClass(s.recs.B, c)
		if lim := r.maxEnvelope[c]; lim > 0 && len(s.recs.B)-body > lim {
			// Acknowledged, it could only be dropped: its sink cannot take it.
			r.reject(ctx, fasthttp.StatusRequestEntityTooLarge, rejectTooLarge, fmt.Sprintf(
				"the %s items of this envelope (%d bytes) are larger than their destination accepts (%d bytes)",
				c, len(s.recs.B)-body, lim))
			return
		}
		s.recs.B, s.zbuf.B = record.Compress(s.recs.B, start, body, s.zbuf.B)
	}
	s.offs = append(s.offs, len(s.recs.B))

	for i, c := range s.classes {
		stream := r.stream(c, a.PublicKey)
		if adm.pending {
			stream = stream.Pending()
		}
		s.entries = append(s.entries, buffer.Entry{Stream: stream.ID(), Value: s.recs.B[s.offs[i]:s.offs[i+1]]})
	}
	// The commit batch copies the records once more.
	if err := s.lease.Grow(len(s.recs.B)); err != nil {
		r.refuseBody(ctx, err, "hold", "request")
		return
	}
	if adm.pending && !r.waiting.add(a.PublicKey, int64(len(s.recs.B))) {
		ctx.Response.Header.Set("Retry-After", retryAfterFull)
		r.reject(ctx, fasthttp.StatusServiceUnavailable, rejectOverload, "too much data is waiting for this project's config; retry later")
		return
	}
	if len(s.entries) > 0 {
		if err := r.buf.Append(r.ctx, s.entries); err != nil {
			if adm.pending {
				r.waiting.sub(a.PublicKey, int64(len(s.recs.B)))
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
		r.outcomes.Accept(c, 1, s.items[i])
	}
	for c := range envelope.NumClasses {
		if v.drop[c] && perClass[c] > 0 { // accepted, and dropped by the project's rules
			r.outcomes.Accept(c, 1, perClass[c])
			r.outcomes.Drop(c, v.why[c], 1, perClass[c])
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

// reserveRecords reserves, before they are built, the records of the
// classes v keeps and the scratch their compression needs.
func (r *Relay) reserveRecords(s *scratch, perClass *[envelope.NumClasses]int, v *verdict) error {
	need, classes := 0, 0
	for c := range envelope.NumClasses {
		if perClass[c] > 0 && !v.drop[c] {
			classes++
		}
	}
	for i := range s.env.Items {
		it := &s.env.Items[i]
		if !v.drop[it.Class] {
			need += len(it.Header) + len(it.Payload) + 32 // newlines and a length field
		}
	}
	need += classes * (len(s.env.Header.Raw) + 1 + record.MaxHeader)
	if err := s.recs.Reserve(need, &s.lease); err != nil {
		return err
	}
	if z := record.CompressScratch(need); z > 0 {
		return s.zbuf.Reserve(z, &s.lease)
	}
	return nil
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
