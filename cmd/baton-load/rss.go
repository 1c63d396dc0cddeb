package main

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// defaultRSSInterval is how often --rss-pid reads /proc/<pid>/status.
const defaultRSSInterval = 250 * time.Millisecond

// rssTimelinePcts are the points of a run (in % of its elapsed time) at
// which the report shows the sampled process's RSS.
var rssTimelinePcts = []int{0, 10, 25, 50, 75, 90, 100}

// maxRSSSeries bounds the samples kept in the JSON report's series.
const maxRSSSeries = 100

// rssReport is the memory of the --rss-pid process over one run, in MB
// (10^6 bytes; /proc reports kB = KiB, converted exactly).
type rssReport struct {
	PID              int         `json:"pid"`
	IntervalMs       float64     `json:"interval_ms"`
	Samples          int         `json:"samples"`
	StartMB          float64     `json:"start_rss_mb"`
	PeakMB           float64     `json:"peak_rss_mb"`
	PeakAtSeconds    float64     `json:"peak_at_seconds"`
	FinalMB          float64     `json:"final_rss_mb"`
	FinalHWMMB       float64     `json:"final_hwm_mb"` // VmHWM at the end: peak RSS since the process started
	SecondHalfGrowth float64     `json:"second_half_growth_mb"`
	Timeline         []rssPoint  `json:"timeline"` // at rssTimelinePcts of the run
	Series           []rssSample `json:"series"`   // all samples, thinned to at most maxRSSSeries
	Error            string      `json:"error,omitempty"`
}

// rssPoint is the last sample taken at or before Pct % of the run.
type rssPoint struct {
	Pct int `json:"pct"`
	rssSample
}

type rssSample struct {
	Seconds float64 `json:"seconds"`
	Sent    uint64  `json:"sent"` // requests sent so far in the run
	RSSMB   float64 `json:"rss_mb"`
}

// rssSampler reads a process's VmRSS periodically while a run lasts.
type rssSampler struct {
	pid      int
	path     string
	interval time.Duration
	start    time.Time
	sent     func() uint64
	lastKB   atomic.Uint64 // for the progress line

	mu      sync.Mutex
	samples []rssSample
	hwmKB   uint64
	err     error
	errAt   float64

	stop chan struct{}
	done chan struct{}
}

// procStatusPath is /proc/<pid>/status.
func procStatusPath(pid int) string { return "/proc/" + strconv.Itoa(pid) + "/status" }

// checkRSSPID fails early (before any load) when pid's memory cannot be read.
func checkRSSPID(pid int) error {
	if _, _, err := readProcStatus(procStatusPath(pid)); err != nil {
		return fmt.Errorf("--rss-pid %d: %w", pid, err)
	}
	return nil
}

// readProcStatus returns VmRSS and VmHWM, in kB, from a /proc/<pid>/status file.
func readProcStatus(path string) (rssKB, hwmKB uint64, err error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, 0, err
	}
	rssKB, hwmKB, err = parseProcStatus(data)
	if err != nil {
		return 0, 0, fmt.Errorf("%s: %w", path, err)
	}
	return rssKB, hwmKB, nil
}

// parseProcStatus extracts VmRSS and VmHWM (kB) from the text of a
// /proc/<pid>/status file. Both must be present: a zombie or kernel thread
// has neither.
func parseProcStatus(data []byte) (rssKB, hwmKB uint64, err error) {
	var haveRSS, haveHWM bool
	for line := range bytes.SplitSeq(data, []byte("\n")) {
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		var dst *uint64
		switch string(name) {
		case "VmRSS":
			dst, haveRSS = &rssKB, true
		case "VmHWM":
			dst, haveHWM = &hwmKB, true
		default:
			continue
		}
		num, unit, _ := bytes.Cut(bytes.TrimSpace(value), []byte(" "))
		if string(bytes.TrimSpace(unit)) != "kB" {
			return 0, 0, fmt.Errorf("%s: unexpected value %q, want \"<n> kB\"", name, bytes.TrimSpace(value))
		}
		if *dst, err = strconv.ParseUint(string(num), 10, 64); err != nil {
			return 0, 0, fmt.Errorf("%s: %w", name, err)
		}
	}
	if !haveRSS || !haveHWM {
		return 0, 0, fmt.Errorf("no VmRSS/VmHWM lines (has the process exited?)")
	}
	return rssKB, hwmKB, nil
}

// startRSSSampler samples pid now and then every interval until Stop.
func startRSSSampler(pid int, interval time.Duration, start time.Time, sent func() uint64) *rssSampler {
	if interval <= 0 {
		interval = defaultRSSInterval
	}
	s := &rssSampler{pid: pid, path: procStatusPath(pid), interval: interval, start: start, sent: sent,
		stop: make(chan struct{}), done: make(chan struct{})}
	s.sample()
	go s.loop()
	return s
}

func (s *rssSampler) loop() {
	defer close(s.done)
	tick := time.NewTicker(s.interval)
	defer tick.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-tick.C:
			if !s.sample() {
				return // the process is gone: nothing more to read
			}
		}
	}
}

// sample reads the status file once; false once reading failed.
func (s *rssSampler) sample() bool {
	rss, hwm, err := readProcStatus(s.path)
	at := time.Since(s.start).Seconds()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return false
	}
	if err != nil {
		s.err, s.errAt = err, at
		return false
	}
	s.samples = append(s.samples, rssSample{Seconds: at, Sent: s.sent(), RSSMB: kbToMB(rss)})
	s.hwmKB = hwm
	s.lastKB.Store(rss)
	return true
}

// progress is the suffix of the per-second progress line.
func (s *rssSampler) progress() string {
	return fmt.Sprintf("  rss %.1f MB", kbToMB(s.lastKB.Load()))
}

// Stop takes a last sample and summarizes the run.
func (s *rssSampler) Stop() *rssReport {
	close(s.stop)
	<-s.done
	s.sample()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.report()
}

// report summarises the samples; s.mu is held.
func (s *rssSampler) report() *rssReport {
	r := &rssReport{PID: s.pid, IntervalMs: float64(s.interval) / 1e6, Samples: len(s.samples), FinalHWMMB: kbToMB(s.hwmKB)}
	if s.err != nil {
		r.Error = fmt.Sprintf("after %.1fs: %v", s.errAt, s.err)
		r.FinalHWMMB = 0 // the last VmHWM read is not the final one
	}
	if len(s.samples) == 0 {
		return r
	}
	r.StartMB, r.FinalMB = s.samples[0].RSSMB, s.samples[len(s.samples)-1].RSSMB
	for _, x := range s.samples {
		if x.RSSMB > r.PeakMB {
			r.PeakMB, r.PeakAtSeconds = x.RSSMB, x.Seconds
		}
	}
	end := s.samples[len(s.samples)-1].Seconds
	for _, pct := range rssTimelinePcts {
		// end*(pct/100), not end*pct/100: the latter can round below end at
		// 100% and miss the final sample.
		r.Timeline = append(r.Timeline, rssPoint{Pct: pct, rssSample: sampleAt(s.samples, end*(float64(pct)/100))})
	}
	r.SecondHalfGrowth = r.FinalMB - sampleAt(s.samples, end/2).RSSMB
	r.Series = thin(s.samples, maxRSSSeries)
	return r
}

// sampleAt is the last sample taken at or before sec (the first one if none).
func sampleAt(samples []rssSample, sec float64) rssSample {
	best := samples[0]
	for _, x := range samples {
		if x.Seconds > sec {
			break
		}
		best = x
	}
	return best
}

// thin keeps at most n samples, evenly spaced, always the first and last.
func thin(samples []rssSample, n int) []rssSample {
	if len(samples) <= n {
		return samples
	}
	out := make([]rssSample, 0, n)
	for i := range n {
		out = append(out, samples[i*(len(samples)-1)/(n-1)])
	}
	return out
}

func kbToMB(kb uint64) float64 { return float64(kb) * 1024 / 1e6 }
