package envelope

// This file is the item-type registry: one table row per item type Relay
// knows, with everything the rest of Baton derives from the type. Add a new
// type here and nowhere else (the class rules that depend on more than the
// type, such as minidump attachments, live in classify in envelope.go).

// ItemType identifies an envelope item type. ItemUnknown covers every type
// Baton does not know; such items keep their name in Item.TypeName and are
// forwarded unchanged.
type ItemType uint8

const (
	ItemUnknown         ItemType = iota
	ItemEvent                    // "event": error or default event
	ItemTransaction              // "transaction"
	ItemSecurity                 // "security": security report normalised into an event
	ItemRawSecurity              // "raw_security": CSP / Expect-CT / HPKP report as the browser sent it
	ItemNEL                      // "nel": Network Error Logging report
	ItemUnrealReport             // "unreal_report": Unreal Engine crash container
	ItemAttachment               // "attachment"
	ItemFormData                 // "form_data": multipart form fields of a minidump upload
	ItemUserReport               // "user_report": legacy user feedback
	ItemSession                  // "session": one session update
	ItemSessions                 // "sessions": session aggregates
	ItemStatsd                   // "statsd": metrics in statsd text format
	ItemMetricBuckets            // "metric_buckets": pre-aggregated metric buckets (JSON)
	ItemClientReport             // "client_report": SDK discard statistics
	ItemProfile                  // "profile": transaction profile
	ItemProfileChunk             // "profile_chunk" (alias "profile_chunk_ui")
	ItemReplayEvent              // "replay_event"
	ItemReplayRecording          // "replay_recording"
	ItemReplayVideo              // "replay_video"
	ItemCheckIn                  // "check_in": cron monitor check-in
	ItemSpan                     // "span": standalone span or span v2 container
	ItemOtelSpan                 // "otel_span" (older Relay)
	ItemOtelTracesData           // "otel_traces_data" (older Relay)
	ItemLog                      // "log": log container
	ItemOtelLog                  // "otel_log" (older Relay)
	ItemTraceMetric              // "trace_metric": trace metric container
	ItemFeedback                 // "feedback" (alias "user_report_v2"): user feedback event
	ItemIntegration              // "integration": Relay-internal, never accepted from clients

	numItemTypes
)

// limitGroup names the size-limit state an item type counts against. Types
// in one group share the per-envelope count and total size, as in Relay's
// check_envelope_size_limits.
type limitGroup uint8

const (
	limitNone limitGroup = iota // unknown types: only envelope-wide limits
	limitEvent
	limitAttachment
	limitReplayRecording
	limitReplayVideo
	limitSession
	limitClientReport
	limitProfile
	limitCheckIn
	limitStatsd
	limitMetricBuckets
	limitLog
	limitTraceMetric
	limitSpan       // span containers (content type ...span.v2+json)
	limitSpanLegacy // standalone spans: item without a container content type
	limitLogIntegration
	limitSpanIntegration
	limitNEL
	numLimitGroups
)

// TypeInfo is the registry row of an item type.
type TypeInfo struct {
	Type ItemType
	// Name is the canonical wire name.
	Name string
	// Category is the data category the item counts against for rate limits
	// and outcomes (the primary one; attachments also count attachment_item,
	// logs log_byte, and so on). CategoryUnknown means none: Relay counts
	// nel, form_data, statsd, metric_buckets and client_report nowhere.
	Category Category
	// Class is the item's traffic class when it travels on its own; see
	// Envelope.Parse for the rules that move items into their event's class.
	Class Class
	// LimitKey is the Relay limits key of the per-item size limit ("" for
	// unknown types, which only count against max_envelope_size).
	LimitKey string
	// RequiresEvent: the item needs an event id (Relay's requires_event).
	RequiresEvent bool
	// CreatesEvent: the item becomes an event (Relay's creates_event). For
	// attachments this depends on attachment_type; see Item.CreatesEvent.
	CreatesEvent bool
	// Container: the item may hold several logical items counted by
	// item_count (Relay's can_support_container).
	Container bool
	// Internal: only Relay itself may create it; clients' envelopes carrying
	// it are rejected unless Limits.AllowInternalItems.
	Internal bool

	group limitGroup
}

var registry = [numItemTypes]TypeInfo{
	ItemUnknown: {ItemUnknown, "unknown", CategoryUnknown, ClassUnknown, "", false, false, true, false, limitNone},

	ItemEvent:        {ItemEvent, "event", CategoryError, ClassError, "max_event_size", true, true, false, false, limitEvent},
	ItemTransaction:  {ItemTransaction, "transaction", CategoryTransaction, ClassTransaction, "max_event_size", true, true, false, false, limitEvent},
	ItemSecurity:     {ItemSecurity, "security", CategorySecurity, ClassSecurity, "max_event_size", true, true, false, false, limitEvent},
	ItemRawSecurity:  {ItemRawSecurity, "raw_security", CategorySecurity, ClassSecurity, "max_event_size", true, true, false, false, limitEvent},
	ItemNEL:          {ItemNEL, "nel", CategoryUnknown, ClassSecurity, "max_event_size", false, false, false, false, limitNEL},
	ItemUnrealReport: {ItemUnrealReport, "unreal_report", CategoryError, ClassError, "max_attachment_size", true, true, false, false, limitAttachment},
	ItemAttachment:   {ItemAttachment, "attachment", CategoryAttachment, ClassAttachment, "max_attachment_size", true, false, false, false, limitAttachment},
	ItemFormData:     {ItemFormData, "form_data", CategoryUnknown, ClassAttachment, "max_event_size", true, false, false, false, limitEvent},
	ItemUserReport:   {ItemUserReport, "user_report", CategoryFeedback, ClassFeedback, "max_attachment_size", true, false, false, false, limitAttachment},

	ItemSession:       {ItemSession, "session", CategorySession, ClassSession, "max_sessions_size", false, false, true, false, limitSession},
	ItemSessions:      {ItemSessions, "sessions", CategorySession, ClassSession, "max_sessions_size", false, false, true, false, limitSession},
	ItemStatsd:        {ItemStatsd, "statsd", CategoryUnknown, ClassMetric, "max_statsd_size", false, false, true, false, limitStatsd},
	ItemMetricBuckets: {ItemMetricBuckets, "metric_buckets", CategoryUnknown, ClassMetric, "max_metric_buckets_size", false, false, true, false, limitMetricBuckets},
	ItemClientReport:  {ItemClientReport, "client_report", CategoryUnknown, ClassClientReport, "max_client_reports_size", false, false, true, false, limitClientReport},

	ItemProfile:      {ItemProfile, "profile", CategoryProfile, ClassProfile, "max_profile_size", true, false, true, false, limitProfile},
	ItemProfileChunk: {ItemProfileChunk, "profile_chunk", CategoryProfileChunk, ClassProfile, "max_profile_size", false, false, true, false, limitProfile},

	ItemReplayEvent:     {ItemReplayEvent, "replay_event", CategoryReplay, ClassReplay, "max_event_size", true, false, false, false, limitEvent},
	ItemReplayRecording: {ItemReplayRecording, "replay_recording", CategoryReplay, ClassReplay, "max_replay_compressed_size", false, false, false, false, limitReplayRecording},
	ItemReplayVideo:     {ItemReplayVideo, "replay_video", CategoryReplay, ClassReplay, "max_replay_compressed_size", false, false, false, false, limitReplayVideo},

	ItemCheckIn: {ItemCheckIn, "check_in", CategoryMonitor, ClassCheckIn, "max_check_in_size", false, false, true, false, limitCheckIn},

	ItemSpan:           {ItemSpan, "span", CategorySpan, ClassSpan, "max_span_size", false, false, true, false, limitSpan},
	ItemOtelSpan:       {ItemOtelSpan, "otel_span", CategorySpan, ClassSpan, "max_span_size", false, false, true, false, limitSpanLegacy},
	ItemOtelTracesData: {ItemOtelTracesData, "otel_traces_data", CategorySpan, ClassSpan, "max_container_size", false, false, false, false, limitSpanIntegration},

	ItemLog:         {ItemLog, "log", CategoryLogItem, ClassLog, "max_log_size", false, false, true, false, limitLog},
	ItemOtelLog:     {ItemOtelLog, "otel_log", CategoryLogItem, ClassLog, "max_log_size", false, false, true, false, limitLog},
	ItemTraceMetric: {ItemTraceMetric, "trace_metric", CategoryTraceMetric, ClassTraceMetric, "max_trace_metric_size", false, false, true, false, limitTraceMetric},

	ItemFeedback: {ItemFeedback, "feedback", CategoryFeedback, ClassFeedback, "max_event_size", true, true, false, false, limitEvent},

	ItemIntegration: {ItemIntegration, "integration", CategoryUnknown, ClassLog, "max_container_size", false, false, false, true, limitLogIntegration},
}

// typeAliases are other wire names Relay (or older SDKs) use for a type.
// "user_report_v2" is the Rust variant and data-category name of feedback;
// Relay itself only reads "feedback" as the item type, Baton accepts both
// and forwards the name as sent.
var typeAliases = map[string]ItemType{
	"profile_chunk_ui": ItemProfileChunk,
	"user_report_v2":   ItemFeedback,
}

type typeName struct {
	t    ItemType
	name string // the wire name as listed, so Item.TypeName needs no allocation
}

var typesByName = func() map[string]typeName {
	m := make(map[string]typeName, len(registry)+len(typeAliases))
	for _, ti := range registry[1:] {
		m[ti.Name] = typeName{ti.Type, ti.Name}
	}
	for name, t := range typeAliases {
		m[name] = typeName{t, name}
	}
	return m
}()

// Info returns the registry row of t (the ItemUnknown row for unknown
// values).
func (t ItemType) Info() *TypeInfo {
	if t >= numItemTypes {
		t = ItemUnknown
	}
	return &registry[t]
}

// String returns the canonical wire name ("unknown" for ItemUnknown).
func (t ItemType) String() string { return t.Info().Name }

// ClassOf returns the class of an item of type t travelling on its own
// (Envelope.Parse may move it into its event's class; see the package
// documentation).
func ClassOf(t ItemType) Class { return t.Info().Class }

// ParseItemType returns the type with the given wire name (aliases
// included), or ItemUnknown.
func ParseItemType(name string) ItemType {
	return typesByName[name].t
}

// ItemTypes returns every known type in id order, ItemUnknown excluded.
func ItemTypes() []ItemType {
	ts := make([]ItemType, 0, numItemTypes-1)
	for t := ItemUnknown + 1; t < numItemTypes; t++ {
		ts = append(ts, t)
	}
	return ts
}

// Attachment types (item header attachment_type). Unknown values are kept.
const (
	AttachmentTypeAttachment       = "event.attachment" // the default
	AttachmentTypeMinidump         = "event.minidump"
	AttachmentTypeAppleCrashReport = "event.applecrashreport"
	AttachmentTypeEventPayload     = "event.payload" // msgpack event
	AttachmentTypeBreadcrumbs      = "event.breadcrumbs"
	AttachmentTypeViewHierarchy    = "event.view_hierarchy"
	AttachmentTypeProsperodump     = "playstation.prosperodump"
	AttachmentTypeDyingMessage     = "nswitch.dying_message"
	AttachmentTypeUnrealContext    = "unreal.context"
	AttachmentTypeUnrealLogs       = "unreal.logs"
)

// attachmentTypes lists the known attachment types and whether an
// attachment of that type creates an event (Relay's creates_event).
var attachmentTypes = [...]struct {
	name    string
	creates bool
}{
	{AttachmentTypeAttachment, false},
	{AttachmentTypeMinidump, true},
	{AttachmentTypeAppleCrashReport, true},
	{AttachmentTypeEventPayload, true},
	{AttachmentTypeBreadcrumbs, true},
	{AttachmentTypeViewHierarchy, false},
	{AttachmentTypeProsperodump, true},
	{AttachmentTypeDyingMessage, false},
	{AttachmentTypeUnrealContext, false},
	{AttachmentTypeUnrealLogs, false},
}

// AttachmentCreatesEvent reports whether an attachment of the given
// attachment_type creates an event by itself (crash reports and event
// payloads do; plain attachments and unknown types do not).
func AttachmentCreatesEvent(attachmentType string) bool {
	for _, a := range attachmentTypes {
		if a.name == attachmentType {
			return a.creates
		}
	}
	return false
}

// Content types Baton recognises. Item headers carrying one of these (same
// spelling) reuse the constant instead of allocating a string.
const (
	ContentTypeJSON                 = "application/json"
	ContentTypeText                 = "text/plain"
	ContentTypeOctetStream          = "application/octet-stream"
	ContentTypeMinidump             = "application/x-dmp"
	ContentTypeEnvelope             = "application/x-sentry-envelope"
	ContentTypeMsgpack              = "application/x-msgpack"
	ContentTypeNDJSON               = "application/x-ndjson"
	ContentTypeProtobuf             = "application/x-protobuf"
	ContentTypeXML                  = "text/xml"
	ContentTypeLogContainer         = "application/vnd.sentry.items.log+json"
	ContentTypeSpanV2Container      = "application/vnd.sentry.items.span.v2+json"
	ContentTypeTraceMetricContainer = "application/vnd.sentry.items.trace-metric+json"
	ContentTypeTraceAttachment      = "application/vnd.sentry.trace-attachment"
	ContentTypeAttachmentRef        = "application/vnd.sentry.attachment-ref"
)

var knownContentTypes = [...]string{
	ContentTypeJSON, ContentTypeText, ContentTypeOctetStream, ContentTypeMinidump,
	ContentTypeEnvelope, ContentTypeMsgpack, ContentTypeNDJSON, ContentTypeProtobuf,
	ContentTypeXML, "application/xml", ContentTypeLogContainer, ContentTypeSpanV2Container,
	ContentTypeTraceMetricContainer, ContentTypeTraceAttachment, "application/vnd.sentry.attachment.v2",
	ContentTypeAttachmentRef, "image/png", "image/jpeg", "text/html",
}

// IsContainerContentType reports whether ct is one of the item-container
// content types (payload {"items":[...]}, counted by item_count). Case
// insensitive, as in Relay.
func IsContainerContentType(ct string) bool {
	return equalFoldASCII(ct, ContentTypeLogContainer) ||
		equalFoldASCII(ct, ContentTypeSpanV2Container) ||
		equalFoldASCII(ct, ContentTypeTraceMetricContainer)
}

func equalFoldASCII(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		ca, cb := a[i], b[i]
		if 'A' <= ca && ca <= 'Z' {
			ca += 'a' - 'A'
		}
		if 'A' <= cb && cb <= 'Z' {
			cb += 'a' - 'A'
		}
		if ca != cb {
			return false
		}
	}
	return true
}

// Category is a data category: what rate limits, quotas and outcomes count.
// Values are Relay's numeric ids (section 2.6 of docs/relay-protocol.md).
type Category int8

const (
	CategoryUnknown              Category = -1
	CategoryDefault              Category = 0
	CategoryError                Category = 1
	CategoryTransaction          Category = 2
	CategorySecurity             Category = 3
	CategoryAttachment           Category = 4
	CategorySession              Category = 5
	CategoryProfile              Category = 6
	CategoryReplay               Category = 7
	CategoryTransactionProcessed Category = 8
	CategoryTransactionIndexed   Category = 9
	CategoryMonitor              Category = 10
	CategoryProfileIndexed       Category = 11
	CategorySpan                 Category = 12
	CategoryMonitorSeat          Category = 13
	CategoryFeedback             Category = 14 // also named user_report_v2
	CategoryMetricBucket         Category = 15
	CategorySpanIndexed          Category = 16
	CategoryProfileDuration      Category = 17
	CategoryProfileChunk         Category = 18
	CategoryMetricSecond         Category = 19
	CategoryReplayVideo          Category = 20
	CategoryUptime               Category = 21
	CategoryAttachmentItem       Category = 22
	CategoryLogItem              Category = 23
	CategoryLogByte              Category = 24
	CategoryProfileDurationUI    Category = 25
	CategoryProfileChunkUI       Category = 26
	CategorySeerAutofix          Category = 27
	CategorySeerScanner          Category = 28
	CategoryPreventUser          Category = 29
	CategoryPreventReview        Category = 30
	CategorySizeAnalysis         Category = 31
	CategoryInstallableBuild     Category = 32
	CategoryTraceMetric          Category = 33
	CategorySeerUser             Category = 34
	CategoryProfileBackend       Category = 35
	CategoryProfileUI            Category = 36

	numCategories = 37
)

var categoryNames = [numCategories]string{
	"default", "error", "transaction", "security",
	"attachment", "session", "profile", "replay",
	"transaction_processed", "transaction_indexed", "monitor", "profile_indexed",
	"span", "monitor_seat", "feedback", "metric_bucket",
	"span_indexed", "profile_duration", "profile_chunk", "metric_second",
	"replay_video", "uptime", "attachment_item", "log_item",
	"log_byte", "profile_duration_ui", "profile_chunk_ui", "seer_autofix",
	"seer_scanner", "prevent_user", "prevent_review", "size_analysis",
	"installable_build", "trace_metric", "seer_user", "profile_backend",
	"profile_ui",
}

// String returns the category name used in X-Sentry-Rate-Limits, quotas and
// outcomes ("unknown" for CategoryUnknown and out-of-range values).
func (c Category) String() string {
	if c >= 0 && int(c) < numCategories {
		return categoryNames[c]
	}
	return "unknown"
}

// ParseCategory returns the category with the given name; "user_report_v2"
// is accepted for feedback. Unknown names give CategoryUnknown, false.
func ParseCategory(name string) (Category, bool) {
	if name == "user_report_v2" {
		return CategoryFeedback, true
	}
	for i, n := range categoryNames {
		if n == name {
			return Category(i), true
		}
	}
	return CategoryUnknown, false
}
