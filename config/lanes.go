package config

import (
	"maps"
	"slices"
	"strings"
	"time"
)

// Lanes configures `baton lanes`, the deadline-lane worker (routing/lanes):
// Kafka topics chained from fast to slow, each consumed by its own
// consumer group and handed to a handler under a deadline.
type Lanes struct {
	// Kafka is the cluster the lanes live on: a name of kafka.clusters, or
	// "embedded" for the broker `baton run` embeds (reached at
	// kafka.embedded.advertised, else kafka.embedded.listen).
	// Default: embedded.
	Kafka string `yaml:"kafka"`
	// Group is the consumer-group prefix: the lane on topic T is consumed
	// by group "<Group>.<T>". Default: baton-lanes.
	Group string `yaml:"group"`
	// SessionTimeout is the consumer-group session timeout: a worker that
	// is silent this long (killed) loses its partitions to the others.
	// Default: 10s.
	SessionTimeout time.Duration `yaml:"session_timeout"`
	// MetricsListen is the host:port of the per-lane Prometheus /metrics;
	// "" is off. The same metrics are pushed over OTLP per
	// telemetry.otlp_endpoint, otlp_headers and otlp_interval (which
	// `baton lanes` honours; telemetry.metrics_listen is `baton run`'s).
	// Default: "".
	MetricsListen string `yaml:"metrics_listen"`
	// Topics are the lanes by topic. Default: none. Unset fields of each
	// entry come from Defaults.Lane.
	Topics map[string]Lane `yaml:"topics"`
}

// Lane is one topic of a lane chain and how its records are handled.
type Lane struct {
	// Next is the lane (a key of lanes.topics) a record escalates to when
	// the handler misses Deadline, asks to escalate, or fails MaxAttempts
	// times; "" is the end of the chain: such records are dead-lettered.
	// Default: "".
	Next string `yaml:"next"`
	// DeadLetterTopic receives records the handler refuses (4xx) and those
	// that would escalate past the last lane, with a reason header.
	// Default: baton.dead_letter.
	DeadLetterTopic string `yaml:"dead_letter_topic"`
	// Deadline is how long the handler has for one record before it moves
	// on to Next. Default: 2s.
	Deadline time.Duration `yaml:"deadline"`
	// Concurrency is the records handled at once. Default: 16.
	Concurrency int `yaml:"concurrency"`
	// MaxAttempts is the handler calls for a record that keep failing
	// (5xx, no connection, a command that crashes) before it escalates.
	// Default: 3.
	MaxAttempts int `yaml:"max_attempts"`
	// RateLimit caps handler calls per second; 0 is unlimited. Default: 0.
	RateLimit float64 `yaml:"rate_limit"`
	// PauseNextLag pauses this lane while the next lane's consumer lag is
	// above it (records), so escalations wait instead of piling up; 0 is
	// off. Default: 0.
	PauseNextLag int64 `yaml:"pause_next_lag"`
	// Ordered handles one record per key at a time, in offset order.
	// Default: false.
	Ordered bool `yaml:"ordered"`
	// Handler is what handles a record: exactly one of URL and Command.
	Handler LaneHandler `yaml:"handler"`
}

// LaneHandler is an HTTP endpoint or a command.
type LaneHandler struct {
	// URL receives each record as a POST. Default: "".
	URL string `yaml:"url"`
	// Command is run per record, the value on stdin. Default: [].
	Command []string `yaml:"command"`
}

// LaneChain returns the lanes that start chains (no lane escalates to them),
// each followed by the lanes it escalates to, in order.
func (c Config) LaneChain() [][]string {
	into := map[string]bool{}
	for _, l := range c.Lanes.Topics {
		if l.Next != "" {
			into[l.Next] = true
		}
	}
	var chains [][]string
	for _, t := range slices.Sorted(maps.Keys(c.Lanes.Topics)) {
		if into[t] {
			continue
		}
		var chain []string
		for cur := t; cur != "" && !slices.Contains(chain, cur); cur = c.Lanes.Topics[cur].Next {
			chain = append(chain, cur)
		}
		chains = append(chains, chain)
	}
	return chains
}

func (v *validator) lanes() {
	l := v.c.Lanes
	if l.Kafka != EmbeddedCluster {
		if _, ok := v.c.Kafka.Clusters[l.Kafka]; !ok {
			names := append([]string{EmbeddedCluster}, slices.Sorted(maps.Keys(v.c.Kafka.Clusters))...)
			v.errorf("lanes.kafka", "%q is neither \"embedded\" nor a name of kafka.clusters%s", l.Kafka, suggest(l.Kafka, names))
		}
	}
	if l.Group == "" {
		v.errorf("lanes.group", "must not be empty")
	}
	v.durationPositive("lanes.session_timeout", l.SessionTimeout)
	if l.MetricsListen != "" {
		v.hostPort("lanes.metrics_listen", l.MetricsListen, true)
	}
	names := slices.Sorted(maps.Keys(l.Topics))
	for _, t := range names {
		ln, p := l.Topics[t], "lanes.topics."+t
		if why := checkTopic(t); why != "" {
			v.errorf(p, "topic %q %s", t, why)
		}
		if ln.Next != "" {
			if _, ok := l.Topics[ln.Next]; !ok {
				v.errorf(p+".next", "%q is not a lane (a key of lanes.topics)%s", ln.Next, suggest(ln.Next, names))
			} else if loops(l.Topics, t) {
				v.errorf(p+".next", "%q leads back to %q: lanes must end", ln.Next, t)
			}
		}
		if why := checkTopic(ln.DeadLetterTopic); why != "" {
			v.errorf(p+".dead_letter_topic", "%q %s", ln.DeadLetterTopic, why)
		} else if _, ok := l.Topics[ln.DeadLetterTopic]; ok {
			v.errorf(p+".dead_letter_topic", "%q is a lane; dead letters are not handled again", ln.DeadLetterTopic)
		}
		v.durationPositive(p+".deadline", ln.Deadline)
		v.positive(p+".concurrency", int64(ln.Concurrency))
		v.positive(p+".max_attempts", int64(ln.MaxAttempts))
		if !(ln.RateLimit >= 0) {
			v.errorf(p+".rate_limit", "must be 0 (unlimited) or more calls per second")
		}
		if ln.PauseNextLag < 0 {
			v.errorf(p+".pause_next_lag", "must not be negative (0 is off)")
		}
		switch h := ln.Handler; {
		case h.URL == "" && len(h.Command) == 0:
			v.errorf(p+".handler", "needs a url or a command")
		case h.URL != "" && len(h.Command) > 0:
			v.errorf(p+".handler", "has both a url and a command; keep one")
		case h.URL != "":
			if why := checkURL(h.URL); why != "" && !strings.HasPrefix(why, "must not have a query") {
				v.errorf(p+".handler.url", "%q %s", h.URL, why)
			}
		case h.Command[0] == "":
			v.errorf(p+".handler.command", "the program (first element) is empty")
		}
	}
}

// loops reports whether following next from start comes back to a lane
// already seen.
func loops(topics map[string]Lane, start string) bool {
	seen := map[string]bool{}
	for cur := start; cur != ""; cur = topics[cur].Next {
		if seen[cur] {
			return true
		}
		seen[cur] = true
		if _, ok := topics[cur]; !ok {
			return false
		}
	}
	return false
}

// LaneBrokers returns the seed brokers of lanes.kafka: the embedded
// broker's advertised (else listen) address, with 127.0.0.1 for a
// wildcard host, or the cluster's brokers.
func (c Config) LaneBrokers() []string {
	if c.Lanes.Kafka != EmbeddedCluster {
		return c.Kafka.Clusters[c.Lanes.Kafka].Brokers
	}
	a := c.Kafka.Embedded.Advertised
	if a == "" {
		a = c.Kafka.Embedded.Listen
	}
	if rest, ok := strings.CutPrefix(a, ":"); ok {
		a = "127.0.0.1:" + rest
	}
	for _, w := range []string{"0.0.0.0:", "[::]:"} {
		if rest, ok := strings.CutPrefix(a, w); ok {
			a = "127.0.0.1:" + rest
		}
	}
	return []string{a}
}
