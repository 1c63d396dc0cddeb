package relay

import (
	"github.com/baton-relay/baton/config"
	"github.com/baton-relay/baton/relay/aggregate"
)

// aggregation is the state of the metrics stage that outlives its loops
// (relay/forward's Metrics runs them): the aggregator and the cardinality
// limiter, which /metrics reports on.
type aggregation struct {
	agg *aggregate.Aggregator
	lim *aggregate.Limiter // nil: no cardinality limit configured
}

func newAggregation(cfg config.Config) (*aggregation, error) {
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
		a.lim = aggregate.NewLimiter(aggregate.LimitOptions{
			Limit: m.CardinalityLimit, Window: m.CardinalityWindow, MaxScopes: m.CardinalityScopes,
		})
	}
	return a, nil
}
