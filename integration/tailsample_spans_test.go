package integration

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/getsentry/sentry-go"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Standalone span items (type span, the span class's Tail stream) and the
// transactions of their trace (the transaction class's) wait apart but
// share one decision: trace K, whose sentry-go transaction captured an
// error, is kept whole, spans included; trace D, error-free, is dropped
// whole at keep rate 0. One decision per trace is counted, not one per
// stream.
func TestTailSamplingSpans(t *testing.T) {
	n := startNode(t, "tail_sampling:\n  projects: [\"42\"]\n  decision_wait: 1s\n  keep_rate: 0\n")
	dsn := "http://" + testKey + "@" + n.r.Addr().String() + "/42"
	for _, c := range []struct {
		name      string
		withError bool
	}{{"span-K", true}, {"span-D", false}} {
		id := sendTransaction(t, dsn, c.name, c.withError)
		for i := range 2 {
			postSpan(t, n.url, id, fmt.Sprintf("%s/span-%d", c.name, i))
		}
	}

	st := waitBalanced(t, n, 20*time.Second)
	tx, sp := st.Classes["transaction"], st.Classes["span"]
	if tx.Delivered.Records != 1 || tx.Dropped["sampled"].Records != 1 {
		t.Errorf("transactions %+v, want K's delivered and D's dropped as sampled", tx)
	}
	if sp.Delivered.Records != 2 || sp.Dropped["sampled"].Records != 2 {
		t.Errorf("spans %+v, want K's 2 delivered and D's 2 dropped as sampled", sp)
	}
	if ts := st.TailSampling; ts == nil || ts.Kept != 1 || ts.Dropped != 1 {
		t.Errorf("tail sampling stats %+v, want one decision per trace: K kept, D dropped", ts)
	}
	recs := consumeUntil(t, n.kafka, "baton.span", 15*time.Second, func(recs []*kgo.Record) bool {
		return containsAll(recs, "span-K/span-0", "span-K/span-1")
	})
	for _, r := range recs {
		if strings.Contains(string(r.Value), "span-D/") {
			t.Errorf("a span of the dropped trace was delivered: %s", r.Value)
		}
	}
	consumeUntil(t, n.kafka, "baton.transaction", 15*time.Second, func(recs []*kgo.Record) bool {
		return containsAll(recs, "span-K/tx")
	})
}

// sendTransaction sends, through sentry-go, one transaction named name+"/tx"
// with a span, and an error inside it when withError; it returns the
// trace id.
func sendTransaction(t *testing.T, dsn, name string, withError bool) string {
	t.Helper()
	client, err := sentry.NewClient(sentry.ClientOptions{Dsn: dsn, Transport: sentry.NewHTTPSyncTransport(), EnableTracing: true, TracesSampleRate: 1.0})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	hub := sentry.NewHub(client, sentry.NewScope())
	tx := sentry.StartTransaction(sentry.SetHubOnContext(t.Context(), hub), name+"/tx")
	sp := tx.StartChild("db.query")
	if withError {
		hub.CaptureException(errors.New(name + ": payment failed"))
	}
	sp.Finish()
	tx.Finish()
	if !client.Flush(10 * time.Second) {
		t.Fatal("sentry-go did not flush")
	}
	return tx.TraceID.String()
}

// postSpan posts an envelope of one standalone span item of trace id,
// described as desc.
func postSpan(t *testing.T, base, id, desc string) {
	t.Helper()
	now := float64(time.Now().UnixMilli()) / 1e3
	span := fmt.Sprintf(`{"trace_id":%q,"span_id":"%016x","parent_span_id":"b0e6f15b45c36b12","op":"db","description":%q,"status":"ok","start_timestamp":%.3f,"timestamp":%.3f}`,
		id, time.Now().UnixNano(), desc, now-0.2, now)
	env := fmt.Appendf(nil, "{\"trace\":{\"trace_id\":%q,\"public_key\":%q}}\n{\"type\":\"span\",\"length\":%d}\n%s\n", id, testKey, len(span), span)
	if code, body, _ := post(t, base+"/api/42/envelope/", env, authHeader(testKey)); code != 200 {
		t.Fatalf("post span: %d %s", code, body)
	}
}
