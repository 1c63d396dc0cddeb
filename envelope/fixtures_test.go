package envelope

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"unsafe"
)

// Captured SDK requests and Relay's data fixtures (testdata/README.md).
const (
	sdkFixtures   = "testdata/sdk-envelopes"
	relayFixtures = "testdata/relay"
)

// sdkDescription is the part of a fixture's .json this test checks.
type sdkDescription struct {
	File     string `json:"file"`
	WireFile string `json:"wire_file"`
	Endpoint string `json:"endpoint"`
	Body     struct {
		Bytes           int  `json:"bytes"`
		EndsWithNewline bool `json:"ends_with_newline"`
	} `json:"body"`
	Envelope *struct {
		Header map[string]any `json:"header"`
		Items  []struct {
			Type         string         `json:"type"`
			Framing      string         `json:"framing"`
			PayloadBytes int            `json:"payload_bytes"`
			ContentType  string         `json:"content_type"`
			Filename     string         `json:"filename"`
			Header       map[string]any `json:"header"`
		} `json:"items"`
	} `json:"envelope"`
}

func readJSONFile(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func jsonMap(t *testing.T, raw []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("header %q is not a JSON object: %v", raw, err)
	}
	return m
}

// TestSDKFixtures runs every captured SDK request through the parser (or
// FromStore for legacy store bodies) and checks it against the fixture's
// description.
func TestSDKFixtures(t *testing.T) {
	dir := sdkFixtures
	descs, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil || len(descs) == 0 {
		t.Fatalf("no fixture descriptions in %s (%v)", dir, err)
	}
	covered := map[string]bool{}
	for _, descPath := range descs {
		var d sdkDescription
		readJSONFile(t, descPath, &d)
		covered[d.File] = true
		if d.WireFile != "" {
			covered[d.WireFile] = true
		}
		t.Run(d.File, func(t *testing.T) {
			body, err := os.ReadFile(filepath.Join(dir, d.File))
			if err != nil {
				t.Fatal(err)
			}
			if len(body) != d.Body.Bytes {
				t.Fatalf("body is %d bytes, description says %d", len(body), d.Body.Bytes)
			}
			if d.WireFile != "" && strings.HasSuffix(d.WireFile, ".gz") {
				checkGzipWire(t, filepath.Join(dir, d.WireFile), body)
			}
			switch d.Endpoint {
			case "envelope":
				checkSDKEnvelope(t, &d, body)
			case "store":
				checkStoreBody(t, body)
			default:
				t.Fatalf("unknown endpoint %q", d.Endpoint)
			}
		})
	}
	// Every file of the folder must belong to a description.
	all, _ := os.ReadDir(dir)
	for _, f := range all {
		name := f.Name()
		if strings.HasSuffix(name, ".json") || name == "README.md" {
			continue
		}
		if !covered[name] {
			t.Errorf("fixture %s is not described by any .json and was not tested", name)
		}
	}
}

func checkGzipWire(t *testing.T, path string, want []byte) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s does not gunzip to the body", path)
	}
}

func checkSDKEnvelope(t *testing.T, d *sdkDescription, body []byte) {
	e, err := Parse(body)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if d.Envelope == nil {
		t.Fatal("description has no envelope")
	}
	if got := jsonMap(t, e.Header.Raw); !reflect.DeepEqual(got, d.Envelope.Header) {
		t.Errorf("header = %v, want %v", got, d.Envelope.Header)
	}
	if len(e.Items) != len(d.Envelope.Items) {
		t.Fatalf("%d items, want %d", len(e.Items), len(d.Envelope.Items))
	}
	for i, want := range d.Envelope.Items {
		it := &e.Items[i]
		if it.TypeName != want.Type || it.Type != ParseItemType(want.Type) {
			t.Errorf("item %d: type %q (%v), want %q", i, it.TypeName, it.Type, want.Type)
		}
		if len(it.Payload) != want.PayloadBytes {
			t.Errorf("item %d: %d payload bytes, want %d", i, len(it.Payload), want.PayloadBytes)
		}
		if framing := map[bool]string{true: "length", false: "newline"}[it.Length >= 0]; framing != want.Framing {
			t.Errorf("item %d: framing %s, want %s", i, framing, want.Framing)
		}
		if it.ContentType != want.ContentType || it.Filename != want.Filename {
			t.Errorf("item %d: content_type %q filename %q, want %q %q", i, it.ContentType, it.Filename, want.ContentType, want.Filename)
		}
		if got := jsonMap(t, it.Header); !reflect.DeepEqual(got, want.Header) {
			t.Errorf("item %d: header %v, want %v", i, got, want.Header)
		}
		// Payloads alias the body: no copies.
		if len(it.Payload) > 0 && !aliases(body, it.Payload) {
			t.Errorf("item %d: payload is not a sub-slice of the body", i)
		}
	}
	if !aliases(body, e.Header.Raw) {
		t.Error("header is not a sub-slice of the body")
	}
	checkClasses(t, e)
	checkRoundTrip(t, e, body)
	checkSplit(t, e)
}

// aliases reports whether sub lies inside buf's memory.
func aliases(buf, sub []byte) bool {
	if len(sub) == 0 || len(buf) == 0 {
		return false
	}
	lo := uintptr(unsafe.Pointer(unsafe.SliceData(buf)))
	p := uintptr(unsafe.Pointer(unsafe.SliceData(sub)))
	return lo <= p && p+uintptr(len(sub)) <= lo+uintptr(len(buf))
}

// checkClasses checks the class rules on a real envelope.
func checkClasses(t *testing.T, e *Envelope) {
	t.Helper()
	var creator Class = ClassUnknown
	for i := range e.Items {
		if e.Items[i].CreatesEvent() {
			creator = e.Items[i].Class
		}
	}
	for i := range e.Items {
		it := &e.Items[i]
		switch it.Type {
		case ItemAttachment:
			if creator != ClassUnknown && it.Class != creator {
				t.Errorf("attachment %d has class %v, its event %v", i, it.Class, creator)
			}
		default:
			if it.Class != it.Info().Class {
				t.Errorf("item %d (%s) has class %v, registry says %v", i, it.TypeName, it.Class, it.Info().Class)
			}
		}
	}
}

// checkRoundTrip serializes e, parses the result and checks that every item
// and payload byte survived, and that serialization is stable.
func checkRoundTrip(t *testing.T, e *Envelope, body []byte) {
	t.Helper()
	out := e.AppendTo(nil)
	e2, err := Parse(out)
	if err != nil {
		t.Fatalf("re-parse of AppendTo output: %v\n%s", err, clip(out))
	}
	assertSameEnvelope(t, e, e2)
	if out2 := e2.AppendTo(nil); !bytes.Equal(out, out2) {
		t.Fatalf("AppendTo is not stable:\n%s\n---\n%s", clip(out), clip(out2))
	}
	_ = body
	for i := range e.Items {
		if it := &e2.Items[i]; it.Length != len(it.Payload) {
			t.Errorf("re-serialized item %d has length %d for %d bytes", i, it.Length, len(it.Payload))
		}
	}
}

func assertSameEnvelope(t *testing.T, a, b *Envelope) {
	t.Helper()
	if !bytes.Equal(a.Header.Raw, b.Header.Raw) || a.Header.EventID != b.Header.EventID ||
		a.Header.DSN != b.Header.DSN || a.Header.SentAt != b.Header.SentAt {
		t.Fatalf("header changed: %q -> %q", a.Header.Raw, b.Header.Raw)
	}
	if len(a.Items) != len(b.Items) {
		t.Fatalf("item count changed: %d -> %d", len(a.Items), len(b.Items))
	}
	for i := range a.Items {
		x, y := &a.Items[i], &b.Items[i]
		if x.Type != y.Type || x.TypeName != y.TypeName || x.Class != y.Class ||
			x.ContentType != y.ContentType || x.Filename != y.Filename ||
			x.AttachmentType != y.AttachmentType || x.ItemCount != y.ItemCount {
			t.Fatalf("item %d changed: %+v -> %+v", i, itemSummary(x), itemSummary(y))
		}
		if !bytes.Equal(x.Payload, y.Payload) {
			t.Fatalf("item %d payload changed: %q -> %q", i, clip(x.Payload), clip(y.Payload))
		}
	}
	if a.Classes() != b.Classes() || a.HasEvent() != b.HasEvent() || a.NeedsEventID() != b.NeedsEventID() {
		t.Fatalf("envelope flags changed: %v %v %v -> %v %v %v",
			a.Classes(), a.HasEvent(), a.NeedsEventID(), b.Classes(), b.HasEvent(), b.NeedsEventID())
	}
}

func itemSummary(it *Item) map[string]any {
	return map[string]any{
		"type": it.TypeName, "class": it.Class.String(), "ct": it.ContentType, "fn": it.Filename,
		"at": it.AttachmentType, "count": it.ItemCount, "len": it.Length, "payload": len(it.Payload),
	}
}

func clip(b []byte) string {
	if len(b) > 400 {
		return string(b[:400]) + "..."
	}
	return string(b)
}

// checkSplit checks that Split and AppendClass partition the items by class
// and keep the header.
func checkSplit(t *testing.T, e *Envelope) {
	t.Helper()
	var seen []Class
	n := 0
	e.Split(func(c Class, part *Envelope) {
		seen = append(seen, c)
		if !bytes.Equal(part.Header.Raw, e.Header.Raw) {
			t.Errorf("split %v: header changed", c)
		}
		for i := range part.Items {
			if part.Items[i].Class != c {
				t.Errorf("split %v holds an item of class %v", c, part.Items[i].Class)
			}
		}
		n += len(part.Items)
		// AppendClass gives the same envelope.
		viaAppend, err := Parse(e.AppendClass(nil, c))
		if err != nil {
			t.Fatalf("AppendClass(%v) does not parse: %v", c, err)
		}
		viaSplit, err := Parse(part.AppendTo(nil))
		if err != nil {
			t.Fatalf("split %v does not parse: %v", c, err)
		}
		assertSameEnvelope(t, viaAppend, viaSplit)
	})
	if n != len(e.Items) {
		t.Errorf("splits hold %d items, envelope %d", n, len(e.Items))
	}
	if want := slices.Collect(e.Classes().All()); !slices.Equal(seen, want) {
		t.Errorf("split classes %v, want %v", seen, want)
	}
}

// checkStoreBody runs a legacy store body through FromStore.
func checkStoreBody(t *testing.T, body []byte) {
	t.Helper()
	env, id, err := FromStore(nil, body)
	if err != nil {
		t.Fatalf("FromStore: %v", err)
	}
	e, err := Parse(env)
	if err != nil {
		t.Fatalf("FromStore output does not parse: %v\n%s", err, clip(env))
	}
	if len(e.Items) != 1 {
		t.Fatalf("FromStore gave %d items, want 1", len(e.Items))
	}
	it := &e.Items[0]
	if !bytes.Equal(it.Payload, bytes.TrimSpace(body)) {
		t.Fatal("FromStore changed the event bytes")
	}
	if it.ContentType != ContentTypeJSON {
		t.Errorf("content_type %q", it.ContentType)
	}
	if e.Header.EventID != id || id.IsZero() {
		t.Errorf("header event id %v, returned %v", e.Header.EventID, id)
	}
	var ev struct {
		EventID string `json:"event_id"`
		Type    string `json:"type"`
	}
	if err := json.Unmarshal(body, &ev); err != nil {
		t.Fatal(err)
	}
	if ev.EventID != "" {
		want, err := ParseEventID(ev.EventID)
		if err != nil || want != id {
			t.Errorf("event id %v, event says %q", id, ev.EventID)
		}
	}
	wantType := ItemEvent
	if ev.Type == "transaction" {
		wantType = ItemTransaction
	}
	if it.Type != wantType {
		t.Errorf("item type %v, want %v", it.Type, wantType)
	}
	checkRoundTrip(t, e, env)
	checkSplit(t, e)
}

// TestRelayEventFixtures runs Relay's store-endpoint event bodies through
// FromStore.
func TestRelayEventFixtures(t *testing.T) {
	dir := filepath.Join(relayFixtures, "events")
	files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	if len(files) == 0 {
		t.Fatalf("no event fixtures in %s", dir)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			body, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			checkStoreBody(t, body)
		})
	}
}

// TestRelaySecurityReportFixtures runs the browser report bodies through
// FromSecurityReport.
func TestRelaySecurityReportFixtures(t *testing.T) {
	dir := filepath.Join(relayFixtures, "security_report")
	files, _ := filepath.Glob(filepath.Join(dir, "*.input.json"))
	if len(files) == 0 {
		t.Fatalf("no security report inputs in %s", dir)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			body, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			env, err := FromSecurityReport(nil, body, "app@1.0", "prod")
			if err != nil {
				t.Fatalf("FromSecurityReport: %v", err)
			}
			e, err := Parse(env)
			if err != nil {
				t.Fatalf("output does not parse: %v\n%s", err, env)
			}
			if len(e.Items) != 1 || e.Items[0].Type != ItemRawSecurity {
				t.Fatalf("items %+v, want one raw_security", e.Items)
			}
			it := &e.Items[0]
			if !bytes.Equal(it.Payload, bytes.TrimSpace(body)) {
				t.Error("report bytes changed")
			}
			h := jsonMap(t, it.Header)
			if h["sentry_release"] != "app@1.0" || h["sentry_environment"] != "prod" || h["content_type"] != "application/json" {
				t.Errorf("item header %v", h)
			}
			if it.Class != ClassSecurity || !e.HasEvent() || e.Header.EventID.IsZero() {
				t.Errorf("class %v, has event %v, event id %v", it.Class, e.HasEvent(), e.Header.EventID)
			}
			checkRoundTrip(t, e, env)
			checkSplit(t, e)
		})
	}
	// The .output.json goldens are not inputs; a non-JSON body is rejected.
	if _, err := FromSecurityReport(nil, []byte("csp-report=1"), "", ""); !errors.Is(err, ErrInvalid) {
		t.Errorf("non-JSON report: %v, want ErrInvalid", err)
	}
}
