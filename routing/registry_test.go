package routing

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"

	"github.com/baton-relay/baton/config"
	"github.com/baton-relay/baton/envelope"
)

func parseConfig(t *testing.T, yaml string) config.Config {
	t.Helper()
	c, err := config.Parse("test.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestOpenSharesClients: routes to the same upstream or cluster share one
// client; each class gets the sink of its own route's kind.
func TestOpenSharesClients(t *testing.T) {
	cfg := parseConfig(t, `
upstreams: {sentry: {urls: ["http://127.0.0.1:1/"]}}
kafka: {embedded: {listen: "127.0.0.1:0"}}
routes:
  default: {upstream: sentry}
  error: {kafka: embedded, topic: "e.{class}"}
  span: {kafka: embedded}
`)
	s, err := Open(Env{Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	up, ok := s.For(envelope.ClassSession).(*Upstream)
	if !ok || s.For(envelope.ClassLog) != Sink(up) {
		t.Fatalf("session and log sinks = %T, %T; want one shared *Upstream", s.For(envelope.ClassSession), s.For(envelope.ClassLog))
	}
	if again, err := s.Upstream("sentry"); err != nil || again != up {
		t.Errorf("Upstream(sentry) = %p, %v; want the routes' pool %p", again, err, up)
	}
	if _, err := s.Upstream("nope"); err == nil || !strings.Contains(err.Error(), `unknown upstream "nope"`) {
		t.Errorf("Upstream(nope) error = %v", err)
	}
	for _, c := range []envelope.Class{envelope.ClassError, envelope.ClassSpan} {
		if kt, ok := s.For(c).(*kafkaTopic); !ok {
			t.Errorf("%s sink = %T, want a Kafka topic", c, s.For(c))
		} else if want := map[envelope.Class]string{envelope.ClassError: "e.error", envelope.ClassSpan: "baton.span"}[c]; kt.topic != want {
			t.Errorf("%s topic = %q, want %q", c, kt.topic, want)
		}
	}
	if k := s.KafkaClusters(); len(k) != 1 || k["embedded"] == nil {
		t.Errorf("KafkaClusters() = %v, want one client for embedded", k)
	}
	if name, f := s.KafkaFault(); f != nil {
		t.Errorf("KafkaFault() = %s, %v; want none", name, f)
	}
	addr := s.EmbeddedAddr()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("embedded broker at %q: %v", addr, err)
	}
	conn.Close()
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := net.Dial("tcp", addr); err == nil {
		t.Error("embedded broker still listens after Close")
	}
}

// TestOpenEmbeddedPortTaken: a taken embedded port is a ListenError naming
// the setting, and nothing stays open.
func TestOpenEmbeddedPortTaken(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cfg := parseConfig(t, "kafka: {embedded: {listen: \""+ln.Addr().String()+"\"}}\n")
	_, err = Open(Env{Config: cfg})
	var le *ListenError
	if !errors.As(err, &le) || le.Field != "kafka.embedded.listen" || le.Addr != ln.Addr().String() {
		t.Fatalf("Open error = %v, want a ListenError for kafka.embedded.listen", err)
	}
}

func TestRegisterTwicePanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("registering kind kafka again did not panic")
		}
	}()
	Register(config.KafkaDest{}.Kind(), nil)
}
