package outcome

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/baton-relay/baton/envelope"
)

// ID is Relay's numeric outcome id (docs/relay-protocol.md §7.2). Ids
// Baton does not know are passed on as they came.
type ID uint8

const (
	Accepted           ID = 0
	Filtered           ID = 1 // inbound filters and dynamic sampling
	RateLimited        ID = 2
	Invalid            ID = 3
	Abuse              ID = 4
	ClientDiscard      ID = 5
	CardinalityLimited ID = 6
)

// Relay returns the outcome id and reason Relay emits for a drop for why
// with code (the filter name, quota reason code, "Sampled:<rule>" ...),
// with Relay's DiscardReason names for the invalid ones.
func Relay(why Reason, code string) (ID, string) {
	switch why {
	case ReasonFiltered, ReasonSampled:
		return Filtered, code
	case ReasonRateLimited:
		return RateLimited, code // Relay omits a missing reason code
	case ReasonCardinality:
		return CardinalityLimited, code
	case ReasonProjectUnknown, ReasonProjectDisabled:
		return Invalid, "project_id"
	case ReasonProjectState:
		return Invalid, "project_state"
	case ReasonCORS:
		return Invalid, "cors"
	case ReasonFeatureDisabled:
		return Invalid, "feature_disabled"
	case ReasonExpired:
		return Invalid, "timestamp" // Relay's envelope buffer expires with DiscardReason::Timestamp
	case ReasonTooLarge:
		if code == "" {
			code = "too_large"
		}
		return Invalid, code
	}
	// The destination refused it, the buffer dropped it, no route: what
	// Relay files under its catch-all.
	if code == "" {
		code = "internal"
	}
	return Invalid, code
}

// Raw is one outcome in Relay's JSON (TrackRawOutcome): what
// /api/0/relays/outcomes/ carries as {"outcomes": [...]} and the Kafka
// outcomes topics carry one per message. Absent fields are omitted.
type Raw struct {
	Timestamp  string  `json:"timestamp"` // RFC 3339 with microseconds, UTC ("Z")
	OrgID      uint64  `json:"org_id,omitempty"`
	ProjectID  uint64  `json:"project_id"`
	KeyID      uint64  `json:"key_id,omitempty"`
	Outcome    ID      `json:"outcome"`
	Reason     string  `json:"reason,omitempty"`
	EventID    string  `json:"event_id,omitempty"`
	RemoteAddr string  `json:"remote_addr,omitempty"`
	Source     string  `json:"source,omitempty"`
	Category   *uint8  `json:"category,omitempty"`
	Quantity   *uint32 `json:"quantity,omitempty"`
}

// Timestamp formats t as Relay does: 2026-01-01T12:00:00.000000Z.
func Timestamp(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000000Z") }

// Billing reports whether o goes to the billing topic (Relay's is_billing:
// accepted and rate-limited outcomes).
func (o *Raw) Billing() bool { return o.Outcome == Accepted || o.Outcome == RateLimited }

// newRaw builds the outcome of quantity of cat.
func newRaw(at time.Time, projectID uint64, id ID, reason string, cat envelope.Category, quantity int64) Raw {
	c := uint8(cat)
	q := uint32(min(quantity, 1<<32-1))
	return Raw{Timestamp: Timestamp(at), ProjectID: projectID, Outcome: id, Reason: reason, Category: &c, Quantity: &q}
}

// ErrNoOutcomes is a body of /api/0/relays/outcomes/ that is not
// {"outcomes": [...]}.
var ErrNoOutcomes = errors.New(`outcome: body is not {"outcomes": [...]}`)

// ParseBatch reads the body of /api/0/relays/outcomes/: every outcome must
// have a timestamp and a project id; other fields are optional, unknown
// ones dropped (as Relay re-serializes them).
func ParseBatch(body []byte) ([]Raw, error) {
	var b struct {
		Outcomes []Raw `json:"outcomes"`
	}
	if err := json.Unmarshal(body, &b); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNoOutcomes, err)
	}
	for i := range b.Outcomes {
		o := &b.Outcomes[i]
		if o.Timestamp == "" || o.ProjectID == 0 {
			return nil, fmt.Errorf("%w: outcome %d has no timestamp or project_id", ErrNoOutcomes, i)
		}
	}
	return b.Outcomes, nil
}

// AppendLines appends outs as JSON, one per line: the payload of an
// outcomes record in the buffer.
func AppendLines(dst []byte, outs []Raw) []byte {
	for i := range outs {
		b, _ := json.Marshal(&outs[i]) // plain struct: cannot fail
		dst = append(append(dst, b...), '\n')
	}
	return dst
}

// Lines calls fn with each line of an outcomes record.
func Lines(payload []byte, fn func(line []byte)) {
	for len(payload) > 0 {
		line, rest, _ := bytes.Cut(payload, []byte{'\n'})
		if len(line) > 0 {
			fn(line)
		}
		payload = rest
	}
}

// LineInfo is what the Kafka sink needs of an outcome line.
type LineInfo struct {
	Billing   bool   // accepted or rate limited: the billing topic
	EventID   string // "" when none
	ProjectID uint64
}

// InfoOf reads a line of an outcomes record for its topic and key, without
// keeping the rest.
func InfoOf(line []byte) LineInfo {
	var o struct {
		Outcome   ID     `json:"outcome"`
		EventID   string `json:"event_id"`
		ProjectID uint64 `json:"project_id"`
	}
	if json.Unmarshal(line, &o) != nil {
		return LineInfo{}
	}
	return LineInfo{Billing: o.Outcome == Accepted || o.Outcome == RateLimited, EventID: o.EventID, ProjectID: o.ProjectID}
}

// Relay's processing defaults for the age of a client report
// (processing.max_secs_in_past, max_secs_in_future): older or later ones
// are dropped when converted.
const (
	ClientReportMaxPast   = 30 * 24 * time.Hour
	ClientReportMaxFuture = time.Minute
)

// ClientScope is what outcomes made from an SDK's client report are scoped
// by: Relay gives them no event id and no address.
type ClientScope struct {
	ProjectID, OrgID, KeyID uint64
	Source                  string
	Received                time.Time // when Baton accepted the report
	MaxPast, MaxFuture      time.Duration
}

// maxReasonLen is the longest client-report reason Relay takes; lines with
// longer ones are ignored.
const maxReasonLen = 200

// ErrClientReportTime is a client report whose timestamp is further from
// its arrival than outcomes.max_secs_in_past / max_secs_in_future.
var ErrClientReportTime = errors.New("outcome: client report timestamp out of range")

// FromClientReport turns an SDK's client_report payload into outcomes, as
// Relay's processing does: discarded_events become client_discard,
// rate_limited_events rate_limited, filtered_events and
// filtered_sampling_events filtered; lines with the same field, reason and
// category are summed. The report's timestamp (now when it has none) must
// lie within MaxPast before and MaxFuture after its arrival, else nothing
// is emitted (ErrClientReportTime). Lines with an unknown category, a
// zero quantity, a sampling reason that is not "Sampled:<rule ids>" (its ids
// become Relay's rule categories) or a reason over 200 bytes are skipped.
func FromClientReport(payload []byte, sc *ClientScope) ([]Raw, error) {
	var cr struct {
		Timestamp         json.RawMessage   `json:"timestamp"`
		DiscardedEvents   []json.RawMessage `json:"discarded_events"`
		RateLimitedEvents []json.RawMessage `json:"rate_limited_events"`
		FilteredEvents    []json.RawMessage `json:"filtered_events"`
		FilteredSampling  []json.RawMessage `json:"filtered_sampling_events"`
	}
	if err := json.Unmarshal(payload, &cr); err != nil {
		return nil, fmt.Errorf("outcome: client report: %w", err)
	}
	at := sc.Received
	if ts, ok := clientTimestamp(cr.Timestamp); ok {
		at = ts
	}
	if sc.MaxPast > 0 && sc.Received.Sub(at) > sc.MaxPast || sc.MaxFuture > 0 && at.Sub(sc.Received) > sc.MaxFuture {
		return nil, ErrClientReportTime
	}
	type key struct {
		id       ID
		sampling bool
		reason   string
		cat      envelope.Category
	}
	sums := map[key]int64{}
	var order []key
	add := func(lines []json.RawMessage, id ID, sampling bool) {
		for _, raw := range lines {
			var l struct {
				Reason   string `json:"reason"`
				Category string `json:"category"`
				Quantity int64  `json:"quantity"`
			}
			if json.Unmarshal(raw, &l) != nil || l.Quantity <= 0 || len(l.Reason) > maxReasonLen {
				continue
			}
			cat, ok := envelope.ParseCategory(l.Category)
			if !ok {
				continue
			}
			if sampling {
				if l.Reason, ok = samplingReason(l.Reason); !ok {
					continue
				}
			}
			k := key{id, sampling, l.Reason, cat}
			if _, seen := sums[k]; !seen {
				order = append(order, k)
			}
			sums[k] += l.Quantity
		}
	}
	add(cr.DiscardedEvents, ClientDiscard, false)
	add(cr.FilteredEvents, Filtered, false)
	add(cr.FilteredSampling, Filtered, true)
	add(cr.RateLimitedEvents, RateLimited, false)
	outs := make([]Raw, 0, len(order))
	for _, k := range order {
		o := newRaw(at, sc.ProjectID, k.id, k.reason, k.cat, sums[k])
		o.OrgID, o.KeyID, o.Source = sc.OrgID, sc.KeyID, sc.Source
		outs = append(outs, o)
	}
	return outs, nil
}

// ruleCategories are Relay's sampling rule categories in its order
// (RuleCategory): the id ranges each stands for and its name.
var ruleCategories = []struct {
	lo, hi uint64
	name   string
}{
	{1000, 1000, "1000"}, {1001, 1001, "1001"}, {1002, 1002, "1002"}, {1003, 1003, "1003"},
	{1004, 1004, "1004"}, {1005, 1005, "1005"}, {1400, 1499, "1400"}, {1500, 1599, "1500"},
	{3000, 4999, "3000"},
}

// samplingReason rewrites "Sampled:<rule ids>" as Relay does: each id
// becomes its rule category (0 for the others), each category once, in
// Relay's order. A reason without the prefix or with an id that is not a
// number is refused.
func samplingReason(reason string) (string, bool) {
	ids, ok := strings.CutPrefix(reason, "Sampled:")
	if !ok {
		return "", false
	}
	seen := make([]bool, len(ruleCategories)+1) // the last is "0", the others
	for f := range strings.SplitSeq(ids, ",") {
		id, err := strconv.ParseUint(strings.TrimSpace(f), 10, 32)
		if err != nil {
			return "", false
		}
		i := len(ruleCategories)
		for j, rc := range ruleCategories {
			if id >= rc.lo && id <= rc.hi {
				i = j
				break
			}
		}
		seen[i] = true
	}
	out := "Sampled:"
	for i, s := range seen {
		if !s {
			continue
		}
		if len(out) > len("Sampled:") {
			out += ","
		}
		if i == len(ruleCategories) {
			out += "0"
		} else {
			out += ruleCategories[i].name
		}
	}
	return out, true
}

// clientTimestamp reads a client report's timestamp: unix seconds (a
// number) or an RFC 3339 string, as Relay accepts both.
func clientTimestamp(raw json.RawMessage) (time.Time, bool) {
	if len(raw) == 0 || string(raw) == "null" {
		return time.Time{}, false
	}
	var secs float64
	if json.Unmarshal(raw, &secs) == nil {
		return time.Unix(0, int64(secs*1e9)), true
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
			return t, true
		}
		if t, err := time.Parse("2006-01-02T15:04:05.999999999", s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}
