package integration

import (
	"fmt"
	"net/http"
	"testing"
	"time"
)

// fastTraceEnvelope is traceEnvelope with a transaction that lasts no time:
// nothing in it keeps its trace.
func fastTraceEnvelope(eventID, id, key, name string) []byte {
	tx := fmt.Sprintf(`{"type":"transaction","transaction":%q,"start_timestamp":1700000000,"timestamp":1700000000,"contexts":{"trace":{"trace_id":%q,"span_id":"fa90fdead5f74052"}}}`, name, id)
	return fmt.Appendf(nil, "{\"event_id\":%q,\"trace\":{\"trace_id\":%q,\"public_key\":%q,\"sample_rate\":\"1\"}}\n{\"type\":\"transaction\",\"length\":%d}\n%s\n",
		eventID, id, key, len(tx), tx)
}

// kill -9 after a trace was decided and released: its decision was
// appended in the Move that released its records (tailsample.AppendDecision),
// so after the restart a late fast transaction of the trace kept by the
// duration threshold is kept at keep rate 0, and a late one of the dropped
// trace is dropped. Without durable decisions the late item of the kept
// trace is decided afresh, alone, and dropped.
func TestTailSamplingKill9KeepsDecision(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the baton binary")
	}
	const kept, dropped = "4af7651916cd43dd8448eb211c80319c", "5bf7651916cd43dd8448eb211c80319c"
	bin := crashBuildBaton(t)
	up := newFakeUpstream(t)
	dir, files := t.TempDir(), t.TempDir()
	path := writeTailConfig(t, dir, files, up, "tail_sampling:\n  projects: [\"42\"]\n  decision_wait: 1s\n  keep_rate: 0\n  duration_threshold: 500ms\n")
	c := &http.Client{Timeout: 5 * time.Second}
	p := crashStart(t, bin, path)
	p.waitReady(t, c, 15*time.Second)
	send := func(env []byte) {
		t.Helper()
		if code, body, _ := post(t, p.base+"/api/42/envelope/", env, authHeader(testKey)); code != 200 {
			t.Fatalf("post: %d %s", code, body)
		}
	}
	send(traceEnvelope(fmt.Sprintf("%032x", 1), kept, testKey, "dec-K-slow")) // lasts 1 s
	send(fastTraceEnvelope(fmt.Sprintf("%032x", 2), dropped, testKey, "dec-D-1"))
	var st = crashStats(t, c, p.base)
	fakeWaitFor(t, 20*time.Second, func() bool {
		st = crashStats(t, c, p.base)
		return st.Pending == 0 && upstreamHas(up, "dec-K-slow") && st.TailSampling != nil && st.TailSampling.Kept+st.TailSampling.Dropped == 2
	}, func() string {
		return fmt.Sprintf("before the kill: pending %d, tail sampling %+v, slow transaction delivered %v", st.Pending, st.TailSampling, upstreamHas(up, "dec-K-slow"))
	})
	if st.TailSampling.Kept != 1 || st.TailSampling.Dropped != 1 {
		t.Fatalf("before the kill: tail sampling %+v; want the slow trace kept, the fast one dropped", st.TailSampling)
	}
	p.kill()

	p = crashStart(t, bin, path)
	p.waitReady(t, c, 15*time.Second)
	send(fastTraceEnvelope(fmt.Sprintf("%032x", 3), kept, testKey, "dec-K-late"))
	send(fastTraceEnvelope(fmt.Sprintf("%032x", 4), dropped, testKey, "dec-D-late"))
	fakeWaitFor(t, 20*time.Second, func() bool {
		st = crashStats(t, c, p.base)
		return st.Pending == 0 && st.Classes["transaction"].Dropped["sampled"].Records >= 1
	}, func() string {
		return fmt.Sprintf("after the restart: pending %d, transactions %+v", st.Pending, st.Classes["transaction"])
	})
	fakeWaitFor(t, 15*time.Second, func() bool { return upstreamHas(up, "dec-K-late") }, func() string {
		return "the late transaction of the kept trace was not delivered after the restart: its trace's decision was lost"
	})
	if upstreamHas(up, "dec-D-late") || upstreamHas(up, "dec-D-1") {
		t.Errorf("a transaction of the dropped trace was delivered at keep rate 0")
	}
	if ts := st.TailSampling; ts == nil || ts.Kept+ts.Dropped != 0 || !st.Balanced {
		t.Errorf("after the restart: tail sampling %+v (balanced %v); want no new decision: both late items follow the remembered ones", ts, st.Balanced)
	}
	if code := p.stop(t, 10*time.Second); code != 0 {
		t.Errorf("baton exit code %d", code)
	}
}
