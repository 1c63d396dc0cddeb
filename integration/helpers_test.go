package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/valyala/fasthttp"
	"go.uber.org/goleak"

	"github.com/baton-relay/baton/config"
	"github.com/baton-relay/baton/relay"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// fasthttp keeps a coarse clock goroutine for the process lifetime,
		// and a stopped server's worker-pool cleaner sleeps out its period.
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.updateServerDate.func1"),
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*workerPool).Start.func2"),
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*HostClient).connsCleaner"),
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*TCPDialer).tcpAddrsClean"),
		// The baton binary the lane tests share (lanesBinary) goes at exit.
		goleak.Cleanup(func(code int) { removeLanesBinary(); os.Exit(code) }),
	)
}

// settleDialer makes the test, at its very end, wait (at most 5 s) for the
// DNS-cache cleaner goroutine that fasthttp's default dialer starts on the
// first upstream dial; it exits once the cache is empty. Call it first in a
// test that talks to an upstream, so that its cleanup runs after the relays
// of the test have closed.
func settleDialer(t *testing.T) {
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		buf := make([]byte, 1<<20)
		for {
			fasthttp.FlushDNSCache()
			if !bytes.Contains(buf[:runtime.Stack(buf, true)], []byte("fasthttp.(*TCPDialer).tcpAddrsClean")) {
				return
			}
			if time.Now().After(deadline) {
				t.Log("fasthttp's dialer cleaner is still running; goleak may report it")
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
}

// fixtures holds captured SDK requests and Relay's global config
// (testdata/README.md).
const fixtures = "testdata"

// node is one Baton running in this process on loopback.
type node struct {
	t     *testing.T
	r     *relay.Relay
	url   string // http://127.0.0.1:port
	kafka string // embedded broker address, if any
	dir   string
}

// startNode runs a Baton whose config is the embedded default overlaid with
// extra (YAML), listening on a free port with a fresh buffer directory and,
// when the routes use it, an embedded broker on a free port.
func startNode(t *testing.T, extra string) *node {
	t.Helper()
	return startNodeIn(t, t.TempDir(), extra)
}

func startNodeIn(t *testing.T, dir, extra string) *node {
	t.Helper()
	base := fmt.Sprintf("server:\n  listen: 127.0.0.1:0\nbuffer:\n  dir: %s\n  reserve_bytes: 1MiB\nkafka:\n  embedded:\n    listen: 127.0.0.1:0\n", dir)
	return runNode(t, loadConfig(t, base, extra), dir, nil)
}

// loadConfig loads the embedded default with base and then extra (YAML)
// laid over it, as two config files.
func loadConfig(t *testing.T, base, extra string) config.Config {
	t.Helper()
	files := t.TempDir()
	basePath, extraPath := filepath.Join(files, "base.yml"), filepath.Join(files, "extra.yml")
	if err := os.WriteFile(basePath, []byte(base), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(extraPath, []byte(extra), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(basePath, extraPath)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	return cfg
}

// runNode starts a Baton on cfg whose buffer is in dir; its log (warnings
// and up) goes to the test log and, when set, to logs too.
func runNode(t *testing.T, cfg config.Config, dir string, logs io.Writer) *node {
	t.Helper()
	var out io.Writer = testWriter{t}
	if logs != nil {
		out = io.MultiWriter(out, logs)
	}
	log := slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: slog.LevelWarn}))
	r, err := relay.New(cfg, relay.Settings{Logger: log, Version: "test", DrainTimeout: 2 * time.Second})
	if err != nil {
		t.Fatalf("relay.New: %v", err)
	}
	if err := r.Start(); err != nil {
		t.Fatalf("relay.Start: %v", err)
	}
	n := &node{t: t, r: r, url: "http://" + r.Addr().String(), kafka: r.KafkaAddr(), dir: dir}
	t.Cleanup(func() { n.close() })
	return n
}

func (n *node) close() {
	if n.r != nil {
		if err := n.r.Close(); err != nil {
			n.t.Errorf("relay.Close: %v", err)
		}
		n.r = nil
	}
}

// testWriter sends relay logs to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

const testKey = "a7c3e9f1b5d24680ace13579bdf02468"

// sendRequest sends one request (no body when body is "") and returns
// status, body and headers.
func sendRequest(t *testing.T, method, url, body string, headers map[string]string) (int, string, http.Header) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	// A kept-alive connection of the shared client may point at a port a
	// killed process of an earlier test had: marked idempotent (the key is
	// not sent), the request is retried on a fresh connection instead of
	// failing with "connection reset by peer".
	req.Header["X-Idempotency-Key"] = nil
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

// post sends body to url with the given headers and returns status, body
// and headers.
func post(t *testing.T, url string, body []byte, headers map[string]string) (int, string, http.Header) {
	t.Helper()
	return sendRequest(t, http.MethodPost, url, string(body), headers)
}

func authHeader(key string) map[string]string {
	return map[string]string{"X-Sentry-Auth": "Sentry sentry_key=" + key + ", sentry_version=7, sentry_client=baton-test/1.0"}
}

// consume reads at least n records from topic (from the beginning), failing
// the test after timeout.
func consume(t *testing.T, brokers, topic string, n int, timeout time.Duration) []*kgo.Record {
	t.Helper()
	return consumeUntil(t, brokers, topic, timeout, func(recs []*kgo.Record) bool { return len(recs) >= n })
}

// consumeUntil reads topic from the beginning until done says the records
// read so far are enough, failing the test after timeout.
func consumeUntil(t *testing.T, brokers, topic string, timeout time.Duration, done func([]*kgo.Record) bool) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var recs []*kgo.Record
	for !done(recs) {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("topic %s: only %d records after %s", topic, len(recs), timeout)
		}
		fs.EachError(func(topic string, p int32, err error) {
			t.Logf("fetch %s/%d: %v", topic, p, err)
		})
		recs = append(recs, fs.Records()...)
	}
	return recs
}

// waitBalanced waits until nothing is pending and the accounting identity
// holds, and returns the final stats.
func waitBalanced(t *testing.T, n *node, timeout time.Duration) relay.Stats {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		st := n.r.Stats()
		if st.Pending == 0 && st.Balanced {
			return st
		}
		if time.Now().After(deadline) {
			b, _ := json.MarshalIndent(st, "", "  ")
			t.Fatalf("not balanced after %s:\n%s", timeout, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func header(rec *kgo.Record, key string) string {
	for _, h := range rec.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}
