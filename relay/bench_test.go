package relay

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"testing"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttputil"

	"github.com/baton-relay/baton/config"
	"github.com/baton-relay/baton/relay/internal/testutil"
)

// startTestRelay runs a relay on an in-memory listener with the embedded
// default overlaid by extra YAML; it returns a client bound to it.
// startTestRelay starts a relay on an in-memory listener with durability
// ("strict" or "relaxed") and the embedded broker.
// extra is appended to the YAML (more top-level sections).
func startTestRelay(tb testing.TB, durability string, extra ...string) (*Relay, *fasthttp.HostClient) {
	tb.Helper()
	yml := fmt.Sprintf("buffer:\n  dir: %s\n  reserve_bytes: 1MiB\n  durability: %s\nkafka:\n  embedded:\n    listen: 127.0.0.1:0\n", tb.TempDir(), durability)
	for _, e := range extra {
		yml += e
	}
	cfg, err := config.Parse("test.yml", []byte(yml))
	if err != nil {
		tb.Fatal(err)
	}
	ln := fasthttputil.NewInmemoryListener()
	r, err := New(cfg, Settings{Listener: ln, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		tb.Fatal(err)
	}
	if err := r.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := r.Close(); err != nil {
			tb.Error(err)
		}
	})
	c := &fasthttp.HostClient{Addr: "baton", Dial: func(string) (net.Conn, error) { return ln.Dial() }, MaxConns: 256}
	tb.Cleanup(c.CloseIdleConnections) // runs before the relay closes
	return r, c
}

// BenchmarkIngest measures the envelope endpoint end to end in one process:
// HTTP parsing, auth, envelope parsing and split, the durable group-committed
// append (real fsync on the test's temp dir) and the response. Forwarders
// drain into the embedded broker at the same time, as in production.
func BenchmarkIngest(b *testing.B) {
	// Relaxed acks before the fsync: the pair, run back to back, gives the
	// cost of durability as a ratio on one machine state.
	for _, durability := range []string{"strict", "relaxed"} {
		b.Run("durability="+durability, func(b *testing.B) {
			benchIngest(b, durability)
		})
	}
}

// BenchmarkIngestTelemetry is BenchmarkIngest (relaxed, so that fsyncs do
// not hide the CPU cost) with telemetry off and with the Prometheus
// exporter on, back to back: what the instruments cost the ingest path.
func BenchmarkIngestTelemetry(b *testing.B) {
	for _, tc := range []struct{ name, yml string }{
		{"off", ""},
		{"metrics", "telemetry:\n  metrics_listen: 127.0.0.1:0\n"},
	} {
		b.Run("telemetry="+tc.name, func(b *testing.B) { benchIngest(b, "relaxed", tc.yml) })
	}
}

func benchIngest(b *testing.B, durability string, extra ...string) {
	_, c := startTestRelay(b, durability, extra...)
	body := testutil.ErrorEnvelope()
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	b.SetParallelism(32) // 64 concurrent requests on 2 cores
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		defer fasthttp.ReleaseRequest(req)
		defer fasthttp.ReleaseResponse(resp)
		req.SetRequestURI("http://baton/api/1/envelope/")
		req.Header.SetMethod(fasthttp.MethodPost)
		req.Header.Set("X-Sentry-Auth", "Sentry sentry_key=a7c3e9f1b5d24680ace13579bdf02468, sentry_version=7, sentry_client=bench/1.0")
		req.SetBodyRaw(body)
		for pb.Next() {
			if err := c.Do(req, resp); err != nil {
				b.Error(err)
				return
			}
			if resp.StatusCode() != 200 {
				b.Errorf("status %d: %s", resp.StatusCode(), resp.Body())
				return
			}
		}
	})
}
