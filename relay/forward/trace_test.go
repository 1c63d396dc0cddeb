package forward

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/baton-relay/baton/buffer"
	"github.com/baton-relay/baton/envelope"
	"github.com/baton-relay/baton/relay/record"
	"github.com/baton-relay/baton/routing"
)

// tracedRecord is a record whose ingest span was tid/sid (untraced when
// both are zero).
func tracedRecord(project uint64, tid trace.TraceID, sid trace.SpanID) []byte {
	rec := record.Record{Class: envelope.ClassError, Items: 1, ReceivedAt: time.Now().UnixNano(), ProjectID: project,
		PublicKey: []byte(keyOf(project)), TraceID: tid, SpanID: sid}
	return record.Append(nil, &rec, []byte("{}\n{\"type\":\"event\"}\n{}\n"))
}

// TestForwardSpan: a batch with traced records gets one span, a child of
// the first traced record's ingest span, linked to each traced record's;
// messages of its trace carry it as traceparent, a record of another trace
// its own ingest span, an untraced record none. A batch without traced
// records makes no span; without a Tracer nothing is traced.
func TestForwardSpan(t *testing.T) {
	t1, t2 := trace.TraceID{1, 1}, trace.TraceID{2, 2}
	s1, s3, s4 := trace.SpanID{1}, trace.SpanID{3}, trace.SpanID{4}
	for _, tc := range []struct {
		name   string
		tracer bool
	}{{"tracer", true}, {"no tracer", false}} {
		t.Run(tc.name, func(t *testing.T) {
			b, _ := openBuffer(t)
			if err := b.Append(context.Background(), []buffer.Entry{
				{Stream: errsStream, Value: tracedRecord(1, t1, s1)},
				{Stream: errsStream, Value: tracedRecord(2, trace.TraceID{}, trace.SpanID{})},
				{Stream: errsStream, Value: tracedRecord(3, t2, s3)},
				{Stream: errsStream, Value: tracedRecord(4, t1, s4)},
			}); err != nil {
				t.Fatal(err)
			}
			var (
				mu  sync.Mutex
				tps [][]string // traceparent of each message, per call
			)
			sink := &fakeSink{script: func(_ context.Context, call int, msgs []routing.Message) []error {
				var got []string
				for _, m := range msgs {
					got = append(got, m.TraceParent)
				}
				mu.Lock()
				tps = append(tps, got)
				mu.Unlock()
				return make([]error, len(msgs))
			}}
			exp := tracetest.NewInMemoryExporter()
			tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp), sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.AlwaysSample())))
			o := ForwarderOptions{Route: "error"}
			if tc.tracer {
				o.Tracer = tp.Tracer("test")
			}
			ab, _, stop := startForwarder(t, b, sink, newClock(true), o)
			waitAck(t, ab.acks)
			// A second batch, untraced, makes no span.
			if err := b.Append(context.Background(), []buffer.Entry{{Stream: errsStream, Value: tracedRecord(5, trace.TraceID{}, trace.SpanID{})}}); err != nil {
				t.Fatal(err)
			}
			waitAck(t, ab.acks)
			stop()

			spans := exp.GetSpans()
			mu.Lock()
			defer mu.Unlock()
			if len(tps) != 2 || tps[1][0] != "" {
				t.Fatalf("traceparents per call %q", tps)
			}
			if !tc.tracer {
				if len(spans) != 0 || !slices.Equal(tps[0], []string{"", "", "", ""}) {
					t.Fatalf("without a tracer: %d spans, traceparents %q", len(spans), tps[0])
				}
				return
			}
			if len(spans) != 1 {
				t.Fatalf("%d spans, want 1 (the traced batch)", len(spans))
			}
			sp := spans[0]
			if sp.Name != "baton.forward" || sp.SpanKind != trace.SpanKindProducer || sp.Parent.TraceID() != t1 || sp.Parent.SpanID() != s1 || sp.SpanContext.TraceID() != t1 {
				t.Errorf("span %s kind %v, parent %s/%s", sp.Name, sp.SpanKind, sp.Parent.TraceID(), sp.Parent.SpanID())
			}
			var links []trace.SpanID
			for _, l := range sp.Links {
				links = append(links, l.SpanContext.SpanID())
			}
			if !slices.Equal(links, []trace.SpanID{s1, s3, s4}) {
				t.Errorf("links %v, want the ingest spans of records 1, 3 and 4", links)
			}
			batch := "00-" + t1.String() + "-" + sp.SpanContext.SpanID().String() + "-01"
			want := []string{batch, "", "00-" + t2.String() + "-" + s3.String() + "-01", batch}
			if !slices.Equal(tps[0], want) {
				t.Errorf("traceparents\n%q, want\n%q", tps[0], want)
			}
		})
	}
}
