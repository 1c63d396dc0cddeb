package relay

import (
	"context"
	"net/netip"
	"time"

	"github.com/baton-relay/baton/buffer"
	"github.com/baton-relay/baton/config"
	"github.com/baton-relay/baton/envelope"
	"github.com/baton-relay/baton/relay/forward"
	"github.com/baton-relay/baton/relay/outcome"
	"github.com/baton-relay/baton/relay/project"
	"github.com/baton-relay/baton/relay/record"
)

// This file reports Baton's drops to Sentry (config outcomes): drop sites
// emit into r.reporter, and every outcomes.batch_interval the merged drops
// become client_report envelopes written to the buffer, one record per
// project key, produced like aggregated metric buckets: durable, counted,
// and forwarded by the client_report route. With raw outcomes (true) they
// become outcome records instead (rawoutcomes.go).

// newReporter returns the reporter outcomes.emit_outcomes asks for (nil
// when off; validated by config).
func newReporter(o config.Outcomes) *outcome.Reporter {
	m, _ := outcome.ParseMode(o.EmitOutcomes)
	return outcome.NewReporter(outcome.ReporterOptions{Mode: m, BatchSize: min(o.BatchSize, maxOutcomesPerRecord)})
}

// reportVerdict reports the classes the door's verdict dropped; addr is
// the client's address (asked for raw outcomes only).
func (r *Relay) reportVerdict(in *admitted, s *scratch, addr func() netip.Addr) {
	if r.reporter == nil {
		return
	}
	o := outcome.Origin{ProjectID: in.pid, Key: in.key}
	if r.reporter.Raw() {
		r.scopeOrigin(&o, in.adm.State)
		o.EventID = s.env.Header.EventID
		if a := addr(); a.IsValid() {
			o.RemoteAddr = a.String()
		}
	}
	v := &s.verdict
	for c := range envelope.NumClasses {
		if v.Drop[c] && in.perClass[c] > 0 {
			code := v.Code(c)
			if s.invalid[c] != "" { // dropped by processing (see process)
				code = s.invalid[c]
			}
			r.reporter.EmitItemsFrom(&o, s.env.Items, c, v.Why[c], code)
		}
	}
}

// scopeOrigin fills the organization and key id of a raw outcome from st,
// or the config serving its project key now.
func (r *Relay) scopeOrigin(o *outcome.Origin, st *project.State) {
	if st == nil {
		st = r.projects().StateOf(o.ProjectID, o.Key)
	}
	if st != nil {
		o.OrgID, o.KeyID = st.OrganizationID, st.KeyID(o.Key)
	}
}

// recordReporter is the forward.Reporter of the loops: it reads the items
// of a dropped record to report them.
type recordReporter struct{ r *Relay }

func (rr recordReporter) Report(rec *record.Record, why outcome.Reason, code string) {
	var env envelope.Envelope
	if env.Parse(rec.Envelope, &rr.r.limits) != nil {
		return // it parsed when it was accepted; a record that no longer does has nothing to report
	}
	rr.r.reporter.EmitItemsFrom(rr.r.recordOrigin(rec, env.Header.EventID), env.Items, envelope.NumClasses, why, code)
}

// recordOrigin is the Origin of a drop of rec.
func (r *Relay) recordOrigin(rec *record.Record, id envelope.EventID) *outcome.Origin {
	o := &outcome.Origin{ProjectID: rec.ProjectID, Key: rec.PublicKey, Received: rec.Received()}
	if r.reporter.Raw() {
		r.scopeOrigin(o, nil)
		o.EventID = id
		if a := firstAddr(rec.ClientIP); a.IsValid() {
			o.RemoteAddr = a.String()
		}
	}
	return o
}

// loopReporter is what the forwarding loops report drops through: nil
// when outcomes are off.
func (r *Relay) loopReporter() forward.Reporter {
	if r.reporter == nil {
		return nil
	}
	return recordReporter{r}
}

// limitedReporter reports the metric buckets the cardinality limiter
// refused (raw outcomes only: client reports do not carry them).
func (r *Relay) limitedReporter() func(rec *record.Record, buckets int) {
	if !r.reporter.Raw() {
		return nil
	}
	return func(rec *record.Record, buckets int) {
		r.reporter.EmitFrom(r.recordOrigin(rec, envelope.EventID{}), envelope.CategoryMetricBucket, outcome.ReasonCardinality, "", buckets)
	}
}

// runReporter flushes merged drops every outcomes.batch_interval until
// ctx is done.
func (r *Relay) runReporter(ctx context.Context) {
	if r.reporter.Raw() {
		r.reporter.RunOutcomes(ctx, forward.System, r.cfg.Outcomes.BatchInterval, r.cfg.Outcomes.Source, r.writeOutcomes)
		return
	}
	r.reporter.Run(ctx, forward.System, r.cfg.Outcomes.BatchInterval, r.writeReports)
}

// flushReports writes what the reporter holds now (at shutdown).
func (r *Relay) flushReports() {
	var err error
	if r.reporter.Raw() {
		err = r.reporter.FlushOutcomes(r.cfg.Outcomes.Source, r.writeOutcomes)
	} else {
		err = r.reporter.Flush(time.Now(), r.writeReports)
	}
	if err != nil {
		r.log.Warn("outcomes of the last drops were lost", "err", err)
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
