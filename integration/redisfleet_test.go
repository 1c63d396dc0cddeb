package integration

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// fleetRedis is a redis-server (Debian's package) the test started on
// 127.0.0.1 and a free port.
type fleetRedis struct {
	addr string
	args []string
	cmd  *exec.Cmd
}

// startFleetRedis starts redis-server with extra arguments; without the
// binary the test skips, or fails with BATON_REQUIRE_REDIS=1 (CI).
func startFleetRedis(t *testing.T, extra ...string) *fleetRedis {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		if os.Getenv("BATON_REQUIRE_REDIS") != "" {
			t.Fatal("redis-server not found and BATON_REQUIRE_REDIS is set (apt-get install redis-server)")
		}
		t.Skip("redis-server not installed (apt-get install redis-server)")
	}
	port := faultFreePort(t)
	r := &fleetRedis{addr: "127.0.0.1:" + strconv.Itoa(port)}
	r.args = append([]string{"--bind", "127.0.0.1", "--port", strconv.Itoa(port), "--save", "", "--appendonly", "no", "--dir", t.TempDir()}, extra...)
	r.start(t)
	t.Cleanup(r.kill)
	return r
}

// start runs the server and waits until its port accepts connections.
func (r *fleetRedis) start(t *testing.T) {
	t.Helper()
	r.cmd = exec.Command("redis-server", r.args...)
	out := &crashLogBuf{}
	r.cmd.Stdout, r.cmd.Stderr = out, out
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	fakeWaitFor(t, 10*time.Second, func() bool {
		c, err := net.DialTimeout("tcp", r.addr, time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	}, func() string { return "redis-server did not listen on " + r.addr + ":\n" + out.String() })
}

// kill ends the server at once (SIGKILL).
func (r *fleetRedis) kill() {
	if r.cmd != nil {
		_ = r.cmd.Process.Kill()
		_ = r.cmd.Wait()
		r.cmd = nil
	}
}

// fleetNode is one baton process of the fleet, with its status page.
type fleetNode struct {
	*crashProc
	metrics string // http://host:port of telemetry.metrics_listen
}

// startFleetNode runs the baton binary in managed mode against the fake
// Sentry, with the redis section redisYAML. Shutdown is not under test:
// a short drain window, and the nodes are SIGKILLed at the end.
func startFleetNode(t *testing.T, bin, sentry, redisYAML string) *fleetNode {
	t.Helper()
	dir := t.TempDir()
	metrics := "127.0.0.1:" + strconv.Itoa(faultFreePort(t))
	cfg := fmt.Sprintf("server: {listen: 127.0.0.1:0, shutdown_timeout: 1s}\nbuffer: {dir: %s, reserve_bytes: 1MiB}\ntelemetry: {metrics_listen: %q}\n%s",
		filepath.Join(dir, "data"), metrics, redisYAML) + managedYAML(sentry, "")
	path := filepath.Join(dir, "baton.yaml")
	must(t, os.WriteFile(path, []byte(cfg), 0o600))
	n := &fleetNode{crashProc: crashStart(t, bin, path), metrics: "http://" + metrics}
	n.waitReady(t, http.DefaultClient, 10*time.Second)
	return n
}

// redisStatus is the redis part of /api/status.
type redisStatus struct {
	Up        bool   `json:"up"`
	Leases    int64  `json:"leases"`
	Fallbacks int64  `json:"fallbacks"`
	LastError string `json:"last_error"`
	// The metric cardinality batches Redis decided, and the series
	// decided locally without it.
	CardinalityCalls     int64 `json:"cardinality_calls"`
	CardinalityFallbacks int64 `json:"cardinality_fallbacks"`
}

func (n *fleetNode) redis(t *testing.T) redisStatus {
	t.Helper()
	code, b, err := crashGet(http.DefaultClient, n.metrics+"/api/status")
	if err != nil || code != 200 {
		t.Fatalf("GET /api/status: %d %v", code, err)
	}
	var p struct {
		Redis *redisStatus `json:"redis"`
	}
	if err := json.Unmarshal(b, &p); err != nil || p.Redis == nil {
		t.Fatalf("/api/status has no redis: %v %.300s", err, b)
	}
	return *p.Redis
}

// metric returns the value of an unlabelled series of /metrics.
func (n *fleetNode) metric(t *testing.T, name string) float64 {
	t.Helper()
	_, b, err := crashGet(http.DefaultClient, n.metrics+"/metrics")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, name+" "); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return v
		}
		if rest, ok := strings.CutPrefix(line, name+"{"); ok {
			_, val, _ := strings.Cut(rest, "} ")
			v, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return v
		}
	}
	t.Fatalf("/metrics has no %s", name)
	return 0
}

// fleetSend posts an error event with message msg for project pid and key,
// and returns the status (0 for a transport error).
func fleetSend(c *http.Client, base string, pid int, key, msg string) int {
	return fleetPost(c, base, pid, key, fmt.Sprintf("{\"dsn\":\"http://%s@h/%d\"}\n{\"type\":\"event\"}\n{\"message\":%q}\n", key, pid, msg))
}

// fleetPost posts the envelope body for project pid and key and returns
// the status (0 for a transport error).
func fleetPost(c *http.Client, base string, pid int, key, body string) int {
	req, _ := http.NewRequest(http.MethodPost, fmt.Sprintf("%s/api/%d/envelope/", base, pid), strings.NewReader(body))
	for k, v := range authHeader(key) {
		req.Header.Set(k, v)
	}
	res, err := c.Do(req)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode
}

// fleetQuota serves project pid with key and an error quota of limit per
// hour, scope project.
func fleetQuota(s *fakeSentry, pid uint64, key, id string, limit int) {
	s.setProject(key, fakeSentryProjectState(pid, key, "r1", func(m map[string]any) {
		m["config"].(map[string]any)["quotas"] = []any{map[string]any{"id": id, "categories": []any{"error"},
			"scope": "project", "limit": limit, "window": 3600, "reasonCode": id + "_over"}}
	}))
}

// fleetWarm sends a client report (which no quota counts) to every node
// and waits until each has configs project configs cached (this one too), so the events that
// follow are judged at ingest.
func fleetWarm(t *testing.T, nodes []*fleetNode, pid int, key string, configs int) {
	t.Helper()
	for i, n := range nodes {
		body := fmt.Sprintf("{\"dsn\":\"http://%s@h/%d\"}\n{\"type\":\"client_report\"}\n{\"timestamp\":1700000000,\"discarded_events\":[]}\n", key, pid)
		if code, resp, _ := post(t, fmt.Sprintf("%s/api/%d/envelope/", n.base, pid), []byte(body), authHeader(key)); code != 200 {
			t.Fatalf("warm-up of node %d: %d %s", i, code, resp)
		}
		fakeWaitFor(t, 10*time.Second, func() bool {
			_, b, err := crashGet(http.DefaultClient, n.metrics+"/api/status")
			var p struct {
				Managed struct {
					Configs int   `json:"configs"`
					Waiting int64 `json:"waiting_records"`
				} `json:"managed"`
			}
			return err == nil && json.Unmarshal(b, &p) == nil && p.Managed.Configs >= configs && p.Managed.Waiting == 0
		}, func() string { return fmt.Sprintf("node %d did not cache project %d", i, pid) })
	}
}

// TestRedisFleet runs three baton processes sharing one redis-server: a
// quota of 300 errors admits exactly 300 sent concurrently across the
// fleet (each alone would admit 300: 900 in all); then Redis is killed
// under load: ingest goes on with local counting (limit / fallback_share),
// nothing acked is lost, and counting returns to Redis once it is back.
// Then auth+TLS and cluster mode (fleetAuthTLS, fleetCluster), with the
// same binary; and redis.pool_size bounding connections (fleetPoolSize).
func TestRedisFleet(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the baton binary and redis-server")
	}
	start := time.Now()
	rs := startFleetRedis(t)
	bin := crashBuildBaton(t)
	t.Logf("redis-server and the baton build: %v", time.Since(start).Round(time.Millisecond))
	s := newFakeSentry(t)
	const (
		pid1, key1 = 61, "61616161616161616161616161616161"
		pid2, key2 = 62, "62626262626262626262626262626262"
		pid3, key3 = 64, "64646464646464646464646464646464"
	)
	fleetQuota(s, pid1, key1, "fleet_errs", 300)
	fleetQuota(s, pid2, key2, "fleet_outage", 600)
	fleetQuota(s, pid3, key3, "fleet_stop", 30)                                                                            // under 32: a lease of 1, every decision asks Redis
	redisYAML := fmt.Sprintf("redis: {addresses: [%q], fallback_share: 3, probe_interval: 50ms, max_wait: 1s}\n", rs.addr) // a loaded machine: no fallback
	var nodes []*fleetNode
	for range 3 {
		nodes = append(nodes, startFleetNode(t, bin, s.url(), redisYAML))
	}
	t.Logf("three Batons ready: %v", time.Since(start).Round(time.Millisecond))
	c := crashClient(t)

	t.Run("exact global quota", func(t *testing.T) {
		fleetWarm(t, nodes, pid1, key1, 1)
		var ok, limited, other atomic.Int64
		var wg sync.WaitGroup
		// Each sender goes on until its Baton refuses: a Baton refuses
		// only once its lease is spent and Redis has none left, so no
		// lease is left over (with a fixed share of the requests, a Baton
		// that got ahead could keep part of a lease it had no requests
		// left to spend).
		for w := range 12 {
			wg.Go(func() {
				for i := range 100 {
					switch fleetSend(c, nodes[w%3].base, pid1, key1, fmt.Sprintf("exact-%d-%d", w, i)) {
					case 200:
						ok.Add(1)
					case 429:
						limited.Add(1)
						return
					default:
						other.Add(1)
					}
				}
			})
		}
		wg.Wait()
		if ok.Load() != 300 || limited.Load() != 12 || other.Load() != 0 {
			t.Fatalf("12 senders to 3 Batons with a global quota of 300, each until refused: %d accepted, %d limited, %d other; want exactly 300 and 12",
				ok.Load(), limited.Load(), other.Load())
		}
		fakeWaitFor(t, 10*time.Second, func() bool { return deliveredTo(s, pid1, "exact-") == 300 },
			func() string {
				return fmt.Sprintf("%d of 300 accepted events delivered", deliveredTo(s, pid1, "exact-"))
			})
		var leases float64
		for _, n := range nodes {
			if v := n.metric(t, "baton_redis_up"); v != 1 {
				t.Errorf("baton_redis_up = %v, want 1", v)
			}
			leases += n.metric(t, "baton_quota_leases_total")
			if f := n.metric(t, "baton_quota_fallbacks_total"); f != 0 {
				t.Errorf("baton_quota_fallbacks_total = %v with Redis up", f)
			}
		}
		// Leases of 300/32 = 9 items: most decisions made without Redis.
		if leases < 300/9 || leases > 300/9+9 {
			t.Errorf("%v leases for 300 admitted; want about 34", leases)
		}
	})

	t.Run("redis killed mid-load", func(t *testing.T) {
		fleetWarm(t, nodes, pid2, key2, 2)
		var mu sync.Mutex
		acked := map[string]bool{}
		send := func(phase string, per int) {
			var wg sync.WaitGroup
			for w := range 6 {
				wg.Go(func() {
					for i := range per {
						msg := fmt.Sprintf("outage-%s-%d-%d", phase, w, i)
						if code := fleetSend(c, nodes[w%3].base, pid2, key2, msg); code == 200 {
							mu.Lock()
							acked[msg] = true
							mu.Unlock()
						} else {
							t.Errorf("%s: %d", msg, code)
						}
					}
				})
			}
			wg.Wait()
		}
		var wg sync.WaitGroup
		wg.Go(func() { send("before", 10) })
		// Killed while the first phase is in flight.
		fakeWaitFor(t, 10*time.Second, func() bool { mu.Lock(); defer mu.Unlock(); return len(acked) >= 20 },
			func() string { return "no load reached the fleet" })
		rs.kill()
		wg.Wait()
		send("down", 10)
		for i, n := range nodes {
			if v := n.metric(t, "baton_redis_up"); v != 0 {
				t.Errorf("node %d: baton_redis_up = %v with Redis down", i, v)
			}
			if v := n.metric(t, "baton_quota_fallbacks_total"); v == 0 {
				t.Errorf("node %d: no fallback decision with Redis down", i)
			}
			// The status page samples once a second.
			fakeWaitFor(t, 5*time.Second, func() bool { st := n.redis(t); return !st.Up && st.Fallbacks > 0 && st.LastError != "" },
				func() string { return fmt.Sprintf("node %d status with Redis down: %+v", i, n.redis(t)) })
		}
		if !strings.Contains(nodes[0].stderr.String(), "redis unreachable; counting quotas locally") {
			t.Errorf("no log line for the fallback:\n%s", crashTail(nodes[0].stderr.String(), 2000))
		}
		// Node 0 alone, until it refuses: its share is 600 / fallback_share
		// 3 = 200 in the window, the 40 it admitted before (20 with Redis,
		// leases included, 20 without) counted.
		capped := 0
		for i := range 300 {
			msg := fmt.Sprintf("outage-cap-%d", i)
			code := fleetSend(c, nodes[0].base, pid2, key2, msg)
			if code == 429 {
				break
			}
			if code != 200 {
				t.Fatalf("%s: %d", msg, code)
			}
			acked[msg] = true
			capped++
		}
		if capped != 200-40 {
			t.Errorf("node 0 admitted %d more with Redis down, want 160: its share of 200 less the 40 it admitted", capped)
		}
		if code := fleetSend(c, nodes[1].base, pid2, key2, "outage-other"); code != 200 {
			t.Errorf("node 1 answered %d past node 0's share: its own share is not spent", code)
		} else {
			acked["outage-other"] = true
		}
		leases := make([]float64, len(nodes))
		for i, n := range nodes {
			leases[i] = n.metric(t, "baton_quota_leases_total")
		}
		rs.start(t)
		for i, n := range nodes {
			fakeWaitFor(t, 10*time.Second, func() bool { return n.metric(t, "baton_redis_up") == 1 },
				func() string { return fmt.Sprintf("node %d did not find Redis again: %+v", i, n.redis(t)) })
		}
		send("after", 10)
		for i, n := range nodes {
			if v := n.metric(t, "baton_quota_leases_total"); v <= leases[i] {
				t.Errorf("node %d took no lease after Redis returned (%v, before %v)", i, v, leases[i])
			}
		}
		if len(acked) != 180+161 {
			t.Errorf("%d of 341 acked; a quota of 600 (200 per Baton in fallback) admits them all", len(acked))
		}
		fakeWaitFor(t, 15*time.Second, func() bool { return deliveredTo(s, pid2, "outage-") >= len(acked) },
			func() string {
				return fmt.Sprintf("%d of %d acked events delivered", deliveredTo(s, pid2, "outage-"), len(acked))
			})
		for msg := range acked {
			if deliveredTo(s, pid2, msg+`"`) == 0 {
				t.Errorf("acked %s not delivered", msg)
			}
		}
	})
	t.Run("redis stopped", func(t *testing.T) {
		// SIGSTOP: Redis hung, its connections open and silent. A decision
		// waits max_wait (1s here) at most, then counts locally; after
		// SIGCONT the probe finds Redis and counting goes back there, with
		// what was admitted meanwhile.
		fleetWarm(t, nodes, pid3, key3, 3)
		for i, n := range nodes {
			if code := fleetSend(c, n.base, pid3, key3, fmt.Sprintf("stop-before-%d", i)); code != 200 {
				t.Fatalf("node %d: %d with Redis up", i, code)
			}
		}
		fallbacks := make([]float64, len(nodes))
		for i, n := range nodes {
			fallbacks[i] = n.metric(t, "baton_quota_fallbacks_total")
		}
		must(t, rs.cmd.Process.Signal(syscall.SIGSTOP))
		stopped := true
		defer func() {
			if stopped {
				_ = rs.cmd.Process.Signal(syscall.SIGCONT)
			}
		}()
		for i, n := range nodes {
			for j := range 3 {
				start := time.Now()
				code := fleetSend(c, n.base, pid3, key3, fmt.Sprintf("stop-hung-%d-%d", i, j))
				// max_wait, and as much again for a loaded machine: far
				// below the client's 1 s dial timeout that a probe holds.
				if d := time.Since(start); d > 2*time.Second {
					t.Errorf("node %d: an event took %v with Redis hung, max_wait is 1s", i, d)
				}
				if code != 200 {
					t.Errorf("node %d: %d with Redis hung; its share (30/3) admits it", i, code)
				}
			}
			if v := n.metric(t, "baton_quota_fallbacks_total"); v <= fallbacks[i] {
				t.Errorf("node %d: no fallback decision with Redis hung", i)
			}
			if v := n.metric(t, "baton_redis_up"); v != 0 {
				t.Errorf("node %d: baton_redis_up = %v with Redis hung", i, v)
			}
			fakeWaitFor(t, 5*time.Second, func() bool { st := n.redis(t); return !st.Up && st.LastError != "" },
				func() string { return fmt.Sprintf("node %d status with Redis hung: %+v", i, n.redis(t)) })
		}
		must(t, rs.cmd.Process.Signal(syscall.SIGCONT))
		stopped = false
		for i, n := range nodes {
			fakeWaitFor(t, 10*time.Second, func() bool { return n.metric(t, "baton_redis_up") == 1 },
				func() string { return fmt.Sprintf("node %d did not find Redis again: %+v", i, n.redis(t)) })
			if code := fleetSend(c, n.base, pid3, key3, fmt.Sprintf("stop-after-%d", i)); code != 200 {
				t.Errorf("node %d: %d after SIGCONT", i, code)
			}
		}
		// Leases of one: Redis counts what was admitted, the 9 admitted
		// while it hung included: 3 before, 9, 3 after; and each node's
		// first call while it hung, which timed out in the node but sat in
		// Redis's socket and ran at SIGCONT: a lease no node got (the
		// fleet may admit less for it, never more).
		keys := fleetRedisCmd(t, rs.addr, "KEYS", "baton:q:*fleet_stop*")
		name := strings.Split(keys, "\r\n")
		if len(name) < 3 {
			t.Fatalf("no quota key in redis: %q", keys)
		}
		got := strings.Split(fleetRedisCmd(t, rs.addr, "GET", name[2]), "\r\n")
		if n, err := strconv.Atoi(got[min(1, len(got)-1)]); err != nil || n < 15 || n > 18 {
			t.Errorf("redis counts %q for the quota, want 15 (3 + 9 admitted while hung + 3) and up to 3 timed-out leases", got)
		} else {
			t.Logf("redis counts %d: 15 admitted, %d leases of calls that timed out", n, n-15)
		}
	})
	t.Run("auth and TLS", func(t *testing.T) { fleetAuthTLS(t, bin) })
	t.Run("cluster", func(t *testing.T) { fleetCluster(t, bin) })
	t.Run("pool_size", func(t *testing.T) { fleetPoolSize(t, bin) })
}

// fleetCerts writes a CA and a server certificate for 127.0.0.1 to dir and
// returns the paths of the CA, the server certificate and its key.
func fleetCerts(t *testing.T, dir string) (ca, cert, key string) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "baton test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	must(t, err)
	caCert, _ := x509.ParseCertificate(caDER)
	srvKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	srvTmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, caCert, &srvKey.PublicKey, caKey)
	must(t, err)
	keyDER, err := x509.MarshalECPrivateKey(srvKey)
	must(t, err)
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		must(t, os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600))
		return p
	}
	return write("ca.pem", "CERTIFICATE", caDER), write("server.pem", "CERTIFICATE", srvDER), write("server.key", "EC PRIVATE KEY", keyDER)
}

// fleetAuthTLS: two Batons reach a redis-server that requires a password,
// over TLS, with the password from a file and the CA from redis.tls.ca_file,
// and share its quota; a third with a wrong password falls back to local
// counting and says so.
func fleetAuthTLS(t *testing.T, bin string) {
	dir := t.TempDir()
	ca, cert, key := fleetCerts(t, dir)
	tlsPort := faultFreePort(t)
	rs := startFleetRedis(t, "--requirepass", "s3cret", "--tls-port", strconv.Itoa(tlsPort),
		"--tls-cert-file", cert, "--tls-key-file", key, "--tls-ca-cert-file", ca, "--tls-auth-clients", "no")
	// The plain port is the one the helper waited for; Batons use TLS.
	tlsAddr := "127.0.0.1:" + strconv.Itoa(tlsPort)
	fakeWaitFor(t, 5*time.Second, func() bool {
		c, err := net.DialTimeout("tcp", tlsAddr, time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	}, func() string { return "no TLS listener" })
	_ = rs
	pw := filepath.Join(dir, "pw")
	must(t, os.WriteFile(pw, []byte("s3cret\n"), 0o600))
	s := newFakeSentry(t)
	const pid, k = 63, "63636363636363636363636363636363"
	fleetQuota(s, pid, k, "tls_errs", 10)
	good := fmt.Sprintf("redis: {addresses: [%q], password_file: %q, tls: {enabled: true, ca_file: %q}}\n", tlsAddr, pw, ca)
	nodes := []*fleetNode{startFleetNode(t, bin, s.url(), good), startFleetNode(t, bin, s.url(), good)}
	fleetWarm(t, nodes, pid, k, 1)
	c := crashClient(t)
	accepted := 0
	for i := range 20 {
		if fleetSend(c, nodes[i%2].base, pid, k, fmt.Sprintf("tls-%d", i)) == 200 {
			accepted++
		}
	}
	if accepted != 10 {
		t.Errorf("%d of 20 accepted by two Batons over TLS with a quota of 10, want 10", accepted)
	}
	for i, n := range nodes {
		if up, l := n.metric(t, "baton_redis_up"), n.metric(t, "baton_quota_leases_total"); up != 1 || l == 0 {
			t.Errorf("node %d: baton_redis_up %v, %v leases; want up with leases", i, up, l)
		}
	}
	bad := startFleetNode(t, bin, s.url(), fmt.Sprintf("redis: {addresses: [%q], password: wrong, tls: {enabled: true, ca_file: %q}}\n", tlsAddr, ca))
	fakeWaitFor(t, 5*time.Second, func() bool { st := bad.redis(t); return !st.Up && strings.Contains(st.LastError, "WRONGPASS") },
		func() string { return fmt.Sprintf("wrong password: %+v, want down with WRONGPASS", bad.redis(t)) })
}

// fleetCluster: with redis.cluster, two Batons speak the Redis Cluster
// protocol to a one-node cluster (all 16384 slots) and share a quota there.
func fleetCluster(t *testing.T, bin string) {
	dir := t.TempDir()
	rs := startFleetRedis(t, "--cluster-enabled", "yes", "--cluster-config-file", filepath.Join(dir, "nodes.conf"))
	fleetRedisCmd(t, rs.addr, "CLUSTER", "ADDSLOTSRANGE", "0", "16383")
	fakeWaitFor(t, 10*time.Second, func() bool {
		return strings.Contains(fleetRedisCmd(t, rs.addr, "CLUSTER", "INFO"), "cluster_state:ok")
	}, func() string { return "cluster not ok" })
	s := newFakeSentry(t)
	const pid, k = 64, "64646464646464646464646464646464"
	fleetQuota(s, pid, k, "cluster_errs", 40)
	cfg := fmt.Sprintf("redis: {addresses: [%q], cluster: true, max_wait: 1s}\n", rs.addr) // a loaded machine: no fallback
	nodes := []*fleetNode{startFleetNode(t, bin, s.url(), cfg), startFleetNode(t, bin, s.url(), cfg)}
	fleetWarm(t, nodes, pid, k, 1)
	c := crashClient(t)
	accepted := 0
	for i := range 80 {
		if fleetSend(c, nodes[i%2].base, pid, k, fmt.Sprintf("cluster-%d", i)) == 200 {
			accepted++
		}
	}
	if accepted != 40 {
		t.Errorf("%d of 80 accepted by two Batons on a cluster with a quota of 40, want 40", accepted)
	}
	for i, n := range nodes {
		if up, l := n.metric(t, "baton_redis_up"), n.metric(t, "baton_quota_leases_total"); up != 1 || l == 0 {
			t.Errorf("node %d: baton_redis_up %v, %v leases; want up with leases", i, up, l)
		}
	}
}

// fleetRedisCmd sends one command in RESP and returns the raw reply.
func fleetRedisCmd(t *testing.T, addr string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	must(t, err)
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	_, err = io.WriteString(conn, b.String())
	must(t, err)
	buf := make([]byte, 8192)
	n, err := conn.Read(buf)
	must(t, err)
	if strings.HasPrefix(string(buf[:n]), "-") {
		t.Fatalf("redis %v: %s", args, buf[:n])
	}
	return string(buf[:n])
}
