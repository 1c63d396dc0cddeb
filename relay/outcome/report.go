package outcome

import (
	"context"
	"encoding/json"
	"errors"
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
)

// ErrModeUnsupported is emit mode "true" (raw outcomes to
// /api/0/relays/outcomes/ or Kafka), which Baton does not send yet.
var ErrModeUnsupported = errors.New("raw outcomes (true) are not supported yet; use as_client_reports or false")

// ParseMode reads outcomes.emit_outcomes.
func ParseMode(s string) (Mode, error) {
	switch s {
	case "false":
		return ModeOff, nil
	case "as_client_reports":
		return ModeClientReports, nil
	case "true":
		return ModeOff, ErrModeUnsupported
	}
	return ModeOff, fmt.Errorf("outcome: emit mode %q is not false, true or as_client_reports", s)
}

// DefaultMaxEntries bounds the distinct (project, key, category, outcome,
// reason) entries a Reporter holds between flushes: about 150 bytes each
// with a 32-byte key and a short reason, so about 1.5 MB at most. Drops
// that would need a new entry past it are counted as lost.
const DefaultMaxEntries = 10000

// entry is what a Reporter merges one public key's drops by.
type entry struct {
	ProjectID uint64
	Category  envelope.Category
	Why       Reason
	Code      string // Relay's reason: the filter name, quota reason code, "Sampled:<rule>"...
}

// ReporterOptions configures a Reporter.
type ReporterOptions struct {
	Mode Mode
	// MaxEntries caps the entries held; 0 is DefaultMaxEntries.
	MaxEntries int
}

// Reporter merges the drops Baton reports upstream, per project key, until
// they are taken. A nil *Reporter (outcomes off) ignores everything. It is
// safe for concurrent use.
type Reporter struct {
	mode Mode
	max  int

	mu sync.Mutex
	// entries is keyed by public key first, so that Emit looks a key up
	// without allocating; only a key's first drop copies it.
	entries map[string]map[entry]int64
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
	return &Reporter{mode: o.Mode, max: o.MaxEntries, entries: make(map[string]map[entry]int64)}
}

// reportable says whether a drop for why goes into a client report. Relay's
// client-report producer converts only filtered, sampled and rate-limited
// outcomes (and signature failures, which Baton refuses at the door);
// the others reach Sentry only as raw outcomes.
func reportable(why Reason) bool {
	return why == ReasonFiltered || why == ReasonSampled || why == ReasonRateLimited
}

// Emit records quantity of category dropped for why (code is Relay's
// reason string) from the project and public key.
func (r *Reporter) Emit(projectID uint64, key []byte, cat envelope.Category, why Reason, code string, quantity int) {
	if r == nil || quantity <= 0 || cat == envelope.CategoryUnknown || !reportable(why) {
		return
	}
	e := entry{ProjectID: projectID, Category: cat, Why: why, Code: code}
	r.mu.Lock()
	byKey := r.entries[string(key)] // not allocated: the compiler reads key in place
	if _, ok := byKey[e]; !ok {
		if r.n >= r.max {
			r.mu.Unlock()
			r.lost.Add(int64(quantity))
			return
		}
		if byKey == nil {
			byKey = make(map[entry]int64)
			r.entries[string(key)] = byKey
		}
		r.n++
	}
	byKey[e] += int64(quantity)
	r.mu.Unlock()
}

// EmitItems records the items of class c (every class when c is
// envelope.NumClasses) with the categories and quantities Relay counts.
func (r *Reporter) EmitItems(projectID uint64, key []byte, items []envelope.Item, c envelope.Class, why Reason, code string) {
	if r == nil || !reportable(why) {
		return
	}
	for i := range items {
		it := &items[i]
		if c != envelope.NumClasses && it.Class != c {
			continue
		}
		Quantities(it, func(cat envelope.Category, n int) { r.Emit(projectID, key, cat, why, code, n) })
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

// Reported is the quantity of drops taken into reports so far.
func (r *Reporter) Reported() int64 {
	if r == nil {
		return 0
	}
	return r.reported.Load()
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
	r.mu.Lock()
	m := r.entries
	if len(m) == 0 {
		r.mu.Unlock()
		return nil
	}
	r.entries = make(map[string]map[entry]int64, len(m))
	r.n = 0
	r.mu.Unlock()

	type scope struct {
		pid uint64
		key string
	}
	by := make(map[scope]*Report)
	var total int64
	for key, byKey := range m {
		for e, q := range byKey {
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
	if r == nil {
		return
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-clock.After(interval):
			r.Flush(clock.Now(), write)
		}
	}
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
