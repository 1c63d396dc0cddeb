package integration

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/baton-relay/baton/envelope"
)

// Metrics extraction as its own use of grouping (docs/grouping.md "At the
// edge"): the count switch counts every error event per issue in
// c:custom/baton.grouping.events@none and drops none.

// groupCountsByProject sums what the fake Sentry received of the per-issue
// counter, by its project tag and hash.
func groupCountsByProject(t *testing.T, s *fakeSentry) map[string]map[string]float64 {
	t.Helper()
	out := map[string]map[string]float64{}
	for _, e := range s.envelopes() {
		if !bytes.Contains(e.Body, []byte(groupEventsMRI)) {
			continue
		}
		env, err := envelope.Parse(e.Body)
		if err != nil {
			t.Fatalf("parse metric envelope: %v", err)
		}
		for _, it := range env.Items {
			if it.Type != envelope.ItemMetricBuckets {
				continue
			}
			bs, err := envelope.ParseBuckets(it.Payload)
			if err != nil {
				t.Fatalf("parse buckets: %v", err)
			}
			for _, b := range bs {
				if b.Name != groupEventsMRI {
					continue
				}
				p, _ := b.Tag("project")
				h, _ := b.Tag("hash")
				if out[p] == nil {
					out[p] = map[string]float64{}
				}
				out[p][h] += b.Value.Counter
			}
		}
	}
	return out
}

// A managed project whose grouping part says count: every event is
// delivered, with its hash in the item header, none is filtered, and the
// counts Sentry receives per issue are the events sent.
func TestManagedGroupingCount(t *testing.T) {
	settleDialer(t)
	const repeated, distinct = 400, 20
	s := newFakeSentry(t)
	s.setProject(managedKey, fakeSentryProjectState(42, managedKey, "r1", func(m map[string]any) {
		m["config"].(map[string]any)["grouping"] = map[string]any{"count": true}
	}))
	n := startNode(t, managedYAML(s.url(), fastMetrics))
	msgs := make([]string, 0, repeated+distinct)
	for i := range repeated + distinct {
		if i%(repeated/distinct+1) == 0 {
			msgs = append(msgs, stormMessage("count-distinct-", len(msgs)))
			continue
		}
		msgs = append(msgs, "count-repeated")
	}
	sendMessages(t, n, msgs, 8)
	st := waitBalanced(t, n, 15*time.Second)

	if len(st.Filtered) != 0 || st.Classes["error"].Dropped["filtered"].Items != 0 {
		t.Errorf("count alone filtered events: %v, %+v", st.Filtered, st.Classes["error"].Dropped)
	}
	hash := md5hexOf("count-repeated")
	if got := deliveredTo(s, 42, `"grouping_hash":"`+hash+`","grouping_final":true`); got != repeated {
		t.Errorf("repeated error delivered with its hash %d times, want %d", got, repeated)
	}
	want := map[string]float64{hash: repeated}
	for _, m := range msgs {
		if m != "count-repeated" {
			want[md5hexOf(m)] = 1
			if got := deliveredTo(s, 42, `"`+m+`"`); got != 1 {
				t.Errorf("%s delivered %d times, want 1", m, got)
			}
		}
	}
	if len(want) != distinct+1 {
		t.Fatalf("sent %d issues, want %d", len(want), distinct+1)
	}
	equal := func(got map[string]float64) bool {
		if len(got) != len(want) {
			return false
		}
		for h, c := range want {
			if got[h] != c {
				return false
			}
		}
		return true
	}
	fakeWaitFor(t, 15*time.Second, func() bool {
		c := groupCountsByProject(t, s)
		return len(c) == 1 && equal(c["42"])
	}, func() string {
		return fmt.Sprintf("counts upstream %v, want project 42: %d issues, %s: %d", groupCountsByProject(t, s), len(want), hash, repeated)
	})
}

// Static projects: count: true in baton.yml counts every event and drops
// none; a project hashed without the switch (no storm limit), or not
// hashed at all, reports no count.
func TestStaticGroupingCount(t *testing.T) {
	const repeated = 30
	s := newFakeSentry(t)
	n := startNode(t, fmt.Sprintf("upstreams: {up: {urls: [%s], max_retry_interval: 200ms}}\nroutes: {default: {upstream: up}}\n", s.url())+fastMetrics+
		fmt.Sprintf("mode: static\nprojects:\n  \"42\": {public_keys: [%s], grouping: {count: true}}\n", managedKey)+
		fmt.Sprintf("  \"43\": {public_keys: [%s], grouping: {discarded_hashes: []}}\n", testKey)+
		"  \"44\": {public_keys: [fedcba9876543210fedcba9876543210]}\n")
	send := func(pid uint64, key, msg string) {
		t.Helper()
		body := fmt.Appendf(nil, "{\"dsn\":\"http://%s@h/%d\"}\n{\"type\":\"event\"}\n{\"message\":%q}\n", key, pid, msg)
		if status, resp, _ := postEnvelope(t, n, pid, key, body, nil); status != 200 {
			t.Fatalf("project %d: %d %s", pid, status, resp)
		}
	}
	// The projects without the switch first: a count of theirs would be
	// flushed no later than project 42's last.
	for range 3 {
		send(43, testKey, "static-uncounted")
		send(44, "fedcba9876543210fedcba9876543210", "static-unhashed")
	}
	for range repeated {
		send(42, managedKey, "static-counted")
	}
	send(42, managedKey, "static-counted-once")
	hash := md5hexOf("static-counted")
	fakeWaitFor(t, 15*time.Second, func() bool {
		c := groupCountsByProject(t, s)["42"]
		return c[hash] == repeated && c[md5hexOf("static-counted-once")] == 1
	}, func() string {
		return fmt.Sprintf("counts upstream %v, want %s: %d", groupCountsByProject(t, s), hash, repeated)
	})
	st := waitBalanced(t, n, 15*time.Second)

	if len(st.Filtered) != 0 {
		t.Errorf("filtered %v, want none", st.Filtered)
	}
	if got := deliveredTo(s, 42, `"grouping_hash":"`+hash+`","grouping_final":true`); got != repeated {
		t.Errorf("counted event delivered with its hash %d times, want %d", got, repeated)
	}
	if got := deliveredTo(s, 43, `"grouping_hash":"`+md5hexOf("static-uncounted")+`"`); got != 3 {
		t.Errorf("hashed, uncounted event delivered with its hash %d times, want 3", got)
	}
	if got := deliveredTo(s, 44, "static-unhashed"); got != 3 {
		t.Errorf("unhashed event delivered %d times, want 3", got)
	}
	c := groupCountsByProject(t, s)
	if len(c) != 1 || len(c["42"]) != 2 {
		t.Errorf("counts upstream %v, want only project 42's two issues", c)
	}
}
