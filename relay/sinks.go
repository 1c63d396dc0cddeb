package relay

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/valyala/fasthttp"

	"github.com/baton-relay/baton/config"
	"github.com/baton-relay/baton/envelope"
	"github.com/baton-relay/baton/relay/outcome"
	"github.com/baton-relay/baton/routing"
)

// embeddedCluster is the reserved name of the in-process Kafka broker.
const embeddedCluster = "embedded"

// sinks owns every destination client and the class → sink table.
type sinks struct {
	route     [envelope.NumClasses]routing.Sink
	kafka     map[string]*routing.Kafka
	upstreams map[string]*routing.Upstream
	upstream  *routing.Upstream // the one unknown /api/ requests go to, if any
	embedded  *kfake.Cluster
	log       *slog.Logger
}

// openSinks opens the sink of every route; sign, when set, signs every
// upstream request (managed mode). On error it closes what it opened.
func openSinks(cfg config.Config, set Settings, out *outcome.Counters, sign func(*fasthttp.Request)) (*sinks, error) {
	s := &sinks{kafka: map[string]*routing.Kafka{}, upstreams: map[string]*routing.Upstream{}, log: set.Logger}
	if err := s.open(cfg, set, out, sign); err != nil {
		_ = s.close(context.Background())
		return nil, err
	}
	return s, nil
}

func (s *sinks) open(cfg config.Config, set Settings, out *outcome.Counters, sign func(*fasthttp.Request)) error {
	for _, c := range envelope.Classes() {
		rt := cfg.RouteFor(c)
		switch {
		case rt.Kafka != "":
			k, err := s.kafkaCluster(cfg, rt.Kafka, out)
			if err != nil {
				return err
			}
			s.route[c] = k.Topic(rt.Topic)
		case rt.Upstream != "":
			u, err := s.upstreamPool(cfg, rt.Upstream, set, sign)
			if err != nil {
				return err
			}
			s.route[c] = u
		default:
			return fmt.Errorf("relay: class %s has no route (config validation should have caught this)", c)
		}
	}
	return nil
}

func (s *sinks) kafkaCluster(cfg config.Config, name string, out *outcome.Counters) (*routing.Kafka, error) {
	if k := s.kafka[name]; k != nil {
		return k, nil
	}
	var opts routing.KafkaOptions
	if name == embeddedCluster {
		addr, err := s.startEmbedded(cfg)
		if err != nil {
			return nil, err
		}
		opts = routing.KafkaOptions{Brokers: []string{addr}, ClientID: "baton"}
	} else {
		kc, ok := cfg.Kafka.Clusters[name]
		if !ok {
			return nil, fmt.Errorf("relay: route names unknown kafka cluster %q", name)
		}
		field := "kafka.clusters." + name
		tlsConf, err := kafkaTLS(field+".tls", kc.TLS)
		if err != nil {
			return nil, err
		}
		if kc.TLS.InsecureSkipVerify {
			s.log.Warn("INSECURE: Baton does not verify the Kafka brokers' certificates: anyone on the network path can read and change what it sends; use only for testing",
				"cluster", name, "setting", field+".tls.insecure_skip_verify")
		}
		opts = routing.KafkaOptions{
			Brokers:         kc.Brokers,
			ClientID:        kc.ClientID,
			Compression:     string(kc.Compression),
			MaxMessageBytes: int(kc.MaxMessageBytes),
			DeadLetterTopic: kc.DeadLetterTopic,
			TLS:             tlsConf,
			SASL: routing.SASLOptions{
				Mechanism: string(kc.SASL.Mechanism),
				User:      kc.SASL.Username,
				Password:  string(kc.SASL.Password),
			},
		}
	}
	opts.OnDeadLetter = func(_ string, m *routing.Message, _ string) {
		out.DeadLetter(m.Class, 1, 0)
	}
	opts.OnFault = func(f *routing.KafkaFault) { s.logFault(name, f) }
	k, err := routing.NewKafka(opts)
	if err != nil {
		return nil, fmt.Errorf("relay: kafka cluster %q: %w", name, err)
	}
	s.kafka[name] = k
	return k, nil
}

// logFault logs a change of a cluster's state: once when it starts refusing
// Baton, once when it accepts it again.
func (s *sinks) logFault(name string, f *routing.KafkaFault) {
	if f == nil {
		s.log.Warn("kafka cluster accepts Baton again; buffered records are on their way", "cluster", name)
		return
	}
	fix := map[string]string{
		routing.FaultAuth:          "kafka.clusters." + name + ".sasl",
		routing.FaultTLS:           "kafka.clusters." + name + ".tls",
		routing.FaultAuthorization: "the cluster's ACLs for Baton's user, kafka.clusters." + name + ".sasl.username",
	}[f.Kind]
	s.log.Error("kafka cluster refuses Baton; its records stay in the buffer until it accepts them (/ready answers 503 meanwhile)",
		"cluster", name, "kind", f.Kind, "check", fix, "err", f)
}

// kafkaFault returns the first cluster, by name, that refuses Baton, and
// why; "" when none does.
func (s *sinks) kafkaFault() (string, *routing.KafkaFault) {
	for _, name := range slices.Sorted(maps.Keys(s.kafka)) {
		if f := s.kafka[name].Health().Fault; f != nil {
			return name, f
		}
	}
	return "", nil
}

// kafkaTLS builds the TLS config of a cluster from its settings under field
// (kafka.clusters.NAME.tls), or nil when TLS is off. A file that cannot be
// read or parsed is an error naming the field and the file.
func kafkaTLS(field string, t config.TLS) (*tls.Config, error) {
	if !t.Enabled {
		return nil, nil
	}
	c := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         t.ServerName,
		InsecureSkipVerify: t.InsecureSkipVerify, //nolint:gosec // the operator's explicit choice, warned about at start
	}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("relay: %s.ca_file: %w", field, err)
		}
		c.RootCAs = x509.NewCertPool()
		if !c.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("relay: %s.ca_file: %s holds no PEM certificate", field, t.CAFile)
		}
	}
	if t.CertFile != "" || t.KeyFile != "" {
		certPEM, err := readPEM(field+".cert_file", t.CertFile, "CERTIFICATE")
		if err != nil {
			return nil, err
		}
		keyPEM, err := readPEM(field+".key_file", t.KeyFile, "PRIVATE KEY")
		if err != nil {
			return nil, err
		}
		cert, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			return nil, fmt.Errorf("relay: %s.cert_file and key_file (%s, %s): %w", field, t.CertFile, t.KeyFile, err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}

// readPEM reads path, the setting field, and checks that it holds a PEM
// block whose type ends in kind.
func readPEM(field, path, kind string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("relay: %s: %w", field, err)
	}
	for rest := b; ; {
		var block *pem.Block
		if block, rest = pem.Decode(rest); block == nil {
			return nil, fmt.Errorf("relay: %s: %s holds no PEM %s", field, path, strings.ToLower(kind))
		}
		if strings.HasSuffix(block.Type, kind) {
			return b, nil
		}
	}
}

// startEmbedded runs kfake, franz-go's Kafka-protocol broker, in process: the
// development default, so that a fresh checkout has somewhere to deliver.
// Every class topic exists from the start so consumers can subscribe early.
func (s *sinks) startEmbedded(cfg config.Config) (string, error) {
	addr := cfg.Kafka.Embedded.Listen
	// Listen first, so a taken port is a plain error naming the address.
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", listenError("kafka.embedded.listen", addr, err)
	}
	var topics []string
	for _, c := range envelope.Classes() {
		if rt := cfg.RouteFor(c); rt.Kafka == embeddedCluster {
			topics = append(topics, rt.Topic)
		}
	}
	c, err := kfake.NewCluster(
		kfake.NumBrokers(1),
		kfake.ListenFn(func(network, _ string) (net.Listener, error) {
			if l := ln; l != nil {
				ln = nil
				return l, nil
			}
			return net.Listen(network, addr)
		}),
		kfake.AllowAutoTopicCreation(),
		kfake.SeedTopics(1, topics...),
		// How often retention is applied to topics that set it.
		kfake.BrokerConfigs(map[string]string{"log.cleaner.backoff.ms": "10000"}),
	)
	if err != nil {
		if ln != nil {
			ln.Close()
		}
		return "", fmt.Errorf("relay: embedded kafka on %s: %w", addr, err)
	}
	s.embedded = c
	if err := limitRetention(c, topics, int64(cfg.Kafka.Embedded.RetentionBytes)); err != nil {
		return "", fmt.Errorf("relay: embedded kafka: set retention: %w", err)
	}
	return c.ListenAddrs()[0], nil
}

func (s *sinks) embeddedAddr() string {
	if s.embedded == nil {
		return ""
	}
	return s.embedded.ListenAddrs()[0]
}

func (s *sinks) upstreamPool(cfg config.Config, name string, set Settings, sign func(*fasthttp.Request)) (*routing.Upstream, error) {
	if u := s.upstreams[name]; u != nil {
		return u, nil
	}
	uc, ok := cfg.Upstreams[name]
	if !ok {
		return nil, fmt.Errorf("relay: route names unknown upstream %q", name)
	}
	maxFailures := uc.MaxFailures
	if maxFailures == 0 {
		maxFailures = -1 // config: 0 never ejects
	}
	connectTimeout := uc.ConnectTimeout
	u, err := routing.NewUpstream(routing.UpstreamOptions{
		URLs:            uc.URLs,
		Compression:     string(uc.Compression),
		Timeout:         uc.Timeout,
		MaxFailures:     maxFailures,
		ProbeInterval:   uc.ProbeInterval,
		MaxConnsPerHost: uc.MaxConns,
		UserAgent:       "baton/" + set.Version,
		Sign:            sign,
		Dial: func(addr string) (net.Conn, error) {
			return fasthttp.DialTimeout(addr, connectTimeout)
		},
	})
	if err != nil {
		return nil, fmt.Errorf("relay: upstream %q: %w", name, err)
	}
	s.upstreams[name] = u
	if s.upstream == nil {
		s.upstream = u
	}
	return u, nil
}

func (s *sinks) close(ctx context.Context) error {
	var errs []error
	for name, k := range s.kafka {
		if err := k.Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("relay: close kafka %q: %w", name, err))
		}
	}
	for name, u := range s.upstreams {
		if err := u.Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("relay: close upstream %q: %w", name, err))
		}
	}
	if s.embedded != nil {
		s.embedded.Close()
	}
	return errors.Join(errs...)
}

// limitRetention sets retention.bytes on the embedded broker's topics: it
// keeps data in memory, so without a bound a long-running development
// broker grows until the process runs out.
func limitRetention(c *kfake.Cluster, topics []string, bytes int64) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	v := strconv.FormatInt(bytes, 10)
	resps, err := kadm.NewClient(cl).AlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: "retention.bytes", Value: &v}}, topics...)
	if err != nil {
		return err
	}
	for _, r := range resps {
		if r.Err != nil {
			return fmt.Errorf("topic %s: %w", r.Name, r.Err)
		}
	}
	return nil
}
