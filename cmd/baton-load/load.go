package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// errorBackoff is how long a worker pauses after a transport error, so that a
// target that refuses connections does not turn the tool into a busy loop
// stealing CPU from the server it is measuring.
const errorBackoff = 10 * time.Millisecond

// maxErrorSamples bounds the distinct transport error messages kept per worker.
const maxErrorSamples = 8

// target is where a load run sends requests.
type target struct {
	scheme string // http or https
	host   string // host:port
}

// parseTarget accepts a base URL such as http://127.0.0.1:3000.
func parseTarget(raw string) (target, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return target{}, fmt.Errorf("parse URL %q: %w", raw, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return target{}, fmt.Errorf("URL %q: scheme must be http or https", raw)
	}
	if u.Host == "" {
		return target{}, fmt.Errorf("URL %q has no host: use e.g. http://127.0.0.1:3000", raw)
	}
	if u.Path != "" && u.Path != "/" {
		return target{}, fmt.Errorf("URL %q has a path: give only scheme://host:port, the tool adds /api/<project>/envelope/", raw)
	}
	return target{scheme: u.Scheme, host: fasthttp.AddMissingPort(u.Host, u.Scheme == "https")}, nil
}

func (t target) String() string { return t.scheme + "://" + t.host }

// loadSpec describes one closed-loop load run.
type loadSpec struct {
	label       string
	target      target
	connections int
	duration    time.Duration // 0: no time limit (requests must be set)
	requests    uint64        // stop after this many requests over all connections; 0: no limit
	timeout     time.Duration
	payloads    *payloadSet
	randomKeys  bool // a fresh random public key per synthetic request
	// keySpace, with randomKeys, draws each request's key from this many
	// distinct keys (keyOf(0..keySpace-1)) instead of fresh random ones.
	keySpace uint64
	// seriesSpace draws each metric line's series from this many (payloads
	// with seriesOffsets); 0 leaves the templates' placeholders.
	seriesSpace uint64
	rssPID      int // sample this process's memory during the run; 0: none
	rssInterval time.Duration
	cpuPID      int       // read this process's CPU time before and after the run; 0: none
	rate        float64   // requests per second over all connections (--rate); 0: closed loop, unpaced
	progress    io.Writer // nil: no progress lines
}

// loadResult is what one run measured.
type loadResult struct {
	Label             string            `json:"label"`
	URL               string            `json:"url"`
	ElapsedSeconds    float64           `json:"elapsed_seconds"`
	Sent              uint64            `json:"sent"`
	Accepted          uint64            `json:"accepted"`
	AcceptedPerSec    float64           `json:"accepted_per_sec"`
	SentPerSec        float64           `json:"sent_per_sec"`
	SyntheticAccepted uint64            `json:"synthetic_accepted"`
	Status            map[string]uint64 `json:"status"` // every answer by status code, 2xx included
	Non2xx            map[string]uint64 `json:"non_2xx"`
	TransportErrors   uint64            `json:"transport_errors"`
	ErrorSamples      map[string]uint64 `json:"error_samples,omitempty"`
	Latency           latencySummary    `json:"latency_ms"`
	BodyBytes         uint64            `json:"body_bytes"`
	BodyMBPerSec      float64           `json:"body_mb_per_sec"` // of every answered request
	AcceptedBytes     uint64            `json:"accepted_body_bytes"`
	AcceptedMBPerSec  float64           `json:"accepted_mb_per_sec"` // of the 2xx-answered requests
	ConnectionsOpened uint64            `json:"connections_opened"`
	RSS               *rssReport        `json:"rss,omitempty"`
	CPU               *cpuReport        `json:"cpu,omitempty"`
	EndedAt           time.Time         `json:"-"`
}

// latencySummary is in milliseconds.
type latencySummary struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	Max  float64 `json:"max"`
	Mean float64 `json:"mean"`
}

func summarize(h *histogram) latencySummary {
	ms := func(d time.Duration) float64 { return float64(d) / 1e6 }
	return latencySummary{
		P50: ms(h.Quantile(0.50)), P90: ms(h.Quantile(0.90)), P99: ms(h.Quantile(0.99)),
		Max: ms(h.Max()), Mean: ms(h.Mean()),
	}
}

// liveCounters are read by the progress reporter while the worker runs; the
// padding keeps workers from sharing a cache line.
type liveCounters struct {
	sent     atomic.Uint64
	accepted atomic.Uint64
	_        [48]byte
}

// prepared is a payload ready to send on one worker's connection.
type prepared struct {
	req       *fasthttp.Request
	body      []byte
	idOffsets []int
	chunked   bool
	// With --keys random (synthetic payloads only): where the key sits in
	// body, and the worker-owned X-Sentry-Auth value whose last 32 bytes
	// are the key.
	keyOffsets []int
	auth       []byte
	// seriesOffsets are where metric lines' 16-hex series numbers sit.
	seriesOffsets []int
}

// worker owns one connection and sends requests in a closed loop.
type worker struct {
	id          int
	client      *fasthttp.HostClient
	reqs        []prepared
	next        int
	resp        *fasthttp.Response
	stream      bytes.Reader
	idSeq       uint64
	keys        *rand.PCG // --keys random: this worker's key stream; nil for the fixed key
	keySpace    uint64    // keys drawn from keyOf(0..keySpace-1); 0: fresh random keys
	series      *rand.PCG // metric series stream; nil without seriesSpace
	seriesSpace uint64
	budget      *atomic.Int64 // --requests: requests left over all workers; nil for no limit
	pace        *pacer        // --rate: the shared send schedule; nil for none
	live        *liveCounters
	hist        *histogram
	status      [600]uint64 // by status code; index 0 holds codes outside 100..599
	synthOK     uint64
	errs        uint64
	errMsgs     map[string]uint64
	bytes       uint64
	okBytes     uint64 // of 2xx-answered requests
}

func newWorker(id int, s loadSpec, live *liveCounters, dials *atomic.Uint64, budget *atomic.Int64) *worker {
	w := &worker{
		id:   id,
		resp: fasthttp.AcquireResponse(),
		live: live,
		hist: newHistogram(),
		client: &fasthttp.HostClient{
			Addr:                      s.target.host,
			IsTLS:                     s.target.scheme == "https",
			MaxConns:                  1, // exactly one keep-alive connection per worker
			MaxIdemponentCallAttempts: 1, // never retry: every attempt is counted
			NoDefaultUserAgentHeader:  true,
			ReadTimeout:               s.timeout,
			WriteTimeout:              s.timeout,
			MaxResponseBodySize:       1 << 20,
			// A worker's connection is only idle between runs; a short idle
			// limit lets fasthttp's per-client cleaner goroutine exit soon
			// after release() instead of 10 s later.
			MaxIdleConnDuration: time.Second,
			Dial: func(addr string) (net.Conn, error) {
				conn, err := fasthttp.DialTimeout(addr, s.timeout)
				if err == nil {
					dials.Add(1)
				}
				return conn, err
			},
		},
	}
	items := s.payloads.items
	w.reqs = make([]prepared, len(items))
	for i := range items {
		w.reqs[i] = prepare(&items[i], s.target, s.payloads.idRunTag, uint16(id), s.randomKeys)
	}
	if s.randomKeys {
		w.keys = rand.NewPCG(rand.Uint64(), rand.Uint64())
		w.keySpace = s.keySpace
	}
	if s.seriesSpace > 0 {
		w.series = rand.NewPCG(rand.Uint64(), rand.Uint64())
		w.seriesSpace = s.seriesSpace
	}
	w.budget = budget
	w.next = id % len(items) // spread workers over the sequence
	return w
}

// prepare builds the request once; synthetic bodies get a worker-owned copy
// with the run tag and worker id already stamped into every event id.
func prepare(p *payload, t target, runTag [12]byte, workerID uint16, randomKeys bool) prepared {
	req := fasthttp.AcquireRequest()
	req.Header.DisableNormalizing() // send header names in the case the SDK used
	req.Header.SetNoDefaultContentType(true)
	req.Header.SetMethod(p.method)
	req.SetRequestURI(t.scheme + "://" + t.host + p.uri)
	for _, h := range p.headers {
		req.Header.Set(h[0], h[1])
	}
	pr := prepared{req: req, body: p.body, chunked: p.chunked}
	if p.synthetic() {
		pr.body = bytes.Clone(p.body)
		pr.idOffsets = p.idOffsets
		for _, off := range pr.idOffsets {
			copy(pr.body[off:], runTag[:])
			putHex4(pr.body[off+12:], workerID)
		}
		if randomKeys {
			pr.keyOffsets = p.keyOffsets
			pr.auth = []byte(authPrefix + keyPlaceholder)
		}
		pr.seriesOffsets = p.seriesOffsets
	}
	return pr
}

// run sends requests until stop is set. It does not allocate per request on
// the success path.
func (w *worker) run(stop *atomic.Bool) {
	for !stop.Load() {
		if w.budget != nil && w.budget.Add(-1) < 0 {
			return
		}
		if w.pace != nil {
			w.pace.wait()
		}
		p := &w.reqs[w.next]
		if w.next++; w.next == len(w.reqs) {
			w.next = 0
		}
		w.stampID(p)
		w.stampKey(p)
		w.stampSeries(p)
		if p.chunked {
			w.stream.Reset(p.body)
			p.req.SetBodyStream(&w.stream, -1)
		} else {
			p.req.SetBodyRaw(p.body)
		}
		start := time.Now()
		err := w.client.Do(p.req, w.resp)
		w.hist.Record(time.Since(start))
		w.account(p, err)
		if err != nil {
			time.Sleep(errorBackoff)
		}
	}
}

func (w *worker) stampID(p *prepared) {
	if len(p.idOffsets) == 0 {
		return
	}
	w.idSeq++
	for _, off := range p.idOffsets {
		putHex16(p.body[off+16:], w.idSeq)
	}
}

// stampKey writes a fresh random public key into the request's body and
// X-Sentry-Auth header (--keys random); 128 random bits make repeats
// practically impossible.
func (w *worker) stampKey(p *prepared) {
	if w.keys == nil || p.auth == nil {
		return
	}
	key := p.auth[len(p.auth)-32:]
	if w.keySpace > 0 {
		putKey(key, w.keys.Uint64()%w.keySpace)
	} else {
		putHex16(key, w.keys.Uint64())
		putHex16(key[16:], w.keys.Uint64())
	}
	for _, off := range p.keyOffsets {
		copy(p.body[off:], key)
	}
	p.req.Header.SetBytesV("X-Sentry-Auth", p.auth)
}

// putKey writes the i-th public key of a key space into dst[:32]: distinct
// for distinct i, and spread over the whole key range like real keys.
func putKey(dst []byte, i uint64) {
	putHex16(dst, mix64(i))
	putHex16(dst[16:], mix64(i^0x9e3779b97f4a7c15))
}

// mix64 is splitmix64's finalizer, a bijection on uint64.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// stampSeries writes a series number drawn from the worker's series space
// into every metric line of the request (--metrics-sweep).
func (w *worker) stampSeries(p *prepared) {
	if w.series == nil {
		return
	}
	for _, off := range p.seriesOffsets {
		putHex16(p.body[off:], w.series.Uint64()%w.seriesSpace)
	}
}

func (w *worker) account(p *prepared, err error) {
	w.live.sent.Add(1)
	if err != nil {
		w.errs++
		w.noteError(err)
		return
	}
	w.bytes += uint64(len(p.body))
	code := w.resp.StatusCode()
	if code < 100 || code >= len(w.status) {
		code = 0
	}
	w.status[code]++
	if code >= 200 && code < 300 {
		w.live.accepted.Add(1)
		w.okBytes += uint64(len(p.body))
		if len(p.idOffsets) > 0 {
			w.synthOK++
		}
	}
}

func (w *worker) noteError(err error) {
	if w.errMsgs == nil {
		w.errMsgs = make(map[string]uint64)
	}
	msg := err.Error()
	if _, ok := w.errMsgs[msg]; ok || len(w.errMsgs) < maxErrorSamples {
		w.errMsgs[msg]++
	}
}

func (w *worker) release() {
	w.client.CloseIdleConnections()
	for _, p := range w.reqs {
		fasthttp.ReleaseRequest(p.req)
	}
	fasthttp.ReleaseResponse(w.resp)
}

// runLoad drives s.connections workers for s.duration, until s.requests
// have been sent, or until ctx is done, whichever comes first, and returns
// the merged result. Requests in flight when time is up finish and are
// counted; elapsed time runs until the last one returns.
func runLoad(ctx context.Context, s loadSpec) (*loadResult, error) {
	if s.connections < 1 || s.connections > 65535 {
		return nil, fmt.Errorf("connections must be between 1 and 65535, got %d", s.connections)
	}
	if len(s.payloads.items) == 0 {
		return nil, errNoPayloads
	}
	if s.duration <= 0 && s.requests == 0 {
		return nil, fmt.Errorf("a load run needs a duration or a request count")
	}
	var budget *atomic.Int64
	if s.requests > 0 {
		budget = new(atomic.Int64)
		budget.Store(int64(min(s.requests, 1<<62)))
	}
	var dials atomic.Uint64
	live := make([]liveCounters, s.connections)
	workers := make([]*worker, s.connections)
	for i := range workers {
		workers[i] = newWorker(i, s, &live[i], &dials, budget)
	}
	var stop atomic.Bool
	var wg sync.WaitGroup
	if s.rate > 0 {
		p := &pacer{start: time.Now(), interval: time.Duration(float64(time.Second) / s.rate)}
		for _, w := range workers {
			w.pace = p
		}
	}
	var cpu *cpuMeter
	if s.cpuPID > 0 {
		cpu = startCPU(s.cpuPID)
	}
	start := time.Now()
	var rss *rssSampler
	if s.rssPID > 0 {
		rss = startRSSSampler(s.rssPID, s.rssInterval, start, func() uint64 { return sumSent(live) })
	}
	for _, w := range workers {
		wg.Go(func() { w.run(&stop) })
	}
	finished := make(chan struct{}) // every worker returned: the request budget is spent
	go func() {
		wg.Wait()
		close(finished)
	}()
	done := make(chan struct{})
	reporterDone := startProgress(s.progress, s.label, live, start, done, rss)
	var timeUp <-chan time.Time
	if s.duration > 0 {
		timer := time.NewTimer(s.duration)
		defer timer.Stop()
		timeUp = timer.C
	}
	select {
	case <-timeUp:
	case <-ctx.Done():
	case <-finished:
	}
	stop.Store(true)
	<-finished
	elapsed := time.Since(start)
	close(done)
	<-reporterDone
	res := merge(workers, elapsed)
	res.Label, res.URL, res.ConnectionsOpened, res.EndedAt = s.label, s.target.String(), dials.Load(), time.Now()
	if rss != nil {
		res.RSS = rss.Stop()
	}
	if cpu != nil {
		res.CPU = cpu.stop(elapsed, res.Sent-res.TransportErrors)
	}
	for _, w := range workers {
		w.release()
	}
	return res, nil
}

// merge combines the workers' private counters.
func merge(workers []*worker, elapsed time.Duration) *loadResult {
	h := newHistogram()
	res := &loadResult{ElapsedSeconds: elapsed.Seconds(), Status: map[string]uint64{}, Non2xx: map[string]uint64{}}
	var status [600]uint64
	for _, w := range workers {
		h.Merge(w.hist)
		res.Sent += w.live.sent.Load()
		res.Accepted += w.live.accepted.Load()
		res.SyntheticAccepted += w.synthOK
		res.TransportErrors += w.errs
		res.BodyBytes += w.bytes
		res.AcceptedBytes += w.okBytes
		for code, n := range w.status {
			status[code] += n
		}
		for msg, n := range w.errMsgs {
			if res.ErrorSamples == nil {
				res.ErrorSamples = map[string]uint64{}
			}
			res.ErrorSamples[msg] += n
		}
	}
	for code, n := range status {
		if n == 0 {
			continue
		}
		key := strconv.Itoa(code)
		if code == 0 {
			key = "other"
		}
		res.Status[key] = n
		if code < 200 || code >= 300 {
			res.Non2xx[key] = n
		}
	}
	secs := max(elapsed.Seconds(), 1e-9)
	res.AcceptedPerSec = float64(res.Accepted) / secs
	res.SentPerSec = float64(res.Sent) / secs
	res.BodyMBPerSec = float64(res.BodyBytes) / secs / 1e6
	res.AcceptedMBPerSec = float64(res.AcceptedBytes) / secs / 1e6
	res.Latency = summarize(h)
	return res
}

// startProgress prints one line per second to out until done is closed; the
// returned channel is closed when the reporter has exited.
func startProgress(out io.Writer, label string, live []liveCounters, start time.Time, done <-chan struct{}, rss *rssSampler) <-chan struct{} {
	exited := make(chan struct{})
	if out == nil {
		close(exited)
		return exited
	}
	go func() {
		defer close(exited)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		var lastAccepted uint64
		last := start
		for {
			select {
			case <-done:
				return
			case now := <-tick.C:
				var sent, accepted uint64
				for i := range live {
					sent += live[i].sent.Load()
					accepted += live[i].accepted.Load()
				}
				rate := float64(accepted-lastAccepted) / now.Sub(last).Seconds()
				mem := ""
				if rss != nil {
					mem = rss.progress()
				}
				fmt.Fprintf(out, "[%s %3.0fs] sent %d  accepted %d  now %.0f/s  not accepted %d%s\n",
					label, now.Sub(start).Seconds(), sent, accepted, rate, sent-accepted, mem)
				lastAccepted, last = accepted, now
			}
		}
	}()
	return exited
}

func sumSent(live []liveCounters) uint64 {
	var n uint64
	for i := range live {
		n += live[i].sent.Load()
	}
	return n
}

// pacer hands out send times on a fixed schedule, start + n*interval, to
// every worker of a --rate run: an open-loop intake as long as the target
// keeps up and enough connections are free; a worker that falls behind sends
// at once until it has caught up.
type pacer struct {
	start    time.Time
	interval time.Duration
	n        atomic.Int64
}

// wait sleeps until the next free slot of the schedule. The sleep is the
// pacing itself, not a synchronisation.
func (p *pacer) wait() {
	due := p.start.Add(time.Duration(p.n.Add(1)-1) * p.interval)
	if d := time.Until(due); d > 0 {
		time.Sleep(d)
	}
}
