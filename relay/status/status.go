// Package status serves Baton's status page on the telemetry listener: one
// self-contained page (HTML, CSS, JS and the vendored uPlot chart library,
// embedded) and the JSON it polls, /api/status. The JSON is read from the
// same OTel instruments /metrics exports (telemetry.Read) plus what no
// metric carries (errors, pool members, registration): it is sampled once
// per Interval into a ring buffer of Window for the charts, and served as
// encoded at the last sample, so a poll costs a copy. DESIGN.md
// ("Observability") describes the page and its JSON.
package status

import (
	"context"
	"embed"
	"encoding/json"
	"io/fs"
	"math"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/baton-relay/baton/relay/telemetry"
)

// Defaults of Options.
const (
	// DefaultInterval is how often the page's figures are sampled.
	DefaultInterval = time.Second
	// DefaultWindow is how much history the charts show.
	DefaultWindow = 15 * time.Minute
)

// Options configures New. Read and Detail are required.
type Options struct {
	// Read collects the instruments (telemetry.Telemetry.Read).
	Read func(context.Context) (telemetry.Reading, error)
	// Detail returns what no instrument carries.
	Detail func() Detail
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Interval is the sampling period. Default DefaultInterval.
	Interval time.Duration
	// Window is the charts' history. Default DefaultWindow.
	Window time.Duration
}

// Status samples the relay's figures and serves the page.
type Status struct {
	o    Options
	mu   sync.Mutex // one Sample at a time
	prev *sample    // the previous sample, for rates
	hist map[string]histPrev
	ring ring
	last map[string]latency // last non-empty quantiles per histogram key
	page atomic.Pointer[[]byte]
}

// New returns a Status; Run samples it, Handler serves it.
func New(o Options) *Status {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Interval <= 0 {
		o.Interval = DefaultInterval
	}
	if o.Window <= 0 {
		o.Window = DefaultWindow
	}
	n := max(int(o.Window/o.Interval), 2)
	return &Status{o: o, ring: newRing(n), hist: map[string]histPrev{}, last: map[string]latency{}}
}

// Run samples every Interval until ctx is done.
func (s *Status) Run(ctx context.Context) {
	s.Sample(ctx)
	t := time.NewTicker(s.o.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.Sample(ctx)
		}
	}
}

// Sample reads the instruments once, appends to the charts' history and
// encodes the page's JSON.
func (s *Status) Sample(ctx context.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rd, err := s.o.Read(ctx)
	now := s.o.Now()
	p := s.build(now, rd, s.o.Detail())
	if err != nil {
		p.ReadError = err.Error()
	}
	b, err := json.Marshal(p)
	if err != nil { // only NaN or Inf would do it: numbers are sanitised
		b, _ = json.Marshal(Page{ReadError: err.Error()})
	}
	s.page.Store(&b)
}

// JSON returns the page's JSON as of the last sample.
func (s *Status) JSON(ctx context.Context) []byte {
	if b := s.page.Load(); b != nil {
		return *b
	}
	s.Sample(ctx)
	return *s.page.Load()
}

//go:embed ui
var ui embed.FS

// Handler serves the page at / and its JSON at /api/status.
func (s *Status) Handler() http.Handler {
	files, _ := fs.Sub(ui, "ui")
	static := http.FileServerFS(files)
	mux := http.NewServeMux()
	mux.Handle("GET /", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", "default-src 'self'; style-src 'self' 'unsafe-inline'")
		static.ServeHTTP(w, r)
	}))
	mux.HandleFunc("GET /api/status", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write(s.JSON(r.Context()))
	})
	return mux
}

// num is a float that encodes NaN as null: a chart gap, not an error.
type num float64

func (n num) MarshalJSON() ([]byte, error) {
	f := float64(n)
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return []byte("null"), nil
	}
	return json.Marshal(math.Round(f*1000) / 1000)
}
