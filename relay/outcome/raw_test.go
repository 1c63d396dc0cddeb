package outcome

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/baton-relay/baton/envelope"
	"github.com/baton-relay/baton/relay/internal/testutil"
)

// Every reason Baton drops for maps to Relay's outcome id and reason.
func TestRelayOutcomeOfReason(t *testing.T) {
	for _, c := range []struct {
		why    Reason
		code   string
		id     ID
		reason string
	}{
		{ReasonFiltered, "web-crawlers", Filtered, "web-crawlers"},
		{ReasonSampled, "Sampled:1004", Filtered, "Sampled:1004"},
		{ReasonRateLimited, "org_quota", RateLimited, "org_quota"},
		{ReasonRateLimited, "", RateLimited, ""},
		{ReasonCardinality, "limit-1", CardinalityLimited, "limit-1"},
		{ReasonProjectUnknown, "", Invalid, "project_id"},
		{ReasonProjectDisabled, "", Invalid, "project_id"},
		{ReasonProjectState, "", Invalid, "project_state"},
		{ReasonCORS, "", Invalid, "cors"},
		{ReasonFeatureDisabled, "", Invalid, "feature_disabled"},
		{ReasonTooLarge, "", Invalid, "too_large"},
		{ReasonExpired, "", Invalid, "timestamp"},
		{ReasonBufferFull, "", Invalid, "internal"},
		{ReasonCorrupt, "", Invalid, "internal"},
		{ReasonNoRoute, "", Invalid, "internal"},
		{ReasonInvalid, "", Invalid, "internal"},
	} {
		if id, reason := Relay(c.why, c.code); id != c.id || reason != c.reason {
			t.Errorf("Relay(%s, %q) = %d %q, want %d %q", c.why, c.code, id, reason, c.id, c.reason)
		}
	}
}

// A raw outcome serializes as Relay's TrackRawOutcome: microsecond UTC
// timestamp, absent fields omitted, category 0 kept.
func TestRawJSON(t *testing.T) {
	at := time.Date(2026, 1, 1, 12, 0, 0, 123456789, time.FixedZone("x", 3600))
	o := newRaw(at, 42, Invalid, "too_large", envelope.CategoryDefault, 1)
	b, _ := json.Marshal(&o)
	want := `{"timestamp":"2026-01-01T11:00:00.123456Z","project_id":42,"outcome":3,"reason":"too_large","category":0,"quantity":1}`
	if string(b) != want {
		t.Fatalf("got  %s\nwant %s", b, want)
	}
	o.OrgID, o.KeyID, o.EventID, o.RemoteAddr, o.Source = 1, 7, "9ec79c33ec9942ab8353589fcb2e04dc", "1.2.3.4", "edge"
	b, _ = json.Marshal(&o)
	want = `{"timestamp":"2026-01-01T11:00:00.123456Z","org_id":1,"project_id":42,"key_id":7,"outcome":3,"reason":"too_large",` +
		`"event_id":"9ec79c33ec9942ab8353589fcb2e04dc","remote_addr":"1.2.3.4","source":"edge","category":0,"quantity":1}`
	if string(b) != want {
		t.Fatalf("got  %s\nwant %s", b, want)
	}
	if o.Billing() {
		t.Error("invalid is billing")
	}
	if o.Outcome = RateLimited; !o.Billing() {
		t.Error("rate_limited is not billing")
	}

	lines := AppendLines(nil, []Raw{o, newRaw(at, 1, Accepted, "", envelope.CategoryError, 2)})
	var n int
	Lines(lines, func(line []byte) {
		info := InfoOf(line)
		if !info.Billing || (n == 0) != (info.EventID == o.EventID) || info.ProjectID != 42-41*uint64(n) {
			t.Errorf("line %d %s: %+v", n, line, info)
		}
		n++
	})
	if n != 2 {
		t.Errorf("%d lines, want 2", n)
	}
	back, err := ParseBatch([]byte(`{"outcomes":[` + strings.ReplaceAll(strings.TrimSpace(string(lines)), "\n", ",") + `]}`))
	if err != nil || len(back) != 2 || !reflect.DeepEqual(back[0], o) {
		t.Fatalf("ParseBatch: %v %+v", err, back)
	}
	for _, bad := range []string{`[]`, `{"outcomes":[{"project_id":1}]}`, `{"outcomes":[{"timestamp":"x"}]}`} {
		if _, err := ParseBatch([]byte(bad)); !errors.Is(err, ErrNoOutcomes) {
			t.Errorf("ParseBatch(%s) = %v", bad, err)
		}
	}
}

// An SDK's client report becomes outcomes as Relay's processing makes
// them: fields to outcome ids, lines summed, sampling reasons as rule
// categories, bad lines skipped, no event id or address.
func TestFromClientReport(t *testing.T) {
	recv := time.Unix(1712345678, 0)
	sc := &ClientScope{ProjectID: 42, OrgID: 1, KeyID: 7, Source: "edge", Received: recv, MaxPast: 5 * 24 * time.Hour, MaxFuture: time.Minute}
	payload := `{"timestamp":1712345600,
		"discarded_events":[{"reason":"queue_overflow","category":"error","quantity":3},{"reason":"queue_overflow","category":"error","quantity":2},
			{"reason":"x","category":"nonsense","quantity":1},{"reason":"y","category":"error","quantity":0},{"reason":"` + strings.Repeat("r", 201) + `","category":"error","quantity":1}],
		"rate_limited_events":[{"reason":"","category":"transaction","quantity":4}],
		"filtered_events":[{"reason":"web-crawlers","category":"error","quantity":1}],
		"filtered_sampling_events":[{"reason":"Sampled:1004,1450,7","category":"transaction","quantity":6},{"reason":"nope","category":"transaction","quantity":1},{"reason":"Sampled:x","category":"span","quantity":1}]}`
	got, err := FromClientReport([]byte(payload), sc)
	if err != nil {
		t.Fatal(err)
	}
	at := Timestamp(time.Unix(1712345600, 0))
	u8 := func(c envelope.Category) *uint8 { v := uint8(c); return &v }
	u32 := func(v uint32) *uint32 { return &v }
	want := []Raw{
		{Timestamp: at, OrgID: 1, ProjectID: 42, KeyID: 7, Outcome: ClientDiscard, Reason: "queue_overflow", Source: "edge", Category: u8(envelope.CategoryError), Quantity: u32(5)},
		{Timestamp: at, OrgID: 1, ProjectID: 42, KeyID: 7, Outcome: Filtered, Reason: "web-crawlers", Source: "edge", Category: u8(envelope.CategoryError), Quantity: u32(1)},
		{Timestamp: at, OrgID: 1, ProjectID: 42, KeyID: 7, Outcome: Filtered, Reason: "Sampled:1004,1400,0", Source: "edge", Category: u8(envelope.CategoryTransaction), Quantity: u32(6)},
		{Timestamp: at, OrgID: 1, ProjectID: 42, KeyID: 7, Outcome: RateLimited, Source: "edge", Category: u8(envelope.CategoryTransaction), Quantity: u32(4)},
	}
	if !reflect.DeepEqual(got, want) {
		g, _ := json.Marshal(got)
		w, _ := json.Marshal(want)
		t.Fatalf("got  %s\nwant %s", g, w)
	}

	// Too old, too far ahead: nothing; no timestamp: the arrival time.
	for _, ts := range []string{"1711000000", "1712345800"} {
		if outs, err := FromClientReport([]byte(`{"timestamp":`+ts+`,"discarded_events":[{"reason":"a","category":"error","quantity":1}]}`), sc); !errors.Is(err, ErrClientReportTime) || outs != nil {
			t.Errorf("timestamp %s: %v %v", ts, outs, err)
		}
	}
	outs, err := FromClientReport([]byte(`{"discarded_events":[{"reason":"a","category":"error","quantity":1}]}`), sc)
	if err != nil || len(outs) != 1 || outs[0].Timestamp != Timestamp(recv) {
		t.Errorf("no timestamp: %+v %v", outs, err)
	}
	if _, err := FromClientReport([]byte(`not json`), sc); err == nil {
		t.Error("a broken report converted")
	}
}

// Raw mode reports every drop with its origin, merges identical ones,
// and flushes early once BatchSize entries are held.
func TestReporterRawOutcomes(t *testing.T) {
	now := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	r := NewReporter(ReporterOptions{Mode: ModeOutcomes, BatchSize: 4, Now: func() time.Time { return now }})
	eid := envelope.EventID{0x9e, 0xc7}
	o := &Origin{ProjectID: 42, Key: []byte("k"), OrgID: 1, KeyID: 7, EventID: eid, RemoteAddr: "10.0.0.1"}
	env := mustParse(t, "{}\n{\"type\":\"event\"}\n{}\n{\"type\":\"attachment\",\"length\":3}\nabc\n")
	r.EmitItemsFrom(o, env.Items, envelope.NumClasses, ReasonFiltered, "web-crawlers")
	r.EmitFrom(o, envelope.CategoryError, ReasonFiltered, "web-crawlers", 1) // merges
	select {
	case <-r.full:
		t.Fatal("signalled full below the batch size")
	default:
	}
	r.EmitFrom(&Origin{ProjectID: 42, Key: []byte("k"), Received: now.Add(-time.Hour)}, envelope.CategoryTransaction, ReasonProjectState, "", 2)
	select {
	case <-r.full:
	default:
		t.Fatal("no early flush at the batch size")
	}
	got := r.TakeOutcomes("edge")
	ts := Timestamp(now)
	u8 := func(c envelope.Category) *uint8 { v := uint8(c); return &v }
	u32 := func(v uint32) *uint32 { return &v }
	want := []Raw{
		{Timestamp: Timestamp(now.Add(-time.Hour)), ProjectID: 42, Outcome: Invalid, Reason: "project_state", Source: "edge", Category: u8(envelope.CategoryTransaction), Quantity: u32(2)},
		{Timestamp: ts, OrgID: 1, ProjectID: 42, KeyID: 7, Outcome: Filtered, Reason: "web-crawlers", EventID: eid.String(), RemoteAddr: "10.0.0.1", Source: "edge", Category: u8(envelope.CategoryError), Quantity: u32(2)},
		{Timestamp: ts, OrgID: 1, ProjectID: 42, KeyID: 7, Outcome: Filtered, Reason: "web-crawlers", EventID: eid.String(), RemoteAddr: "10.0.0.1", Source: "edge", Category: u8(envelope.CategoryAttachment), Quantity: u32(3)},
		{Timestamp: ts, OrgID: 1, ProjectID: 42, KeyID: 7, Outcome: Filtered, Reason: "web-crawlers", EventID: eid.String(), RemoteAddr: "10.0.0.1", Source: "edge", Category: u8(envelope.CategoryAttachmentItem), Quantity: u32(1)},
	}
	if !reflect.DeepEqual(got, want) {
		g, _ := json.Marshal(got)
		w, _ := json.Marshal(want)
		t.Fatalf("got  %s\nwant %s", g, w)
	}
	if r.Reported() != 8 {
		t.Errorf("reported %d, want 8", r.Reported())
	}

	// A failed write counts as lost.
	r.EmitFrom(o, envelope.CategoryError, ReasonCORS, "", 1)
	if err := r.FlushOutcomes("edge", func([]Raw) error { return errors.New("full") }); err == nil || r.Lost() != 1 || r.Reported() != 8 {
		t.Errorf("failed flush: %v lost %d reported %d", err, r.Lost(), r.Reported())
	}
}

// RunOutcomes flushes when BatchSize entries are held, without waiting
// for the interval.
func TestRunOutcomesFlushesWhenFull(t *testing.T) {
	r := NewReporter(ReporterOptions{Mode: ModeOutcomes, BatchSize: 2})
	clock := testutil.NewClock(time.Unix(1700000000, 0), false)
	got := make(chan []Raw, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.RunOutcomes(ctx, clock, time.Hour, "", func(outs []Raw) error { got <- outs; return nil })
	}()
	r.Emit(1, []byte("a"), envelope.CategoryError, ReasonCORS, "", 1)
	r.Emit(1, []byte("a"), envelope.CategorySession, ReasonCORS, "", 1)
	select {
	case outs := <-got:
		if len(outs) != 2 {
			t.Errorf("flushed %d outcomes, want 2", len(outs))
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no flush at the batch size")
	}
	cancel()
	<-done
}
