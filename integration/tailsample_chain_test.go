package integration

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/getsentry/sentry-go"

	"github.com/baton-relay/baton/relay/tailsample"
)

// Three baton processes (issue 22): two edge Batons whose transaction
// and span routes steer by trace to one tail-sampling Baton (keep rate
// 0.5, 2 s decision wait), which forwards to a fake upstream. Each
// sentry-go trace has its first transaction enter through one edge and its
// second through the other; half the traces have an error (through either
// edge), and some change their DSC mid-trace (another sample_rate and
// sample_rand in the second transaction's baggage). Every trace is decided
// once, and consistently: it arrives whole or not at all, whole when it
// has an error or when the hash of its trace id is under the keep rate.
func TestTailSamplingThreeBatons(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs three baton processes")
	}
	bin := crashBuildBaton(t)
	up := newFakeUpstream(t)
	files := t.TempDir()
	c := &http.Client{Timeout: 5 * time.Second}
	start := func(name, cfg string) *crashProc {
		dir := t.TempDir()
		cfg = fmt.Sprintf("server:\n  listen: 127.0.0.1:0\nbuffer:\n  dir: %s\n  reserve_bytes: 1MiB\n", dir) + cfg
		path := filepath.Join(files, name+".yaml")
		if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		p := crashStart(t, bin, path)
		p.waitReady(t, c, 15*time.Second)
		return p
	}
	const keepRate = 0.5
	tail := start("tail", fakeUpstreamYAML("up", up.url(), "default")+
		fmt.Sprintf("tail_sampling:\n  projects: [\"42\"]\n  decision_wait: 2s\n  max_trace_wait: 1m\n  keep_rate: %v\n", keepRate))
	edgeCfg := fmt.Sprintf(`upstreams:
  tail:
    urls: [%q]
    timeout: 5s
    probe_interval: 200ms
routes:
  default: {upstream: tail}
  transaction: {upstream: tail, steer: trace}
  span: {upstream: tail, steer: trace}
  error: {upstream: tail, steer: trace}
`, tail.base)
	edges := []*crashProc{start("edge0", edgeCfg), start("edge1", edgeCfg)}
	dsn := func(p *crashProc) string {
		return "http://" + testKey + "@" + strings.TrimPrefix(p.base, "http://") + "/42"
	}

	type want struct {
		name, id        string
		withError, keep bool
	}
	var traces []want
	kept, errs, byRate := 0, 0, 0
	// 24 traces, half with an error; more error-free ones while the keep
	// rate has kept none or all of them (1 run in 2,000): both must be seen.
	for i := 0; i < 24 || byRate == 0 || byRate == i-errs; i++ {
		if i == 64 {
			t.Fatalf("the keep rate kept %d of %d error-free traces", byRate, i-errs)
		}
		name := fmt.Sprintf("split-%d", i)
		withError, dscChange := i%2 == 0 && i < 24, i%4 >= 2
		errorVia := i % 3 % 2 // the edge the error enters through
		tr := splitTrace{name: name, withError: withError, errorVia: errorVia}
		if dscChange {
			tr.baggage = changeSampleRate
		}
		id := sendSplitTrace(t, dsn(edges[0]), dsn(edges[1]), tr)
		keep := withError || tailsample.Hash(id) < keepRate
		traces = append(traces, want{name, id, withError, keep})
		if keep {
			kept++
		}
		if withError {
			errs++
		} else if keep {
			byRate++
		}
	}

	// Every trace decided, nothing pending anywhere.
	fakeWaitFor(t, 30*time.Second, func() bool {
		st := crashStats(t, c, tail.base)
		e0, e1 := crashStats(t, c, edges[0].base), crashStats(t, c, edges[1].base)
		return st.TailSampling != nil && st.TailSampling.Kept+st.TailSampling.Dropped >= int64(len(traces)) &&
			st.Pending == 0 && e0.Pending == 0 && e1.Pending == 0
	}, func() string {
		return fmt.Sprintf("not all traces decided: tail %+v", crashStats(t, c, tail.base).TailSampling)
	})
	st := crashStats(t, c, tail.base)
	if ts := st.TailSampling; ts.Kept != int64(kept) || ts.Dropped != int64(len(traces)-kept) || ts.Early != 0 {
		t.Errorf("tail sampling stats %+v, want %d traces kept and %d dropped, each decided once", ts, kept, len(traces)-kept)
	}
	if !st.Balanced {
		t.Errorf("tail Baton not balanced: %+v", st)
	}
	if got, want := st.Classes["transaction"].Dropped["sampled"].Records, int64(2*(len(traces)-kept)); got != want {
		t.Errorf("transactions dropped as sampled = %d, want the dropped traces' %d", got, want)
	}
	fakeWaitFor(t, 15*time.Second, func() bool { return len(splitDelivered(up)) >= 2*kept }, func() string {
		return fmt.Sprintf("kept transactions delivered: %v", splitDelivered(up))
	})
	got := splitDelivered(up)
	for _, tr := range traces {
		ids := map[string]bool{}
		n := 0
		for _, part := range []string{"/1", "/2"} {
			if id, ok := got[tr.name+part]; ok {
				n++
				ids[id] = true
			}
		}
		switch {
		case tr.keep && (n != 2 || len(ids) != 1 || !ids[tr.id]):
			t.Errorf("trace %s %s (error %v, hash %.3f): %d of 2 transactions delivered, trace ids %v; want it whole", tr.name, tr.id, tr.withError, tailsample.Hash(tr.id), n, ids)
		case !tr.keep && n != 0:
			t.Errorf("trace %s %s (error-free, hash %.3f): %d of its transactions delivered; want it dropped whole", tr.name, tr.id, tailsample.Hash(tr.id), n)
		}
	}
	if got := deliveredCount(up, "split-"); got != errs {
		t.Errorf("errors delivered %d, want %d", got, errs)
	}
}

// changeSampleRate gives a DSC (baggage) another sample_rate and
// sample_rand, as an SDK whose rate was set mid-trace would send.
func changeSampleRate(baggage string) string {
	baggage = regexp.MustCompile(`sentry-sample_rate=[^,]*`).ReplaceAllString(baggage, "sentry-sample_rate=0.25")
	baggage = regexp.MustCompile(`,?sentry-sample_rand=[^,]*`).ReplaceAllString(baggage, "")
	return baggage + ",sentry-sample_rand=0.987654"
}

// splitTrace is a trace of two transactions for sendSplitTrace.
type splitTrace struct {
	name      string
	withError bool // an error inside, captured through edge errorVia
	errorVia  int
	env       string              // the SDKs' environment; default none
	baggage   func(string) string // changes the DSC the second transaction continues with
}

// sendSplitTrace sends, through sentry-go, a trace of two transactions:
// the first through dsn0, the second (continuing it) through dsn1. It
// returns the trace id.
func sendSplitTrace(t *testing.T, dsn0, dsn1 string, tr splitTrace) string {
	t.Helper()
	client := func(dsn string) *sentry.Client {
		c, err := sentry.NewClient(sentry.ClientOptions{Dsn: dsn, Transport: sentry.NewHTTPSyncTransport(), EnableTracing: true, TracesSampleRate: 1.0, Environment: tr.env})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	c0, c1 := client(dsn0), client(dsn1)
	defer c0.Close()
	defer c1.Close()
	hub0, hub1 := sentry.NewHub(c0, sentry.NewScope()), sentry.NewHub(c1, sentry.NewScope())
	tx := sentry.StartTransaction(sentry.SetHubOnContext(t.Context(), hub0), tr.name+"/1")
	tx.StartChild("db.query").Finish()
	if tr.withError && tr.errorVia == 0 {
		hub0.Scope().SetSpan(tx)
		hub0.CaptureException(errors.New(tr.name + ": payment failed"))
	}
	tx.Finish()
	baggage := tx.ToBaggage()
	if tr.baggage != nil {
		baggage = tr.baggage(baggage)
	}
	tx2 := sentry.StartTransaction(sentry.SetHubOnContext(t.Context(), hub1), tr.name+"/2", sentry.ContinueFromHeaders(tx.ToSentryTrace(), baggage))
	sp := tx2.StartChild("http.client")
	if tr.withError && tr.errorVia == 1 {
		hub1.CaptureException(errors.New(tr.name + ": payment failed"))
	}
	sp.Finish()
	tx2.Finish()
	if tr.baggage != nil && tx2.ToBaggage() == tx.ToBaggage() {
		t.Fatalf("the second transaction's DSC did not change: %s", tx2.ToBaggage())
	}
	for _, c := range []*sentry.Client{c0, c1} {
		if !c.Flush(10 * time.Second) {
			t.Fatal("sentry-go did not flush")
		}
	}
	return tx.TraceID.String()
}

// splitDelivered maps each transaction name the upstream received to the
// trace id of its envelope's DSC.
func splitDelivered(up *fakeUpstream) map[string]string {
	got := map[string]string{}
	for _, r := range up.delivered() {
		for _, line := range bytes.Split(r.Body, []byte("\n")) {
			var ev struct {
				Type        string          `json:"type"`
				Transaction string          `json:"transaction"`
				Start       json.RawMessage `json:"start_timestamp"`
			}
			if json.Unmarshal(line, &ev) == nil && ev.Type == "transaction" && ev.Start != nil {
				got[ev.Transaction] = headerTraceID(r.Body)
			}
		}
	}
	return got
}

// deliveredCount counts the error events upstream whose message starts
// with prefix.
func deliveredCount(up *fakeUpstream, prefix string) int {
	n := 0
	for _, r := range up.delivered() {
		n += bytes.Count(r.Body, []byte(`"value":"`+prefix))
	}
	return n
}
