package otlp

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"

	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
)

// Content types of the container items the conversions write.
const (
	SpanContentType = "application/vnd.sentry.items.span.v2+json"
	LogContentType  = "application/vnd.sentry.items.log+json"
)

// Options bound a conversion.
type Options struct {
	// MaxSize bounds the payload of the container item in bytes (Relay's
	// max_container_size is what the item must pass next); past it the
	// conversion stops with ErrTooLarge. Zero: no bound.
	MaxSize int
}

// state is the scratch of one conversion, pooled.
type state struct {
	attrs   attrs
	inner   []byte // JSON-string attribute values
	json    []byte // a JSON body with its ids rewritten
	payload []byte // the container item's payload
}

var statePool = sync.Pool{New: func() any { return new(state) }}

// maxPooled keeps the scratch of large requests out of the pool.
const maxPooled = 64 << 10

func getState() *state { return statePool.Get().(*state) }

func putState(st *state) {
	clear(st.attrs[:cap(st.attrs)]) // drop references to decoded messages
	st.attrs = st.attrs[:0]
	if cap(st.inner) > maxPooled || cap(st.json) > maxPooled || cap(st.payload) > maxPooled {
		return
	}
	statePool.Put(st)
}

// AppendTraces appends to dst an envelope with the spans of an OTLP traces
// body (ExportTraceServiceRequest) in one span v2 container item, and
// returns it with the number of spans. A body without spans gives an
// envelope without items.
func AppendTraces(dst []byte, f Format, body []byte, o Options) ([]byte, int, error) {
	var td tracepb.TracesData
	st := getState()
	defer putState(st)
	var err error
	if st.json, err = unmarshal(f, body, &td, st.json); err != nil {
		return dst, 0, err
	}
	st.payload = append(st.payload[:0], `{"version":2,"items":[`...)
	n := 0
	for _, rs := range td.GetResourceSpans() {
		res := rs.GetResource()
		for _, ss := range rs.GetScopeSpans() {
			scope := ss.GetScope()
			for _, sp := range ss.GetSpans() {
				if n > 0 {
					st.payload = append(st.payload, ',')
				}
				if st.payload, err = st.appendSpan(st.payload, sp, res, scope, n); err != nil {
					return dst, 0, err
				}
				n++
				if o.MaxSize > 0 && len(st.payload) > o.MaxSize {
					return dst, 0, fmt.Errorf("%w: the spans pass %d bytes as Sentry items", ErrTooLarge, o.MaxSize)
				}
			}
		}
	}
	st.payload = append(st.payload, "]}"...)
	return appendEnvelope(dst, "span", SpanContentType, n, st.payload), n, nil
}

// AppendLogs is AppendTraces for an OTLP logs body
// (ExportLogsServiceRequest): one log container item.
func AppendLogs(dst []byte, f Format, body []byte, o Options) ([]byte, int, error) {
	var ld logspb.LogsData
	st := getState()
	defer putState(st)
	var err error
	if st.json, err = unmarshal(f, body, &ld, st.json); err != nil {
		return dst, 0, err
	}
	st.payload = append(st.payload[:0], `{"items":[`...)
	n := 0
	for _, rl := range ld.GetResourceLogs() {
		res := rl.GetResource()
		for _, sl := range rl.GetScopeLogs() {
			scope := sl.GetScope()
			for _, lr := range sl.GetLogRecords() {
				if n > 0 {
					st.payload = append(st.payload, ',')
				}
				st.payload = st.appendLog(st.payload, lr, res, scope)
				n++
				if o.MaxSize > 0 && len(st.payload) > o.MaxSize {
					return dst, 0, fmt.Errorf("%w: the logs pass %d bytes as Sentry items", ErrTooLarge, o.MaxSize)
				}
			}
		}
	}
	st.payload = append(st.payload, "]}"...)
	return appendEnvelope(dst, "log", LogContentType, n, st.payload), n, nil
}

// appendEnvelope writes an envelope with no header fields and, when n > 0,
// one container item of n items.
func appendEnvelope(dst []byte, typ, contentType string, n int, payload []byte) []byte {
	dst = append(dst, "{}\n"...)
	if n == 0 {
		return dst
	}
	dst = append(dst, `{"type":"`...)
	dst = append(dst, typ...)
	dst = append(dst, `","item_count":`...)
	dst = strconv.AppendInt(dst, int64(n), 10)
	dst = append(dst, `,"content_type":"`...)
	dst = append(dst, contentType...)
	dst = append(dst, `","length":`...)
	dst = strconv.AppendInt(dst, int64(len(payload)), 10)
	dst = append(dst, "}\n"...)
	dst = append(dst, payload...)
	return append(dst, '\n')
}

// Span flags (trace/v1 SpanFlags): whether the parent is known to be
// remote, and whether it is.
const (
	flagHasIsRemote = uint32(tracepb.SpanFlags_SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK)
	flagIsRemote    = uint32(tracepb.SpanFlags_SPAN_FLAGS_CONTEXT_IS_REMOTE_MASK)
	// w3cSampled is the sampled bit of a link's W3C trace flags.
	w3cSampled = 1
)

// spanKinds are Sentry's names of OTLP's span kinds (unspecified: none).
var spanKinds = [...]string{1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}

// appendSpan writes sp as a Sentry span v2 (relay-spans otel_to_sentry_v2).
// i is its index in the request, for errors.
func (st *state) appendSpan(dst []byte, sp *tracepb.Span, res *resourcepb.Resource,
	scope *commonpb.InstrumentationScope, i int) ([]byte, error) {
	if len(sp.GetSpanId()) != 8 {
		return dst, fmt.Errorf("%w: span %d: spanId must be 8 bytes, not %d", ErrInvalid, i, len(sp.GetSpanId()))
	}
	parent := sp.GetParentSpanId()
	if len(parent) != 0 && len(parent) != 8 {
		return dst, fmt.Errorf("%w: span %d: parentSpanId must be 8 bytes, not %d", ErrInvalid, i, len(parent))
	}
	for _, l := range sp.GetLinks() {
		if len(l.GetSpanId()) != 8 || len(l.GetTraceId()) != 16 {
			return dst, fmt.Errorf("%w: span %d: a link needs a 16-byte traceId and an 8-byte spanId", ErrInvalid, i)
		}
	}

	dst = append(dst, `{"trace_id":`...)
	dst = appendTraceID(dst, sp.GetTraceId())
	if len(parent) == 8 {
		dst = append(dst, `,"parent_span_id":`...)
		dst = appendHex(dst, parent)
	}
	dst = append(dst, `,"span_id":`...)
	dst = appendHex(dst, sp.GetSpanId())
	if name := spanName(sp); name != "" {
		dst = append(dst, `,"name":`...)
		dst = appendString(dst, name)
	}
	dst = append(dst, `,"status":`...)
	if sp.GetStatus().GetCode() == tracepb.Status_STATUS_CODE_ERROR {
		dst = append(dst, `"error"`...)
	} else {
		dst = append(dst, `"ok"`...)
	}
	flags := sp.GetFlags()
	remote := flags&flagHasIsRemote != 0 && flags&flagIsRemote != 0
	if remote { // a remote span is a segment; not every segment is remote
		dst = append(dst, `,"is_segment":true`...)
	}
	dst = append(dst, `,"start_timestamp":`...)
	dst = appendTimestamp(dst, sp.GetStartTimeUnixNano())
	dst = append(dst, `,"end_timestamp":`...)
	dst = appendTimestamp(dst, sp.GetEndTimeUnixNano())
	if links := sp.GetLinks(); len(links) > 0 {
		dst = append(dst, `,"links":[`...)
		for j, l := range links {
			if j > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, `{"trace_id":`...)
			dst = appendHex(dst, l.GetTraceId())
			dst = append(dst, `,"span_id":`...)
			dst = appendHex(dst, l.GetSpanId())
			dst = append(dst, `,"sampled":`...)
			dst = strconv.AppendBool(dst, l.GetFlags()&w3cSampled != 0)
			dst = append(dst, `,"attributes":`...)
			st.attrs = st.attrs[:0]
			st.attrs.addAll("", l.GetAttributes())
			dst, st.inner = appendAttrs(dst, st.attrs, st.inner)
			dst = append(dst, '}')
		}
		dst = append(dst, ']')
	}

	a := st.attrs[:0]
	a.addScope(res, scope)
	a.addString("sentry.origin", "auto.otlp.spans")
	if p := platform(res); p != "" {
		a.addString("sentry.platform", p)
	}
	a.addAll("", sp.GetAttributes())
	if s := sp.GetStatus(); s.GetMessage() != "" {
		a.addString("sentry.status.message", s.GetMessage())
	}
	if flags&flagHasIsRemote != 0 {
		a.addBool("sentry.is_remote", remote)
	}
	if k := int(sp.GetKind()); k > 0 && k < len(spanKinds) {
		a.addString("sentry.kind", spanKinds[k])
	}
	st.attrs = a
	dst = append(dst, `,"attributes":`...)
	dst, st.inner = appendAttrs(dst, a, st.inner)
	return append(dst, '}'), nil
}

// spanName is the span's name or, when it has none, what Relay derives
// from its attributes: "db" for database spans, the HTTP op for HTTP ones.
func spanName(sp *tracepb.Span) string {
	if n := sp.GetName(); n != "" {
		return n
	}
	for _, kv := range sp.GetAttributes() {
		if kv.GetValue().GetValue() == nil {
			continue
		}
		switch k := kv.GetKey(); {
		case strings.HasPrefix(k, "db"):
			return "db"
		case k == "http.method" || k == "http.request.method":
			switch sp.GetKind() {
			case tracepb.Span_SPAN_KIND_SERVER:
				return "http.server"
			case tracepb.Span_SPAN_KIND_CLIENT:
				return "http.client"
			}
			return "http"
		}
	}
	return ""
}

// platform maps the resource's telemetry.sdk.language to Sentry's platform
// names (relay-otel otel_resource_to_platform).
func platform(res *resourcepb.Resource) string {
	for _, kv := range res.GetAttributes() {
		if kv.GetKey() != "telemetry.sdk.language" {
			continue
		}
		sv, ok := kv.GetValue().GetValue().(*commonpb.AnyValue_StringValue)
		if !ok {
			return ""
		}
		switch sv.StringValue {
		case "dotnet":
			return "csharp"
		case "nodejs":
			return "node"
		case "webjs":
			return "javascript"
		}
		return sv.StringValue
	}
	return ""
}

// appendTraceID writes a 16-byte trace id, or a random one in its place,
// as Relay does for a missing or malformed id.
func appendTraceID(dst, id []byte) []byte {
	if len(id) == 16 {
		return appendHex(dst, id)
	}
	var r [16]byte
	binary.LittleEndian.PutUint64(r[:8], rand.Uint64())
	binary.LittleEndian.PutUint64(r[8:], rand.Uint64())
	return appendHex(dst, r[:])
}

// appendLog writes lr as a Sentry log (relay-ourlogs otel_to_sentry).
func (st *state) appendLog(dst []byte, lr *logspb.LogRecord, res *resourcepb.Resource,
	scope *commonpb.InstrumentationScope) []byte {
	ts := lr.GetTimeUnixNano()
	if ts == 0 { // OTel's data model: fall back to when it was observed
		ts = lr.GetObservedTimeUnixNano()
	}
	dst = append(dst, `{"timestamp":`...)
	dst = appendTimestamp(dst, ts)
	dst = append(dst, `,"trace_id":`...)
	dst = appendTraceID(dst, lr.GetTraceId())
	if id := lr.GetSpanId(); len(id) == 8 {
		dst = append(dst, `,"span_id":`...)
		dst = appendHex(dst, id)
	}
	dst = append(dst, `,"level":"`...)
	dst = append(dst, level(int32(lr.GetSeverityNumber()), lr.GetSeverityText())...)
	dst = append(dst, '"')
	if b, ok := lr.GetBody().GetValue().(*commonpb.AnyValue_StringValue); ok {
		dst = append(dst, `,"body":`...)
		dst = appendString(dst, b.StringValue)
	}
	a := st.attrs[:0]
	a.addString("sentry.origin", "auto.otlp.logs")
	a.addScope(res, scope)
	a.addAll("", lr.GetAttributes())
	st.attrs = a
	dst = append(dst, `,"attributes":`...)
	dst, st.inner = appendAttrs(dst, a, st.inner)
	return append(dst, '}')
}

// level maps an OTLP severity to a Sentry log level: by number (1-4 trace,
// 5-8 debug, 9-12 info, 13-16 warn, 17-20 error, 21-24 fatal), else by text,
// else info.
func level(number int32, text string) string {
	switch {
	case number >= 1 && number <= 4:
		return "trace"
	case number >= 5 && number <= 8:
		return "debug"
	case number >= 9 && number <= 12:
		return "info"
	case number >= 13 && number <= 16:
		return "warn"
	case number >= 17 && number <= 20:
		return "error"
	case number >= 21 && number <= 24:
		return "fatal"
	}
	switch strings.ToLower(text) {
	case "trace":
		return "trace"
	case "debug":
		return "debug"
	case "warn", "warning":
		return "warn"
	case "error":
		return "error"
	case "fatal":
		return "fatal"
	}
	return "info"
}
