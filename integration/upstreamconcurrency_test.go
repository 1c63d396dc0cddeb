package integration

import (
	"bytes"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestUpstreamConcurrency: upstreams.NAME.concurrency caps the requests
// Baton has in flight to the upstream, and error envelopes of one project
// use it, while one project's sessions go one at a time, in stream order
// (routing.Ordered). The fake upstream holds every request until the test
// hands it a token, so requests pile up to exactly what Baton allows: 1
// with concurrency 1, 4 with concurrency 4, 1 for sessions.
func TestUpstreamConcurrency(t *testing.T) {
	for _, tc := range []struct {
		item              string
		concurrency, want int
	}{{"event", 1, 1}, {"event", 4, 4}, {"session", 4, 1}} {
		want := tc.want
		t.Run(fmt.Sprintf("%s/%d", tc.item, tc.concurrency), func(t *testing.T) {
			settleDialer(t)
			const queued = 8
			var (
				inFlight, most, received atomic.Int32
				tokens                   = make(chan struct{}, 2*queued)
				open                     sync.Once
			)
			flow := func() { open.Do(func() { close(tokens) }) }
			up := newFakeUpstream(t)
			t.Cleanup(flow) // before the server's Close: let held requests end
			up.setAnswer(func(r *fakeRequest) fakeAnswer {
				n := inFlight.Add(1)
				for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
				}
				received.Add(1)
				<-tokens
				inFlight.Add(-1)
				return fakeAnswer{Status: 200, Body: "{}"}
			})
			node := startNode(t, fmt.Sprintf("upstreams:\n  up:\n    urls: [%q]\n    timeout: 10s\n    concurrency: %d\nroutes:\n  default: {upstream: up}\n", up.url(), tc.concurrency))
			send := func(seq int) {
				t.Helper()
				body, _ := faultSeqEnvelope("conc", seq)
				if tc.item == "session" {
					body = fmt.Appendf(nil, "{}\n{\"type\":\"session\"}\n{\"sid\":\"conc-%05d\"}\n", seq)
				}
				if status, resp, _ := post(t, node.url+"/api/42/envelope/", body, authHeader(testKey)); status != 200 {
					t.Fatalf("envelope %d: %d %s", seq, status, resp)
				}
			}
			waitReceived := func(n int32) {
				t.Helper()
				fakeWaitFor(t, 10*time.Second, func() bool { return received.Load() >= n },
					func() string { return fmt.Sprintf("upstream received %d requests, want %d", received.Load(), n) })
			}
			// The first envelope is a batch alone; while it is held the
			// others queue up in the buffer and form the next batch.
			send(0)
			waitReceived(1)
			for seq := 1; seq <= queued; seq++ {
				send(seq)
			}
			tokens <- struct{}{} // the first batch
			waitReceived(2)      // the next batch's first message goes alone
			tokens <- struct{}{}
			fakeWaitFor(t, 10*time.Second, func() bool { return inFlight.Load() == int32(want) },
				func() string { return fmt.Sprintf("%d requests in flight, want %d", inFlight.Load(), want) })
			// One at a time from here: more than allowed would pile up.
			for got := received.Load(); got < queued+1; got = received.Load() {
				tokens <- struct{}{}
				waitReceived(got + 1)
			}
			flow()
			fakeWaitFor(t, 10*time.Second, func() bool { return node.r.Stats().Pending == 0 },
				func() string { return fmt.Sprintf("pending %d", node.r.Stats().Pending) })
			if got := most.Load(); got != int32(want) {
				t.Errorf("at most %d requests in flight with concurrency %d", got, want)
			}
			var seqs []int
			for _, r := range up.delivered() {
				var seq int
				if i := bytes.Index(r.Body, []byte("conc-")); i < 0 {
					t.Errorf("delivered without a sequence number: %q", r.Body)
				} else if _, err := fmt.Sscanf(string(r.Body[i:]), "conc-%d", &seq); err != nil {
					t.Errorf("delivered %q: %v", r.Body, err)
				}
				seqs = append(seqs, seq)
			}
			if len(seqs) != queued+1 {
				t.Errorf("%d envelopes delivered, want %d", len(seqs), queued+1)
			}
			if tc.item == "session" && !slices.IsSorted(seqs) {
				t.Errorf("sessions arrived out of stream order: %v", seqs)
			}
		})
	}
}
