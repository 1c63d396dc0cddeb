package integration

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"strings"
	"testing"
	"time"
)

// attachmentEnvelope is an envelope with one attachment of size bytes.
func attachmentEnvelope(size int) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "{\"event_id\":\"9ec79c33ec9942ab8353589fcb2e04dc\"}\n{\"type\":\"attachment\",\"length\":%d,\"filename\":\"a.bin\"}\n", size)
	b.Write(bytes.Repeat([]byte("a"), size))
	b.WriteByte('\n')
	return b.Bytes()
}

func gzipped(b []byte) []byte {
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	zw.Write(b)
	zw.Close()
	return out.Bytes()
}

// TestDecompressedSizeLimit: limits.max_decompressed_size caps what a body
// may expand to, and only that: the same envelope sent plain is accepted.
func TestDecompressedSizeLimit(t *testing.T) {
	n := startNode(t, "limits:\n  max_decompressed_size: 64KiB\n")
	env := attachmentEnvelope(100 << 10)
	status, body, _ := post(t, n.url+"/api/1/envelope/", gzipped(env),
		merge(authHeader(testKey), map[string]string{"Content-Encoding": "gzip"}))
	if status != 413 || !strings.Contains(body, "decompressed body exceeds the size limit") {
		t.Fatalf("gzip body inflating past max_decompressed_size: %d %s", status, body)
	}
	if status, body, _ := post(t, n.url+"/api/1/envelope/", env, authHeader(testKey)); status != 200 {
		t.Fatalf("the same envelope, plain: %d %s", status, body)
	}
}

// TestRecordTooLargeForDestination: on the default config, every class goes
// to the embedded broker, whose records are at most 1 MiB; an envelope part
// larger than that is refused before the ack instead of acknowledged and
// then dropped.
func TestRecordTooLargeForDestination(t *testing.T) {
	n := startNode(t, "")
	status, body, _ := post(t, n.url+"/api/1/envelope/", attachmentEnvelope(1100<<10), authHeader(testKey))
	if status != 413 || !strings.Contains(body, "larger than their destination accepts") {
		t.Fatalf("1.1 MB attachment to a 1 MiB Kafka route: %d %s", status, body)
	}
	if status, body, _ := post(t, n.url+"/api/1/envelope/", attachmentEnvelope(900<<10), authHeader(testKey)); status != 200 {
		t.Fatalf("900 KB attachment: %d %s", status, body)
	}
	st := waitBalanced(t, n, 10*time.Second)
	if st.Accepted != 1 || st.Dropped != 0 {
		t.Fatalf("accepted %d, dropped %d: only the envelope that fits may be accepted", st.Accepted, st.Dropped)
	}
}

// TestBodyBudget drives server.max_inflight_bytes: a request holding most
// of the budget makes a large one wait (503, Retry-After), a small envelope
// still gets through on the floor kept for small requests, one that could
// never fit gets 413, and the budget is whole again once they are done.
func TestBodyBudget(t *testing.T) {
	// Large requests may hold 3.5 MiB together; the last 512 KiB are kept
	// for requests under 256 KiB.
	n := startNode(t, "server:\n  max_inflight_bytes: 4MiB\n")
	url := n.url + "/api/1/envelope/"

	// A chunked envelope whose first MiB has arrived holds it while the
	// rest is on its way.
	held := attachmentEnvelope(900 << 10)
	conn, err := net.Dial("tcp", n.r.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /api/1/envelope/ HTTP/1.1\r\nHost: x\r\nX-Sentry-Auth: Sentry sentry_key=%s\r\nTransfer-Encoding: chunked\r\n\r\n", testKey)
	cw := httputil.NewChunkedWriter(conn)
	cw.Write(held[:800<<10])
	for deadline := time.Now().Add(10 * time.Second); n.r.Stats().Bodies.InUse < 800<<10; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the server holds %d bytes of the chunked body", n.r.Stats().Bodies.InUse)
		}
	}

	body := attachmentEnvelope(2560 << 10)
	if r := hostilePost(url, "", bytes.NewReader(body), int64(len(body))); r.status != 503 {
		t.Errorf("a 2.5 MiB request while 1 MiB is held: %d %v, want 503", r.status, r.err)
	}
	if status, body, _ := post(t, url, attachmentEnvelope(4<<10), authHeader(testKey)); status != 200 {
		t.Errorf("a small envelope while the budget is held: %d %s", status, body)
	}
	body = attachmentEnvelope(4 << 20)
	if r := hostilePost(url, "", bytes.NewReader(body), int64(len(body))); r.status != 413 {
		t.Errorf("an envelope that can never fit the budget: %d %v, want 413", r.status, r.err)
	}

	cw.Write(held[800<<10:])
	cw.Close()
	io.WriteString(conn, "\r\n")
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("the held envelope, once complete: %d %s", resp.StatusCode, b)
	}
	st := waitBalanced(t, n, 10*time.Second)
	if st.Bodies.InUse != 0 || st.Bodies.Peak > st.Bodies.Budget || st.Bodies.Budget != 4<<20 {
		t.Fatalf("body memory after the requests: %+v", st.Bodies)
	}
	if st.Rejected["overload"] != 1 || st.Rejected["too_large"] != 1 {
		t.Errorf("refusals %v, want one overload and one too_large", st.Rejected)
	}
}

// TestForwardedAPILimits: API requests Baton does not serve are streamed to
// the upstream, capped as Relay caps them: release files and dSYMs by
// limits.max_api_file_upload_size, chunk uploads by
// limits.max_api_chunk_upload_size, anything else by
// limits.max_api_payload_size; a body over its cap gets 413 and never
// reaches the upstream.
func TestForwardedAPILimits(t *testing.T) {
	up := newFakeUpstream(t)
	n := startNode(t, fakeUpstreamYAML("sentry", up.url(), "default")+
		"limits:\n  max_api_file_upload_size: 1MiB\n  max_api_chunk_upload_size: 2MiB\n  max_api_payload_size: 64KiB\n")
	cases := []struct {
		path   string
		size   int
		status int
	}{
		{"/api/0/projects/acme/web/releases/1.0/files/", 900 << 10, 200},
		{"/api/0/projects/acme/web/releases/1.0/files/", 1100 << 10, 413},
		{"/api/0/projects/acme/web/releases/1.0/dsyms/", 1100 << 10, 413},
		{"/api/0/organizations/acme/chunk-upload/", 1500 << 10, 200},
		{"/api/0/organizations/acme/chunk-upload/", 2100 << 10, 413},
		{"/api/0/organizations/acme/releases/", 60 << 10, 200},
		{"/api/0/organizations/acme/releases/", 70 << 10, 413},
	}
	for _, chunked := range []bool{false, true} {
		for _, c := range cases {
			body := bytes.Repeat([]byte{'f'}, c.size)
			before := len(up.requests())
			size := int64(len(body))
			if chunked {
				size = -1
			}
			status, detail, err := rawPost(n.url+c.path, nil, bytes.NewReader(body), size)
			if err != nil {
				t.Fatalf("%s (%d bytes, chunked %v): %v", c.path, c.size, chunked, err)
			}
			if status != c.status {
				t.Errorf("%s (%d bytes, chunked %v): %d %s, want %d", c.path, c.size, chunked, status, detail, c.status)
				continue
			}
			got := up.requests()[before:]
			switch {
			case c.status == 413 && !strings.Contains(detail, "limits.max_api_"):
				t.Errorf("%s: 413 without naming the limit: %s", c.path, detail)
			case c.status == 413 && !chunked && len(got) != 0:
				t.Errorf("%s: a body over its limit reached the upstream", c.path)
			case c.status == 200 && (len(got) != 1 || !bytes.Equal(got[0].Body, body) || got[0].RequestURI != c.path):
				t.Errorf("%s: the upstream got %d requests, not the body intact", c.path, len(got))
			}
		}
	}
}
