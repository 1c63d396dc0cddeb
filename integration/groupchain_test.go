package integration

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/baton-relay/baton/relay/auth"
)

// The hash travels over HTTP (docs/grouping.md "At the edge"): fake Sentry
// ← Baton A ← Baton B, both managed with a project that counts its issues.
// B, the edge, hashes and counts; its events reach Sentry through A with
// grouping_hash and grouping_final in their item header, and Sentry's
// per-issue count is the events sent, not counted again by A.
func TestChainGroupingHeader(t *testing.T) {
	settleDialer(t)
	const events = 20
	s := newFakeSentry(t)
	s.setProject(managedKey, fakeSentryProjectState(42, managedKey, "r1", func(m map[string]any) {
		m["config"].(map[string]any)["grouping"] = map[string]any{"count": true}
	}))
	dirs := t.TempDir()
	for _, name := range []string{"a", "b"} {
		c, err := auth.Generate()
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Save(filepath.Join(dirs, name+".json")); err != nil {
			t.Fatal(err)
		}
	}
	a := startNode(t, managedYAML(s.url(), "  credentials: "+filepath.Join(dirs, "a.json")+"\n")+fastMetrics)
	b := startNode(t, managedYAML(a.url, "  credentials: "+filepath.Join(dirs, "b.json")+"\n")+fastMetrics)

	msgs := make([]string, events)
	for i := range msgs {
		msgs[i] = "chain-grouped"
	}
	msgs = append(msgs, "chain-grouped-once")
	for _, m := range msgs {
		env := fmt.Appendf(nil, "{\"dsn\":\"http://%s@h/42\"}\n{\"type\":\"event\"}\n{\"message\":%q}\n", managedKey, m)
		if st, body, _ := postEnvelope(t, b, 42, managedKey, env, nil); st != 200 {
			t.Fatalf("B: %d %s", st, body)
		}
	}
	hash, once := md5hexOf("chain-grouped"), md5hexOf("chain-grouped-once")
	fakeWaitFor(t, 20*time.Second, func() bool {
		c := groupCountsByProject(t, s)["42"]
		return deliveredTo(s, 42, `"chain-grouped"`) == events && c[hash] >= events && c[once] >= 1
	}, func() string {
		return fmt.Sprintf("through the chain: %d events, counts %v; A %+v B %+v", deliveredTo(s, 42, `"chain-grouped"`), groupCountsByProject(t, s), a.r.Stats(), b.r.Stats())
	})
	waitBalanced(t, b, 10*time.Second)
	waitBalanced(t, a, 10*time.Second)

	if got := deliveredTo(s, 42, `"grouping_hash":"`+hash+`","grouping_final":true`); got != events {
		t.Errorf("events with their hash in the item header at Sentry: %d, want %d", got, events)
	}
	if got := deliveredTo(s, 42, `"grouping_hash":"`+once+`","grouping_final":true`); got != 1 {
		t.Errorf("the other issue's event with its hash at Sentry: %d, want 1", got)
	}
	if c := groupCountsByProject(t, s)["42"]; c[hash] != events || c[once] != 1 {
		t.Errorf("counts at Sentry %v, want %s: %d, %s: 1 (counted once, at the edge)", c, hash, events, once)
	}
}
