package relay

import (
	"context"
	"time"

	"github.com/baton-relay/baton/buffer"
	"github.com/baton-relay/baton/envelope"
	"github.com/baton-relay/baton/relay/record"
	"github.com/baton-relay/baton/relay/tailsample"
)

// Tail-based sampling (tail_sampling, relay/tailsample): the wiring.

// tailState is the relay's part of tail sampling; nil tail projects is off.
type tailState struct {
	projects map[uint64]bool
	index    *tailsample.Index
}

// tailClasses are the classes whose items wait for their trace's decision.
var tailClasses = [...]envelope.Class{envelope.ClassTransaction, envelope.ClassSpan}

func (r *Relay) newTail() {
	t := r.cfg.TailSampling
	r.tail.projects = r.cfg.TailProjects()
	rules := tailsample.Rules{KeepRate: t.KeepRate, DurationThreshold: t.DurationThreshold}
	for _, m := range t.Rules {
		rules.Match = append(rules.Match, tailsample.Match(m))
	}
	r.tail.index = tailsample.NewIndex(tailsample.IndexOptions{
		Rules:        rules,
		DecisionWait: t.DecisionWait,
		MaxTraceWait: t.MaxTraceWait,
		MaxTraces:    t.MaxTraces,
	})
}

// tailStream is where a committed record of class c of project pid waits:
// its trace buffer when the project is tail-sampled, else stream.
func (r *Relay) tailStream(c envelope.Class, pid uint64, stream record.Stream) record.Stream {
	if (c == envelope.ClassTransaction || c == envelope.ClassSpan) && r.tail.projects[pid] {
		return stream.Tail()
	}
	return stream
}

// markTail marks the trace of a committed error of a tail-sampled project
// as interesting; the error itself was not held.
func (r *Relay) markTail(in *admitted, s *scratch) {
	if !r.tail.projects[in.pid] || in.perClass[envelope.ClassError] == 0 || s.verdict.Drop[envelope.ClassError] {
		return
	}
	r.tail.index.Mark(tailsample.ErrorTraceID(&s.env), time.Now())
}

// startSamplers starts one Sampler per trace buffer: the configured classes
// and any tail stream the buffer still holds records of.
func (r *Relay) startSamplers(ctx context.Context, held []buffer.StreamStats) {
	streams := map[buffer.Stream]bool{}
	if len(r.tail.projects) > 0 {
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
			Outcomes: &r.outcomes,
			Reporter: r.loopReporter(),
			Logger:   r.log,
		})
		r.relWG.Go(func() { sm.Run(ctx) })
	}
}
