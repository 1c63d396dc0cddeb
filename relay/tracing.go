package relay

import (
	"context"
	"strconv"

	"github.com/valyala/fasthttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// tracerName is the instrumentation scope of the relay's spans.
const tracerName = "github.com/baton-relay/baton/relay"

// propagator reads W3C traceparent (and tracestate) of incoming requests:
// an upstream Baton's, or any client's that traces its sends.
var propagator = propagation.TraceContext{}

// headerCarrier reads a fasthttp request's headers for the propagator.
type headerCarrier struct{ h *fasthttp.RequestHeader }

func (c headerCarrier) Get(key string) string { return string(c.h.Peek(key)) }
func (c headerCarrier) Set(string, string)    {} // never written: extraction only
func (c headerCarrier) Keys() []string        { return []string{"traceparent", "tracestate"} }

// traceIngest starts the ingest span of a request when it is sampled: its
// traceparent says so, or, without one, the sampler's ratio lets it
// through. A traceparent that says not sampled is honoured. Without a span
// (tracing off, or not sampled) the request costs one branch and, with
// tracing on, one random number: no allocation. An empty endpoint is the
// request's path.
func (r *Relay) traceIngest(ctx *fasthttp.RequestCtx, s *scratch, endpoint string) {
	if !r.tracing {
		return
	}
	parent := context.Background()
	if len(ctx.Request.Header.Peek("traceparent")) > 0 {
		parent = propagator.Extract(parent, headerCarrier{&ctx.Request.Header})
	}
	if sc := trace.SpanContextFromContext(parent); sc.IsValid() {
		if !sc.IsSampled() {
			return
		}
	} else if !r.tel.Sample() {
		return
	}
	if endpoint == "" {
		endpoint = string(ctx.Path())
	}
	s.sctx, s.span = r.tracer.Start(parent, "baton.ingest", trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attribute.String("baton.endpoint", endpoint)))
}

// phase marks the end of an ingest step on the request's span, if any.
func (s *scratch) phase(name string) {
	if s.span != nil {
		s.span.AddEvent(name)
	}
}

// spanResult records what the request came to on its span, if any.
func (s *scratch) spanResult(pid uint64, res *result) {
	if s.span == nil {
		return
	}
	s.span.SetAttributes(attribute.Int64("baton.project_id", int64(pid)),
		attribute.Int("http.response.status_code", res.status), attribute.Int("baton.records", len(s.classes)))
	if !res.ok() {
		s.span.SetStatus(codes.Error, strconv.Itoa(res.status)+" "+res.detail)
	}
}

// logCtx is the context ingest logs with: the request's span, if any, for
// the trace_id and span_id of JSON logs.
func (s *scratch) logCtx() context.Context {
	if s.sctx == nil {
		return context.Background()
	}
	return s.sctx
}

// endSpan ends the request's span, if any.
func (s *scratch) endSpan() {
	if s.span != nil {
		s.span.End()
		s.span, s.sctx = nil, nil
	}
}
