package main

import (
	"bytes"
	"context"
	"encoding/json"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

const (
	knownKey   = "0123456789abcdef0123456789abcdef"
	unknownKey = "fedcba9876543210fedcba9876543210"
)

// post sends body to path on c and returns the status and answer.
func post(t *testing.T, c *fasthttp.HostClient, path, body string) (int, []byte) {
	t.Helper()
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI("http://" + c.Addr + path)
	req.Header.SetMethod(fasthttp.MethodPost)
	req.Header.SetContentType("application/json")
	req.SetBodyString(body)
	if err := c.DoTimeout(req, resp, 5*time.Second); err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	return resp.StatusCode(), bytes.Clone(resp.Body())
}

// lineWriter hands what run() prints to stdout to the test, line by line.
type lineWriter struct {
	mu   sync.Mutex
	all  bytes.Buffer
	line chan string
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.all.Write(p)
	for l := range strings.Lines(string(p)) {
		select {
		case w.line <- l:
		default:
		}
	}
	return len(p), nil
}

func (w *lineWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.all.String()
}

// TestServeSentry runs --serve-sentry through run(): registration echoes the
// relay id, projectconfigs answers null for unknown keys and a valid state
// for --known-keys, envelopes get 200 {}, and the counts are printed on exit.
func TestServeSentry(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stdout := &lineWriter{line: make(chan string, 4)}
	var stderr bytes.Buffer
	exit := make(chan int, 1)
	go func() {
		exit <- run(ctx, []string{"--serve-sentry", "127.0.0.1:0", "--known-keys", knownKey, "--project", "42"}, stdout, &stderr)
	}()
	var base string
	select {
	case l := <-stdout.line:
		_, rest, ok := strings.Cut(l, "listening on ")
		base, _, _ = strings.Cut(rest, " ")
		if !ok || !strings.HasPrefix(base, "http://127.0.0.1:") {
			t.Fatalf("first line %q does not give the listen address", l)
		}
	case code := <-exit:
		t.Fatalf("exit %d before listening: %s", code, stderr.String())
	case <-time.After(5 * time.Second):
		t.Fatal("no listen line within 5 s")
	}

	// A short idle limit lets the client's cleaner goroutine exit soon after the test.
	c := &fasthttp.HostClient{Addr: strings.TrimPrefix(base, "http://"), MaxIdleConnDuration: 100 * time.Millisecond}
	defer c.CloseIdleConnections()
	const relayID = "1b3a5c7e-0000-4000-8000-000000000001"
	status, body := post(t, c, "/api/0/relays/register/challenge/", `{"relay_id":"`+relayID+`","public_key":"pk","version":"0.0.0"}`)
	var ch struct {
		RelayID string `json:"relay_id"`
		Token   string `json:"token"`
	}
	if err := json.Unmarshal(body, &ch); status != 200 || err != nil || ch.RelayID != relayID || ch.Token == "" {
		t.Errorf("challenge: %d %s; want 200 with the relay id echoed and a token", status, body)
	}
	status, body = post(t, c, "/api/0/relays/register/response/", `{"relay_id":"`+relayID+`","token":"`+ch.Token+`","version":"0.0.0"}`)
	var res struct {
		RelayID string `json:"relay_id"`
	}
	if err := json.Unmarshal(body, &res); status != 200 || err != nil || res.RelayID != relayID {
		t.Errorf("response: %d %s; want 200 with the relay id", status, body)
	}
	if status, body = post(t, c, "/api/0/relays/register/challenge/", `{"relay_id":`); status != 400 {
		t.Errorf("malformed challenge: %d %s, want 400", status, body)
	}

	status, body = post(t, c, "/api/0/relays/projectconfigs/?version=3", `{"publicKeys":["`+knownKey+`","`+unknownKey+`"],"global":true}`)
	var pc struct {
		Configs   map[string]json.RawMessage `json:"configs"`
		Pending   []string                   `json:"pending"`
		Unchanged []string                   `json:"unchanged"`
	}
	if err := json.Unmarshal(body, &pc); status != 200 || err != nil {
		t.Fatalf("projectconfigs: %d %s (%v)", status, body, err)
	}
	if pc.Pending == nil || pc.Unchanged == nil || len(pc.Pending)+len(pc.Unchanged) != 0 || len(pc.Configs) != 2 {
		t.Errorf("projectconfigs: %s; want both keys under configs and empty pending/unchanged lists", body)
	}
	if raw, ok := pc.Configs[unknownKey]; !ok || string(raw) != "null" {
		t.Errorf("unknown key answered %q, want null", raw)
	}
	var st struct {
		ProjectID  int    `json:"projectId"`
		Rev        string `json:"rev"`
		Disabled   *bool  `json:"disabled"`
		PublicKeys []struct {
			PublicKey string `json:"publicKey"`
			IsEnabled bool   `json:"isEnabled"`
		} `json:"publicKeys"`
		Config struct {
			AllowedDomains []string `json:"allowedDomains"`
		} `json:"config"`
	}
	if err := json.Unmarshal(pc.Configs[knownKey], &st); err != nil || st.ProjectID != 42 || st.Rev == "" || st.Disabled == nil || *st.Disabled ||
		len(st.PublicKeys) != 1 || st.PublicKeys[0].PublicKey != knownKey || !st.PublicKeys[0].IsEnabled ||
		len(st.Config.AllowedDomains) != 1 || st.Config.AllowedDomains[0] != "*" {
		t.Errorf("known key answered %s (%v), want an enabled state of project 42", pc.Configs[knownKey], err)
	}

	if status, body = post(t, c, "/api/42/envelope/", "{}\n"); status != 200 || string(body) != "{}" {
		t.Errorf("envelope: %d %q, want 200 {}", status, body)
	}
	if status, _ = post(t, c, "/api/0/nothing/", "{}"); status != 404 {
		t.Errorf("unknown path: %d, want 404", status)
	}

	cancel()
	select {
	case code := <-exit:
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr.String())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("--serve-sentry did not stop on cancel")
	}
	want := "register/challenge 1, register/response 1, projectconfigs 1 requests (keys: 1 known, 1 unknown), envelopes 1 (3 body bytes), bad requests 1, other paths 1"
	if !strings.Contains(stdout.String(), want) {
		t.Errorf("exit summary:\n%s\nwant it to contain %q", stdout.String(), want)
	}
}

// TestRandomKeysAndRequestLimit runs --keys random --requests 1000 through
// run() against a server that answers every 5th request 403: exactly 1000
// requests, 1000 distinct valid keys, each the same in X-Sentry-Auth and in
// the envelope's dsn and trace, and 200 and 403 both reported. --rss-pid
// samples this test process.
func TestRandomKeysAndRequestLimit(t *testing.T) {
	var (
		mu    sync.Mutex
		keys  = map[string]int{}
		total atomic.Uint64
	)
	tg := serve(t, func(ctx *fasthttp.RequestCtx) {
		auth := string(ctx.Request.Header.Peek("X-Sentry-Auth"))
		_, key, _ := strings.Cut(auth, "sentry_key=")
		var h struct {
			DSN   string `json:"dsn"`
			Trace struct {
				PublicKey string `json:"public_key"`
			} `json:"trace"`
		}
		line, _, _ := bytes.Cut(ctx.PostBody(), []byte("\n"))
		if err := json.Unmarshal(line, &h); err != nil {
			t.Errorf("envelope header: %v", err)
		}
		if !isHex32(key) || !strings.HasPrefix(h.DSN, "http://"+key+"@") || h.Trace.PublicKey != key {
			t.Errorf("auth %q, dsn %q, trace.public_key %q: want the same 32-hex key in all three", auth, h.DSN, h.Trace.PublicKey)
		}
		mu.Lock()
		keys[key]++
		mu.Unlock()
		if total.Add(1)%5 == 0 {
			ctx.SetStatusCode(fasthttp.StatusForbidden)
			return
		}
		ctx.SetBodyString(`{"id":"x"}`)
	})
	var stdout, stderr bytes.Buffer
	start := time.Now()
	code := run(context.Background(), []string{"--url", tg.String(), "--keys", "random", "--requests", "1000", "--connections", "8",
		"--pool", "3", "--size", "1024", "--json", "--quiet", "--rss-pid", strconv.Itoa(os.Getpid())}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if el := time.Since(start); el > 10*time.Second {
		t.Errorf("took %s: --requests alone must not wait for the default --duration", el)
	}
	var rep report
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("report is not JSON: %v\n%s", err, stdout.String())
	}
	r := rep.Runs[0].Baton
	if r.Sent != 1000 || total.Load() != 1000 {
		t.Errorf("sent %d, server saw %d; want exactly 1000", r.Sent, total.Load())
	}
	if len(keys) != 1000 {
		t.Errorf("%d distinct keys in 1000 requests", len(keys))
	}
	if r.Status["200"] != 800 || r.Status["403"] != 200 || r.Non2xx["403"] != 200 || r.Accepted != 800 {
		t.Errorf("status %v, non-2xx %v, accepted %d; want 200:800 403:200", r.Status, r.Non2xx, r.Accepted)
	}
	if rep.Keys != keysRandom || rep.Requests != 1000 || rep.DurationSeconds != 0 {
		t.Errorf("report header: keys %q requests %d duration %g", rep.Keys, rep.Requests, rep.DurationSeconds)
	}
	m := r.RSS
	if m == nil || m.PID != os.Getpid() || m.Samples < 2 || m.PeakMB <= 0 || m.FinalHWMMB < m.PeakMB || m.Error != "" ||
		len(m.Timeline) != len(rssTimelinePcts) || m.Timeline[len(m.Timeline)-1].Sent != 1000 {
		t.Errorf("rss report %+v: want samples of this process, the last after all 1000 requests", m)
	}

	// The text report shows both codes and the memory.
	var text strings.Builder
	if err := writeReport(&text, &rep, false); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"requests 1000", "random key per request", "status 200:800 403:200", "pid " + strconv.Itoa(os.Getpid()) + ": start", "VmHWM", "at 100%"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text report lacks %q:\n%s", want, text.String())
		}
	}
}

// TestRequestsBeforeDuration: with both --requests and --duration, the run
// stops at whichever comes first; fixed keys stay the default.
func TestRequestsBeforeDuration(t *testing.T) {
	noop, err := startNoop("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer noop.Close()
	for _, tc := range []struct {
		args     []string
		sent     uint64 // 0: duration-limited, more than 50
		duration time.Duration
	}{
		{[]string{"--requests", "50", "--duration", "1m"}, 50, 15 * time.Second},
		{[]string{"--requests", "100000000", "--duration", "300ms"}, 0, 15 * time.Second},
	} {
		var stdout, stderr bytes.Buffer
		start := time.Now()
		args := append([]string{"--url", noop.URL(), "--connections", "4", "--json", "--quiet", "--pool", "2"}, tc.args...)
		if code := run(context.Background(), args, &stdout, &stderr); code != 0 {
			t.Fatalf("%v: exit %d: %s", tc.args, code, stderr.String())
		}
		var rep report
		if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
			t.Fatal(err)
		}
		sent := rep.Runs[0].Baton.Sent
		if el := time.Since(start); el > tc.duration || (tc.sent != 0 && sent != tc.sent) || (tc.sent == 0 && sent <= 50) || rep.Keys != keysFixed {
			t.Errorf("%v: sent %d in %s (keys %q)", tc.args, sent, el, rep.Keys)
		}
	}
}

// TestProcStatus parses this process's /proc status and a few bad inputs.
func TestProcStatus(t *testing.T) {
	rss, hwm, err := readProcStatus("/proc/self/status")
	if err != nil {
		t.Skipf("no /proc here: %v", err)
	}
	if rss == 0 || hwm < rss {
		t.Errorf("VmRSS %d kB, VmHWM %d kB: want RSS > 0 and HWM ≥ RSS", rss, hwm)
	}
	rss, hwm, err = parseProcStatus([]byte("Name:\tbaton\nVmHWM:\t  204800 kB\nVmRSS:\t  102400 kB\nThreads:\t9\n"))
	if err != nil || rss != 102400 || hwm != 204800 {
		t.Errorf("parsed rss %d hwm %d err %v", rss, hwm, err)
	}
	for _, bad := range []string{"Name:\tzombie\nState:\tZ (zombie)\n", "VmRSS:\t12 MB\nVmHWM:\t12 kB\n", "VmRSS:\tx kB\nVmHWM:\t1 kB\n"} {
		if _, _, err := parseProcStatus([]byte(bad)); err == nil {
			t.Errorf("parsed %q without error", bad)
		}
	}
	if err := checkRSSPID(1 << 30); err == nil || !strings.Contains(err.Error(), "--rss-pid") {
		t.Errorf("check of a missing pid: %v", err)
	}

	// The sampler: memory mapped and touched outside the Go heap (which may
	// reuse pages freed by earlier tests) must show as a growing timeline.
	var sent atomic.Uint64
	s := startRSSSampler(os.Getpid(), 20*time.Millisecond, time.Now(), sent.Load)
	for i := range 10 {
		b, err := syscall.Mmap(-1, 0, 8<<20, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
		if err != nil {
			t.Fatal(err)
		}
		defer syscall.Munmap(b)
		for j := 0; j < len(b); j += 4096 {
			b[j] = 1 // touch every page so it counts in RSS
		}
		sent.Store(uint64(i + 1))
		// Wait for a sample that saw this step, so the timeline has one per step.
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
			s.mu.Lock()
			seen := len(s.samples) > 0 && s.samples[len(s.samples)-1].Sent == uint64(i+1)
			s.mu.Unlock()
			if seen {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("no RSS sample of step %d in 5s", i+1)
			}
		}
	}
	m := s.Stop()
	if m.Samples < 5 || m.Error != "" || m.PeakMB < m.StartMB+60 || m.FinalHWMMB < m.PeakMB || m.Timeline[len(m.Timeline)-1].Sent != 10 ||
		m.Timeline[len(m.Timeline)-1].RSSMB < m.Timeline[0].RSSMB+60 || len(m.Series) != m.Samples {
		t.Errorf("sampler report %+v: want a timeline growing by about 84 MB", m)
	}
}

// TestNewFlagErrors checks the new flags' validation.
func TestNewFlagErrors(t *testing.T) {
	for _, args := range [][]string{
		{"--keys", "some"}, {"--keys", "random", "--mix", "fixtures"}, {"--rss-pid", "-3"},
		{"--known-keys", "abc", "--serve-sentry", "127.0.0.1:0"}, {"--duration", "0"},
	} {
		var out, errb bytes.Buffer
		name := strings.TrimPrefix(args[0], "--")
		if code := run(context.Background(), args, &out, &errb); code != 2 || !strings.Contains(errb.String(), name) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and a message naming --%s", args, code, errb.String(), name)
		}
	}
	var out, errb bytes.Buffer
	run(context.Background(), []string{"-help"}, &out, &errb)
	for _, want := range []string{"--keys random --requests 1000000", "--serve-sentry 127.0.0.1:3900", "-rss-pid", "-known-keys"} {
		if !strings.Contains(errb.String(), want) {
			t.Errorf("help lacks %q", want)
		}
	}
}

// TestStampKeyAllocs: --keys random costs no allocation per request.
func TestStampKeyAllocs(t *testing.T) {
	set := synthetic(t, 1)
	tg := target{scheme: "http", host: "127.0.0.1:1"}
	w := &worker{keys: rand.NewPCG(1, 2)}
	p := prepare(&set.items[0], tg, set.idRunTag, 0, true)
	defer fasthttp.ReleaseRequest(p.req)
	w.stampKey(&p) // first call may grow the header's value buffer
	if n := testing.AllocsPerRun(1000, func() { w.stampKey(&p) }); n != 0 {
		t.Errorf("stampKey allocates %.1f times per request, want 0", n)
	}
	auth := string(p.req.Header.Peek("X-Sentry-Auth"))
	key := auth[len(auth)-32:]
	if !isHex32(key) || !strings.HasPrefix(auth, authPrefix) || strings.Count(string(p.body), key) != len(p.keyOffsets) || len(p.keyOffsets) != 2 {
		t.Errorf("auth %q; key found %d times in the body, want in dsn and trace.public_key", auth, strings.Count(string(p.body), key))
	}
}
