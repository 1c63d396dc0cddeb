package project

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func partsOf(m map[Part]string) *[NumParts][]byte {
	var raw [NumParts][]byte
	for p, v := range m {
		raw[p] = []byte(v)
	}
	return &raw
}

const keysPart = `{"rev":"k1","value":{"projectId":42,"organizationId":1,"publicKeys":[{"publicKey":"abc","numericId":7}]}}`

// TestAssembleParts: present parts are enforced, absent ones off, and one
// that does not decode is broken alone.
func TestAssembleParts(t *testing.T) {
	raw := partsOf(map[Part]string{
		PartKeys:     keysPart,
		PartQuotas:   `{"rev":"q1","value":{"quotas":[{"id":"q","categories":["error"],"scope":"project","limit":0}]}}`,
		PartFilters:  `{"rev":"f9","value":{"filterSettings": {"releases": {`, // cut off
		PartFeatures: `{"value":{"features":["organizations:x"]}}`,
		PartMetrics:  `{"rev":"m3","value":[1]}`,
	})
	b, _, err := AssembleParts(raw)
	if err != nil {
		t.Fatal(err)
	}
	st, err := DecodeState(b)
	if err != nil {
		t.Fatal(err)
	}
	if st.ProjectID != 42 || !strings.HasPrefix(st.Rev, PartsRevPrefix) || len(st.Keys) != 1 {
		t.Fatalf("state %+v", st)
	}
	if len(st.Quotas) != 1 || !st.HasFeature("organizations:x") {
		t.Errorf("quotas %v features %v: the good parts must be in force", st.Quotas, st.Features)
	}
	if len(st.Broken) != 2 || !strings.Contains(st.Broken[PartFilters], "not a part envelope") ||
		!strings.Contains(st.Broken[PartMetrics], "rev m3") {
		t.Errorf("broken %v: want only filters and metrics, naming metrics' rev", st.Broken)
	}
	if st.Sampling != nil || st.Present.Has(PartSampling) {
		t.Error("an absent sampling part must be off and not present")
	}
	// Any byte changed is a new revision.
	raw[PartQuotas] = []byte(strings.Replace(string(raw[PartQuotas]), "0}", "1}", 1))
	b2, _, _ := AssembleParts(raw)
	st2, _ := DecodeState(b2)
	if st2.Rev == st.Rev {
		t.Error("a changed part kept the revision")
	}
}

// TestAssemblePartsWrongKey: a key of another part breaks the part that
// holds it; the client part breaking fails closed for PII.
func TestAssemblePartsWrongKey(t *testing.T) {
	b, _, err := AssembleParts(partsOf(map[Part]string{
		PartKeys:    keysPart,
		PartQuotas:  `{"value":{"filterSettings":{}}}`,
		PartClient:  `{"value":{"allowedDomains":"x"`,
		PartFilters: `{"value":{"filterSettings":{"releases":{"releases":["1.*"]}}}}`,
	}))
	if err != nil {
		t.Fatal(err)
	}
	st, err := DecodeState(b)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(st.Broken[PartQuotas], `"filterSettings" belongs to part filters`) {
		t.Errorf("quotas broken %q", st.Broken[PartQuotas])
	}
	if _, ok := st.Broken[PartClient]; !ok || st.PIIErr == nil {
		t.Errorf("client broken %v, PIIErr %v: want broken and failing closed", st.Broken, st.PIIErr)
	}
	if len(st.Filters.Releases.Releases) != 1 {
		t.Error("the filters part must still be in force")
	}
}

func TestAssemblePartsNoKeys(t *testing.T) {
	if _, _, err := AssembleParts(partsOf(map[Part]string{PartQuotas: `{"value":{"quotas":[]}}`})); !errors.Is(err, ErrNoKeysPart) {
		t.Errorf("err %v, want ErrNoKeysPart", err)
	}
	if _, _, err := AssembleParts(partsOf(map[Part]string{PartKeys: `{"value":[1]}`})); !errors.Is(err, ErrInvalidState) {
		t.Errorf("err %v, want ErrInvalidState", err)
	}
	if _, _, err := AssembleParts(partsOf(map[Part]string{PartKeys: `{"value":{"config":{}}}`})); !errors.Is(err, ErrInvalidState) {
		t.Errorf("err %v, want ErrInvalidState for a keys part setting config", err)
	}
}

func TestCheckPart(t *testing.T) {
	for _, c := range []struct {
		p     Part
		value string
		want  string // "" is valid
	}{
		{PartKeys, `{"projectId":1,"publicKeys":[{"publicKey":"a"}]}`, ""},
		{PartKeys, `{"projectId":1}`, "no publicKeys"},
		{PartFilters, `{"filterSettings":{"releases":{"releases":["1.0"]}}}`, ""},
		{PartFilters, `{"quotas":[]}`, "belongs to part quotas"},
		{PartQuotas, `{"quotas":[{"scope":"galaxy"}]}`, "unknown scope"},
		{PartSampling, `[1]`, "not a JSON object"},
		{PartSampling, `null`, "not a JSON object"},
		{PartFeatures, `{"features":`, "not a JSON object"},
		{PartFeatures, `{"features":["a"]} x`, "not a JSON object"},
		{PartFeatures, ` {"features":["a"],"features":[1]} `, "features"}, // the last of duplicate keys wins, as in DecodeState
	} {
		err := CheckPart(c.p, []byte(c.value))
		if (err == nil) != (c.want == "") || err != nil && !strings.Contains(err.Error(), c.want) {
			t.Errorf("CheckPart(%s, %s) = %v, want %q", c.p, c.value, err, c.want)
		}
	}
}

// TestInvalidate: an invalidated config is fetched again at once and serves
// until the answer is in; an invalidated miss is asked again; a key the
// cache never held is not fetched.
func TestInvalidate(t *testing.T) {
	h := newHarness(t, Options{Concurrency: 1})
	h.up.set("k1", 1, "r1", "")
	h.waitStatus("k1", Ready)
	h.up.set("k1", 1, "r2", `{"features":["f2"]}`)
	h.Invalidate("k1")
	h.waitFor("r2", func() bool { st, _ := h.Get("k1"); return st != nil && st.Rev == "r2" })
	h.waitStatus("nope", Unknown)
	h.up.set("nope", 2, "r1", "")
	h.Invalidate("nope")
	h.waitStatus("nope", Ready)
	h.Invalidate("never")
	h.barrier()
	if n := h.up.askedFor("never"); n != 0 {
		t.Errorf("a key never held was fetched %d times", n)
	}
}

// TestExpireSource: only the configs of the source are made due, and are
// refreshed on their next use.
func TestExpireSource(t *testing.T) {
	h := newHarness(t, Options{Concurrency: 1})
	h.up.set("a", 1, "r1", "")
	h.up.set("b", 2, "r1", "")
	h.waitStatus("a", Ready)
	h.waitStatus("b", Ready)
	// Mark "a" as from another source by storing it as that source did.
	h.store("a", projectJSON("a", 1, "r1", ""), h.clock.Now(), "redis")
	if n := h.ExpireSource("redis"); n != 1 {
		t.Fatalf("ExpireSource expired %d, want 1", n)
	}
	before := h.up.askedFor("b")
	h.up.set("a", 1, "r2", "")
	h.waitFor("a refreshed on use", func() bool { st, _ := h.Get("a"); return st.Rev == "r2" })
	h.Get("b")
	h.barrier()
	if h.up.askedFor("b") != before {
		t.Error("a config of another source was refreshed")
	}
}

// TestAssemblePartsTooLarge: a part over MaxPartBytes is broken, a keys
// part over it makes the project unusable, and CheckPart refuses one.
func TestAssemblePartsTooLarge(t *testing.T) {
	big := `{"value":{"features":["` + strings.Repeat("x", MaxPartBytes) + `"]}}`
	b, _, err := AssembleParts(partsOf(map[Part]string{PartKeys: keysPart, PartFeatures: big}))
	if err != nil {
		t.Fatal(err)
	}
	st, _ := DecodeState(b)
	if !strings.Contains(st.Broken[PartFeatures], "over 256 KiB") || st.Features != nil {
		t.Errorf("broken %v", st.Broken)
	}
	if _, _, err := AssembleParts(partsOf(map[Part]string{PartKeys: big})); !errors.Is(err, ErrInvalidState) {
		t.Errorf("a keys part over the bound: %v", err)
	}
	if err := CheckPart(PartFeatures, []byte(big)); err == nil || !strings.Contains(err.Error(), "over 256 KiB") {
		t.Errorf("CheckPart: %v", err)
	}
}

// TestLayClientOptions: a clientOptions part stored apart replaces the
// upstream's (and the upstream's verdict that its own was broken) under a
// revision of both; a part that does not decode is off and listed broken;
// the rest of the config is untouched.
func TestLayClientOptions(t *testing.T) {
	up := `{"projectId":42,"rev":"u1","publicKeys":[{"publicKey":"k"}],"brokenParts":{"clientOptions":"upstream's"},` +
		`"config":{"features":["f"],"clientOptions":{"version":1,"options":{"traces_sample_rate":0.1}}}}`
	part, _ := EncodePart("7", []byte(`{"clientOptions":{"version":1,"options":{"traces_sample_rate":0.5}}}`))
	laid := LayClientOptions([]byte(up), part)
	st, err := DecodeState(laid)
	if err != nil {
		t.Fatal(err)
	}
	if st.ClientOptions == nil || *st.ClientOptions.Options.TracesSampleRate != 0.5 || len(st.Broken) != 0 ||
		!slices.Equal(st.Features, []string{"f"}) || !strings.HasPrefix(st.Rev, "u1"+LaidRevMarker) {
		t.Errorf("laid over: %s\n-> %+v", laid, st)
	}
	other, _ := EncodePart("8", []byte(`{"clientOptions":{"version":1,"options":{"traces_sample_rate":0.6}}}`))
	if st2, _ := DecodeState(LayClientOptions([]byte(up), other)); st2.Rev == st.Rev {
		t.Error("another part, the same revision")
	}

	bad, _ := EncodePart("9", []byte(`{"clientOptions":{"options":{}}}`))
	st, err = DecodeState(LayClientOptions([]byte(up), bad))
	if err != nil || st.ClientOptions != nil || !strings.Contains(st.ClientOptionsBroken(), "version") {
		t.Errorf("broken part: %+v %v, want client options off and why", st, err)
	}
	if string(LayClientOptions([]byte("null"), part)) != "null" {
		t.Error("an unknown key got a config")
	}
}
