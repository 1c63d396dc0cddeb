package integration

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/getsentry/sentry-go"
)

// headDropAll is a sampling part whose one trace rule (id 1001) keeps no
// trace: head sampling drops every transaction of the project.
var headDropAll = map[string]any{"version": 2, "rules": []any{map[string]any{
	"id": 1001, "type": "trace",
	"samplingValue": map[string]any{"type": "sampleRate", "value": 0},
	"condition":     map[string]any{"op": "and", "inner": []any{}},
}}}

// Tail sampling from the project config (issue 22): project 42's
// tailSampling part is enabled with a 1 s decision wait (the static one is
// 30 s), a span-data rule and no keepRate, so the keep rate is what its
// sampling rules give: 0. Its traces skip head sampling: the one with an
// error and the one a rule matches are kept whole, the plain one is dropped
// whole with outcome sampled. Project 43 has the same head sampling and a
// broken tailSampling part: it falls back to head sampling, its
// transactions dropped at ingest and never held.
func TestTailSamplingManagedPart(t *testing.T) {
	settleDialer(t)
	s := newFakeSentry(t)
	s.setProject(managedKey, fakeSentryProjectState(42, managedKey, "r1", func(m map[string]any) {
		c := m["config"].(map[string]any)
		c["sampling"] = headDropAll
		c["tailSampling"] = map[string]any{"enabled": true, "decisionWait": 1, "rules": []any{map[string]any{"attribute": "tier", "equals": "gold"}}}
	}))
	s.setProject(managedKey2, fakeSentryProjectState(43, managedKey2, "r1", func(m map[string]any) {
		c := m["config"].(map[string]any)
		c["sampling"] = headDropAll
		c["tailSampling"] = map[string]any{"enabled": true, "keepRate": 2}
	}))
	n := startNode(t, managedYAML(s.url(), "outcomes:\n  emit_outcomes: \"true\"\n  batch_interval: 10ms\n"))
	dsn := func(pid uint64, key string) string { return fmt.Sprintf("http://%s@%s/%d", key, n.r.Addr(), pid) }

	sendTrace(t, dsn(42, managedKey), "mtail-A", true, 0)  // an error inside: kept
	sendTrace(t, dsn(42, managedKey), "mtail-B", false, 0) // plain: dropped at keep rate 0
	sendGoldTrace(t, dsn(42, managedKey), "mtail-D")       // span data tier=gold: kept
	sendTrace(t, dsn(43, managedKey2), "mtail-E", true, 0) // broken part: head-sampled away

	// Decided well within tail_sampling.decision_wait (30 s): the part's
	// 1 s applies.
	st := waitBalanced(t, n, 15*time.Second)
	if ts := st.TailSampling; ts == nil || ts.Kept != 2 || ts.Dropped != 1 {
		t.Errorf("tail sampling stats %+v, want 2 traces kept (A, D) and 1 dropped (B); project 43's never held", ts)
	}
	if got := st.Classes["transaction"].Dropped["sampled"]; got.Records != 4 {
		t.Errorf("transactions dropped as sampled = %+v, want 4 (B's 2 by tail, E's 2 by head)", got)
	}
	fakeWaitFor(t, 15*time.Second, func() bool {
		tx := deliveredTransactions(s)
		return tx["42 mtail-A/1"] == 1 && tx["42 mtail-A/2"] == 1 && tx["42 mtail-D/1"] == 1
	}, func() string {
		return fmt.Sprintf("kept transactions not all delivered: upstream got %v", deliveredTransactions(s))
	})
	tx := deliveredTransactions(s)
	for _, name := range []string{"42 mtail-B/1", "42 mtail-B/2", "43 mtail-E/1", "43 mtail-E/2"} {
		if tx[name] != 0 {
			t.Errorf("transaction %s delivered, want it sampled away (upstream got %v)", name, tx)
		}
	}
	if deliveredTo(s, 43, "mtail-E: payment failed") != 1 {
		t.Errorf("project 43 (broken part): its error was not delivered")
	}
	// Upstream learns why: tail drops, like head drops, by the sampling
	// rule their keep rate came from.
	fakeWaitFor(t, 15*time.Second, func() bool {
		tail, head := sampledOutcomes(s, 42, "Sampled:1001"), sampledOutcomes(s, 43, "Sampled:1001")
		return tail == 2 && head == 2
	}, func() string { return fmt.Sprintf("sampled outcomes upstream: %v", sentryOutcomes(s)) })
}

// deliveredTransactions counts the transaction payloads the fake Sentry
// received, by "project name".
func deliveredTransactions(s *fakeSentry) map[string]int {
	got := map[string]int{}
	for _, e := range s.envelopes() {
		for _, line := range bytes.Split(e.Body, []byte("\n")) {
			var ev struct {
				Type        string          `json:"type"`
				Transaction string          `json:"transaction"`
				Start       json.RawMessage `json:"start_timestamp"`
			}
			if json.Unmarshal(line, &ev) == nil && ev.Type == "transaction" && ev.Start != nil {
				got[e.ProjectID+" "+ev.Transaction]++
			}
		}
	}
	return got
}

// sampledOutcomes sums the filtered (sampled) transaction outcomes of
// project pid with reason upstream.
func sampledOutcomes(s *fakeSentry, pid uint64, reason string) float64 {
	var q float64
	for _, o := range sentryOutcomes(s) {
		if o["project_id"] == float64(pid) && o["outcome"] == float64(1) && o["reason"] == reason && o["category"] == float64(2) {
			q += o["quantity"].(float64)
		}
	}
	return q
}

// sendGoldTrace sends, through sentry-go, a trace of one fast error-free
// transaction whose span has data tier=gold.
func sendGoldTrace(t *testing.T, dsn, name string) {
	t.Helper()
	client, err := sentry.NewClient(sentry.ClientOptions{Dsn: dsn, Transport: sentry.NewHTTPSyncTransport(), EnableTracing: true, TracesSampleRate: 1.0})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	hub := sentry.NewHub(client, sentry.NewScope())
	tx := sentry.StartTransaction(sentry.SetHubOnContext(t.Context(), hub), name+"/1")
	sp := tx.StartChild("cart.lookup")
	sp.SetData("tier", "gold")
	sp.Finish()
	tx.Finish()
	if !client.Flush(10 * time.Second) {
		t.Fatal("sentry-go did not flush")
	}
}

// After a restart the trace buffer's records wait for their project's
// config before they are indexed: project 42's trace, held under a 60 s
// decisionWait (rootGrace 0: off) when Baton stops, is decided after the restart by the
// part's rules (now a 1 s wait, keep rate 0: dropped), not by
// tail_sampling's defaults (30 s, keep rate 1), which would apply while
// the config is still being fetched.
func TestTailSamplingManagedRestart(t *testing.T) {
	settleDialer(t)
	s := newFakeSentry(t)
	part := func(rev string, wait int) string {
		return fakeSentryProjectState(42, managedKey, rev, func(m map[string]any) {
			m["config"].(map[string]any)["tailSampling"] = map[string]any{"enabled": true, "decisionWait": wait, "rootGrace": 0, "keepRate": 0}
		})
	}
	s.setProject(managedKey, part("r1", 60))
	dir := t.TempDir()
	n := startNodeIn(t, dir, managedYAML(s.url(), ""))
	sendTrace(t, fmt.Sprintf("http://%s@%s/42", managedKey, n.r.Addr()), "mrestart", false, 0)
	fakeWaitFor(t, 10*time.Second, func() bool {
		tx := n.r.Stats().Classes["transaction"]
		return tx.Accepted.Records == 2 && tx.Pending.Records == 2 && n.r.Stats().Waiting == 0
	}, func() string { return fmt.Sprintf("transactions %+v, want 2 held", n.r.Stats().Classes["transaction"]) })
	n.close()

	s.setProject(managedKey, part("r2", 1))
	s.setPending(managedKey, 1) // the config is not there at once
	start := time.Now()
	n = startNodeIn(t, dir, managedYAML(s.url(), ""))
	st := waitBalanced(t, n, 25*time.Second)
	t.Logf("decided %s after the restart", time.Since(start))
	if tx := st.Classes["transaction"]; tx.Recovered.Records != 2 || tx.Dropped["sampled"].Records != 2 {
		t.Errorf("after restart: transactions %+v; want the 2 recovered and dropped by the part's keep rate 0", tx)
	}
	if ts := st.TailSampling; ts == nil || ts.Dropped != 1 || ts.Kept != 0 {
		t.Errorf("tail sampling stats %+v, want the trace dropped once", ts)
	}
	if got := deliveredTransactions(s); len(got) != 0 {
		t.Errorf("delivered %v, want nothing", got)
	}
}

// A DSC that changes mid-trace under the managed part with no keepRate
// (the keep rate is what the head sampling rules give): canary traces are
// kept by the rules, others not. Trace F starts in production (rate 0) and
// its second transaction says canary (rate 1); trace G the reverse. Each is
// decided once, by the rate of its first item: F dropped whole, G kept
// whole.
func TestTailSamplingManagedDSCChange(t *testing.T) {
	settleDialer(t)
	s := newFakeSentry(t)
	s.setProject(managedKey, fakeSentryProjectState(42, managedKey, "r1", func(m map[string]any) {
		c := m["config"].(map[string]any)
		c["sampling"] = map[string]any{"version": 2, "rules": []any{
			map[string]any{"id": 1, "type": "trace", "samplingValue": map[string]any{"type": "sampleRate", "value": 1},
				"condition": map[string]any{"op": "eq", "name": "trace.environment", "value": []any{"canary"}}},
			map[string]any{"id": 2, "type": "trace", "samplingValue": map[string]any{"type": "sampleRate", "value": 0},
				"condition": map[string]any{"op": "and", "inner": []any{}}},
		}}
		c["tailSampling"] = map[string]any{"enabled": true, "decisionWait": 1}
	}))
	n := startNode(t, managedYAML(s.url(), ""))
	dsn := fmt.Sprintf("http://%s@%s/42", managedKey, n.r.Addr())
	envTo := func(from, to string) func(string) string {
		return func(b string) string {
			return strings.Replace(b, "sentry-environment="+from, "sentry-environment="+to, 1)
		}
	}
	sendSplitTrace(t, dsn, dsn, splitTrace{name: "dsc-F", env: "production", baggage: envTo("production", "canary")})
	sendSplitTrace(t, dsn, dsn, splitTrace{name: "dsc-G", env: "canary", baggage: envTo("canary", "production")})
	st := waitBalanced(t, n, 15*time.Second)
	if ts := st.TailSampling; ts == nil || ts.Kept != 1 || ts.Dropped != 1 {
		t.Errorf("tail sampling stats %+v, want one decision per trace: 1 kept, 1 dropped", ts)
	}
	fakeWaitFor(t, 10*time.Second, func() bool { return len(deliveredTransactions(s)) >= 2 }, func() string {
		return fmt.Sprintf("delivered %v, want trace G's 2 transactions", deliveredTransactions(s))
	})
	got := deliveredTransactions(s)
	if got["42 dsc-G/1"] != 1 || got["42 dsc-G/2"] != 1 || got["42 dsc-F/1"]+got["42 dsc-F/2"] != 0 {
		t.Errorf("delivered %v, want G whole and nothing of F", got)
	}
}
