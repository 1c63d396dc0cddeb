package relay

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"syscall"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttputil"

	"github.com/baton-relay/baton/config"
	"github.com/baton-relay/baton/relay/internal/testutil"
)

// startTestRelayWith runs a relay on an in-memory listener with durability
// ("strict" or "relaxed") and the embedded broker, extra YAML appended and
// the config then changed by edit (when not nil); it returns a client bound
// to it.
func startTestRelayWith(tb testing.TB, durability, extra string, edit func(*config.Config)) (*Relay, *fasthttp.HostClient) {
	tb.Helper()
	yml := fmt.Sprintf("buffer:\n  dir: %s\n  reserve_bytes: 1MiB\n  durability: %s\nkafka:\n  embedded:\n    listen: 127.0.0.1:0\n", tb.TempDir(), durability) + extra
	cfg, err := config.Parse("test.yml", []byte(yml))
	if err != nil {
		tb.Fatal(err)
	}
	if edit != nil {
		edit(&cfg)
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
		b.Run("telemetry="+tc.name, func(b *testing.B) { benchIngestWith(b, "relaxed", tc.yml, nil) })
	}
}

// BenchmarkIngestTracing is BenchmarkIngest (relaxed) with telemetry off,
// then with OTLP push to a receiver in the process (which reads and
// discards) at trace_sample_ratio 0 (the tracer on, no request sampled),
// 0.01 (the default) and 1, back to back: what spans cost the ingest
// path, forwarding and export included (cpu-us/op is the process's).
func BenchmarkIngestTracing(b *testing.B) {
	rc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		_, _ = io.Copy(io.Discard, req.Body)
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	b.Cleanup(rc.Close)
	for _, tc := range []struct{ name, yml string }{
		{"off", ""},
		{"ratio=0", "0"},
		{"ratio=0.01", "0.01"},
		{"ratio=1", "1"},
	} {
		yml := ""
		if tc.yml != "" {
			yml = "telemetry:\n  otlp_endpoint: " + rc.URL + "/v1/metrics\n  trace_sample_ratio: " + tc.yml + "\n"
		}
		b.Run("tracing="+tc.name, func(b *testing.B) { benchIngestWith(b, "relaxed", yml, nil) })
	}
}

// BenchmarkIngestNormalize is BenchmarkIngest in static mode with
// normalization.level default (events normalized and scrubbed with the
// project's datascrubbingSettings) and disabled; cpu-us/op is the
// process's CPU time (user + system) per envelope, the broker's included.
// The envelope is the load tool's shape (testutil.JSErrorEnvelope: frames
// with context lines and escaped strings), which real SDKs send.
func BenchmarkIngestNormalize(b *testing.B) {
	for _, level := range []string{"disabled", "default"} {
		b.Run("level="+level, func(b *testing.B) {
			benchIngestBody(b, testutil.JSErrorEnvelope(), "relaxed", "mode: static\nnormalization: {level: "+level+"}\n"+
				"projects: {\"1\": {public_keys: [a7c3e9f1b5d24680ace13579bdf02468]}}\n", func(cfg *config.Config) {
				p := cfg.Projects["1"] // as a projects/1.json with Relay's default scrubbing
				p.Relay = []byte(`{"config": {"datascrubbingSettings": {"scrubData": true, "scrubDefaults": true}}}`)
				cfg.Projects["1"] = p
			})
		})
	}
}

// cpuTime is the process's user + system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func benchIngest(b *testing.B, durability string) { benchIngestWith(b, durability, "", nil) }

func benchIngestWith(b *testing.B, durability, extra string, edit func(*config.Config)) {
	benchIngestBody(b, testutil.ErrorEnvelope(), durability, extra, edit)
}

func benchIngestBody(b *testing.B, body []byte, durability, extra string, edit func(*config.Config)) {
	_, c := startTestRelayWith(b, durability, extra, edit)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	b.SetParallelism(32) // 64 concurrent requests on 2 cores
	b.ResetTimer()
	cpu := cpuTime()
	defer func() {
		b.ReportMetric(float64((cpuTime()-cpu).Microseconds())/float64(b.N), "cpu-us/op")
	}()
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
