package integration

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/getsentry/sentry-go"

	"github.com/baton-relay/baton/integration/clientoptions"
	"github.com/baton-relay/baton/relay/auth"
)

// coChainCreds makes credentials for a Baton of a chain, saved in a file,
// and the auth section that lets the Baton above trust it.
func coChainCreds(t *testing.T) (credPath, trust string) {
	t.Helper()
	c, err := auth.Generate()
	if err != nil {
		t.Fatal(err)
	}
	credPath = filepath.Join(t.TempDir(), "credentials.json")
	if err := c.Save(credPath); err != nil {
		t.Fatal(err)
	}
	return credPath, fmt.Sprintf("auth:\n  static_relays:\n    %s: {public_key: %s}\n", c.ID, auth.FormatPublicKey(c.PublicKey))
}

// TestClientOptionsThroughThreeBatons: the options come from the top (the
// fake Sentry's project config) through three managed Batons, each with a
// 1s config expiry, to a real sentry-go client behind the bottom one. The
// client applies traces_sample_rate through integration/clientoptions;
// when the top raises it from 0.2 to 1, the client learns of it from the
// X-Baton-Client-Options of its next ingest answers (no polling: max-age
// is the default 60s) and samples every transaction from then on.
func TestClientOptionsThroughThreeBatons(t *testing.T) {
	settleDialer(t)
	s := newFakeSentry(t)
	s.setProject(managedKey, coState(42, managedKey, "r1", `{"version":1,"options":{"traces_sample_rate":0.2}}`))
	cache := "expiry: 1s, grace: 60s"
	credB, trustB := coChainCreds(t)
	credC, trustC := coChainCreds(t)
	a := startNode(t, managedCacheYAML(s.url(), cache, "batch_interval: 10ms")+trustB)
	b := startNode(t, managedCacheYAML(a.url, cache, "batch_interval: 10ms")+"  credentials: "+credB+"\n"+trustC)
	c := startNode(t, managedCacheYAML(b.url, cache, "batch_interval: 10ms")+"  credentials: "+credC+"\n")

	dsn := "http://" + managedKey + "@" + c.r.Addr().String() + "/42"
	co, err := clientoptions.New(clientoptions.Options{DSN: dsn, Release: "shop@1.0.0", Environment: "production", DeviceID: "device-1"})
	if err != nil {
		t.Fatal(err)
	}
	fakeWaitFor(t, 15*time.Second, func() bool {
		_, err := co.Fetch(t.Context())
		return err == nil
	}, func() string { return "the bottom Baton never served the options" })
	if r := co.Current(); r.Options.TracesSampleRate == nil || *r.Options.TracesSampleRate != 0.2 {
		t.Fatalf("first answer %+v", r)
	}

	var sampled atomic.Int64
	opts := sentry.ClientOptions{
		Dsn:              dsn,
		Transport:        sentry.NewHTTPSyncTransport(),
		EnableTracing:    true,
		TracesSampleRate: 0, // until Baton says otherwise
		Release:          "shop@1.0.0",
		Environment:      "production",
		BeforeSendTransaction: func(e *sentry.Event, _ *sentry.EventHint) *sentry.Event {
			sampled.Add(1)
			return e
		},
	}
	co.Apply(&opts)
	client, err := sentry.NewClient(opts)
	if err != nil {
		t.Fatal(err)
	}
	var closeOnce sync.Once
	closeClient := func() { closeOnce.Do(func() { client.Flush(5 * time.Second); client.Close(); co.Close() }) }
	t.Cleanup(closeClient)
	hub := sentry.NewHub(client, sentry.NewScope())
	ctx := sentry.SetHubOnContext(context.Background(), hub)
	transactions := func(prefix string, n int) int64 {
		before := sampled.Load()
		for i := range n {
			tx := sentry.StartTransaction(ctx, fmt.Sprintf("%s-%d", prefix, i))
			tx.Finish()
		}
		return sampled.Load() - before
	}

	const n = 100
	if got := transactions("co-before", n); got < 5 || got > 40 {
		t.Errorf("at traces_sample_rate 0.2: %d of %d transactions sampled", got, n)
	}
	fetches := co.Fetches()

	// The top changes. The client sends an error now and then, as apps do;
	// each ingest answer names the revision the bottom Baton holds.
	s.setProject(managedKey, coState(42, managedKey, "r2", `{"version":1,"options":{"traces_sample_rate":1}}`))
	changed := time.Now()
	var atBottom time.Duration
	fakeWaitFor(t, 20*time.Second, func() bool {
		hub.CaptureMessage("co-pulse")
		if atBottom == 0 {
			if _, body, _ := coGet(t, c.url, 42, "sentry_key="+managedKey, nil); coDecode(t, body).Options["traces_sample_rate"] == 1 {
				atBottom = time.Since(changed)
			}
		}
		r := co.Current()
		return r.Options.TracesSampleRate != nil && *r.Options.TracesSampleRate == 1
	}, func() string {
		return fmt.Sprintf("the client still has %+v; bottom stats %+v", co.Current(), c.r.Stats().Projects)
	})
	atClient := time.Since(changed)
	t.Logf("propagation at 1s config expiry per layer: bottom Baton serves the change after %s, the client applies it after %s (%d fetches in all)",
		atBottom.Round(time.Millisecond), atClient.Round(time.Millisecond), co.Fetches())
	if co.Fetches()-fetches > 3 {
		t.Errorf("%d fetches to learn one change: the hint should make one (or two)", co.Fetches()-fetches)
	}
	// One refresh per layer: three of 1s. A layer refreshes an expired
	// config when it is asked for it and answers with the stale one
	// meanwhile, so the layers line up and the change takes the whole 3s
	// (2.95-3.01s in five runs); the margin is batching, the fetches and
	// the hint round.
	if limit := 3*time.Second + 1500*time.Millisecond; atClient > limit {
		t.Errorf("the change took %s to reach the client, more than %s", atClient, limit)
	}

	if got := transactions("co-after", n); got != n {
		t.Errorf("at traces_sample_rate 1: %d of %d transactions sampled", got, n)
	}
	closeClient()
	fakeWaitFor(t, 20*time.Second, func() bool { return deliveredTo(s, 42, `"co-after-`) == n },
		func() string {
			return fmt.Sprintf("%d of %d sampled transactions reached the top", deliveredTo(s, 42, `"co-after-`), n)
		})
}

// TestClientOptionsAddedByTopBaton is a real chain: Sentry sends no
// clientOptions, so the top Baton adds them from its own config
// (managed.client_options) and the two managed Batons below it serve them.
// Three `baton` binaries at managed.cache.expiry 1s; the top's config is
// changed and reloaded with SIGHUP, and the bottom serves the change within
// one refresh per layer below the top (the top applies it at once).
func TestClientOptionsAddedByTopBaton(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the baton binary")
	}
	s := newFakeSentry(t)
	s.setProject(managedKey, coState(42, managedKey, "r1", ""))
	bin := crashBuildBaton(t)
	credB, trustB := coChainCreds(t)
	credC, trustC := coChainCreds(t)
	const expiry = time.Second
	cache := fmt.Sprintf("expiry: %s, grace: 60s", expiry)
	// start runs a Baton on yaml; the function it returns rewrites its
	// config file.
	start := func(name, yaml string) (*crashProc, func(string)) {
		dir := t.TempDir()
		cfg := filepath.Join(dir, "baton.yaml")
		write := func(yaml string) {
			base := fmt.Sprintf("server: {listen: 127.0.0.1:0}\nbuffer: {dir: %s, reserve_bytes: 1MiB}\nkafka: {embedded: {listen: 127.0.0.1:0}}\n", filepath.Join(dir, "data"))
			if err := os.WriteFile(cfg, []byte(base+yaml), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		write(yaml)
		p := crashStart(t, bin, cfg)
		p.waitReady(t, http.DefaultClient, 10*time.Second)
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("%s stderr:\n%s", name, crashTail(p.stderr.String(), 3000))
			}
		})
		return p, write
	}
	topYAML := func(rate string) string {
		return managedCacheYAML(s.url(), cache, "batch_interval: 10ms") +
			"  client_options:\n    \"42\": {version: 1, options: {traces_sample_rate: " + rate + "}}\n" + trustB
	}
	a, rewriteTop := start("top", topYAML("0.25"))
	b, _ := start("middle", managedCacheYAML(a.base, cache, "batch_interval: 10ms")+"  credentials: "+credB+"\n"+trustC)
	c, _ := start("bottom", managedCacheYAML(b.base, cache, "batch_interval: 10ms")+"  credentials: "+credC+"\n")

	serves := func(p *crashProc, rate float64) func() bool {
		return func() bool {
			status, body, _ := coGet(t, p.base, 42, "sentry_key="+managedKey, nil)
			return status == 200 && coDecode(t, body).Options["traces_sample_rate"] == rate
		}
	}
	for _, p := range []*crashProc{a, b, c} {
		fakeWaitFor(t, 15*time.Second, serves(p, 0.25), func() string { return p.base + " never served the top's options" })
	}
	_, _, h := coGet(t, c.base, 42, "sentry_key="+managedKey, nil)
	first := h.Get("X-Baton-Client-Options")

	rewriteTop(topYAML("0.75"))
	if err := a.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	changed := time.Now()
	fakeWaitFor(t, 5*time.Second, serves(a, 0.75), func() string { return "the top did not apply its reloaded options" })
	atTop := time.Since(changed)
	fakeWaitFor(t, 15*time.Second, serves(c, 0.75), func() string { return "the bottom never served the reloaded options" })
	atBottom := time.Since(changed)
	t.Logf("SIGHUP at the top: the top serves it after %s, the bottom after %s (managed.cache.expiry %s)",
		atTop.Round(time.Millisecond), atBottom.Round(time.Millisecond), expiry)
	// The two layers below the top refresh once each; the margin is the
	// fetch batching and the polling of this test.
	if limit := 2*expiry + 1500*time.Millisecond; atBottom > limit {
		t.Errorf("the change took %s to reach the bottom, more than %s", atBottom, limit)
	}
	status, _, h := post(t, c.base+"/api/42/envelope/", envelopeFor(42, managedKey, "event"), authHeader(managedKey))
	if status != 200 || h.Get("X-Baton-Client-Options") == "" || h.Get("X-Baton-Client-Options") == first {
		t.Errorf("bottom ingest: %d, hint %q (was %q), want the new revision", status, h.Get("X-Baton-Client-Options"), first)
	}
}
