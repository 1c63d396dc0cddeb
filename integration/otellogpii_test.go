package integration

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
	"google.golang.org/protobuf/encoding/protojson"
)

// otelLogEnvelope is an envelope of one otel_log item (the older item type
// of docs/relay-protocol.md §2.4): an OTLP/JSON LogRecord whose body names
// marker and an e-mail address, with a password attribute and an address
// in a key-value list. The ids are left out so that protojson, which
// expects them in base64 where OTLP/JSON writes hex, reads the record.
func otelLogEnvelope(marker string) []byte {
	payload := `{"timeUnixNano":"1764064800500000000","severityNumber":9,"severityText":"Information",` +
		`"body":{"stringValue":"order ` + marker + ` for jane@example.com"},"attributes":[` +
		`{"key":"password","value":{"stringValue":"hunter2"}},` +
		`{"key":"sentry.release","value":{"stringValue":"web@1"}},` +
		`{"key":"user","value":{"kvlistValue":{"values":[{"key":"email","value":{"stringValue":"joe@example.com"}}]}}}]}`
	return []byte("{}\n" + fmt.Sprintf(`{"type":"otel_log","length":%d}`, len(payload)) + "\n" + payload + "\n")
}

// An SDK's otel_log items are scrubbed as its log items are
// (TestSDKLogScrubbed), as Relay scrubs them once converted to its log
// schema: the project's piiConfig replaces the addresses in the body and
// in nested attribute values, its datascrubbingSettings filter the
// password attribute, at ingest and when the item waited for its
// project's config. The item stays an OTLP record (protojson reads what
// Sentry receives). A project that scrubs nothing gets it as it was sent.
func TestOTelLogScrubbed(t *testing.T) {
	s, n, send := startLogScrubbing(t, otelLogEnvelope)
	record := func(marker string) (*logspb.LogRecord, []byte) {
		t.Helper()
		hdr, _, raw := waitItem(t, s, marker, "otel_log")
		var h struct{ Length int }
		if err := json.Unmarshal(hdr, &h); err != nil || h.Length != len(raw) {
			t.Fatalf("%s: item header %s for a payload of %d bytes", marker, hdr, len(raw))
		}
		var rec logspb.LogRecord
		if err := protojson.Unmarshal(raw, &rec); err != nil {
			t.Fatalf("%s: what Sentry received is no OTLP log record: %v\n%s", marker, err, raw)
		}
		return &rec, raw
	}
	attr := func(rec *logspb.LogRecord, key string) string {
		for _, a := range rec.GetAttributes() {
			if a.GetKey() == key {
				if kv := a.GetValue().GetKvlistValue(); kv != nil {
					return kv.GetValues()[0].GetValue().GetStringValue()
				}
				return a.GetValue().GetStringValue()
			}
		}
		return "<absent>"
	}

	send(42, managedKey, "ref-waited")
	if st := n.r.Stats(); st.Waiting == 0 {
		t.Fatal("nothing waits for the config: the release path is not exercised")
	}
	send(43, managedKey2, "ref-plain")
	if rec, raw := record("ref-plain"); rec.GetBody().GetStringValue() != "order ref-plain for jane@example.com" || attr(rec, "password") != "hunter2" {
		t.Errorf("record of a project without rules: %s; want it as sent", raw)
	}
	check := func(marker string) {
		t.Helper()
		rec, raw := record(marker)
		if b := rec.GetBody().GetStringValue(); b != "order "+marker+" for [email]" {
			t.Errorf("%s: body %q; want the address replaced", marker, b)
		}
		if attr(rec, "password") != "[Filtered]" || attr(rec, "sentry.release") != "web@1" || attr(rec, "user") != "[email]" {
			t.Errorf("%s: attributes %s; want the password filtered, the nested address replaced, the release kept", marker, raw)
		}
		if rec.GetTimeUnixNano() != 1764064800500000000 || rec.GetSeverityNumber() != logspb.SeverityNumber_SEVERITY_NUMBER_INFO {
			t.Errorf("%s: time %d, severity %v changed", marker, rec.GetTimeUnixNano(), rec.GetSeverityNumber())
		}
		if strings.Contains(string(raw), "hunter2") || strings.Contains(string(raw), "@example.com") {
			t.Errorf("%s: personal data reached Sentry: %s", marker, raw)
		}
	}
	check("ref-waited")
	if st := n.r.Stats(); st.Waiting != 0 {
		t.Fatalf("%d records still wait", st.Waiting)
	}
	send(42, managedKey, "ref-ingest")
	check("ref-ingest")
	waitBalanced(t, n, 15*time.Second)
}
