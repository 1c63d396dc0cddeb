package integration

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
)

const event = "{\"event_id\":\"9ec79c33ec9942ab8353589fcb2e04dc\"}\n{\"type\":\"event\"}\n{\"message\":\"m\"}\n"

// TestRejections sends one bad request per failure mode and checks the
// status, the detail and that the refusal is counted by reason.
func TestRejections(t *testing.T) {
	n := startNode(t, "limits:\n  max_envelope_size: 2MiB\nserver:\n  read_timeout: 1s\n")
	url := n.url + "/api/1/envelope/"
	cases := []struct {
		name    string
		path    string
		body    []byte
		headers map[string]string
		status  int
		detail  string
		reason  string
	}{
		{"no auth", url, []byte("{}\n{\"type\":\"event\"}\n{}\n"), nil, 401, "missing authorization", "auth"},
		{"two auth forms", url + "?sentry_key=" + testKey, []byte(event), authHeader(testKey), 401, "multiple authorization", "auth"},
		{"version above 7", url, []byte(event), map[string]string{"X-Sentry-Auth": "Sentry sentry_key=" + testKey + ", sentry_version=8"}, 400, "version", "version"},
		{"bad key", url, []byte(event), authHeader("not a key!"), 401, "invalid", "auth"},
		{"dsn in header, wrong project", url, []byte("{\"dsn\":\"http://" + testKey + "@h/2\"}\n{\"type\":\"event\"}\n{}\n"), nil, 400, "project id", "project_id"},
		{"length overruns body", url, []byte("{}\n{\"type\":\"event\",\"length\":500}\n{}\n"), authHeader(testKey), 400, "offset", "invalid"},
		{"header not json", url, []byte("{}\n{type:event}\n{}\n"), authHeader(testKey), 400, "offset", "invalid"},
		{"event over 1 MiB", url, append([]byte("{}\n{\"type\":\"event\"}\n"), bytes.Repeat([]byte("x"), 1<<20+10)...), authHeader(testKey), 413, "max_event_size", "too_large"},
		{"unknown encoding", url, []byte(event), merge(authHeader(testKey), map[string]string{"Content-Encoding": "lzma"}), 400, "encoding", "encoding"},
		{"corrupt gzip", url, []byte("not gzip at all"), merge(authHeader(testKey), map[string]string{"Content-Encoding": "gzip"}), 400, "decode", "encoding"},
		{"security report as text", n.url + "/api/1/security/?sentry_key=" + testKey, []byte(`{"csp-report":{}}`), map[string]string{"Content-Type": "text/plain"}, 415, "content type", "content_type"},
		{"unknown api path", n.url + "/api/1/nope/", []byte("{}"), nil, 404, "not found", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := n.r.Stats().Rejected[c.reason]
			status, body, hdr := post(t, c.path, c.body, c.headers)
			if status != c.status || !strings.Contains(strings.ToLower(body), strings.ToLower(c.detail)) {
				t.Fatalf("= %d %s; want %d with %q", status, body, c.status, c.detail)
			}
			if !strings.HasPrefix(body, `{"detail":`) && status != 413 {
				t.Errorf("body is not Relay's error shape: %s", body)
			}
			if hdr.Get("Access-Control-Allow-Origin") == "" && status != 413 {
				t.Errorf("no CORS headers on an error")
			}
			if c.reason != "" && n.r.Stats().Rejected[c.reason] != before+1 {
				t.Errorf("rejection %q counted %d → %d", c.reason, before, n.r.Stats().Rejected[c.reason])
			}
		})
	}
	t.Run("declared body over the limit", func(t *testing.T) {
		// Refused from Content-Length alone: the client sends the headers
		// and a first 16 KiB of its 3 MiB, and gets its answer.
		conn, err := net.Dial("tcp", n.r.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprintf(conn, "POST /api/1/envelope/ HTTP/1.1\r\nHost: x\r\nX-Sentry-Auth: Sentry sentry_key=%s\r\nContent-Length: %d\r\n\r\n", testKey, 3<<20)
		conn.Write(bytes.Repeat([]byte("x"), 16<<10))
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 413 || !strings.Contains(string(b), "size limit") {
			t.Fatalf("= %d %s, want 413", resp.StatusCode, b)
		}
	})
	if st := n.r.Stats(); st.Accepted != 0 {
		t.Errorf("bad requests were accepted: %+v", st)
	}
}

func merge(a, b map[string]string) map[string]string {
	m := map[string]string{}
	for k, v := range a {
		m[k] = v
	}
	for k, v := range b {
		m[k] = v
	}
	return m
}

// TestCompressionBombs checks that a small body inflating far past the
// limit is refused at the cap with bounded memory, for gzip and zstd.
func TestCompressionBombs(t *testing.T) {
	n := startNode(t, "limits:\n  max_envelope_size: 1MiB\n")
	// Both bombs are concatenations of one compressed MiB of zeros: gzip
	// readers continue across members and zstd across frames, so the body
	// stays small while its inflated size is what the test wants.
	zeros := make([]byte, 1<<20)
	var member bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&member, gzip.BestCompression)
	zw.Write(zeros)
	zw.Close()
	gzBody := bytes.Repeat(member.Bytes(), 256) // 256 MiB inflated
	enc, _ := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedBestCompression))
	zBody := bytes.Repeat(enc.EncodeAll(zeros, nil), 1024) // 1 GiB inflated
	enc.Close()
	t.Logf("gzip bomb %d bytes (256 MiB inflated), zstd bomb %d bytes (1 GiB inflated)", len(gzBody), len(zBody))

	for _, b := range []struct {
		enc  string
		body []byte
	}{{"gzip", gzBody}, {"zstd", zBody}} {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		status, body, _ := post(t, n.url+"/api/1/envelope/", b.body, merge(authHeader(testKey), map[string]string{"Content-Encoding": b.enc}))
		runtime.ReadMemStats(&after)
		if status != 413 {
			t.Errorf("%s bomb: %d %s, want 413", b.enc, status, body)
		}
		// TotalAlloc counts every byte allocated during the request: the
		// decoder may not have inflated anything near the bomb's size.
		if grew := after.TotalAlloc - before.TotalAlloc; grew > 64<<20 {
			t.Errorf("%s bomb: %d MiB allocated while refusing it", b.enc, grew>>20)
		}
	}
}

// TestSlowBody checks that a client trickling its body is cut off by the
// read timeout instead of holding a connection forever.
func TestSlowBody(t *testing.T) {
	n := startNode(t, "server:\n  read_timeout: 1s\n")
	conn, err := net.Dial("tcp", n.r.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /api/1/envelope/ HTTP/1.1\r\nHost: x\r\nX-Sentry-Auth: Sentry sentry_key=%s\r\nContent-Length: 100000\r\n\r\n", testKey)
	start := time.Now()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 1)
	for {
		if _, err := conn.Write([]byte("x")); err != nil {
			break
		}
		if _, err := conn.Read(buf); err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() && time.Since(start) < 10*time.Second {
				continue
			}
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("slow body held the connection for %s; read_timeout is 1s", took)
	}
}

// TestHTTPSurface covers the small endpoints: health, CORS preflight, the
// GET store beacon, minidump's plain-text id, security reports.
func TestHTTPSurface(t *testing.T) {
	n := startNode(t, "")
	get := func(path string) (int, string, http.Header) {
		resp, err := http.Get(n.url + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), resp.Header
	}
	if s, b, _ := get("/api/relay/healthcheck/live/"); s != 200 || !strings.Contains(b, "true") {
		t.Errorf("live: %d %s", s, b)
	}
	if s, b, _ := get("/api/relay/healthcheck/ready/"); s != 200 || !strings.Contains(b, "true") {
		t.Errorf("ready: %d %s", s, b)
	}

	req, _ := http.NewRequest(http.MethodOptions, n.url+"/api/1/envelope/", nil)
	req.Header.Set("Origin", "https://app.example")
	req.Header.Set("Access-Control-Request-Method", "POST")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Max-Age") != "3600" ||
		!strings.Contains(resp.Header.Get("Access-Control-Expose-Headers"), "x-sentry-rate-limits") ||
		resp.Header.Get("Access-Control-Allow-Origin") != "https://app.example" {
		t.Errorf("preflight: %d %v", resp.StatusCode, resp.Header)
	}

	s, b, h := get("/api/1/store/?sentry_key=" + testKey + "&sentry_version=7&sentry_data=" + strings.ReplaceAll(`{"message":"beacon"}`, `"`, "%22"))
	if s != 200 || h.Get("Content-Type") != "image/gif" || !strings.HasPrefix(b, "GIF89a") {
		t.Errorf("GET store: %d %s %q", s, h.Get("Content-Type"), b)
	}

	dump := append([]byte("MDMP"), bytes.Repeat([]byte{0xab}, 128)...)
	var form bytes.Buffer
	fmt.Fprintf(&form, "--XX\r\nContent-Disposition: form-data; name=\"upload_file_minidump\"; filename=\"crash.dmp\"\r\nContent-Type: application/octet-stream\r\n\r\n%s\r\n--XX\r\nContent-Disposition: form-data; name=\"sentry\"\r\n\r\n{\"release\":\"r1\"}\r\n--XX--\r\n", dump)
	s, b, _ = post(t, n.url+"/api/1/minidump/?sentry_key="+testKey, form.Bytes(), map[string]string{"Content-Type": "multipart/form-data; boundary=XX"})
	if s != 200 || len(b) != 36 || strings.Count(b, "-") != 4 {
		t.Errorf("minidump: %d %q, want a hyphenated UUID", s, b)
	}

	s, b, _ = post(t, n.url+"/api/1/security/?sentry_key="+testKey, []byte(`{"csp-report":{"document-uri":"https://app.example/","violated-directive":"script-src","blocked-uri":"https://evil.example/x.js"}}`),
		map[string]string{"Content-Type": "application/csp-report"})
	if s != 200 {
		t.Errorf("security: %d %s", s, b)
	}
	st := waitBalanced(t, n, 10*time.Second)
	if st.Classes["error"].Delivered.Records < 2 {
		t.Errorf("store beacon and minidump should have been delivered as errors: %+v", st.Classes)
	}
}
