package normalize

import (
	"errors"
	"strings"
	"testing"
)

// tx is a valid transaction (Relay's new_test_event in validation.rs, at
// this package's receive time) with extra members appended.
func tx(extra string) string {
	return `{"type":"transaction","transaction":"/","start_timestamp":1795600790,"timestamp":1795600795,` +
		`"contexts":{"trace":{"trace_id":"4c79f60c11214eb38604f4ae0781bfb2","span_id":"fa90fdead5f74053","op":"http.server"}},` +
		`"spans":[{"start_timestamp":1795600790,"timestamp":1795600791,"trace_id":"4c79f60c11214eb38604f4ae0781bfb2","span_id":"fa90fdead5f74053","op":"db.statement"}]` +
		extra + `}`
}

// TestTransactionValidation has the cases of Relay's validation.rs tests:
// each drops the transaction with Relay's reason.
func TestTransactionValidation(t *testing.T) {
	n := testNormalizer(t)
	const trace = `"contexts":{"trace":{"trace_id":"4c79f60c11214eb38604f4ae0781bfb2","span_id":"fa90fdead5f74053"}}`
	for _, tc := range []struct{ name, in, reason string }{
		{"valid", tx(""), ""},
		{"missing start", `{"type":"transaction","timestamp":1795600795,` + trace + `}`, "start_timestamp hard-required for transaction events"},
		{"invalid start", `{"type":"transaction","start_timestamp":"soon","timestamp":1795600795,` + trace + `}`, "start_timestamp hard-required for transaction events"},
		{"end before start", `{"type":"transaction","start_timestamp":1795600795,"timestamp":1795600790,` + trace + `}`, "end timestamp is smaller than start timestamp"},
		{"equal timestamps", `{"type":"transaction","start_timestamp":1795600795,"timestamp":"2026-11-25T09:59:55Z",` + trace + `}`, ""},
		{"no contexts", `{"type":"transaction","start_timestamp":1795600790,"timestamp":1795600795}`, "missing valid trace context"},
		{"empty contexts", `{"type":"transaction","start_timestamp":1795600790,"timestamp":1795600795,"contexts":{}}`, "missing valid trace context"},
		{"null trace", `{"type":"transaction","start_timestamp":1795600790,"timestamp":1795600795,"contexts":{"trace":null}}`, "missing valid trace context"},
		{"no trace_id", `{"type":"transaction","start_timestamp":1795600790,"timestamp":1795600795,"contexts":{"trace":{"span_id":"fa90fdead5f74053"}}}`, "trace context is missing trace_id"},
		{"bad trace_id", `{"type":"transaction","start_timestamp":1795600790,"timestamp":1795600795,"contexts":{"trace":{"trace_id":"xyz","span_id":"fa90fdead5f74053"}}}`, "trace context is missing trace_id"},
		{"no span_id", `{"type":"transaction","start_timestamp":1795600790,"timestamp":1795600795,"contexts":{"trace":{"trace_id":"4c79f60c11214eb38604f4ae0781bfb2"}}}`, "trace context is missing span_id"},
		{"bad span_id", `{"type":"transaction","start_timestamp":1795600790,"timestamp":1795600795,"contexts":{"trace":{"trace_id":"4c79f60c11214eb38604f4ae0781bfb2","span_id":"fa90"}}}`, "trace context is missing span_id"},
		{"span not object", tx(`,"x":1`)[:0] + strings.Replace(tx(""), `"spans":[`, `"spans":[1,`, 1), "spans must be valid in transaction event"},
		{"span missing timestamp", strings.Replace(tx(""), `"timestamp":1795600791,`, ``, 1), "span is missing timestamp"},
		{"span missing start", strings.Replace(tx(""), `"start_timestamp":1795600790,"timestamp":1795600791`, `"timestamp":1795600791`, 1), "span is missing start_timestamp"},
		{"span end before start", strings.Replace(tx(""), `"timestamp":1795600791`, `"timestamp":1795600789`, 1), "end timestamp is smaller than start timestamp"},
		{"span missing trace_id", strings.Replace(tx(""), `"timestamp":1795600791,"trace_id":"4c79f60c11214eb38604f4ae0781bfb2",`, `"timestamp":1795600791,`, 1), "span is missing trace_id"},
		{"span missing span_id", strings.Replace(tx(""), `"span_id":"fa90fdead5f74053","op":"db`, `"op":"db`, 1), "span is missing span_id"},
		{"stale span", strings.Replace(tx(""), `"start_timestamp":1795600790,"timestamp":1795600791`, `"start_timestamp":-2,"timestamp":-1`, 1), "spans must be valid in transaction event"},
		{"error event not validated", `{"start_timestamp":1795600795,"timestamp":1795600790}`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := n.Event(nil, []byte(tc.in), &Input{Received: recv})
			if tc.reason == "" {
				if err != nil {
					t.Fatalf("err %v", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidTransaction) || !errors.Is(err, ErrInvalid) {
				t.Fatalf("err %v, want ErrInvalidTransaction (out %s)", err, out)
			}
			if want := "invalid transaction event: " + tc.reason; err.Error() != want {
				t.Errorf("err %q, want %q", err, want)
			}
		})
	}
}

// TestTransaction checks the normalization of valid transactions and of
// breadcrumb and span timestamps, with Relay's documented behaviour
// (transactions/processor.rs, timestamp.rs, contexts/mod.rs tests).
func TestTransaction(t *testing.T) {
	n := testNormalizer(t)
	for _, tc := range []struct {
		name, in string
		want     map[string]string
	}{
		{"defaults", strings.Replace(tx(""), `"transaction":"/",`, ``, 1), map[string]string{
			"transaction": `"<unlabeled transaction>"`, "transaction_info.source": `"unknown"`,
			"contexts.trace.op": `"http.server"`, "contexts.trace.status": `"unknown"`, "contexts.trace.type": `"trace"`, "spans.0.op": `"db.statement"`}},
		{"empty name", strings.Replace(tx(""), `"transaction":"/"`, `"transaction":""`, 1), map[string]string{"transaction": `"<unlabeled transaction>"`}},
		{"op defaults", strings.Replace(strings.Replace(tx(""), `,"op":"http.server"`, ``, 1), `,"op":"db.statement"`, ``, 1), map[string]string{
			"contexts.trace.op": `"default"`, "spans.0.op": `"default"`}},
		{"source kept", tx(`,"transaction_info":{"source":"route"}`), map[string]string{"transaction_info.source": `"route"`, "transaction": `"/"`}},
		{"url scrubbed", strings.Replace(tx(`,"transaction_info":{"source":"url"}`), `"transaction":"/"`, `"transaction":"/user/123/post/0x1f/"`, 1), map[string]string{
			"transaction": `"/user/*/post/*/"`, "transaction_info.source": `"sanitized"`,
			"_meta.transaction..rem": `[["int","s",6,9],["hex","s",15,19]]`, "_meta.transaction..val": `"/user/123/post/0x1f/"`}},
		// After a slash the int group matches first (leftmost), as in Rust.
		{"url uuid in path", strings.Replace(tx(`,"transaction_info":{"source":"url"}`), `"transaction":"/"`, `"transaction":"/a/2c7de9a1-5ad7-4f7e-b8f1-7a9c3d4e5f60/b"`, 1), map[string]string{
			"transaction": `"/a/*/b"`, "_meta.transaction..rem": `[["int","s",3,39]]`}},
		{"url uuid first", strings.Replace(tx(`,"transaction_info":{"source":"url"}`), `"transaction":"/"`, `"transaction":"2c7de9a1-5ad7-4f7e-b8f1-7a9c3d4e5f60/b"`, 1), map[string]string{
			"transaction": `"*/b"`, "_meta.transaction..rem": `[["uuid","s",0,36]]`}},
		{"url without ids", strings.Replace(tx(`,"transaction_info":{"source":"url"}`), `"transaction":"/"`, `"transaction":"/user/me"`, 1), map[string]string{
			"transaction": `"/user/me"`, "transaction_info.source": `"sanitized"`, "_meta": "null"}},
		{"legacy browser sdk", strings.Replace(tx(`,"sdk":{"name":"sentry.javascript.browser","version":"5.0.0"}`), `"transaction":"/"`, `"transaction":"/org/4242/issues"`, 1), map[string]string{
			"transaction": `"/org/*/issues"`, "transaction_info.source": `"sanitized"`}},
		{"legacy python sdk", strings.Replace(tx(`,"sdk":{"name":"sentry.python","version":"1.0.0"}`), `"transaction":"/"`, `"transaction":"/org/4242/issues"`, 1), map[string]string{
			"transaction": `"/org/4242/issues"`, "transaction_info.source": `"unknown"`}},
		{"django 404", strings.Replace(tx(`,"sdk":{"name":"sentry.python","integrations":["django"]},"tags":{"http.status_code":"404"}`), `"transaction":"/"`, `"transaction":"/org/4242/"`, 1), map[string]string{
			"transaction": `"/org/*/"`}},
		{"trace ids lowercased", strings.Replace(tx(""), `"4c79f60c11214eb38604f4ae0781bfb2","span_id":"fa90fdead5f74053","op":"http`, `"4C79F60C-1121-4EB3-8604-F4AE0781BFB2","span_id":"FA90FDEAD5F74053","op":"http`, 1), map[string]string{
			"contexts.trace.trace_id": `"4c79f60c11214eb38604f4ae0781bfb2"`, "contexts.trace.span_id": `"fa90fdead5f74053"`}},
		{"span iso timestamps", strings.Replace(tx(""), `"start_timestamp":1795600790,"timestamp":1795600791`, `"start_timestamp":"2026-11-25T09:59:50Z","timestamp":"2026-11-25T09:59:51.5+00:00"`, 1), map[string]string{
			"spans.0.start_timestamp": `1795600790.0`, "spans.0.timestamp": `1795600791.5`}},
		{"measurements on error dropped", `{"measurements":{"lcp":{"value":1}}}`, map[string]string{"measurements": "null"}},
		{"measurements on transaction kept", tx(`,"measurements":{"lcp":{"value":1}}`), map[string]string{"measurements.lcp.value": `1`}},
		{"trace context of an error", `{"contexts":{"trace":{"trace_id":"nope","span_id":"fa90fdead5f74053"}}}`, map[string]string{
			"contexts.trace": `{"span_id":"fa90fdead5f74053","status":"unknown","type":"trace"}`, "_meta.contexts.trace.trace_id..val": `"nope"`}},
		{"context types", `{"contexts":{"os":{"name":"Linux"},"runtime":{"name":"rustc","type":""},"mine":{"a":1},"monitor":{"type":"custom"}}}`, map[string]string{
			"contexts.os.type": `"os"`, "contexts.runtime.type": `"runtime"`, "contexts.mine.type": `"mine"`, "contexts.monitor.type": `"custom"`}},
		{"breadcrumb iso", `{"breadcrumbs":[{"timestamp":"2026-11-25T09:59:00Z"},{"timestamp":1795600740.5},{"message":"none"}]}`, map[string]string{
			"breadcrumbs.values.0.timestamp": `1795600740.0`, "breadcrumbs.values.1.timestamp": `1795600740.5`, "breadcrumbs.values.2": `{"message":"none"}`}},
		{"breadcrumb invalid", `{"breadcrumbs":[{"timestamp":"later","message":"m"}]}`, map[string]string{
			"breadcrumbs.values.0": `{"message":"m"}`, "_meta.breadcrumbs.values.0.timestamp..val": `"later"`,
			"_meta.breadcrumbs.values.0.timestamp..err.0.1.reason": `"expected a timestamp"`}},
		{"breadcrumb stale", `{"breadcrumbs":[{"timestamp":-1},{"timestamp":1}]}`, map[string]string{
			"breadcrumbs.values.0": "null", "breadcrumbs.values.1.timestamp": `1.0`,
			"_meta.breadcrumbs.values.0..err.0": `["invalid_data",{"reason":"timestamp is too stale: 1969-12-31 23:59:59 UTC"}]`}},
		{"spans not a list", `{"spans":{"a":1}}`, map[string]string{"spans": "null", "_meta.spans..val": `{"a":1}`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := Input{Received: recv}
			out, err := n.Event(nil, []byte(tc.in), &in)
			if err != nil {
				t.Fatal(err)
			}
			ev := decode(t, out)
			for path, want := range tc.want {
				if got := js(get(ev, path)); got != want {
					t.Errorf("%s = %s, want %s\n%s", path, got, want, out)
				}
			}
			again, err := n.Event(nil, out, &in)
			if err != nil || string(again) != string(out) {
				t.Errorf("second pass differs (%v):\n%s\n%s", err, out, again)
			}
		})
	}
}
