package forward

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/baton-relay/baton/envelope"
	"github.com/baton-relay/baton/routing"
)

// limitLog is a LimitRecorder that keeps what it was told.
type limitLog struct {
	mu   sync.Mutex
	seen []recordedLimits
}

type recordedLimits struct {
	project uint64
	key     string
	limits  []routing.RateLimit
}

func (l *limitLog) RecordLimits(pid uint64, key string, limits []routing.RateLimit) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seen = append(l.seen, recordedLimits{pid, key, slices.Clone(limits)})
}

func (l *limitLog) get() []recordedLimits {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.seen)
}

// The limits of an upstream 429 reach the LimitRecorder with the project
// and key of the refused message: X-Sentry-Rate-Limits as parsed, or, for
// a 429 with only Retry-After, one limit of every category on the key. A
// 503 (overload) is not a limit.
func TestThrottledLimitsRecorded(t *testing.T) {
	var limited atomic.Bool
	limited.Store(true)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !limited.Load() {
			w.WriteHeader(http.StatusOK)
			return
		}
		switch r.URL.Path {
		case "/api/1/envelope/":
			w.Header().Set("X-Sentry-Rate-Limits", "60:error:project:quota")
			w.WriteHeader(http.StatusTooManyRequests)
		case "/api/2/envelope/":
			w.Header().Set("Retry-After", "3")
			w.WriteHeader(http.StatusTooManyRequests)
		case "/api/3/envelope/":
			w.Header().Set("Retry-After", "5")
			w.Header().Set("X-Sentry-Rate-Limits", "5::organization")
			w.WriteHeader(http.StatusServiceUnavailable)
		default:
			w.WriteHeader(http.StatusOK)
		}
	}))
	t.Cleanup(srv.Close)
	clk := newClock(false)
	up, err := routing.NewUpstream(routing.UpstreamOptions{URLs: []string{srv.URL}, Compression: "none", Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { up.Close(context.Background()) })

	b, _ := openBuffer(t)
	appendRecs(t, b, errsStream, envelope.ClassError, 1, 2, 3, 4)
	log := &limitLog{}
	ab, _, _ := startForwarder(t, b, up, clk, ForwarderOptions{RateLimits: log})
	w := clk.Next(t, guard)
	got := log.get()
	want := []recordedLimits{
		{1, keyOf(1), []routing.RateLimit{{RetryAfter: time.Minute, Categories: []string{"error"}, Scope: "project", Reason: "quota"}}},
		{2, keyOf(2), []routing.RateLimit{{RetryAfter: 3 * time.Second, Scope: "key"}}},
	}
	if len(got) != len(want) {
		t.Fatalf("recorded %+v, want %+v", got, want)
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.project != w.project || g.key != w.key || len(g.limits) != 1 ||
			g.limits[0].RetryAfter != w.limits[0].RetryAfter || g.limits[0].Scope != w.limits[0].Scope ||
			g.limits[0].Reason != w.limits[0].Reason || !slices.Equal(g.limits[0].Categories, w.limits[0].Categories) {
			t.Errorf("recorded[%d] = %+v, want %+v", i, g, w)
		}
	}
	limited.Store(false)
	w.Fire()
	waitAck(t, ab.acks)
}
