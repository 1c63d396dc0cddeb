package envelope

import (
	"errors"
	"fmt"
)

const (
	kib = 1 << 10
	mib = 1 << 20
)

// Limits bounds what Parse accepts. Every size is in bytes. A zero field
// means "the default" (the value DefaultLimits returns), so Limits{} is
// usable and a config can set only what it changes. The defaults are Relay's
// (relay-config limits section, newest config.rs) unless marked Baton.
//
// Per-type limits follow Relay's check_envelope_size_limits: types that
// share a group (see TypeInfo.LimitKey) share the per-envelope count and
// total; container items (item_count + a container content type) are checked
// by average inner-item size. Unknown item types only count against
// MaxEnvelopeSize and MaxItems.
type Limits struct {
	// MaxEnvelopeSize bounds the whole body (max_envelope_size, 200 MiB).
	MaxEnvelopeSize int
	// MaxItems bounds the number of items (Baton: 1000; Relay has no such
	// limit beyond the per-type counts).
	MaxItems int
	// MaxHeaderLine bounds one header: the envelope header or an item header
	// (Baton: 64 KiB; Relay has none).
	MaxHeaderLine int

	// MaxEventSize bounds event, transaction, security, raw_security,
	// replay_event, feedback, form_data and nel items; at most one of them
	// (nel excepted) per envelope (max_event_size, 1 MiB).
	MaxEventSize int
	// MaxAttachmentSize bounds one attachment, unreal_report or user_report
	// (max_attachment_size, 200 MiB).
	MaxAttachmentSize int
	// MaxAttachmentsSize bounds their total per envelope
	// (max_attachments_size, 200 MiB).
	MaxAttachmentsSize int
	// MaxAttachmentCount bounds their number per envelope
	// (max_attachment_count, 30).
	MaxAttachmentCount int
	// MaxSessionCount bounds session + sessions items per envelope
	// (max_session_count, 100).
	MaxSessionCount int
	// MaxSessionsSize bounds one session(s) item and their total
	// (max_sessions_size, 10 MiB).
	MaxSessionsSize int
	// MaxClientReportsSize bounds one client_report and their total
	// (max_client_reports_size, 100 KiB).
	MaxClientReportsSize int
	// MaxClientReportsCount bounds client_report items per envelope
	// (max_client_reports_count, 100).
	MaxClientReportsCount int
	// MaxStatsdSize bounds the statsd item, one per envelope
	// (max_statsd_size, 1 MiB).
	MaxStatsdSize int
	// MaxMetricBucketsSize bounds the metric_buckets item, one per envelope
	// (max_metric_buckets_size, 1 MiB).
	MaxMetricBucketsSize int
	// MaxCheckInSize bounds the check_in item, one per envelope
	// (max_check_in_size, 100 KiB).
	MaxCheckInSize int
	// MaxLogSize bounds one log (average inner item of a container; one log
	// item per envelope) (max_log_size, 2 MiB).
	MaxLogSize int
	// MaxTraceMetricSize is the same for trace_metric
	// (max_trace_metric_size, 1 MiB).
	MaxTraceMetricSize int
	// MaxSpanSize bounds one span (average for span containers)
	// (max_span_size, 10 MiB).
	MaxSpanSize int
	// MaxStandaloneSpanCount bounds non-container span items per envelope
	// (max_standalone_span_count, 25).
	MaxStandaloneSpanCount int
	// MaxContainerSize bounds one container item (log, trace_metric, span)
	// and integration items (max_container_size, 12 MiB).
	MaxContainerSize int
	// MaxProfileSize bounds the profile or profile_chunk item, one per
	// envelope (max_profile_size, 50 MiB).
	MaxProfileSize int
	// MaxReplaySize bounds the replay_recording and the replay_video item,
	// one of each per envelope (max_replay_compressed_size, 10 MiB).
	MaxReplaySize int
	// MaxReplayUncompressedSize bounds a replay_recording's recording after
	// decompression (max_replay_uncompressed_size, 100 MiB). Checked by
	// Envelope.CheckReplay, not Parse.
	MaxReplayUncompressedSize int
	// MaxReplayMessageSize bounds the replay message of one envelope: its
	// replay_event, replay_recording and replay_video together
	// (max_replay_message_size, 15 MiB). Checked by Envelope.CheckReplay,
	// not Parse.
	MaxReplayMessageSize int

	// AllowInternalItems lets Parse accept Relay-internal item types
	// (integration). Client envelopes carrying them are invalid in Relay, so
	// leave it false on ingest; set it to re-read envelopes Baton built.
	AllowInternalItems bool
}

// DefaultLimits returns Relay's default limits (plus Baton's own guards).
func DefaultLimits() Limits {
	return Limits{
		MaxEnvelopeSize:           200 * mib,
		MaxItems:                  1000,
		MaxHeaderLine:             64 * kib,
		MaxEventSize:              1 * mib,
		MaxAttachmentSize:         200 * mib,
		MaxAttachmentsSize:        200 * mib,
		MaxAttachmentCount:        30,
		MaxSessionCount:           100,
		MaxSessionsSize:           10 * mib,
		MaxClientReportsSize:      100 * kib,
		MaxClientReportsCount:     100,
		MaxStatsdSize:             1 * mib,
		MaxMetricBucketsSize:      1 * mib,
		MaxCheckInSize:            100 * kib,
		MaxLogSize:                2 * mib,
		MaxTraceMetricSize:        1 * mib,
		MaxSpanSize:               10 * mib,
		MaxStandaloneSpanCount:    25,
		MaxContainerSize:          12 * mib,
		MaxProfileSize:            50 * mib,
		MaxReplaySize:             10 * mib,
		MaxReplayUncompressedSize: 100 * mib,
		MaxReplayMessageSize:      15 * mib,
	}
}

// withDefaults returns l with every zero (or negative) field set to its
// default.
func (l *Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l == nil {
		return d
	}
	r := *l
	fill := func(v *int, def int) {
		if *v <= 0 {
			*v = def
		}
	}
	fill(&r.MaxEnvelopeSize, d.MaxEnvelopeSize)
	fill(&r.MaxItems, d.MaxItems)
	fill(&r.MaxHeaderLine, d.MaxHeaderLine)
	fill(&r.MaxEventSize, d.MaxEventSize)
	fill(&r.MaxAttachmentSize, d.MaxAttachmentSize)
	fill(&r.MaxAttachmentsSize, d.MaxAttachmentsSize)
	fill(&r.MaxAttachmentCount, d.MaxAttachmentCount)
	fill(&r.MaxSessionCount, d.MaxSessionCount)
	fill(&r.MaxSessionsSize, d.MaxSessionsSize)
	fill(&r.MaxClientReportsSize, d.MaxClientReportsSize)
	fill(&r.MaxClientReportsCount, d.MaxClientReportsCount)
	fill(&r.MaxStatsdSize, d.MaxStatsdSize)
	fill(&r.MaxMetricBucketsSize, d.MaxMetricBucketsSize)
	fill(&r.MaxCheckInSize, d.MaxCheckInSize)
	fill(&r.MaxLogSize, d.MaxLogSize)
	fill(&r.MaxTraceMetricSize, d.MaxTraceMetricSize)
	fill(&r.MaxSpanSize, d.MaxSpanSize)
	fill(&r.MaxStandaloneSpanCount, d.MaxStandaloneSpanCount)
	fill(&r.MaxContainerSize, d.MaxContainerSize)
	fill(&r.MaxProfileSize, d.MaxProfileSize)
	fill(&r.MaxReplaySize, d.MaxReplaySize)
	fill(&r.MaxReplayUncompressedSize, d.MaxReplayUncompressedSize)
	fill(&r.MaxReplayMessageSize, d.MaxReplayMessageSize)
	return r
}

// groupLimit is the state of one limit group while an envelope is parsed.
type groupLimit struct {
	itemSize, totalCount, totalSize int
	sizeKey, countKey, totalKey     string
}

// groupLimits returns the limits of group g under l.
func (l *Limits) groupLimits(g limitGroup) groupLimit {
	const unlimited = int(^uint(0) >> 1)
	switch g {
	case limitEvent:
		return groupLimit{l.MaxEventSize, 1, l.MaxEventSize, "max_event_size", "max_event_size", "max_event_size"}
	case limitAttachment:
		return groupLimit{l.MaxAttachmentSize, l.MaxAttachmentCount, l.MaxAttachmentsSize, "max_attachment_size", "max_attachment_count", "max_attachments_size"}
	case limitReplayRecording, limitReplayVideo:
		return groupLimit{l.MaxReplaySize, 1, l.MaxReplaySize, "max_replay_compressed_size", "max_replay_compressed_size", "max_replay_compressed_size"}
	case limitSession:
		return groupLimit{l.MaxSessionsSize, l.MaxSessionCount, l.MaxSessionsSize, "max_sessions_size", "max_session_count", "max_sessions_size"}
	case limitClientReport:
		return groupLimit{l.MaxClientReportsSize, l.MaxClientReportsCount, l.MaxClientReportsSize, "max_client_reports_size", "max_client_reports_count", "max_client_reports_size"}
	case limitProfile:
		return groupLimit{l.MaxProfileSize, 1, l.MaxProfileSize, "max_profile_size", "max_profile_size", "max_profile_size"}
	case limitCheckIn:
		return groupLimit{l.MaxCheckInSize, 1, l.MaxCheckInSize, "max_check_in_size", "max_check_in_size", "max_check_in_size"}
	case limitStatsd:
		return groupLimit{l.MaxStatsdSize, 1, l.MaxStatsdSize, "max_statsd_size", "max_statsd_size", "max_statsd_size"}
	case limitMetricBuckets:
		return groupLimit{l.MaxMetricBucketsSize, 1, l.MaxMetricBucketsSize, "max_metric_buckets_size", "max_metric_buckets_size", "max_metric_buckets_size"}
	case limitLog:
		return groupLimit{l.MaxLogSize, 1, l.MaxContainerSize, "max_log_size", "max_log_size", "max_container_size"}
	case limitTraceMetric:
		return groupLimit{l.MaxTraceMetricSize, 1, l.MaxContainerSize, "max_trace_metric_size", "max_trace_metric_size", "max_container_size"}
	case limitSpan:
		return groupLimit{l.MaxSpanSize, 1, l.MaxContainerSize, "max_span_size", "max_span_size", "max_container_size"}
	case limitSpanLegacy:
		return groupLimit{l.MaxSpanSize, l.MaxStandaloneSpanCount, l.MaxContainerSize, "max_span_size", "max_standalone_span_count", "max_container_size"}
	case limitLogIntegration, limitSpanIntegration:
		return groupLimit{l.MaxContainerSize, 1, l.MaxContainerSize, "max_container_size", "max_container_size", "max_container_size"}
	case limitNEL:
		return groupLimit{l.MaxEventSize, unlimited, unlimited, "max_event_size", "", ""}
	}
	return groupLimit{unlimited, unlimited, unlimited, "", "", ""}
}

// ErrInvalid is the cause of every parse failure that is not a limit: bad
// framing, invalid JSON, a header that is not an object, a bad length, a
// missing type. Relay answers these with 400.
var ErrInvalid = errors.New("envelope: invalid")

// ErrTooLarge is the cause of every size or count limit violation
// (*LimitError unwraps to it). Relay answers these with 413.
var ErrTooLarge = errors.New("envelope: too large")

// ParseError is the error of every failed parse or conversion. Unwrap gives
// ErrInvalid or a *LimitError, so errors.Is(err, ErrInvalid) and
// errors.Is(err, ErrTooLarge) both work.
type ParseError struct {
	// Offset is the byte offset in the input where the problem was found:
	// the bad byte for syntax errors, the item header for limit violations,
	// the limit itself for an oversized envelope.
	Offset int
	// Err is ErrInvalid or a *LimitError.
	Err error
	// Msg says what is wrong, without the offset.
	Msg string
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("envelope: %s (at offset %d)", e.Msg, e.Offset)
}

func (e *ParseError) Unwrap() error { return e.Err }

// LimitError describes a violated size or count limit. It unwraps to
// ErrTooLarge.
type LimitError struct {
	// Limit is the Relay limits key, e.g. "max_event_size",
	// "max_attachment_count", or Baton's "max_items" / "max_header_line".
	// Relay's one-per-envelope rules have no key of their own; they report
	// the group's size key with Kind "total_count".
	Limit string
	// Kind is "item_size", "total_count" or "total_size" (Relay's names)
	// for per-type limits, "envelope" for envelope-wide ones.
	Kind string
	// ItemType is the offending item's type as sent ("" for envelope-wide
	// limits).
	ItemType string
	// Size is the measured size in bytes (or the count, for count limits);
	// Max is the limit.
	Size, Max int
}

func (e *LimitError) Error() string {
	what := "envelope"
	if e.ItemType != "" {
		what = "item type '" + e.ItemType + "'"
	}
	unit := " bytes"
	if e.Kind == "total_count" || e.Limit == "max_items" {
		unit = " items"
	}
	return fmt.Sprintf("%s exceeds %s (%s): %d%s > %d", what, e.Limit, e.Kind, e.Size, unit, e.Max)
}

func (e *LimitError) Unwrap() error { return ErrTooLarge }

func invalidAt(off int, msg string) error {
	return &ParseError{Offset: off, Err: ErrInvalid, Msg: msg}
}

func limitAt(off int, le *LimitError) error {
	return &ParseError{Offset: off, Err: le, Msg: le.Error()}
}
