package integration

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/baton-relay/baton/relay"
	"github.com/baton-relay/baton/relay/record"
)

// TestMetricsEndpoint checks telemetry.metrics_listen: Prometheus text with
// the same counts as the stats endpoint.
func TestMetricsEndpoint(t *testing.T) {
	n := startNode(t, "telemetry:\n  metrics_listen: 127.0.0.1:0\n")
	if status, body, _ := post(t, n.url+"/api/1/envelope/", []byte(event), authHeader(testKey)); status != 200 {
		t.Fatalf("POST = %d %s", status, body)
	}
	post(t, n.url+"/api/1/envelope/", []byte(event), nil) // one rejection: no auth
	waitBalanced(t, n, 10*time.Second)

	expectMetrics(t, n,
		`baton_accepted_records_total{class="error"} 1`,
		`baton_delivered_records_total{class="error"} 1`,
		`baton_rejected_requests_total{reason="auth"} 1`,
		"baton_buffer_pending_records 0",
		"baton_ready 1",
		"# TYPE baton_buffer_commits_total counter",
	)
}

// metricsText fetches n's /metrics.
func metricsText(t *testing.T, n *node) string {
	t.Helper()
	resp, err := http.Get("http://" + n.r.MetricsAddr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// expectMetrics fetches n's /metrics and fails for every wanted line it
// lacks.
func expectMetrics(t *testing.T, n *node, lines ...string) {
	t.Helper()
	text := metricsText(t, n)
	for _, want := range lines {
		if !strings.Contains(text, want+"\n") {
			t.Errorf("/metrics lacks %q:\n%s", want, text)
		}
	}
}

// TestBufferInspect: what a stopped Baton left in its buffer is visible to
// `baton buffer inspect` (relay.InspectBuffer), without opening it for
// writing.
func TestBufferInspect(t *testing.T) {
	dir := t.TempDir()
	n := startNodeIn(t, dir, "upstreams:\n  down:\n    urls: [\"http://127.0.0.1:1\"]\nroutes:\n  default:\n    upstream: down\n")
	for range 3 {
		if status, body, _ := post(t, n.url+"/api/1/envelope/", []byte(event), authHeader(testKey)); status != 200 {
			t.Fatalf("POST = %d %s", status, body)
		}
	}
	n.close()
	streams, err := relay.InspectBuffer(dir)
	if err != nil {
		t.Fatal(err)
	}
	var pending, items int64
	for _, s := range streams {
		if record.Stream(s.Stream).Class().String() == "error" {
			pending += s.Pending
			items += s.PendingWeight
			if s.Pending > 0 && (s.Oldest.IsZero() || s.PendingBytes <= 0) {
				t.Errorf("stream %d: %+v", s.Stream, s)
			}
		}
	}
	if pending != 3 || items != 3 {
		t.Fatalf("inspect shows %d pending error records of %d items, want 3 of 3: %+v", pending, items, streams)
	}
}
