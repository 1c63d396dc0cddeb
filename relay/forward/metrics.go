package forward

import (
	"context"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/baton-relay/baton/buffer"
	"github.com/baton-relay/baton/envelope"
	"github.com/baton-relay/baton/relay/aggregate"
	"github.com/baton-relay/baton/relay/outcome"
	"github.com/baton-relay/baton/relay/project"
	"github.com/baton-relay/baton/relay/record"
)

// MetricsBuffer is what the metrics stage does with the buffer.
type MetricsBuffer interface {
	Reader
	Ack(s buffer.Stream, upTo buffer.Seq) error
	Append(ctx context.Context, entries []buffer.Entry) error
}

// ProjectLimits looks up the config of a public key for its cardinality
// limits; *project.Cache implements it.
type ProjectLimits interface {
	GetBytes(key []byte) (*project.State, project.Status)
}

// MetricsOptions configures Metrics.
type MetricsOptions struct {
	Buffer MetricsBuffer
	// Sources are the raw metric streams to aggregate.
	Sources    []buffer.Stream
	Aggregator *aggregate.Aggregator
	// Limiter applies cardinality limits. Default nil: none.
	Limiter *aggregate.Limiter
	// Projects sets each project's own cardinality limits on Limiter.
	// Default nil: the Limiter's defaults apply to every project.
	Projects ProjectLimits
	// Limits bound the parsing of raw envelopes.
	Limits   envelope.Limits
	Outcomes Recorder
	// Limited reports buckets of rec the cardinality limiter refused
	// upstream (outcome cardinality_limited). Default nil: none.
	Limited func(rec *record.Record, buckets int)
	// Clock default System; Logger default slog.Default().
	Clock  Clock
	Logger *slog.Logger
}

// Metrics is the metrics stage: readers (one per raw metric stream) parse
// statsd and metric_buckets items into buckets, pass them through the
// cardinality limiter and insert them into the aggregator; one flusher
// goroutine owns the flush timer, writes each flushed batch to a flushed
// stream as a metric_buckets envelope, and only then acks the raw records
// the aggregator no longer needs (its watermark). A crash loses nothing:
// unacked raw records are aggregated again on restart (at-least-once).
type Metrics struct {
	o    MetricsOptions
	wake chan struct{} // cap 1: an insert may have moved NextDue or the watermark
	// stalls counts the waits of readers for the aggregator's budget.
	stalls atomic.Uint64

	written chan struct{} // under mu; closed and replaced after each commit

	commitBytes int // encoded records per Append of a commit: defaultCommitBytes

	mu       sync.Mutex
	inserted map[buffer.Stream][]insertedRec // per source: records not yet acked
	revs     map[uint64]string               // project → revision whose limits are set
}

type insertedRec struct {
	seq     buffer.Seq
	items   int
	corrupt bool // unreadable: counted as dropped, not aggregated
}

// NewMetrics returns the metrics stage; Start runs it.
func NewMetrics(o MetricsOptions) *Metrics {
	if o.Clock == nil {
		o.Clock = System
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Metrics{
		o:       o,
		wake:    make(chan struct{}, 1),
		written: make(chan struct{}),

		commitBytes: defaultCommitBytes,
		inserted:    map[buffer.Stream][]insertedRec{},
		revs:        map[uint64]string{},
	}
}

// Start runs the readers and the flusher; they stop with readCtx. The
// flusher, counted in wg, then waits for the readers and writes out what
// the aggregator holds, giving up when sendCtx ends (the raw records stay
// unacked and are aggregated again at the next start).
func (a *Metrics) Start(wg *sync.WaitGroup, readCtx, sendCtx context.Context) {
	var readers sync.WaitGroup
	for _, s := range a.o.Sources {
		readers.Go(func() { a.read(readCtx, s) })
	}
	wg.Go(func() { a.flushLoop(readCtx, sendCtx, &readers) })
}

// readRec is a record of a read batch: its buckets are
// buckets[start:end] of the batch.
type readRec struct {
	ir         insertedRec
	rec        record.Record
	start, end int
	invalid    int
}

// read aggregates a raw metric stream. Each read batch (up to
// BatchRecords records) is parsed whole first, so the cardinality limiter
// decides all its buckets at once: one Redis round trip per batch with a
// fleet store.
func (a *Metrics) read(ctx context.Context, s buffer.Stream) {
	var (
		buckets []envelope.Bucket
		batch   []readRec
		env     envelope.Envelope
		decoded record.Slab
		lb      limitBatch
	)
	lim := a.o.Limits
	readLoop(ctx, a.o.Buffer, s, a.o.Clock, a.o.Logger, func(recs []buffer.Record) bool {
		decoded.Reset()
		buckets, batch = buckets[:0], batch[:0]
		for i := range recs {
			var rec record.Record
			if err := record.Decode(recs[i].Value, &rec, &decoded); err != nil {
				batch = append(batch, readRec{ir: insertedRec{seq: recs[i].Seq, items: int(record.Items(recs[i].Value)), corrupt: true}})
				continue
			}
			r := readRec{ir: insertedRec{seq: recs[i].Seq, items: rec.Items}, rec: rec, start: len(buckets)}
			env.Reset()
			if err := env.Parse(rec.Envelope, &lim); err != nil {
				r.invalid++
			}
			received := rec.Received()
			for j := range env.Items {
				it := &env.Items[j]
				switch it.Type {
				case envelope.ItemStatsd:
					var lineErrs []envelope.LineError
					buckets, lineErrs = envelope.ParseStatsd(buckets, it.Payload, received)
					r.invalid += len(lineErrs)
				case envelope.ItemMetricBuckets:
					bs, err := envelope.ParseBuckets(it.Payload)
					if err != nil {
						r.invalid++
					}
					buckets = append(buckets, bs...)
				default:
					r.invalid++ // not a metric item: nothing to aggregate
				}
			}
			r.end = len(buckets)
			batch = append(batch, r)
		}
		a.admit(batch, buckets, &lb)
		for i := range batch {
			r := &batch[i]
			if !a.room(ctx) {
				return false // not inserted: read again at the next start
			}
			if r.ir.corrupt {
				a.insert(s, r.ir, aggregate.Scope{}, nil)
				continue
			}
			if r.invalid > 0 {
				a.o.Outcomes.Drop(envelope.ClassMetric, outcome.ReasonInvalid, 0, r.invalid)
			}
			sc := aggregate.Scope{ProjectID: r.rec.ProjectID, PublicKey: string(r.rec.PublicKey)}
			if rejected := a.insert(s, r.ir, sc, buckets[r.start:r.end]); rejected > 0 {
				a.o.Outcomes.Drop(envelope.ClassMetric, outcome.ReasonInvalid, 0, rejected)
			}
		}
		clear(buckets) // the aggregator keeps what it needs; hold nothing until the next batch
		select {
		case a.wake <- struct{}{}:
		default:
		}
		return true
	})
}

// limitBatch is a reader's scratch for the limiter's decisions.
type limitBatch struct {
	series []aggregate.Series
	ok     []bool
}

// admit stamps the receive time, drops the namespace Relay does not
// support and oversized names and tags (outcome invalid), and applies the
// cardinality limits to a read batch in one AdmitBatch call; each
// record's kept buckets end up at the front of its range (r.end moves).
func (a *Metrics) admit(batch []readRec, buckets []envelope.Bucket, lb *limitBatch) {
	limiter := a.o.Limiter
	lb.series = lb.series[:0]
	for i := range batch {
		r := &batch[i]
		if r.ir.corrupt {
			continue
		}
		if limiter != nil && a.o.Projects != nil {
			a.projectLimits(&r.rec)
		}
		received := r.rec.Received().Unix()
		kept := r.start
		for j := r.start; j < r.end; j++ {
			b := &buckets[j]
			ns := aggregate.Namespace(b.Name)
			if ns == "unsupported" || oversized(b) {
				a.o.Outcomes.Drop(envelope.ClassMetric, outcome.ReasonInvalid, 0, 1)
				continue
			}
			if b.Metadata.ReceivedAt == 0 {
				b.Metadata.ReceivedAt = received
			}
			if limiter != nil {
				lb.series = append(lb.series, aggregate.Series{Project: r.rec.ProjectID, Namespace: ns, Hash: b.KeyHash(), Name: b.Name})
			}
			buckets[kept] = *b
			kept++
		}
		r.end = kept
	}
	if limiter == nil || len(lb.series) == 0 {
		return
	}
	if cap(lb.ok) < len(lb.series) {
		lb.ok = make([]bool, len(lb.series))
	}
	lb.ok = lb.ok[:len(lb.series)]
	limiter.AdmitBatch(lb.series, lb.ok)
	n := 0 // the next decision
	for i := range batch {
		r := &batch[i]
		if r.ir.corrupt {
			continue
		}
		kept, limited := r.start, 0
		for j := r.start; j < r.end; j++ {
			if !lb.ok[n] {
				limited++
			} else {
				buckets[kept] = buckets[j]
				kept++
			}
			n++
		}
		r.end = kept
		if limited > 0 {
			a.o.Outcomes.Drop(envelope.ClassMetric, outcome.ReasonCardinality, 0, limited)
			if a.o.Limited != nil {
				a.o.Limited(&r.rec, limited)
			}
		}
	}
}

// maxMetricText bounds metric names and tag keys and values (Relay's
// max_name_length and max_tag_*_length): longer ones are invalid, which
// also caps what one bucket can cost the aggregator.
const maxMetricText = 200

func oversized(b *envelope.Bucket) bool {
	if len(b.Name) > maxMetricText {
		return true
	}
	for _, t := range b.Tags {
		if len(t.Key) > maxMetricText || len(t.Value) > maxMetricText {
			return true
		}
	}
	return false
}

// projectLimits applies the cardinality limits of the project's config
// (its metrics part, all of them: scopes and passive limits are the
// Limiter's), once per revision.
func (a *Metrics) projectLimits(rec *record.Record) {
	st, status := a.o.Projects.GetBytes(rec.PublicKey)
	if status != project.Ready { // not known yet: the configured default applies
		return
	}
	a.mu.Lock()
	seen := a.revs[st.ProjectID] == st.Rev && st.Rev != ""
	a.revs[st.ProjectID] = st.Rev
	a.mu.Unlock()
	if seen {
		return
	}
	limits := make([]aggregate.ProjectLimit, len(st.Metrics.CardinalityLimits))
	for i, l := range st.Metrics.CardinalityLimits {
		limits[i] = aggregate.ProjectLimit{ID: l.ID, Namespace: l.Namespace, Scope: l.Scope, Passive: l.Passive, Limit: l.Limit,
			Window: time.Duration(l.Window.WindowSeconds) * time.Second, Granularity: time.Duration(l.Window.GranularitySeconds) * time.Second}
		if limits[i].ID == "" { // ids name the limits' scopes: keep two apart
			limits[i].ID = "#" + strconv.Itoa(i)
		}
	}
	a.o.Limiter.SetProjectLimits(st.ProjectID, st.OrganizationID, limits)
}

// insert adds one record's buckets and remembers the record for the ack.
// The record is remembered before the aggregator sees it, so an ack that
// the aggregator's watermark allows always finds it to count.
func (a *Metrics) insert(s buffer.Stream, ir insertedRec, sc aggregate.Scope, bs []envelope.Bucket) int {
	a.mu.Lock()
	a.inserted[s] = append(a.inserted[s], ir)
	a.mu.Unlock()
	return a.o.Aggregator.Insert(sc, aggregate.Source{Stream: uint32(s), Seq: uint64(ir.seq)}, bs)
}

// room waits while the aggregator is Full: buckets it made due early and
// those being written already use its budget, so the reader waits for
// the flusher to write them rather than queue more (backpressure; the
// raw records wait in the buffer). False when ctx ends first.
func (a *Metrics) room(ctx context.Context) bool {
	for {
		a.mu.Lock()
		written := a.written
		a.mu.Unlock()
		if !a.o.Aggregator.Full() {
			return true
		}
		a.stalls.Add(1)
		select {
		case a.wake <- struct{}{}:
		default:
		}
		select {
		case <-written:
		case <-ctx.Done():
			return false
		}
	}
}

// idleFlush is how long the flusher sleeps when nothing is due.
const idleFlush = time.Hour

func (a *Metrics) flushLoop(ctx, sendCtx context.Context, readers *sync.WaitGroup) {
	var batches []aggregate.Batch
	for {
		wait := idleFlush
		if due, ok := a.o.Aggregator.NextDue(); ok {
			wait = max(due.Sub(a.o.Clock.Now()), 0)
		}
		select {
		case <-ctx.Done():
			// Shutting down: once the readers are done, write out what is
			// held, so the raw records can be acked and nothing is
			// aggregated twice after restart.
			readers.Wait()
			batches = a.o.Aggregator.FlushAll(batches[:0])
			a.commit(sendCtx, batches)
			return
		case <-a.o.Clock.After(wait):
		case <-a.wake:
		}
		batches = a.o.Aggregator.Flush(a.o.Clock.Now(), batches[:0])
		if !a.commit(ctx, batches) {
			return
		}
	}
}

// commit appends the batches as records of the flushed streams, then acks
// the raw records behind the watermark. It retries until it succeeds or
// ctx ends (then the raw records stay for the next start). The records
// are encoded and appended commitBytes at a time, so a flush of a whole
// budget's buckets does not hold all of them encoded at once; a crash
// between two appends re-aggregates the unacked raw records at the next
// start, as a crash between the append and the ack always did
// (at-least-once).
func (a *Metrics) commit(ctx context.Context, batches []aggregate.Batch) bool {
	if len(batches) > 0 {
		var (
			entries []buffer.Entry
			items   []int
			size    int
		)
		write := func() bool {
			// The append is not bounded by ctx (only the retries are): once
			// queued, the buffer commits it whatever happens to the caller.
			if !retry(ctx, a.o.Clock, a.o.Logger, "writing aggregated metrics to the buffer", func() error {
				return a.o.Buffer.Append(context.WithoutCancel(ctx), entries)
			}) {
				return false
			}
			for _, n := range items {
				a.o.Outcomes.Produce(envelope.ClassMetric, 1, n)
			}
			clear(entries)
			entries, items, size = entries[:0], items[:0], 0
			return true
		}
		for i := range batches {
			b := &batches[i]
			rec := record.Record{
				Class:      envelope.ClassMetric,
				Items:      1,
				ReceivedAt: a.o.Clock.Now().UnixNano(),
				ProjectID:  b.Scope.ProjectID,
				PublicKey:  []byte(b.Scope.PublicKey),
			}
			// A big batch becomes several records, each an item under
			// Relay's max_metric_buckets_size and a Kafka record under
			// the default max_message_bytes.
			for bs := b.Buckets; len(bs) > 0; {
				payload, n := appendBucketsChunk(nil, bs, maxBucketsPayload)
				v := record.Append(nil, &rec, appendBucketsEnvelope(nil, payload))
				entries = append(entries, buffer.Entry{Stream: record.Flushed(b.Partition).ID(), Value: v})
				items = append(items, n)
				size += len(v)
				bs = bs[n:]
				if size >= a.commitBytes && !write() {
					return false
				}
			}
			b.Buckets = nil // the flush loop reuses batches: let go of what is encoded
		}
		if len(entries) > 0 && !write() {
			return false
		}
		a.o.Aggregator.Written()
		a.mu.Lock()
		close(a.written)
		a.written = make(chan struct{})
		a.mu.Unlock()
	}
	a.ack()
	return true
}

// ack acks every source up to the aggregator's watermark and counts the
// raw records that were folded into buckets.
func (a *Metrics) ack() {
	for _, s := range a.o.Sources {
		w, ok := a.o.Aggregator.Watermark(uint32(s))
		if !ok {
			continue
		}
		a.mu.Lock()
		recs := a.inserted[s]
		n := 0
		for n < len(recs) && recs[n].seq <= buffer.Seq(w) {
			n++
		}
		done := recs[:n]
		a.mu.Unlock()
		if n == 0 {
			continue
		}
		if err := a.o.Buffer.Ack(s, buffer.Seq(w)); err != nil {
			a.o.Logger.Error("buffer ack failed", "stream", s, "err", err)
			continue
		}
		for _, rec := range done {
			if rec.corrupt {
				a.o.Outcomes.Drop(envelope.ClassMetric, outcome.ReasonCorrupt, 1, rec.items)
			} else {
				a.o.Outcomes.Aggregate(envelope.ClassMetric, 1, rec.items)
			}
		}
		a.mu.Lock()
		a.inserted[s] = append(a.inserted[s][:0], a.inserted[s][n:]...)
		a.mu.Unlock()
	}
}

// defaultCommitBytes is how many bytes of encoded flushed records the
// flusher appends at a time.
const defaultCommitBytes = 4 << 20

// maxBucketsPayload bounds the bucket JSON of one flushed record: half of
// Relay's 1 MiB max_metric_buckets_size, leaving room for Kafka framing.
const maxBucketsPayload = 512 << 10

// appendBucketsChunk appends the bucket JSON array of as many buckets of bs
// as fit in limit bytes (at least one) and returns how many it took.
func appendBucketsChunk(dst []byte, bs []envelope.Bucket, limit int) ([]byte, int) {
	start := len(dst)
	dst = append(dst, '[')
	n := 0
	for n < len(bs) {
		mark := len(dst)
		if n > 0 {
			dst = append(dst, ',')
		}
		dst = bs[n].AppendJSON(dst)
		if n > 0 && len(dst)-start+1 > limit {
			dst = dst[:mark]
			break
		}
		n++
	}
	return append(dst, ']'), n
}

// appendBucketsEnvelope appends an envelope of one metric_buckets item
// whose payload is the bucket JSON array payload.
func appendBucketsEnvelope(dst, payload []byte) []byte {
	dst = append(dst, "{}\n{\"type\":\"metric_buckets\",\"length\":"...)
	dst = strconv.AppendInt(dst, int64(len(payload)), 10)
	dst = append(dst, "}\n"...)
	dst = append(dst, payload...)
	return append(dst, '\n')
}
