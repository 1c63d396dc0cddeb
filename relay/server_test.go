package relay

import (
	"testing"

	"github.com/valyala/fasthttp"
)

// TestSetCORS pins the CORS answer: the allowed origin (echoed, with Vary,
// or any), the exposed headers, and the preflight's extra headers.
func TestSetCORS(t *testing.T) {
	for _, tc := range []struct {
		method, origin, allow, vary string
		preflight                   bool
	}{
		{"POST", "", "*", "", false},
		{"POST", "https://app.example", "https://app.example", "Origin", false},
		{"OPTIONS", "https://app.example", "https://app.example", "Origin", true},
	} {
		var ctx fasthttp.RequestCtx
		ctx.Request.Header.SetMethod(tc.method)
		if tc.origin != "" {
			ctx.Request.Header.Set("Origin", tc.origin)
		}
		setCORS(&ctx)
		h := &ctx.Response.Header
		want := map[string]string{
			"Access-Control-Allow-Origin":   tc.allow,
			"Vary":                          tc.vary,
			"Access-Control-Expose-Headers": "x-sentry-error, x-sentry-rate-limits, retry-after, x-baton-client-options",
			"Cross-Origin-Resource-Policy":  "cross-origin",
			"Access-Control-Allow-Methods":  "",
			"Access-Control-Max-Age":        "",
		}
		if tc.preflight {
			want["Access-Control-Allow-Methods"], want["Access-Control-Max-Age"] = "POST", "3600"
		}
		for k, v := range want {
			if got := string(h.Peek(k)); got != v {
				t.Errorf("%s origin %q: %s = %q, want %q", tc.method, tc.origin, k, got, v)
			}
		}
		if got := string(h.Peek("Access-Control-Allow-Headers")); tc.preflight != (got != "") {
			t.Errorf("%s origin %q: Access-Control-Allow-Headers = %q", tc.method, tc.origin, got)
		}
	}
}

// BenchmarkSetCORS is the CORS headers of one SDK answer (a browser POST).
func BenchmarkSetCORS(b *testing.B) {
	var ctx fasthttp.RequestCtx
	ctx.Request.Header.SetMethod("POST")
	ctx.Request.Header.Set("Origin", "https://app.example")
	b.ReportAllocs()
	for b.Loop() {
		ctx.Response.Header.Reset()
		setCORS(&ctx)
	}
}
