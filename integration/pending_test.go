package integration

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/baton-relay/baton/relay/outcome"
)

// Project-config fetching and envelopes waiting for their config, against
// the fake Sentry (docs/relay-protocol.md, project configs and spooling).

const stuckKey = "5555555555555555aaaaaaaaaaaaaaaa"

// asks returns the times of the project-config requests naming key, and
// of those that served it a config.
func asks(s *fakeSentry, key string) (all, served []time.Time) {
	for _, r := range s.configRequests() {
		if slices.Contains(r.Keys, key) {
			all = append(all, r.At)
			if slices.Contains(r.Served, key) {
				served = append(served, r.At)
			}
		}
	}
	return all, served
}

func deliveredAt(s *fakeSentry, pid uint64) []time.Time {
	var out []time.Time
	for _, e := range s.envelopes() {
		if e.ProjectID == fmt.Sprint(pid) {
			out = append(out, e.At)
		}
	}
	return out
}

// A key beside one the upstream keeps answering pending: its envelope is
// delivered within 500ms of its config being served. The stuck key is
// asked again with a growing backoff and its envelope dropped as
// project_state once managed.fetch.timeout has passed.
func TestPendingStuckNeighbour(t *testing.T) {
	settleDialer(t)
	s := newFakeSentry(t)
	s.setPending(stuckKey, 1_000_000)
	s.setProject(managedKey, fakeSentryProjectState(42, managedKey, "r1", nil))
	const timeout = 3 * time.Second
	n := startNode(t, managedCacheYAML(s.url(), "", "batch_interval: 100ms, timeout: 3s"))

	t0 := time.Now()
	if st, body, _ := postEnvelope(t, n, 7, stuckKey, envelopeFor(7, stuckKey, "event"), nil); st != 200 {
		t.Fatalf("stuck key: %d %s", st, body)
	}
	fakeWaitFor(t, 5*time.Second, func() bool { a, _ := asks(s, stuckKey); return len(a) >= 2 },
		func() string { return "stuck key not asked twice" })
	s.setPending(managedKey, 1) // waits behind the stuck one, then comes
	if st, body, _ := postEnvelope(t, n, 42, managedKey, envelopeFor(42, managedKey, "event"), nil); st != 200 {
		t.Fatalf("normal key: %d %s", st, body)
	}
	fakeWaitFor(t, 10*time.Second, func() bool { return len(deliveredAt(s, 42)) == 1 },
		func() string { return fmt.Sprintf("normal key not delivered; stats %+v", n.r.Stats()) })
	_, served := asks(s, managedKey)
	if lag := deliveredAt(s, 42)[0].Sub(served[0]); lag > 500*time.Millisecond {
		t.Errorf("normal key delivered %v after its config was served, want < 500ms", lag)
	}
	t.Logf("normal key: delivered %v after its config", deliveredAt(s, 42)[0].Sub(served[0]))

	dropped := func() int64 { return n.r.Stats().Classes["error"].Dropped[outcome.ReasonProjectState.String()].Records }
	fakeWaitFor(t, timeout+5*time.Second, func() bool { return dropped() == 1 },
		func() string { return fmt.Sprintf("stuck envelope not dropped; stats %+v", n.r.Stats()) })
	took := time.Since(t0)
	if took < timeout || took > timeout+3*time.Second {
		t.Errorf("stuck envelope dropped after %v, want within [%v, %v]", took, timeout, timeout+3*time.Second)
	}
	all, _ := asks(s, stuckKey)
	t.Logf("stuck key asked %d times in %v: %v", len(all), took, all)
	if len(all) > 5 {
		t.Errorf("stuck key asked %d times in %v, want a backoff (≤ 5)", len(all), took)
	}
	for i := 2; i < len(all); i++ {
		if prev, gap := all[i-1].Sub(all[i-2]), all[i].Sub(all[i-1]); gap < prev*3/2 {
			t.Errorf("ask %d came %v after the previous, which came after %v: no backoff", i, gap, prev)
		}
	}
	if st := waitBalanced(t, n, 5*time.Second); st.Waiting != 0 {
		t.Errorf("waiting %d after the give-up", st.Waiting)
	}
}

// Close drains for the drain window (2s in tests): an envelope whose
// config arrives in it is delivered before Close returns; one whose config
// stays pending is kept on disk and delivered after a restart.
func TestPendingDeliveredDuringShutdown(t *testing.T) {
	settleDialer(t)
	s := newFakeSentry(t)
	s.setPending(managedKey, 1_000_000)
	s.setPending(stuckKey, 1_000_000)
	s.setProject(managedKey, fakeSentryProjectState(42, managedKey, "r1", nil))
	s.setProject(stuckKey, fakeSentryProjectState(7, stuckKey, "r1", nil))
	dir := t.TempDir()
	yaml := managedCacheYAML(s.url(), "", "batch_interval: 100ms, timeout: 60s")
	n := startNodeIn(t, dir, yaml)
	for _, k := range []struct {
		pid uint64
		key string
	}{{42, managedKey}, {7, stuckKey}} {
		if st, body, _ := postEnvelope(t, n, k.pid, k.key, envelopeFor(k.pid, k.key, "event"), nil); st != 200 {
			t.Fatalf("%s: %d %s", k.key, st, body)
		}
	}
	fakeWaitFor(t, 5*time.Second, func() bool { a, _ := asks(s, managedKey); return len(a) >= 1 },
		func() string { return "key not asked" })
	closed := make(chan struct{})
	go func() { n.close(); close(closed) }()
	s.setPending(managedKey, 0) // its config comes during the drain
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return")
	}
	if got := len(deliveredAt(s, 42)); got != 1 {
		t.Fatalf("delivered %d envelopes of the key whose config came during the drain, want 1", got)
	}
	if got := len(deliveredAt(s, 7)); got != 0 {
		t.Fatalf("delivered %d envelopes of the pending key", got)
	}

	s.setPending(stuckKey, 0)
	n2 := startNodeIn(t, dir, yaml)
	fakeWaitFor(t, 10*time.Second, func() bool { return len(deliveredAt(s, 7)) == 1 },
		func() string {
			return fmt.Sprintf("kept envelope not delivered after restart; stats %+v", n2.r.Stats())
		})
	if got := len(deliveredAt(s, 42)); got != 1 {
		t.Errorf("key delivered %d times in all, want once", got)
	}
}
