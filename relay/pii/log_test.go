package pii

import (
	"encoding/json"
	"testing"
)

// nelLog is a log as Baton's NEL conversion writes it.
const nelLog = `{"timestamp":1700000000.5,"trace_id":"00000000000000000000000000000000","level":"warn",` +
	`"body":"The user agent failed to connect to jane@example.com","attributes":{` +
	`"sentry.origin":{"type":"string","value":"auto.http.browser_report.nel"},` +
	`"url.full":{"type":"string","value":"https://example.com/u?email=jane@example.com"},` +
	`"server.address":{"type":"string","value":"192.0.2.1"},` +
	`"password":{"type":"string","value":"hunter2"},` +
	`"http.response.status_code":{"type":"integer","value":500}}}`

func scrubLogs(t *testing.T, settings DataScrubbingSettings, config string) map[string]any {
	t.Helper()
	c, err := Compile(settings, []byte(config))
	if err != nil {
		t.Fatal(err)
	}
	out, err := c.ScrubLogs(nil, []byte(`{"items":[`+nelLog+`]}`))
	if err != nil {
		t.Fatal(err)
	}
	var cont struct{ Items []map[string]any }
	if err := json.Unmarshal(out, &cont); err != nil || len(cont.Items) != 1 {
		t.Fatalf("%s: %v", out, err)
	}
	return cont.Items[0]
}

func attrValue(log map[string]any, name string) any {
	a, _ := log["attributes"].(map[string]any)[name].(map[string]any)
	return a["value"]
}

// A piiConfig sees a log as `$log` with attributes as objects: $string
// rules reach the body and attribute values (pii true ones), not the
// fields and attributes that are never scrubbed; the remarks are in the
// log's _meta, as Relay writes them.
func TestScrubLogsPIIConfig(t *testing.T) {
	log := scrubLogs(t, DataScrubbingSettings{}, `{"applications":{"$string":["@email:replace"]}}`)
	if log["body"] != "The user agent failed to connect to [email]" {
		t.Errorf("body %v", log["body"])
	}
	// Relay's e-mail regex takes the path and query before the @ too.
	if v := attrValue(log, "url.full"); v != "https://[email]" {
		t.Errorf("url.full %v", v)
	}
	if v := attrValue(log, "sentry.origin"); v != "auto.http.browser_report.nel" || log["trace_id"] != "00000000000000000000000000000000" {
		t.Errorf("origin %v, trace id %v: pii false, untouched", v, log["trace_id"])
	}
	meta, _ := log["_meta"].(map[string]any)
	attrs, _ := meta["attributes"].(map[string]any)
	url, _ := attrs["url.full"].(map[string]any)
	if meta["body"] == nil || url["value"] == nil {
		t.Errorf("_meta %v: want remarks for body and attributes.url.full.value", meta)
	}
	// Specific selectors: $log.body only.
	log = scrubLogs(t, DataScrubbingSettings{}, `{"applications":{"$log.body":["@email:mask"]}}`)
	if log["body"] != "The user agent failed to connect to ****************" || attrValue(log, "url.full") != "https://example.com/u?email=jane@example.com" {
		t.Errorf("$log.body: body %v, url.full %v", log["body"], attrValue(log, "url.full"))
	}
	// An attribute's value by its object path.
	log = scrubLogs(t, DataScrubbingSettings{}, `{"applications":{"attributes.'server.address'.value":["@ip:replace"]}}`)
	if v := attrValue(log, "server.address"); v != "[ip]" {
		t.Errorf("server.address %v", v)
	}
}

// The legacy settings address an attribute's value by the attribute's
// name: a password-like attribute is filtered, as Relay's
// test_scrub_log_pii_default_rules shows, and pii-false ones are kept.
func TestScrubLogsDataScrubbingSettings(t *testing.T) {
	log := scrubLogs(t, DataScrubbingSettings{ScrubData: true, ScrubDefaults: true, SensitiveFields: []string{"status_code_x"}}, "")
	if v := attrValue(log, "password"); v != "[Filtered]" {
		t.Errorf("password attribute %v, want [Filtered]", v)
	}
	if v := attrValue(log, "sentry.origin"); v != "auto.http.browser_report.nel" {
		t.Errorf("sentry.origin %v", v)
	}
	// The defaults only substitute in $log.body, e-mail addresses too.
	if log["body"] != "The user agent failed to connect to [email]" {
		t.Errorf("body %v", log["body"])
	}
	meta, _ := log["_meta"].(map[string]any)
	pw, _ := meta["attributes"].(map[string]any)["password"].(map[string]any)
	if pw["value"] == nil {
		t.Errorf("_meta %v: want the remark at attributes.password.value", meta)
	}
	// Nothing to scrub: byte for byte.
	c, _ := Compile(DataScrubbingSettings{}, []byte(`{"applications":{"$string":["@creditcard"]}}`))
	src := `{"items":[` + nelLog + `]}`
	if out, err := c.ScrubLogs(nil, []byte(src)); err != nil || string(out) != src {
		t.Errorf("unchanged container: %s %v", out, err)
	}
	if _, err := c.ScrubLogs(nil, []byte(`{"items":3}`)); err == nil {
		t.Error("a broken container scrubbed")
	}
}
