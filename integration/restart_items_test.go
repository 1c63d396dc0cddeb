package integration

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/baton-relay/baton/relay"
	"github.com/baton-relay/baton/relay/outcome"
)

// TestRestartCountsItemsPerClass: envelopes of several classes, with several
// items per record, wait in the buffer while the upstream answers 503; after
// a restart on the same directory the stats count them as recovered, per
// class, in records and in items, and once delivered (or expired by the
// buffer itself) every class balances in items as well as records:
// recovered + accepted = delivered + dropped + pending.
func TestRestartCountsItemsPerClass(t *testing.T) {
	settleDialer(t)
	up := newFakeUpstream(t)
	var down atomic.Bool
	up.setAnswer(func(*fakeRequest) fakeAnswer {
		if down.Load() {
			return fakeAnswer{Status: http.StatusServiceUnavailable, Body: "{}"}
		}
		return fakeAnswer{Status: http.StatusOK, Body: "{}"}
	})
	routes := fakeUpstreamYAML("up", up.url(), "default")
	dir := t.TempDir()

	// post sends envelopes of several classes: one event (error), three
	// sessions, a log, and an event with two attachments.
	post := func(n *node) {
		t.Helper()
		envs := []string{
			`{}` + "\n" + `{"type":"event"}` + "\n" + `{"message":"e"}`,
			`{}` + "\n" + `{"type":"session"}` + "\n" + `{"sid":"a"}` + "\n" + `{"type":"session"}` + "\n" + `{"sid":"b"}` + "\n" + `{"type":"session"}` + "\n" + `{"sid":"c"}`,
			`{}` + "\n" + `{"type":"log"}` + "\n" + `{"items":[]}`,
			`{"event_id":"9ec79c33ec9942ab8353589fcb2e04dc"}` + "\n" + `{"type":"event"}` + "\n" + `{"message":"with attachments"}` + "\n" +
				`{"type":"attachment","filename":"a.txt"}` + "\n" + `hello` + "\n" + `{"type":"attachment","filename":"b.txt"}` + "\n" + `world`,
		}
		for range 3 {
			for _, e := range envs {
				if code, body, _ := post(t, n.url+"/api/1/envelope/", []byte(e+"\n"), authHeader(testKey)); code != 200 {
					t.Fatalf("post: %d %s", code, body)
				}
			}
		}
	}

	// Phase 1: everything stays pending behind the 503s.
	down.Store(true)
	n := startNodeIn(t, dir, routes)
	post(n)
	before := n.r.Stats()
	multi := 0
	for c, o := range before.Classes {
		if o.Pending != o.Accepted || o.Recovered != (outcome.Count{}) {
			t.Errorf("%s before the restart: pending %+v, accepted %+v, recovered %+v; want pending = accepted, nothing recovered", c, o.Pending, o.Accepted, o.Recovered)
		}
		if o.Accepted.Items > o.Accepted.Records {
			multi++
		}
	}
	if len(before.Classes) < 3 || multi < 2 {
		t.Fatalf("want several classes, some with several items per record:\n%s", statsJSON(before))
	}
	n.close()

	// Phase 2: restart on the same directory; the upstream is back.
	down.Store(false)
	n = startNodeIn(t, dir, routes)
	st := n.r.Stats()
	for c, o := range before.Classes {
		if got := st.Classes[c].Recovered; got != o.Accepted {
			t.Errorf("%s recovered %+v after the restart, want what was accepted before it, %+v", c, got, o.Accepted)
		}
	}
	if st.Recovered.Items == 0 || st.Recovered.Records != before.Pending {
		t.Errorf("recovered %+v; want %d records and their items", st.Recovered, before.Pending)
	}
	st = waitBalanced(t, n, 15*time.Second)
	checkItemIdentity(t, st)
	for c, o := range st.Classes {
		if o.Delivered != o.Recovered || o.Dropped != nil {
			t.Errorf("%s: delivered %+v, dropped %v; want every recovered record and item delivered (%+v)", c, o.Delivered, o.Dropped, o.Recovered)
		}
	}
	n.close()

	// Phase 3: what the buffer drops itself (expiry) carries its items.
	down.Store(true)
	n = startNodeIn(t, dir, routes)
	post(n)
	n.close()
	n = startNodeIn(t, dir, routes+"buffer:\n  max_age: 1ms\n")
	st = waitBalanced(t, n, 15*time.Second)
	checkItemIdentity(t, st)
	for c, o := range st.Classes {
		if exp := o.Dropped["expired"]; exp != o.Recovered || o.Recovered.Items <= 0 {
			t.Errorf("%s: dropped as expired %+v; want all it recovered, %+v", c, exp, o.Recovered)
		}
	}
}

// checkItemIdentity checks, per class, recovered + accepted + produced =
// delivered + dropped + aggregated + pending, in items and in records.
func checkItemIdentity(t *testing.T, st relay.Stats) {
	t.Helper()
	for c, o := range st.Classes {
		in := []outcome.Count{o.Recovered, o.Accepted, o.Produced}
		out := []outcome.Count{o.Delivered, o.Aggregated, o.Pending}
		for _, d := range o.Dropped {
			out = append(out, d)
		}
		var sumIn, sumOut outcome.Count
		for _, x := range in {
			sumIn.Records += x.Records
			sumIn.Items += x.Items
		}
		for _, x := range out {
			sumOut.Records += x.Records
			sumOut.Items += x.Items
		}
		if sumIn != sumOut {
			t.Errorf("%s does not balance: in (recovered + accepted + produced) %+v, out (delivered + dropped + aggregated + pending) %+v\n%s", c, sumIn, sumOut, statsJSON(st))
		}
	}
}

func statsJSON(st relay.Stats) string {
	b, _ := json.MarshalIndent(st, "", "  ")
	return strings.TrimSpace(fmt.Sprint(string(b)))
}
