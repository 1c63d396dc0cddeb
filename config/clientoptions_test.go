package config

import (
	"slices"
	"strings"
	"testing"
)

// TestClientOptionsValidate: a static project's client options are
// checked by clientopts' rules, each problem at the line of its value.
func TestClientOptionsValidate(t *testing.T) {
	_, probs := parse(t,
		"mode: static",
		"projects:",
		"  '1':",
		"    public_keys: [e12d836b15bb49d7bbf99e64295d995b]",
		"    client_options:",
		"      version: 1",
		"      options: {traces_sample_rate: 0.1}",
		"      rules:",
		"        - id: canary",
		"          match:",
		"            releases: ['app@2.*']",
		"            percentage: 150",
		"  '2':",
		"    public_keys: [0123456789abcdef0123456789abcdef]",
		"    client_options:",
		"      version: 1",
		"      options:",
		"        send_default_pii: true",
		"  '3':",
		"    public_keys: [1123456789abcdef0123456789abcdef]",
		"    client_options: {version: 1, rules: [{id: a, match: {sdk_version: '>=x'}}]}",
		"server: {client_options_max_age: -1s}",
	)
	want := []string{
		`test.yaml:12: projects.1.client_options.rules[0].match.percentage: must be 0 to 100, got 150`,
		`test.yaml:18: projects.2.client_options.options.send_default_pii: may only be false: Baton can tell SDKs to withhold default PII, never to send it`,
		`test.yaml:21: projects.3.client_options.rules[0].match.sdk_version: ">=x" is not a version comparison: want e.g. >=1.2.0, <2, =1.4.3`,
		`test.yaml:22: server.client_options_max_age: must be a duration greater than 0, e.g. "30s"`,
	}
	if !slices.Equal(probs, want) {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(probs, "\n"), strings.Join(want, "\n"))
	}
	c, probs := parse(t,
		"mode: static",
		"projects:",
		"  '1':",
		"    public_keys: [e12d836b15bb49d7bbf99e64295d995b]",
		"    client_options: {version: 1, options: {traces_sample_rate: 0.5, enable_minidumps: false}}",
	)
	if len(probs) != 0 {
		t.Fatal(probs)
	}
	d, err := c.Projects["1"].ClientOptions.Document()
	if err != nil || *d.Options.TracesSampleRate != 0.5 || *d.Options.EnableMinidumps || d.Options.ProfilesSampleRate != nil {
		t.Errorf("document %+v, %v", d, err)
	}
	if c.Server.ClientOptionsMaxAge.Seconds() != 60 {
		t.Errorf("client_options_max_age = %v, want the default 60s", c.Server.ClientOptionsMaxAge)
	}
}

// TestClientOptionsPart: managed.parts may name the clientOptions part.
func TestClientOptionsPart(t *testing.T) {
	_, probs := parse(t,
		"mode: managed",
		"upstreams: {up: {urls: ['http://127.0.0.1:1']}}",
		"routes: {default: {upstream: up}}",
		"managed: {upstream: up, parts: [keys, clientOptions, clientoptions]}",
	)
	want := []string{`test.yaml:4: managed.parts.2: unknown part "clientoptions" (did you mean "clientOptions"?)`}
	if !slices.Equal(probs, want) {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(probs, "\n"), strings.Join(want, "\n"))
	}
}

// TestManagedClientOptionsValidate: managed.client_options is keyed by
// project id, each document checked like a static project's.
func TestManagedClientOptionsValidate(t *testing.T) {
	_, probs := parse(t,
		"mode: managed",
		"upstreams: {up: {urls: ['http://127.0.0.1:1']}}",
		"routes: {default: {upstream: up}}",
		"managed:",
		"  upstream: up",
		"  client_options:",
		"    '42': {version: 1, options: {traces_sample_rate: 0.5}}",
		"    '43':",
		"      version: 1",
		"      options: {traces_sample_rate: 3}",
		"    shop: {version: 1}",
		"    '042': {version: 1}",
	)
	want := []string{
		`test.yaml:10: managed.client_options.43.options.traces_sample_rate: must be 0 to 1, got 3`,
		`test.yaml:11: managed.client_options.shop: "shop" is not a project id (a number)`,
		`test.yaml:12: managed.client_options.042: "042": write the project id as 42`,
	}
	if !slices.Equal(probs, want) {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(probs, "\n"), strings.Join(want, "\n"))
	}
}
