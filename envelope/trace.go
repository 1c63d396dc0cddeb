package envelope

// MaxTraceID bounds the trace id TraceID returns: Sentry's are 32 hex
// characters; anything much longer is not a trace id worth steering by.
const MaxTraceID = 64

// TraceID returns the trace id of the dynamic sampling context in the
// header of the serialized envelope b (`trace.trace_id` on its first line),
// or nil when there is none, it is not a plain string (escaped, empty or
// longer than MaxTraceID) or the header is not valid JSON. The result
// aliases b. It scans the header without decoding it and does not allocate:
// forwarders call it per envelope when a route steers by trace.
func TraceID(b []byte) []byte {
	var oi objIter
	if oi.init(b, 0) != nil {
		return nil
	}
	for oi.next() {
		if !oi.keyIs("trace") {
			continue
		}
		var ti objIter
		if ti.init(oi.b[:oi.valEnd], oi.valStart) != nil {
			return nil
		}
		for ti.next() {
			if !ti.keyIs("trace_id") {
				continue
			}
			id, esc, ok := stringValue(ti.b[ti.valStart:ti.valEnd])
			if !ok || esc || len(id) == 0 || len(id) > MaxTraceID {
				return nil
			}
			return id
		}
		return nil
	}
	return nil
}
