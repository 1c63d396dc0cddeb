package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// topicPrefix selects the topics Baton forwards to (baton.<class>).
const topicPrefix = "baton."

// errorTopic receives exactly one record per accepted synthetic envelope.
const errorTopic = topicPrefix + "error"

// deliveryChecker watches the end offsets of the baton.* topics to verify
// that what Baton accepted reached Kafka.
type deliveryChecker struct {
	addr     string
	client   *kgo.Client
	admin    *kadm.Client
	interval time.Duration // poll period while draining
	settle   time.Duration // offsets must stay still this long to count as drained
	timeout  time.Duration // give up draining after this long
}

func newDeliveryChecker(addr string, settle, timeout time.Duration) (*deliveryChecker, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RequestRetries(2))
	if err != nil {
		return nil, fmt.Errorf("kafka client for %s: %w", addr, err)
	}
	return &deliveryChecker{addr: addr, client: cl, admin: kadm.NewClient(cl),
		interval: 250 * time.Millisecond, settle: settle, timeout: timeout}, nil
}

func (d *deliveryChecker) Close() { d.client.Close() }

// offsets maps topic to the sum of its partitions' end offsets.
type offsets map[string]int64

func (o offsets) total() int64 {
	var t int64
	for _, v := range o {
		t += v
	}
	return t
}

// Snapshot lists the end offsets of every baton.* topic.
func (d *deliveryChecker) Snapshot(ctx context.Context) (offsets, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	listed, err := d.admin.ListEndOffsets(ctx)
	if err != nil {
		return nil, fmt.Errorf("list end offsets on kafka %s (is the broker up? drop --kafka to skip delivery checks): %w", d.addr, err)
	}
	out := offsets{}
	var perr error
	listed.Each(func(o kadm.ListedOffset) {
		if !strings.HasPrefix(o.Topic, topicPrefix) {
			return
		}
		if o.Err != nil {
			perr = fmt.Errorf("end offset of %s[%d] on kafka %s: %w", o.Topic, o.Partition, d.addr, o.Err)
			return
		}
		out[o.Topic] += o.Offset
	})
	return out, perr
}

// deliveryResult reports what reached Kafka for one load run.
type deliveryResult struct {
	Arrived          int64            `json:"arrived"`
	ArrivedByTopic   map[string]int64 `json:"arrived_by_topic"`
	ArrivedAtLoadEnd int64            `json:"arrived_at_load_end"`
	BacklogAtEnd     int64            `json:"backlog_at_load_end"`
	BacklogSeconds   float64          `json:"backlog_seconds"`
	DrainRecords     int64            `json:"drain_records"`
	DrainSeconds     float64          `json:"drain_seconds"`
	DrainPerSec      float64          `json:"drain_per_sec"`
	TimedOut         bool             `json:"drain_timed_out"`
	Expected         *int64           `json:"expected_error_records,omitempty"`
	ErrorRecords     int64            `json:"error_topic_records"`
	Missing          *int64           `json:"missing,omitempty"`
}

// OK reports whether the synthetic-only count matched (true when nothing is expected).
func (r *deliveryResult) OK() bool { return r.Missing == nil || *r.Missing == 0 }

// Drain is called right after the load stopped. It polls until the offsets
// stop growing for d.settle (or d.timeout passes). accepted is the number of
// 2xx answers of the run and rate its accepted/s; expected, when >= 0, is the
// number of baton.error records the run must have produced.
func (d *deliveryChecker) Drain(ctx context.Context, before offsets, accepted uint64, rate float64, expected int64) (*deliveryResult, error) {
	t0 := time.Now()
	atEnd, err := d.Snapshot(ctx)
	if err != nil {
		return nil, err
	}
	res := &deliveryResult{ArrivedAtLoadEnd: atEnd.total() - before.total()}
	res.BacklogAtEnd = int64(accepted) - res.ArrivedAtLoadEnd
	if expected >= 0 {
		// Synthetic mix: one baton.error record per accepted envelope, so
		// compare like with like (other topics may carry extra records).
		res.BacklogAtEnd = int64(accepted) - (atEnd[errorTopic] - before[errorTopic])
	}
	if rate > 0 {
		res.BacklogSeconds = float64(res.BacklogAtEnd) / rate
	}
	last, lastGrowth := atEnd, t0
	tick := time.NewTicker(d.interval)
	defer tick.Stop()
	for time.Since(lastGrowth) < d.settle {
		if time.Since(t0) >= d.timeout {
			res.TimedOut = true
			break
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for kafka to drain: %w", ctx.Err())
		case <-tick.C:
		}
		cur, err := d.Snapshot(ctx)
		if err != nil {
			return nil, err
		}
		if cur.total() != last.total() {
			last, lastGrowth = cur, time.Now()
		}
	}
	d.fill(res, before, atEnd, last, lastGrowth.Sub(t0), expected)
	return res, nil
}

func (d *deliveryChecker) fill(res *deliveryResult, before, atEnd, final offsets, drainTime time.Duration, expected int64) {
	res.Arrived = final.total() - before.total()
	res.ArrivedByTopic = map[string]int64{}
	for topic, end := range final {
		if n := end - before[topic]; n != 0 {
			res.ArrivedByTopic[topic] = n
		}
	}
	res.ErrorRecords = final[errorTopic] - before[errorTopic]
	res.DrainRecords = final.total() - atEnd.total()
	res.DrainSeconds = drainTime.Seconds()
	if res.DrainRecords > 0 && drainTime > 0 {
		res.DrainPerSec = float64(res.DrainRecords) / drainTime.Seconds()
	}
	if expected >= 0 {
		missing := expected - res.ErrorRecords
		res.Expected, res.Missing = &expected, &missing
	}
}
