package integration

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	colmetricpb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	metricpb "go.opentelemetry.io/proto/otlp/metrics/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
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

// otlpReceiver is an OTLP/HTTP receiver: it decodes every push with the
// official proto types, keeps the last metrics push and every span, each
// with the x-node header of its push (a test's relays set it apart in
// telemetry.otlp_headers).
type otlpReceiver struct {
	srv *httptest.Server

	mu      sync.Mutex
	pushes  int
	last    *colmetricpb.ExportMetricsServiceRequest
	headers http.Header
	path    string
	spans   []receivedSpan
}

// receivedSpan is one span a relay pushed, with the x-node of its push.
type receivedSpan struct {
	node string
	*tracepb.Span
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
		if strings.HasSuffix(req.URL.Path, "/v1/traces") {
			rc.serveTraces(w, req, body)
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

func (rc *otlpReceiver) serveTraces(w http.ResponseWriter, req *http.Request, body []byte) {
	var m coltracepb.ExportTraceServiceRequest
	if err := proto.Unmarshal(body, &m); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	rc.mu.Lock()
	for _, rs := range m.ResourceSpans {
		for _, ss := range rs.ScopeSpans {
			for _, sp := range ss.Spans {
				rc.spans = append(rc.spans, receivedSpan{req.Header.Get("X-Node"), sp})
			}
		}
	}
	rc.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-protobuf")
	out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	_, _ = w.Write(out)
}

// tracesOf returns the spans received so far of trace id tid.
func (rc *otlpReceiver) tracesOf(tid []byte) []receivedSpan {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	var out []receivedSpan
	for _, sp := range rc.spans {
		if bytes.Equal(sp.TraceId, tid) {
			out = append(out, sp)
		}
	}
	return out
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

// TestTraceThreeBatonChain: an SDK that traces its send (a sampled
// traceparent) posts to Baton A, which forwards to B, B to C, C to a fake
// Sentry. Every Baton pushes its spans to a receiver the test runs: all six
// (ingest and forward on each node) share the SDK's trace id, and each
// parent is the span before it: SDK → A ingest → A forward → B ingest → B
// forward → C ingest → C forward, whose id the fake Sentry receives as
// traceparent. B and C sample nothing of their own (ratio 0): they follow
// A's decision. A traceparent that says not sampled is honoured: A traces
// nothing of it and sends none on, although A samples everything else.
func TestTraceThreeBatonChain(t *testing.T) {
	rc := startOTLPReceiver(t)
	sentry := newFakeUpstream(t)
	tel := func(name string, ratio float64) string {
		return fmt.Sprintf("telemetry:\n  otlp_endpoint: %s/v1/metrics\n  otlp_headers: {x-node: %s}\n  otlp_interval: 100ms\n  trace_sample_ratio: %v\n",
			rc.srv.URL, name, ratio)
	}
	c := startNode(t, tel("C", 0)+fakeUpstreamYAML("next", sentry.url(), "default"))
	b := startNode(t, tel("B", 0)+fakeUpstreamYAML("next", c.url, "default"))
	a := startNode(t, tel("A", 1)+fakeUpstreamYAML("next", b.url, "default"))

	const (
		sdkTrace   = "4bf92f3577b34da6a3ce929d0e0e4736"
		sdkSpan    = "00f067aa0ba902b7"
		unsampled  = "0af7651916cd43dd8448eb211c80319c"
		unsampledP = "00-" + unsampled + "-b7ad6b7169203331-00"
	)
	send := func(tp string) {
		t.Helper()
		h := authHeader(testKey)
		h["traceparent"] = tp
		if status, body, _ := post(t, a.url+"/api/1/envelope/", []byte(event), h); status != 200 {
			t.Fatalf("POST to A = %d %s", status, body)
		}
	}
	waitDelivered := func(n int) []fakeRequest {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for len(sentry.delivered()) < n {
			if time.Now().After(deadline) {
				t.Fatalf("%d envelopes reached the fake Sentry through A → B → C, want %d", len(sentry.delivered()), n)
			}
			time.Sleep(20 * time.Millisecond) // polling the condition, with a deadline
		}
		return sentry.delivered()
	}
	send(unsampledP)
	if got := waitDelivered(1)[0].Header.Get("Traceparent"); got != "" {
		t.Errorf("an unsampled request reached Sentry with traceparent %q", got)
	}
	send("00-" + sdkTrace + "-" + sdkSpan + "-01")
	last := waitDelivered(2)[1]

	tid, _ := hex.DecodeString(sdkTrace)
	var spans []receivedSpan
	deadline := time.Now().Add(15 * time.Second)
	for spans = rc.tracesOf(tid); len(spans) < 6; spans = rc.tracesOf(tid) {
		if time.Now().After(deadline) {
			t.Fatalf("received %d spans of the SDK's trace, want 6: %s", len(spans), spanNames(spans))
		}
		time.Sleep(20 * time.Millisecond) // polling the condition, with a deadline
	}
	find := func(node, name string) receivedSpan {
		t.Helper()
		var found []receivedSpan
		for _, sp := range spans {
			if sp.node == node && sp.Name == name {
				found = append(found, sp)
			}
		}
		if len(found) != 1 {
			t.Fatalf("%d %s spans from %s in the trace, want 1 (trace: %s)", len(found), name, node, spanNames(spans))
		}
		return found[0]
	}
	parent, _ := hex.DecodeString(sdkSpan)
	for _, node := range []string{"A", "B", "C"} {
		in, fwd := find(node, "baton.ingest"), find(node, "baton.forward")
		if !bytes.Equal(in.ParentSpanId, parent) {
			t.Errorf("%s ingest span's parent %x, want %x (the span before it)", node, in.ParentSpanId, parent)
		}
		if in.Kind != tracepb.Span_SPAN_KIND_SERVER || fwd.Kind != tracepb.Span_SPAN_KIND_PRODUCER {
			t.Errorf("%s span kinds: ingest %v, forward %v", node, in.Kind, fwd.Kind)
		}
		var events []string
		for _, e := range in.Events {
			events = append(events, e.Name)
		}
		if got := strings.Join(events, ","); got != "authenticated,decoded,parsed,admitted,framed,committed" {
			t.Errorf("%s ingest span's steps: %s", node, got)
		}
		if !bytes.Equal(fwd.ParentSpanId, in.SpanId) {
			t.Errorf("%s forward span's parent %x, want its ingest span %x", node, fwd.ParentSpanId, in.SpanId)
		}
		if len(fwd.Links) != 1 || !bytes.Equal(fwd.Links[0].SpanId, in.SpanId) || !bytes.Equal(fwd.Links[0].TraceId, tid) {
			t.Errorf("%s forward span's links %v, want its ingest span", node, fwd.Links)
		}
		if fwd.StartTimeUnixNano < in.EndTimeUnixNano-uint64(time.Second) || in.Status.GetCode() == tracepb.Status_STATUS_CODE_ERROR {
			t.Errorf("%s: ingest %v, forward starting at %d", node, in.Status, fwd.StartTimeUnixNano)
		}
		parent = fwd.SpanId
	}
	if want := "00-" + sdkTrace + "-" + hex.EncodeToString(parent) + "-01"; last.Header.Get("Traceparent") != want {
		t.Errorf("fake Sentry got traceparent %q, want C's forward span %q", last.Header.Get("Traceparent"), want)
	}
	// Spans are pushed in the order they end: the unsampled request's
	// would be in by now.
	ut, _ := hex.DecodeString(unsampled)
	if got := rc.tracesOf(ut); len(got) > 0 {
		t.Errorf("a traceparent that says not sampled was traced: %v", got)
	}
}

// spanNames lists spans as node/name, for failure messages.
func spanNames(spans []receivedSpan) string {
	var names []string
	for _, sp := range spans {
		names = append(names, sp.node+"/"+sp.Name)
	}
	return strings.Join(names, " ")
}

// TestTraceJSONLogs runs the baton binary with log_format: json: a
// delivery that fails while its batch is traced logs a line carrying the
// trace_id and span_id of the forward span the receiver gets; the same
// failure of an untraced envelope logs none.
func TestTraceJSONLogs(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the baton binary")
	}
	bin := crashBuildBaton(t)
	rc := startOTLPReceiver(t)
	up := newFakeUpstream(t)
	var reqs atomic.Int64
	up.setAnswer(func(*fakeRequest) fakeAnswer {
		if n := reqs.Add(1); n == 1 || n == 3 { // each envelope's first attempt fails, its retry succeeds
			return fakeAnswer{Status: http.StatusInternalServerError, Body: "{}"}
		}
		return fakeAnswer{Status: http.StatusOK, Body: "{}"}
	})
	dir := t.TempDir()
	cfg := filepath.Join(dir, "baton.yaml")
	yaml := fmt.Sprintf("server: {listen: 127.0.0.1:0}\nbuffer: {dir: %s, reserve_bytes: 1MiB}\n"+
		"telemetry: {log_format: json, otlp_endpoint: %s/v1/metrics, otlp_interval: 100ms, trace_sample_ratio: 0}\n",
		filepath.Join(dir, "data"), rc.srv.URL) + fakeUpstreamYAML("up", up.url(), "default")
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	p := crashStart(t, bin, cfg)
	const tid = "4bf92f3577b34da6a3ce929d0e0e4736"
	h := authHeader(testKey)
	h["traceparent"] = "00-" + tid + "-00f067aa0ba902b7-01"
	if status, body, _ := post(t, p.base+"/api/1/envelope/", []byte(event), h); status != 200 {
		t.Fatalf("POST = %d %s", status, body)
	}
	raw, _ := hex.DecodeString(tid)
	var fwd *receivedSpan
	deadline := time.Now().Add(15 * time.Second)
	for fwd == nil {
		for _, sp := range rc.tracesOf(raw) {
			if sp.Name == "baton.forward" {
				fwd = &sp
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no forward span of the trace within 15s\nstderr:\n%s", crashTail(p.stderr.String(), 4000))
		}
		time.Sleep(20 * time.Millisecond) // polling the condition, with a deadline
	}
	// The second envelope, untraced (ratio 0, no traceparent), fails once too.
	if status, body, _ := post(t, p.base+"/api/1/envelope/", []byte(event), authHeader(testKey)); status != 200 {
		t.Fatalf("POST = %d %s", status, body)
	}
	for len(up.delivered()) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("%d envelopes delivered, want 2", len(up.delivered()))
		}
		time.Sleep(20 * time.Millisecond) // polling the condition, with a deadline
	}
	var traced, plain int
	for line := range strings.Lines(p.stderr.String()) {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) != nil || m["msg"] != "delivery failed; retrying" {
			continue
		}
		if _, ok := m["trace_id"]; !ok {
			plain++
			continue
		}
		traced++
		if m["trace_id"] != tid || m["span_id"] != hex.EncodeToString(fwd.SpanId) {
			t.Errorf("retry line %v, want trace_id %s and span_id %x (the forward span)", m, tid, fwd.SpanId)
		}
	}
	if traced != 1 || plain != 1 {
		t.Errorf("%d traced retry lines, %d without a span; want 1 and 1\nstderr:\n%s", traced, plain, crashTail(p.stderr.String(), 4000))
	}
	if len(fwd.Events) != 1 || fwd.Events[0].Name != "retry" {
		t.Errorf("forward span events %v, want one retry", fwd.Events)
	}
}

// TestTraceIngestSpans: at trace_sample_ratio 1 every request gets an
// ingest span: a store request (converted to an envelope) named by its
// path, answered 200; an envelope refused at the door, with its status and
// the refusal as the span's error.
func TestTraceIngestSpans(t *testing.T) {
	rc := startOTLPReceiver(t)
	n := startNode(t, "telemetry:\n  otlp_endpoint: "+rc.srv.URL+"/v1/metrics\n  otlp_interval: 100ms\n  trace_sample_ratio: 1\n")
	const (
		storeTrace   = "11111111111111111111111111111111"
		refusedTrace = "22222222222222222222222222222222"
	)
	h := authHeader(testKey)
	h["traceparent"] = "00-" + storeTrace + "-1111111111111111-01"
	if status, body, _ := post(t, n.url+"/api/1/store/", []byte(`{"message":"stored"}`), h); status != 200 {
		t.Fatalf("POST /store/ = %d %s", status, body)
	}
	h = authHeader("not a key!")
	h["traceparent"] = "00-" + refusedTrace + "-2222222222222222-01"
	if status, _, _ := post(t, n.url+"/api/1/envelope/", []byte(event), h); status < 400 {
		t.Fatalf("POST with a bad key = %d, want a refusal", status)
	}
	span := func(tid string) receivedSpan {
		t.Helper()
		raw, _ := hex.DecodeString(tid)
		deadline := time.Now().Add(10 * time.Second)
		for {
			for _, sp := range rc.tracesOf(raw) {
				if sp.Name == "baton.ingest" {
					return sp
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("no ingest span of trace %s", tid)
			}
			time.Sleep(20 * time.Millisecond) // polling the condition, with a deadline
		}
	}
	attr := func(sp receivedSpan, key string) string {
		for _, a := range sp.Attributes {
			if a.Key == key {
				if s := a.Value.GetStringValue(); s != "" {
					return s
				}
				return strconv.FormatInt(a.Value.GetIntValue(), 10)
			}
		}
		return ""
	}
	st := span(storeTrace)
	if attr(st, "baton.endpoint") != "/api/1/store/" || attr(st, "http.response.status_code") != "200" ||
		attr(st, "baton.records") != "1" || st.Status.GetCode() == tracepb.Status_STATUS_CODE_ERROR {
		t.Errorf("store span: %v %v", st.Attributes, st.Status)
	}
	ref := span(refusedTrace)
	if code := attr(ref, "http.response.status_code"); code < "400" || ref.Status.GetCode() != tracepb.Status_STATUS_CODE_ERROR ||
		!strings.HasPrefix(ref.Status.GetMessage(), code+" ") {
		t.Errorf("refused span: %v %v", ref.Attributes, ref.Status)
	}
}

// TestOTLPPushFailureLogged: a push to a collector that is not there is
// reported in Baton's own log (structured, naming the setting), not as the
// OTel SDK's bare stderr line.
func TestOTLPPushFailureLogged(t *testing.T) {
	n, logs := authStartNode(t, t.TempDir(), "telemetry:\n  otlp_endpoint: http://127.0.0.1:1/v1/metrics\n  otlp_interval: 100ms\n")
	if status, body, _ := post(t, n.url+"/api/1/envelope/", []byte(event), authHeader(testKey)); status != 200 {
		t.Fatalf("POST = %d %s", status, body)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(logs.String(), "telemetry export failed") {
		if time.Now().After(deadline) {
			t.Fatalf("no export failure in the relay's log:\n%s", logs.String())
		}
		time.Sleep(20 * time.Millisecond) // polling the condition, with a deadline
	}
	if !strings.Contains(logs.String(), "telemetry.otlp_endpoint") {
		t.Errorf("the failure line does not name the setting:\n%s", logs.String())
	}
	// The last push at Close fails too, and Close says so.
	err := n.r.Close()
	n.r = nil
	if err == nil || !strings.Contains(err.Error(), "OTLP export") {
		t.Errorf("Close = %v, want the failed last export", err)
	}
}
