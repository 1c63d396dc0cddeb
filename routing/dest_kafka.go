package routing

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/baton-relay/baton/config"
)

// Routes with `kafka: CLUSTER, topic: T` produce to topic T of one client
// per cluster; cluster "embedded" is the in-process broker (embedded.go).
func init() {
	Register(config.KafkaDest{}.Kind(), func(d config.Destination, env *Env) (Sink, error) {
		kd := d.(config.KafkaDest)
		k, err := Shared(env, "kafka/"+kd.Kafka, func() (*Kafka, error) { return openCluster(env, kd.Kafka) })
		if err != nil {
			return nil, err
		}
		return k.Topic(kd.Topic), nil
	})
}

func openCluster(env *Env, name string) (*Kafka, error) {
	var opts KafkaOptions
	if name == config.EmbeddedCluster {
		e, err := startEmbedded(env)
		if err != nil {
			return nil, err
		}
		opts = KafkaOptions{Brokers: []string{e.local}, ClientID: "baton", Opts: []kgo.Opt{e.dialLocal()}}
	} else {
		kc, ok := env.Config.Kafka.Clusters[name]
		if !ok {
			return nil, fmt.Errorf("routing: route names unknown kafka cluster %q", name)
		}
		field := "kafka.clusters." + name
		tlsConf, err := kafkaTLS(field+".tls", kc.TLS)
		if err != nil {
			return nil, err
		}
		if kc.TLS.InsecureSkipVerify {
			env.Logger.Warn("INSECURE: Baton does not verify the Kafka brokers' certificates: anyone on the network path can read and change what it sends; use only for testing",
				"cluster", name, "setting", field+".tls.insecure_skip_verify")
		}
		opts = KafkaOptions{
			Brokers:         kc.Brokers,
			ClientID:        kc.ClientID,
			Compression:     string(kc.Compression),
			MaxMessageBytes: int(kc.MaxMessageBytes),
			DeadLetterTopic: kc.DeadLetterTopic,
			Cluster:         name,
			TLS:             tlsConf,
			SASL: SASLOptions{
				Mechanism: string(kc.SASL.Mechanism),
				User:      kc.SASL.Username,
				Password:  string(kc.SASL.Password),
			},
		}
		if ct := kc.CreateTopics; ct.Enabled {
			opts.CreateTopics = &TopicCreation{Partitions: int32(ct.Partitions), Replication: int16(ct.Replication)}
			log := env.Logger
			opts.OnTopicCreated = func(topic string) {
				log.Info("created kafka topic", "cluster", name, "topic", topic,
					"partitions", ct.Partitions, "replication", ct.Replication, "setting", "kafka.clusters."+name+".create_topics")
			}
		}
	}
	if on := env.OnDeadLetter; on != nil {
		opts.OnDeadLetter = func(_ string, m *Message, _ string) { on(m.Class) }
	}
	log := env.Logger
	opts.OnFault = func(f *KafkaFault) { logFault(log, name, f) }
	km, err := newKafkaMetrics(env.MeterProvider, name)
	if err != nil {
		return nil, fmt.Errorf("routing: kafka cluster %q: metrics: %w", name, err)
	}
	opts.Opts = append(opts.Opts, kgo.WithHooks(km))
	k, err := NewKafka(opts)
	if err != nil {
		return nil, fmt.Errorf("routing: kafka cluster %q: %w", name, err)
	}
	return k, nil
}

// logFault logs a change of a cluster's state: once when it starts refusing
// Baton, once when it accepts it again.
func logFault(log *slog.Logger, name string, f *KafkaFault) {
	if f == nil {
		log.Warn("kafka cluster accepts Baton again; buffered records are on their way", "cluster", name)
		return
	}
	fix := map[string]string{
		FaultAuth:          "kafka.clusters." + name + ".sasl",
		FaultTLS:           "kafka.clusters." + name + ".tls",
		FaultAuthorization: "the cluster's ACLs for Baton's user, kafka.clusters." + name + ".sasl.username",
	}[f.Kind]
	log.Error("kafka cluster refuses Baton; its records stay in the buffer until it accepts them (/ready answers 503 meanwhile)",
		"cluster", name, "kind", f.Kind, "check", fix, "err", f)
}

// KafkaClusters returns the Kafka clients by cluster name.
func (s *Sinks) KafkaClusters() map[string]*Kafka {
	return sharedByName[*Kafka](s, "kafka")
}

// KafkaFault returns the first cluster, by name, that refuses Baton, and
// why; "" when none does.
func (s *Sinks) KafkaFault() (string, *KafkaFault) {
	var name string
	var fault *KafkaFault
	names, clients := sharedOf[*Kafka](s, "kafka")
	for i, n := range names {
		if f := clients[i].Health().Fault; f != nil && (fault == nil || n < name) {
			name, fault = n, f
		}
	}
	return name, fault
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
			return nil, fmt.Errorf("routing: %s.ca_file: %w", field, err)
		}
		c.RootCAs = x509.NewCertPool()
		if !c.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("routing: %s.ca_file: %s holds no PEM certificate", field, t.CAFile)
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
			return nil, fmt.Errorf("routing: %s.cert_file and key_file (%s, %s): %w", field, t.CertFile, t.KeyFile, err)
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
		return nil, fmt.Errorf("routing: %s: %w", field, err)
	}
	for rest := b; ; {
		var block *pem.Block
		if block, rest = pem.Decode(rest); block == nil {
			return nil, fmt.Errorf("routing: %s: %s holds no PEM %s", field, path, strings.ToLower(kind))
		}
		if strings.HasSuffix(block.Type, kind) {
			return b, nil
		}
	}
}
