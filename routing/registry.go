package routing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"

	"github.com/valyala/fasthttp"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"

	"github.com/baton-relay/baton/config"
	"github.com/baton-relay/baton/envelope"
)

// Factory opens the sink of one route: dest is the route's destination
// (the config struct of the kind the factory is registered for), env the
// rest of what it may need. Factories share clients between routes through
// Shared.
type Factory func(dest config.Destination, env *Env) (Sink, error)

var (
	factoriesMu sync.Mutex
	factories   = map[string]Factory{}
)

// Register makes Open use f for the routes whose destination kind is kind
// (config.Destination.Kind). Each kind's file registers itself in an init
// function; registering a kind twice panics.
func Register(kind string, f Factory) {
	factoriesMu.Lock()
	defer factoriesMu.Unlock()
	if _, dup := factories[kind]; dup {
		panic("routing: sink kind " + kind + " registered twice")
	}
	factories[kind] = f
}

func factory(kind string) (Factory, bool) {
	factoriesMu.Lock()
	defer factoriesMu.Unlock()
	f, ok := factories[kind]
	return f, ok
}

// Env is what Open hands every factory besides the destination.
type Env struct {
	// Config is the whole configuration: destinations name its upstreams
	// and Kafka clusters.
	Config config.Config
	// Class is the class whose route is being opened (set by Open).
	Class envelope.Class
	// Logger receives the sinks' state changes. Default: slog.Default().
	Logger *slog.Logger
	// UserAgent is sent to upstreams. Default: "baton".
	UserAgent string
	// Sign, when set, signs every upstream request (managed mode).
	Sign func(*fasthttp.Request)
	// OnDeadLetter, when set, is called for each record Kafka sends to a
	// dead-letter topic.
	OnDeadLetter func(envelope.Class)
	// MeterProvider takes the sinks' instruments (Kafka produce latency and
	// errors). Default: the OTel API's no-op provider.
	MeterProvider metric.MeterProvider

	set *Sinks
}

// closer is a client several routes share, closed once by Sinks.Close.
type closer interface {
	Close(ctx context.Context) error
}

// Shared returns the client of env's sinks stored under key, opening it
// with open the first time; Sinks.Close closes it, in the reverse order of
// opening. Keys are "KIND/NAME", e.g. "kafka/main".
func Shared[T closer](env *Env, key string, open func() (T, error)) (T, error) {
	if c, ok := env.set.shared[key]; ok {
		return c.(T), nil
	}
	c, err := open()
	if err != nil {
		return c, err
	}
	env.set.shared[key] = c
	env.set.order = append(env.set.order, key)
	return c, nil
}

// Sinks are the sinks of every class, opened from a configuration's routes,
// and the clients they share.
type Sinks struct {
	byClass [envelope.NumClasses]Sink
	shared  map[string]closer
	order   []string // keys of shared, in opening order
	env     Env
}

// Open opens the sink of every class's route with the factory registered
// for its destination kind. On error it closes what it opened.
func Open(env Env) (*Sinks, error) {
	if env.Logger == nil {
		env.Logger = slog.Default()
	}
	if env.UserAgent == "" {
		env.UserAgent = DefaultUserAgent
	}
	if env.MeterProvider == nil {
		env.MeterProvider = noop.NewMeterProvider()
	}
	s := &Sinks{shared: map[string]closer{}}
	env.set = s
	s.env = env
	for _, c := range envelope.Classes() {
		dest := env.Config.RouteFor(c).Dest
		if dest == nil {
			_ = s.Close(context.Background())
			return nil, fmt.Errorf("routing: class %s has no route (config validation should have caught this)", c)
		}
		f, ok := factory(dest.Kind())
		if !ok {
			_ = s.Close(context.Background())
			return nil, fmt.Errorf("routing: no sink registered for destination kind %q (class %s)", dest.Kind(), c)
		}
		e := env
		e.Class = c
		sink, err := f(dest, &e)
		if err != nil {
			_ = s.Close(context.Background())
			return nil, err
		}
		s.byClass[c] = sink
	}
	return s, nil
}

// For returns the sink of class.
func (s *Sinks) For(class envelope.Class) Sink { return s.byClass[class] }

// sharedOf returns the shared clients whose key starts with kind+"/", by
// name, in opening order.
func sharedOf[T closer](s *Sinks, kind string) (names []string, clients []T) {
	for _, key := range s.order {
		if name, ok := strings.CutPrefix(key, kind+"/"); ok {
			if c, ok := s.shared[key].(T); ok {
				names, clients = append(names, name), append(clients, c)
			}
		}
	}
	return names, clients
}

// sharedByName returns the shared clients of kind keyed by name.
func sharedByName[T closer](s *Sinks, kind string) map[string]T {
	names, clients := sharedOf[T](s, kind)
	m := make(map[string]T, len(names))
	for i, name := range names {
		m[name] = clients[i]
	}
	return m
}

// Close closes every shared client, the last opened first (a Kafka client
// before the embedded broker it talks to).
func (s *Sinks) Close(ctx context.Context) error {
	var errs []error
	for _, key := range slices.Backward(s.order) {
		if err := s.shared[key].Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("routing: close %s: %w", key, err))
		}
	}
	s.order, s.shared = nil, map[string]closer{}
	return errors.Join(errs...)
}
