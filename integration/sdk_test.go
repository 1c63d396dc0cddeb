package integration

import (
	"bytes"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/getsentry/sentry-go"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestSentryGoSDK drives the real sentry-go SDK against a running Baton:
// an error with an attachment, a message, a transaction with spans and a
// check-in all arrive in the topics of their classes.
func TestSentryGoSDK(t *testing.T) {
	n := startNode(t, "")
	runSDKScenario(t, sdkScenario{
		dsn:        "http://" + testKey + "@" + n.r.Addr().String() + "/42",
		prefix:     "baton-test",
		attachment: "line one\nline two",
		tx:         "GET /checkout",
		ops:        []string{"db.query", "http.client", "cache.get"},
		monitor:    "nightly-report",
	})

	errs := consumeUntil(t, n.kafka, "baton.error", 15*time.Second, func(recs []*kgo.Record) bool {
		return containsAll(recs, "baton-test: payment failed", "baton-test: a plain message", "line one\nline two")
	})
	for _, rec := range errs {
		if bytes.Contains(rec.Value, []byte("payment failed")) && !bytes.Contains(rec.Value, []byte("state.txt")) {
			t.Errorf("the attachment did not travel with its event:\n%s", rec.Value)
		}
		if string(rec.Key) != "42" {
			t.Errorf("record key = %q, want the project id 42", rec.Key)
		}
	}
	consumeUntil(t, n.kafka, "baton.transaction", 15*time.Second, func(recs []*kgo.Record) bool {
		return containsAll(recs, "GET /checkout", "baton-test db.query", "baton-test cache.get")
	})
	consumeUntil(t, n.kafka, "baton.check_in", 15*time.Second, func(recs []*kgo.Record) bool {
		return containsAll(recs, "nightly-report")
	})
	st := waitBalanced(t, n, 10*time.Second)
	if len(st.Rejected) > 0 {
		t.Errorf("Baton rejected SDK requests: %v", st.Rejected)
	}
}

// sdkScenario is what runSDKScenario makes the real sentry-go SDK send.
type sdkScenario struct {
	dsn        string
	transport  http.RoundTripper // nil: the SDK's default
	prefix     string            // prefixes the error, message and span texts
	attachment string            // rides with the error as state.txt
	tx         string            // transaction name
	ops        []string          // one child span each
	monitor    string            // check-in slug
}

// runSDKScenario drives sentry-go through an error with an attachment, a
// message, a transaction with spans and a check-in, and flushes.
func runSDKScenario(t *testing.T, sc sdkScenario) {
	t.Helper()
	client, err := sentry.NewClient(sentry.ClientOptions{
		Dsn:              sc.dsn,
		Transport:        sentry.NewHTTPSyncTransport(),
		HTTPTransport:    sc.transport,
		EnableTracing:    true,
		TracesSampleRate: 1.0,
		Release:          sc.prefix + "@1.0.0",
	})
	if err != nil {
		t.Fatal(err)
	}
	hub := sentry.NewHub(client, sentry.NewScope())
	hub.WithScope(func(scope *sentry.Scope) {
		scope.AddAttachment(&sentry.Attachment{Filename: "state.txt", ContentType: "text/plain", Payload: []byte(sc.attachment)})
		hub.CaptureException(errors.New(sc.prefix + ": payment failed"))
	})
	hub.CaptureMessage(sc.prefix + ": a plain message")
	tx := sentry.StartTransaction(sentry.SetHubOnContext(t.Context(), hub), sc.tx)
	for _, op := range sc.ops {
		sp := tx.StartChild(op)
		sp.Description = sc.prefix + " " + op
		sp.Finish()
	}
	tx.Finish()
	client.CaptureCheckIn(&sentry.CheckIn{MonitorSlug: sc.monitor, Status: sentry.CheckInStatusOK, Duration: time.Second}, nil, nil)
	flushed := client.Flush(10 * time.Second)
	client.Close()
	if !flushed {
		t.Fatal("sentry-go did not flush")
	}
}

func containsAll(recs []*kgo.Record, subs ...string) bool {
	for _, s := range subs {
		found := false
		for _, r := range recs {
			found = found || bytes.Contains(r.Value, []byte(s))
		}
		if !found {
			return false
		}
	}
	return true
}
