package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// batonStartTimeout bounds how long a started Baton may take to listen and
// report ready.
const batonStartTimeout = 30 * time.Second

// batonProc is a `baton run` process that baton-load started (--chain,
// --outage), with its own config file and buffer directory under a work
// directory.
type batonProc struct {
	name    string
	cmd     *exec.Cmd
	url     string // http://host:port, from its "listening on" line
	dataDir string
	stderr  *tailBuffer
	done    chan struct{} // closed once the process was reaped
	http    *http.Client
}

// startBaton writes workDir/name.yaml (listen on a free port, buffer in
// workDir/name-data, then extra) and runs `bin run --config` on it, and on
// the files of configs after it (merged over it), until it is ready.
func startBaton(ctx context.Context, bin, workDir, name, extra string, configs ...string) (*batonProc, error) {
	p := &batonProc{name: name, dataDir: filepath.Join(workDir, name+"-data"), stderr: &tailBuffer{},
		done: make(chan struct{}), http: &http.Client{Timeout: 5 * time.Second}}
	cfg := filepath.Join(workDir, name+".yaml")
	yaml := fmt.Sprintf("server: {listen: \"127.0.0.1:0\"}\nbuffer: {dir: %q}\n%s", p.dataDir, extra)
	if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
		return nil, err
	}
	args := []string{"run", "--config", cfg}
	for _, c := range configs {
		args = append(args, "--config", c)
	}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Stderr = p.stderr
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s baton (--baton %s): %w", name, bin, err)
	}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if _, rest, ok := strings.Cut(sc.Text(), " listening on "); ok {
				u, _, _ := strings.Cut(rest, " ")
				select {
				case addr <- u:
				default:
				}
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
		_ = p.cmd.Wait() // after every read from the pipe, as exec requires
		close(p.done)
	}()
	deadline := time.NewTimer(batonStartTimeout)
	defer deadline.Stop()
	select {
	case p.url = <-addr:
	case <-p.done:
		return nil, fmt.Errorf("%s baton exited before listening:\n%s", name, p.stderr.tail(2000))
	case <-deadline.C:
		p.Close()
		return nil, fmt.Errorf("%s baton printed no listen line in %s:\n%s", name, batonStartTimeout, p.stderr.tail(2000))
	case <-ctx.Done():
		p.Close()
		return nil, ctx.Err()
	}
	for {
		if r, err := p.http.Get(p.url + "/api/relay/healthcheck/ready/"); err == nil {
			_ = r.Body.Close()
			if r.StatusCode == http.StatusOK {
				return p, nil
			}
		}
		select {
		case <-deadline.C:
			p.Close()
			return nil, fmt.Errorf("%s baton not ready after %s:\n%s", name, batonStartTimeout, p.stderr.tail(2000))
		case <-p.done:
			return nil, fmt.Errorf("%s baton exited:\n%s", name, p.stderr.tail(2000))
		case <-ctx.Done():
			p.Close()
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond): // poll period
		}
	}
}

// PID is the process id, for CPU and RSS readings.
func (p *batonProc) PID() int { return p.cmd.Process.Pid }

// Close interrupts Baton and kills it if it has not exited within 3 s (its
// buffer is thrown away with the work directory, so there is nothing to
// wait for).
func (p *batonProc) Close() {
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
	case <-time.After(3 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	p.http.CloseIdleConnections()
}

// batonStats is the part of /api/relay/stats/ the scenarios read.
type batonStats struct {
	Accepted  int64 `json:"accepted_records"`
	Delivered int64 `json:"delivered_records"`
	Dropped   int64 `json:"dropped_records"`
	Pending   int64 `json:"pending_records"`
	// Projects is the managed-mode config cache; Aggregator the metrics
	// aggregator (absent when off).
	Projects   *cacheStats `json:"projects"`
	Aggregator *aggStats   `json:"aggregator"`
}

// cacheStats is the part of Baton's project cache counters the curves read.
type cacheStats struct {
	Projects int   `json:"projects"` // configs cached
	Misses   int   `json:"misses"`
	Requests int64 `json:"requests"` // fetch requests sent
	Fetched  int64 `json:"fetched"`  // configs received
}

// aggStats is the part of Baton's aggregator counters the curves read.
type aggStats struct {
	Buckets           int    `json:"buckets"`
	Bytes             int64  `json:"bytes"`
	Inserted          uint64 `json:"inserted"`
	Merged            uint64 `json:"merged"`
	FlushedEarly      uint64 `json:"flushed_early"`
	FlushedEarlyScope uint64 `json:"flushed_early_scope"`
}

// Stats reads Baton's record counters.
func (p *batonProc) Stats() (batonStats, error) {
	var s batonStats
	r, err := p.http.Get(p.url + "/api/relay/stats/")
	if err != nil {
		return s, fmt.Errorf("%s baton stats: %w", p.name, err)
	}
	defer r.Body.Close()
	if r.StatusCode != http.StatusOK {
		return s, fmt.Errorf("%s baton stats: status %d", p.name, r.StatusCode)
	}
	if err := json.NewDecoder(r.Body).Decode(&s); err != nil {
		return s, fmt.Errorf("%s baton stats: %w", p.name, err)
	}
	return s, nil
}

// dirBytes sums the sizes of the regular files under dir: the buffer on disk.
func dirBytes(dir string) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // Pebble removed it between listing and stat
			}
			return err
		}
		if d.Type().IsRegular() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n, err
}

// tailBuffer keeps the last 32-64 KiB written to it (a process's stderr).
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > 64<<10 {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-32<<10:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) tail(n int) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf[max(0, len(t.buf)-n):])
}
