package relay

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/baton-relay/baton/config"
	"github.com/baton-relay/baton/envelope"
	"github.com/baton-relay/baton/relay/status"
	"github.com/baton-relay/baton/routing"
)

// statusPage is the status page served beside /metrics (relay/status),
// and its sampler.
type statusPage struct {
	st      *status.Status
	started time.Time
	stop    context.CancelFunc
	done    chan struct{}
}

// startStatus starts sampling for the status page and returns its handler.
func (r *Relay) startStatus() *status.Status {
	sp := &statusPage{started: time.Now(), done: make(chan struct{})}
	sp.st = status.New(status.Options{Read: r.tel.Read, Detail: r.statusDetail})
	var ctx context.Context
	ctx, sp.stop = context.WithCancel(context.Background())
	r.statusPage = sp // before the sampler, which reads it
	go func() { defer close(sp.done); sp.st.Run(ctx) }()
	return sp.st
}

// stopStatus stops the sampler.
func (r *Relay) stopStatus() {
	if sp := r.statusPage; sp != nil {
		sp.stop()
		<-sp.done
	}
}

// statusDetail is what the status page shows that no instrument carries,
// read from the same snapshots as the metric callbacks.
func (r *Relay) statusDetail() status.Detail {
	st := r.Stats()
	d := status.Detail{
		Version: r.set.Version, Mode: string(r.cfg.Mode), Started: r.statusPage.started,
		NotReady: r.notReady(),
		Routes:   map[string]status.Route{},
		Identity: status.Identity{
			Recovered: st.Recovered.Records, Accepted: st.Accepted, Produced: st.Produced, Delivered: st.Delivered,
			Dropped: st.Dropped, Aggregated: st.Aggregated, Pending: st.Pending, Balanced: st.Balanced,
		},
	}
	for _, c := range envelope.Classes() {
		switch dest := r.cfg.RouteFor(c).Dest.(type) {
		case config.UpstreamDest:
			d.Routes[c.String()] = status.Route{Kind: "upstream", Name: dest.Upstream}
		case config.KafkaDest:
			d.Routes[c.String()] = status.Route{Kind: "kafka", Name: dest.Kafka, Topic: dest.Topic}
		}
	}
	pools := r.sinks.Upstreams()
	for _, name := range slices.Sorted(maps.Keys(pools)) {
		u := status.Upstream{Name: name}
		for _, m := range pools[name].Members() {
			u.Members = append(u.Members, status.Member{URL: m.URL, State: m.State, LastError: m.LastError, LastErrorAt: m.LastErrorAt, Latency: m.Latency})
		}
		d.Upstreams = append(d.Upstreams, u)
	}
	clusters := r.sinks.KafkaClusters()
	for _, name := range slices.Sorted(maps.Keys(clusters)) {
		h := clusters[name].Health()
		k := status.Kafka{Name: name, Connected: h.Connected, LastError: h.LastConnectError, LastErrorAt: h.LastConnectErrorAt}
		if h.Fault != nil {
			k.Fault = h.Fault.Error()
		}
		d.Kafka = append(d.Kafka, k)
	}
	if r.cache != nil && st.Projects != nil {
		p := st.Projects
		m := &status.Managed{Upstream: r.cfg.Managed.Upstream, Registered: r.auth != nil && r.auth.Ready(), Configs: p.Projects,
			Misses: p.Misses, Waiting: st.Waiting, Requests: p.Requests, Failures: p.Failures}
		if up := pools[r.cfg.Managed.Upstream]; up != nil {
			var last routing.UpstreamMember
			for _, mb := range up.Members() {
				if mb.LastErrorAt.After(last.LastErrorAt) {
					last = mb
				}
			}
			m.LastError = last.LastError
		}
		d.Managed = m
	}
	d.Redis = r.fleetStatus()
	if d.Redis != nil {
		d.Redis.ProjectConfigs = r.redisConfigsStatus()
	}
	return d
}

// notReady says why ready() is false; nil when it is true.
func (r *Relay) notReady() []string {
	var why []string
	if r.closing.Load() {
		why = append(why, "shutting down")
	}
	if !r.buf.Ready() {
		bs := r.buf.Stats()
		switch {
		case bs.Failed:
			why = append(why, "the buffer failed (see the log); restart Baton")
		case bs.PendingBytes >= bs.BudgetBytes-bs.BudgetBytes/16:
			why = append(why, fmt.Sprintf("the buffer is full: %d of its %d byte budget pending; appends are refused until destinations drain it", bs.PendingBytes, bs.BudgetBytes))
		default:
			why = append(why, fmt.Sprintf("the buffer's filesystem is low on space (%d bytes free); appends are refused", bs.FreeBytes))
		}
	}
	if r.auth != nil && !r.auth.Ready() {
		why = append(why, "not registered with upstream "+r.cfg.Managed.Upstream)
	}
	if name, f := r.sinks.KafkaFault(); f != nil {
		why = append(why, "Kafka cluster "+name+" refuses Baton: "+f.Error())
	}
	return why
}
