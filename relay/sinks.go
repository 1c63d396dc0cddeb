package relay

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/valyala/fasthttp"

	"github.com/baton-relay/baton/config"
	"github.com/baton-relay/baton/envelope"
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
}

// openSinks opens the sink of every route; sign, when set, signs every
// upstream request (managed mode). On error it closes what it opened.
func openSinks(cfg config.Config, set Settings, out *outcomes, sign func(*fasthttp.Request)) (*sinks, error) {
	s := &sinks{kafka: map[string]*routing.Kafka{}, upstreams: map[string]*routing.Upstream{}}
	if err := s.open(cfg, set, out, sign); err != nil {
		_ = s.close(context.Background())
		return nil, err
	}
	return s, nil
}

func (s *sinks) open(cfg config.Config, set Settings, out *outcomes, sign func(*fasthttp.Request)) error {
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

func (s *sinks) kafkaCluster(cfg config.Config, name string, out *outcomes) (*routing.Kafka, error) {
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
		opts = routing.KafkaOptions{
			Brokers:         kc.Brokers,
			ClientID:        kc.ClientID,
			Compression:     string(kc.Compression),
			MaxMessageBytes: int(kc.MaxMessageBytes),
			DeadLetterTopic: kc.DeadLetterTopic,
		}
	}
	opts.OnDeadLetter = func(_ string, m *routing.Message, _ string) {
		out.deadLettered[m.Class].add(1, 0)
	}
	k, err := routing.NewKafka(opts)
	if err != nil {
		return nil, fmt.Errorf("relay: kafka cluster %q: %w", name, err)
	}
	s.kafka[name] = k
	return k, nil
}

// startEmbedded runs kfake, franz-go's Kafka-protocol broker, in process: the
// development default, so that a fresh checkout has somewhere to deliver.
// Every class topic exists from the start so consumers can subscribe early.
func (s *sinks) startEmbedded(cfg config.Config) (string, error) {
	addr := cfg.Kafka.Embedded.Listen
	// Listen first, so a taken port is a plain error naming the address.
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		var sys *os.SyscallError
		if errors.As(err, &sys) {
			err = sys.Err // "address already in use", without the repetition
		}
		return "", fmt.Errorf("relay: embedded kafka: listen on %s: %w (another Baton or a local Kafka? set kafka.embedded.listen)", addr, err)
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

// forward proxies an unknown /api/ request to the upstream verbatim.
func (s *sinks) forward(ctx *fasthttp.RequestCtx) {
	if err := s.upstream.Forward(ctx, &ctx.Request, &ctx.Response); err != nil {
		jsonError(ctx, fasthttp.StatusBadGateway, "upstream request failed: "+err.Error())
	}
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
