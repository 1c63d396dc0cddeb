package relay

import (
	"context"
	"slices"
	"strconv"
	"time"

	"github.com/baton-relay/baton/buffer"
	"github.com/baton-relay/baton/envelope"
	"github.com/baton-relay/baton/relay/groups"
	"github.com/baton-relay/baton/relay/record"
)

// This file is storm control's other half (docs/grouping.md "At the
// edge"): the events of every issue of a project with a storm limit are
// counted (relay/groups), kept or not (and so are those of a project with
// the count switch, which drops none), and each second the counts become
// counter buckets c:custom/baton.grouping.events@none {hash, project},
// written to the buffer as metric_buckets records of the project's key.
// They then take the path of any client's metrics (aggregator, cardinality
// limiter, metric route), so an issue's event count stays right upstream
// although most of its events were dropped at the edge.

// groupEventsMRI is the per-issue event counter.
const groupEventsMRI = "c:custom/baton.grouping.events@none"

// groupCountsInterval is how often counts are flushed.
const groupCountsInterval = time.Second

// maxGroupBuckets bounds the buckets of one record: ~150 bytes each, so a
// record stays far below Relay's 1 MiB max_metric_buckets_size.
const maxGroupBuckets = 2000

// groupCounts owns the issue table and its flush loop.
type groupCounts struct {
	table *groups.Table
	stop  context.CancelFunc
	done  chan struct{}
	// scratch of the one flusher at a time (the loop, then shutdown).
	counts []groups.Count
}

func newGroupCounts() *groupCounts {
	t, _ := groups.New(groups.Options{}) // the defaults are valid
	return &groupCounts{table: t}
}

// startGroupCounts flushes the issue counts every second until
// stopGroupCounts.
func (r *Relay) startGroupCounts() {
	g := r.groups
	if g == nil {
		return
	}
	ctx, stop := context.WithCancel(r.ctx)
	g.stop, g.done = stop, make(chan struct{})
	go func() {
		defer close(g.done)
		tick := time.NewTicker(groupCountsInterval)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-tick.C:
				r.flushGroupCounts(now)
			}
		}
	}()
}

// stopGroupCounts stops the loop and writes the counts held now.
func (r *Relay) stopGroupCounts() {
	g := r.groups
	if g == nil || g.stop == nil {
		return
	}
	g.stop()
	<-g.done
	r.flushGroupCounts(time.Now())
}

// flushGroupCounts writes the counts since the last flush as metric
// records, one per project key (more past maxGroupBuckets), and counts
// them as produced.
func (r *Relay) flushGroupCounts(now time.Time) {
	g := r.groups
	g.counts = g.table.Drain(g.counts[:0])
	if len(g.counts) == 0 {
		return
	}
	slices.SortFunc(g.counts, func(a, b groups.Count) int {
		if a.ProjectID != b.ProjectID {
			if a.ProjectID < b.ProjectID {
				return -1
			}
			return 1
		}
		if a.PublicKey != b.PublicKey {
			if a.PublicKey < b.PublicKey {
				return -1
			}
			return 1
		}
		return 0
	})
	var (
		entries []buffer.Entry
		buckets []envelope.Bucket
		payload []byte
	)
	write := func(c *groups.Count) {
		payload = envelope.AppendBucketsJSON(payload[:0], buckets)
		env := append([]byte("{}\n{\"type\":\"metric_buckets\",\"length\":"), strconv.Itoa(len(payload))...)
		env = append(append(append(env, "}\n"...), payload...), '\n')
		rec := record.Record{Class: envelope.ClassMetric, Items: 1, ReceivedAt: now.UnixNano(), ProjectID: c.ProjectID, PublicKey: []byte(c.PublicKey)}
		entries = append(entries, buffer.Entry{Stream: r.stream(envelope.ClassMetric, rec.PublicKey).ID(), Value: record.Append(nil, &rec, env)})
		buckets = buckets[:0]
	}
	ts := now.Unix()
	for i := range g.counts {
		c := &g.counts[i]
		pid := strconv.FormatUint(c.ProjectID, 10)
		buckets = append(buckets, envelope.Bucket{
			Timestamp: ts, Name: groupEventsMRI, Type: envelope.MetricCounter,
			Value:    envelope.BucketValue{Counter: float64(c.Events)},
			Tags:     []envelope.Tag{{Key: "hash", Value: c.Hash}, {Key: "project", Value: pid}},
			Metadata: envelope.BucketMetadata{Merges: 1, ReceivedAt: ts},
		})
		last := i+1 == len(g.counts)
		if last || len(buckets) == maxGroupBuckets || g.counts[i+1].ProjectID != c.ProjectID || g.counts[i+1].PublicKey != c.PublicKey {
			write(c)
		}
	}
	clear(g.counts) // the strings of evicted issues go with the next drain
	// Not bounded by the relay's context: at shutdown it is already done.
	if err := r.buf.Append(context.WithoutCancel(r.ctx), entries); err != nil {
		r.log.Error("writing grouping counts to the buffer failed; their events are not counted upstream", "err", err, "records", len(entries))
		return
	}
	r.outcomes.Produce(envelope.ClassMetric, len(entries), len(entries))
}
