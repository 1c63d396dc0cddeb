package relay

import (
	"context"
	"time"

	"github.com/baton-relay/baton/buffer"
	"github.com/baton-relay/baton/envelope"
	"github.com/baton-relay/baton/relay/forward"
	"github.com/baton-relay/baton/relay/outcome"
	"github.com/baton-relay/baton/relay/record"
)

// This file reports Baton's drops to Sentry (config outcomes): drop sites
// emit into r.reporter, and every outcomes.batch_interval the merged drops
// become client_report envelopes written to the buffer, one record per
// project key, produced like aggregated metric buckets: durable, counted,
// and forwarded by the client_report route.

// newReporter returns the reporter outcomes.emit_outcomes asks for (nil
// when off; validated by config).
func newReporter(mode string) *outcome.Reporter {
	m, _ := outcome.ParseMode(mode)
	return outcome.NewReporter(outcome.ReporterOptions{Mode: m})
}

// reportVerdict reports the classes the door's verdict dropped.
func (r *Relay) reportVerdict(in *admitted, s *scratch) {
	if r.reporter == nil {
		return
	}
	v := &s.verdict
	for c := range envelope.NumClasses {
		if v.Drop[c] && in.perClass[c] > 0 {
			code := v.Code(c)
			if s.invalid[c] != "" { // dropped by processing (see process)
				code = s.invalid[c]
			}
			r.reporter.EmitItems(in.pid, in.key, s.env.Items, c, v.Why[c], code)
		}
	}
}

// recordReporter is the forward.Reporter of the loops: it reads the items
// of a dropped record to report them.
type recordReporter struct {
	rep    *outcome.Reporter
	limits *envelope.Limits
}

func (rr recordReporter) Report(rec *record.Record, why outcome.Reason, code string) {
	var env envelope.Envelope
	if env.Parse(rec.Envelope, rr.limits) != nil {
		return // it parsed when it was accepted; a record that no longer does has nothing to report
	}
	rr.rep.EmitItems(rec.ProjectID, rec.PublicKey, env.Items, envelope.NumClasses, why, code)
}

// loopReporter is what the forwarding loops report drops through: nil
// when outcomes are off.
func (r *Relay) loopReporter() forward.Reporter {
	if r.reporter == nil {
		return nil
	}
	return recordReporter{rep: r.reporter, limits: &r.limits}
}

// runReporter flushes merged drops every outcomes.batch_interval until
// ctx is done.
func (r *Relay) runReporter(ctx context.Context) {
	r.reporter.Run(ctx, forward.System, r.cfg.Outcomes.BatchInterval, r.writeReports)
}

// flushReports writes what the reporter holds now (at shutdown).
func (r *Relay) flushReports() {
	if err := r.reporter.Flush(time.Now(), r.writeReports); err != nil {
		r.log.Warn("client reports of the last drops were lost", "err", err)
	}
}

// writeReports appends one client_report record per project key (several
// when a key has more than outcomes.batch_size lines) and counts them as
// produced.
func (r *Relay) writeReports(now time.Time, reps []outcome.Report) error {
	per := max(r.cfg.Outcomes.BatchSize, 1)
	var entries []buffer.Entry
	for i := range reps {
		rep := reps[i]
		rec := record.Record{
			Class: envelope.ClassClientReport, Items: 1, ReceivedAt: now.UnixNano(),
			ProjectID: rep.ProjectID, PublicKey: []byte(rep.PublicKey),
		}
		stream := r.stream(envelope.ClassClientReport, rec.PublicKey).ID()
		all := rep.Discarded
		for len(all) > 0 {
			rep.Discarded = all[:min(per, len(all))]
			all = all[len(rep.Discarded):]
			v := record.Append(nil, &rec, rep.AppendEnvelope(nil, now.Unix()))
			entries = append(entries, buffer.Entry{Stream: stream, Value: v})
		}
	}
	// Not bounded by the relay's context: at shutdown it is already done.
	if err := r.buf.Append(context.WithoutCancel(r.ctx), entries); err != nil {
		r.log.Error("writing client reports to the buffer failed; their drops are not reported", "err", err)
		return err
	}
	r.outcomes.Produce(envelope.ClassClientReport, len(entries), len(entries))
	return nil
}
