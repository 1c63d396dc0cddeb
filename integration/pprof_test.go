package integration

import (
	"bytes"
	"compress/gzip"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestPprofListen checks telemetry.pprof_listen: set, its own listener
// serves a CPU profile (gzipped profile.proto of cpu/nanoseconds samples)
// and closes with the relay; unset, no port of the relay serves
// /debug/pprof/.
func TestPprofListen(t *testing.T) {
	n := startNode(t, "telemetry:\n  metrics_listen: 127.0.0.1:0\n  pprof_listen: 127.0.0.1:0\n")
	addr := n.r.PprofAddr()
	if addr == nil {
		t.Fatal("pprof_listen set, but no PprofAddr")
	}
	if addr.String() == n.r.MetricsAddr().String() || "http://"+addr.String() == n.url {
		t.Fatalf("pprof on %v shares a listener (ingest %s, metrics %v)", addr, n.url, n.r.MetricsAddr())
	}
	client := &http.Client{Timeout: 30 * time.Second}
	resp, err := client.Get("http://" + addr.String() + "/debug/pprof/profile?seconds=1")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("profile: %d %v %.200q", resp.StatusCode, err, body)
	}
	zr, err := gzip.NewReader(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("profile is not gzip: %v", err)
	}
	proto, err := io.ReadAll(zr)
	if err != nil || len(proto) == 0 {
		t.Fatalf("profile: %d bytes, %v", len(proto), err)
	}
	for _, s := range []string{"cpu", "nanoseconds", "samples"} {
		if !bytes.Contains(proto, []byte(s)) {
			t.Errorf("profile's string table lacks %q", s)
		}
	}
	if st, _ := pprofGet(t, "http://"+addr.String()+"/debug/pprof/goroutine?debug=1"); st != http.StatusOK {
		t.Errorf("goroutine profile: %d", st)
	}
	n.close()
	if c, err := net.DialTimeout("tcp", addr.String(), time.Second); err == nil {
		c.Close()
		t.Errorf("pprof listener %v still open after the relay closed", addr)
	}

	// Unset (the default): nothing serves it, on any of the relay's ports.
	m := startNode(t, "telemetry:\n  metrics_listen: 127.0.0.1:0\n")
	if m.r.PprofAddr() != nil {
		t.Fatalf("pprof_listen unset, but PprofAddr %v", m.r.PprofAddr())
	}
	for _, base := range []string{m.url, "http://" + m.r.MetricsAddr().String()} {
		if st, body := pprofGet(t, base+"/debug/pprof/goroutine?debug=1"); st == http.StatusOK && strings.Contains(body, "goroutine profile") {
			t.Errorf("%s serves pprof with pprof_listen unset", base)
		}
	}
}

func pprofGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
