package relay

import (
	"errors"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/baton-relay/baton/relay/policy"
)

func TestParseAuth(t *testing.T) {
	const key = "a7c3e9f1b5d24680ace13579bdf02468"
	cases := []struct {
		name    string
		header  [2]string
		query   string
		wantKey string
		wantErr error
		client  string
	}{
		{"x-sentry-auth", [2]string{"X-Sentry-Auth", "Sentry sentry_version=7, sentry_client=sentry.go/0.50.0, sentry_key=" + key}, "", key, nil, "sentry.go/0.50.0"},
		{"sentry-cli timestamp", [2]string{"X-Sentry-Auth", "Sentry sentry_key=" + key + ", sentry_version=7, sentry_timestamp=1764064800.5, sentry_client=sentry-cli/x86_64"}, "", key, nil, "sentry-cli/x86_64"},
		{"authorization sentry", [2]string{"Authorization", "Sentry sentry_key=" + key + ", sentry_version=7"}, "", key, nil, ""},
		{"basic", [2]string{"Authorization", "Basic YTdjM2U5ZjFiNWQyNDY4MGFjZTEzNTc5YmRmMDI0Njg6"}, "", key, nil, ""},
		{"query", [2]string{}, "sentry_version=7&sentry_key=" + key + "&sentry_client=sentry.javascript.node%2F11.12.0", key, nil, "sentry.javascript.node/11.12.0"},
		{"version 7.0", [2]string{"X-Sentry-Auth", "Sentry sentry_key=" + key + ", sentry_version=7.0"}, "", key, nil, ""},
		{"nothing", [2]string{}, "", "", errAuthMissing, ""},
		{"both forms", [2]string{"X-Sentry-Auth", "Sentry sentry_key=" + key}, "sentry_key=" + key, "", errAuthMultiple, ""},
		{"version 8", [2]string{"X-Sentry-Auth", "Sentry sentry_key=" + key + ", sentry_version=8"}, "", "", errAuthVersion, ""},
		// Relay ignores an auth header of another scheme, and Basic it cannot decode.
		{"not sentry", [2]string{"X-Sentry-Auth", "Bearer abc"}, "", "", errAuthMissing, ""},
		{"bearer", [2]string{"Authorization", "Bearer abc"}, "", "", errAuthMissing, ""},
		{"bearer and query", [2]string{"Authorization", "Bearer abc"}, "sentry_key=" + key, key, nil, ""},
		{"bad basic and query", [2]string{"Authorization", "Basic !!"}, "sentry_key=" + key, key, nil, ""},
		{"basic and query", [2]string{"Authorization", "Basic YTdjM2U5ZjFiNWQyNDY4MGFjZTEzNTc5YmRmMDI0Njg6"}, "sentry_key=" + key, "", errAuthMultiple, ""},
		{"malformed sentry", [2]string{"X-Sentry-Auth", "Sentry sentry_version=x, sentry_key=" + key}, "", "", errAuthInvalid, ""},
		{"no key", [2]string{"X-Sentry-Auth", "Sentry sentry_version=7"}, "", "", errAuthMissing, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var req fasthttp.Request
			req.SetRequestURI("/api/1/envelope/?" + c.query)
			if c.header[0] != "" {
				req.Header.Set(c.header[0], c.header[1])
			}
			var a sdkAuth
			err := parseAuth(&req, &a)
			if !errors.Is(err, c.wantErr) || (err == nil) != (c.wantErr == nil) {
				t.Fatalf("err = %v, want %v", err, c.wantErr)
			}
			if err == nil && (string(a.PublicKey) != c.wantKey || string(a.Client) != c.client) {
				t.Fatalf("key %q client %q", a.PublicKey, a.Client)
			}
		})
	}
}

// TestDoorRefusals: every refusal of the project policy has an answer, and
// only Overload tells the client when to retry.
func TestDoorRefusals(t *testing.T) {
	for why := policy.Admitted + 1; why < policy.NumRefusals; why++ {
		res := doorRefusal(why)
		if res.status < 400 || res.detail == "" {
			t.Errorf("%v: answered %d %q", why, res.status, res.detail)
		}
		if (res.retryAfter != "") != (why == policy.Overload) {
			t.Errorf("%v: Retry-After %q", why, res.retryAfter)
		}
	}
}

// TestFollowBudget: untrusted sampled traceparents are followed at most
// MaxFollowedPerSecond times a second.
func TestFollowBudget(t *testing.T) {
	var b followBudget
	for i := range MaxFollowedPerSecond {
		if !b.take(1000) {
			t.Fatalf("take %d refused within the budget", i)
		}
	}
	if b.take(1000) {
		t.Fatal("take beyond the budget allowed")
	}
	if !b.take(1001) {
		t.Fatal("the next second's budget refused")
	}
}
