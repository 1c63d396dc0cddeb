package relay

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/baton-relay/baton/buffer"
	"github.com/baton-relay/baton/config"
	"github.com/baton-relay/baton/envelope"
	"github.com/baton-relay/baton/relay/auth"
	"github.com/baton-relay/baton/relay/outcome"
	"github.com/baton-relay/baton/relay/record"
	"github.com/baton-relay/baton/routing"
)

// Raw outcomes (outcomes.emit_outcomes: true, docs/relay-protocol.md §7.2).
// Baton's own drops (flushed by the reporter) and the outcomes internal
// downstream relays POST to /api/0/relays/outcomes/ are written to the
// buffer's outcomes stream (record.Outcomes), one JSON outcome per line,
// at most outcomes.batch_size per record: durable and counted in the
// client_report class (produced, accepted) like any record. The
// forwarder of that stream, and of the client_report streams, whose SDK
// client reports are turned into outcomes as they are sent, delivers them
// through an outcomeSink to where client_report is routed.

// maxOutcomesPerRecord bounds the outcomes of one record: its header
// counts items in 16 bits (config refuses a larger batch_size).
const maxOutcomesPerRecord = 0xffff

// appendOutcomes writes outs to the outcomes stream, outcomes.batch_size
// per record; it answers the records and outcomes written.
func (r *Relay) appendOutcomes(outs []outcome.Raw) (records, items int, err error) {
	per := min(max(r.cfg.Outcomes.BatchSize, 1), maxOutcomesPerRecord)
	rec := record.Record{Class: envelope.ClassClientReport, ReceivedAt: time.Now().UnixNano()}
	var entries []buffer.Entry
	for len(outs) > 0 {
		chunk := outs[:min(per, len(outs))]
		outs = outs[len(chunk):]
		rec.Items = len(chunk)
		v := record.Append(nil, &rec, outcome.AppendLines(nil, chunk))
		entries = append(entries, buffer.Entry{Stream: record.Outcomes().ID(), Value: v})
		items += len(chunk)
	}
	// Not bounded by the relay's context: at shutdown it is already done.
	if err := r.buf.Append(context.WithoutCancel(r.ctx), entries); err != nil {
		return 0, 0, err
	}
	return len(entries), items, nil
}

// writeOutcomes writes the reporter's outcomes and counts them as produced.
func (r *Relay) writeOutcomes(outs []outcome.Raw) error {
	records, items, err := r.appendOutcomes(outs)
	if err != nil {
		r.log.Error("writing outcomes to the buffer failed; their drops are not reported", "err", err)
		return err
	}
	r.outcomes.Produce(envelope.ClassClientReport, records, items)
	r.rawCounts.Produce(envelope.ClassClientReport, records, items)
	return nil
}

// serveOutcomes takes the outcomes of a downstream relay, as Relay does
// only from an internal relay and only when it emits outcomes itself
// (403 otherwise), and answers 202 {} once they are in the buffer.
func (r *Relay) serveOutcomes(ctx *fasthttp.RequestCtx, body []byte) {
	id, ok := r.verifiedRelay(ctx, body)
	if !ok {
		return
	}
	if !r.reporter.Raw() {
		jsonError(ctx, fasthttp.StatusForbidden, "this relay does not accept outcomes (outcomes.emit_outcomes is not true)")
		return
	}
	if info := r.downstream.Cached(id); info == nil || !info.Internal {
		jsonError(ctx, fasthttp.StatusForbidden, "relay "+id+" may not send outcomes: it is not internal (auth.static_relays ... internal: true)")
		return
	}
	outs, err := outcome.ParseBatch(body)
	if err != nil {
		jsonError(ctx, fasthttp.StatusBadRequest, err.Error())
		return
	}
	// While the buffer is full, a downstream relay's outcomes wait (503):
	// the overdraft of the outcomes stream is for this relay's evictions.
	if len(outs) > 0 && !r.buf.Ready() {
		ctx.Response.Header.Set(fasthttp.HeaderRetryAfter, "1")
		jsonError(ctx, fasthttp.StatusServiceUnavailable, "failed to queue outcomes: the buffer is full (or failing, or closing); retry later")
		return
	}
	if len(outs) > 0 {
		records, items, err := r.appendOutcomes(outs)
		if err != nil {
			status := fasthttp.StatusServiceUnavailable
			if !errors.Is(err, buffer.ErrFull) {
				r.log.Error("buffer append failed", "err", err)
			}
			ctx.Response.Header.Set(fasthttp.HeaderRetryAfter, "1")
			jsonError(ctx, status, "failed to queue outcomes: "+err.Error())
			return
		}
		r.outcomes.Accept(envelope.ClassClientReport, records, items)
		r.rawCounts.Accept(envelope.ClassClientReport, records, items)
	}
	ctx.SetStatusCode(fasthttp.StatusAccepted)
	ctx.SetContentType("application/json")
	ctx.SetBodyString("{}")
}

// outcomeSinks returns the sinks of raw outcomes: of the outcomes stream
// (lines) and, with raw outcomes on, of the client_report streams (SDK
// reports converted). Both go where client_report is routed; nil when
// that is no upstream or Kafka cluster Baton opened.
func (r *Relay) outcomeSinks() (lines, reports routing.Sink) {
	base := outcomeSink{r: r}
	switch d := r.cfg.RouteFor(envelope.ClassClientReport).Dest.(type) {
	case config.UpstreamDest:
		up, err := r.sinks.Upstream(d.Upstream)
		if err != nil {
			return nil, nil
		}
		base.up = up
	case config.KafkaDest:
		k := r.sinks.KafkaClusters()[d.Kafka]
		if k == nil {
			return nil, nil
		}
		base.topic, base.billing = k.Topic(r.cfg.Outcomes.Topic), k.Topic(r.cfg.Outcomes.BillingTopic)
	default:
		return nil, nil
	}
	l := base
	lines = &l
	if r.reporter.Raw() {
		c := base
		c.convert = true
		reports = &c
	}
	return lines, reports
}

// outcomeSink sends raw outcomes to an upstream (POST
// /api/0/relays/outcomes/, one request per record) or to the outcomes and
// billing topics of a Kafka cluster (one message per outcome, keyed by
// its event id or a random one, as Relay keys them). Messages carry
// outcome lines, or with convert client_report envelopes whose reports
// are converted first; a record whose reports yield no outcome is
// delivered as is, empty.
type outcomeSink struct {
	r       *Relay
	convert bool

	up             *routing.Upstream
	topic, billing routing.Sink
}

func (s *outcomeSink) Close(context.Context) error { return nil } // the routes own up and the topics

func (s *outcomeSink) Send(ctx context.Context, msgs []routing.Message, errs []error) {
	if s.up != nil {
		for i := range msgs {
			if errs[i] = ctx.Err(); errs[i] != nil {
				continue
			}
			if lines := s.lines(&msgs[i]); len(lines) > 0 {
				errs[i] = s.post(ctx, lines)
			}
		}
		return
	}
	s.produce(ctx, msgs, errs)
}

// lines returns the outcome lines of m.
func (s *outcomeSink) lines(m *routing.Message) []byte {
	if !s.convert {
		return m.Envelope
	}
	var env envelope.Envelope
	if env.Parse(m.Envelope, &s.r.limits) != nil {
		return nil
	}
	sc := outcome.ClientScope{ProjectID: m.ProjectID, Source: s.r.cfg.Outcomes.Source, Received: m.ReceivedAt,
		MaxPast: outcome.ClientReportMaxPast, MaxFuture: outcome.ClientReportMaxFuture}
	o := outcome.Origin{ProjectID: m.ProjectID, Key: []byte(m.PublicKey)}
	s.r.scopeOrigin(&o, nil)
	sc.OrgID, sc.KeyID = o.OrgID, o.KeyID
	var out []byte
	for i := range env.Items {
		if env.Items[i].Type != envelope.ItemClientReport {
			continue
		}
		if outs, err := outcome.FromClientReport(env.Items[i].Payload, &sc); err == nil {
			out = outcome.AppendLines(out, outs)
		}
	}
	return out
}

// post sends one batch of outcome lines upstream, signed in managed mode.
func (s *outcomeSink) post(ctx context.Context, lines []byte) error {
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	body := append(make([]byte, 0, len(lines)+16), `{"outcomes":[`...)
	n := 0
	outcome.Lines(lines, func(line []byte) {
		if n > 0 {
			body = append(body, ',')
		}
		body = append(body, line...)
		n++
	})
	body = append(body, "]}"...)
	req.SetRequestURI("/api/0/relays/outcomes/")
	req.Header.SetMethod(fasthttp.MethodPost)
	req.Header.SetContentType("application/json")
	req.Header.SetUserAgent("baton/" + s.r.set.Version)
	req.SetBodyRaw(body)
	if s.r.creds != nil {
		signRequest(s.r.creds, req)
	}
	if err := s.up.Forward(ctx, req, resp); err != nil {
		return err
	}
	code := resp.StatusCode()
	if code >= 200 && code < 300 {
		return nil
	}
	se := &routing.StatusError{Status: code, Detail: routing.Snippet(resp.Body())}
	err := fmt.Errorf("relay: upstream /api/0/relays/outcomes/: %w", se)
	switch {
	case code == fasthttp.StatusTooManyRequests || code == fasthttp.StatusServiceUnavailable:
		after, _ := strconv.Atoi(string(bytes.TrimSpace(resp.Header.Peek(fasthttp.HeaderRetryAfter))))
		return routing.Throttled(err, time.Duration(max(after, 0))*time.Second)
	case code == fasthttp.StatusRequestTimeout, code >= 500:
		return err
	case code >= 400:
		// As the upstream sink: a 401 is retried after registering again
		// (managed mode), other refusals are for good.
		return routing.Permanent(err)
	}
	return err
}

// produce sends every outcome of msgs to its topic; a message fails with
// the first retryable error of its outcomes, else the first permanent one.
func (s *outcomeSink) produce(ctx context.Context, msgs []routing.Message, errs []error) {
	var out [2][]routing.Message // 0: outcomes, 1: billing
	var from [2][]int            // the message each came from
	for i := range msgs {
		outcome.Lines(s.lines(&msgs[i]), func(line []byte) {
			info := outcome.InfoOf(line)
			key := []byte(info.EventID)
			if len(key) == 0 {
				key = []byte(envelope.NewEventID().String())
			}
			t := 0
			if info.Billing {
				t = 1
			}
			out[t] = append(out[t], routing.Message{Class: envelope.ClassClientReport, ProjectID: info.ProjectID,
				ReceivedAt: msgs[i].ReceivedAt, Key: key, Envelope: line})
			from[t] = append(from[t], i)
		})
	}
	for t, sink := range []routing.Sink{s.topic, s.billing} {
		if len(out[t]) == 0 {
			continue
		}
		res := make([]error, len(out[t]))
		sink.Send(ctx, out[t], res)
		for j, err := range res {
			i := from[t][j]
			switch {
			case err == nil:
			case errs[i] == nil, routing.IsPermanent(errs[i]) && !routing.IsPermanent(err):
				errs[i] = err
			}
		}
	}
}

// verifiedRelay checks the relay signature of a request over body and
// answers the relay's id, refusing the request when it does not verify:
// 503 when the upstream could not be asked about the relay (it may retry),
// else 401.
func (r *Relay) verifiedRelay(ctx *fasthttp.RequestCtx, body []byte) (string, bool) {
	id, err := r.downstream.Verify(ctx, string(ctx.Request.Header.Peek(auth.HeaderRelayID)),
		string(ctx.Request.Header.Peek(auth.HeaderRelaySignature)), body)
	switch {
	case err == nil:
		return id, true
	case errors.Is(err, auth.ErrKeyLookup):
		r.reject(ctx, fasthttp.StatusServiceUnavailable, rejectRelayAuth, err.Error())
	default:
		r.reject(ctx, fasthttp.StatusUnauthorized, rejectRelayAuth, err.Error())
	}
	return "", false
}
