package status

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/baton-relay/baton/relay/telemetry"
)

// fake is a relay whose instruments the test moves by hand.
type fake struct {
	now      time.Time
	accepted float64
	pending  [2]float64 // error stream, partitions 0 and 1
	drained  float64
	retries  float64
	ack      []uint64 // cumulative, bounds ackBounds
}

var ackBounds = []float64{0.001, 0.01, 0.1}

func (f *fake) read(context.Context) (telemetry.Reading, error) {
	part := func(p string) map[string]string {
		return map[string]string{"class": "error", "partition": p, "kind": "class"}
	}
	return telemetry.Reading{
		"baton_accepted_records_total":  {{Attrs: map[string]string{"class": "error"}, Value: f.accepted}},
		"baton_delivered_records_total": {{Attrs: map[string]string{"class": "error"}, Value: f.drained}},
		"baton_dropped_records_total":   {{Attrs: map[string]string{"class": "error", "reason": "invalid"}, Value: 2}},
		"baton_dropped_items_total":     {{Attrs: map[string]string{"class": "error", "reason": "invalid"}, Value: 3}},
		"baton_buffer_pending_records":  {{Value: f.pending[0] + f.pending[1]}},
		"baton_buffer_stream_pending_records": {
			{Attrs: part("0"), Value: f.pending[0]}, {Attrs: part("1"), Value: f.pending[1]}},
		"baton_buffer_stream_oldest_age_seconds": {
			{Attrs: part("0"), Value: 5}, {Attrs: part("1"), Value: 42}},
		"baton_buffer_stream_drained_records_total": {{Attrs: part("0"), Value: f.drained}},
		"baton_forward_retries_total":               {{Attrs: map[string]string{"route": "error", "reason": "failed"}, Value: f.retries}},
		"baton_ack_latency_seconds":                 {{Attrs: map[string]string{"class": "error"}, Bounds: ackBounds, Counts: f.ack}},
		"process_resident_memory_bytes":             {{Value: 50 << 20}},
	}, nil
}

func (f *fake) detail() Detail {
	return Detail{
		Version: "1.2.3", Mode: "proxy", Started: f.now.Add(-time.Minute),
		Routes: map[string]Route{"error": {Kind: "upstream", Name: "relay"}},
		Upstreams: []Upstream{{Name: "relay", Members: []Member{{
			URL: "http://user:secret@10.0.0.1:3000/?token=x", State: "ejected",
			LastError: "connection refused", LastErrorAt: f.now,
		}}}},
	}
}

func newFake(t *testing.T, window time.Duration) (*fake, *Status) {
	t.Helper()
	f := &fake{now: time.Unix(1_800_000_000, 0), ack: make([]uint64, 4)}
	s := New(Options{Read: f.read, Detail: f.detail, Now: func() time.Time { return f.now }, Window: window})
	return f, s
}

func page(t *testing.T, s *Status) Page {
	t.Helper()
	var p struct {
		Page
		// Numbers and nulls of the series, as the page's JS sees them.
		Series struct {
			T      []int64    `json:"t"`
			AckP50 []*float64 `json:"ack_p50_ms"`
			Accept []float64  `json:"accepted"`
		} `json:"series"`
	}
	if err := json.Unmarshal(s.JSON(context.Background()), &p); err != nil {
		t.Fatal(err)
	}
	p.Page.Series = Series{T: p.Series.T}
	for i, v := range p.Series.AckP50 {
		n := num(-1) // null
		if v != nil {
			n = num(*v)
		}
		p.Page.Series.AckP50 = append(p.Page.Series.AckP50, n)
		p.Page.Series.Accepted = append(p.Page.Series.Accepted, num(p.Series.Accept[i]))
	}
	return p.Page
}

func TestSampleRatesStreamsAndLatency(t *testing.T) {
	f, s := newFake(t, 0)
	f.accepted, f.pending = 10, [2]float64{3, 4}
	s.Sample(context.Background())

	f.now = f.now.Add(2 * time.Second)
	f.accepted, f.pending, f.drained, f.retries = 30, [2]float64{8, 9}, 6, 1
	f.ack = []uint64{0, 9, 1, 0} // ten acks: nine of ≤10ms, one ≤100ms
	s.Sample(context.Background())
	p := page(t, s)

	if p.Version != "1.2.3" || p.UptimeS != 60 || !p.Ready || p.Memory.RSS != 50<<20 {
		t.Errorf("headline: %+v", p)
	}
	if p.AcceptedPS != 10 {
		t.Errorf("accepted/s %v, want 10 (20 records in 2s)", p.AcceptedPS)
	}
	if len(p.Streams) != 1 {
		t.Fatalf("streams %+v, want the error class's, partitions summed", p.Streams)
	}
	st := p.Streams[0]
	// Intake is what the stream gained: pending 7 → 17 and drained 0 → 6.
	if st.Pending != 17 || st.OldestAgeS != 42 || st.IntakePS != 8 || st.DrainPS != 3 {
		t.Errorf("stream %+v: want 17 pending, oldest 42s, intake 8/s, drain 3/s", st)
	}
	if st.State != "retrying" || st.Error != "connection refused" || st.Destination != "upstream relay" {
		t.Errorf("stream state %q error %q destination %q: want retrying with the upstream's error", st.State, st.Error, st.Destination)
	}
	if u := p.Upstreams[0].Members[0]; u.URL != "http://10.0.0.1:3000/" || u.State != "ejected" {
		t.Errorf("member %+v: want the URL without credentials or query", u)
	}
	if len(p.Drops) != 1 || p.Drops[0].Records != 2 || p.Drops[0].Items != 3 || p.Drops[0].Reason != "invalid" {
		t.Errorf("drops %+v", p.Drops)
	}
	// p50: rank 5 of 10, in the (1ms, 10ms] bucket holding nine: 1 + 9*5/9.
	if got := p.Series.AckP50; len(got) != 2 || got[0] != -1 || got[1] != 6 {
		t.Errorf("ack p50 series %v, want [null 6]", got)
	}
}

func TestSampleStreamStates(t *testing.T) {
	f, s := newFake(t, 0)
	s.Sample(context.Background())
	if st := page(t, s).Streams[0]; st.State != "idle" {
		t.Errorf("empty stream with a down destination: %q, want idle", st.State)
	}
	f.now = f.now.Add(time.Second)
	f.pending = [2]float64{1, 0}
	s.Sample(context.Background())
	if st := page(t, s).Streams[0]; st.State != "retrying" {
		t.Errorf("backlog behind a down destination: %q, want retrying", st.State)
	}
}

func TestRingKeepsWindow(t *testing.T) {
	f, s := newFake(t, 3*time.Second) // three points at the default 1s
	for i := range 5 {
		f.accepted = float64(i * 10)
		s.Sample(context.Background())
		f.now = f.now.Add(time.Second)
	}
	p := page(t, s)
	start := time.Unix(1_800_000_000, 0).Unix()
	if got := p.Series.T; len(got) != 3 || got[0] != start+2 || got[2] != start+4 {
		t.Errorf("series t %v, want the last three seconds, oldest first", got)
	}
	if got := p.Series.Accepted; len(got) != 3 || got[2] != 10 {
		t.Errorf("accepted series %v", got)
	}
}

func TestHandler(t *testing.T) {
	_, s := newFake(t, 0)
	s.Sample(context.Background())
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	get := func(path string) (string, http.Header) {
		t.Helper()
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
		}
		return string(b), resp.Header
	}
	html, h := get("/")
	if !strings.Contains(html, `<script src="uPlot.iife.min.js">`) || !strings.Contains(h.Get("Content-Security-Policy"), "default-src 'self'") {
		t.Errorf("index: %s %v", html, h)
	}
	for _, f := range []string{"/uPlot.iife.min.js", "/uPlot.min.css", "/status.js", "/status.css"} {
		if b, _ := get(f); len(b) < 100 {
			t.Errorf("%s: %d bytes", f, len(b))
		}
	}
	body, h := get("/api/status")
	if h.Get("Content-Type") != "application/json" || body != string(s.JSON(context.Background())) {
		t.Errorf("api/status %s: %.200s", h.Get("Content-Type"), body)
	}
	if strings.Contains(body, "secret") || strings.Contains(body, "token") {
		t.Errorf("api/status shows credentials: %s", body)
	}
}
