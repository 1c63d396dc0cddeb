package integration

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

// A when_full: drop_oldest eviction is reported as a raw outcome although
// it happens only because the buffer is full: the outcome records go in
// the buffer's overdraft. With Sentry refusing envelopes (503) and a small
// buffer, Baton keeps taking events and evicts the oldest unread ones;
// Sentry gets one outcome per evicted event (invalid, reason internal, its
// event id, org and key id), none is lost, and once Sentry takes envelopes
// again every event is either delivered or reported, and the stats
// balance.
func TestEvictionReportedAsRawOutcomes(t *testing.T) {
	const (
		pad       = 256 // random hex: S2 does not shrink it
		batchSize = 100 // outcomes per record: more than the room an eviction leaves
	)
	settleDialer(t)
	s := newFakeSentry(t)
	s.setProject(managedKey, fakeSentryProjectState(42, managedKey, "r1", nil))
	s.setEnvelopeStatus(503)
	n := startNode(t, fmt.Sprintf(`mode: managed
upstreams:
  up:
    urls: [%s]
    max_retry_interval: 200ms
routes:
  default: {upstream: up}
  error: {upstream: up, when_full: drop_oldest}
managed:
  upstream: up
  fetch: {batch_interval: 10ms}
buffer:
  max_bytes: 512KiB
  reserve_bytes: 128KiB
  memtable_size: 256KiB
outcomes:
  emit_outcomes: "true"
  batch_interval: 1h
  batch_size: %d
  source: edge-e
`, s.url(), batchSize))
	rng := rand.New(rand.NewPCG(1, 2))
	sent := map[string]bool{}
	send := func(i int) {
		t.Helper()
		id := fmt.Sprintf("e1c7%028x", i)
		msg := make([]byte, pad)
		for j := range msg {
			msg[j] = "0123456789abcdef"[rng.IntN(16)]
		}
		body := fmt.Sprintf(`{"event_id":"%s","dsn":"http://%s@h/42"}`+"\n"+`{"type":"event"}`+"\n"+`{"message":"%s"}`+"\n", id, managedKey, msg)
		if status, resp, _ := postEnvelope(t, n, 42, managedKey, []byte(body), map[string]string{"X-Forwarded-For": "203.0.113.5"}); status != 200 {
			t.Fatalf("event %d: %d %s", i, status, resp)
		}
		sent[id] = true
	}
	// The first event is in flight (the forwarder retries it), so the ones
	// after it are unread and may be evicted; its config is then cached.
	send(0)
	fakeWaitFor(t, 15*time.Second, func() bool {
		return len(s.envelopes()) > 0 && n.r.Stats().Classes["error"].Pending.Records == 1
	}, func() string { return "the first event was not tried upstream: " + statsJSON(n.r.Stats()) })
	// An eviction leaves less room than one event takes; the outcomes of
	// batchSize evictions, written at once, take more than that. Sending
	// stops at a multiple of batchSize evictions, so that every outcome is
	// written (the batch interval never comes).
	for i := 1; ; i++ {
		if e := n.r.Stats().Classes["error"].Dropped["buffer_full"].Records; e >= batchSize && e%batchSize == 0 {
			break
		}
		if i > 5000 {
			t.Fatalf("no multiple of %d evictions after %d events: %s", batchSize, i, statsJSON(n.r.Stats()))
		}
		send(i)
	}
	evicted := n.r.Stats().Classes["error"].Dropped["buffer_full"]
	t.Logf("%d events sent, %+v evicted", len(sent), evicted)

	// Sentry has one outcome per evicted event, while the buffer is still full.
	var outs []map[string]any
	fakeWaitFor(t, 15*time.Second, func() bool {
		outs = sentryOutcomes(s)
		return int64(len(outs)) >= evicted.Records
	}, func() string {
		return fmt.Sprintf("%d outcomes at Sentry, want %d evictions; %s", len(outs), evicted.Records, statsJSON(n.r.Stats()))
	})
	reported := map[string]bool{}
	for _, o := range normOutcomes(t, outs) {
		var id string
		if _, err := fmt.Sscanf(o[strings.Index(o, `"event_id":"`)+len(`"event_id":"`):], "%32s", &id); err != nil || !sent[id] || reported[id] {
			t.Errorf("outcome %s: not of one evicted event", o)
			continue
		}
		reported[id] = true
		want := wantOutcomes(map[string]any{"org_id": 1, "project_id": 42, "key_id": 4201, "outcome": 3, "reason": "internal",
			"event_id": id, "remote_addr": "203.0.113.5", "source": "edge-e", "category": 1, "quantity": 1})
		if o != want[0] {
			t.Errorf("outcome\n got %s\nwant %s", o, want[0])
		}
	}
	if int64(len(reported)) != evicted.Records {
		t.Errorf("%d events reported, want the %d evicted", len(reported), evicted.Records)
	}

	// Sentry takes envelopes again: every event is delivered or reported.
	s.setEnvelopeStatus(0)
	st := waitBalanced(t, n, 30*time.Second)
	delivered := map[string]bool{}
	for _, e := range s.envelopes() {
		head, _, _ := strings.Cut(string(e.Body), "\n")
		if _, id, ok := strings.Cut(head, `"event_id":"`); ok && e.Status == 200 && len(id) >= 32 {
			delivered[id[:32]] = true
		}
	}
	for _, id := range slices.Sorted(maps.Keys(sent)) {
		if delivered[id] == reported[id] {
			t.Errorf("event %s: delivered %t, reported evicted %t; want exactly one", id, delivered[id], reported[id])
		}
	}
	if st.Reports == nil || st.Reports.Lost != 0 || st.Reports.Reported != evicted.Items {
		t.Errorf("reports %+v: want the %d evicted events reported and none lost", st.Reports, evicted.Items)
	}
	if e := st.Classes["error"]; e.Dropped["buffer_full"] != evicted || e.Delivered.Records != int64(len(sent))-evicted.Records {
		t.Errorf("error class %+v: want %+v evicted and the other %d delivered", e, evicted, int64(len(sent))-evicted.Records)
	}
}
