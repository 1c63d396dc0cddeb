package integration

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// chromiumPath finds a Chromium for the status page test. .ci/run installs
// Debian's chromium and sets BATON_REQUIRE_CHROMIUM, so CI fails instead of
// skipping when it is missing.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("BATON_REQUIRE_CHROMIUM") != "" {
		t.Fatal("chromium not found on PATH (apt-get install chromium; .ci/run does)")
	}
	t.Skip("chromium not installed (apt-get install chromium); .ci/run installs it")
	return ""
}

// TestStatusPage runs the baton binary with traffic flowing, the error
// class routed to an upstream that refuses connections, and every other
// class to the embedded broker, then opens the status page in headless
// Chromium and checks the rendered page: the upstream shown down with its
// error, the error stream's backlog growing, Kafka connected, and charts
// with drawn lines. BATON_STATUS_SCREENSHOT=path saves a screenshot there
// (README's docs/status-page.png comes from it).
func TestStatusPage(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the baton binary and Chromium")
	}
	chrome := chromiumPath(t)
	bin := crashBuildBaton(t)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := ln.Addr().String()
	ln.Close() // nothing listens there: the upstream is down
	dir := t.TempDir()
	cfg := filepath.Join(dir, "baton.yml")
	yaml := fmt.Sprintf(`server: {listen: 127.0.0.1:0}
buffer: {dir: %s}
kafka: {embedded: {listen: 127.0.0.1:0}}
telemetry: {metrics_listen: 127.0.0.1:0}
upstreams:
  eu-relay: {urls: ["http://%s"], max_failures: 2}
routes:
  error: {upstream: eu-relay}
`, filepath.Join(dir, "data"), down)
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	p := crashStart(t, bin, cfg)
	defer p.stop(t, 20*time.Second)
	var page string
	for deadline := time.Now().Add(10 * time.Second); page == ""; time.Sleep(20 * time.Millisecond) {
		for _, l := range strings.Split(p.stdout.String(), "\n") {
			if rest, ok := strings.CutPrefix(l, "  status page on "); ok {
				page = rest
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no status page line on stdout:\n%s", p.stdout.String())
		}
	}

	// Traffic: errors (to the down upstream) and sessions (to Kafka),
	// until the test ends.
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	c := crashClient(t)
	session := []byte("{}\n{\"type\":\"session\"}\n{\"sid\":\"7c7b6585f7d544f0a9b0b1a7e8e0e1f2\",\"status\":\"ok\",\"started\":\"2026-01-01T00:00:00Z\",\"attrs\":{\"release\":\"r1\"}}\n")
	wg.Go(func() {
		tick := time.NewTicker(25 * time.Millisecond) // a steady rate, not synchronisation
		defer tick.Stop()
		for seq := 0; ; seq++ {
			for _, body := range [][]byte{crashEnvelope(seq, 200), session} {
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, p.base+"/api/1/envelope/", bytes.NewReader(body))
				for k, v := range authHeader(testKey) {
					req.Header.Set(k, v)
				}
				if resp, err := c.Do(req); err == nil {
					resp.Body.Close()
				}
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	})

	opts := append(chromedp.DefaultExecAllocatorOptions[:0:0],
		chromedp.ExecPath(chrome), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck, chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 1400),
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true))
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	defer acancel()
	bctx, bcancel := chromedp.NewContext(actx)
	defer bcancel()
	bctx, tcancel := context.WithTimeout(bctx, 90*time.Second)
	defer tcancel()

	if _, err := chromedp.Run(bctx, chromedp.Navigate(page)); err != nil {
		t.Fatalf("open %s: %v", page, err)
	}

	// The down upstream, shown down with its error.
	member := pagePoll[[]string](t, bctx, p, "upstream shown down", `(() => {
		const r = document.querySelector('#upstreams tr[data-key^="upstream/eu-relay/"]');
		if (!r) return false;
		const s = r.querySelector('[data-name=state]').textContent, e = r.querySelector('[data-name=error]').textContent;
		return (s === 'ejected' || s === 'outage') && e.includes('connection refused') ? [s, e] : false;
	})()`)
	t.Logf("upstream member: %q", member)

	// Its class's stream: retrying, with the error, its backlog growing.
	stream := `document.querySelector('#streams tr[data-key="error/class"]')`
	pending := func() int {
		return pagePoll[int](t, bctx, p, "error stream retrying", `(() => {
			const r = `+stream+`;
			if (!r || r.querySelector('[data-name=state]').textContent !== 'retrying') return false;
			if (!r.querySelector('[data-name=error]').textContent.includes('connection refused')) return false;
			return parseInt(r.querySelector('[data-name=pending]').textContent.replace(/\D/g, ''), 10) || false;
		})()`)
	}
	first := pending()
	grown := pagePoll[int](t, bctx, p, "error backlog growing", fmt.Sprintf(`(() => {
		const n = parseInt(%s.querySelector('[data-name=pending]').textContent.replace(/\D/g, ''), 10);
		return n >= %d ? n : false;
	})()`, stream, first+20))
	t.Logf("error backlog %d → %d", first, grown)

	// Kafka takes the sessions: connected, and records delivered.
	pagePoll[string](t, bctx, p, "kafka connected and delivering", `(() => {
		const k = document.querySelector('#kafka tr[data-key="kafka/embedded"] [data-name=state]');
		const d = parseFloat(document.querySelector('#delivered .v').textContent.replace(/,/g, ''));
		return k && k.textContent === 'connected' && d > 0 ? k.textContent : false;
	})()`)

	// Charts: uPlot has points, and its canvas carries the lines' colours
	// (accepted #0969da, backlog #9a6700).
	drawn := pagePoll[[]int](t, bctx, p, "charts drawn", `(() => {
		const count = (id, rgb) => {
			const u = window.batonCharts && window.batonCharts[id];
			if (!u || u.data[0].length < 5) return 0;
			const c = u.ctx.canvas, d = u.ctx.getImageData(0, 0, c.width, c.height).data;
			let n = 0;
			for (let i = 0; i < d.length; i += 4) {
				if (Math.abs(d[i] - rgb[0]) + Math.abs(d[i+1] - rgb[1]) + Math.abs(d[i+2] - rgb[2]) < 40 && d[i+3] > 200) n++;
			}
			return n;
		};
		const a = count('chart-rates', [9, 105, 218]), b = count('chart-backlog', [154, 103, 0]);
		return a > 20 && b > 20 ? [a, b] : false;
	})()`)
	t.Logf("chart pixels of the accepted and backlog lines: %v", drawn)

	shot, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if len(shot) < 10_000 {
		t.Errorf("screenshot of %d bytes", len(shot))
	}
	if path := os.Getenv("BATON_STATUS_SCREENSHOT"); path != "" {
		if err := os.WriteFile(path, shot, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// pagePoll waits (up to 30 s) until the JavaScript expression js is truthy
// in the page, and returns its value; on timeout it fails with the page's
// text and baton's log.
func pagePoll[T any](t *testing.T, ctx context.Context, p *crashProc, what, js string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Poll[T](js, chromedp.WithPollingTimeout(30*time.Second), chromedp.WithPollingInterval(100*time.Millisecond)))
	if err != nil {
		body, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`))
		t.Fatalf("%s: %v\npage:\n%s\nbaton stderr:\n%s", what, err, body, crashTail(p.stderr.String(), 2000))
	}
	return v
}
