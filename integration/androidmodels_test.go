package integration

import (
	"os"
	"path/filepath"
	"testing"
)

// With normalization.android_models naming a table in the form of Relay's
// android_models.csv, an event whose device context has a listed model
// reaches Sentry with the model's marketing name as the device name, as
// Relay's normalization names it; one of an unlisted model keeps its own.
func TestAndroidModelNames(t *testing.T) {
	settleDialer(t)
	s := newFakeSentry(t)
	s.setProject(managedKey, fakeSentryProjectState(42, managedKey, "r1", nil))
	table := filepath.Join(t.TempDir(), "android_models.csv")
	csv := "Retail Branding,Marketing Name,Device,Model\nOnePlus,OnePlus 10 Pro 5G,OP516FL1,NE2211\n"
	if err := os.WriteFile(table, []byte(csv), 0o600); err != nil {
		t.Fatal(err)
	}
	n := startNode(t, managedYAML(s.url(), "normalization:\n  android_models: "+table+"\n"))
	send := func(marker, model string) map[string]any {
		t.Helper()
		body := []byte(`{"dsn":"http://` + managedKey + `@h/42"}` + "\n" + `{"type":"event"}` + "\n" +
			`{"message":"` + marker + `","contexts":{"device":{"model":"` + model + `","name":"sdk name"}}}` + "\n")
		if code, resp, _ := postEnvelope(t, n, 42, managedKey, body, nil); code != 200 {
			t.Fatalf("%s: %d %s", marker, code, resp)
		}
		_, ev, _ := waitItem(t, s, marker, "event")
		dev, _ := ev["contexts"].(map[string]any)["device"].(map[string]any)
		return dev
	}
	if dev := send("android-listed", "NE2211"); dev["name"] != "OnePlus 10 Pro 5G" || dev["model"] != "NE2211" {
		t.Errorf("device %v: want the marketing name of NE2211", dev)
	}
	if dev := send("android-unlisted", "SM-X000"); dev["name"] != "sdk name" {
		t.Errorf("device %v: want the SDK's name for an unlisted model", dev)
	}
}
