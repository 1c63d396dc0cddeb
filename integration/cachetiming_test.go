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

// timingYAML is a managed Baton with the given cache and fetch settings.
func timingYAML(url, cache, fetch string) string {
	return fmt.Sprintf(`mode: managed
upstreams:
  up:
    urls: [%s]
    max_retry_interval: 200ms
routes:
  default: {upstream: up}
managed:
  upstream: up
  cache: {%s}
  fetch: {%s}
`, url, cache, fetch)
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
			n := registeredNode(t, s, timingYAML(s.url(), "", c.fetch))

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
