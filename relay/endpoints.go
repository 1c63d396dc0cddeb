package relay

import (
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"slices"
	"strconv"
	"strings"

	"github.com/valyala/fasthttp"

	"github.com/baton-relay/baton/buffer"
	"github.com/baton-relay/baton/envelope"
	"github.com/baton-relay/baton/relay/aggregate"
	"github.com/baton-relay/baton/relay/intake"
	"github.com/baton-relay/baton/relay/outcome"
	"github.com/baton-relay/baton/relay/project"
	"github.com/baton-relay/baton/relay/record"
	"github.com/baton-relay/baton/relay/tailsample"
)

// The legacy and browser endpoints all turn their body into an envelope and
// then take the same path as /envelope/: parse, split by class, append to
// the buffer, answer when durable.

// transparentGIF answers GET /store/ (the legacy image-beacon transport).
var transparentGIF = []byte("GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\x00\x00\x00!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;")

// convSlack is what a conversion adds to its body, besides what the
// converters charge themselves (a decompressed minidump, multipart copies):
// envelope and item headers, an event id, a store event's extra fields. A
// store event that inflates (base64 and zlib) grows past it, at most to
// limits.max_event_size.
const convSlack = 16 << 10

// converted runs the shared tail of every converting endpoint: request auth
// is required (there is no envelope dsn to fall back on), the body is
// decoded and converted by conv, and the result is accepted like an
// envelope. It answers the request and returns the result, which the
// endpoint may reshape on success (its limits are no longer valid).
func (r *Relay) converted(ctx *fasthttp.RequestCtx, pid uint64, limit int,
	conv func(s *scratch, body []byte) ([]byte, error)) result {
	s, res := r.start()
	if res.ok() {
		defer r.end(s)
		r.traceIngest(ctx, s, "", false) // named by its path; SDK endpoints
		res = r.convert(ctx, pid, limit, s, conv)
		s.spanResult(pid, &res)
	}
	r.respond(ctx, &res)
	return res
}

func (r *Relay) convert(ctx *fasthttp.RequestCtx, pid uint64, limit int, s *scratch,
	conv func(s *scratch, body []byte) ([]byte, error)) result {
	var a sdkAuth
	body, res := r.convertBody(ctx, limit, s, &a)
	if !res.ok() {
		return res
	}
	env, err := conv(s, body)
	if errors.Is(err, intake.ErrBusy) || errors.Is(err, intake.ErrOverBudget) {
		return bodyRefusal(err, "hold", "request")
	}
	if err != nil {
		return parseRefusal(err)
	}
	if err := s.env.Parse(env, &r.limits); err != nil {
		return parseRefusal(err)
	}
	return r.accept(ctx, pid, &a, s)
}

// convertBody authenticates a converting request into a and reads its body,
// reserving room for the envelope made of it.
func (r *Relay) convertBody(ctx *fasthttp.RequestCtx, limit int, s *scratch, a *sdkAuth) ([]byte, result) {
	if err := parseAuth(&ctx.Request, a); err != nil {
		return nil, authRefusal(err)
	}
	body, res := r.body(ctx, s, limit)
	if !res.ok() {
		return nil, res
	}
	// A converted envelope is about the size of its body; converters charge
	// what they add beyond convSlack.
	if err := s.conv.Reserve(len(body)+convSlack, &s.lease); err != nil {
		return nil, bodyRefusal(err, "hold", "request")
	}
	return body, accepted
}

// maxBatchEnvelopes bounds the envelopes one request may become (the CSP
// reports of a Reporting API batch): each is admitted and framed in a
// scratch of its own until the batch is committed.
const maxBatchEnvelopes = 100

// convertedBatch is converted for a body that may become several envelopes,
// which conv appends to s.conv with their end offsets. Each is admitted and
// framed on its own, as Relay handles each report of a batch: one that a
// quota refuses is dropped with outcome rate_limited and the others are
// kept. The records of those kept are committed in one Append: every other
// refusal (auth, size, memory, buffer) refuses the request whole.
func (r *Relay) convertedBatch(ctx *fasthttp.RequestCtx, pid uint64, limit int,
	conv func(s *scratch, body []byte, ends []int) ([]byte, []int, error)) result {
	s, res := r.start()
	if res.ok() {
		defer r.end(s)
		r.traceIngest(ctx, s, "", false)
		res = r.convertBatch(ctx, pid, limit, s, conv)
		s.spanResult(pid, &res)
	}
	r.respond(ctx, &res)
	return res
}

func (r *Relay) convertBatch(ctx *fasthttp.RequestCtx, pid uint64, limit int, s *scratch,
	conv func(s *scratch, body []byte, ends []int) ([]byte, []int, error)) result {
	var a sdkAuth
	body, res := r.convertBody(ctx, limit, s, &a)
	if !res.ok() {
		return res
	}
	envs, ends, err := conv(s, body, nil)
	var le *envelope.LimitError
	switch {
	case errors.Is(err, intake.ErrBusy) || errors.Is(err, intake.ErrOverBudget):
		return bodyRefusal(err, "hold", "request")
	case errors.As(err, &le) && le.Limit == "max_reports": // conv refuses past maxBatchEnvelopes
		return refusal(fasthttp.StatusRequestEntityTooLarge, rejectTooLarge, fmt.Sprintf(
			"the request holds %d reports; at most %d are taken in one request", le.Size, le.Max))
	case err != nil:
		return parseRefusal(err)
	}
	if len(ends) == 1 {
		if err := s.env.Parse(envs, &r.limits); err != nil {
			return parseRefusal(err)
		}
		return r.accept(ctx, pid, &a, s)
	}
	subs := make([]*scratch, 0, len(ends))
	res = r.acceptBatch(ctx, pid, &a, s, envs, ends, &subs)
	for _, t := range subs[min(1, len(subs)):] {
		r.end(t)
	}
	return res
}

// acceptBatch is accept for the envelopes envs holds (ending at ends): the
// first in s, the others each in a scratch of its own, added to subs (s
// first) for the caller to end. An envelope a quota refuses whole is left
// out (limited already reported it rate_limited); the records of the
// others are appended at once. When some were kept the answer is 200 with
// the refused envelope's X-Sentry-Rate-Limits, so the client learns the
// limit without retrying the reports that were kept; only a batch refused
// whole is answered 429 (docs/relay-protocol.md §1.5).
func (r *Relay) acceptBatch(ctx *fasthttp.RequestCtx, pid uint64, a *sdkAuth, s *scratch, envs []byte, ends []int, subs *[]*scratch) (res result) {
	ins := make([]admitted, len(ends))
	kept := make([]bool, len(ends))
	var limited result // the last refusal of an envelope a quota dropped
	res = accepted
	defer func() { // the limits must outlive the other scratches
		if len(res.limits) > 0 {
			s.limits = append(s.limits[:0:0], res.limits...)
			res.limits = s.limits
		}
	}()
	from := 0
	for i, end := range ends {
		t := s
		if i > 0 {
			var started result
			if t, started = r.start(); !started.ok() {
				return started
			}
			t.trusted = s.trusted
		}
		*subs = append(*subs, t)
		if err := t.env.Parse(envs[from:end], &r.limits); err != nil {
			return parseRefusal(err)
		}
		from = end
		ins[i] = admitted{pid: pid, key: a.PublicKey}
		one := accepted
		if !r.admit(ctx, &ins[i], t, &one) || !r.frame(ctx, &ins[i], a, t, &one) {
			if one.status == fasthttp.StatusTooManyRequests && one.why == rejectRateLimited {
				limited = one
				continue
			}
			return withLimits(one, &res)
		}
		kept[i] = true
		if len(one.limits) > 0 { // some of its classes limited
			res.limits = one.limits
		}
	}
	s.phase("framed")
	var entries []buffer.Entry
	for i, t := range *subs {
		if !kept[i] {
			continue
		}
		if !r.reserveCommit(&ins[i], t, &res) {
			for j := range i {
				if kept[j] {
					r.unreserveCommit(&ins[j], (*subs)[j])
				}
			}
			return res
		}
		entries = append(entries, t.entries...)
	}
	if len(entries) > 0 {
		if err := r.buf.Append(r.ctx, entries); err != nil {
			for i, t := range *subs {
				if kept[i] {
					r.unreserveCommit(&ins[i], t)
				}
			}
			r.appendFailed(s, err, &res)
			return res
		}
	}
	s.phase("committed") // fsync'd
	for i, t := range *subs {
		if kept[i] {
			r.committed(&ins[i], t)
			r.observeAck(t.classes, ctx.Time())
		}
	}
	if limited.status != 0 {
		if !slices.Contains(kept, true) {
			return limited
		}
		res.limits = limited.limits
	}
	return res
}

// handleStore serves the legacy /store/ endpoint: a JSON event in the body
// (POST) or in the sentry_data query parameter (GET, answered with a GIF).
func (r *Relay) handleStore(ctx *fasthttp.RequestCtx, pid uint64) {
	if ctx.IsGet() {
		data := ctx.QueryArgs().Peek("sentry_data")
		if len(data) == 0 {
			jsonError(ctx, fasthttp.StatusBadRequest, "missing sentry_data query parameter")
			return
		}
		ctx.Request.SetBody(data) // the GET transport carries the event in the query
		ctx.Request.Header.Del("Content-Encoding")
		if res := r.converted(ctx, pid, r.limits.MaxEventSize, r.fromStore); res.ok() {
			ctx.Response.Reset()
			setCORS(ctx)
			ctx.SetContentType("image/gif")
			ctx.SetBody(transparentGIF)
		}
		return
	}
	if !ctx.IsPost() {
		methodNotAllowed(ctx)
		return
	}
	r.converted(ctx, pid, r.limits.MaxEventSize, r.fromStore)
}

func (r *Relay) fromStore(s *scratch, body []byte) ([]byte, error) {
	var err error
	s.conv.B, _, err = envelope.FromStore(s.conv.B[:0], body)
	return s.conv.B, err
}

// handleMinidump serves crash uploads; crashpad and breakpad expect the event
// id back as a plain hyphenated UUID.
func (r *Relay) handleMinidump(ctx *fasthttp.RequestCtx, pid uint64) {
	if !ctx.IsPost() {
		methodNotAllowed(ctx)
		return
	}
	ct := string(ctx.Request.Header.ContentType())
	multipart := strings.HasPrefix(ct, "multipart/")
	res := r.converted(ctx, pid, r.limits.MaxAttachmentsSize, func(s *scratch, body []byte) ([]byte, error) {
		if multipart { // its parts are copied out of it
			if err := s.lease.Grow(len(body)); err != nil {
				return nil, err
			}
		}
		var err error
		s.conv.B, _, err = envelope.FromMinidumpOptions(s.conv.B[:0], ct, body, r.minidumpOptions(s))
		if s.dumpErr != nil {
			err = s.dumpErr
		}
		return s.conv.B, err
	})
	if res.ok() {
		ctx.Response.Reset()
		setCORS(ctx)
		ctx.SetContentType("text/plain")
		ctx.SetBody(res.id.AppendUUID(ctx.Response.Body()[:0]))
	}
}

// securityTypes are the report content types browsers send (Relay's list).
var securityTypes = []string{
	"application/json", "application/csp-report", "application/expect-ct-report",
	"application/expect-ct-report+json", "application/expect-staple-report", "application/reports+json",
}

// handleSecurity serves CSP, Expect-CT, Expect-Staple and HPKP reports.
func (r *Relay) handleSecurity(ctx *fasthttp.RequestCtx, pid uint64) {
	if !ctx.IsPost() {
		methodNotAllowed(ctx)
		return
	}
	mt, _, _ := mime.ParseMediaType(string(ctx.Request.Header.ContentType()))
	known := false
	for _, t := range securityTypes {
		known = known || mt == t
	}
	if !known {
		r.reject(ctx, fasthttp.StatusUnsupportedMediaType, rejectContentType, "unsupported content type for a security report: "+strconv.Quote(mt))
		return
	}
	q := ctx.QueryArgs()
	release, environment := string(q.Peek("sentry_release")), string(q.Peek("sentry_environment"))
	// A Reporting API batch becomes one envelope per CSP report.
	if res := r.convertedBatch(ctx, pid, r.limits.MaxEventSize, func(s *scratch, body []byte, ends []int) ([]byte, []int, error) {
		// Each envelope of a batch adds its headers, with release and environment.
		if err := s.conv.Reserve(len(body)+convSlack+maxBatchEnvelopes*(256+len(release)+len(environment)), &s.lease); err != nil {
			return nil, nil, err
		}
		var err error
		s.conv.B, ends, err = envelope.FromSecurityReports(s.conv.B[:0], body, release, environment, maxBatchEnvelopes, ends)
		return s.conv.B, ends, err
	}); res.ok() {
		ctx.Response.ResetBody()
	}
}

// handleNEL serves Network Error Logging reports.
func (r *Relay) handleNEL(ctx *fasthttp.RequestCtx, pid uint64) {
	if !ctx.IsPost() {
		methodNotAllowed(ctx)
		return
	}
	if res := r.converted(ctx, pid, r.limits.MaxEventSize, func(s *scratch, body []byte) ([]byte, error) {
		var err error
		s.conv.B, err = envelope.FromNEL(s.conv.B[:0], body)
		return s.conv.B, err
	}); res.ok() {
		ctx.Response.ResetBody()
	}
}

// handleAttachments serves POST /api/{pid}/events/{event_id}/attachments/:
// multipart attachments for an event sent before. Answers 201.
func (r *Relay) handleAttachments(ctx *fasthttp.RequestCtx, pid uint64, rawID []byte) {
	if !ctx.IsPost() {
		methodNotAllowed(ctx)
		return
	}
	id, err := envelope.ParseEventID(string(rawID))
	if err != nil {
		jsonError(ctx, fasthttp.StatusBadRequest, "invalid event id in path")
		return
	}
	ct := string(ctx.Request.Header.ContentType())
	if res := r.converted(ctx, pid, r.limits.MaxAttachmentsSize, func(s *scratch, body []byte) ([]byte, error) {
		// The parts of a multipart body are copied out of it.
		if err := s.lease.Grow(len(body)); err != nil {
			return nil, err
		}
		var err error
		s.conv.B, err = envelope.FromAttachments(s.conv.B[:0], id, ct, body)
		return s.conv.B, err
	}); res.ok() {
		ctx.Response.ResetBody()
		ctx.SetStatusCode(fasthttp.StatusCreated)
	}
}

// Stats is the accounting snapshot served at /api/relay/stats/.
type Stats struct {
	Classes  map[string]outcome.ClassOutcomes `json:"classes"`
	Rejected map[string]int64                 `json:"rejected"`
	// Filtered counts the envelopes each inbound filter dropped, by Relay's
	// filter name (or a generic filter's id); their items are in Classes
	// as dropped "filtered".
	Filtered  map[string]int64 `json:"filtered,omitempty"`
	Recovered outcome.Count    `json:"recovered"`
	Accepted  int64            `json:"accepted_records"`
	Delivered int64            `json:"delivered_records"`
	Dropped   int64            `json:"dropped_records"`
	// Aggregated are raw metric records folded into buckets; Produced the
	// records of flushed buckets (see metrics.aggregate).
	Aggregated int64 `json:"aggregated_records"`
	Produced   int64 `json:"produced_records"`
	Pending    int64 `json:"pending_records"`
	// Waiting is the part of Pending that waits for its project's config.
	Waiting int64 `json:"waiting_records"`
	// Projects are the managed-mode config cache's counters.
	Projects *project.Stats `json:"projects,omitempty"`
	// Bodies is the memory budget of request bodies (server.max_inflight_bytes).
	Bodies BodyStats `json:"bodies"`
	// Aggregator and Cardinality are the metrics stage's state.
	Aggregator  *aggregate.Stats        `json:"aggregator,omitempty"`
	Cardinality *aggregate.LimiterStats `json:"cardinality,omitempty"`
	// Reports is what outcomes.emit_outcomes reported upstream.
	Reports *ReportStats `json:"reports,omitempty"`
	// Outcomes is the part of class client_report that is raw outcome
	// records (emit_outcomes true), counted the same way; absent when
	// there were none.
	Outcomes *outcome.ClassOutcomes `json:"outcomes,omitempty"`
	// TailSampling counts the traces tail sampling decided; absent when
	// tail_sampling.projects is empty outside managed mode.
	TailSampling *tailsample.Stats `json:"tail_sampling,omitempty"`
	// Balanced reports recovered + accepted + produced ==
	// delivered + dropped + aggregated + pending.
	Balanced bool `json:"balanced"`
}

// ReportStats counts the quantities (items, attachment bytes, ...) of the
// drops reported upstream, and of those lost: over the reporter's entry
// budget, or not written to the buffer.
type ReportStats struct {
	Reported int64 `json:"reported"`
	Lost     int64 `json:"lost"`
}

// BodyStats is what request bodies hold of their memory budget.
type BodyStats struct {
	InUse  int64 `json:"in_use_bytes"`
	Peak   int64 `json:"peak_bytes"`
	Budget int64 `json:"budget_bytes"`
}

// Stats returns the outcome counters and the buffer's backlog.
func (r *Relay) Stats() Stats {
	bs := r.buf.Stats()
	pending := byClass(bs.Streams)
	st := Stats{
		Classes:   r.outcomes.Snapshot(&r.recovered, &pending),
		Rejected:  r.rejected.snapshot(),
		Filtered:  r.enforcer.FilterCounts(),
		Recovered: outcome.Total(&r.recovered),
		Bodies:    BodyStats{InUse: r.bodies.Used(), Peak: r.bodies.Peak(), Budget: r.bodies.Max()},
	}
	st.Pending = bs.Pending
	for _, s := range bs.Streams {
		if record.Stream(s.Stream).IsPending() {
			st.Waiting += s.Pending
		}
		if record.Stream(s.Stream).IsMarks() {
			st.Pending -= s.Pending // error marks are no envelope records
		}
	}
	if r.cache != nil {
		ps := r.cache.Stats()
		st.Projects = &ps
	}
	if r.reporter != nil {
		st.Reports = &ReportStats{Reported: r.reporter.Reported(), Lost: r.reporter.Lost()}
	}
	st.Outcomes = r.outcomesStats(bs.Streams)
	if r.tail.on {
		ts := r.tail.index.Stats()
		st.TailSampling = &ts
	}
	if r.aggr != nil {
		as := r.aggr.agg.Stats()
		st.Aggregator = &as
		if r.aggr.lim != nil {
			ls := r.aggr.lim.Stats()
			st.Cardinality = &ls
		}
	}
	for _, c := range st.Classes {
		st.Accepted += c.Accepted.Records
		st.Delivered += c.Delivered.Records
		st.Aggregated += c.Aggregated.Records
		st.Produced += c.Produced.Records
		for _, d := range c.Dropped {
			st.Dropped += d.Records
		}
	}
	st.Balanced = st.Recovered.Records+st.Accepted+st.Produced == st.Delivered+st.Dropped+st.Aggregated+st.Pending
	return st
}

func (r *Relay) handleStats(ctx *fasthttp.RequestCtx) {
	b, err := json.Marshal(r.Stats())
	if err != nil {
		jsonError(ctx, fasthttp.StatusInternalServerError, err.Error())
		return
	}
	ctx.SetContentType("application/json")
	ctx.SetBody(b)
}
