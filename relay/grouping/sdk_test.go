package grouping

import (
	"os"
	"path/filepath"
	"testing"
)

// TestSDKEvents pins the hashes of events real SDKs sent (testdata, copied
// from the captured SDK envelopes and Relay's fixtures). Sentry's own hash
// for these events is not known: the values guard against unintended
// changes; a deliberate change updates them with the reason in the commit.
func TestSDKEvents(t *testing.T) {
	cases := []struct {
		file, primary string
		final         bool
		variants      map[string]string
	}{
		{"go_error_01_event.json", "1cbce1a793aa2ee8144536cd944c185c", true, map[string]string{"app": "1cbce1a793aa2ee8144536cd944c185c", "system": "dac94b48302bbed395ab9ea59d030729"}},
		{"node_error_02_event.json", "bfe6d002fa4a8fc8e48eb60f2b08a50b", true, map[string]string{"app": "bfe6d002fa4a8fc8e48eb60f2b08a50b", "system": "b9b4d8cf224a2a2fac669923e2b61fd9"}},
		{"node_client-report_02_event.json", "b323afe0672536f4752334c7e135d484", true, map[string]string{"app": "b323afe0672536f4752334c7e135d484", "system": "8f0a4f9d4499ae2f9b1b46c5396b72e9", "default": ""}},
		{"python_error_01_store.json", "bca9350b0979e2f1a45c576b3f041746", true, map[string]string{"app": "bca9350b0979e2f1a45c576b3f041746", "system": ""}},
		{"python_attachment_01_event-attachment.json", "bf84f47b39e015c3d0245c58e63a1707", true, map[string]string{"app": "bf84f47b39e015c3d0245c58e63a1707"}},
		{"sentry-cli_send-event-args_01_event.json", "90a5840c3c780e043d0d6a880fddf213", true, map[string]string{"custom-fingerprint": md5hex("deploy-failed"), "default": ""}},
		{"browser_legacy_js_exception.json", "a898880f5b919fdbeacb6f250d3f2a63", false, map[string]string{"app": "a898880f5b919fdbeacb6f250d3f2a63", "system": ""}},
		{"csp_normalized.json", "4c1d5e0ce207af0cdb44a1ea40cbdfc9", true, map[string]string{"default": "4c1d5e0ce207af0cdb44a1ea40cbdfc9"}},
		{"expect_ct_normalized.json", "917ca796f2e88d24cf80e946ab7f89b4", true, map[string]string{"default": "917ca796f2e88d24cf80e946ab7f89b4"}},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			src, err := os.ReadFile(filepath.Join("testdata", c.file))
			if err != nil {
				t.Fatal(err)
			}
			r, err := HashJSON(src)
			if err != nil {
				t.Fatal(err)
			}
			want(t, r, c.primary, c.variants)
			if r.Final != c.final {
				t.Errorf("final = %v (%s), want %v", r.Final, r.Reason, c.final)
			}
		})
	}
}
