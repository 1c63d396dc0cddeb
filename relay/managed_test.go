package relay

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/baton-relay/baton/relay/auth"
	"github.com/baton-relay/baton/routing"
)

// Reregister registers again only for the generation a 401 answered:
// concurrent 401s cause one registration, a late one none, and
// fetchConfigs' forget of an old generation keeps a newer registration.
func TestReregisterOncePerGeneration(t *testing.T) {
	creds, err := auth.Generate()
	if err != nil {
		t.Fatal(err)
	}
	var challenges atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		switch r.URL.Path {
		case "/api/0/relays/register/challenge/":
			challenges.Add(1)
			_ = json.NewEncoder(w).Encode(map[string]string{"relay_id": creds.ID, "token": "t"})
		case "/api/0/relays/register/response/":
			_ = json.NewEncoder(w).Encode(map[string]string{"relay_id": creds.ID})
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	up, err := routing.NewUpstream(routing.UpstreamOptions{URLs: []string{srv.URL}, Compression: "none"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = up.Close(context.Background()) })
	ua := &upstreamAuth{creds: creds, version: "0.0.0", up: up, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	ctx := context.Background()

	gen := ua.Generation()
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			if err := ua.Reregister(ctx, gen); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := challenges.Load(); n != 1 || ua.Generation() != gen+1 {
		t.Fatalf("50 concurrent 401s: %d registrations, generation %d; want 1, %d", n, ua.Generation(), gen+1)
	}
	if err := ua.Reregister(ctx, gen); err != nil || challenges.Load() != 1 {
		t.Fatalf("late 401: %v, %d registrations; want none more", err, challenges.Load())
	}
	ua.forget(gen)
	if !ua.registered.Load() {
		t.Fatal("forgetting an old generation undid the newer registration")
	}
	if err := ua.Reregister(ctx, ua.Generation()); err != nil || challenges.Load() != 2 {
		t.Fatalf("401 of the current generation: %v, %d registrations; want 2", err, challenges.Load())
	}
}

// Registration sends the Relay release Baton follows; failing that Baton's
// own version in Relay's form; else 0.0.0, which every upstream accepts.
func TestRegistrationVersion(t *testing.T) {
	for _, tc := range []struct{ relay, own, want string }{
		{"26.4.2", "0.9.1", "26.4.2"},
		{"", "0.9.1", "0.9.1"},
		{"", "dev", "0.0.0"},
		{"x", "1.2", "0.0.0"},
	} {
		if got := registrationVersion(tc.relay, tc.own); got != tc.want {
			t.Errorf("registrationVersion(%q, %q) = %q, want %q", tc.relay, tc.own, got, tc.want)
		}
	}
}

// TestRegistrationJitter: retry waits are spread over [d/2, d], so relays
// that failed together do not retry together.
func TestRegistrationJitter(t *testing.T) {
	const d = 8 * time.Second
	seen := map[time.Duration]bool{}
	for range 200 {
		w := jitter(d)
		if w < d/2 || w > d {
			t.Fatalf("jitter(%v) = %v, outside [%v, %v]", d, w, d/2, d)
		}
		seen[w] = true
	}
	if len(seen) < 100 {
		t.Errorf("jitter(%v) took only %d distinct values in 200 draws", d, len(seen))
	}
	if w := jitter(0); w != 0 {
		t.Errorf("jitter(0) = %v", w)
	}
}
