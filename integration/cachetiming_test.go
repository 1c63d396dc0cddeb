package integration

import (
	"fmt"
	"testing"
	"time"
)

// Project-config cache timing as Relay has it (docs/relay-protocol.md §4.2,
// §4.4), measured at the fake Sentry: the first fetch of a new key waits
// one managed.fetch.batch_interval; a config is refreshed once
// managed.cache.expiry has passed and keeps serving through grace; an
// unknown key is asked again only after miss_expiry.

// timingKey is a key no other test in this file configures.
const timingKey = "77777777777777777777777777777777"

// servedNode starts a registered node with the given managed.cache
// settings and returns once the fake Sentry has served it managedKey's
// config (revision r1) for a first envelope.
func servedNode(t *testing.T, cache string) (*fakeSentry, *node) {
	t.Helper()
	settleDialer(t)
	s := newFakeSentry(t)
	s.setProject(managedKey, fakeSentryProjectState(42, managedKey, "r1", nil))
	n := registeredNode(t, s, managedCacheYAML(s.url(), cache, ""))
	if st, body, _ := postEnvelope(t, n, 42, managedKey, envelopeFor(42, managedKey, "event"), nil); st != 200 {
		t.Fatalf("envelope: %d %s", st, body)
	}
	fakeWaitFor(t, 10*time.Second, func() bool { _, sv := asks(s, managedKey); return len(sv) == 1 },
		func() string { return "config never served" })
	// Served is not yet installed: the answer may still be in flight, and the
	// first envelope waits until it lands.
	fakeWaitFor(t, 10*time.Second, func() bool { return n.r.Stats().Waiting == 0 },
		func() string { return "first envelope still waits for the served config" })
	return s, n
}

// registeredNode starts a node and waits for its registration, so that
// what a test times is the config fetch alone.
func registeredNode(t *testing.T, s *fakeSentry, yaml string) *node {
	t.Helper()
	n := startNode(t, yaml)
	fakeWaitFor(t, 10*time.Second, func() bool { return len(s.registered()) == 1 },
		func() string { return "relay did not register" })
	return n
}

// The first config request for a new key reaches the upstream one batch
// interval after the key's first envelope: not before (misses are
// batched), and not much after.
func TestConfigFirstFetchWithinBatchInterval(t *testing.T) {
	for _, c := range []struct {
		name     string
		fetch    string
		interval time.Duration
	}{
		{"default", "", 100 * time.Millisecond},
		{"1s", "batch_interval: 1s", time.Second},
	} {
		t.Run(c.name, func(t *testing.T) {
			settleDialer(t)
			s := newFakeSentry(t)
			s.setProject(managedKey, fakeSentryProjectState(42, managedKey, "r1", nil))
			n := registeredNode(t, s, managedCacheYAML(s.url(), "", c.fetch))

			t0 := time.Now()
			if st, body, _ := postEnvelope(t, n, 42, managedKey, envelopeFor(42, managedKey, "event"), nil); st != 200 {
				t.Fatalf("envelope: %d %s", st, body)
			}
			fakeWaitFor(t, c.interval+5*time.Second, func() bool { a, _ := asks(s, managedKey); return len(a) >= 1 },
				func() string { return "key never asked for" })
			a, _ := asks(s, managedKey)
			d := a[0].Sub(t0)
			t.Logf("batch_interval %v: first config request %v after the first envelope's POST", c.interval, d)
			if d < c.interval/2 || d > c.interval+300*time.Millisecond {
				t.Errorf("first config request %v after the envelope, want within [%v, %v]", d, c.interval/2, c.interval+300*time.Millisecond)
			}
			fakeWaitFor(t, 10*time.Second, func() bool { return len(deliveredAt(s, 42)) == 1 },
				func() string { return fmt.Sprintf("envelope not delivered; stats %+v", n.r.Stats()) })
		})
	}
}

// sendEvery posts an envelope of key to n every 20ms until stop says so
// (given the last answer's status) or the deadline passes; it returns the
// statuses in order.
func sendEvery(t *testing.T, n *node, pid uint64, key string, deadline time.Duration, stop func(status int) bool) []int {
	t.Helper()
	var got []int
	for end := time.Now().Add(deadline); ; time.Sleep(20 * time.Millisecond) {
		st, body, _ := postEnvelope(t, n, pid, key, envelopeFor(pid, key, "event"), nil)
		got = append(got, st)
		if stop(st) {
			return got
		}
		if st != 200 && st != 403 {
			t.Fatalf("envelope %d: %d %s", len(got), st, body)
		}
		if time.Now().After(end) {
			t.Fatalf("after %v: statuses %v", deadline, got)
		}
	}
}

// A config changed at the upstream is used once managed.cache.expiry has
// passed: the key is asked again (with the cached revision) after expiry,
// not before, and the disabled key it brings refuses envelopes from then.
func TestConfigProjectExpiry(t *testing.T) {
	s, n := servedNode(t, "expiry: 1s, grace: 60s")
	s.setProject(managedKey, fakeSentryProjectState(42, managedKey, "r2", func(m map[string]any) {
		m["publicKeys"] = []any{map[string]any{"publicKey": managedKey, "numericId": 4201, "isEnabled": false}}
	}))

	got := sendEvery(t, n, 42, managedKey, 10*time.Second, func(st int) bool { return st == 403 })
	refused := time.Now()
	all, served := asks(s, managedKey)
	if len(all) != 2 || len(served) != 2 {
		t.Fatalf("asked %d times, served %d, want 2 and 2: %v", len(all), len(served), all)
	}
	gap := all[1].Sub(all[0])
	t.Logf("expiry 1s: refetch %v after the first fetch; first refusal %v after it; %d envelopes accepted before",
		gap, refused.Sub(all[1]), len(got))
	if gap < time.Second || gap > time.Second+500*time.Millisecond {
		t.Errorf("refetch %v after the first fetch, want within [1s, 1.5s]", gap)
	}
	for _, r := range s.configRequests() {
		if r.At.Equal(all[1]) && (len(r.Revisions) != 1 || r.Revisions[0] == nil || *r.Revisions[0] != "r1") {
			t.Errorf("refetch revisions %v, want [r1]", r.Revisions)
		}
	}
	if refused.Before(all[1]) {
		t.Error("refused before the refetch")
	}
	accepted := len(got) // the first envelope, and all but the last of got
	fakeWaitFor(t, 10*time.Second, func() bool { return len(deliveredAt(s, 42)) == accepted },
		func() string {
			return fmt.Sprintf("delivered %d envelopes, want the %d accepted", len(deliveredAt(s, 42)), accepted)
		})
}

// While an expired config's refresh stays pending, it keeps serving for
// managed.cache.grace: envelopes are accepted and none waits. After grace
// the key's envelopes wait for the config, and go when it comes.
func TestConfigGracePeriod(t *testing.T) {
	s, n := servedNode(t, "expiry: 1s, grace: 1s")
	_, served := asks(s, managedKey)
	fetched := served[0] // the config's age counts from just after this
	s.setPending(managedKey, 1_000_000)

	sent, stale := 1, 0
	for time.Since(fetched) < 1800*time.Millisecond {
		at := time.Since(fetched)
		if st, body, _ := postEnvelope(t, n, 42, managedKey, envelopeFor(42, managedKey, "event"), nil); st != 200 {
			t.Fatalf("envelope %v after the fetch: %d %s", at, st, body)
		}
		sent++
		if w := n.r.Stats().Waiting; w != 0 {
			t.Fatalf("envelope %v after the fetch (within expiry+grace): %d waiting, want 0", at, w)
		}
		if at > 1100*time.Millisecond {
			stale++
		}
		time.Sleep(20 * time.Millisecond)
	}
	all, _ := asks(s, managedKey)
	if stale == 0 || len(all) < 2 {
		t.Fatalf("%d envelopes sent on the stale config, key asked %d times; want both ≥ 1 and 2", stale, len(all))
	}
	t.Logf("grace 1s: refresh asked %v after the fetch (answered pending); %d envelopes served by the stale config",
		all[1].Sub(fetched), stale)
	fakeWaitFor(t, 10*time.Second, func() bool { return len(deliveredAt(s, 42)) == sent },
		func() string { return fmt.Sprintf("delivered %d of %d", len(deliveredAt(s, 42)), sent) })

	fakeWaitFor(t, 5*time.Second, func() bool { return time.Since(fetched) > 2300*time.Millisecond },
		func() string { return "clock" })
	if st, body, _ := postEnvelope(t, n, 42, managedKey, envelopeFor(42, managedKey, "event"), nil); st != 200 {
		t.Fatalf("envelope after grace: %d %s", st, body)
	}
	if w := n.r.Stats().Waiting; w != 1 {
		t.Fatalf("after grace: %d waiting, want 1", w)
	}
	s.setPending(managedKey, 0)
	fakeWaitFor(t, 10*time.Second, func() bool { return len(deliveredAt(s, 42)) == sent+1 },
		func() string { return fmt.Sprintf("waiting envelope not delivered; stats %+v", n.r.Stats()) })
	if st := waitBalanced(t, n, 5*time.Second); st.Waiting != 0 {
		t.Errorf("waiting %d after the config came", st.Waiting)
	}
}

// An unknown key (answered null) is refused, and asked again only after
// managed.cache.miss_expiry; envelopes are refused until that answer
// brings its config.
func TestConfigMissExpiry(t *testing.T) {
	settleDialer(t)
	s := newFakeSentry(t)
	n := registeredNode(t, s, managedCacheYAML(s.url(), "miss_expiry: 1s", ""))

	if st, body, _ := postEnvelope(t, n, 77, timingKey, envelopeFor(77, timingKey, "event"), nil); st != 200 {
		t.Fatalf("first envelope: %d %s", st, body)
	}
	fakeWaitFor(t, 10*time.Second, func() bool {
		return n.r.Stats().Classes["error"].Dropped["project_unknown"].Records == 1
	}, func() string { return fmt.Sprintf("no project_unknown outcome: %+v", n.r.Stats()) })
	s.setProject(timingKey, fakeSentryProjectState(77, timingKey, "r1", nil))

	got := sendEvery(t, n, 77, timingKey, 10*time.Second, func(st int) bool { return st == 200 })
	all, served := asks(s, timingKey)
	if len(all) != 2 || len(served) != 1 || got[0] != 403 {
		t.Fatalf("asked %d times, served %d, statuses %v; want 2, 1, refused first", len(all), len(served), got)
	}
	gap := all[1].Sub(all[0])
	t.Logf("miss_expiry 1s: unknown key asked again %v after the first ask; %d envelopes refused meanwhile", gap, len(got)-1)
	if gap < time.Second || gap > time.Second+500*time.Millisecond {
		t.Errorf("asked again %v after the first ask, want within [1s, 1.5s]", gap)
	}
	fakeWaitFor(t, 10*time.Second, func() bool { return len(deliveredAt(s, 77)) == 1 },
		func() string { return "accepted envelope not delivered" })
}
