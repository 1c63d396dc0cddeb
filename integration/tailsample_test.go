package integration

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/getsentry/sentry-go"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/baton-relay/baton/relay"
)

// Tail-based sampling (issue 22, tail_sampling): real sentry-go traces
// through a running Baton whose project 42 is tail-sampled with a 1 s
// decision wait, keep rate 0 and a 5 s duration threshold.
func TestTailSampling(t *testing.T) {
	const decisionWait = time.Second
	n := startNode(t, fmt.Sprintf(`tail_sampling:
  projects: ["42"]
  decision_wait: %s
  max_trace_wait: 30s
  keep_rate: 0
  duration_threshold: 5s
  rules: [{transaction: "tail-D/*"}, {attribute: tier, equals: gold}]
`, decisionWait))
	dsn := "http://" + testKey + "@" + n.r.Addr().String() + "/42"

	// A: two transactions of one trace; an error deep inside the second.
	// B: two fast error-free transactions: dropped whole at keep rate 0.
	// C: one transaction that lasted 10 s: kept by the duration rule.
	// D: like B, but its name matches a rule: kept whole.
	sendTrace(t, dsn, "tail-A", true, 0)
	sendTrace(t, dsn, "tail-B", false, 0)
	sendTrace(t, dsn, "tail-D", false, 0)
	last := time.Now()
	sendTrace(t, dsn, "tail-C", false, 10*time.Second)

	st := waitBalanced(t, n, 20*time.Second)
	if held := time.Since(last); held < decisionWait {
		t.Errorf("the traces left the trace buffer %s after the last item, before decision_wait %s", held, decisionWait)
	}
	tx := st.Classes["transaction"]
	if got := tx.Dropped["sampled"]; got.Records != 2 {
		t.Errorf("transactions dropped as sampled = %+v, want trace B's 2", got)
	}
	if ts := st.TailSampling; ts == nil || ts.Kept != 3 || ts.Dropped != 1 {
		t.Errorf("tail sampling stats = %+v, want 3 traces kept (A, C, D) and 1 dropped (B)", ts)
	}
	if e := st.Classes["error"].Delivered.Records; e != 1 {
		t.Errorf("errors delivered = %d, want 1 (errors are never held)", e)
	}
	want := int(tx.Delivered.Records)
	recs := consumeUntil(t, n.kafka, "baton.transaction", 15*time.Second, func(recs []*kgo.Record) bool { return len(recs) >= want })
	got := map[string]bool{}
	for _, r := range recs {
		var ev struct {
			Transaction string                `json:"transaction"`
			Spans       []struct{ Op string } `json:"spans"`
		}
		for _, line := range bytes.Split(r.Value, []byte("\n")) {
			if json.Unmarshal(line, &ev) == nil && ev.Transaction != "" {
				got[ev.Transaction] = true
				if len(ev.Spans) != 1 {
					t.Errorf("%s arrived with %d spans, want its 1", ev.Transaction, len(ev.Spans))
				}
			}
		}
	}
	for _, name := range []string{"tail-A/1", "tail-A/2", "tail-C/1", "tail-D/1", "tail-D/2"} {
		if !got[name] {
			t.Errorf("kept transaction %s not delivered (got %v)", name, got)
		}
	}
	for _, name := range []string{"tail-B/1", "tail-B/2"} {
		if got[name] {
			t.Errorf("transaction %s of the dropped trace was delivered", name)
		}
	}
	if len(st.Rejected) > 0 {
		t.Errorf("Baton rejected SDK requests: %v", st.Rejected)
	}
}

// A trace whose root transaction arrived is decided root_grace after it,
// not after decision_wait (1 m here, beyond the test's wait): sentry-go's
// root transaction has no parent_span_id in its trace context. A trace of
// which only a child transaction came (its parent's sentry-trace header,
// never sent) has no root and still waits.
func TestTailSamplingRootGrace(t *testing.T) {
	const grace = time.Second
	n := startNode(t, fmt.Sprintf("tail_sampling:\n  projects: [\"42\"]\n  decision_wait: 1m\n  root_grace: %s\n  keep_rate: 1\n", grace))
	dsn := "http://" + testKey + "@" + n.r.Addr().String() + "/42"
	sent := time.Now()
	sendTrace(t, dsn, "root-R", false, 0) // root-R/1 is the root, root-R/2 its child
	sendChild(t, dsn, "root-C/2", "771a43a4192642f0b136d5159a501700-b0e6f15b45c36b12-1")

	var st relay.Stats
	fakeWaitFor(t, 20*time.Second, func() bool {
		st = n.r.Stats()
		return st.Classes["transaction"].Delivered.Records == 2
	}, func() string {
		return fmt.Sprintf("transactions %+v, tail sampling %+v", st.Classes["transaction"], st.TailSampling)
	})
	if held := time.Since(sent); held < grace {
		t.Errorf("the rooted trace left %s after its root was sent, before root_grace %s", held, grace)
	}
	if tx := st.Classes["transaction"]; tx.Pending.Records != 1 || !st.Balanced {
		t.Errorf("transactions %+v (balanced %v); want the rootless trace's one still pending", tx, st.Balanced)
	}
	if ts := st.TailSampling; ts == nil || ts.Kept != 1 || ts.Dropped != 0 {
		t.Errorf("tail sampling stats %+v, want only the rooted trace decided", ts)
	}
	consumeUntil(t, n.kafka, "baton.transaction", 15*time.Second, func(recs []*kgo.Record) bool {
		return containsAll(recs, "root-R/1", "root-R/2")
	})
}

// sendChild sends, through sentry-go, one transaction named name that
// continues the trace of sentry-trace header parent: not a root.
func sendChild(t *testing.T, dsn, name, parent string) {
	t.Helper()
	client, err := sentry.NewClient(sentry.ClientOptions{Dsn: dsn, Transport: sentry.NewHTTPSyncTransport(), EnableTracing: true, TracesSampleRate: 1.0})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	hub := sentry.NewHub(client, sentry.NewScope())
	tx := sentry.StartTransaction(sentry.SetHubOnContext(t.Context(), hub), name, sentry.ContinueFromHeaders(parent, ""))
	tx.Finish()
	if !client.Flush(10 * time.Second) {
		t.Fatal("sentry-go did not flush")
	}
}

// sendTrace sends, through sentry-go, a trace named name of two
// transactions (one when took > 0: a single transaction lasting took),
// each with one span; withError captures an error inside the second.
func sendTrace(t *testing.T, dsn, name string, withError bool, took time.Duration) {
	t.Helper()
	client, err := sentry.NewClient(sentry.ClientOptions{
		Dsn:              dsn,
		Transport:        sentry.NewHTTPSyncTransport(),
		EnableTracing:    true,
		TracesSampleRate: 1.0,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	hub := sentry.NewHub(client, sentry.NewScope())
	tx := sentry.StartTransaction(sentry.SetHubOnContext(t.Context(), hub), name+"/1")
	if took > 0 {
		tx.StartTime = time.Now().Add(-took)
	}
	sp := tx.StartChild("db.query")
	sp.Finish()
	tx.Finish()
	if took == 0 {
		hub2 := sentry.NewHub(client, sentry.NewScope())
		tx2 := sentry.StartTransaction(sentry.SetHubOnContext(t.Context(), hub2), name+"/2",
			sentry.ContinueFromHeaders(tx.ToSentryTrace(), tx.ToBaggage()))
		sp2 := tx2.StartChild("http.client")
		if withError {
			hub2.CaptureException(errors.New(name + ": payment failed"))
		}
		sp2.Finish()
		tx2.Finish()
	}
	if !client.Flush(10 * time.Second) {
		t.Fatal("sentry-go did not flush")
	}
}

// The trace buffer survives a restart: a trace waiting under a long
// decision_wait when Baton stops is indexed again from the buffer on the
// next start and decided there (here under a short one): nothing acked is
// lost, and it stays pending, never delivered, until decided. root_grace
// is off: the root transaction must not decide the trace first.
func TestTailSamplingRestart(t *testing.T) {
	dir := t.TempDir()
	cfg := func(wait time.Duration) string {
		return fmt.Sprintf("tail_sampling:\n  projects: [\"42\"]\n  decision_wait: %s\n  root_grace: 0s\n  max_trace_wait: 5m\n  keep_rate: 1\n", wait)
	}
	n := startNodeIn(t, dir, cfg(time.Minute))
	dsn := "http://" + testKey + "@" + n.r.Addr().String() + "/42"
	sendTrace(t, dsn, "tail-R", false, 0)
	st := n.r.Stats()
	if tx := st.Classes["transaction"]; tx.Accepted.Records != 2 || tx.Delivered.Records != 0 || tx.Pending.Records != 2 || !st.Balanced {
		t.Fatalf("under decision_wait 1m: transactions %+v (balanced %v); want 2 accepted, pending, none delivered", tx, st.Balanced)
	}
	n.close()

	n = startNodeIn(t, dir, cfg(time.Second))
	st = waitBalanced(t, n, 15*time.Second)
	if tx := st.Classes["transaction"]; tx.Recovered.Records != 2 || tx.Delivered.Records != 2 {
		t.Errorf("after restart: transactions %+v; want the 2 recovered and delivered", tx)
	}
	if ts := st.TailSampling; ts == nil || ts.Kept != 1 {
		t.Errorf("tail sampling stats %+v, want the trace kept once", ts)
	}
	consumeUntil(t, n.kafka, "baton.transaction", 15*time.Second, func(recs []*kgo.Record) bool {
		return containsAll(recs, "tail-R/1", "tail-R/2")
	})
}

// kill -9 while traces wait in the trace buffer: the real binary, killed
// with SIGKILL after acking the transactions of two traces under a long
// decision_wait (root_grace off), restarted on the same buffer with a short
// one: every acked transaction reaches the upstream, and the trace buffer
// is empty.
func TestTailSamplingKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the baton binary")
	}
	bin := crashBuildBaton(t)
	up := newFakeUpstream(t)
	dir, files := t.TempDir(), t.TempDir()
	write := func(wait time.Duration) string {
		return writeTailConfig(t, dir, files, up, fmt.Sprintf("tail_sampling:\n  projects: [\"42\"]\n  decision_wait: %s\n  root_grace: 0s\n  keep_rate: 1\n", wait))
	}
	c := &http.Client{Timeout: 5 * time.Second}
	p := crashStart(t, bin, write(time.Minute))
	p.waitReady(t, c, 15*time.Second)
	for tr, id := range []string{"0af7651916cd43dd8448eb211c80319c", "1bf7651916cd43dd8448eb211c80319c"} {
		for i := range 2 {
			env := traceEnvelope(fmt.Sprintf("%032x", tr*10+i+1), id, testKey, fmt.Sprintf("kill9-%d-%d", tr, i))
			if code, body, _ := post(t, p.base+"/api/42/envelope/", env, authHeader(testKey)); code != 200 {
				t.Fatalf("post: %d %s", code, body)
			}
		}
	}
	if st := crashStats(t, c, p.base); st.Pending != 4 || st.Delivered != 0 {
		t.Fatalf("before the kill: pending %d, delivered %d; want the 4 transactions waiting", st.Pending, st.Delivered)
	}
	p.kill()

	p = crashStart(t, bin, write(time.Second))
	fakeWaitFor(t, 15*time.Second, func() bool { return len(up.delivered()) >= 4 }, func() string {
		return fmt.Sprintf("%d of 4 transactions delivered after the restart", len(up.delivered()))
	})
	st := crashStats(t, c, p.base)
	if st.Recovered.Records != 4 || st.TailSampling == nil || st.TailSampling.Kept != 2 {
		t.Errorf("after the restart: recovered %+v, tail sampling %+v; want 4 records recovered, 2 traces kept", st.Recovered, st.TailSampling)
	}
	if code := p.stop(t, 10*time.Second); code != 0 {
		t.Errorf("baton exit code %d", code)
	}
}

// The bounds decide a trace before its decision wait (1 m here): a trace
// reaching tail_sampling.max_trace_items at once, and the oldest traces
// once the records waiting pass tail_sampling.max_bytes.
func TestTailSamplingBounds(t *testing.T) {
	for _, tc := range []struct{ name, bound string }{
		{"max_trace_items", "max_trace_items: 2"},
		{"max_bytes", "max_bytes: 1KiB"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := startNode(t, "tail_sampling:\n  projects: [\"42\"]\n  decision_wait: 1m\n  keep_rate: 1\n  "+tc.bound+"\n")
			sendTrace(t, "http://"+testKey+"@"+n.r.Addr().String()+"/42", "bound-"+tc.name, false, 0)
			st := waitBalanced(t, n, 15*time.Second)
			if tx := st.Classes["transaction"]; tx.Delivered.Records != 2 {
				t.Errorf("transactions %+v, want both delivered", tx)
			}
			ts := st.TailSampling
			if ts == nil {
				t.Fatal("no tail sampling stats")
			}
			by := map[string]int64{"max_trace_items": ts.Capped, "max_bytes": ts.OverBudget}[tc.name]
			if ts.Kept != 1 || by != 1 || ts.Bytes != 0 {
				t.Errorf("tail sampling stats %+v, want the trace decided once by %s and nothing held", ts, tc.name)
			}
		})
	}
}

// writeTailConfig writes the config of a tail-sampling test that runs the
// baton binary: its buffer in dir (kept across restarts), every class to
// the fake upstream up, and the YAML tail (a tail_sampling section), into
// a new file under files; it returns the file's path.
func writeTailConfig(t *testing.T, dir, files string, up *fakeUpstream, tail string) string {
	t.Helper()
	cfg := fmt.Sprintf("server:\n  listen: 127.0.0.1:0\nbuffer:\n  dir: %s\n  reserve_bytes: 1MiB\nkafka:\n  embedded:\n    listen: 127.0.0.1:0\n", dir) +
		fakeUpstreamYAML("up", up.url(), "default") + tail
	f, err := os.CreateTemp(files, "baton-*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.WriteString(cfg)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	return f.Name()
}
