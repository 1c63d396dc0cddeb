package integration

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/baton-relay/baton/config"
	"github.com/baton-relay/baton/relay"
)

// authStartNode is startNodeIn with the relay's log (warnings and up) also
// kept in the returned buffer, for tests that assert on log lines.
func authStartNode(t *testing.T, dir, extra string) (*node, *crashLogBuf) {
	t.Helper()
	logs := &crashLogBuf{}
	n := runNode(t, authConfig(t, dir, extra), dir, logs)
	return n, logs
}

// authConfig loads the test base config (loopback, buffer in dir) with
// extra on top.
func authConfig(t *testing.T, dir, extra string) config.Config {
	t.Helper()
	base := fmt.Sprintf("server:\n  listen: 127.0.0.1:0\nbuffer:\n  dir: %s\n  reserve_bytes: 1MiB\ntelemetry:\n  metrics_listen: 127.0.0.1:0\n", dir)
	return loadConfig(t, base, extra)
}

// authClusterYAML routes every class to cluster "k" at addr with the
// given sasl and tls settings (YAML flow maps, or "").
func authClusterYAML(addr, sasl, tls string) string {
	s := fmt.Sprintf("kafka:\n  clusters:\n    k:\n      brokers: [%q]\n      compression: none\n", addr)
	if sasl != "" {
		s += "      sasl: " + sasl + "\n"
	}
	if tls != "" {
		s += "      tls: " + tls + "\n"
	}
	return s + "routes:\n  default: {kafka: k}\n"
}

// authPost posts n tagged events for project 42.
func authPost(t *testing.T, n *node, tag string, count int) []string {
	t.Helper()
	var tags []string
	for i := range count {
		tg := fmt.Sprintf("%s-%02d", tag, i)
		if status, resp, _ := post(t, n.url+"/api/42/envelope/", faultEventWithAttachment(tg, 64), authHeader(testKey)); status != 200 {
			t.Fatalf("POST %s = %d %s", tg, status, resp)
		}
		tags = append(tags, tg)
	}
	return tags
}

// authConsume reads topic from the start with a client made of opts until
// every tag was seen.
func authConsume(t *testing.T, topic string, tags []string, opts ...kgo.Opt) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(append(opts, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	var recs []*kgo.Record
	for len(faultTags(recs, tags...)) < len(tags) {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("topic %s: %d of %d tagged records after 15s (%d records)", topic, len(faultTags(recs, tags...)), len(tags), len(recs))
		}
		fs.EachError(func(topic string, p int32, err error) { t.Logf("fetch %s/%d: %v", topic, p, err) })
		recs = append(recs, fs.Records()...)
	}
	return recs
}

// authReady is the status of n's readiness endpoint.
func authReady(t *testing.T, n *node) int {
	t.Helper()
	resp, err := http.Get(n.url + "/api/relay/healthcheck/ready/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// authStats reads n's /api/relay/stats/.
func authStats(t *testing.T, n *node) relay.Stats {
	t.Helper()
	return crashStats(t, http.DefaultClient, n.url)
}

// TestKafkaSASL: a cluster that requires SASL gets Baton's records with
// each mechanism, read back by an authenticated client.
func TestKafkaSASL(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "baton.error"), kfake.EnableSASL(),
		kfake.Superuser("PLAIN", "plain-user", "plain-pass"),
		kfake.Superuser("SCRAM-SHA-256", "s256-user", "s256-pass"),
		kfake.Superuser("SCRAM-SHA-512", "s512-user", "s512-pass"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	addr := c.ListenAddrs()[0]
	reader := kgo.SASL(scram.Auth{User: "s512-user", Pass: "s512-pass"}.AsSha512Mechanism())

	for _, tc := range []struct {
		mechanism, user, pass string
		auth                  sasl.Mechanism
	}{
		{"plain", "plain-user", "plain-pass", plain.Auth{User: "plain-user", Pass: "plain-pass"}.AsMechanism()},
		{"scram-sha-256", "s256-user", "s256-pass", scram.Auth{User: "s256-user", Pass: "s256-pass"}.AsSha256Mechanism()},
		{"scram-sha-512", "s512-user", "s512-pass", nil},
	} {
		t.Run(tc.mechanism, func(t *testing.T) {
			n, _ := authStartNode(t, t.TempDir(), authClusterYAML(addr,
				fmt.Sprintf("{mechanism: %s, username: %s, password: %s}", tc.mechanism, tc.user, tc.pass), ""))
			tags := authPost(t, n, "sasl-"+tc.mechanism, 3)
			r := reader
			if tc.auth != nil {
				r = kgo.SASL(tc.auth) // read with the same user
			}
			recs := authConsume(t, "baton.error", tags, kgo.SeedBrokers(addr), r)
			for tag, k := range faultTags(recs, tags...) {
				if k != 1 {
					t.Errorf("%s: %d copies", tag, k)
				}
			}
			st := waitBalanced(t, n, 10*time.Second)
			if e := st.Classes["error"]; e.Delivered.Records != 3 || len(e.Dropped) != 0 {
				t.Errorf("outcomes %+v", e)
			}
			if code := authReady(t, n); code != 200 {
				t.Errorf("ready = %d", code)
			}
			expectMetrics(t, n, `baton_kafka_cluster_up{cluster="k"} 1`, `baton_kafka_connect_errors_total{cluster="k",kind="auth"} 0`)
		})
	}
}

// authRefused checks a relay whose cluster refuses it: /ready answers 503,
// the log says why once, the metrics show it, and the records wait in the
// buffer, none dropped.
func authRefused(t *testing.T, n *node, logs *crashLogBuf, kind string, posted int) {
	t.Helper()
	fakeWaitFor(t, 20*time.Second, func() bool { return authReady(t, n) == 503 },
		func() string { return "ready still 200 while the cluster refuses Baton\n" + logs.String() })
	// Let Baton try a few more times: still one line per state change.
	series := fmt.Sprintf(`baton_kafka_connect_errors_total{cluster="k",kind=%q}`, kind)
	seen := metricValue(t, n, series)
	fakeWaitFor(t, 20*time.Second, func() bool { return metricValue(t, n, series) >= seen+3 },
		func() string { return fmt.Sprintf("%s stays below %d\n%s", series, seen+3, logs.String()) })
	if got := strings.Count(logs.String(), "kafka cluster refuses Baton"); got != 1 {
		t.Errorf("%d log lines for the refusal, want 1:\n%s", got, logs.String())
	}
	if !strings.Contains(logs.String(), "kind="+kind) {
		t.Errorf("the log does not name the %s fault:\n%s", kind, logs.String())
	}
	expectMetrics(t, n, `baton_kafka_cluster_up{cluster="k"} 0`, "baton_ready 0")
	st := authStats(t, n)
	e := st.Classes["error"]
	if !st.Balanced || e.Accepted.Records != int64(posted) || e.Delivered.Records != 0 || len(e.Dropped) != 0 || st.Pending != int64(posted) {
		t.Errorf("stats while refused: balanced %v pending %d, error class %+v", st.Balanced, st.Pending, e)
	}
}

// authRecovered checks a relay restarted with the right settings on the
// buffer of a refused one: everything accepted is delivered.
func authRecovered(t *testing.T, n *node, logs *crashLogBuf, tags []string, opts ...kgo.Opt) {
	t.Helper()
	authConsume(t, "baton.error", tags, opts...)
	st := waitBalanced(t, n, 10*time.Second)
	if e := st.Classes["error"]; st.Recovered.Records != int64(len(tags)) || e.Delivered.Records != int64(len(tags)) || len(e.Dropped) != 0 {
		t.Errorf("after the restart: recovered %d, error class %+v", st.Recovered.Records, e)
	}
	if code := authReady(t, n); code != 200 {
		t.Errorf("ready = %d after the fix", code)
	}
	if strings.Contains(logs.String(), "refuses Baton") {
		t.Errorf("the fixed relay logs a refusal:\n%s", logs.String())
	}
	expectMetrics(t, n, `baton_kafka_cluster_up{cluster="k"} 1`)
}

// metricValue returns the value of the /metrics line starting with series.
func metricValue(t *testing.T, n *node, series string) int64 {
	t.Helper()
	text := metricsText(t, n)
	for line := range strings.SplitSeq(text, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			var x float64 // the text format writes large values as 1e+06
			fmt.Sscan(v, &x)
			return int64(x)
		}
	}
	t.Fatalf("/metrics has no %s:\n%s", series, text)
	return 0
}

// TestKafkaSASLWrongCredentials: with a wrong password Baton keeps what it
// accepted, says why (log, /ready, /metrics), and a restart with the right
// password on the same buffer delivers it all.
func TestKafkaSASLWrongCredentials(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "baton.error"), kfake.EnableSASL(),
		kfake.Superuser("SCRAM-SHA-512", "baton", "right-password"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	addr := c.ListenAddrs()[0]
	dir := t.TempDir()

	n, logs := authStartNode(t, dir, authClusterYAML(addr, "{mechanism: scram-sha-512, username: baton, password: wrong-password}", ""))
	tags := authPost(t, n, "wrong-creds", 5)
	authRefused(t, n, logs, "auth", len(tags))
	if !strings.Contains(logs.String(), "kafka.clusters.k.sasl") {
		t.Errorf("the log does not name the setting to fix:\n%s", logs.String())
	}
	n.close()

	n, logs = authStartNode(t, dir, authClusterYAML(addr, "{mechanism: scram-sha-512, username: baton, password: right-password}", ""))
	authRecovered(t, n, logs, tags, kgo.SeedBrokers(addr), kgo.SASL(scram.Auth{User: "baton", Pass: "right-password"}.AsSha512Mechanism()))
}

// authPKI writes a CA, a broker certificate for 127.0.0.1 and a client
// certificate as PEM files into dir, and returns the broker's TLS config
// (client certificates required) and the client's (for reading back).
type authPKI struct {
	ca, clientCert, clientKey string // PEM files
	broker, reader            *tls.Config
}

func newAuthPKI(t *testing.T) *authPKI {
	t.Helper()
	dir := t.TempDir()
	newKey := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	now := time.Now()
	caKey := newKey()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "baton test ca"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	leaf := func(serial int64, usage x509.ExtKeyUsage, ips []net.IP) ([]byte, *ecdsa.PrivateKey) {
		k := newKey()
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: fmt.Sprint("leaf ", serial)},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IPAddresses: ips, ExtKeyUsage: []x509.ExtKeyUsage{usage}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return der, k
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	brokerDER, brokerKey := leaf(2, x509.ExtKeyUsageServerAuth, []net.IP{net.IPv4(127, 0, 0, 1)})
	clientDER, clientKey := leaf(3, x509.ExtKeyUsageClientAuth, nil)
	keyDER, err := x509.MarshalPKCS8PrivateKey(clientKey)
	if err != nil {
		t.Fatal(err)
	}
	client := tls.Certificate{Certificate: [][]byte{clientDER}, PrivateKey: clientKey}
	return &authPKI{
		ca:         write("ca.pem", "CERTIFICATE", caDER),
		clientCert: write("client.pem", "CERTIFICATE", clientDER),
		clientKey:  write("client-key.pem", "PRIVATE KEY", keyDER),
		broker: &tls.Config{
			Certificates: []tls.Certificate{{Certificate: [][]byte{brokerDER}, PrivateKey: brokerKey}},
			ClientCAs:    roots, ClientAuth: tls.RequireAndVerifyClientCert,
		},
		reader: &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{client}},
	}
}

// TestKafkaTLS: a broker with a certificate of the test's own CA that
// requires client certificates (mutual TLS). Baton delivers with ca_file and
// its client certificate; without the CA (system roots) or without a client
// certificate it fails clearly and loses nothing, and a restart with the
// right settings on the same buffer delivers everything.
func TestKafkaTLS(t *testing.T) {
	pki := newAuthPKI(t)
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "baton.error"), kfake.TLS(pki.broker))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	addr := c.ListenAddrs()[0]
	reader := []kgo.Opt{kgo.SeedBrokers(addr), kgo.DialTLSConfig(pki.reader)}
	good := fmt.Sprintf("{enabled: true, ca_file: %q, cert_file: %q, key_file: %q}", pki.ca, pki.clientCert, pki.clientKey)

	t.Run("ca-and-client-cert", func(t *testing.T) {
		n, logs := authStartNode(t, t.TempDir(), authClusterYAML(addr, "", good))
		tags := authPost(t, n, "tls-ok", 3)
		authConsume(t, "baton.error", tags, reader...)
		waitBalanced(t, n, 10*time.Second)
		if code := authReady(t, n); code != 200 {
			t.Errorf("ready = %d", code)
		}
		if strings.Contains(logs.String(), "INSECURE") || strings.Contains(logs.String(), "refuses Baton") {
			t.Errorf("unexpected log:\n%s", logs.String())
		}
	})
	for _, tc := range []struct{ name, tls string }{
		{"system-roots", fmt.Sprintf("{enabled: true, cert_file: %q, key_file: %q}", pki.clientCert, pki.clientKey)},
		{"no-client-cert", fmt.Sprintf("{enabled: true, ca_file: %q}", pki.ca)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			n, logs := authStartNode(t, dir, authClusterYAML(addr, "", tc.tls))
			tags := authPost(t, n, "tls-"+tc.name, 3)
			authRefused(t, n, logs, "tls", len(tags))
			if !strings.Contains(logs.String(), "kafka.clusters.k.tls") {
				t.Errorf("the log does not name the setting to fix:\n%s", logs.String())
			}
			n.close()
			n, logs = authStartNode(t, dir, authClusterYAML(addr, "", good))
			authRecovered(t, n, logs, tags, reader...)
		})
	}
	t.Run("insecure-skip-verify", func(t *testing.T) {
		n, logs := authStartNode(t, t.TempDir(), authClusterYAML(addr, "",
			fmt.Sprintf("{enabled: true, insecure_skip_verify: true, cert_file: %q, key_file: %q}", pki.clientCert, pki.clientKey)))
		if !strings.Contains(logs.String(), "INSECURE") || !strings.Contains(logs.String(), "kafka.clusters.k.tls.insecure_skip_verify") {
			t.Errorf("no loud warning at start:\n%s", logs.String())
		}
		tags := authPost(t, n, "tls-insecure", 1)
		authConsume(t, "baton.error", tags, reader...)
	})
}

// TestKafkaTLSFileErrors: a CA, certificate or key file that cannot be read
// or parsed stops the start with one line naming the setting and the file.
func TestKafkaTLSFileErrors(t *testing.T) {
	pki := newAuthPKI(t)
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.pem")
	garbage := filepath.Join(dir, "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, tls string
		want      []string
	}{
		{"ca-missing", fmt.Sprintf("{enabled: true, ca_file: %q}", missing),
			[]string{"kafka.clusters.k.tls.ca_file", missing, "no such file"}},
		{"ca-garbage", fmt.Sprintf("{enabled: true, ca_file: %q}", garbage),
			[]string{"kafka.clusters.k.tls.ca_file", garbage, "no PEM certificate"}},
		{"cert-missing", fmt.Sprintf("{enabled: true, cert_file: %q, key_file: %q}", missing, pki.clientKey),
			[]string{"kafka.clusters.k.tls.cert_file", missing}},
		{"cert-garbage", fmt.Sprintf("{enabled: true, cert_file: %q, key_file: %q}", garbage, pki.clientKey),
			[]string{"kafka.clusters.k.tls.cert_file", garbage, "no PEM certificate"}},
		{"key-garbage", fmt.Sprintf("{enabled: true, cert_file: %q, key_file: %q}", pki.clientCert, garbage),
			[]string{"kafka.clusters.k.tls.key_file", garbage, "no PEM private key"}},
		{"key-is-a-certificate", fmt.Sprintf("{enabled: true, cert_file: %q, key_file: %q}", pki.clientCert, pki.ca),
			[]string{"kafka.clusters.k.tls.key_file", pki.ca}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := authConfig(t, t.TempDir(), authClusterYAML("127.0.0.1:1", "", tc.tls))
			r, err := relay.New(cfg, relay.Settings{Logger: slog.New(slog.NewTextHandler(testWriter{t}, nil))})
			if err == nil {
				r.Close()
				t.Fatal("relay.New accepted the config")
			}
			msg := err.Error()
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q lacks %q", msg, w)
				}
			}
			if strings.Contains(msg, "\n") {
				t.Errorf("error spans lines: %q", msg)
			}
		})
	}
}
