package routing

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/baton-relay/baton/config"
	"github.com/baton-relay/baton/envelope"
)

// ListenError is a listener that could not be bound: Field is the setting
// that names Addr ("kafka.embedded.listen").
type ListenError struct {
	Field, Addr string
	Err         error
}

func (e *ListenError) Error() string { return e.Field + " " + e.Addr + ": " + e.Err.Error() }
func (e *ListenError) Unwrap() error { return e.Err }

// embedded is kfake, franz-go's Kafka-protocol broker, run in process.
// local is where Baton itself dials it; advertised is the address its
// metadata gives every client (kafka.embedded.advertised).
type embedded struct {
	c                 *kfake.Cluster
	local, advertised string
}

// ReachableAddr is a host:port a client on this host can connect to for a
// listener bound to a: the same, with 127.0.0.1 for a wildcard host (a
// listener on 0.0.0.0 reports "[::]", which is no address to print or dial).
func ReachableAddr(a net.Addr) string {
	if t, ok := a.(*net.TCPAddr); ok && (t.IP == nil || t.IP.IsUnspecified()) {
		return net.JoinHostPort("127.0.0.1", strconv.Itoa(t.Port))
	}
	return a.String()
}

// advertisedListener is the broker's listener with the address kfake puts
// in its metadata (it advertises its listener's Addr) replaced.
type advertisedListener struct {
	net.Listener
	addr hostPort
}

func (l advertisedListener) Addr() net.Addr { return l.addr }

// hostPort is a net.Addr given as host:port.
type hostPort string

func (hostPort) Network() string  { return "tcp" }
func (h hostPort) String() string { return string(h) }

// dialLocal makes a client reach the embedded broker at local whatever
// address the broker advertises: the advertised name may resolve only
// outside the container Baton runs in.
func (e embedded) dialLocal() kgo.Opt {
	var d net.Dialer
	return kgo.Dialer(func(ctx context.Context, network, host string) (net.Conn, error) {
		if host == e.advertised {
			host = e.local
		}
		return d.DialContext(ctx, network, host)
	})
}

func (e embedded) Close(context.Context) error {
	e.c.Close()
	return nil
}

// startEmbedded runs the embedded broker for env's configuration, once:
// the development default, so that a fresh checkout has somewhere to
// deliver. Every topic a route sends to on it exists from the start so
// consumers can subscribe early.
func startEmbedded(env *Env) (embedded, error) {
	e, err := Shared(env, "embedded/"+config.EmbeddedCluster, func() (embedded, error) {
		cfg := env.Config
		addr := cfg.Kafka.Embedded.Listen
		// Listen first, so a taken port is a plain error naming the address.
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return embedded{}, &ListenError{Field: "kafka.embedded.listen", Addr: addr, Err: err}
		}
		e := embedded{local: ReachableAddr(ln.Addr()), advertised: cfg.Kafka.Embedded.Advertised}
		if e.advertised == "" {
			e.advertised = e.local
		}
		var topics []string
		for _, c := range envelope.Classes() {
			if d, ok := cfg.RouteFor(c).Dest.(config.KafkaDest); ok && d.Kafka == config.EmbeddedCluster {
				topics = append(topics, d.Topic)
				if c == envelope.ClassClientReport && cfg.Outcomes.EmitOutcomes == "true" {
					// Raw outcomes go where client reports go, on their own topics.
					topics = append(topics, cfg.Outcomes.Topic, cfg.Outcomes.BillingTopic)
				}
			}
		}
		c, err := kfake.NewCluster(
			kfake.NumBrokers(1),
			kfake.ListenFn(func(network, _ string) (net.Listener, error) {
				if l := ln; l != nil {
					ln = nil
					return advertisedListener{l, hostPort(e.advertised)}, nil
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
			return embedded{}, fmt.Errorf("routing: embedded kafka on %s: %w", addr, err)
		}
		e.c = c
		if err := limitRetention(e, topics, int64(cfg.Kafka.Embedded.RetentionBytes)); err != nil {
			c.Close()
			return embedded{}, fmt.Errorf("routing: embedded kafka: set retention: %w", err)
		}
		return e, nil
	})
	return e, err
}

// EmbeddedAddr is the embedded broker's advertised address, the one to give
// clients, or "" when none runs.
func (s *Sinks) EmbeddedAddr() string {
	if _, brokers := sharedOf[embedded](s, "embedded"); len(brokers) > 0 {
		return brokers[0].advertised
	}
	return ""
}

// limitRetention sets retention.bytes on the embedded broker's topics: it
// keeps data in memory, so without a bound a long-running development
// broker grows until the process runs out.
func limitRetention(e embedded, topics []string, bytes int64) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.local), e.dialLocal())
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
