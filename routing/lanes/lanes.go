package lanes

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Record headers the worker sets on records it moves.
const (
	HeaderAttempt = "baton-lane-attempt" // lanes the record went through (decimal)
	HeaderFrom    = "baton-lane-from"    // the lane it left
	HeaderReason  = "baton-lane-reason"  // why it left: "deadline", "handler: ...", "max_attempts: ...", a refusal
)

// ErrNoLanes is returned by New for Options without lanes.
var ErrNoLanes = errors.New("lanes: no lanes configured (lanes.topics)")

// Options configures a Worker. Zero durations take the defaults shown.
type Options struct {
	// Kafka are the client options that reach the cluster (seed brokers,
	// TLS, SASL; routing.ClientOpts).
	Kafka []kgo.Opt
	// Group is the consumer-group prefix: lane T is group "<Group>.<T>".
	Group string
	// SessionTimeout of each lane's group membership. Default: 10s.
	SessionTimeout time.Duration
	// CommitInterval is how often handed-off offsets are committed: with
	// the window, it bounds what a killed worker redoes. Default: 250ms.
	CommitInterval time.Duration
	// LagInterval is how often each lane's consumer lag is read.
	// Default: 1s.
	LagInterval time.Duration
	// DrainTimeout bounds Run's wait for records in hand at shutdown;
	// those not handed off by then are redelivered. Default: 10s.
	DrainTimeout time.Duration
	// Lanes are the lanes, each on its topic.
	Lanes []LaneOptions
	// Logger gets start, stop and state changes, never a line per record.
	// Default: slog.Default().
	Logger *slog.Logger
}

// LaneOptions is one lane.
type LaneOptions struct {
	Topic           string
	Next            string // "" ends the chain
	DeadLetterTopic string
	Deadline        time.Duration
	Concurrency     int
	MaxAttempts     int
	RateLimit       float64 // handler calls per second; 0 unlimited
	PauseNextLag    int64   // 0 off
	Ordered         bool
	Handler         Handler
}

// windowPerSlot is the records a lane holds per concurrency slot: handed
// to it, not yet handed off. It is the lane's memory budget (window ×
// record size) and, with CommitInterval, what a killed worker redoes.
const windowPerSlot = 4

// fetchMaxBytes caps what a lane's client fetches ahead of its polls
// (franz-go's default is 50MiB), part of the lane's memory budget.
const fetchMaxBytes = 8 << 20

// Worker runs every lane of Options: one consumer group client per lane,
// one shared producer for escalations and dead letters.
type Worker struct {
	opts  Options
	log   *slog.Logger
	prod  *kgo.Client
	adm   *kadm.Client
	lanes []*lane
	byTop map[string]*lane
}

// New checks opts and creates the Kafka clients; Run starts consuming.
func New(opts Options) (*Worker, error) {
	if len(opts.Lanes) == 0 {
		return nil, ErrNoLanes
	}
	if opts.SessionTimeout <= 0 {
		opts.SessionTimeout = 10 * time.Second
	}
	if opts.CommitInterval <= 0 {
		opts.CommitInterval = 250 * time.Millisecond
	}
	if opts.LagInterval <= 0 {
		opts.LagInterval = time.Second
	}
	if opts.DrainTimeout <= 0 {
		opts.DrainTimeout = 10 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	w := &Worker{opts: opts, log: opts.Logger, byTop: map[string]*lane{}}
	prod, err := kgo.NewClient(append(append([]kgo.Opt(nil), opts.Kafka...),
		kgo.AllowAutoTopicCreation(),
		kgo.ProducerLinger(0),
		kgo.RecordDeliveryTimeout(30*time.Second))...)
	if err != nil {
		return nil, fmt.Errorf("lanes: producer: %w", err)
	}
	w.prod, w.adm = prod, kadm.NewClient(prod)
	for _, lo := range opts.Lanes {
		if lo.Handler == nil || lo.Concurrency <= 0 || lo.MaxAttempts <= 0 || lo.Deadline <= 0 {
			w.closeClients()
			return nil, fmt.Errorf("lanes: lane %s: handler, concurrency, max attempts and deadline are required", lo.Topic)
		}
		l := &lane{w: w, o: lo, group: opts.Group + "." + lo.Topic,
			sem: make(chan struct{}, lo.Concurrency), window: make(chan struct{}, lo.Concurrency*windowPerSlot),
			parts: map[int32]*partTrack{}, revokedAt: map[int32]uint64{}, resumeAt: map[int32]int64{}, keys: map[string][]queued{}, m: newLaneMetrics()}
		if lo.RateLimit > 0 {
			l.pace = &pacer{every: time.Duration(float64(time.Second) / lo.RateLimit)}
		}
		l.cl, err = kgo.NewClient(append(append([]kgo.Opt(nil), opts.Kafka...),
			kgo.ConsumerGroup(l.group),
			kgo.ConsumeTopics(lo.Topic),
			kgo.Balancers(kgo.CooperativeStickyBalancer()),
			kgo.SessionTimeout(opts.SessionTimeout),
			kgo.HeartbeatInterval(min(3*time.Second, opts.SessionTimeout/3)),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
			kgo.AutoCommitMarks(),
			kgo.AutoCommitInterval(opts.CommitInterval),
			kgo.OnPartitionsRevoked(l.revoke),
			kgo.OnPartitionsLost(l.forget),
			kgo.FetchMaxWait(100*time.Millisecond),
			kgo.FetchMaxBytes(fetchMaxBytes),
			kgo.AllowAutoTopicCreation())...)
		if err != nil {
			w.closeClients()
			return nil, fmt.Errorf("lanes: lane %s: %w", lo.Topic, err)
		}
		w.lanes = append(w.lanes, l)
		w.byTop[lo.Topic] = l
	}
	return w, nil
}

func (w *Worker) closeClients() {
	for _, l := range w.lanes {
		l.cl.Close()
	}
	w.prod.Close()
}

// Run consumes until ctx is done, then stops taking records, waits up to
// DrainTimeout for those in hand, commits what was handed off, leaves the
// groups (handing the partitions back) and closes the clients.
func (w *Worker) Run(ctx context.Context) error {
	// work outlives ctx by the drain: records in hand finish normally.
	work, stopWork := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWork()
	var polls, inflight sync.WaitGroup
	for _, l := range w.lanes {
		polls.Go(func() { l.run(ctx, work, &inflight) })
	}
	lagDone := make(chan struct{})
	go func() { defer close(lagDone); w.watchLag(ctx) }()
	<-ctx.Done()
	polls.Wait()
	<-lagDone
	drained := make(chan struct{})
	go func() { inflight.Wait(); close(drained) }()
	t := time.NewTimer(w.opts.DrainTimeout)
	defer t.Stop()
	select {
	case <-drained:
	case <-t.C:
		w.log.Warn("lanes: drain timeout; records in hand are redelivered", "timeout", w.opts.DrainTimeout)
		stopWork()
		<-drained
	}
	cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var errs []error
	for _, l := range w.lanes {
		if err := l.cl.CommitMarkedOffsets(cctx); err != nil {
			errs = append(errs, fmt.Errorf("lanes: lane %s: commit: %w", l.o.Topic, err))
		}
	}
	w.closeClients()
	return errors.Join(errs...)
}

// watchLag reads every lane's lag each LagInterval and pauses lanes whose
// next lane is over their PauseNextLag.
func (w *Worker) watchLag(ctx context.Context) {
	groups := make([]string, len(w.lanes))
	for i, l := range w.lanes {
		groups[i] = l.group
	}
	t := time.NewTicker(w.opts.LagInterval)
	defer t.Stop()
	var logged time.Time
	for {
		// A reading may take longer than LagInterval on a busy broker; a
		// lane stays paused on its last estimate until one succeeds.
		// One call per group: kadm's Lag fails the whole call when the
		// describe of any one group fails (GROUP_ID_NOT_FOUND while a group
		// is between generations), which left every lane on a stale reading
		// and a paused lane paused for good.
		lctx, cancel := context.WithTimeout(ctx, max(w.opts.LagInterval, 10*time.Second))
		var lags kadm.DescribedGroupLags
		var err error
		for _, g := range groups {
			gl, gerr := w.adm.Lag(lctx, g)
			if gerr == nil {
				gerr = gl.Error()
			}
			if gerr != nil {
				err = fmt.Errorf("group %s: %w", g, gerr)
			}
			if lags == nil {
				lags = kadm.DescribedGroupLags{}
			}
			maps.Copy(lags, gl)
		}
		cancel()
		if err != nil && ctx.Err() == nil && time.Since(logged) > time.Minute {
			logged = time.Now()
			w.log.Warn("lanes: cannot read the lanes' lag; pauses keep their last reading", "err", err)
		}
		if lags != nil {
			for _, l := range w.lanes {
				if gl, ok := lags[l.group]; ok && gl.Error() == nil {
					l.m.lag.Store(gl.Lag.Total())
				}
			}
			for _, l := range w.lanes {
				next := w.byTop[l.o.Next]
				if next == nil || l.o.PauseNextLag <= 0 {
					continue
				}
				lag := next.m.lag.Load()
				if pause := lag > l.o.PauseNextLag; l.paused.Swap(pause) != pause {
					w.log.Info("lanes: lane "+map[bool]string{true: "paused", false: "resumed"}[pause],
						"lane", l.o.Topic, "next", l.o.Next, "next_lag", lag, "pause_next_lag", l.o.PauseNextLag)
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// lane is one topic's consumer and its handling.
type lane struct {
	w      *Worker
	o      LaneOptions
	group  string
	cl     *kgo.Client
	sem    chan struct{} // handler calls in progress
	window chan struct{} // records taken, not yet handed off
	pace   *pacer        // nil: unlimited
	paused atomic.Bool   // next lane over PauseNextLag
	// throttled is the UnixNano until which the handler asked to be left
	// alone (429/503).
	throttled     atomic.Int64
	loggedFetch   atomic.Int64 // UnixNano of the last fetch error logged
	loggedProduce atomic.Int64 // UnixNano of the last hand-off error logged
	m             *laneMetrics

	mu    sync.Mutex
	parts map[int32]*partTrack
	// revokes counts revocations; revokedAt is the count at which each
	// partition was last revoked or lost. A poll that began before that
	// may still hold the partition's records: track refuses them.
	revokes   uint64
	revokedAt map[int32]uint64
	// resumeAt is, per revoked partition, the first offset its tracker had
	// not handed off when it was revoked (absent: all it held was).
	resumeAt map[int32]int64
	keys     map[string][]queued // ordered: records waiting for their key, by key; present while the key is busy
}

// run polls the lane's topic and hands records to handler goroutines until
// ctx is done. Handling runs on work, which outlives ctx by the drain.
func (l *lane) run(ctx, work context.Context, inflight *sync.WaitGroup) {
	fetching := true
	for ctx.Err() == nil {
		if l.paused.Load() {
			// Paused: poll nothing, and let the client fetch nothing
			// ahead, so nothing more escalates into the backlogged lane;
			// the lag watcher resumes it.
			if fetching {
				l.cl.PauseFetchTopics(l.o.Topic)
				fetching = false
			}
			l.m.pausedPolls.Add(1)
			select {
			case <-ctx.Done():
			case <-time.After(50 * time.Millisecond):
			}
			continue
		}
		if !fetching {
			l.cl.ResumeFetchTopics(l.o.Topic)
			fetching = true
		}
		polled := l.pollEpoch()
		fs := l.cl.PollRecords(ctx, cap(l.window))
		fs.EachError(func(t string, p int32, err error) {
			if errors.Is(err, context.Canceled) {
				return
			}
			l.m.fetchErrors.Add(1)
			// At most a line a minute: a broker that refuses the group
			// (a session timeout out of its range, ACLs) fails every poll.
			if now := time.Now().UnixNano(); now-l.loggedFetch.Load() > int64(time.Minute) {
				l.loggedFetch.Store(now)
				l.w.log.Warn("lanes: cannot consume", "lane", l.o.Topic, "group", l.group, "partition", p, "err", err)
			}
		})
		var rewound map[int32]bool
		for _, r := range fs.Records() {
			select {
			case l.window <- struct{}{}:
			case <-ctx.Done():
				// Taken but never handled: not marked, so redelivered.
				return
			}
			pt := l.track(r, polled)
			if pt == nil {
				// Revoked since the poll began: the new owner has it. That
				// may be this worker again, and r then already the new
				// assignment's (the poll blocked across the revoke and
				// re-assign): rewind, or the marks would skip r.
				<-l.window
				if !rewound[r.Partition] {
					if rewound == nil {
						rewound = map[int32]bool{}
					}
					rewound[r.Partition] = true
					l.rewind(r)
				}
				continue
			}
			l.m.consumed.Add(1)
			if l.o.Ordered {
				key := string(r.Key)
				l.mu.Lock()
				if q, busy := l.keys[key]; busy {
					l.keys[key] = append(q, queued{r, pt})
					l.mu.Unlock()
					continue
				}
				l.keys[key] = nil
				l.mu.Unlock()
			}
			select {
			case l.sem <- struct{}{}:
			case <-ctx.Done():
				<-l.window
				return
			}
			inflight.Add(1)
			go func() {
				defer inflight.Done()
				defer func() { <-l.sem }()
				l.process(work, r, pt)
				for l.o.Ordered {
					// Same key next, in offset order, on this slot.
					key := string(r.Key)
					l.mu.Lock()
					q := l.keys[key]
					if len(q) == 0 {
						delete(l.keys, key)
						l.mu.Unlock()
						return
					}
					next := q[0]
					l.keys[key] = q[1:]
					l.mu.Unlock()
					l.process(work, next.r, next.pt)
				}
			}()
		}
	}
}

// process handles r until it is handed off: done, escalated or dead-
// lettered, then marks it for commit. On shutdown past the drain it
// returns without a hand-off, so r is redelivered.
func (l *lane) process(ctx context.Context, r *kgo.Record, pt *partTrack) {
	defer func() { <-l.window }()
	it := &Item{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Key: r.Key, Value: r.Value,
		Headers: make(map[string]string, len(r.Headers))}
	for _, h := range r.Headers {
		it.Headers[h.Key] = string(h.Value)
	}
	it.Attempt, _ = strconv.Atoi(it.Headers[HeaderAttempt])
	var res Result
	for try := 1; ; {
		if !l.wait(ctx) || pt.gone.Load() {
			// Shutdown, or the partition was revoked while r waited (an
			// ordered lane's queue, a throttle): not handed off, so the
			// new owner has it, and it is not escalated twice.
			return
		}
		hctx, cancel := context.WithTimeout(ctx, l.o.Deadline)
		start := time.Now()
		res = l.o.Handler.Handle(hctx, it)
		late := hctx.Err() != nil
		cancel()
		if ctx.Err() != nil {
			return
		}
		l.m.observe(time.Since(start))
		if late {
			// The handler's answer, if it comes, is ignored: the record is
			// the next lane's now.
			l.m.late.Add(1)
			res = Result{Verdict: Escalate, Reason: "deadline"}
		}
		switch res.Verdict {
		case Throttle:
			l.m.throttled.Add(1)
			if until := time.Now().Add(res.After).UnixNano(); until > l.throttled.Load() {
				l.throttled.Store(until)
			}
			continue
		case Retry:
			l.m.retried.Add(1)
			if try >= l.o.MaxAttempts {
				res = Result{Verdict: Escalate, Reason: "max_attempts: " + res.Reason}
				break
			}
			backoff := min(50*time.Millisecond<<(try-1), 2*time.Second)
			try++
			t := time.NewTimer(backoff)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			continue
		}
		break
	}
	switch {
	case res.Verdict == Done:
		l.m.done.Add(1)
	case res.Verdict == Escalate && l.o.Next != "":
		if !l.handOff(ctx, r, l.o.Next, it.Attempt+1, res.Reason) {
			return
		}
		l.m.escalated.Add(1)
		if next := l.w.byTop[l.o.Next]; next != nil {
			// Count it into the next lane's lag now: the lag watcher's
			// reading is up to LagInterval old, too late to stop a fast
			// lane near pause_next_lag.
			if lag := next.m.lag.Add(1); l.o.PauseNextLag > 0 && lag > l.o.PauseNextLag {
				l.paused.Store(true)
			}
		}
	default: // Reject, or escalation past the last lane
		if !l.handOff(ctx, r, l.o.DeadLetterTopic, it.Attempt+1, res.Reason) {
			return
		}
		l.m.deadLettered.Add(1)
	}
	l.finish(r, pt)
}

// wait blocks while the lane is paused or throttled, and for its rate
// limit; false when ctx ended first.
func (l *lane) wait(ctx context.Context) bool {
	for {
		d := time.Until(time.Unix(0, l.throttled.Load()))
		if l.paused.Load() {
			// Records in hand wait too, unhandled and uncommitted, until the
			// lag watcher resumes the lane.
			d = max(d, 50*time.Millisecond)
		}
		if l.pace != nil && d <= 0 {
			d = l.pace.next()
			if d <= 0 {
				return true
			}
			// The slot is taken: wait for it, then go.
			t := time.NewTimer(d)
			defer t.Stop()
			select {
			case <-ctx.Done():
				return false
			case <-t.C:
				return true
			}
		}
		if d <= 0 {
			return true
		}
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-t.C:
		}
	}
}

// handOff produces r to topic with the lane headers, retrying until it is
// written or ctx ends (false: not handed off, redelivered later). While
// the next lane refuses, the lane's slots fill and it stops polling:
// backpressure, never loss.
func (l *lane) handOff(ctx context.Context, r *kgo.Record, topic string, attempt int, reason string) bool {
	out := &kgo.Record{Topic: topic, Key: r.Key, Value: r.Value,
		// franz-go's delivery timeout counts from Timestamp.
		Timestamp: time.Now()}
	for _, h := range r.Headers {
		switch h.Key {
		case HeaderAttempt, HeaderFrom, HeaderReason:
		default:
			out.Headers = append(out.Headers, h)
		}
	}
	out.Headers = append(out.Headers,
		kgo.RecordHeader{Key: HeaderAttempt, Value: []byte(strconv.Itoa(attempt))},
		kgo.RecordHeader{Key: HeaderFrom, Value: []byte(l.o.Topic)},
		kgo.RecordHeader{Key: HeaderReason, Value: []byte(reason)})
	for backoff := 50 * time.Millisecond; ; backoff = min(2*backoff, 2*time.Second) {
		out.Timestamp = time.Now()
		err := l.w.prod.ProduceSync(ctx, out).FirstErr()
		if err == nil {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		l.m.produceErrors.Add(1)
		if now := time.Now().UnixNano(); now-l.loggedProduce.Load() > int64(time.Minute) {
			l.loggedProduce.Store(now)
			l.w.log.Warn("lanes: cannot hand records off; the lane waits", "lane", l.o.Topic, "to", topic, "err", err)
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-t.C:
		}
	}
}

// queued is a record of an ordered lane waiting for its key.
type queued struct {
	r  *kgo.Record
	pt *partTrack
}

// pacer spaces handler calls every apart.
type pacer struct {
	mu    sync.Mutex
	every time.Duration
	slot  time.Time
}

// next takes the next slot and returns how long to wait for it.
func (p *pacer) next() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	if p.slot.Before(now) {
		p.slot = now
	}
	d := p.slot.Sub(now)
	p.slot = p.slot.Add(p.every)
	return d
}
