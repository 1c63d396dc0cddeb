package tailsample

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"time"

	"github.com/baton-relay/baton/buffer"
	"github.com/baton-relay/baton/envelope"
	"github.com/baton-relay/baton/relay/outcome"
	"github.com/baton-relay/baton/relay/record"
)

// Buffer is what a Sampler does with the buffer.
type Buffer interface {
	Read(ctx context.Context, s buffer.Stream, dst []buffer.Record, maxRecords, maxBytes int) ([]buffer.Record, error)
	Peek(s buffer.Stream, from, to buffer.Seq, dst []buffer.Record) ([]buffer.Record, error)
	Move(ctx context.Context, entries []buffer.Entry, from buffer.Stream, upTo buffer.Seq) error
}

// Recorder counts the records a Sampler drops.
type Recorder interface {
	Drop(c envelope.Class, why outcome.Reason, records, items int)
}

// Reporter reports a dropped record upstream (client outcomes).
type Reporter interface {
	Report(rec *record.Record, why outcome.Reason, code string)
}

// Options configures a Sampler.
type Options struct {
	Buffer Buffer
	Stream buffer.Stream // a Tail stream (record.Stream.Tail)
	Index  *Index
	// Route is the stream a kept record of class c and public key key
	// moves to. Required.
	Route func(c envelope.Class, key []byte) buffer.Stream
	// Rules are the rules of a record's project; false while its config
	// is not known yet (the record waits, up to MaxTraceWait after it was
	// received, then gets the Index's). Default nil: the Index's for
	// every record.
	Rules    func(rec *record.Record) (Rules, bool)
	Outcomes Recorder
	// Reporter reports dropped records upstream. Default nil: none.
	Reporter Reporter
	// Marks, when set, makes decisions durable: the decision of a trace is
	// appended to its stream in the Move that releases the trace's first
	// records, and Marks.Load puts it back after a restart, so late items
	// follow it. Default nil: decisions are remembered in memory only.
	Marks *Marks
	// Now default time.Now; Logger default slog.Default().
	Now    func() time.Time
	Logger *slog.Logger
}

// heldRecord is one record of the stream read and not yet settled.
type heldRecord struct {
	seq     buffer.Seq
	id      string // trace id; "" for a record without one (kept at once) or decided early (index full)
	size    int32  // value bytes, counted in the Index while held
	noRules bool   // its project's rules are not known yet: not indexed
	decided bool   // verdict fixed at read time (a late or early one)
	keep    bool
}

// A Sampler drains one Tail stream: it indexes each record by trace id as
// it reads it, and moves the decided prefix of the stream to the class
// streams (kept) or drops it with outcome sampled. One goroutine (Run).
type Sampler struct {
	o        Options
	tick     time.Duration
	maxHeld  int
	held     []heldRecord
	recs     []buffer.Record
	slab     record.Slab
	entries  []buffer.Entry
	drops    []record.Record
	corrupt  []int    // items of records that do not decode
	recorded []string // traces whose decision records the current Move appends
	decs     []byte   // their values
	decEnds  []int    // where each ends in decs
	noRules  int      // held records waiting for their rules
	rules    []uint32 // of each of drops: the sampling rule of its keep rate
	// code is the reason code of codeRule's drops, kept for the next ones.
	code     string
	codeRule uint32
}

// NewSampler returns a Sampler of o.Stream; Run starts it.
func NewSampler(o Options) *Sampler {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	// Decisions are looked at a few times per decision_wait, at most each
	// second: a trace leaves at most a tick late.
	tick := min(max(o.Index.o.DecisionWait/4, 10*time.Millisecond), time.Second)
	return &Sampler{o: o, tick: tick, maxHeld: 4 * o.Index.o.MaxTraces}
}

// Run reads, indexes and settles until ctx is done. Records still waiting
// stay in the stream, pending, for the next start.
func (s *Sampler) Run(ctx context.Context) {
	for ctx.Err() == nil {
		if len(s.held) < s.maxHeld {
			rctx, cancel := context.WithTimeout(ctx, s.tick)
			recs, err := s.o.Buffer.Read(rctx, s.o.Stream, s.recs[:0], min(256, s.maxHeld-len(s.held)), 1<<20)
			cancel()
			s.recs = recs
			if err != nil && !errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
				s.o.Logger.Error("tail sampling: buffer read failed", "stream", s.o.Stream, "err", err)
				if !wait(ctx, s.tick) {
					return
				}
			}
			for i := range recs {
				s.index(&recs[i])
			}
		} else if !wait(ctx, s.tick) {
			return
		}
		if err := s.settle(ctx); err != nil && ctx.Err() == nil {
			s.o.Logger.Error("tail sampling: settling decided traces failed", "stream", s.o.Stream, "err", err)
			if !wait(ctx, s.tick) {
				return
			}
		}
	}
}

// recordDecisions appends to s.entries a decision record of each trace of
// prefix that needs one (Index.record): once per trace per MaxTraceWait.
func (s *Sampler) recordDecisions(prefix []heldRecord, now time.Time) {
	s.recorded = s.recorded[:0]
	if s.o.Marks == nil {
		return
	}
	s.decs, s.decEnds = s.decs[:0], s.decEnds[:0]
	start := len(s.entries)
	s.o.Index.record(prefix, now, func(id string, keep, interesting bool, rule uint32) {
		s.recorded = append(s.recorded, id)
		s.decs = AppendDecision(s.decs, id, keep, interesting, rule)
		s.decEnds = append(s.decEnds, len(s.decs))
		s.entries = append(s.entries, buffer.Entry{Stream: s.o.Marks.Stream()})
	})
	// The values point into s.decs once it stopped growing.
	off := 0
	for i, end := range s.decEnds {
		s.entries[start+i].Value = s.decs[off:end:end]
		off = end
	}
}

func wait(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// index adds one record just read to the queue and its trace to the index.
func (s *Sampler) index(r *buffer.Record) {
	s.held = append(s.held, heldRecord{seq: r.Seq})
	if s.inspect(&s.held[len(s.held)-1], r.Value) {
		s.noRules++
	}
}

// inspect indexes the held record h whose stored value is value. It
// reports true, leaving h undecided and out of the index, when the
// record's rules are not known yet (its project's config is being looked
// up); after MaxTraceWait the Index's rules are used instead.
func (s *Sampler) inspect(h *heldRecord, value []byte) (noRules bool) {
	var rec record.Record
	s.slab.Reset()
	if err := record.Decode(value, &rec, &s.slab); err != nil {
		h.decided, h.keep = true, true // the class stream's forwarder counts it corrupt
		return false
	}
	rules := &s.o.Index.o.Rules
	if s.o.Rules != nil {
		r, ok := s.o.Rules(&rec)
		switch {
		case ok:
			rules = &r
		case s.o.Now().Sub(rec.Received()) < s.o.Index.o.MaxTraceWait:
			h.noRules = true
			return true
		}
	}
	h.noRules = false
	id, interesting, root := rules.Inspect(rec.Envelope)
	if id == "" {
		h.decided, h.keep = true, true // no trace to wait for
		return false
	}
	h.size = int32(len(value)) // a record is far below 2 GiB
	var indexed bool
	h.decided, h.keep, indexed = s.o.Index.add(id, rec.Received(), interesting, root, rules, rec.Items, int(h.size))
	if indexed {
		h.id = id // released from its trace when it leaves
	}
	return false
}

// dropRule is the sampling rule whose keep rate dropped rec, held as h:
// its trace's, or for a record decided early out of the index (full), its
// own rules'.
func (s *Sampler) dropRule(h *heldRecord, rec *record.Record) uint32 {
	if h.id != "" {
		return s.o.Index.rule(h.id)
	}
	if s.o.Rules != nil {
		if r, ok := s.o.Rules(rec); ok {
			return r.RateRule
		}
	}
	return s.o.Index.o.Rules.RateRule
}

// reasonCode is Relay's reason string for a drop under the keep rate of
// sampling rule id, as head sampling reports it: "Sampled:<id>" (0 for
// tail sampling's own keep rate, which Relay files with the rules it does
// not know).
func (s *Sampler) reasonCode(rule uint32) string {
	if s.code == "" || rule != s.codeRule {
		s.code, s.codeRule = "Sampled:"+strconv.FormatUint(uint64(rule), 10), rule
	}
	return s.code
}

// retryRules indexes again the held records whose rules were not known,
// reading their values back in runs of at most 256 queue entries.
func (s *Sampler) retryRules() error {
	for i := 0; i < len(s.held) && s.noRules > 0; {
		if !s.held[i].noRules {
			i++
			continue
		}
		j := i
		for k := i; k < len(s.held) && k < i+256; k++ {
			if s.held[k].noRules {
				j = k
			}
		}
		recs, err := s.o.Buffer.Peek(s.o.Stream, s.held[i].seq, s.held[j].seq, s.recs[:0])
		if err != nil {
			return err
		}
		s.recs = recs
		r := 0
		for k := i; k <= j; k++ {
			h := &s.held[k]
			if !h.noRules {
				continue
			}
			for r < len(recs) && recs[r].Seq < h.seq {
				r++
			}
			if r == len(recs) || recs[r].Seq != h.seq { // cannot happen: Peek and Read see the same records
				h.noRules, h.decided, h.keep = false, true, true
			} else if s.inspect(h, recs[r].Value) {
				continue
			}
			s.noRules--
		}
		i = j + 1
	}
	return nil
}

// hurry makes the oldest undecided traces of the queue due at once, over
// the Index's budget: enough of them that the records they let leave
// bring it back under, if they can.
func (s *Sampler) hurry(over int64) {
	freed := int64(0)
	for i := range s.held {
		h := &s.held[i]
		if freed >= over {
			return
		}
		freed += int64(h.size)
		if !h.decided {
			s.o.Index.hurry(h.id)
		}
	}
}

// settle moves the decided prefix of the queue out of the stream: kept
// records to their class stream, dropped ones counted, all in one
// buffer.Move that acks them.
func (s *Sampler) settle(ctx context.Context) error {
	if err := s.retryRules(); err != nil {
		return err
	}
	now := s.o.Now()
	if over := s.o.Index.overBy(); over > 0 {
		s.hurry(over)
	}
	n := s.o.Index.decide(s.held, now)
	if n == 0 {
		return nil
	}
	prefix := s.held[:n]
	recs, err := s.o.Buffer.Peek(s.o.Stream, prefix[0].seq, prefix[n-1].seq, s.recs[:0])
	if err != nil {
		return err
	}
	s.recs = recs
	s.entries, s.drops, s.corrupt, s.rules = s.entries[:0], s.drops[:0], s.corrupt[:0], s.rules[:0]
	s.slab.Reset()
	j := 0
	for i := range recs {
		for j < n && prefix[j].seq < recs[i].Seq {
			j++
		}
		if j == n || prefix[j].seq != recs[i].Seq {
			continue // not held: cannot happen, Peek and Read see the same records
		}
		var rec record.Record
		if err := record.Decode(recs[i].Value, &rec, &s.slab); err != nil {
			s.corrupt = append(s.corrupt, int(record.Items(recs[i].Value)))
			continue
		}
		if prefix[j].keep {
			s.entries = append(s.entries, buffer.Entry{Stream: s.o.Route(rec.Class, rec.PublicKey), Value: recs[i].Value})
		} else {
			s.drops = append(s.drops, rec)
			s.rules = append(s.rules, s.dropRule(&prefix[j], &rec))
		}
	}
	firstDecision := len(s.entries)
	s.recordDecisions(prefix, now)
	if err := s.o.Buffer.Move(ctx, s.entries, s.o.Stream, prefix[n-1].seq); err != nil {
		for _, id := range s.recorded {
			s.o.Index.unrecord(id)
		}
		return err
	}
	for _, e := range s.entries[firstDecision:] {
		s.o.Marks.Added(e.Seq, now)
	}
	class := record.Stream(s.o.Stream).Class()
	for _, items := range s.corrupt {
		s.o.Outcomes.Drop(class, outcome.ReasonCorrupt, 1, items)
	}
	for i := range s.drops {
		d := &s.drops[i]
		s.o.Outcomes.Drop(d.Class, outcome.ReasonSampled, 1, d.Items)
		if s.o.Reporter != nil {
			s.o.Reporter.Report(d, outcome.ReasonSampled, s.reasonCode(s.rules[i]))
		}
	}
	s.o.Index.release(prefix, now)
	s.held = append(s.held[:0], s.held[n:]...)
	return nil
}
