package routing

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// faultLog records OnFault calls: the kind, or "" for a recovery.
type faultLog struct {
	mu  sync.Mutex
	got []string
}

func (l *faultLog) add(f *KafkaFault) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if f == nil {
		l.got = append(l.got, "")
		return
	}
	l.got = append(l.got, f.Kind)
}

func (l *faultLog) kinds() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.got...)
}

func TestKafkaSASLMechanisms(t *testing.T) {
	t.Parallel()
	c := newCluster(t, kfake.EnableSASL(), kfake.SeedTopics(1, "events"),
		kfake.Superuser("PLAIN", "plain-user", "plain-pass"),
		kfake.Superuser("SCRAM-SHA-256", "scram256-user", "scram256-pass"),
		kfake.Superuser("SCRAM-SHA-512", "scram512-user", "scram512-pass"))
	for _, m := range []SASLOptions{
		{"plain", "plain-user", "plain-pass"},
		{"scram-sha-256", "scram256-user", "scram256-pass"},
		{"SCRAM-SHA-512", "scram512-user", "scram512-pass"},
	} {
		k := newTestKafka(t, c, KafkaOptions{SASL: m})
		if errs := send(t, k.Topic("events"), []Message{testMsg(1, m.Mechanism)}); errs[0] != nil {
			t.Errorf("%s: %v", m.Mechanism, errs[0])
		}
		if h := k.Health(); h.Fault != nil || h.ConnectErrors[FaultAuth] != 0 || !h.Connected || h.LastConnectError != "" {
			t.Errorf("%s: health %+v", m.Mechanism, h)
		}
	}
}

// A cluster that refuses Baton's SASL credentials, or requires SASL that is
// not configured: every record fails retryably with the fault, Health and
// OnFault report it once, and later Sends fail at once instead of holding
// records until the produce timeout.
func TestKafkaSASLRefused(t *testing.T) {
	t.Parallel()
	c := newCluster(t, kfake.EnableSASL(), kfake.SeedTopics(1, "events"),
		kfake.Superuser("SCRAM-SHA-512", "baton", "right"))
	for _, tc := range []struct {
		name string
		sasl SASLOptions
	}{
		{"wrong-password", SASLOptions{"scram-sha-512", "baton", "wrong"}},
		{"wrong-mechanism", SASLOptions{"plain", "baton", "right"}},
		{"sasl-missing", SASLOptions{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var faults faultLog
			k := newTestKafka(t, c, KafkaOptions{SASL: tc.sasl, ProduceTimeout: 15 * time.Second, OnFault: faults.add})
			var last time.Duration
			for range 3 {
				start := time.Now()
				errs := send(t, k.Topic("events"), []Message{testMsg(1, "a"), testMsg(1, "b")})
				last = time.Since(start)
				for i, err := range errs {
					var f *KafkaFault
					if err == nil || IsPermanent(err) || !errors.As(err, &f) || f.Kind != FaultAuth {
						t.Fatalf("msg %d: %v, want a retryable SASL fault", i, err)
					}
				}
			}
			if last > time.Second {
				t.Errorf("a Send while the cluster refuses Baton took %s", last)
			}
			h := k.Health()
			if h.Fault == nil || h.Fault.Kind != FaultAuth || h.ConnectErrors[FaultAuth] == 0 {
				t.Errorf("health %+v", h)
			}
			if got := faults.kinds(); len(got) != 1 || got[0] != FaultAuth {
				t.Errorf("OnFault calls %q, want one auth fault", got)
			}
			t.Logf("%v", h.Fault)
		})
	}
}

// testPKI is a CA with a broker certificate for 127.0.0.1 and a client
// certificate.
type testPKI struct {
	roots  *x509.CertPool
	broker tls.Certificate
	client tls.Certificate
}

func newTestPKI(t testing.TB) *testPKI {
	t.Helper()
	key := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	now := time.Now()
	caKey := key()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test ca"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	leaf := func(serial int64, usage x509.ExtKeyUsage, ips []net.IP) tls.Certificate {
		k := key()
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "leaf"},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
			IPAddresses: ips, ExtKeyUsage: []x509.ExtKeyUsage{usage}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: k}
	}
	p := &testPKI{roots: x509.NewCertPool()}
	p.roots.AddCert(ca)
	p.broker = leaf(2, x509.ExtKeyUsageServerAuth, []net.IP{net.IPv4(127, 0, 0, 1)})
	p.client = leaf(3, x509.ExtKeyUsageClientAuth, nil)
	return p
}

func TestKafkaTLS(t *testing.T) {
	t.Parallel()
	pki := newTestPKI(t)
	c := newCluster(t, kfake.SeedTopics(1, "events"), kfake.TLS(&tls.Config{
		Certificates: []tls.Certificate{pki.broker},
		ClientCAs:    pki.roots,
		ClientAuth:   tls.RequireAndVerifyClientCert,
	}))
	for _, tc := range []struct {
		name string
		tls  *tls.Config
		ok   bool
	}{
		{"ca-and-client-cert", &tls.Config{RootCAs: pki.roots, Certificates: []tls.Certificate{pki.client}}, true},
		{"system-roots", &tls.Config{Certificates: []tls.Certificate{pki.client}}, false},
		{"no-client-cert", &tls.Config{RootCAs: pki.roots}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var faults faultLog
			k := newTestKafka(t, c, KafkaOptions{TLS: tc.tls, ProduceTimeout: 3 * time.Second, OnFault: faults.add})
			errs := send(t, k.Topic("events"), []Message{testMsg(1, tc.name)})
			h := k.Health()
			if tc.ok {
				if errs[0] != nil || h.Fault != nil {
					t.Fatalf("send: %v; health %+v", errs[0], h)
				}
				return
			}
			var f *KafkaFault
			if errs[0] == nil || IsPermanent(errs[0]) || !errors.As(errs[0], &f) || f.Kind != FaultTLS {
				t.Fatalf("send: %v, want a retryable TLS fault", errs[0])
			}
			if h.Fault == nil || h.Fault.Kind != FaultTLS || h.ConnectErrors[FaultTLS] == 0 {
				t.Errorf("health %+v", h)
			}
			if got := faults.kinds(); len(got) != 1 || got[0] != FaultTLS {
				t.Errorf("OnFault calls %q, want one tls fault", got)
			}
			t.Logf("%v", h.Fault)
		})
	}
}

// A topic deleted and created again gets a new topic id, which franz-go
// refuses (UNKNOWN_TOPIC_ID) until the topic is purged from the client:
// Send purges it once and delivers to the new topic, also for Sends running
// at the same time.
func TestKafkaTopicRecreated(t *testing.T) {
	t.Parallel()
	c := newCluster(t, kfake.SeedTopics(2, "events"))
	k := newTestKafka(t, c, KafkaOptions{})
	if errs := send(t, k.Topic("events"), []Message{testMsg(1, "before")}); errs[0] != nil {
		t.Fatal(errs[0])
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := adm.DeleteTopic(ctx, "events"); err != nil {
		t.Fatal(err)
	}
	if r, err := adm.CreateTopic(ctx, 2, 1, nil, "events"); err != nil || r.Err != nil {
		t.Fatal(err, r.Err)
	}

	start := time.Now()
	var wg sync.WaitGroup
	results := make([][]error, 4)
	for i := range results {
		wg.Go(func() {
			results[i] = send(t, k.Topic("events"), []Message{testMsg(uint64(i), "after-a"), testMsg(uint64(i), "after-b")})
		})
	}
	wg.Wait()
	took := time.Since(start)
	for i, errs := range results {
		for j, err := range errs {
			if err != nil {
				t.Errorf("send %d msg %d after the recreation: %v", i, j, err)
			}
		}
	}
	if took > 5*time.Second {
		t.Errorf("delivering to the recreated topic took %s", took)
	}
	consumeAll(t, c, "events", 8)
	t.Logf("delivered to the recreated topic in %s", took.Round(time.Millisecond))
}
