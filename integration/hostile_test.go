package integration

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/zstd"
)

// hostileRSSLimit is the bound on the peak RSS of a Baton on its
// default config under the attacks below.
const hostileRSSLimit = 256 << 20

// TestHostileBodies attacks the baton binary, on its default config, with
// three waves of bodies built to exhaust its memory, while a few clients
// keep sending
// ordinary envelopes: every hostile request is refused (413 or 503), every
// ordinary one accepted, and the process's peak RSS (VmHWM) stays under 256
// MB. The figures go to the test log (BENCHMARKS.md quotes them).
func TestHostileBodies(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and attacks the baton binary")
	}
	bin := crashBuildBaton(t)

	t.Run("bombs", func(t *testing.T) {
		// 16 concurrent bombs of each encoding, each 1 GiB of zeros inflated.
		bombs := hostileBombs(t)
		hostileAttack(t, bin, func(url string) []hostileResult {
			var reqs []func() hostileResult
			for _, b := range bombs {
				for range 16 {
					reqs = append(reqs, func() hostileResult {
						return hostilePost(url, b.enc, bytes.NewReader(b.body), int64(len(b.body)))
					})
				}
			}
			return hostileAll(reqs)
		})
	})
	t.Run("plain", func(t *testing.T) {
		// 16 concurrent 150 MiB bodies: half declare their length, half
		// are chunked (no length until the end).
		const size = 150 << 20
		hostileAttack(t, bin, func(url string) []hostileResult {
			var reqs []func() hostileResult
			for i := range 16 {
				n := int64(size)
				if i%2 == 1 {
					n = -1
				}
				reqs = append(reqs, func() hostileResult {
					return hostilePost(url, "", io.LimitReader(zeroReader{}, size), n)
				})
			}
			return hostileAll(reqs)
		})
	})
}

type hostileBomb struct {
	enc  string
	body []byte
}

// hostileBombs compresses 1 GiB of zeros four ways: gzip members and zstd
// frames concatenate (the decoders go on across them), so those are one
// compressed MiB repeated; zlib and brotli streams are compressed whole.
func hostileBombs(t *testing.T) []hostileBomb {
	t.Helper()
	zeros := make([]byte, 1<<20)
	var member bytes.Buffer
	gw, _ := gzip.NewWriterLevel(&member, gzip.BestCompression)
	gw.Write(zeros)
	gw.Close()
	enc, _ := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedBestCompression))
	frame := enc.EncodeAll(zeros, nil)
	enc.Close()

	var zl, br bytes.Buffer
	zw, _ := zlib.NewWriterLevel(&zl, zlib.BestSpeed)
	bw := brotli.NewWriterOptions(&br, brotli.WriterOptions{Quality: 1, LGWin: 24})
	for range 1024 {
		zw.Write(zeros)
		bw.Write(zeros)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := bw.Close(); err != nil {
		t.Fatal(err)
	}
	bombs := []hostileBomb{
		{"gzip", bytes.Repeat(member.Bytes(), 1024)},
		{"deflate", zl.Bytes()},
		{"br", br.Bytes()},
		{"zstd", bytes.Repeat(frame, 1024)},
	}
	for _, b := range bombs {
		t.Logf("%s bomb: %d bytes, 1 GiB inflated", b.enc, len(b.body))
	}
	return bombs
}

type hostileResult struct {
	status int
	err    error
}

// hostileAll runs every request at once and returns their results.
func hostileAll(reqs []func() hostileResult) []hostileResult {
	out := make([]hostileResult, len(reqs))
	var wg sync.WaitGroup
	for i, req := range reqs {
		wg.Go(func() { out[i] = req() })
	}
	wg.Wait()
	return out
}

// hostilePost posts body to url as the attacks do: Baton's test key, the
// given Content-Encoding, length n (-1: chunked).
func hostilePost(url, encoding string, body io.Reader, n int64) hostileResult {
	h := map[string]string{"X-Sentry-Auth": "Sentry sentry_key=" + testKey + ", sentry_version=7"}
	if encoding != "" {
		h["Content-Encoding"] = encoding
	}
	status, _, err := rawPost(url, h, body, n)
	return hostileResult{status: status, err: err}
}

// rawPost posts body to url on a connection of its own, with length n
// (-1: chunked), and reads the answer while the body is still being
// written: a server that refuses a body answers before it has read it, and
// then closes the connection (Go's client reports that as a failed write).
func rawPost(url string, headers map[string]string, body io.Reader, n int64) (int, string, error) {
	host := strings.TrimPrefix(url, "http://")
	host, path, _ := strings.Cut(host, "/")
	conn, err := net.Dial("tcp", host)
	if err != nil {
		return 0, "", err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(2 * time.Minute))
	head := fmt.Sprintf("POST /%s HTTP/1.1\r\nHost: %s\r\n", path, host)
	for k, v := range headers {
		head += k + ": " + v + "\r\n"
	}
	var w io.Writer = conn
	var cw io.WriteCloser
	if n >= 0 {
		head += fmt.Sprintf("Content-Length: %d\r\n\r\n", n)
	} else {
		head += "Transfer-Encoding: chunked\r\n\r\n"
		cw = httputil.NewChunkedWriter(conn)
		w = cw
	}
	go func() {
		if _, err := io.WriteString(conn, head); err != nil {
			return
		}
		if _, err := io.Copy(w, body); err != nil {
			return
		}
		if cw != nil {
			cw.Close()
			io.WriteString(conn, "\r\n")
		}
	}()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// hostileAttack starts baton on its default config (ports and buffer
// directory of the test's own), keeps four clients sending ordinary
// envelopes, runs attack, and checks what the issue asks: every hostile
// request refused with 413 or 503, every ordinary one answered 200, and a
// peak RSS under hostileRSSLimit.
func hostileAttack(t *testing.T, bin string, attack func(url string) []hostileResult) {
	t.Helper()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "baton.yml")
	yaml := fmt.Sprintf("server: {listen: 127.0.0.1:0}\nbuffer: {dir: %s}\nkafka: {embedded: {listen: 127.0.0.1:0}}\n", filepath.Join(dir, "data"))
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	p := crashStart(t, bin, cfg)
	c := crashClient(t)
	p.waitReady(t, c, 20*time.Second)
	url := p.base + "/api/1/envelope/"
	before := hostileRSS(t, p.cmd.Process.Pid)

	var (
		stop      atomic.Bool
		mu        sync.Mutex
		latencies []time.Duration
		failures  []string
		wg        sync.WaitGroup
	)
	for w := range 4 {
		wg.Go(func() {
			for seq := w; !stop.Load(); seq += 4 {
				t0 := time.Now()
				status, resp, _, err := crashPost(c, p.base, seq, 4<<10)
				d := time.Since(t0)
				mu.Lock()
				if err != nil || status != http.StatusOK {
					failures = append(failures, fmt.Sprintf("%d %v %s", status, err, resp))
				}
				latencies = append(latencies, d)
				mu.Unlock()
			}
		})
	}
	// The ordinary clients are under way before the attack starts.
	for {
		mu.Lock()
		n := len(latencies)
		mu.Unlock()
		if n >= 20 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Three waves, so that the peak does not hang on where one wave meets
	// the garbage collector's cycle.
	t0 := time.Now()
	var results []hostileResult
	for range 3 {
		results = append(results, attack(url)...)
	}
	took := time.Since(t0)
	stop.Store(true)
	wg.Wait()

	counts := map[string]int{}
	for _, r := range results {
		switch {
		case r.err != nil:
			t.Errorf("a hostile request got no answer: %v", r.err)
		case r.status == http.StatusRequestEntityTooLarge || r.status == http.StatusServiceUnavailable:
			counts[strconv.Itoa(r.status)]++
		default:
			t.Errorf("a hostile request was answered %d", r.status)
		}
	}
	peak := hostileRSS(t, p.cmd.Process.Pid)
	slices.Sort(latencies)
	p99 := latencies[len(latencies)*99/100]
	t.Logf("%d hostile requests in %s: %v; ordinary envelopes: %d, p50 %s, p99 %s; VmHWM %d MiB before the attack, %d MiB after",
		len(results), took.Round(time.Millisecond), counts, len(latencies),
		latencies[len(latencies)/2].Round(time.Microsecond), p99.Round(time.Microsecond), before>>20, peak>>20)
	if len(failures) > 0 {
		t.Errorf("%d of %d ordinary envelopes were refused during the attack, e.g. %s", len(failures), len(latencies), failures[0])
	}
	if peak >= hostileRSSLimit {
		t.Errorf("peak RSS %d MiB, want < %d MiB", peak>>20, hostileRSSLimit>>20)
	}
	if os.Getenv("HOSTILE_TRACE") != "" {
		t.Log(crashTail(p.stderr.String(), 6000))
	}
	if code := p.stop(t, 20*time.Second); code != 0 {
		t.Errorf("baton exited %d after the attack\n%s", code, crashTail(p.stderr.String(), 2000))
	}
}

// hostileRSS is the process's peak resident set (VmHWM), in bytes.
func hostileRSS(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatalf("read VmHWM: %v", err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatalf("VmHWM %q: %v", v, err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmHWM in /proc/pid/status")
	return 0
}
