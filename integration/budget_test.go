package integration

import (
	"fmt"
	"net/http"
	"testing"
	"time"
)

// TestDiskBudget is disk-budget at CI scale (docs/reliability.md G4, G6): with a
// small buffer budget and its upstream down, Baton takes 64 KiB envelopes
// until the budget is spent, then answers every envelope 503 with
// Retry-After (route when_full: reject) and reports not ready, without
// crashing. Once the upstream is back the backlog drains, Baton accepts
// again, every envelope that got a 200 is delivered and the accounting
// identity holds.
func TestDiskBudget(t *testing.T) {
	const (
		maxBytes = 8 << 20
		reserve  = 512 << 10
		limit    = maxBytes - reserve // where buffer.ErrFull starts
		pad      = 64 << 10
	)
	settleDialer(t)
	up := crashNewUpstream(t)
	up.down.Store(true)
	n := startNode(t, fmt.Sprintf(`buffer:
  max_bytes: %d
  reserve_bytes: %d
  memtable_size: 2MiB
`, maxBytes, reserve)+crashRouteYAML(up))
	c := crashClient(t)
	envSize := len(crashEnvelope(0, pad))

	// Fill: sequential posts until the first refusal.
	acked := map[int]bool{}
	seq := 0
	var (
		refusal     int
		refusalHdr  http.Header
		refusalBody string
	)
	for ; seq < 2*limit/pad; seq++ {
		status, body, h, err := crashPost(c, n.url, seq, pad)
		if err != nil {
			t.Fatalf("seq %d: %v", seq, err)
		}
		if status == 200 {
			acked[seq] = true
			continue
		}
		refusal, refusalHdr, refusalBody = status, h, body
		seq++
		break
	}
	filled := len(acked)
	t.Logf("budget %d bytes: %d envelopes of %d bytes acked (%d bytes) before the first refusal: %d %s",
		limit, filled, envSize, filled*envSize, refusal, refusalBody)
	if refusal != http.StatusServiceUnavailable || refusalHdr.Get("Retry-After") == "" {
		t.Fatalf("first refusal: %d Retry-After %q %s; want 503 with Retry-After", refusal, refusalHdr.Get("Retry-After"), refusalBody)
	}
	// Stored records are the envelopes plus small headers, so the refusal
	// must come when one more envelope would not fit, not much earlier.
	if filled*envSize > limit || (filled+2)*envSize <= limit {
		t.Errorf("refused after %d bytes acked; want within two envelopes of the %d byte budget", filled*envSize, limit)
	}

	// Top up with the smallest envelopes until even they are refused: the
	// buffer is then full by any measure.
	topped, rejected := 0, 1
	for ; topped < 2000; seq++ {
		status, body, h, err := crashPost(c, n.url, seq, 0)
		if err != nil {
			t.Fatalf("seq %d: %v", seq, err)
		}
		if status != 200 {
			rejected++
			if status != http.StatusServiceUnavailable || h.Get("Retry-After") == "" {
				t.Errorf("small post when full: %d %s (Retry-After %q); want 503 with Retry-After", status, body, h.Get("Retry-After"))
			}
			seq++
			break
		}
		acked[seq] = true
		topped++
	}
	t.Logf("then %d small envelopes (%d bytes) acked before those were refused too", topped, len(crashEnvelope(0, 0)))

	// Full: every envelope refused, not ready, still alive.
	for i := range 4 {
		status, body, h, err := crashPost(c, n.url, seq, pad*(i%2))
		seq++
		rejected++
		if err != nil || status != http.StatusServiceUnavailable || h.Get("Retry-After") == "" {
			t.Errorf("post while full: %d %s %v (Retry-After %q); want 503 with Retry-After", status, body, err, h.Get("Retry-After"))
		}
	}
	if code, body, err := crashGet(c, n.url+"/api/relay/healthcheck/ready/"); err != nil || code != http.StatusServiceUnavailable {
		t.Errorf("ready while full (every envelope, even the smallest, refused): %d %s %v; want 503", code, body, err)
	}
	if code, _, err := crashGet(c, n.url+"/api/relay/healthcheck/live/"); err != nil || code != 200 {
		t.Errorf("live while full: %d %v; want 200", code, err)
	}
	st := n.r.Stats()
	if st.Rejected["buffer_full"] != int64(rejected) || st.Accepted != int64(len(acked)) || st.Delivered != 0 || st.Dropped != 0 {
		t.Errorf("while full: rejected %v accepted %d delivered %d dropped %d; want %d buffer_full, %d accepted, none out",
			st.Rejected, st.Accepted, st.Delivered, st.Dropped, rejected, len(acked))
	}

	// Upstream back: the backlog drains and Baton accepts again.
	up.down.Store(false)
	t0 := time.Now()
	var backAfter time.Duration
	for {
		status, body, _, err := crashPost(c, n.url, seq, pad)
		seq++
		if err != nil {
			t.Fatalf("post after recovery: %v", err)
		}
		if status == 200 {
			acked[seq-1] = true
			backAfter = time.Since(t0)
			break
		}
		if status != http.StatusServiceUnavailable {
			t.Fatalf("post after recovery: %d %s", status, body)
		}
		if time.Since(t0) > 30*time.Second {
			t.Fatalf("still refusing 30s after the upstream came back: %+v", n.r.Stats())
		}
		time.Sleep(50 * time.Millisecond)
	}
	st = waitBalanced(t, n, 30*time.Second)
	drained := time.Since(t0)
	for range 10 { // with the backlog gone, everything is accepted again
		status, body, _, err := crashPost(c, n.url, seq, pad)
		if err != nil || status != 200 {
			t.Fatalf("post after draining: %d %s %v", status, body, err)
		}
		acked[seq] = true
		seq++
	}
	st = waitBalanced(t, n, 30*time.Second)
	if code, body, err := crashGet(c, n.url+"/api/relay/healthcheck/ready/"); err != nil || code != 200 {
		t.Errorf("ready after draining: %d %s %v; want 200", code, body, err)
	}
	for deadline := time.Now().Add(5 * time.Second); up.deliveredCount(acked) < len(acked) && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	tl := up.tally(acked, seq)
	t.Logf("upstream back: first 200 after %s, drained and balanced after %s; acked %d, delivered %d, lost %d, duplicates %d; stats %+v",
		backAfter.Round(time.Millisecond), drained.Round(time.Millisecond), tl.acked, st.Delivered, tl.lost, tl.dups, st.Rejected)
	if tl.lost > 0 || tl.phantom > 0 || tl.corrupt > 0 {
		t.Errorf("lost %d (first %v), phantom %d, corrupt %d", tl.lost, tl.lostSeqs[:min(len(tl.lostSeqs), 20)], tl.phantom, tl.corrupt)
	}
	if st.Dropped != 0 || st.Accepted != int64(len(acked)) || st.Delivered != int64(len(acked)) {
		t.Errorf("final: accepted %d delivered %d dropped %d; want %d, %d, 0", st.Accepted, st.Delivered, st.Dropped, len(acked), len(acked))
	}
	if backAfter > 5*time.Second {
		t.Logf("note: service came back %s after the upstream, over the 5s target of docs/reliability.md disk-budget", backAfter.Round(time.Millisecond))
	}
}
