package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/valyala/fasthttp"
	"go.uber.org/goleak"
)

// processWide are fasthttp's package-level singletons (the default dialer's
// address cache cleaner and the server Date updater): one per process, not a leak.
var processWide = []goleak.Option{
	goleak.IgnoreTopFunction("github.com/valyala/fasthttp.(*TCPDialer).tcpAddrsClean"),
	goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.updateServerDate.func1"),
}

// TestMain fails the package if goroutines outlive the tests. fasthttp's
// per-client connection cleaners exit up to MaxIdleConnDuration (1 s) after
// the last connection closed, so leaks are polled for up to 3 s.
func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" { // started by startNoopChild: be baton-load
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
		stop()
		os.Exit(code)
	}
	code := m.Run()
	if code == 0 {
		var err error
		for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			if err = goleak.Find(processWide...); err == nil {
				break
			}
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "goleak: goroutines leaked after the tests:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// fixtureDir holds the captured SDK requests (testdata/README.md).
const fixtureDir = "testdata/sdk-envelopes"

// serve runs h on 127.0.0.1:0 until the test ends and returns its base URL.
func serve(t *testing.T, h fasthttp.RequestHandler) target {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	srv := &fasthttp.Server{Handler: h, DisableHeaderNamesNormalizing: true, CloseOnShutdown: true, MaxIdleWorkerDuration: time.Second, MaxRequestBodySize: 8 << 20}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		if err := srv.Shutdown(); err != nil {
			t.Errorf("shutdown test server: %v", err)
		}
		_ = ln.Close() // Shutdown misses a Serve that has not started yet
		<-done
	})
	tg, err := parseTarget("http://" + ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	return tg
}

func synthetic(t *testing.T, pool int) *payloadSet {
	t.Helper()
	set, err := buildPayloads(mixSynthetic, synthSpec{count: pool, size: 5120, project: 1,
		key: "a7c3e9f1b5d24680ace13579bdf02468", dsnHost: "127.0.0.1:3000"}, "")
	if err != nil {
		t.Fatal(err)
	}
	return set
}

// eventIDs extracts the envelope header's and the event payload's event_id.
func eventIDs(t *testing.T, body []byte) (header, payload string) {
	lines := bytes.SplitN(body, []byte("\n"), 3)
	if len(lines) != 3 {
		t.Errorf("envelope has %d lines, want header, item header and payload", len(lines))
		return "", ""
	}
	var h struct {
		EventID string `json:"event_id"`
	}
	if err := json.Unmarshal(lines[0], &h); err != nil {
		t.Errorf("envelope header is not JSON: %v", err)
	}
	var p struct {
		EventID string `json:"event_id"`
	}
	if err := json.Unmarshal(bytes.TrimSuffix(lines[2], []byte("\n")), &p); err != nil {
		t.Errorf("event payload is not JSON: %v", err)
	}
	return h.EventID, p.EventID
}

// TestLoadAgainstFlakyServer checks the counters, status breakdown, latency
// and event ids against what the server itself saw. Every 10th request is 503.
func TestLoadAgainstFlakyServer(t *testing.T) {
	var (
		mu         sync.Mutex
		ids        = map[string]int{}
		remotes    = map[string]bool{}
		total, bad atomic.Uint64
		bodyBytes  atomic.Uint64
	)
	tg := serve(t, func(ctx *fasthttp.RequestCtx) {
		hid, pid := eventIDs(t, ctx.PostBody())
		if hid != pid || !isHex32(hid) {
			t.Errorf("header event_id %q and payload event_id %q must be the same 32-hex id", hid, pid)
		}
		if string(ctx.Path()) != "/api/1/envelope/" || !strings.Contains(string(ctx.Request.Header.Peek("X-Sentry-Auth")), "sentry_key=a7c3e9f1b5d24680ace13579bdf02468") {
			t.Errorf("unexpected path %q or auth %q", ctx.Path(), ctx.Request.Header.Peek("X-Sentry-Auth"))
		}
		mu.Lock()
		ids[hid]++
		remotes[ctx.RemoteAddr().String()] = true
		mu.Unlock()
		bodyBytes.Add(uint64(len(ctx.PostBody())))
		if total.Add(1)%10 == 0 {
			bad.Add(1)
			ctx.SetStatusCode(fasthttp.StatusServiceUnavailable)
			return
		}
		ctx.SetBodyString(`{"id":"x"}`)
	})
	const conns = 8
	res, err := runLoad(context.Background(), loadSpec{label: "test", target: tg, connections: conns,
		duration: 1500 * time.Millisecond, timeout: 5 * time.Second, payloads: synthetic(t, 4)})
	if err != nil {
		t.Fatal(err)
	}
	if res.Sent < 100 {
		t.Fatalf("only %d requests sent in 1.5 s", res.Sent)
	}
	if res.TransportErrors != 0 {
		t.Errorf("transport errors %d (%v), want 0", res.TransportErrors, res.ErrorSamples)
	}
	if got := res.Accepted + res.Non2xx["503"] + res.TransportErrors; got != res.Sent {
		t.Errorf("accepted %d + 503 %d + errors %d = %d, want sent %d", res.Accepted, res.Non2xx["503"], res.TransportErrors, got, res.Sent)
	}
	if len(res.Non2xx) != 1 || res.Non2xx["503"] != bad.Load() {
		t.Errorf("non-2xx %v, want only 503:%d", res.Non2xx, bad.Load())
	}
	if res.Sent != total.Load() || res.Accepted != total.Load()-bad.Load() || res.SyntheticAccepted != res.Accepted {
		t.Errorf("sent %d accepted %d synthetic accepted %d; server saw %d requests, %d answered 503",
			res.Sent, res.Accepted, res.SyntheticAccepted, total.Load(), bad.Load())
	}
	if res.BodyBytes != bodyBytes.Load() {
		t.Errorf("body bytes %d, server read %d", res.BodyBytes, bodyBytes.Load())
	}
	l := res.Latency
	if !(l.P50 > 0 && l.P50 <= l.P90 && l.P90 <= l.P99 && l.P99 <= l.Max) {
		t.Errorf("latency percentiles not positive and monotone: %+v", l)
	}
	if res.AcceptedPerSec <= 0 || res.BodyMBPerSec <= 0 {
		t.Errorf("rates must be positive: %+v", res)
	}
	if len(ids) != int(total.Load()) {
		t.Errorf("%d distinct event ids for %d requests", len(ids), total.Load())
	}
	if res.ConnectionsOpened != conns || len(remotes) != conns {
		t.Errorf("connections opened %d, server saw %d client addresses; want exactly %d", res.ConnectionsOpened, len(remotes), conns)
	}
}

type capturedRequest struct {
	path, query string
	rawHeaders  string
	chunked     bool
	bodySHA     [32]byte
}

// TestFixtureReplay checks that --mix fixtures sends every captured request
// with its path, query, headers (names in the client's case) and wire body.
func TestFixtureReplay(t *testing.T) {
	var mu sync.Mutex
	var got []capturedRequest
	tg := serve(t, func(ctx *fasthttp.RequestCtx) {
		c := capturedRequest{
			path: string(ctx.Path()), query: string(ctx.QueryArgs().QueryString()),
			rawHeaders: string(ctx.Request.Header.RawHeaders()),
			chunked:    ctx.Request.Header.ContentLength() == -1,
			bodySHA:    sha256.Sum256(ctx.PostBody()),
		}
		mu.Lock()
		got = append(got, c)
		mu.Unlock()
	})
	set, err := buildPayloads(mixFixtures, synthSpec{}, fixtureDir)
	if err != nil {
		t.Fatal(err)
	}
	res, err := runLoad(context.Background(), loadSpec{label: "fixtures", target: tg, connections: 2,
		duration: time.Second, timeout: 5 * time.Second, payloads: set})
	if err != nil {
		t.Fatal(err)
	}
	if res.Accepted == 0 || res.Accepted != res.Sent || res.SyntheticAccepted != 0 {
		t.Fatalf("sent %d accepted %d synthetic %d: want all accepted, none synthetic", res.Sent, res.Accepted, res.SyntheticAccepted)
	}
	want := readFixturesIndependently(t)
	seen := map[string]bool{}
	for _, c := range got {
		f, ok := want[c.bodySHA]
		if !ok {
			t.Fatalf("request to %s carries a body that matches no fixture's wire bytes", c.path)
		}
		if !seen[f.File] {
			checkReplay(t, f, c)
		}
		seen[f.File] = true
	}
	if len(seen) != len(want) {
		t.Errorf("replayed %d of %d fixtures", len(seen), len(want))
	}
}

func checkReplay(t *testing.T, f fixtureMeta, c capturedRequest) {
	t.Helper()
	if c.path != f.Request.Path || c.query != f.Request.Query {
		t.Errorf("%s: sent %s?%s, captured %s?%s", f.File, c.path, c.query, f.Request.Path, f.Request.Query)
	}
	if c.chunked != f.Request.Chunked {
		t.Errorf("%s: chunked %v, captured %v", f.File, c.chunked, f.Request.Chunked)
	}
	lines := strings.Split(c.rawHeaders, "\r\n")
	hasName := func(name string) bool {
		return slices.ContainsFunc(lines, func(l string) bool { return strings.HasPrefix(strings.ToLower(l), strings.ToLower(name)+":") })
	}
	for _, h := range f.Request.Headers {
		if hopHeaders[strings.ToLower(h[0])] {
			continue
		}
		sent := slices.Contains(lines, h[0]+": "+h[1])
		if canonicalOnly[strings.ToLower(h[0])] {
			sent = slices.ContainsFunc(lines, func(l string) bool { return strings.EqualFold(l, h[0]+": "+h[1]) })
		}
		if !sent {
			t.Errorf("%s: header %q: %q not sent as captured; raw headers:\n%s", f.File, h[0], h[1], c.rawHeaders)
		}
	}
	if !hasCaptured(f, "Content-Type") && hasName("Content-Type") {
		t.Errorf("%s: sent a Content-Type the SDK did not send", f.File)
	}
	if !hasCaptured(f, "User-Agent") && hasName("User-Agent") {
		t.Errorf("%s: sent a User-Agent the SDK did not send", f.File)
	}
}

// canonicalOnly are the headers fasthttp always writes with canonical name
// case (it keeps them in dedicated fields); every other name keeps its case.
var canonicalOnly = map[string]bool{"user-agent": true, "content-type": true, "connection": true}

func hasCaptured(f fixtureMeta, name string) bool {
	return slices.ContainsFunc(f.Request.Headers, func(h [2]string) bool { return strings.EqualFold(h[0], name) })
}

// readFixturesIndependently indexes the fixtures by the sha256 of the bytes
// that must go on the wire (the .gz file where there is one).
func readFixturesIndependently(t *testing.T) map[[32]byte]fixtureMeta {
	t.Helper()
	names, _ := filepath.Glob(filepath.Join(fixtureDir, "*.json"))
	out := map[[32]byte]fixtureMeta{}
	for _, n := range names {
		raw, err := os.ReadFile(n)
		if err != nil {
			t.Fatal(err)
		}
		var m fixtureMeta
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatalf("%s: %v", n, err)
		}
		wire := m.File
		if m.WireFile != nil {
			wire = *m.WireFile
		}
		body, err := os.ReadFile(filepath.Join(fixtureDir, wire))
		if err != nil {
			t.Fatal(err)
		}
		out[sha256.Sum256(body)] = m
	}
	if len(out) < 20 {
		t.Fatalf("found only %d fixtures in %s", len(out), fixtureDir)
	}
	return out
}

// TestKafkaDelivery runs the whole benchmark against a fake relay that
// forwards accepted envelopes to a kfake cluster 300 ms late and loses every
// 50th one: the report must count arrivals per topic, see the backlog at the
// end of the load and report exactly the lost records as missing.
func TestKafkaDelivery(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "baton.error", "baton.transaction", "unrelated"))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	addr := cluster.ListenAddrs()[0]
	prod, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ProducerLinger(time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	// Records from before the run must not be counted.
	seed := []*kgo.Record{{Topic: "baton.error", Value: []byte("old")}, {Topic: "baton.transaction", Value: []byte("old")}, {Topic: "unrelated", Value: []byte("x")}}
	if err := prod.ProduceSync(context.Background(), seed...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	relay := newFakeRelay(prod, 300*time.Millisecond)
	defer relay.stop()
	tg := serve(t, relay.handle)
	o := options{url: tg.String(), connections: 4, duration: time.Second, timeout: 5 * time.Second, runs: 1,
		mix: mixSynthetic, size: 2048, pool: 2, project: 1, key: "a7c3e9f1b5d24680ace13579bdf02468",
		kafka: addr, drainSettle: time.Second, drainTimeout: 10 * time.Second, quiet: true}
	rep, err := benchmark(context.Background(), o, nil)
	if err != nil {
		t.Fatal(err)
	}
	run := rep.Runs[0]
	d := run.Delivery
	accepted := int64(run.Baton.Accepted)
	lost, tx := relay.lost.Load(), relay.tx.Load()
	if accepted < 50 || lost == 0 {
		t.Fatalf("accepted %d, lost %d: the run was too short to test anything", accepted, lost)
	}
	if d.ErrorRecords != accepted-lost || d.ArrivedByTopic["baton.transaction"] != tx || d.Arrived != accepted-lost+tx {
		t.Errorf("arrived %d (%v), error records %d; want %d error + %d transaction", d.Arrived, d.ArrivedByTopic, d.ErrorRecords, accepted-lost, tx)
	}
	if _, ok := d.ArrivedByTopic["unrelated"]; ok {
		t.Errorf("counted a topic outside baton.*: %v", d.ArrivedByTopic)
	}
	if d.Expected == nil || *d.Expected != accepted || *d.Missing != lost || d.OK() || !strings.Contains(rep.failure(), "missing") {
		t.Errorf("expected %v missing %v ok %v; want expected %d, missing %d, not ok", d.Expected, d.Missing, d.OK(), accepted, lost)
	}
	if d.BacklogAtEnd <= 0 || d.BacklogAtEnd > accepted || d.BacklogSeconds <= 0 {
		t.Errorf("backlog at end %d (%.2fs), arrived at end %d, accepted %d: a 300 ms late relay must leave a backlog",
			d.BacklogAtEnd, d.BacklogSeconds, d.ArrivedAtLoadEnd, accepted)
	}
	if d.DrainRecords != d.Arrived-d.ArrivedAtLoadEnd || d.DrainRecords <= 0 || d.DrainPerSec <= 0 || d.TimedOut {
		t.Errorf("drain %d records at %.0f/s (timed out %v); arrived %d, %d of them by load end", d.DrainRecords, d.DrainPerSec, d.TimedOut, d.Arrived, d.ArrivedAtLoadEnd)
	}
}

// fakeRelay answers 200 at once and produces one baton.error record per
// envelope `delay` later, plus a baton.transaction record for every 7th;
// every 50th error record is lost.
type fakeRelay struct {
	prod      *kgo.Client
	delay     time.Duration
	queue     chan time.Time
	n         atomic.Int64
	lost, tx  atomic.Int64
	wg        sync.WaitGroup
	closeOnce sync.Once
}

func newFakeRelay(prod *kgo.Client, delay time.Duration) *fakeRelay {
	r := &fakeRelay{prod: prod, delay: delay, queue: make(chan time.Time, 1<<20)}
	r.wg.Go(r.forward)
	return r
}

func (r *fakeRelay) handle(ctx *fasthttp.RequestCtx) {
	time.Sleep(time.Duration(rand.IntN(500)) * time.Microsecond) // keep the test's record count modest
	r.queue <- time.Now()
	ctx.SetBodyString(`{"id":"x"}`)
}

func (r *fakeRelay) forward() {
	for at := range r.queue {
		time.Sleep(time.Until(at.Add(r.delay)))
		n := r.n.Add(1)
		if n%50 == 0 {
			r.lost.Add(1)
			continue
		}
		r.prod.Produce(context.Background(), &kgo.Record{Topic: "baton.error", Value: []byte("e")}, nil)
		if n%7 == 0 {
			r.tx.Add(1)
			r.prod.Produce(context.Background(), &kgo.Record{Topic: "baton.transaction", Value: []byte("t")}, nil)
		}
	}
}

func (r *fakeRelay) stop() {
	r.closeOnce.Do(func() { close(r.queue) })
	r.wg.Wait()
}

// TestHistogramQuantiles compares the histogram with exact sorted samples.
func TestHistogramQuantiles(t *testing.T) {
	h := newHistogram()
	var samples []time.Duration
	r := rand.New(rand.NewPCG(1, 2))
	for range 100000 {
		d := time.Duration(r.ExpFloat64() * float64(2*time.Millisecond))
		samples = append(samples, d)
		h.Record(d)
	}
	slices.Sort(samples)
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999} {
		exact := samples[int(q*float64(len(samples)))-1]
		got := h.Quantile(q)
		if diff := float64(got-exact) / float64(exact); diff < -0.01 || diff > 0.01 {
			t.Errorf("q%.3f = %s, exact %s (%.2f%% off, want ≤ 1%%)", q, got, exact, 100*diff)
		}
	}
	if h.Max() != samples[len(samples)-1] || h.Quantile(1) != h.Max() {
		t.Errorf("max %s / q1 %s, want %s", h.Max(), h.Quantile(1), samples[len(samples)-1])
	}
	for _, v := range []uint64{0, 1, 255, 256, 257, 1000, 1 << 40, 1<<63 + 12345} {
		i := bucketOf(v)
		if bucketUpper(i) < v || (i > 0 && bucketUpper(i-1) >= v) {
			t.Errorf("value %d in bucket %d with upper %d (previous upper %d)", v, i, bucketUpper(i), bucketUpper(i-1))
		}
	}
}

// TestCeilingReportJSON runs the tool end to end through run(): the no-op
// ceiling in a child process (the default) and in this process, two runs
// each, a JSON report with a ratio per run and a median.
func TestCeilingReportJSON(t *testing.T) {
	for _, flag := range []string{"--ceiling", "--ceiling-in-process"} {
		t.Run(flag, func(t *testing.T) {
			noop, err := startNoop("127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer noop.Close()
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), []string{"--url", noop.URL(), "--connections", "4", "--duration", "1100ms",
				flag, "--runs", "2", "--json", "--pool", "2"}, &stdout, &stderr)
			if code != 0 {
				t.Fatalf("exit %d, stderr:\n%s", code, stderr.String())
			}
			var rep report
			if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
				t.Fatalf("report is not JSON: %v\n%s", err, stdout.String())
			}
			if len(rep.Runs) != 2 || rep.Median == nil || rep.Median.Ratio == nil || rep.Ceiling == nil {
				t.Fatalf("want 2 runs, a median ratio and a ceiling: %s", stdout.String())
			}
			if child := flag == "--ceiling"; rep.Ceiling.InProcess == child || (rep.Ceiling.PID != 0) != child {
				t.Fatalf("%s: ceiling in process %v, child pid %d", flag, rep.Ceiling.InProcess, rep.Ceiling.PID)
			}
			if pid := rep.Ceiling.PID; pid != 0 {
				if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
					t.Errorf("ceiling child %d still exists after the run (kill 0: %v)", pid, err)
				}
			}
			for _, r := range rep.Runs {
				if r.Ratio == nil || *r.Ratio <= 0 || r.Ceiling.Accepted == 0 || r.Baton.Accepted == 0 {
					t.Errorf("run %d: ratio %v, ceiling accepted %d, baton accepted %d", r.Run, r.Ratio, r.Ceiling.Accepted, r.Baton.Accepted)
				}
			}
			if served := noop.served.Load(); served != rep.Runs[0].Baton.Sent+rep.Runs[1].Baton.Sent {
				t.Errorf("external target served %d, report says %d+%d sent", served, rep.Runs[0].Baton.Sent, rep.Runs[1].Baton.Sent)
			}
			if !strings.Contains(stderr.String(), "[baton 1/2") || !strings.Contains(stderr.String(), "accepted") {
				t.Errorf("no per-second progress on stderr:\n%s", stderr.String())
			}
		})
	}
}

// TestInterruptedDuringCeiling: a Ctrl-C while the ceiling is loaded ends
// the tool cleanly, says it was interrupted and reports no failed run.
func TestInterruptedDuringCeiling(t *testing.T) {
	noop, err := startNoop("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer noop.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 700*time.Millisecond)
	defer cancel()
	var stdout, stderr bytes.Buffer
	start := time.Now()
	code := run(ctx, []string{"--url", noop.URL(), "--connections", "2", "--duration", "10s",
		"--ceiling", "--runs", "2", "--json", "--quiet", "--pool", "2"}, &stdout, &stderr)
	if code != 0 || strings.Contains(stderr.String(), "FAIL") {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr.String())
	}
	if d := time.Since(start); d > 8*time.Second {
		t.Errorf("took %v to stop", d)
	}
	var rep report
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("report is not JSON: %v\n%s", err, stdout.String())
	}
	if !rep.Interrupted || len(rep.Runs) != 0 || noop.served.Load() != 0 {
		t.Errorf("interrupted %v, %d runs, target served %d; want interrupted, no run, nothing sent to the target",
			rep.Interrupted, len(rep.Runs), noop.served.Load())
	}
}

// TestFlagErrors checks that bad flags fail with a message naming the flag.
func TestFlagErrors(t *testing.T) {
	for _, args := range [][]string{{"--connections", "0"}, {"--key", "xyz"}, {"--mix", "all"}, {"--url", "http://h:1/api/1/envelope/"},
		{"--ceiling-in-process", "--ceiling-url", "http://127.0.0.1:1"}} {
		var out, errb bytes.Buffer
		if code := run(context.Background(), args, &out, &errb); code != 2 || !strings.Contains(errb.String(), strings.TrimPrefix(args[0], "--")) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and a message naming the flag", args, code, errb.String())
		}
	}
}

// TestUnreachableTarget checks that refused connections are counted as
// transport errors and make the tool exit 1.
func TestUnreachableTarget(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there any more
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"--url", "http://" + addr, "--connections", "2", "--duration", "300ms", "--json", "--quiet"}, &stdout, &stderr)
	var rep report
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("report is not JSON: %v\n%s", err, stdout.String())
	}
	r := rep.Runs[0].Baton
	if code != 1 || r.TransportErrors == 0 || r.TransportErrors != r.Sent || r.ConnectionsOpened != 0 || len(r.ErrorSamples) == 0 {
		t.Errorf("exit %d, sent %d, transport errors %d (%v), connections %d; want exit 1 and only transport errors",
			code, r.Sent, r.TransportErrors, r.ErrorSamples, r.ConnectionsOpened)
	}
}

// The 100% point of the RSS timeline is the final sample, whatever the
// floating-point end time (0.031225055*100/100 rounds below 0.031225055).
func TestRSSTimelineEndsAtFinalSample(t *testing.T) {
	for _, end := range []float64{0.031225055, 0.1, 0.3, 1.7, 10.000000001} {
		s := &rssSampler{samples: []rssSample{{Seconds: 0.00007, RSSMB: 1}, {Seconds: end, Sent: 1000, RSSMB: 2}}}
		r := s.report()
		if last := r.Timeline[len(r.Timeline)-1]; last.Pct != 100 || last.Sent != 1000 {
			t.Errorf("end %v: the 100%% point is %+v, not the final sample", end, last)
		}
	}
}
