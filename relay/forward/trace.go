package forward

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/baton-relay/baton/relay/record"
)

// batchTrace is what a forwarder knows of the trace of its batch: the
// ingest spans of its sampled records (record versions 6 and 7), and the
// batch's span once started. A batch without sampled records has none and
// costs nothing.
//
// The batch span is a child of the ingest span of its first sampled record
// and links to the ingest spans of all of them. An upstream request then
// carries a W3C traceparent: the batch span as parent for a record of the
// batch span's trace (every record, in a batch of one trace, which is the
// common case of one envelope per batch), its own ingest span for a record
// of another trace. A downstream Baton continues the trace from it, so a
// chain of relays shows one trace: ingest → forward → ingest → ...
type batchTrace struct {
	links  []trace.Link // the ingest span of each sampled record
	msgIdx []int        // the message each link's record became
	span   trace.Span   // nil until started
}

func (b *batchTrace) reset() {
	clear(b.links)
	b.links, b.msgIdx, b.span = b.links[:0], b.msgIdx[:0], nil
}

// add notes that message i comes from rec, which carries its ingest span.
func (b *batchTrace) add(i int, rec *record.Record) {
	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: rec.TraceID, SpanID: rec.SpanID, TraceFlags: trace.FlagsSampled, Remote: true})
	b.links = append(b.links, trace.Link{SpanContext: sc})
	b.msgIdx = append(b.msgIdx, i)
}

// startSpan starts the batch's span (batchTrace has the choice of parent)
// and sets the traceparent of its sampled messages. The context carries
// the span for the batch's log lines.
func (f *Forwarder) startSpan(ctx context.Context) (context.Context, trace.Span) {
	b := &f.trace
	parent := trace.ContextWithRemoteSpanContext(ctx, b.links[0].SpanContext)
	sctx, span := f.o.Tracer.Start(parent, "baton.forward", trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithLinks(b.links...),
		trace.WithAttributes(attribute.String("baton.route", f.o.Route), attribute.String("baton.class", f.class.String()),
			attribute.Int("baton.records", len(f.msgs)), attribute.Int("baton.traced_records", len(b.links))))
	b.span = span
	bsc := span.SpanContext()
	for k, i := range b.msgIdx {
		sc := b.links[k].SpanContext
		if bsc.IsValid() && sc.TraceID() == bsc.TraceID() {
			sc = bsc
		}
		f.msgs[i].TraceParent = traceparent(sc)
	}
	return sctx, span
}

// traceparent is sc as a W3C traceparent header value, sampled.
func traceparent(sc trace.SpanContext) string {
	return "00-" + sc.TraceID().String() + "-" + sc.SpanID().String() + "-01"
}

// attempted notes on the batch span an attempt that left waiting messages
// undelivered, for err.
func (b *batchTrace) attempted(attempt, waiting int, err error) {
	if b.span == nil || waiting == 0 {
		return
	}
	attrs := []attribute.KeyValue{attribute.Int("attempt", attempt), attribute.Int("waiting", waiting)}
	if err != nil {
		attrs = append(attrs, attribute.String("error", err.Error()))
	}
	b.span.AddEvent("retry", trace.WithAttributes(attrs...))
}

// dropped marks the batch span failed: its destination refused a record.
func (b *batchTrace) dropped(err error) {
	if b.span != nil {
		b.span.SetStatus(codes.Error, "a record was refused: "+err.Error())
	}
}

// abandoned marks the batch span cut short by shutdown.
func (b *batchTrace) abandoned() {
	if b.span != nil {
		b.span.SetStatus(codes.Error, "shutdown before delivery; the records stay in the buffer")
	}
}
