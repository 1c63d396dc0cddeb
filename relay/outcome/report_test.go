package outcome

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/baton-relay/baton/envelope"
	"github.com/baton-relay/baton/relay/internal/testutil"
)

func mustParse(t *testing.T, s string) *envelope.Envelope {
	t.Helper()
	e, err := envelope.Parse([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// Drops merge per (project, key, category, outcome, reason); only the
// outcomes Relay puts in client reports are kept; the items of an event
// count as Relay counts them (1 error, attachment bytes and items).
func TestReporterMerge(t *testing.T) {
	r := NewReporter(ReporterOptions{Mode: ModeClientReports})
	env := mustParse(t, "{}\n{\"type\":\"event\"}\n{}\n{\"type\":\"attachment\",\"length\":3}\nabc\n{\"type\":\"attachment\",\"length\":5}\nabcde\n")
	k := []byte("k1")
	r.EmitItems(42, k, env.Items, envelope.ClassError, ReasonFiltered, "web-crawlers")
	r.EmitItems(42, k, env.Items, envelope.ClassError, ReasonFiltered, "web-crawlers")
	r.Emit(42, k, envelope.CategoryError, ReasonRateLimited, "org_quota", 1)
	r.Emit(42, k, envelope.CategoryError, ReasonInvalid, "too_large", 1) // not in client reports
	r.Emit(7, []byte("k2"), envelope.CategoryTransaction, ReasonSampled, "Sampled:1", 3)
	r.Emit(7, []byte("k2"), envelope.CategoryUnknown, ReasonFiltered, "x", 3) // counts nothing

	got := r.Take()
	want := []Report{
		{ProjectID: 7, PublicKey: "k2", Discarded: []Discarded{{ReasonSampled, "Sampled:1", envelope.CategoryTransaction, 3}}},
		{ProjectID: 42, PublicKey: "k1", Discarded: []Discarded{
			{ReasonFiltered, "web-crawlers", envelope.CategoryError, 2},
			{ReasonFiltered, "web-crawlers", envelope.CategoryAttachment, 16},
			{ReasonFiltered, "web-crawlers", envelope.CategoryAttachmentItem, 4},
			{ReasonRateLimited, "org_quota", envelope.CategoryError, 1},
		}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Take:\n got %+v\nwant %+v", got, want)
	}
	if r.Take() != nil {
		t.Error("a second Take returned drops again")
	}
	if r.Reported() != 26 || r.Lost() != 0 {
		t.Errorf("reported %d lost %d, want 26 and 0", r.Reported(), r.Lost())
	}

	b := got[1].AppendEnvelope(nil, 1700000000)
	e := mustParse(t, string(b))
	if len(e.Items) != 1 || e.Items[0].Type != envelope.ItemClientReport {
		t.Fatalf("envelope %q", b)
	}
	var cr map[string]any
	if err := json.Unmarshal(e.Items[0].Payload, &cr); err != nil {
		t.Fatal(err)
	}
	wantCR := map[string]any{
		"timestamp": 1700000000.0,
		"filtered_events": []any{
			map[string]any{"reason": "web-crawlers", "category": "error", "quantity": 2.0},
			map[string]any{"reason": "web-crawlers", "category": "attachment", "quantity": 16.0},
			map[string]any{"reason": "web-crawlers", "category": "attachment_item", "quantity": 4.0},
		},
		"rate_limited_events": []any{map[string]any{"reason": "org_quota", "category": "error", "quantity": 1.0}},
	}
	if !reflect.DeepEqual(cr, wantCR) {
		t.Errorf("client report %s", e.Items[0].Payload)
	}
}

// Past MaxEntries a drop that needs a new entry is lost (counted); one
// that merges into an entry held still counts.
func TestReporterCap(t *testing.T) {
	r := NewReporter(ReporterOptions{Mode: ModeClientReports, MaxEntries: 2})
	r.Emit(1, []byte("a"), envelope.CategoryError, ReasonFiltered, "f1", 1)
	r.Emit(1, []byte("a"), envelope.CategoryError, ReasonFiltered, "f2", 1)
	r.Emit(1, []byte("a"), envelope.CategoryError, ReasonFiltered, "f3", 5) // no room
	r.Emit(1, []byte("a"), envelope.CategoryError, ReasonFiltered, "f1", 2) // merges
	if r.Lost() != 5 {
		t.Errorf("lost %d, want 5", r.Lost())
	}
	reps := r.Take()
	if len(reps) != 1 || len(reps[0].Discarded) != 2 || reps[0].Discarded[0].Quantity != 3 {
		t.Fatalf("Take = %+v", reps)
	}
	// Taken, the budget is free again.
	r.Emit(1, []byte("a"), envelope.CategoryError, ReasonFiltered, "f3", 1)
	if len(r.Take()) != 1 {
		t.Error("the entry budget was not freed by Take")
	}
}

// Off, the reporter is nil and every method a no-op.
func TestReporterOff(t *testing.T) {
	m, err := ParseMode("false")
	if err != nil || NewReporter(ReporterOptions{Mode: m}) != nil {
		t.Fatal("emit_outcomes false built a reporter")
	}
	var r *Reporter
	r.Emit(1, []byte("a"), envelope.CategoryError, ReasonFiltered, "f", 1)
	if r.Take() != nil || r.Lost() != 0 || r.Flush(time.Now(), nil) != nil {
		t.Error("a nil reporter did something")
	}
	if m, err := ParseMode("true"); err != nil || m != ModeOutcomes {
		t.Errorf("ParseMode(true) = %v, %v", m, err)
	}
	if _, err := ParseMode("yes"); err == nil {
		t.Error("ParseMode(yes) did not fail")
	}
}

// Run flushes every interval, at the clock's time, and only what merged
// since the last flush; a failed write counts the drops as lost.
func TestReporterRunFlushes(t *testing.T) {
	start := time.Unix(1700000000, 0)
	clock := testutil.NewClock(start, false)
	r := NewReporter(ReporterOptions{Mode: ModeClientReports})
	type flush struct {
		at   time.Time
		reps []Report
	}
	flushes := make(chan flush, 4)
	fail := errors.New("buffer full")
	failNext := false
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.Run(ctx, clock, 500*time.Millisecond, func(now time.Time, reps []Report) error {
			flushes <- flush{now, reps}
			if failNext {
				return fail
			}
			return nil
		})
	}()
	w := clock.Next(t, 5*time.Second)
	if w.D != 500*time.Millisecond {
		t.Fatalf("waited %v, want batch_interval", w.D)
	}
	r.Emit(42, []byte("k"), envelope.CategoryError, ReasonFiltered, "localhost", 2)
	clock.Advance(500 * time.Millisecond)
	w.Fire()
	f := <-flushes
	if !f.at.Equal(start.Add(500*time.Millisecond)) || len(f.reps) != 1 || f.reps[0].Discarded[0].Quantity != 2 {
		t.Fatalf("first flush %+v", f)
	}
	// Nothing merged: the next interval writes nothing.
	w = clock.Next(t, 5*time.Second)
	w.Fire()
	w = clock.Next(t, 5*time.Second)
	select {
	case f := <-flushes:
		t.Fatalf("an empty interval flushed %+v", f)
	default:
	}
	failNext = true // read by the flush after the Emit below (happens-before through the wait)
	r.Emit(42, []byte("k"), envelope.CategoryError, ReasonFiltered, "localhost", 3)
	w.Fire()
	<-flushes
	clock.Next(t, 5*time.Second)
	cancel()
	<-done
	if r.Lost() != 3 || r.Reported() != 2 {
		t.Errorf("lost %d reported %d, want 3 and 2", r.Lost(), r.Reported())
	}
	// At shutdown the owner flushes what is left.
	r.Emit(42, []byte("k"), envelope.CategoryError, ReasonFiltered, "localhost", 1)
	var last []Report
	if err := r.Flush(start, func(_ time.Time, reps []Report) error { last = reps; return nil }); err != nil || len(last) != 1 {
		t.Errorf("shutdown flush = %v, %+v", err, last)
	}
}
