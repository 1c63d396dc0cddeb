package integration

import (
	"bytes"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/baton-relay/baton/relay"
	"github.com/baton-relay/baton/relay/record"
)

// kill -9 after an error went out, before its trace's transactions were
// decided: the error's mark was appended with the error (tailsample.Marks),
// so after the restart the trace is still kept whole at keep rate 0, and
// an unmarked trace beside it is dropped. Before marks were durable the
// marked trace was dropped too.
func TestTailSamplingKill9KeepsMarkedTrace(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the baton binary")
	}
	const marked, plain = "2cf7651916cd43dd8448eb211c80319c", "3df7651916cd43dd8448eb211c80319c"
	bin := crashBuildBaton(t)
	up := newFakeUpstream(t)
	dir, files := t.TempDir(), t.TempDir()
	write := func(wait time.Duration) string {
		return writeTailConfig(t, dir, files, up, fmt.Sprintf("tail_sampling:\n  projects: [\"42\"]\n  decision_wait: %s\n  root_grace: 0s\n  keep_rate: 0\n", wait))
	}
	c := &http.Client{Timeout: 5 * time.Second}
	p := crashStart(t, bin, write(time.Minute))
	p.waitReady(t, c, 15*time.Second)
	send := func(env []byte) {
		t.Helper()
		if code, body, _ := post(t, p.base+"/api/42/envelope/", env, authHeader(testKey)); code != 200 {
			t.Fatalf("post: %d %s", code, body)
		}
	}
	send(traceEnvelope(fmt.Sprintf("%032x", 1), marked, testKey, "marks-M-1"))
	send(traceEnvelope(fmt.Sprintf("%032x", 2), plain, testKey, "marks-P-1"))
	ev := fmt.Sprintf(`{"message":"marks: payment failed","contexts":{"trace":{"trace_id":%q,"span_id":"fa90fdead5f74053"}}}`, marked)
	send(fmt.Appendf(nil, "{\"event_id\":\"%032x\",\"trace\":{\"trace_id\":%q,\"public_key\":%q}}\n{\"type\":\"event\",\"length\":%d}\n%s\n", 3, marked, testKey, len(ev), ev))
	send(traceEnvelope(fmt.Sprintf("%032x", 4), marked, testKey, "marks-M-2"))
	// The error went out at once; the transactions wait (decision_wait 1m, root_grace off).
	// Baton counts the error delivered once the upstream has answered,
	// which is after the upstream has it: wait for Baton's count.
	fakeWaitFor(t, 15*time.Second, func() bool { return crashStats(t, c, p.base).Delivered >= 1 }, func() string {
		return fmt.Sprintf("%d requests delivered, want the error", len(up.delivered()))
	})
	if st := crashStats(t, c, p.base); st.Pending != 3 || st.Delivered != 1 || !st.Balanced {
		t.Fatalf("before the kill: pending %d, delivered %d, balanced %v; want the 3 transactions waiting, the error delivered", st.Pending, st.Delivered, st.Balanced)
	}
	p.kill()

	p = crashStart(t, bin, write(time.Second))
	var st = crashStats(t, c, p.base)
	fakeWaitFor(t, 20*time.Second, func() bool {
		st = crashStats(t, c, p.base)
		return st.Pending == 0 && st.TailSampling != nil && st.TailSampling.Kept+st.TailSampling.Dropped == 2
	}, func() string {
		return fmt.Sprintf("after the restart: pending %d, tail sampling %+v", st.Pending, st.TailSampling)
	})
	if st.TailSampling.Kept != 1 || st.TailSampling.Dropped != 1 || !st.Balanced {
		t.Errorf("after the restart: tail sampling %+v (balanced %v); want the marked trace kept, the plain one dropped", st.TailSampling, st.Balanced)
	}
	fakeWaitFor(t, 15*time.Second, func() bool { return upstreamHas(up, "marks-M-1") && upstreamHas(up, "marks-M-2") }, func() string {
		return "the marked trace's transactions were not delivered after the restart: its error's mark was lost"
	})
	if upstreamHas(up, "marks-P-1") {
		t.Errorf("the unmarked trace was delivered at keep rate 0")
	}
	if code := p.stop(t, 10*time.Second); code != 0 {
		t.Errorf("baton exit code %d", code)
	}
}

// upstreamHas reports whether a request up accepted contains s.
func upstreamHas(up *fakeUpstream, s string) bool {
	for _, r := range up.delivered() {
		if bytes.Contains(r.Body, []byte(s)) {
			return true
		}
	}
	return false
}

// projects.<id>.tail_sampling: a static project tail-sampled under rules
// of its own (keep rate 0 and a rule of its own), beside a project listed
// in tail_sampling.projects under the global keep rate 1: project 42's
// fast error-free trace is dropped, its rule keeps another, and project
// 43's (global rules) is kept.
func TestTailSamplingStaticPerProject(t *testing.T) {
	n := startNode(t, fmt.Sprintf(`mode: static
projects:
  "42":
    public_keys: [%s]
    tail_sampling: {keep_rate: 0, decision_wait: 1s, rules: [{transaction: "own-K/*"}]}
  "43":
    public_keys: [%s]
tail_sampling:
  projects: ["43"]
  decision_wait: 1s
  keep_rate: 1
`, testKey, otherKey))
	own := "http://" + testKey + "@" + n.r.Addr().String() + "/42"
	global := "http://" + otherKey + "@" + n.r.Addr().String() + "/43"
	sendTrace(t, own, "own-D", false, 0)
	sendTrace(t, own, "own-K", false, 0)
	sendTrace(t, global, "glob-G", false, 0)
	st := waitBalanced(t, n, 20*time.Second)
	if ts := st.TailSampling; ts == nil || ts.Kept != 2 || ts.Dropped != 1 {
		t.Errorf("tail sampling stats %+v, want 2 traces kept (own-K by 42's rule, glob-G at keep rate 1) and 1 dropped (own-D at 42's keep rate 0)", ts)
	}
	tx := st.Classes["transaction"]
	if got := tx.Dropped["sampled"]; got.Records != 2 || tx.Delivered.Records != 4 {
		t.Errorf("transactions %+v; want own-D's 2 dropped as sampled, 4 delivered", tx)
	}
	recs := consumeUntil(t, n.kafka, "baton.transaction", 15*time.Second, func(recs []*kgo.Record) bool { return len(recs) >= 4 })
	if !containsAll(recs, "own-K/1", "own-K/2", "glob-G/1", "glob-G/2") || containsAll(recs, "own-D/1") {
		t.Errorf("delivered transactions are not own-K's and glob-G's")
	}
}

// Error marks live in a buffer stream of their own (record.Marks): one per
// error of a tail-sampled project, kept across a graceful restart, and
// deleted on a start with tail sampling off, since nothing would expire
// them; they never count as pending envelope records.
func TestTailSamplingMarksStream(t *testing.T) {
	dir := t.TempDir()
	marks := func() int64 {
		t.Helper()
		streams, err := relay.InspectBuffer(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range streams {
			if record.Stream(s.Stream).IsMarks() {
				return s.Pending
			}
		}
		return 0
	}
	n := startNodeIn(t, dir, "tail_sampling:\n  projects: [\"42\"]\n  decision_wait: 1m\n")
	ev := `{"message":"marks stream","contexts":{"trace":{"trace_id":"5ef7651916cd43dd8448eb211c80319c","span_id":"fa90fdead5f74053"}}}`
	env := fmt.Appendf(nil, "{\"event_id\":\"%032x\"}\n{\"type\":\"event\",\"length\":%d}\n%s\n", 7, len(ev), ev)
	if code, body, _ := post(t, n.url+"/api/42/envelope/", env, authHeader(testKey)); code != 200 {
		t.Fatalf("post: %d %s", code, body)
	}
	if st := waitBalanced(t, n, 15*time.Second); st.Classes["error"].Delivered.Records != 1 {
		t.Fatalf("error not delivered: %+v", st.Classes["error"])
	}
	n.close()
	if got := marks(); got != 1 {
		t.Fatalf("after a graceful stop: %d error marks in the buffer, want 1", got)
	}
	n = startNodeIn(t, dir, "tail_sampling:\n  projects: [\"42\"]\n  decision_wait: 1m\n")
	n.close()
	if got := marks(); got != 1 {
		t.Fatalf("after a restart with tail sampling on: %d error marks, want the 1 (not expired)", got)
	}
	n = startNodeIn(t, dir, "")
	n.close()
	if got := marks(); got != 0 {
		t.Errorf("after a start with tail sampling off: %d error marks, want none", got)
	}
}
