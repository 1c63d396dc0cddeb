package relay

import (
	"context"
	"strconv"
	"sync/atomic"

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

// MaxFollowedPerSecond bounds the requests per second traced because a
// sender that is not a verified relay asked for it with a sampled
// traceparent: such a client could otherwise make every request pay for a
// span (about half again its CPU). 100 spans a second cost ~2 ms of CPU.
const MaxFollowedPerSecond = 100

// followBudget counts the untrusted traceparents followed in the current
// second, lock-free.
type followBudget struct {
	second atomic.Int64
	n      atomic.Int64
}

// take reports whether one more may be followed in the second of now.
func (b *followBudget) take(now int64) bool {
	if sec := b.second.Load(); sec != now && b.second.CompareAndSwap(sec, now) {
		b.n.Store(0)
	}
	return b.n.Add(1) <= MaxFollowedPerSecond
}

// traceIngest starts the ingest span of a request when it is sampled. A
// relay whose signature was verified (trusted) is followed: its traceparent
// says sampled or not, so a chain of relays is one trace. Any other
// sender's sampled traceparent (an SDK's, a proxy Baton's) is followed up
// to MaxFollowedPerSecond, then the sampler's ratio decides; one that says
// not sampled is honoured. Without a span (tracing off, or not sampled) the
// request costs one branch and, with tracing on, one random number: no
// allocation. An empty endpoint is the request's path.
func (r *Relay) traceIngest(ctx *fasthttp.RequestCtx, s *scratch, endpoint string, trusted bool) {
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
		if !trusted && !r.followed.take(ctx.Time().Unix()) && !r.tel.Sample() {
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
