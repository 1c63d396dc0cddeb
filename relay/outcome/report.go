package outcome

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/baton-relay/baton/envelope"
)

// Mode is how drops are reported upstream (config outcomes.emit_outcomes).
type Mode uint8

const (
	ModeOff           Mode = iota // "false": counted here only
	ModeClientReports             // "as_client_reports": merged client_report items
	ModeOutcomes                  // "true": raw outcomes, to /api/0/relays/outcomes/ or Kafka
)

// ParseMode reads outcomes.emit_outcomes.
func ParseMode(s string) (Mode, error) {
	switch s {
	case "false":
		return ModeOff, nil
	case "as_client_reports":
		return ModeClientReports, nil
	case "true":
		return ModeOutcomes, nil
	}
	return ModeOff, fmt.Errorf("outcome: emit mode %q is not false, true or as_client_reports", s)
}

// DefaultMaxEntries bounds the distinct (project, key, category, outcome,
// reason; for raw outcomes also event id and address) entries a Reporter
// holds between flushes: about 150 bytes each with a 32-byte key and a
// short reason (200 with an event id and an address), so about 2 MB at
// most. Drops that would need a new entry past it are counted as lost.
const DefaultMaxEntries = 10000

// entry is what a Reporter merges one public key's drops by. The fields
// after Code are set for raw outcomes only, so client reports merge as
// before.
type entry struct {
	ProjectID uint64
	Category  envelope.Category
	Why       Reason
	Code      string // Relay's reason: the filter name, quota reason code, "Sampled:<rule>"...

	OrgID, KeyID uint64
	EventID      envelope.EventID
	Addr         string
}

// tally is an entry's quantity and the time of its first drop (unix ns).
type tally struct{ q, at int64 }

// Origin is what a drop is scoped by: its project and public key, and for
// raw outcomes what Relay's outcome carries besides: the organization and
// the key's numeric id (0 when not known), the envelope's event id, the
// client's address, and when Baton received it (zero: when emitted).
type Origin struct {
	ProjectID    uint64
	Key          []byte
	OrgID, KeyID uint64
	EventID      envelope.EventID
	RemoteAddr   string
	Received     time.Time
}

// ReporterOptions configures a Reporter.
type ReporterOptions struct {
	Mode Mode
	// MaxEntries caps the entries held; 0 is DefaultMaxEntries.
	MaxEntries int
	// BatchSize, for raw outcomes, is the entry count at which Run flushes
	// before its interval is up (outcomes.batch_size). 0: only on the
	// interval.
	BatchSize int
	// Now is the clock of drops without a received time. Default time.Now.
	Now func() time.Time
}

// Reporter merges the drops Baton reports upstream, per project key, until
// they are taken. A nil *Reporter (outcomes off) ignores everything. It is
// safe for concurrent use.
type Reporter struct {
	mode  Mode
	max   int
	batch int
	now   func() time.Time
	full  chan struct{} // signalled when batch entries are held

	mu sync.Mutex
	// entries is keyed by public key first, so that Emit looks a key up
	// without allocating; only a key's first drop copies it.
	entries map[string]map[entry]tally
	n       int // entries held, over all keys

	lost     atomic.Int64 // quantity of drops that did not fit
	reported atomic.Int64 // quantity taken into reports
}

// NewReporter returns a Reporter, or nil when o.Mode is ModeOff.
func NewReporter(o ReporterOptions) *Reporter {
	if o.Mode == ModeOff {
		return nil
	}
	if o.MaxEntries <= 0 {
		o.MaxEntries = DefaultMaxEntries
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Reporter{mode: o.Mode, max: o.MaxEntries, batch: o.BatchSize, now: o.Now,
		full: make(chan struct{}, 1), entries: make(map[string]map[entry]tally)}
}

// Mode is what r reports (ModeOff for a nil Reporter).
func (r *Reporter) Mode() Mode {
	if r == nil {
		return ModeOff
	}
	return r.mode
}

// Raw reports whether r emits raw outcomes, which need an Origin's
// organization, key id, event id and address.
func (r *Reporter) Raw() bool { return r != nil && r.mode == ModeOutcomes }

// reportable says whether a drop for why is reported. Raw outcomes report
// every drop. Relay's client-report producer converts only filtered,
// sampled and rate-limited outcomes (and signature failures, which Baton
// refuses at the door); the others reach Sentry only as raw outcomes.
func (r *Reporter) reportable(why Reason) bool {
	return r.mode == ModeOutcomes || why == ReasonFiltered || why == ReasonSampled || why == ReasonRateLimited
}

// Emit records quantity of category dropped for why (code is Relay's
// reason string) from the project and public key.
func (r *Reporter) Emit(projectID uint64, key []byte, cat envelope.Category, why Reason, code string, quantity int) {
	r.EmitFrom(&Origin{ProjectID: projectID, Key: key}, cat, why, code, quantity)
}

// EmitFrom records quantity of category dropped for why (code is Relay's
// reason string) from o.
func (r *Reporter) EmitFrom(o *Origin, cat envelope.Category, why Reason, code string, quantity int) {
	if r == nil || quantity <= 0 || cat == envelope.CategoryUnknown || !r.reportable(why) {
		return
	}
	e := entry{ProjectID: o.ProjectID, Category: cat, Why: why, Code: code}
	if r.mode == ModeOutcomes {
		e.OrgID, e.KeyID, e.EventID, e.Addr = o.OrgID, o.KeyID, o.EventID, o.RemoteAddr
	}
	at := o.Received
	if at.IsZero() {
		at = r.now()
	}
	r.mu.Lock()
	byKey := r.entries[string(o.Key)] // not allocated: the compiler reads key in place
	t, ok := byKey[e]
	if !ok {
		if r.n >= r.max {
			r.mu.Unlock()
			r.lost.Add(int64(quantity))
			return
		}
		if byKey == nil {
			byKey = make(map[entry]tally)
			r.entries[string(o.Key)] = byKey
		}
		r.n++
		t.at = at.UnixNano()
		if r.batch > 0 && r.n == r.batch {
			select {
			case r.full <- struct{}{}:
			default:
			}
		}
	}
	t.q += int64(quantity)
	byKey[e] = t
	r.mu.Unlock()
}

// EmitItems records the items of class c (every class when c is
// envelope.NumClasses) with the categories and quantities Relay counts.
func (r *Reporter) EmitItems(projectID uint64, key []byte, items []envelope.Item, c envelope.Class, why Reason, code string) {
	r.EmitItemsFrom(&Origin{ProjectID: projectID, Key: key}, items, c, why, code)
}

// EmitItemsFrom is EmitItems with the drop's Origin.
func (r *Reporter) EmitItemsFrom(o *Origin, items []envelope.Item, c envelope.Class, why Reason, code string) {
	if r == nil || !r.reportable(why) {
		return
	}
	for i := range items {
		it := &items[i]
		if c != envelope.NumClasses && it.Class != c {
			continue
		}
		Quantities(it, func(cat envelope.Category, n int) { r.EmitFrom(o, cat, why, code, n) })
	}
}

// Quantities calls fn with each data category an item counts against in
// outcomes and its quantity, as Relay's Item::quantities: an event counts
// 1 error, a transaction 1 transaction and 1 transaction_indexed, an
// attachment its bytes (at least 1) and 1 attachment_item, a log container
// its bytes and item_count log items; metrics, client reports, NEL,
// form_data and unknown types count nothing.
func Quantities(it *envelope.Item, fn func(envelope.Category, int)) {
	n := 1
	if it.ItemCount >= 0 && it.Type.Info().Container {
		n = it.ItemCount
	}
	switch it.Type {
	case envelope.ItemEvent, envelope.ItemUnrealReport:
		fn(envelope.CategoryError, n)
	case envelope.ItemTransaction:
		fn(envelope.CategoryTransaction, n)
		fn(envelope.CategoryTransactionIndexed, n)
	case envelope.ItemSecurity, envelope.ItemRawSecurity:
		fn(envelope.CategorySecurity, n)
	case envelope.ItemAttachment:
		fn(envelope.CategoryAttachment, max(len(it.Payload), 1))
		fn(envelope.CategoryAttachmentItem, n)
	case envelope.ItemSession, envelope.ItemSessions:
		fn(envelope.CategorySession, n)
	case envelope.ItemLog, envelope.ItemOtelLog:
		fn(envelope.CategoryLogByte, max(len(it.Payload), 1))
		fn(envelope.CategoryLogItem, n)
	case envelope.ItemTraceMetric:
		fn(envelope.CategoryTraceMetric, n)
	case envelope.ItemUserReport, envelope.ItemFeedback:
		fn(envelope.CategoryFeedback, n)
	case envelope.ItemProfile:
		fn(envelope.CategoryProfile, n)
		fn(envelope.CategoryProfileIndexed, n)
	case envelope.ItemReplayEvent, envelope.ItemReplayRecording, envelope.ItemReplayVideo:
		fn(envelope.CategoryReplay, n)
	case envelope.ItemCheckIn:
		fn(envelope.CategoryMonitor, n)
	case envelope.ItemSpan, envelope.ItemOtelSpan, envelope.ItemOtelTracesData:
		fn(envelope.CategorySpan, n)
		fn(envelope.CategorySpanIndexed, n)
	case envelope.ItemProfileChunk:
		fn(it.Category(), n)
	}
}

// Lost is the quantity of drops that found no room (see MaxEntries).
func (r *Reporter) Lost() int64 {
	if r == nil {
		return 0
	}
	return r.lost.Load()
}

// Lose counts quantity of drops that could not be reported at all (the
// buffer's drops past what it keeps of them).
func (r *Reporter) Lose(quantity int64) {
	if r != nil {
		r.lost.Add(quantity)
	}
}

// Reported is the quantity of drops taken into reports so far.
func (r *Reporter) Reported() int64 {
	if r == nil {
		return 0
	}
	return r.reported.Load()
}

// takeAll takes the entries held and starts afresh; nil when none.
func (r *Reporter) takeAll() map[string]map[entry]tally {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := r.entries
	if len(m) == 0 {
		return nil
	}
	r.entries = make(map[string]map[entry]tally, len(m))
	r.n = 0
	return m
}

// TakeOutcomes returns the drops merged so far as Relay's raw outcomes,
// with source as their source, ordered by project, key id, outcome,
// reason, category and event id, and starts afresh.
func (r *Reporter) TakeOutcomes(source string) []Raw {
	if r == nil {
		return nil
	}
	m := r.takeAll()
	if m == nil {
		return nil
	}
	var out []Raw
	var total int64
	type sorted struct {
		e entry
		o Raw
	}
	var all []sorted
	for _, byKey := range m {
		for e, t := range byKey {
			id, reason := Relay(e.Why, e.Code)
			o := newRaw(time.Unix(0, t.at), e.ProjectID, id, reason, e.Category, t.q)
			o.OrgID, o.KeyID, o.RemoteAddr, o.Source = e.OrgID, e.KeyID, e.Addr, source
			if !e.EventID.IsZero() {
				o.EventID = e.EventID.String()
			}
			all = append(all, sorted{e, o})
			total += t.q
		}
	}
	slices.SortFunc(all, func(a, b sorted) int {
		return cmp.Or(cmp.Compare(a.o.ProjectID, b.o.ProjectID), cmp.Compare(a.o.KeyID, b.o.KeyID),
			cmp.Compare(a.o.Outcome, b.o.Outcome), strings.Compare(a.o.Reason, b.o.Reason),
			cmp.Compare(a.e.Category, b.e.Category), strings.Compare(a.o.EventID, b.o.EventID),
			strings.Compare(a.o.RemoteAddr, b.o.RemoteAddr))
	})
	out = make([]Raw, len(all))
	for i := range all {
		out[i] = all[i].o
	}
	r.reported.Add(total)
	return out
}

// Report is the merged drops of one project key.
type Report struct {
	ProjectID uint64
	PublicKey string
	Discarded []Discarded // sorted by field, reason, category
}

// Discarded is one line of a client report.
type Discarded struct {
	Why      Reason
	Reason   string
	Category envelope.Category
	Quantity int64
}

// Take returns the drops merged so far, one Report per project key in
// project and key order, and starts afresh.
func (r *Reporter) Take() []Report {
	if r == nil {
		return nil
	}
	m := r.takeAll()
	if m == nil {
		return nil
	}
	type scope struct {
		pid uint64
		key string
	}
	by := make(map[scope]*Report)
	var total int64
	for key, byKey := range m {
		for e, t := range byKey {
			q := t.q
			s := scope{e.ProjectID, key}
			rep := by[s]
			if rep == nil {
				rep = &Report{ProjectID: e.ProjectID, PublicKey: key}
				by[s] = rep
			}
			rep.Discarded = append(rep.Discarded, Discarded{Why: e.Why, Reason: e.Code, Category: e.Category, Quantity: q})
			total += q
		}
	}
	r.reported.Add(total)
	out := make([]Report, 0, len(by))
	for _, rep := range by {
		slices.SortFunc(rep.Discarded, func(a, b Discarded) int {
			if a.Why != b.Why {
				return int(a.Why) - int(b.Why)
			}
			if c := strings.Compare(a.Reason, b.Reason); c != 0 {
				return c
			}
			return int(a.Category) - int(b.Category)
		})
		out = append(out, *rep)
	}
	slices.SortFunc(out, func(a, b Report) int {
		if a.ProjectID != b.ProjectID {
			if a.ProjectID < b.ProjectID {
				return -1
			}
			return 1
		}
		return strings.Compare(a.PublicKey, b.PublicKey)
	})
	return out
}

// clientReport is a client_report item payload (docs/relay-protocol.md,
// section 7.2).
type clientReport struct {
	Timestamp         int64            `json:"timestamp"`
	DiscardedEvents   []discardedEvent `json:"discarded_events,omitempty"`
	RateLimitedEvents []discardedEvent `json:"rate_limited_events,omitempty"`
	FilteredEvents    []discardedEvent `json:"filtered_events,omitempty"`
	FilteredSampling  []discardedEvent `json:"filtered_sampling_events,omitempty"`
}

type discardedEvent struct {
	Reason   string `json:"reason"`
	Category string `json:"category"`
	Quantity int64  `json:"quantity"`
}

// AppendEnvelope appends an envelope of one client_report item with rep's
// drops at unix second ts: filtered drops in filtered_events, sampled ones
// in filtered_sampling_events, rate-limited ones in rate_limited_events,
// as Relay's client-report outcome producer files them.
func (rep *Report) AppendEnvelope(dst []byte, ts int64) []byte {
	cr := clientReport{Timestamp: ts}
	for _, d := range rep.Discarded {
		de := discardedEvent{Reason: d.Reason, Category: d.Category.String(), Quantity: d.Quantity}
		switch d.Why {
		case ReasonFiltered:
			cr.FilteredEvents = append(cr.FilteredEvents, de)
		case ReasonSampled:
			cr.FilteredSampling = append(cr.FilteredSampling, de)
		case ReasonRateLimited:
			cr.RateLimitedEvents = append(cr.RateLimitedEvents, de)
		default:
			cr.DiscardedEvents = append(cr.DiscardedEvents, de)
		}
	}
	payload, _ := json.Marshal(&cr) // plain structs: cannot fail
	dst = append(dst, "{}\n"...)
	dst = fmt.Appendf(dst, "{\"type\":\"client_report\",\"length\":%d}\n", len(payload))
	dst = append(dst, payload...)
	return append(dst, '\n')
}

// Clock is the time Run reads and waits on (forward.System in production).
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

// Run flushes the merged drops through write every interval until ctx is
// done. It does not flush at the end: the owner calls Flush once nothing
// drops any more.
func (r *Reporter) Run(ctx context.Context, clock Clock, interval time.Duration, write func(now time.Time, reps []Report) error) {
	r.run(ctx, clock, interval, func(now time.Time) { r.Flush(now, write) })
}

// RunOutcomes is Run for raw outcomes: it flushes through write every
// interval, and sooner once BatchSize entries are held.
func (r *Reporter) RunOutcomes(ctx context.Context, clock Clock, interval time.Duration, source string, write func(outs []Raw) error) {
	r.run(ctx, clock, interval, func(time.Time) { r.FlushOutcomes(source, write) })
}

func (r *Reporter) run(ctx context.Context, clock Clock, interval time.Duration, flush func(now time.Time)) {
	if r == nil {
		return
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-clock.After(interval):
		case <-r.full:
		}
		flush(clock.Now())
	}
}

// FlushOutcomes takes the merged drops as raw outcomes and hands them to
// write; what write fails to keep is counted as lost.
func (r *Reporter) FlushOutcomes(source string, write func(outs []Raw) error) error {
	outs := r.TakeOutcomes(source)
	if len(outs) == 0 {
		return nil
	}
	err := write(outs)
	if err != nil {
		var q int64
		for i := range outs {
			q += int64(*outs[i].Quantity)
		}
		r.reported.Add(-q)
		r.lost.Add(q)
	}
	return err
}

// Flush takes the merged drops and hands them to write; what write fails
// to keep is counted as lost.
func (r *Reporter) Flush(now time.Time, write func(now time.Time, reps []Report) error) error {
	reps := r.Take()
	if len(reps) == 0 {
		return nil
	}
	err := write(now, reps)
	if err != nil {
		var q int64
		for i := range reps {
			for _, d := range reps[i].Discarded {
				q += d.Quantity
			}
		}
		r.reported.Add(-q)
		r.lost.Add(q)
	}
	return err
}
