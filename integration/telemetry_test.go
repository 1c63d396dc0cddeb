package integration

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	colmetricpb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	metricpb "go.opentelemetry.io/proto/otlp/metrics/v1"
	"google.golang.org/protobuf/proto"
)

// seriesValue is the value of the /metrics sample line that starts with
// series (name and labels), and whether there is one.
func seriesValue(text, series string) (float64, bool) {
	for line := range strings.SplitSeq(text, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			return f, err == nil
		}
	}
	return 0, false
}

// TestMetricsHistogramsMove scrapes /metrics before and after traffic: the
// latency histograms (ack, buffer commit, delivery, Kafka produce) and the
// forwarder, stream and runtime series exist and moved, not only their
// names.
func TestMetricsHistogramsMove(t *testing.T) {
	n := startNode(t, "telemetry:\n  metrics_listen: 127.0.0.1:0\n")
	before := metricsText(t, n)
	if _, ok := seriesValue(before, `baton_ack_latency_seconds_count{class="error"}`); ok {
		t.Fatalf("ack latency observed before any envelope:\n%s", before)
	}
	for range 3 {
		if status, body, _ := post(t, n.url+"/api/1/envelope/", []byte(event), authHeader(testKey)); status != 200 {
			t.Fatalf("POST = %d %s", status, body)
		}
	}
	waitBalanced(t, n, 10*time.Second)
	after := metricsText(t, n)

	atLeast := func(series string, min float64) {
		t.Helper()
		v, ok := seriesValue(after, series)
		if !ok || v < min {
			t.Errorf("%s = %v (present %v), want ≥ %v", series, v, ok, min)
		}
	}
	atLeast(`baton_ack_latency_seconds_count{class="error"}`, 3)
	atLeast(`baton_ack_latency_seconds_bucket{class="error",le="+Inf"}`, 3)
	atLeast(`baton_delivery_latency_seconds_count{route="error"}`, 3)
	atLeast(`baton_forward_attempts_total{route="error"}`, 1)
	atLeast(`baton_buffer_commit_latency_seconds_count`, 1)
	atLeast(`baton_kafka_produce_latency_seconds_count{cluster="embedded"}`, 1)
	atLeast(`baton_buffer_stream_drained_records_total{class="error",kind="class",partition="0"}`, 3)
	atLeast(`baton_buffer_stream_pending_records{class="error",kind="class",partition="0"}`, 0)
	atLeast(`baton_buffer_stream_oldest_age_seconds{class="error",kind="class",partition="0"}`, 0)
	atLeast(`baton_buffer_full`, 0)
	atLeast(`go_goroutines`, 10)
	atLeast(`process_resident_memory_bytes`, 1<<20)
	atLeast(`process_open_fds`, 3)
	// The ack latency's sum is in seconds and under the test's deadline.
	if sum, _ := seriesValue(after, `baton_ack_latency_seconds_sum{class="error"}`); sum <= 0 || sum > 10 {
		t.Errorf("ack latency sum %v s, want (0, 10]", sum)
	}
	for _, want := range []string{"# TYPE baton_ack_latency_seconds histogram", "# TYPE baton_delivery_latency_seconds histogram", "# TYPE baton_accepted_records_total counter"} {
		if !strings.Contains(after, want+"\n") {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if strings.Contains(after, "otel_scope_name") || strings.Contains(after, "target_info") {
		t.Errorf("/metrics carries the exporter's scope or target labels:\n%s", after)
	}
}

// otlpReceiver is an OTLP/HTTP metrics receiver: it decodes every push with
// the official proto types and keeps the last one.
type otlpReceiver struct {
	srv *httptest.Server

	mu      sync.Mutex
	pushes  int
	last    *colmetricpb.ExportMetricsServiceRequest
	headers http.Header
	path    string
}

func startOTLPReceiver(t *testing.T) *otlpReceiver {
	t.Helper()
	rc := &otlpReceiver{}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, err := io.ReadAll(req.Body)
		if err != nil || req.Header.Get("Content-Type") != "application/x-protobuf" {
			http.Error(w, "bad push", http.StatusBadRequest)
			return
		}
		var m colmetricpb.ExportMetricsServiceRequest
		if err := proto.Unmarshal(body, &m); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		rc.mu.Lock()
		rc.pushes++
		rc.last, rc.headers, rc.path = &m, req.Header.Clone(), req.URL.Path
		rc.mu.Unlock()
		w.Header().Set("Content-Type", "application/x-protobuf")
		out, _ := proto.Marshal(&colmetricpb.ExportMetricsServiceResponse{})
		_, _ = w.Write(out)
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

// metric returns the pushed metric called name from the last push.
func (rc *otlpReceiver) metric(name string) (*metricpb.Metric, http.Header, string) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.last == nil {
		return nil, nil, ""
	}
	for _, rm := range rc.last.ResourceMetrics {
		for _, sm := range rm.ScopeMetrics {
			for _, m := range sm.Metrics {
				if m.Name == name {
					return m, rc.headers, rc.path
				}
			}
		}
	}
	return nil, rc.headers, rc.path
}

// waitAckPushed polls the receiver until a push carries the ack latency
// histogram with at least n observations of class error.
func waitAckPushed(t *testing.T, rc *otlpReceiver, n uint64, timeout time.Duration) (http.Header, string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		m, h, path := rc.metric("baton_ack_latency_seconds")
		if m != nil && m.GetHistogram() != nil {
			for _, dp := range m.GetHistogram().DataPoints {
				for _, a := range dp.Attributes {
					if a.Key == "class" && a.Value.GetStringValue() == "error" && dp.Count >= n {
						return h, path
					}
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no push with %d ack latencies of class error within %s (pushes: %d)", n, timeout, rc.pushes)
		}
		time.Sleep(20 * time.Millisecond) // polling the condition, with a deadline
	}
}

// TestOTLPPush checks telemetry.otlp_endpoint, otlp_headers and
// otlp_interval: a receiver the test runs gets Baton's metrics (decoded
// with go.opentelemetry.io/proto/otlp), with the configured header, well
// before the SDK's default 60s period, and the runtime figures with them.
func TestOTLPPush(t *testing.T) {
	rc := startOTLPReceiver(t)
	n := startNode(t, "telemetry:\n  otlp_endpoint: "+rc.srv.URL+"/custom/v1/metrics\n  otlp_headers: {x-baton-token: s3cret}\n  otlp_interval: 100ms\n")
	if n.r.MetricsAddr() != nil {
		t.Fatal("/metrics served without telemetry.metrics_listen")
	}
	for range 2 {
		if status, body, _ := post(t, n.url+"/api/1/envelope/", []byte(event), authHeader(testKey)); status != 200 {
			t.Fatalf("POST = %d %s", status, body)
		}
	}
	h, path := waitAckPushed(t, rc, 2, 10*time.Second)
	if got := h.Get("X-Baton-Token"); got != "s3cret" {
		t.Errorf("push header x-baton-token = %q, want s3cret (telemetry.otlp_headers)", got)
	}
	if path != "/custom/v1/metrics" {
		t.Errorf("pushed to %q, want the path of telemetry.otlp_endpoint", path)
	}
	for _, name := range []string{"baton_accepted_records_total", "baton_buffer_commit_latency_seconds", "baton_delivery_latency_seconds", "go_goroutines", "process_resident_memory_bytes"} {
		waitPushed(t, rc, name, 10*time.Second)
	}
	m, _, _ := rc.metric("baton_accepted_records_total")
	if m.GetSum() == nil || !m.GetSum().IsMonotonic {
		t.Errorf("baton_accepted_records_total pushed as %T, want a monotonic sum", m.Data)
	}
}

// TestOTLPPushFromEnvironment checks that with no otlp_endpoint the
// exporter's own OTEL_EXPORTER_OTLP_* variables turn push on.
func TestOTLPPushFromEnvironment(t *testing.T) {
	rc := startOTLPReceiver(t)
	t.Setenv("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", rc.srv.URL+"/v1/metrics")
	t.Setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-from-env=yes")
	t.Setenv("OTEL_METRIC_EXPORT_INTERVAL", "100")
	n := startNode(t, "")
	if status, body, _ := post(t, n.url+"/api/1/envelope/", []byte(event), authHeader(testKey)); status != 200 {
		t.Fatalf("POST = %d %s", status, body)
	}
	h, _ := waitAckPushed(t, rc, 1, 10*time.Second)
	if h.Get("X-From-Env") != "yes" {
		t.Errorf("push headers %v lack OTEL_EXPORTER_OTLP_HEADERS's", h)
	}
}

func waitPushed(t *testing.T, rc *otlpReceiver, name string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if m, _, _ := rc.metric(name); m != nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never pushed", name)
		}
		time.Sleep(20 * time.Millisecond) // polling the condition, with a deadline
	}
}
