package tailsample

import (
	"cmp"
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/baton-relay/baton/envelope"
)

// Rules are what keeps a trace: one project's tail sampling.
type Rules struct {
	// KeepRate is the share of uninteresting traces kept, 0 to 1.
	KeepRate float64
	// RateRule is the id of the sampling rule KeepRate came from, which
	// the outcome of a dropped trace names ("Sampled:<id>", as head
	// sampling's); 0 when it is tail sampling's own keep rate.
	RateRule uint32
	// DurationThreshold keeps a trace with an item at least this long; 0
	// is off.
	DurationThreshold time.Duration
	// DecisionWait, when set, is the quiet time after which a trace under
	// these rules is due, instead of the Index's (never beyond its
	// MaxTraceWait).
	DecisionWait time.Duration
	// RootGrace, when set, makes a trace due this long after its root
	// transaction arrived (one without a parent_span_id), if that is
	// sooner than its decision wait; 0 is off.
	RootGrace time.Duration
	// Match keeps a trace with an item any of them matches.
	Match []Match
}

// Hash maps a trace id to [0, 1): 64-bit FNV-1a of its lower-case form
// over 2^64. Every relay computes it alike, so a trace whose items are
// sampled on several relays gets one answer.
func Hash(traceID string) float64 {
	const offset, prime = 14695981039346656037, 1099511628211
	h := uint64(offset)
	for i := 0; i < len(traceID); i++ {
		c := traceID[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		h ^= uint64(c)
		h *= prime
	}
	return float64(h>>11) / (1 << 53)
}

// KeepByRate is the decision for a trace nothing made interesting.
func (r Rules) KeepByRate(traceID string) bool { return Hash(traceID) < r.KeepRate }

// Inspect returns the trace id of the class envelope env (its header's
// dynamic sampling context, else the first item's trace context), whether
// an item of it (transactions, spans) has an error status or lasts at
// least the duration threshold, or meets a Match rule (interesting), and
// whether it holds a transaction whose trace context has no
// parent_span_id: the trace's root (root). Span containers (span v2) are
// looked into only by the Match rules: their trace is their header's.
func (r Rules) Inspect(env []byte) (traceID string, interesting, root bool) {
	traceID = strings.ToLower(string(envelope.TraceID(env)))
	e, err := envelope.Parse(env)
	if err != nil {
		return traceID, false, false
	}
	for i := range e.Items {
		it := &e.Items[i]
		switch it.Type {
		case envelope.ItemTransaction, envelope.ItemSpan:
		default:
			continue
		}
		// The payload is decoded once: with Match rules, with what they
		// read too.
		var (
			ev  *itemStatus
			tc  *traceStatus
			err error
		)
		if len(r.Match) > 0 {
			var f item
			err = decodeItem(it.Payload, &f)
			ev, tc = &f.itemStatus, &f.Contexts.Trace.traceStatus
			if err == nil && !interesting && f.matches(r.Match) {
				interesting = true
			}
		} else {
			var f struct {
				itemStatus
				Contexts struct {
					Trace traceStatus `json:"trace"`
				} `json:"contexts"`
			}
			err = decodeItem(it.Payload, &f)
			ev, tc = &f.itemStatus, &f.Contexts.Trace
		}
		if err != nil {
			continue
		}
		if it.Type == envelope.ItemTransaction && tc.ParentSpanID == "" {
			root = true
		}
		if traceID == "" {
			traceID = strings.ToLower(cmp.Or(tc.TraceID, ev.TraceID))
		}
		if errorStatus(ev.Status) || errorStatus(tc.Status) {
			interesting = true
		}
		if r.DurationThreshold > 0 {
			start, ok1 := timestamp(ev.Start)
			if len(ev.End) == 0 {
				ev.End = ev.EndV2
			}
			end, ok2 := timestamp(ev.End)
			if ok1 && ok2 && end-start >= r.DurationThreshold.Seconds() {
				interesting = true
			}
		}
	}
	if len(traceID) > envelope.MaxTraceID {
		traceID = ""
	}
	return traceID, interesting, root
}

// itemStatus is what Inspect reads of every transaction or span payload,
// besides its trace context (traceStatus).
type itemStatus struct {
	Status  string          `json:"status"`
	TraceID string          `json:"trace_id"`
	Start   json.RawMessage `json:"start_timestamp"`
	End     json.RawMessage `json:"timestamp"`
	EndV2   json.RawMessage `json:"end_timestamp"`
}

type traceStatus struct {
	Status       string `json:"status"`
	TraceID      string `json:"trace_id"`
	ParentSpanID string `json:"parent_span_id"`
}

// decodeItem decodes an item's payload into v. A field of the wrong JSON
// type is left empty, not an error: the item is judged on the fields
// that decoded, whichever of them the rules look at.
func decodeItem(payload []byte, v any) error {
	err := json.Unmarshal(payload, v)
	if _, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
		return nil
	}
	return err
}

// errorStatus: Sentry's failure rate counts every status but these.
func errorStatus(s string) bool {
	switch strings.ToLower(s) {
	case "", "ok", "cancelled", "unknown", "unknown_error":
		return false
	}
	return true
}

// timestamp reads a Sentry timestamp: seconds since the epoch, or RFC 3339.
func timestamp(raw json.RawMessage) (float64, bool) {
	if len(raw) == 0 {
		return 0, false
	}
	if raw[0] == '"' {
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return 0, false
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return 0, false
		}
		return float64(t.UnixNano()) / 1e9, true
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	return f, err == nil && !math.IsNaN(f) && !math.IsInf(f, 0)
}

// ErrorTraceID returns the trace id of a parsed envelope with an error:
// its header's dynamic sampling context, else the event's
// contexts.trace.trace_id; "" when it has neither.
func ErrorTraceID(e *envelope.Envelope) string {
	if id := envelope.TraceID(e.Header.Raw); len(id) > 0 {
		return strings.ToLower(string(id))
	}
	for i := range e.Items {
		if e.Items[i].Type != envelope.ItemEvent {
			continue
		}
		var ev struct {
			Contexts struct {
				Trace struct {
					TraceID string `json:"trace_id"`
				} `json:"trace"`
			} `json:"contexts"`
		}
		if json.Unmarshal(e.Items[i].Payload, &ev) == nil && len(ev.Contexts.Trace.TraceID) <= envelope.MaxTraceID {
			return strings.ToLower(ev.Contexts.Trace.TraceID)
		}
	}
	return ""
}
