package relay

import (
	"github.com/baton-relay/baton/config"
	"github.com/baton-relay/baton/relay/aggregate"
	"github.com/baton-relay/baton/relay/fleet"
)

// aggregation is the state of the metrics stage that outlives its loops
// (relay/forward's Metrics runs them): the aggregator and the cardinality
// limiter, which /metrics reports on.
type aggregation struct {
	agg *aggregate.Aggregator
	lim *aggregate.Limiter // nil: no cardinality limit configured
}

// newAggregation builds the metrics stage's state; with fc (redis:
// configured) cardinality limits are counted fleet-wide in Redis.
func newAggregation(cfg config.Config, fc *fleet.Counter) (*aggregation, error) {
	m := cfg.Metrics
	delay := m.InitialDelay
	if delay == 0 {
		delay = -1 // the package's "none"; its zero is the default
	}
	agg, err := aggregate.New(aggregate.Options{
		BucketInterval:  m.BucketInterval,
		InitialDelay:    delay,
		MaxBytes:        int64(m.MaxBytes),
		MaxScopeBytes:   int64(m.MaxProjectBytes),
		MaxSecsInPast:   m.MaxPast,
		MaxSecsInFuture: m.MaxFuture,
		Partitions:      max(m.FlushPartitions, 1),
	})
	if err != nil {
		return nil, err
	}
	a := &aggregation{agg: agg}
	if m.CardinalityLimit > 0 || cfg.Mode == config.ModeManaged {
		o := aggregate.LimitOptions{
			Limit: m.CardinalityLimit, Window: m.CardinalityWindow, MaxScopes: m.CardinalityScopes,
		}
		if fc != nil {
			o.Store = &seriesStore{c: fc}
		}
		a.lim = aggregate.NewLimiter(o)
	}
	return a, nil
}
