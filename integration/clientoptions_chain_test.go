package integration

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
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

// coBinaryChain is three managed `baton` binaries at managed.cache.expiry
// coExpiry under the fake Sentry s: top, middle and bottom, each trusting
// the one below. topYAML is the top's config after its managed section's
// first keys (more managed keys may start it); rewriteTop replaces it.
type coBinaryChain struct {
	top, middle, bottom *crashProc
	rewriteTop          func(topYAML string)
}

const coExpiry = time.Second

func startCoBinaryChain(t *testing.T, s *fakeSentry, topYAML string) *coBinaryChain {
	t.Helper()
	bin := crashBuildBaton(t)
	credB, trustB := coChainCreds(t)
	credC, trustC := coChainCreds(t)
	managed := func(url string) string {
		return managedCacheYAML(url, fmt.Sprintf("expiry: %s, grace: 60s", coExpiry), "batch_interval: 10ms")
	}
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
	c := &coBinaryChain{}
	var rewrite func(string)
	c.top, rewrite = start("top", managed(s.url())+topYAML+trustB)
	c.rewriteTop = func(topYAML string) { rewrite(managed(s.url()) + topYAML + trustB) }
	c.middle, _ = start("middle", managed(c.top.base)+"  credentials: "+credB+"\n"+trustC)
	c.bottom, _ = start("bottom", managed(c.middle.base)+"  credentials: "+credC+"\n")
	return c
}

// coServes reports whether p serves traces_sample_rate rate to key's
// clients of project pid.
func coServes(t *testing.T, p *crashProc, pid uint64, key string, rate float64) func() bool {
	return func() bool {
		status, body, _ := coGet(t, p.base, pid, "sentry_key="+key, nil)
		return status == 200 && coDecode(t, body).Options["traces_sample_rate"] == rate
	}
}

// TestClientOptionsAddedByTopBaton is a real chain: Sentry sends no
// clientOptions, so the top Baton adds them from its own config
// (managed.client_options) and the two managed Batons below it serve them.
// The top's config is changed and reloaded with SIGHUP, and the bottom
// serves the change within one refresh per layer below the top (the top
// applies it at once).
func TestClientOptionsAddedByTopBaton(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the baton binary")
	}
	s := newFakeSentry(t)
	// A second key of the project, its state of the same revision: each
	// key is judged by its own state.
	const secondKey = "42424242424242424242424242424242"
	s.setProject(managedKey, coState(42, managedKey, "r1", ""))
	s.setProject(secondKey, coState(42, secondKey, "r1", ""))
	topYAML := func(rate string) string {
		return "  client_options:\n    \"42\": {version: 1, options: {traces_sample_rate: " + rate + "}}\n"
	}
	chain := startCoBinaryChain(t, s, topYAML("0.25"))
	for _, p := range []*crashProc{chain.top, chain.middle, chain.bottom} {
		for _, k := range []string{managedKey, secondKey, managedKey} {
			fakeWaitFor(t, 15*time.Second, coServes(t, p, 42, k, 0.25), func() string { return p.base + " never served the top's options for " + k })
		}
	}
	_, _, h := coGet(t, chain.bottom.base, 42, "sentry_key="+managedKey, nil)
	first := h.Get("X-Baton-Client-Options")

	chain.rewriteTop(topYAML("0.75"))
	if err := chain.top.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	changed := time.Now()
	fakeWaitFor(t, 5*time.Second, coServes(t, chain.top, 42, managedKey, 0.75), func() string { return "the top did not apply its reloaded options" })
	atTop := time.Since(changed)
	fakeWaitFor(t, 15*time.Second, coServes(t, chain.bottom, 42, managedKey, 0.75), func() string { return "the bottom never served the reloaded options" })
	atBottom := time.Since(changed)
	t.Logf("SIGHUP at the top: the top serves it after %s, the bottom after %s (managed.cache.expiry %s)",
		atTop.Round(time.Millisecond), atBottom.Round(time.Millisecond), coExpiry)
	// The two layers below the top refresh once each; the margin is the
	// fetch batching and the polling of this test.
	if limit := 2*coExpiry + 1500*time.Millisecond; atBottom > limit {
		t.Errorf("the change took %s to reach the bottom, more than %s", atBottom, limit)
	}
	status, _, h := post(t, chain.bottom.base+"/api/42/envelope/", envelopeFor(42, managedKey, "event"), authHeader(managedKey))
	if status != 200 || h.Get("X-Baton-Client-Options") == "" || h.Get("X-Baton-Client-Options") == first {
		t.Errorf("bottom ingest: %d, hint %q (was %q), want the new revision", status, h.Get("X-Baton-Client-Options"), first)
	}
}

// TestClientOptionsFromRedisAtTop: the same chain, the options kept in
// the top's Redis (redis.project_configs) as a clientOptions part alone,
// laid over Sentry's config of the key; `baton redis put-config` changes
// them, the top takes the change from the update channel at once and the
// bottom serves it within one refresh per layer below the top.
func TestClientOptionsFromRedisAtTop(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the baton binary and redis-server")
	}
	rs := startFleetRedis(t)
	s := newFakeSentry(t)
	s.setProject(managedKey2, coState(43, managedKey2, "r1", ""))
	bin := crashBuildBaton(t)
	part := func(rate string) string {
		return `{"clientOptions":{"version":1,"options":{"traces_sample_rate":` + rate + `}}}`
	}
	redisPutConfig(t, bin, rs.addr, managedKey2, "clientOptions", part("0.25"))
	chain := startCoBinaryChain(t, s, "redis: {addresses: ["+strconv.Quote(rs.addr)+"], project_configs: {enabled: true, fallback_refresh: 1h}}\n")
	for _, p := range []*crashProc{chain.top, chain.middle, chain.bottom} {
		fakeWaitFor(t, 15*time.Second, coServes(t, p, 43, managedKey2, 0.25), func() string { return p.base + " never served the options from Redis" })
	}

	redisPutConfig(t, bin, rs.addr, managedKey2, "clientOptions", part("0.75"))
	changed := time.Now()
	fakeWaitFor(t, 5*time.Second, coServes(t, chain.top, 43, managedKey2, 0.75), func() string { return "the top did not take the changed part" })
	atTop := time.Since(changed)
	fakeWaitFor(t, 15*time.Second, coServes(t, chain.bottom, 43, managedKey2, 0.75), func() string { return "the bottom never served the changed part" })
	atBottom := time.Since(changed)
	t.Logf("put-config at the top: the top serves it after %s, the bottom after %s (managed.cache.expiry %s)",
		atTop.Round(time.Millisecond), atBottom.Round(time.Millisecond), coExpiry)
	if limit := 2*coExpiry + 1500*time.Millisecond; atBottom > limit {
		t.Errorf("the change took %s to reach the bottom, more than %s", atBottom, limit)
	}
}
