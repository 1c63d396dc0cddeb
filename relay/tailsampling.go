package relay

import (
	"context"
	"encoding/json"
	"strconv"
	"sync"
	"time"

	"github.com/baton-relay/baton/buffer"
	"github.com/baton-relay/baton/config"
	"github.com/baton-relay/baton/envelope"
	"github.com/baton-relay/baton/relay/project"
	"github.com/baton-relay/baton/relay/record"
	"github.com/baton-relay/baton/relay/tailsample"
)

// Tail-based sampling (tail_sampling, relay/tailsample): the wiring. A
// project is tail-sampled when tail_sampling.projects lists it, or (managed
// mode) when its config's tailSampling part is enabled; a broken part
// leaves it head-sampled.

// tailState is the relay's part of tail sampling; off when neither static
// projects nor managed configs can turn it on.
type tailState struct {
	on       bool // samplers run and stats are shown
	projects map[uint64]bool
	static   tailsample.Rules // tail_sampling's rules, for the listed projects
	// own are the rules of the static projects with a tail_sampling of
	// their own (projects.<id>.tail_sampling), instead of static.
	own   map[uint64]tailsample.Rules
	index *tailsample.Index
	// marks keeps the index's error marks in the buffer (record.Marks);
	// nil while off.
	marks *tailsample.Marks
	// match holds the keep rules of managed projects' parts.
	match matchCache
}

// matchCache holds the keep rules of tailSampling parts as
// tailsample.Match, converted once per config revision rather than for
// every record: a State is immutable, so its part's pointer names the
// revision. Read-only once made; Samplers share them.
type matchCache struct {
	mu sync.Mutex
	m  map[uint64]cachedMatch // by project id
}

type cachedMatch struct {
	part  *project.TailSampling
	match []tailsample.Match
}

// maxCachedMatch bounds a matchCache (projects whose configs left the
// config cache keep their entry): past it, it starts over.
const maxCachedMatch = 4096

// of returns the keep rules of ts, project pid's part.
func (c *matchCache) of(pid uint64, ts *project.TailSampling) []tailsample.Match {
	if len(ts.Rules) == 0 {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[pid]; ok && e.part == ts {
		return e.match
	}
	match := make([]tailsample.Match, len(ts.Rules))
	for i, m := range ts.Rules {
		match[i] = tailsample.Match(m)
	}
	if c.m == nil || len(c.m) >= maxCachedMatch {
		c.m = map[uint64]cachedMatch{}
	}
	c.m[pid] = cachedMatch{part: ts, match: match}
	return match
}

// tailClasses are the classes whose items wait for their trace's decision.
var tailClasses = [...]envelope.Class{envelope.ClassTransaction, envelope.ClassSpan}

func (r *Relay) newTail() {
	t := r.cfg.TailSampling
	r.tail.projects = r.cfg.TailProjects()
	r.tail.on = len(r.tail.projects) > 0 || r.cfg.Mode == config.ModeManaged
	rules := tailsample.Rules{KeepRate: t.KeepRate, DurationThreshold: t.DurationThreshold, RootGrace: t.RootGrace}
	for _, m := range t.Rules {
		rules.Match = append(rules.Match, tailsample.Match(m))
	}
	r.tail.static = rules
	r.tail.own = map[uint64]tailsample.Rules{}
	for p, pr := range r.cfg.Projects {
		pt := pr.TailSampling
		id, err := strconv.ParseUint(p, 10, 64)
		if pt == nil || err != nil {
			continue
		}
		own := tailsample.Rules{KeepRate: t.KeepRate, DurationThreshold: pt.DurationThreshold, DecisionWait: pt.DecisionWait, RootGrace: t.RootGrace}
		if pt.KeepRate != nil {
			own.KeepRate = *pt.KeepRate
		}
		if pt.RootGrace != nil {
			own.RootGrace = *pt.RootGrace
		}
		for _, m := range pt.Rules {
			own.Match = append(own.Match, tailsample.Match(m))
		}
		r.tail.own[id] = own
	}
	r.tail.index = tailsample.NewIndex(tailsample.IndexOptions{
		Rules:         rules,
		DecisionWait:  t.DecisionWait,
		MaxTraceWait:  t.MaxTraceWait,
		MaxTraces:     t.MaxTraces,
		MaxTraceItems: t.MaxTraceItems,
		MaxBytes:      int64(t.MaxBytes),
	})
}

// tailSampled reports whether project pid, whose config is st (nil: none),
// has its traces tail-sampled: its tailSampling part decides when it has a
// usable one, else tail_sampling.projects.
func (r *Relay) tailSampled(pid uint64, st *project.State) bool {
	if st != nil && st.TailSampling != nil {
		return st.TailSampling.Enabled
	}
	return r.tail.projects[pid]
}

// tailStream is where a committed record of class c of project pid (config
// st) waits: its trace buffer when the project is tail-sampled, else
// stream.
func (r *Relay) tailStream(c envelope.Class, pid uint64, st *project.State, stream record.Stream) record.Stream {
	if (c == envelope.ClassTransaction || c == envelope.ClassSpan) && r.tailSampled(pid, st) {
		return stream.Tail()
	}
	return stream
}

// tailMark returns the trace id of a tail-sampled project's error about to
// be committed ("" for none) and, when marks are durable, adds its mark
// to s.entries: it is appended with the error, in the same batch and
// fsync, so an acked error's mark survives kill -9 (tailsample.Marks).
func (r *Relay) tailMark(in *admitted, s *scratch) string {
	if in.perClass[envelope.ClassError] == 0 || s.verdict.Drop[envelope.ClassError] || !r.tailSampled(in.pid, in.adm.State) {
		return ""
	}
	id := tailsample.ErrorTraceID(&s.env)
	s.marked = false
	if id != "" && r.tail.marks != nil && !r.tail.index.HasDurableMark(id, time.Now()) {
		s.mark = tailsample.AppendMark(s.mark[:0], id)
		s.entries = append(s.entries, buffer.Entry{Stream: record.Marks().ID(), Value: s.mark})
		s.marked = true
	}
	return id
}

// markTail marks trace id (tailMark's, after the Append) as interesting:
// the error itself was not held.
func (r *Relay) markTail(id string, s *scratch) {
	if id == "" {
		return
	}
	now := time.Now()
	if !s.marked {
		r.tail.index.Mark(id, now)
		return
	}
	r.tail.index.MarkDurable(id, now)
	r.tail.marks.Added(s.entries[len(s.entries)-1].Seq, now)
}

// markTailReleased is markTail for an error that waited for its project's
// config and is released now (forward verdict). Its durable mark is an
// Append of its own, before the error leaves the waiting room: a rare
// path, group-committed with whatever else is appended.
func (r *Relay) markTailReleased(rec *record.Record, st *project.State) {
	if rec.Class != envelope.ClassError || !r.tailSampled(rec.ProjectID, st) {
		return
	}
	e, err := envelope.Parse(rec.Envelope)
	if err != nil {
		return
	}
	id := tailsample.ErrorTraceID(e)
	if id == "" {
		return
	}
	now := time.Now()
	if r.tail.marks == nil || r.tail.index.HasDurableMark(id, now) {
		r.tail.index.Mark(id, now)
		return
	}
	ent := []buffer.Entry{{Stream: record.Marks().ID(), Value: tailsample.AppendMark(nil, id)}}
	if err := r.buf.Append(r.ctx, ent); err != nil {
		r.log.Warn("tail sampling: error mark not persisted; a restart forgets it", "trace_id", id, "err", err)
		r.tail.index.Mark(id, now)
		return
	}
	r.tail.index.MarkDurable(id, now)
	r.tail.marks.Added(ent[0].Seq, now)
}

// dropMarks deletes the error marks a buffer holds from a run with tail
// sampling on, when it is off now: nothing would ever expire them.
func (r *Relay) dropMarks() {
	for _, st := range r.buf.Stats().Streams {
		if record.Stream(st.Stream).IsMarks() && st.Pending > 0 {
			if err := r.buf.Ack(st.Stream, st.NextSeq-1); err != nil {
				r.log.Warn("tail sampling is off: its error marks were not deleted", "err", err)
			}
		}
	}
}

// tailRules are the rules of a record in a trace buffer: its project's
// tailSampling part when its config has an enabled one (the keep rate, when
// the part sets none, is what the project's sampling rules give the
// record's trace context, and the outcome of a drop names their rule),
// else tail_sampling's. False while a managed
// project's config is not known (after a restart, or evicted): the lookup
// is started and the Sampler asks again.
func (r *Relay) tailRules(rec *record.Record) (tailsample.Rules, bool) {
	st := r.projects().StateOf(rec.ProjectID, rec.PublicKey)
	if st == nil && r.cache != nil && !r.tail.projects[rec.ProjectID] && !r.cache.GaveUp(rec.PublicKey) {
		return tailsample.Rules{}, false
	}
	if !st.TailSampled() {
		if own, ok := r.tail.own[rec.ProjectID]; ok {
			return own, true
		}
		return r.tail.static, true
	}
	ts := st.TailSampling
	rules := tailsample.Rules{
		KeepRate:          1,
		DurationThreshold: project.Seconds(ts.DurationThreshold),
		DecisionWait:      project.Seconds(ts.DecisionWait),
		RootGrace:         r.cfg.TailSampling.RootGrace,
		Match:             r.tail.match.of(rec.ProjectID, ts),
	}
	if ts.RootGrace != nil {
		rules.RootGrace = project.Seconds(*ts.RootGrace)
	}
	switch {
	case ts.KeepRate != nil:
		rules.KeepRate = *ts.KeepRate
	case st.Sampling != nil:
		var h struct {
			Trace *project.DSC `json:"trace"`
		}
		if json.Unmarshal(envelopeHeader(rec.Envelope), &h) == nil && h.Trace != nil && h.Trace.TraceID != "" {
			d := st.Sampling.Decide(h.Trace, time.Now())
			rules.KeepRate, rules.RateRule = d.Rate, d.Rule
		}
	}
	return rules, true
}

// startSamplers starts one Sampler per trace buffer: the tail classes when
// tail sampling can be on, and any tail stream the buffer still holds
// records of.
func (r *Relay) startSamplers(ctx context.Context, held []buffer.StreamStats) {
	streams := map[buffer.Stream]bool{}
	if r.tail.on {
		for _, c := range tailClasses {
			streams[record.StreamFor(c, 0).Tail().ID()] = true
		}
	}
	for _, st := range held {
		if s := record.Stream(st.Stream); s.IsTail() && st.Pending > 0 && s.Class() < envelope.NumClasses {
			streams[s.ID()] = true
		}
	}
	for s := range streams {
		sm := tailsample.NewSampler(tailsample.Options{
			Buffer: r.buf,
			Stream: s,
			Index:  r.tail.index,
			Route: func(c envelope.Class, key []byte) buffer.Stream {
				return r.stream(c, key).ID()
			},
			Rules:    r.tailRules,
			Marks:    r.tail.marks,
			Outcomes: &r.outcomes,
			Reporter: r.loopReporter(),
			Logger:   r.log,
		})
		r.relWG.Go(func() { sm.Run(ctx) })
	}
}
