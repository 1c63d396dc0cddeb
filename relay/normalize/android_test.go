package normalize

import (
	"errors"
	"strings"
	"testing"
)

// The table in the form of Relay's android_models.csv, with the rows of
// its test_get_product_name.
const androidCSV = "Retail Branding,Marketing Name,Device,Model\n" +
	"OnePlus,OnePlus 10 Pro 5G,OP516FL1,NE2211\n" +
	"Mobiwire,A13 Pro Max 5G EEA,MP04,MP04\n" +
	"Zyrex,zyrex , ZT216_7 , ZT216_7 \n" +
	"short,line\n"

func TestParseAndroidModels(t *testing.T) {
	m, err := ParseAndroidModels(strings.NewReader(androidCSV))
	if err != nil {
		t.Fatal(err)
	}
	for model, want := range map[string]string{"NE2211": "OnePlus 10 Pro 5G", "MP04": "A13 Pro Max 5G EEA", "ZT216_7": "zyrex"} {
		if m[model] != want {
			t.Errorf("%s: %q, want %q", model, m[model], want)
		}
	}
	if _, ok := m["foobar"]; ok || len(m) != 3 {
		t.Errorf("table %v: want the 3 devices", m)
	}
	for _, bad := range []string{"", "Brand,Name,Model\nx,y,z\n"} {
		if _, err := ParseAndroidModels(strings.NewReader(bad)); !errors.Is(err, ErrAndroidModels) {
			t.Errorf("%q: %v, want ErrAndroidModels", bad, err)
		}
	}
}

// A device context of a known model gets its marketing name, replacing
// the name the SDK sent (Relay's normalize_context); others are left.
func TestDeviceContextAndroidName(t *testing.T) {
	m, err := ParseAndroidModels(strings.NewReader(androidCSV))
	if err != nil {
		t.Fatal(err)
	}
	n, err := New(Options{AndroidModels: m})
	if err != nil {
		t.Fatal(err)
	}
	out, err := n.Event(nil, []byte(`{"contexts":{"device":{"model":"NE2211","name":"sdk name"},"other":{"type":"device","model":"MP04"},"unknown":{"type":"device","model":"SM-X"}}}`), &Input{Received: recv})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"device":{"model":"NE2211","name":"OnePlus 10 Pro 5G","type":"device"}`,
		`"other":{"type":"device","model":"MP04","name":"A13 Pro Max 5G EEA"}`, `"unknown":{"type":"device","model":"SM-X"}`} {
		if !strings.Contains(string(out), want) {
			t.Errorf("got %s\nwant %s", out, want)
		}
	}
	// Without a table: left as sent.
	out, _ = testNormalizer(t).Event(nil, []byte(`{"contexts":{"device":{"model":"NE2211"}}}`), &Input{Received: recv})
	if strings.Contains(string(out), "OnePlus") {
		t.Errorf("named without a table: %s", out)
	}
}
