package forward

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/baton-relay/baton/buffer"
	"github.com/baton-relay/baton/envelope"
	"github.com/baton-relay/baton/relay/outcome"
	"github.com/baton-relay/baton/relay/record"
	"github.com/baton-relay/baton/routing"
)

// ForwardBuffer is what a Forwarder does with the buffer.
type ForwardBuffer interface {
	Reader
	Ack(s buffer.Stream, upTo buffer.Seq) error
}

// Registrar is Baton's registration with a managed upstream. Generation
// counts successful registrations; Reregister registers again only if no
// registration happened since generation gen, so a late 401 to a request
// signed before a fresh registration cannot undo it, and many forwarders
// refused at once cause one registration.
type Registrar interface {
	Generation() uint64
	Reregister(ctx context.Context, gen uint64) error
}

// ReauthAttempts is how often a record refused with 401 is retried after
// registering again before it is dropped like any permanent refusal.
const ReauthAttempts = 3

// ForwarderOptions configures a Forwarder.
type ForwarderOptions struct {
	Buffer ForwardBuffer
	Stream buffer.Stream
	Sink   routing.Sink
	// Outcomes counts deliveries and drops.
	Outcomes Recorder
	// Registrar, in managed mode, registers again on a 401. Default nil:
	// a 401 is a permanent refusal.
	Registrar Registrar
	// Limits are the replay limits checked before sending a replay record.
	Limits envelope.Limits
	// RateLimits learns the limits of the upstream's 429s. Default nil.
	RateLimits LimitRecorder
	// Reporter reports the records the forwarder drops itself (refused
	// for good, replays over a limit) upstream. Default nil: none.
	Reporter Reporter
	// MaxBackoff caps the wait between retries. Default DefaultMaxBackoff.
	MaxBackoff time.Duration
	// Shard steers every message of the stream (a flush partition of
	// aggregated metrics); it is also the Kafka record key. Default "".
	Shard string
	// SteerTrace steers each message by the trace id of its envelope
	// header's sampling context (config.SteerTrace): upstreams pick the
	// node by it and Kafka uses it as the record key. Envelopes without
	// one, and streams with a Shard, keep their usual key. Default false.
	SteerTrace bool
	// Instruments records attempts, retries, refusals and delivery latency;
	// Route names the forwarder in them. Default nil: none.
	Instruments *Instruments
	Route       string
	// Tracer starts a span per batch that holds records of sampled
	// requests (see trace.go). Default nil: no spans.
	Tracer trace.Tracer
	// Clock default System; Logger default slog.Default().
	Clock  Clock
	Logger *slog.Logger
}

// Forwarder drains one buffer stream into its sink. It is the only
// goroutine that reads or acks its stream, so acks arrive in order and the
// watermark is simply the last record of a finished batch.
type Forwarder struct {
	o     ForwarderOptions
	class envelope.Class
	tm    *routeMetrics // nil without Instruments

	msgs []routing.Message
	envs record.Slab // decoded envelopes that msgs point into
	// loan lends the batch's envelopes (envs and the records read from
	// the buffer) to the sink, which may produce straight from them; once
	// kept, that memory is left to the garbage collector (see settleLoan).
	loan  *routing.Loan
	errs  []error
	items []int             // items[i] is the number of envelope items msgs[i] carries
	check envelope.Envelope // parses replay records for checkReplay
	trace batchTrace        // the ingest spans of the batch's sampled records

	// A stream's records mostly repeat the same key, SDK and address:
	// reuse the last string instead of allocating one per message.
	keys, clients, ips lastString
}

// NewForwarder returns a Forwarder of o.Stream; Run starts it.
func NewForwarder(o ForwarderOptions) *Forwarder {
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = DefaultMaxBackoff
	}
	if o.Clock == nil {
		o.Clock = System
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	o.Limits.AllowInternalItems = true // Baton wrote the records
	class := record.Stream(o.Stream).Class()
	o.Logger = o.Logger.With("class", class)
	return &Forwarder{o: o, class: class, tm: o.Instruments.forRoute(o.Route)}
}

// lastString converts bytes to a string, reusing the previous result when
// the bytes are the same.
type lastString struct{ s string }

func (l *lastString) get(b []byte) string {
	if string(b) != l.s { // no allocation: the conversion is only compared
		l.s = string(b)
	}
	return l.s
}

// Run forwards until readCtx is done (take no new batch) and gives up on a
// batch in flight when sendCtx is done; what was not acked stays in the
// buffer for the next start.
func (f *Forwarder) Run(readCtx, sendCtx context.Context) {
	readLoop(readCtx, f.o.Buffer, f.o.Stream, f.o.Clock, f.o.Logger, func(recs []buffer.Record) bool {
		ok := f.forward(sendCtx, recs)
		f.settleLoan(recs)
		if !ok {
			return false
		}
		if err := f.o.Buffer.Ack(f.o.Stream, recs[len(recs)-1].Seq); err != nil {
			// The batch was delivered; failing to record that only means
			// it may be delivered again after a restart (at-least-once).
			f.o.Logger.Error("buffer ack failed", "err", err)
		}
		return true
	})
}

// settleLoan lets the batch's memory go when the sink kept the loan (Kafka
// records still in flight reference it): the next batch decodes into a new
// slab, and Read fills records whose Value is nil with new memory.
func (f *Forwarder) settleLoan(recs []buffer.Record) {
	if f.loan == nil || !f.loan.Kept() {
		return
	}
	f.loan, f.envs = nil, record.Slab{}
	for i := range recs {
		recs[i].Value = nil
	}
}

// forward sends recs until each is delivered or dropped. It returns false
// when ctx ended first.
func (f *Forwarder) forward(ctx context.Context, recs []buffer.Record) bool {
	f.msgs, f.items = f.msgs[:0], f.items[:0]
	f.envs.Reset()
	if f.loan == nil {
		f.loan = new(routing.Loan)
	}
	f.trace.reset()
	for i := range recs {
		var rec record.Record
		if err := record.Decode(recs[i].Value, &rec, &f.envs); err != nil {
			f.o.Outcomes.Drop(f.class, outcome.ReasonCorrupt, 1, int(record.Items(recs[i].Value)))
			continue
		}
		if f.class == envelope.ClassReplay && !f.checkReplay(rec.Envelope) {
			f.o.Outcomes.Drop(f.class, outcome.ReasonTooLarge, 1, rec.Items)
			if f.o.Reporter != nil {
				f.o.Reporter.Report(&rec, outcome.ReasonTooLarge, "")
			}
			continue
		}
		f.msgs = append(f.msgs, routing.Message{
			Class:      rec.Class,
			ProjectID:  rec.ProjectID,
			PublicKey:  f.keys.get(rec.PublicKey),
			Client:     f.clients.get(rec.Client),
			ClientIP:   f.ips.get(rec.ClientIP),
			ReceivedAt: rec.Received(),
			Envelope:   rec.Envelope,
			Shard:      f.o.Shard,
			Loan:       f.loan,
		})
		if f.o.Shard != "" {
			f.msgs[len(f.msgs)-1].Key = []byte(f.o.Shard)
		} else if f.o.SteerTrace {
			if id := envelope.TraceID(rec.Envelope); id != nil {
				m := &f.msgs[len(f.msgs)-1]
				m.Trace, m.Key = id, id
			}
		}
		if f.o.Tracer != nil && rec.Traced() {
			f.trace.add(len(f.msgs)-1, &rec)
		}
		f.items = append(f.items, rec.Items)
	}
	lctx := context.Background() // what the batch logs with: its span, if any
	if len(f.trace.links) > 0 {
		var span trace.Span
		lctx, span = f.startSpan(ctx)
		defer span.End()
	}

	msgs, items := f.msgs, f.items
	failures := 0 // consecutive attempts that delivered nothing
	reauths := 0  // attempts answered with 401: a long outage before one must not use them up
	for attempt := 1; len(msgs) > 0; attempt++ {
		f.errs = slices.Grow(f.errs[:0], len(msgs))[:len(msgs)]
		clear(f.errs)
		var gen uint64 // the registration the requests are signed under
		if f.o.Registrar != nil {
			gen = f.o.Registrar.Generation()
		}
		f.o.Sink.Send(ctx, msgs, f.errs)
		if ctx.Err() != nil {
			f.trace.abandoned()
			return false
		}
		f.tm.attempt()
		var now time.Time
		if f.tm != nil {
			now = f.o.Clock.Now()
		}
		var (
			wait     time.Duration
			firstErr error
			reauth   bool
			outage   = true // every retryable failure is routing.ErrOutage
		)
		n, progress := 0, false
		for i, err := range f.errs {
			switch {
			case err == nil:
				f.o.Outcomes.Deliver(f.class, 1, items[i])
				f.tm.delivered(now.Sub(msgs[i].ReceivedAt).Seconds())
				progress = true
			case reauths < ReauthAttempts && f.unauthorized(err):
				// Kept for a retry after registering again.
				f.tm.retry(retryUnauthorized)
				reauth = true
				msgs[n], items[n] = msgs[i], items[i]
				n++
			case routing.IsPermanent(err):
				f.o.Outcomes.Drop(f.class, outcome.ReasonInvalid, 1, items[i])
				f.tm.refused()
				f.o.Logger.WarnContext(lctx, "dropping a record its destination refused", "project", msgs[i].ProjectID, "err", err)
				f.report(&msgs[i], outcome.ReasonInvalid)
				f.trace.dropped(err)
				progress = true
			default:
				f.tm.retry(retryReason(err))
				f.recordLimits(&msgs[i], err)
				if after, ok := routing.RetryAfter(err); ok {
					wait = max(wait, after)
				}
				if firstErr == nil && !errors.Is(err, routing.ErrHeldBack) {
					firstErr = err
				}
				outage = outage && (errors.Is(err, routing.ErrOutage) || errors.Is(err, routing.ErrHeldBack))
				msgs[n], items[n] = msgs[i], items[i]
				n++
			}
		}
		if reauth {
			reauths++
			// An upstream that restarted or expired the registration
			// refuses the relay until it registers again, and that must
			// not drop data. A real bad key keeps answering 401 and is
			// dropped after ReauthAttempts.
			if err := f.o.Registrar.Reregister(ctx, gen); err != nil {
				f.o.Logger.WarnContext(lctx, "registering again after a 401 failed", "err", err)
			}
		}
		msgs, items = msgs[:n], items[:n]
		if n == 0 {
			break
		}
		f.trace.attempted(attempt, n, firstErr)
		// Back off only while nothing gets through: a retry that moved part
		// of the batch starts the schedule again.
		if progress {
			failures = 0
		}
		if outage && !reauth {
			// The upstream is down and its prober says when it next
			// checks (and logs the outage): wait for that, not a backoff
			// of our own, to resume as soon as it answers.
			if !sleep(ctx, f.o.Clock, max(wait, MinBackoff)) {
				return false
			}
			continue
		}
		if failures == 0 || failures%10 == 0 {
			f.o.Logger.WarnContext(lctx, "delivery failed; retrying", "attempt", attempt, "waiting", n, "err", firstErr)
		}
		if !sleep(ctx, f.o.Clock, max(wait, backoff(failures, MinBackoff, f.o.MaxBackoff))) {
			return false
		}
		failures++
	}
	return true
}

// report hands a message dropped for why to the Reporter, as the record
// it came from.
func (f *Forwarder) report(m *routing.Message, why outcome.Reason) {
	if f.o.Reporter == nil {
		return
	}
	rec := record.Record{
		Class: m.Class, ProjectID: m.ProjectID, PublicKey: []byte(m.PublicKey), ClientIP: []byte(m.ClientIP),
		ReceivedAt: m.ReceivedAt.UnixNano(), Envelope: m.Envelope,
	}
	f.o.Reporter.Report(&rec, why, "")
}

// unauthorized reports whether err is the upstream's 401 to a managed
// Baton.
func (f *Forwarder) unauthorized(err error) bool {
	var se *routing.StatusError
	return f.o.Registrar != nil && errors.As(err, &se) && se.Status == 401
}

// checkReplay applies limits.max_replay_message_size and
// max_replay_uncompressed_size to a replay record. They are checked here,
// after the client got its 200, as Relay checks them after accepting: the
// recording is decompressed (bounded, see envelope.RecordingSize) off the
// ingest path, and a replay over either limit is dropped whole (event,
// recording and video) with outcome too_large. A record that does not parse
// is left to the upstream.
func (f *Forwarder) checkReplay(env []byte) bool {
	lim := f.o.Limits
	if err := f.check.Parse(env, &lim); err != nil {
		return true
	}
	defer f.check.Reset()
	return f.check.CheckReplay(&lim) == nil
}
