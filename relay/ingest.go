package relay

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
	"go.opentelemetry.io/otel/trace"

	"github.com/baton-relay/baton/buffer"
	"github.com/baton-relay/baton/envelope"
	"github.com/baton-relay/baton/relay/intake"
	"github.com/baton-relay/baton/relay/normalize"
	"github.com/baton-relay/baton/relay/policy"
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
	proc    intake.Buf // normalized and scrubbed payloads and their headers
	trusted bool       // sent by a relay whose signature was verified
	// invalid is Relay's discard reason of each class processing dropped.
	invalid [envelope.NumClasses]string
	recs    intake.Buf // the class records, back to back
	offs    []int
	classes []envelope.Class
	items   []int // items per class, parallel to classes
	entries []buffer.Entry
	ip      []byte
	hdr     []byte // an envelope header rewritten with a generated event_id
	mark    []byte // the durable mark of an error's trace (tailMark)
	marked  bool   // mark is the last of entries
	verdict policy.Verdict
	limits  []byte // X-Sentry-Rate-Limits
	// span is the request's ingest span and sctx its context, nil unless
	// the request is sampled (tracing.go).
	span trace.Span
	sctx context.Context
	// breakdowns is the project's breakdownsV2 for normalize.Input.
	breakdowns []normalize.Breakdown
}

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

// maxPooledBuf keeps the arrays of large requests out of the pool: the
// pool holds memory no lease pays for, so only small arrays stay in it.
const maxPooledBuf = 64 << 10

// result is what an ingest request came to. The steps (admit, frame,
// commit) fill it and respond alone turns it into HTTP, so the converting
// endpoints read the outcome here, never back from the response.
type result struct {
	status     int          // fasthttp.StatusOK when accepted
	why        rejectReason // when refused: the counter it goes to
	detail     string       // when refused: the error body and X-Sentry-Error
	retryAfter string       // Retry-After, when set
	// limits is X-Sentry-Rate-Limits, set on acceptance as on refusal. It
	// is scratch memory, valid until the request's end.
	limits []byte
	id     envelope.EventID // the accepted envelope's event id, if it has one
}

// accepted is the result of a step that let the request through.
var accepted = result{status: fasthttp.StatusOK}

func (res *result) ok() bool { return res.status == fasthttp.StatusOK }

// refusal is a request refused with status, counted under why.
func refusal(status int, why rejectReason, detail string) result {
	return result{status: status, why: why, detail: detail}
}

// busy is a 503 that tells the client when to retry.
func busy(why rejectReason, retryAfter, detail string) result {
	return result{status: fasthttp.StatusServiceUnavailable, why: why, detail: detail, retryAfter: retryAfter}
}

// respond writes res: the one place an ingest outcome becomes HTTP. A
// refusal is counted by its reason and answered in Relay's error shape; an
// acceptance is answered with the event id.
func (r *Relay) respond(ctx *fasthttp.RequestCtx, res *result) {
	if len(res.limits) > 0 {
		ctx.Response.Header.SetBytesV("X-Sentry-Rate-Limits", res.limits)
	}
	if res.retryAfter != "" {
		ctx.Response.Header.Set("Retry-After", res.retryAfter)
	}
	if !res.ok() {
		r.rejected[res.why].Add(1)
		jsonError(ctx, res.status, res.detail)
		return
	}
	ctx.SetContentType("application/json")
	var b [48]byte
	body := b[:0]
	if !res.id.IsZero() {
		body = append(body, `{"id":"`...)
		body = res.id.AppendHex(body)
		body = append(body, `"}`...)
	} else {
		body = append(body, "{}"...)
	}
	ctx.SetBody(body) // copied into fasthttp's pooled body buffer
}

// begin starts a request that reads a body, answering it when it cannot
// start (see start). The caller must end(s).
func (r *Relay) begin(ctx *fasthttp.RequestCtx) (*scratch, bool) {
	s, res := r.start()
	if !res.ok() {
		r.respond(ctx, &res)
		return nil, false
	}
	return s, true
}

// start refuses new work during shutdown, else takes a scratch whose lease
// draws on the body budget. The caller must end(s).
func (r *Relay) start() (*scratch, result) {
	if r.closing.Load() {
		return nil, busy(rejectShutdown, retryAfterFull, "relay is shutting down")
	}
	s := scratchPool.Get().(*scratch)
	s.lease = r.bodies.Lease()
	return s, accepted
}

// end hands the request's memory back: the lease to the budget, small
// arrays to the pool, large ones to the allocator.
func (r *Relay) end(s *scratch) {
	s.endSpan()
	s.lease.Release()
	s.env.Reset()
	s.dumpErr = nil
	s.raw.Recycle(maxPooledBuf)
	s.body.Recycle(maxPooledBuf)
	s.conv.Recycle(maxPooledBuf)
	s.dump.Recycle(maxPooledBuf)
	s.zbuf.Recycle(maxPooledBuf)
	s.proc.Recycle(maxPooledBuf)
	s.recs.Recycle(maxPooledBuf)
	s.trusted = false
	clear(s.entries[:cap(s.entries)]) // drop references to request memory
	scratchPool.Put(s)
}

// readBody is body for callers that answer themselves: on failure it has
// answered the request.
func (r *Relay) readBody(ctx *fasthttp.RequestCtx, s *scratch, limit int) ([]byte, bool) {
	b, res := r.body(ctx, s, limit)
	if !res.ok() {
		r.respond(ctx, &res)
		return nil, false
	}
	return b, true
}

// body reads the request body off the wire and undoes its
// Content-Encoding, holding at most limit bytes of either (and at most
// limits.max_decompressed_size decoded) and only what the request's lease
// can reserve.
func (r *Relay) body(ctx *fasthttp.RequestCtx, s *scratch, limit int) ([]byte, result) {
	enc, err := intake.ParseEncoding(ctx.Request.Header.ContentEncoding())
	if err != nil {
		return nil, refusal(fasthttp.StatusBadRequest, rejectEncoding,
			"unsupported content encoding "+strconv.Quote(string(ctx.Request.Header.ContentEncoding())))
	}
	var raw []byte
	if stream := ctx.RequestBodyStream(); stream != nil {
		n := ctx.Request.Header.ContentLength() // -1: chunked
		if err := intake.Read(&s.raw, stream, n, limit, &s.lease); err != nil {
			return nil, bodyRefusal(err, "read", "request body")
		}
		raw = s.raw.B
	} else { // a body the handler set itself (GET /store/ from the query)
		raw = ctx.Request.Body()
	}
	if enc == intake.Identity {
		return raw, accepted
	}
	if err := intake.Decode(&s.body, enc, raw, min(limit, r.maxDecoded), &s.lease); err != nil {
		return nil, bodyRefusal(err, "decode", "decompressed body")
	}
	return s.body.B, accepted
}

// bodyRefusal refuses a request whose body could not be read or held: what
// passes a size limit or the whole budget is 413, a budget others hold is
// 503 with Retry-After, a broken stream 400 (408 when the client was too
// slow).
func bodyRefusal(err error, verb, what string) result {
	var netErr interface{ Timeout() bool }
	switch {
	case errors.Is(err, intake.ErrTooLarge):
		return refusal(fasthttp.StatusRequestEntityTooLarge, rejectTooLarge, what+" exceeds the size limit")
	case errors.Is(err, intake.ErrOverBudget):
		return refusal(fasthttp.StatusRequestEntityTooLarge, rejectTooLarge,
			what+" needs more memory than server.max_inflight_bytes allows one request")
	case errors.Is(err, intake.ErrBusy):
		return busy(rejectOverload, "1", "relay overloaded: too many request bytes in memory; retry later")
	case errors.As(err, &netErr) && netErr.Timeout():
		return refusal(fasthttp.StatusRequestTimeout, rejectInvalid, "request body read timed out")
	case verb == "decode":
		return refusal(fasthttp.StatusBadRequest, rejectEncoding, "failed to decode request body: "+err.Error())
	default: // the client broke off, or sent a malformed chunked body
		return refusal(fasthttp.StatusBadRequest, rejectInvalid, "failed to "+verb+" request body: "+err.Error())
	}
}

// handleEnvelope serves POST /api/{pid}/envelope/.
func (r *Relay) handleEnvelope(ctx *fasthttp.RequestCtx, pid uint64) {
	s, ok := r.begin(ctx)
	if !ok {
		return
	}
	defer r.end(s)

	if ok, s.trusted = r.verifyRelayEnvelope(ctx); !ok {
		return
	}
	r.traceIngest(ctx, s, "envelope", s.trusted)
	res := r.ingestEnvelope(ctx, pid, s)
	s.spanResult(pid, &res)
	r.respond(ctx, &res)
}

// ingestEnvelope authenticates, reads and parses an envelope and accepts
// it. Auth comes from the request, or else from the envelope header's dsn.
func (r *Relay) ingestEnvelope(ctx *fasthttp.RequestCtx, pid uint64, s *scratch) result {
	var a sdkAuth
	aerr := parseAuth(&ctx.Request, &a)
	if aerr != nil && !errors.Is(aerr, errAuthMissing) {
		return authRefusal(aerr)
	}
	s.phase("authenticated")
	body, res := r.body(ctx, s, r.limits.MaxEnvelopeSize)
	if !res.ok() {
		return res
	}
	s.phase("decoded")
	if err := s.env.Parse(body, &r.limits); err != nil {
		return parseRefusal(err)
	}
	s.phase("parsed")
	if len(s.env.Items) == 0 { // Relay: 400 (unknown items count: they are kept)
		return refusal(fasthttp.StatusBadRequest, rejectInvalid, "empty envelope")
	}
	if aerr != nil { // no request auth: fall back to the envelope header's dsn
		if s.env.Header.DSN == "" {
			return authRefusal(errAuthMissing)
		}
		dsn, err := envelope.ParseDSN(s.env.Header.DSN)
		if err != nil {
			return authRefusal(errAuthInvalid)
		}
		if dsn.ProjectID != pid {
			return refusal(fasthttp.StatusBadRequest, rejectProjectID, "project id in the path does not match the envelope's dsn")
		}
		a.PublicKey = []byte(dsn.PublicKey)
	}
	return r.accept(ctx, pid, &a, s)
}

// admitted is what admit learned about a request, for the later steps.
type admitted struct {
	pid      uint64
	key      []byte
	adm      policy.Admission
	perClass [envelope.NumClasses]int // items of each class
	origin   []byte
	// limit: the door left the event filters and Limit to frame, to run
	// on the normalized event (Relay's order: normalize, filter, quotas).
	limit bool
}

// accept takes the envelope parsed into s through the ingest steps: admit
// (key, project, filters and quotas), frame (one record per kept class)
// and commit (durable append, outcomes). The result says how to answer;
// the caller responds before it ends s.
func (r *Relay) accept(ctx *fasthttp.RequestCtx, pid uint64, a *sdkAuth, s *scratch) result {
	in := admitted{pid: pid, key: a.PublicKey}
	res := accepted
	if !r.admit(ctx, &in, s, &res) {
		return res
	}
	s.phase("admitted") // key, project, filters, quotas
	if !r.frame(ctx, &in, a, s, &res) {
		return res
	}
	s.phase("framed")
	if !r.commit(&in, s, &res) {
		return res
	}
	s.phase("committed") // fsync'd
	r.observeAck(s.classes, ctx.Time())
	res.id = s.env.Header.EventID
	return res
}

// admit judges the request at the door: a valid key, the project's rules
// for key and origin, then into s.verdict the upstream's cached limits and
// the client-address filter and, when events are judged as received (no
// processor), the event filters, quotas and rate; with a processor those
// wait for the normalized event (frame). It reports false when res
// refuses the request.
func (r *Relay) admit(ctx *fasthttp.RequestCtx, in *admitted, s *scratch, res *result) bool {
	if !validKey(in.key) {
		*res = authRefusal(errAuthInvalid)
		return false
	}
	in.origin = requestOrigin(&ctx.Request)
	in.adm = r.projects().Admit(in.pid, in.key, in.origin)
	if in.adm.Refusal != policy.Admitted {
		*res = doorRefusal(in.adm.Refusal)
		return false
	}
	setClientOptionsHint(ctx, in.adm.State)
	for i := range s.env.Items {
		in.perClass[s.env.Items[i].Class]++
	}
	v := &s.verdict
	addr := func() netip.Addr { return clientAddr(ctx) }
	if r.proc == nil { // filters judge the event as received
		r.enforcer.Apply(v, &in.adm, in.key, &in.perClass, s.env.Header.Raw, addr,
			func() (envelope.ItemType, []byte) { return policy.EventOf(&s.env) })
	} else { // the rest once process has normalized the event (frame)
		in.limit = r.enforcer.Door(v, &in.adm, in.key, &in.perClass, s.env.Header.Raw, addr)
	}
	return r.limited(ctx, in, s, res)
}

// limited reports the verdict's rate limits in res and refuses the request
// with 429 when they leave nothing to keep; it reports false then.
func (r *Relay) limited(ctx *fasthttp.RequestCtx, in *admitted, s *scratch, res *result) bool {
	v := &s.verdict
	if len(v.RateLimits) == 0 {
		return true
	}
	s.limits = appendRateLimits(s.limits[:0], v.RateLimits)
	res.limits = s.limits
	if allDropped(v, &in.perClass) {
		// Nothing left to keep: the client is told to back off, and its
		// SDK records the loss (Relay answers the same, and reports it).
		r.reportVerdict(in, s, func() netip.Addr { return clientAddr(ctx) })
		*res = refusal(fasthttp.StatusTooManyRequests, rejectRateLimited, "event submission rejected with_reason: RateLimited")
		res.limits = s.limits
		res.retryAfter = strconv.FormatInt(retryAfter(v.RateLimits), 10)
		return false
	}
	return true
}

// frame builds, into s.recs, one record per class the verdict keeps, and
// their buffer entries. It refuses a class part larger than its sink takes.
func (r *Relay) frame(ctx *fasthttp.RequestCtx, in *admitted, a *sdkAuth, s *scratch, res *result) bool {
	if s.env.Header.EventID.IsZero() && s.env.NeedsEventID() {
		// Like Relay: an envelope that creates an event gets an id here,
		// so the client learns it and every relay after us keeps it.
		s.hdr = s.env.SetEventID(s.hdr[:0], envelope.NewEventID())
	}
	now := time.Now()
	clear(s.invalid[:])
	if r.proc != nil {
		s.proc.B = s.proc.B[:0]
		if err := r.process(ctx, in, s, now); err != nil {
			*res = withLimits(bodyRefusal(err, "hold", "request"), res)
			return false
		}
		if in.limit {
			r.enforcer.Limit(&s.verdict, &in.adm, in.key, &in.perClass, s.env.Header.Raw)
			if !r.limited(ctx, in, s, res) {
				return false
			}
		}
	}
	s.ip = appendClientIP(s.ip[:0], ctx)
	rec := record.Record{
		ReceivedAt: now.UnixNano(),
		ProjectID:  in.pid,
		PublicKey:  in.key,
		Client:     a.Client,
		ClientIP:   s.ip,
		Origin:     in.origin,
	}
	if len(rec.Client) == 0 {
		rec.Client = ctx.Request.Header.UserAgent()
	}
	if s.span != nil { // the forwarder's span links to this one
		sc := s.span.SpanContext()
		rec.TraceID, rec.SpanID = sc.TraceID(), sc.SpanID()
	}
	s.recs.B, s.offs, s.classes, s.items = s.recs.B[:0], s.offs[:0], s.classes[:0], s.items[:0]
	s.entries = s.entries[:0]
	v := &s.verdict
	if err := r.reserveRecords(s, &in.perClass, v, record.HeaderLen(&rec)); err != nil {
		*res = withLimits(bodyRefusal(err, "hold", "request"), res)
		return false
	}
	for c := range envelope.NumClasses {
		if in.perClass[c] == 0 || v.Drop[c] {
			continue
		}
		rec.Class, rec.Items = c, in.perClass[c]
		s.offs = append(s.offs, len(s.recs.B))
		s.classes = append(s.classes, c)
		s.items = append(s.items, rec.Items)
		start := len(s.recs.B)
		s.recs.B = record.AppendHeader(s.recs.B, &rec)
		body := len(s.recs.B)
		s.recs.B = s.env.AppendClass(s.recs.B, c)
		if lim := r.maxEnvelope[c]; lim > 0 && len(s.recs.B)-body > lim {
			// Acknowledged, it could only be dropped: its sink cannot take it.
			*res = withLimits(refusal(fasthttp.StatusRequestEntityTooLarge, rejectTooLarge, fmt.Sprintf(
				"the %s items of this envelope (%d bytes) are larger than their destination accepts (%d bytes)",
				c, len(s.recs.B)-body, lim)), res)
			return false
		}
		s.recs.B, s.zbuf.B = record.Compress(s.recs.B, start, body, s.zbuf.B)
	}
	s.offs = append(s.offs, len(s.recs.B))

	for i, c := range s.classes {
		stream := r.stream(c, in.key)
		if in.adm.Pending {
			stream = stream.Pending()
		} else {
			stream = r.tailStream(c, in.pid, in.adm.State, stream)
		}
		s.entries = append(s.entries, buffer.Entry{Stream: stream.ID(), Value: s.recs.B[s.offs[i]:s.offs[i+1]]})
	}
	return true
}

// commit appends the records durably and counts their outcomes: what the
// project's rules dropped is accepted and dropped at once.
func (r *Relay) commit(in *admitted, s *scratch, res *result) bool {
	if !r.reserveCommit(in, s, res) {
		return false
	}
	mark := r.tailMark(in, s)
	if len(s.entries) > 0 {
		if err := r.buf.Append(r.ctx, s.entries); err != nil {
			r.unreserveCommit(in, s)
			r.appendFailed(s, err, res)
			return false
		}
	}
	r.committed(in, s)
	r.markTail(mark, s)
	return true
}

// reserveCommit charges what committing s's records holds: the commit
// batch's copy, and the project's waiting bytes when its config is
// pending. It reports false when res refuses the request.
func (r *Relay) reserveCommit(in *admitted, s *scratch, res *result) bool {
	// The commit batch copies the records once more.
	if err := s.lease.Grow(len(s.recs.B)); err != nil {
		*res = withLimits(bodyRefusal(err, "hold", "request"), res)
		return false
	}
	if in.adm.Pending && !r.waiting.add(in.key, int64(len(s.recs.B))) {
		*res = withLimits(busy(rejectOverload, retryAfterFull, "too much data is waiting for this project's config; retry later"), res)
		return false
	}
	return true
}

// unreserveCommit undoes reserveCommit's waiting bytes after a failed append.
func (r *Relay) unreserveCommit(in *admitted, s *scratch) {
	if in.adm.Pending {
		r.waiting.sub(in.key, int64(len(s.recs.B)))
	}
}

// appendFailed refuses the request whose records the buffer did not take.
func (r *Relay) appendFailed(s *scratch, err error, res *result) {
	if errors.Is(err, buffer.ErrFull) {
		*res = withLimits(busy(rejectBufferFull, retryAfterFull, "failed to queue envelope: buffer full"), res)
		return
	}
	*res = withLimits(busy(rejectBufferError, retryAfterFull, "failed to queue envelope"), res)
	r.log.ErrorContext(s.logCtx(), "buffer append failed", "err", err)
}

// committed counts the outcomes of s's committed records: what the
// project's rules dropped is accepted and dropped at once.
func (r *Relay) committed(in *admitted, s *scratch) {
	for i, c := range s.classes {
		r.outcomes.Accept(c, 1, s.items[i])
	}
	r.reportVerdict(in, s, func() netip.Addr { return firstAddr(s.ip) })
	v := &s.verdict
	for c := range envelope.NumClasses {
		if v.Drop[c] && in.perClass[c] > 0 { // accepted, and dropped by the project's rules
			r.outcomes.Accept(c, 1, in.perClass[c])
			r.outcomes.Drop(c, v.Why[c], 1, in.perClass[c])
		}
	}
}

// withLimits is refusal next keeping the rate limits prev reported: the
// header stands whatever else went wrong after the verdict.
func withLimits(next result, prev *result) result {
	next.limits = prev.limits
	return next
}

// reserveRecords reserves, before they are built, the records of the
// classes v keeps, with headers of hdrLen bytes, and the scratch their
// compression needs.
func (r *Relay) reserveRecords(s *scratch, perClass *[envelope.NumClasses]int, v *policy.Verdict, hdrLen int) error {
	need, classes := 0, 0
	for c := range envelope.NumClasses {
		if perClass[c] > 0 && !v.Drop[c] {
			classes++
		}
	}
	for i := range s.env.Items {
		it := &s.env.Items[i]
		if !v.Drop[it.Class] {
			need += len(it.Header) + len(it.Payload) + 32 // newlines and a length field
		}
	}
	need += classes * (len(s.env.Header.Raw) + 1 + hdrLen)
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
func allDropped(v *policy.Verdict, perClass *[envelope.NumClasses]int) bool {
	for c := range envelope.NumClasses {
		if perClass[c] > 0 && !v.Drop[c] {
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

// maxForwardedFor bounds the forwarded-for chain a record keeps: a few
// dozen hops, more than any real chain, and little WAL for a forged one.
const maxForwardedFor = 512

// appendClientIP appends the forwarded-for chain as the next relay should
// see it: the incoming X-Forwarded-For, then the peer address, trimmed to
// maxForwardedFor bytes by trimChain.
func appendClientIP(dst []byte, ctx *fasthttp.RequestCtx) []byte {
	start := len(dst)
	if xff := ctx.Request.Header.Peek("X-Forwarded-For"); len(xff) > 0 {
		dst = append(dst, xff...)
		dst = append(dst, ", "...)
	}
	if addr, ok := netip.AddrFromSlice(ctx.RemoteIP()); ok {
		dst = addr.Unmap().AppendTo(dst)
	}
	if len(dst)-start > maxForwardedFor {
		dst = trimChain(dst, start, maxForwardedFor)
	}
	return dst
}

// trimChain shortens the chain dst[start:] to about max bytes by dropping
// whole addresses from its middle, never cutting one: the first address
// stays (the original client, which filters judge by firstAddr and Kafka
// sinks send as client_ip), and so do the last ones, the hops nearest to
// Baton, the peer always.
func trimChain(dst []byte, start, max int) []byte {
	first, rest, ok := bytes.Cut(dst[start:], []byte{','})
	if !ok {
		return dst
	}
	last := bytes.LastIndexByte(rest, ',')
	tail := bytes.TrimSpace(rest[last+1:]) // the peer, kept in any case
	for last >= 0 {
		i := bytes.LastIndexByte(rest[:last], ',')
		longer := bytes.TrimSpace(rest[i+1:])
		if len(first)+2+len(longer) > max {
			break
		}
		tail, last = longer, i
	}
	if len(tail) == len(bytes.TrimSpace(rest)) {
		return dst // nothing to drop
	}
	// tail lies past first in dst: append it at the end, then move it
	// down behind first (append moves overlapping bytes safely).
	end := len(dst)
	dst = append(dst, tail...)
	moved := dst[end:]
	return append(append(dst[:start+len(first)], ", "...), moved...)
}
