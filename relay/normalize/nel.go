package normalize

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// nelMessages are Relay's readable texts for NEL error types
// (relay-event-normalization, normalize/nel.rs); other types are their own text.
var nelMessages = map[string]string{
	"dns.unreachable":                       "DNS server is unreachable",
	"dns.name_not_resolved":                 "DNS server responded but is unable to resolve the address",
	"dns.failed":                            "Request to the DNS server failed due to reasons not covered by previous errors",
	"dns.address_changed":                   "Indicates that the resolved IP address for a request's origin has changed since the corresponding NEL policy was received",
	"tcp.timed_out":                         "TCP connection to the server timed out",
	"tcp.closed":                            "The TCP connection was closed by the server",
	"tcp.reset":                             "The TCP connection was reset",
	"tcp.refused":                           "The TCP connection was refused by the server",
	"tcp.aborted":                           "The TCP connection was aborted",
	"tcp.address_invalid":                   "The IP address is invalid",
	"tcp.address_unreachable":               "The IP address is unreachable",
	"tcp.failed":                            "The TCP connection failed due to reasons not covered by previous errors",
	"tls.version_or_cipher_mismatch":        "The TLS connection was aborted due to version or cipher mismatch",
	"tls.bad_client_auth_cert":              "The TLS connection was aborted due to invalid client certificate",
	"tls.cert.name_invalid":                 "The TLS connection was aborted due to invalid name",
	"tls.cert.date_invalid":                 "The TLS connection was aborted due to invalid certificate date",
	"tls.cert.authority_invalid":            "The TLS connection was aborted due to invalid issuing authority",
	"tls.cert.invalid":                      "The TLS connection was aborted due to invalid certificate",
	"tls.cert.revoked":                      "The TLS connection was aborted due to revoked server certificate",
	"tls.cert.pinned_key_not_in_cert_chain": "The TLS connection was aborted due to a key pinning error",
	"tls.protocol.error":                    "The TLS connection was aborted due to a TLS protocol error",
	"tls.failed":                            "The TLS connection failed due to reasons not covered by previous errors",
	"http.error":                            "The user agent successfully received a response, but it had a %d status code",
	"http.protocol.error":                   "The connection was aborted due to an HTTP protocol error",
	"http.response.invalid":                 "Response is empty, has a content-length mismatch, has improper encoding, and/or other conditions that prevent user agent from processing the response",
	"http.response.redirect_loop":           "The request was aborted due to a detected redirect loop",
	"http.failed":                           "The connection failed due to errors in HTTP protocol not covered by previous errors",
	"abandoned":                             "User aborted the resource fetch before it is complete",
	"unknown":                               "error type is unknown",
	"dns.protocol":                          "ERR_DNS_MALFORMED_RESPONSE",
	"dns.server":                            "ERR_DNS_SERVER_FAILED",
	"tls.unrecognized_name_alert":           "ERR_SSL_UNRECOGNIZED_NAME_ALERT",
	"h2.ping_failed":                        "ERR_HTTP2_PING_FAILED",
	"h2.protocol.error":                     "ERR_HTTP2_PROTOCOL_ERROR",
	"h3.protocol.error":                     "ERR_QUIC_PROTOCOL_ERROR",
	"http.response.invalid.empty":           "ERR_EMPTY_RESPONSE",
	"http.response.invalid.content_length_mismatch":      "ERR_CONTENT_LENGTH_MISMATCH",
	"http.response.invalid.incomplete_chunked_encoding":  "ERR_INCOMPLETE_CHUNKED_ENCODING",
	"http.response.invalid.invalid_chunked_encoding":     "ERR_INVALID_CHUNKED_ENCODING",
	"http.request.range_not_satisfiable":                 "ERR_REQUEST_RANGE_NOT_SATISFIABLE",
	"http.response.headers.truncated":                    "ERR_RESPONSE_HEADERS_TRUNCATED",
	"http.response.headers.multiple_content_disposition": "ERR_RESPONSE_HEADERS_MULTIPLE_CONTENT_DISPOSITION",
	"http.response.headers.multiple_content_length":      "ERR_RESPONSE_HEADERS_MULTIPLE_CONTENT_LENGTH",
}

// NEL appends the log (one entry of a log item's "items") that current
// Relay makes from one Network Error Logging report (a nel item's payload,
// an element of the /nel/ body): body from the error type, level warn (info
// for "ok"), timestamp the receive time less the report's age, a nil trace
// id, and the report's fields as typed attributes.
func (n *Normalizer) NEL(dst, src []byte, in *Input) ([]byte, error) {
	if in == nil {
		in = &Input{}
	}
	r, err := decodeObject(src)
	if err != nil {
		return dst, err
	}
	body, ok := r["body"].(map[string]any)
	if !ok {
		return dst, fmt.Errorf("%w: NEL report without a body", ErrInvalid)
	}
	ty, _ := body["type"].(string)
	if ty == "" {
		ty = "unknown"
	}
	msg, ok := nelMessages[ty]
	switch {
	case !ok:
		msg = ty
	case ty == "http.error":
		code, _ := body["status_code"].(json.Number)
		c, _ := code.Int64()
		msg = fmt.Sprintf(msg, c)
	}
	ts := n.received(in)
	if age, ok := r["age"].(json.Number); ok {
		if ms, err := age.Int64(); err == nil {
			ts = ts.Add(-time.Duration(ms) * time.Millisecond)
		}
	}
	attrs := map[string]any{}
	set := func(name string, v any) {
		switch t := v.(type) {
		case string:
			attrs[name] = map[string]any{"type": "string", "value": t}
		case bool:
			attrs[name] = map[string]any{"type": "boolean", "value": t}
		case json.Number:
			if _, err := t.Int64(); err == nil {
				attrs[name] = map[string]any{"type": "integer", "value": t}
			} else {
				attrs[name] = map[string]any{"type": "double", "value": t}
			}
		}
	}
	set("sentry.origin", "auto.http.browser_report.nel")
	set("browser.report.type", "network-error")
	if u, ok := r["url"].(string); ok {
		set("url.domain", hostOf(u))
		set("url.full", u)
	}
	set("http.request.duration", body["elapsed_time"])
	set("http.request.method", body["method"])
	set("http.request.header.referer", body["referrer"])
	set("http.response.status_code", body["status_code"])
	if p, ok := body["protocol"].(string); ok {
		name, ver, found := strings.Cut(p, "/")
		set("network.protocol.name", name)
		if found {
			set("network.protocol.version", ver)
		}
	}
	if s, ok := body["server_ip"].(string); ok {
		set("server.address", hostOf(s))
	}
	set("nel.referrer", body["referrer"])
	set("nel.phase", body["phase"])
	if f, ok := body["sampling_fraction"].(json.Number); ok {
		attrs["nel.sampling_fraction"] = map[string]any{"type": "double", "value": f}
	}
	set("nel.type", body["type"])
	level := "warn"
	if ty == "ok" {
		level = "info"
	}
	return appendJSON(dst, map[string]any{
		"timestamp":  timeValue(ts),
		"trace_id":   "00000000000000000000000000000000",
		"level":      level,
		"body":       msg,
		"attributes": attrs,
	})
}

// hostOf is the host of a URL, or s itself when it is not one.
func hostOf(s string) string {
	if u, err := url.Parse(s); err == nil && u.Host != "" {
		return u.Hostname()
	}
	return s
}
