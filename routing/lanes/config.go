package lanes

import (
	"log/slog"
	"maps"
	"slices"

	"github.com/baton-relay/baton/config"
	"github.com/baton-relay/baton/routing"
)

// FromConfig builds Options from cfg's lanes section (validated by
// config.Load). Lanes are ordered chain by chain, fastest first.
func FromConfig(cfg config.Config, log *slog.Logger) (Options, error) {
	lc := cfg.Lanes
	if len(lc.Topics) == 0 {
		return Options{}, ErrNoLanes
	}
	kopts, err := routing.ClientOpts(cfg, lc.Kafka)
	if err != nil {
		return Options{}, err
	}
	o := Options{Kafka: kopts, Group: lc.Group, SessionTimeout: lc.SessionTimeout, Logger: log}
	seen := map[string]bool{}
	add := func(topic string) {
		if seen[topic] {
			return
		}
		seen[topic] = true
		l := lc.Topics[topic]
		var h Handler
		if l.Handler.URL != "" {
			h = NewHTTP(l.Handler.URL, l.Concurrency)
		} else {
			h = &Command{Argv: l.Handler.Command}
		}
		o.Lanes = append(o.Lanes, LaneOptions{Topic: topic, Next: l.Next, DeadLetterTopic: l.DeadLetterTopic,
			Deadline: l.Deadline, Concurrency: l.Concurrency, MaxAttempts: l.MaxAttempts, RateLimit: l.RateLimit,
			PauseNextLag: l.PauseNextLag, Ordered: l.Ordered, Handler: h})
	}
	for _, chain := range cfg.LaneChain() {
		for _, t := range chain {
			add(t)
		}
	}
	for _, t := range slices.Sorted(maps.Keys(lc.Topics)) {
		add(t) // lanes on a loop; Validate refuses those, a Config built in code may not
	}
	return o, nil
}
