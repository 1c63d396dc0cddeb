package routing

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/baton-relay/baton/config"
)

// ClientOpts returns the franz-go options that reach the named cluster of
// cfg as Baton's producer does (seed brokers, client id, TLS, SASL), for
// other Kafka clients of Baton's (routing/lanes). "embedded" is the broker
// of `baton run` at its advertised (else listen) address.
func ClientOpts(cfg config.Config, cluster string) ([]kgo.Opt, error) {
	if cluster == config.EmbeddedCluster {
		return []kgo.Opt{kgo.SeedBrokers(cfg.LaneBrokers()...), kgo.ClientID("baton-lanes")}, nil
	}
	kc, ok := cfg.Kafka.Clusters[cluster]
	if !ok {
		return nil, fmt.Errorf("routing: unknown kafka cluster %q", cluster)
	}
	opts := []kgo.Opt{kgo.SeedBrokers(kc.Brokers...), kgo.ClientID(kc.ClientID)}
	tlsConf, err := kafkaTLS("kafka.clusters."+cluster+".tls", kc.TLS)
	if err != nil {
		return nil, err
	}
	if tlsConf != nil {
		opts = append(opts, kgo.DialTLSConfig(tlsConf))
	}
	m, err := saslMechanism(SASLOptions{Mechanism: string(kc.SASL.Mechanism), User: kc.SASL.Username, Password: string(kc.SASL.Password)})
	if err != nil {
		return nil, err
	}
	if m != nil {
		opts = append(opts, kgo.SASL(m))
	}
	return opts, nil
}
