package integration

import (
	"bytes"
	"errors"
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
	dsn := "http://" + testKey + "@" + n.r.Addr().String() + "/42"
	client, err := sentry.NewClient(sentry.ClientOptions{
		Dsn:              dsn,
		Transport:        sentry.NewHTTPSyncTransport(),
		EnableTracing:    true,
		TracesSampleRate: 1.0,
		Release:          "baton-test@1.0.0",
	})
	if err != nil {
		t.Fatal(err)
	}
	hub := sentry.NewHub(client, sentry.NewScope())

	hub.WithScope(func(scope *sentry.Scope) {
		scope.AddAttachment(&sentry.Attachment{Filename: "state.txt", ContentType: "text/plain", Payload: []byte("line one\nline two")})
		hub.CaptureException(errors.New("baton-test: payment failed"))
	})
	hub.CaptureMessage("baton-test: a plain message")

	ctx := sentry.SetHubOnContext(t.Context(), hub)
	tx := sentry.StartTransaction(ctx, "GET /checkout")
	for _, op := range []string{"db.query", "http.client", "cache.get"} {
		sp := tx.StartChild(op)
		sp.Description = "baton-test " + op
		sp.Finish()
	}
	tx.Finish()

	client.CaptureCheckIn(&sentry.CheckIn{MonitorSlug: "nightly-report", Status: sentry.CheckInStatusOK, Duration: time.Second}, nil, nil)
	flushed := client.Flush(5 * time.Second)
	client.Close()
	if !flushed {
		t.Fatal("sentry-go did not flush")
	}

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
	if st.Rejected != nil && len(st.Rejected) > 0 {
		t.Errorf("Baton rejected SDK requests: %v", st.Rejected)
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
