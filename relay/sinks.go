package relay

import (
	"errors"

	"github.com/valyala/fasthttp"
	"go.opentelemetry.io/otel/metric"

	"github.com/baton-relay/baton/config"
	"github.com/baton-relay/baton/envelope"
	"github.com/baton-relay/baton/relay/outcome"
	"github.com/baton-relay/baton/routing"
)

// openSinks opens the sink of every route (routing.Open); sign, when set,
// signs every upstream request (managed mode). Records Kafka dead-letters
// count in out.
func openSinks(cfg config.Config, set Settings, mp metric.MeterProvider, out *outcome.Counters, sign func(*fasthttp.Request)) (*routing.Sinks, error) {
	s, err := routing.Open(routing.Env{
		Config:        cfg,
		MeterProvider: mp,
		Logger:        set.Logger,
		UserAgent:     "baton/" + set.Version,
		Sign:          sign,
		OnDeadLetter:  func(c envelope.Class) { out.DeadLetter(c, 1, 0) },
	})
	if le := (*routing.ListenError)(nil); errors.As(err, &le) {
		return nil, listenError(le.Field, le.Addr, le.Err)
	}
	return s, err
}
