package relay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/baton-relay/baton/buffer"
	"github.com/baton-relay/baton/config"
	"github.com/baton-relay/baton/envelope"
	"github.com/baton-relay/baton/relay/auth"
	"github.com/baton-relay/baton/relay/fleet"
	"github.com/baton-relay/baton/relay/forward"
	"github.com/baton-relay/baton/relay/intake"
	"github.com/baton-relay/baton/relay/outcome"
	"github.com/baton-relay/baton/relay/policy"
	"github.com/baton-relay/baton/relay/project"
	"github.com/baton-relay/baton/relay/record"
	"github.com/baton-relay/baton/relay/tailsample"
	"github.com/baton-relay/baton/relay/telemetry"
	"github.com/baton-relay/baton/routing"
)

// Settings are the inputs a Relay takes from code rather than from config.
type Settings struct {
	// Logger receives operational logs (never one line per item).
	// Default: slog.Default().
	Logger *slog.Logger
	// Version is reported in the User-Agent of upstream requests.
	Version string
	// RelayVersion is the Sentry Relay release whose protocol Baton
	// follows; managed mode registers with it, since the upstream reads
	// the registration's version as a Relay version. Default: Version if
	// it has Relay's x.y.z form, else 0.0.0.
	RelayVersion string
	// Listener, when set, is served instead of listening on
	// cfg.Server.Listen (tests use in-memory listeners).
	Listener net.Listener
	// DrainTimeout bounds how long shutdown waits for batches in flight.
	// Default: DefaultDrainTimeout (server.shutdown_timeout's default).
	DrainTimeout time.Duration
}

// DefaultDrainTimeout is Settings.DrainTimeout's default: 10s.
const DefaultDrainTimeout = 10 * time.Second

// Relay is one running Baton: ingest server, durable buffer, forwarders and
// sinks. Create it with New, then Run it.
type Relay struct {
	cfg    config.Config
	set    Settings
	log    *slog.Logger
	ctx    context.Context // lives until the buffer closes; Append uses it
	stop   context.CancelFunc
	limits envelope.Limits

	buf        *buffer.Buffer
	partitions uint32
	policy     atomic.Pointer[policy.Projects] // swapped by ReloadProjects
	sinks      *routing.Sinks
	enforcer   *policy.Enforcer
	fleet      *fleet.Counter // nil unless redis is configured (fleet.go)
	configs    *fleet.Configs // nil unless redis.project_configs (redisconfigs.go)
	proc       *processor     // nil: payloads are forwarded as received
	groups     *groupCounts   // storm control's issue table; nil without proc (groupcounts.go)

	// Managed mode: identity, the config cache and downstream relays.
	creds      *auth.Credentials
	auth       *upstreamAuth
	cache      *project.Cache
	downstream *auth.Downstream
	cacheStop  context.CancelFunc
	cacheDone  chan struct{}
	failed     chan error // see Failed

	aggr    *aggregation // nil unless metrics.aggregate
	waiting waitingBytes // per key, of envelopes waiting for a config
	tail    tailState    // tail_sampling (tailsampling.go)

	server   *fasthttp.Server
	listener net.Listener
	served   chan struct{} // closed when Serve returns

	tel         *telemetry.Telemetry // the OTel SDK's exporters (relay/telemetry)
	meter       metric.Meter         // the relay's own instruments
	im          ingestMetrics
	tracing     bool                // spans are pushed: sampled requests get one (tracing.go)
	tracer      trace.Tracer        // the no-op one unless tracing
	followed    followBudget        // untrusted traceparents followed this second
	obs         metric.Registration // the snapshot callbacks (registerObservers)
	metricsSrv  *http.Server
	metricsLn   net.Listener
	metricsDone chan struct{}
	pprof       *profiler   // telemetry.pprof_listen; nil when off
	statusPage  *statusPage // the status page's sampler, beside /metrics
	closing     atomic.Bool

	bodies      *intake.Budget           // memory of request bodies in flight (server.max_inflight_bytes)
	maxDecoded  int                      // limits.max_decompressed_size
	maxEnvelope [envelope.NumClasses]int // largest class envelope its sink takes; 0 is any
	outcomes    outcome.Counters
	reporter    *outcome.Reporter // nil unless outcomes.emit_outcomes
	reportStop  context.CancelFunc
	reportDone  chan struct{}
	rejected    rejections
	recovered   [envelope.NumClasses]outcome.Count // what the buffer held when it was opened, per class

	// The outcomes stream again, on its own (outcomestats.go).
	rawCounts    outcome.Counters
	rawRecovered outcome.Count

	forwardUnknown func(*fasthttp.RequestCtx)
	forwardTo      *routing.Upstream // config.ForwardUpstream's pool, when forwarding

	fwdStop context.CancelFunc // stops forwarders taking new batches
	fwdKill context.CancelFunc // abandons batches in flight
	fwdWG   sync.WaitGroup
	relStop context.CancelFunc // stops releasers taking new batches
	relWG   sync.WaitGroup

	abandoned   chan struct{} // closed by Abandon: stop draining at once
	abandonOnce sync.Once
}

// New opens the buffer, starts the sinks and prepares the server. It does
// not accept traffic until Run (or Start).
func New(cfg config.Config, set Settings) (_ *Relay, err error) {
	if set.Logger == nil {
		set.Logger = slog.Default()
	}
	if set.DrainTimeout <= 0 {
		set.DrainTimeout = DefaultDrainTimeout
	}
	r := &Relay{
		cfg:        cfg,
		set:        set,
		log:        set.Logger,
		limits:     limitsFrom(cfg),
		partitions: uint32(max(cfg.Buffer.Partitions, 1)),
		bodies:     intake.NewBudget(max(int64(cfg.Server.MaxInflightBytes), 1)),
		maxDecoded: int(cfg.Limits.MaxDecompressedSize),
	}
	if r.maxDecoded <= 0 {
		r.maxDecoded = r.limits.MaxEnvelopeSize
	}
	r.ctx, r.stop = context.WithCancel(context.Background())
	r.failed = make(chan error, 1)
	r.abandoned = make(chan struct{})

	var counter policy.Counter
	if r.fleet, err = openFleet(cfg.Redis, r.log); err != nil {
		return nil, err
	} else if r.fleet != nil {
		counter = quotaStore{r.fleet}
	}
	defer func() {
		if err != nil && r.fleet != nil {
			_ = r.fleet.Close()
		}
	}()
	if r.configs, err = openRedisConfigs(cfg.Redis, redisParts(cfg), r.log); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			r.closeRedisConfigs()
		}
	}()
	r.enforcer = policy.NewEnforcer(policy.Options{Counter: counter})
	if r.proc, err = newProcessor(cfg); err != nil {
		return nil, fmt.Errorf("relay: normalization: %w", err)
	}
	if r.proc != nil {
		r.groups = newGroupCounts()
		r.proc.groups = r.groups.table
	}
	r.reporter = newReporter(r.cfg.Outcomes)
	r.waiting.max = int64(cfg.Managed.MaxWaitingBytesPerKey)
	r.newTail()

	if err := r.newTelemetry(); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			_ = r.tel.Shutdown(context.Background())
		}
	}()
	var sign func(*fasthttp.Request)
	if cfg.Mode == config.ModeManaged {
		if r.creds, err = managedCredentials(cfg.Managed, cfg.CredentialsFile(), r.log); err != nil {
			return nil, err
		}
		sign = func(req *fasthttp.Request) { signRequest(r.creds, req) }
	}
	if r.sinks, err = openSinks(cfg, set, r.tel.MeterProvider(), &r.outcomes, sign); err != nil {
		return nil, err
	}
	if cfg.Mode == config.ModeManaged {
		up, err := r.sinks.Upstream(cfg.Managed.Upstream)
		if err != nil {
			r.sinks.Close(context.Background())
			return nil, err
		}
		r.auth = &upstreamAuth{creds: r.creds, version: registrationVersion(set.RelayVersion, set.Version), up: up, log: r.log,
			lost: make(chan struct{}, 1), interval: cfg.Managed.AuthInterval,
			where: fmt.Sprintf("upstream %q (%s, credentials %s)", cfg.Managed.Upstream,
				strings.Join(cfg.Upstreams[cfg.Managed.Upstream].URLs, ", "), cfg.CredentialsFile())}
		copts := project.Options{Logger: r.log, MeterProvider: r.tel.MeterProvider()}
		if r.configs != nil {
			copts.Fetch = r.redisConfigsFetcher(r.auth.fetchConfigs)
		}
		r.cache, err = newProjectCache(cfg, r.auth, copts)
		if err != nil {
			r.sinks.Close(context.Background())
			return nil, err
		}
		if r.downstream, err = newDownstream(cfg, r.auth); err != nil {
			r.sinks.Close(context.Background())
			return nil, err
		}
	} else if cfg.Mode == config.ModeStatic {
		// Static relays only: to take the outcomes of internal ones.
		if r.downstream, err = newDownstream(cfg, nil); err != nil {
			r.sinks.Close(context.Background())
			return nil, err
		}
		if r.configs != nil { // projects not in projects: come from Redis alone
			copts := project.Options{Logger: r.log, MeterProvider: r.tel.MeterProvider(), Fetch: r.redisConfigsFetcher(nil)}
			if r.cache, err = newProjectCache(cfg, nil, copts); err != nil {
				r.sinks.Close(context.Background())
				return nil, err
			}
		}
	}
	for _, c := range envelope.Classes() {
		if b, ok := r.sinks.For(c).(routing.Bounded); ok && !(c == envelope.ClassMetric && cfg.Metrics.Aggregate) {
			// Raw metrics are folded into buckets, never sent as received.
			r.maxEnvelope[c] = b.MaxEnvelope()
		}
	}
	projects, err := r.newProjects(cfg)
	if err != nil {
		r.sinks.Close(context.Background())
		return nil, err
	}
	r.policy.Store(projects)
	if cfg.Metrics.Aggregate {
		if r.aggr, err = newAggregation(cfg, r.fleet); err != nil {
			r.sinks.Close(context.Background())
			return nil, fmt.Errorf("relay: metrics: %w", err)
		}
	}
	r.buf, err = buffer.Open(cfg.Buffer.Dir, r.bufferOptions())
	if err != nil {
		r.sinks.Close(context.Background())
		return nil, bufferDirError(cfg.Buffer.Dir, err)
	}
	if r.tail.on {
		r.tail.marks = tailsample.NewMarks(r.buf, record.Marks().ID(), r.tail.index, r.log)
	}
	r.recovered = byClass(r.buf.Stats().Streams)
	r.rawRecovered = outcomesCount(r.buf.Stats().Streams)
	if err := r.registerFleetMetrics(); err != nil {
		r.sinks.Close(context.Background())
		_ = r.buf.Close()
		return nil, fmt.Errorf("relay: telemetry: %w", err)
	}
	if err := r.registerRedisConfigMetrics(); err != nil {
		r.sinks.Close(context.Background())
		_ = r.buf.Close()
		return nil, fmt.Errorf("relay: telemetry: %w", err)
	}
	if err := r.registerObservers(); err != nil {
		r.sinks.Close(context.Background())
		_ = r.buf.Close()
		return nil, fmt.Errorf("relay: telemetry: %w", err)
	}
	if name, ok := cfg.ForwardUpstream(); ok {
		up, err := r.sinks.Upstream(name)
		if err != nil {
			r.sinks.Close(context.Background())
			_ = r.buf.Close()
			return nil, fmt.Errorf("relay: upstream %q for unknown API requests: %w", name, err)
		}
		r.forwardTo, r.forwardUnknown = up, r.forwardAPI
	}
	r.server = &fasthttp.Server{
		Handler:            r.handle,
		Name:               "baton",
		ReadTimeout:        cfg.Server.ReadTimeout,
		WriteTimeout:       cfg.Server.WriteTimeout,
		IdleTimeout:        cfg.Server.IdleTimeout,
		Concurrency:        cfg.Server.MaxConnections,
		ReadBufferSize:     int(cfg.Server.MaxHeaderBytes),
		MaxRequestBodySize: r.limits.MaxEnvelopeSize,
		// Handlers read bodies themselves, against the body budget: fasthttp
		// would buffer a whole body (up to MaxRequestBodySize) before the
		// handler could refuse it.
		StreamRequestBody:             true,
		DisablePreParseMultipartForm:  true,
		NoDefaultContentType:          true,
		DisableHeaderNamesNormalizing: false,
		CloseOnShutdown:               true,
		Logger:                        fasthttpLogger{r.log},
		ErrorHandler:                  r.handleServerError,
	}
	return r, nil
}

// Start begins forwarding and serving. It returns once the listener is
// bound; Addr then tells where.
func (r *Relay) Start() error {
	if r.cfg.Telemetry.MetricsListen != "" {
		if err := r.startMetrics(); err != nil {
			r.Close()
			return err
		}
	}
	if r.cfg.Telemetry.PprofListen != "" {
		if err := r.startPprof(); err != nil {
			r.Close()
			return err
		}
	}
	if r.cache != nil {
		ctx, stop := context.WithCancel(r.ctx)
		r.cacheStop, r.cacheDone = stop, make(chan struct{})
		maxBackoff := time.Minute
		if up, ok := r.cfg.Upstreams[r.cfg.Managed.Upstream]; ok && up.MaxRetryInterval > 0 {
			maxBackoff = up.MaxRetryInterval
		}
		var wg sync.WaitGroup
		wg.Go(func() { r.cache.Run(ctx) })
		if r.configs != nil {
			wg.Go(func() { r.watchRedisConfigs(ctx) })
		}
		if r.auth != nil {
			wg.Go(func() { // register at start, not at the first fetch
				if err := r.auth.keep(ctx, maxBackoff); err != nil {
					r.failed <- err
				}
			})
		}
		go func() { wg.Wait(); close(r.cacheDone) }()
	}
	r.startForwarders()
	if r.reporter != nil {
		ctx, stop := context.WithCancel(r.ctx)
		r.reportStop, r.reportDone = stop, make(chan struct{})
		go func() { defer close(r.reportDone); r.runReporter(ctx) }()
	}
	r.startGroupCounts()
	ln := r.set.Listener
	if ln == nil {
		var err error
		ln, err = net.Listen("tcp", r.cfg.Server.Listen)
		if err != nil {
			r.Close()
			return listenError("server.listen", r.cfg.Server.Listen, err)
		}
	}
	r.listener = ln
	r.served = make(chan struct{})
	go func() {
		defer close(r.served)
		if err := r.server.Serve(ln); err != nil && !r.closing.Load() {
			r.log.Error("server stopped", "err", err)
		}
	}()
	return nil
}

// Failed delivers the error that keeps the relay from going on: the
// upstream rejected its registration for good. The relay keeps serving
// (envelopes still go to the buffer); the caller should Close it and exit.
func (r *Relay) Failed() <-chan error { return r.failed }

// Addr is the address the server listens on, once started.
func (r *Relay) Addr() net.Addr { return r.listener.Addr() }

// Reachable is the host:port a client on this host connects to for a
// listener bound to a (Addr, MetricsAddr): 127.0.0.1 for a wildcard host,
// which prints as "[::]" and is no address to hand out.
func Reachable(a net.Addr) string { return routing.ReachableAddr(a) }

// KafkaAddr is the embedded broker's advertised address
// (kafka.embedded.advertised), or "" when none runs.
func (r *Relay) KafkaAddr() string { return r.sinks.EmbeddedAddr() }

// Run starts the relay and blocks until ctx is done, then shuts down.
func (r *Relay) Run(ctx context.Context) error {
	if err := r.Start(); err != nil {
		return err
	}
	<-ctx.Done()
	return r.Close()
}

// Close shuts down in order: stop accepting, drain forwarders, close sinks,
// close the buffer, all within one Settings.DrainTimeout window (sinks get
// at least a second more to flush), logging what is left to drain once a
// second. Abandon ends the window early. What was not delivered stays in
// the buffer for the next start.
func (r *Relay) Close() error {
	if r.closing.Swap(true) {
		return nil
	}
	// One window for the whole drain, logged once a second; Abandon ends it.
	deadline := time.Now().Add(r.set.DrainTimeout)
	drain, cancel := r.drainWindow(deadline)
	defer cancel()
	progress, stopProgress := context.WithCancel(drain)
	progressDone := make(chan struct{})
	go func() { defer close(progressDone); r.logDrainProgress(progress, deadline) }()
	defer func() { stopProgress(); <-progressDone }()
	var errs []error
	if r.listener != nil {
		if err := r.server.Shutdown(); err != nil {
			errs = append(errs, fmt.Errorf("relay: stop server: %w", err))
		}
		// Shutdown misses a Serve that has not registered its listener
		// yet; closing the listener ends that one too.
		_ = r.listener.Close()
		<-r.served
	}
	// The door's counts are all in: written while the forwarders run.
	r.stopGroupCounts()
	if r.reportStop != nil {
		// The door's drops are all in: report them while the forwarders
		// can still deliver the reports.
		r.reportStop()
		<-r.reportDone
		r.flushReports()
	}
	if r.fwdStop != nil {
		// Releasers first, still waiting for configs: what they release in
		// the window finds the forwarders running; then those drain.
		for _, st := range []struct {
			stop context.CancelFunc
			wg   *sync.WaitGroup
		}{{r.relStop, &r.relWG}, {r.fwdStop, &r.fwdWG}} {
			st.stop()
			done := make(chan struct{})
			go func() { st.wg.Wait(); close(done) }()
			select {
			case <-done:
			case <-drain.Done():
				left, n := r.leftPerDestination()
				if r.wasAbandoned() {
					r.log.Warn("drain abandoned; unsent records stay in the buffer for the next start", "records_left", n, "per_destination", left)
				} else {
					r.log.Warn("drain deadline passed; unsent records stay in the buffer for the next start", "timeout", r.set.DrainTimeout, "records_left", n, "per_destination", left)
				}
				r.fwdKill()
				<-done
			}
		}
		r.fwdKill()
	}
	if r.cacheStop != nil {
		r.cacheStop()
		<-r.cacheDone
	}
	if r.reportStop != nil {
		r.flushReports() // the forwarders' last drops: kept for the next start
	}
	if r.groups != nil {
		r.flushGroupCounts(time.Now()) // the releasers' last counts: kept for the next start
	}
	stopProgress()
	<-progressDone
	// Sinks flush within what is left of the window, and at least a second
	// unless abandoned: records they do not confirm stay in the buffer.
	ctx := drain
	if drain.Err() != nil && !r.wasAbandoned() {
		var cancelLast context.CancelFunc
		ctx, cancelLast = context.WithTimeout(context.Background(), time.Second)
		defer cancelLast()
	}
	// Abandoned, the sinks' flush is cut short on purpose: what it leaves
	// is still in the buffer, so that is no error.
	cut := func(err error) bool { return r.wasAbandoned() && errors.Is(err, context.Canceled) }
	if err := r.stopMetrics(ctx); err != nil && !r.wasAbandoned() {
		errs = append(errs, err)
	}
	r.stopPprof(ctx) // last of the listeners: the drain can be profiled
	if err := r.sinks.Close(ctx); err != nil && !cut(err) {
		errs = append(errs, err)
	}
	r.stop()
	r.closeFleet()
	r.closeRedisConfigs()
	if err := r.buf.Close(); err != nil {
		errs = append(errs, fmt.Errorf("relay: close buffer: %w", err))
	}
	return errors.Join(errs...)
}

// stream is the buffer stream of class c's records for a public key.
func (r *Relay) stream(c envelope.Class, key []byte) record.Stream {
	return record.StreamFor(c, record.Partition(key, r.partitions))
}

// startForwarders starts one forwarder per configured stream, plus one for
// every stream the buffer still holds records of (a partition count lowered
// since they were written must not strand them).
func (r *Relay) startForwarders() {
	readCtx, stop := context.WithCancel(r.ctx)
	sendCtx, kill := context.WithCancel(r.ctx)
	r.fwdStop, r.fwdKill = stop, kill
	relCtx, relStop := context.WithCancel(r.ctx)
	r.relStop = relStop
	streams := map[buffer.Stream]bool{} // forwarded to their class's sink
	pending := map[buffer.Stream]bool{} // released once configs are known
	raw := map[buffer.Stream]bool{}     // raw metrics, into the aggregator
	for _, c := range envelope.Classes() {
		for p := range r.partitions {
			s := record.StreamFor(c, p).ID()
			switch {
			case c == envelope.ClassMetric && r.aggr != nil:
				raw[s] = true
			default:
				streams[s] = true
			}
			if r.cache != nil {
				pending[record.Stream(s).Pending().ID()] = true
			}
		}
	}
	if r.aggr != nil {
		for p := range max(r.cfg.Metrics.FlushPartitions, 1) {
			streams[record.Flushed(p).ID()] = true
		}
	}
	for _, st := range r.buf.Stats().Streams {
		s := record.Stream(st.Stream)
		switch {
		case st.Pending == 0 || s.Class() >= envelope.NumClasses:
		case s.IsPending():
			pending[s.ID()] = true
		case s.IsTail(): // drained by its Sampler (tailsampling.go)
		case s.Class() == envelope.ClassMetric && r.aggr != nil && !s.IsFlushed():
			raw[s.ID()] = true
		default:
			streams[s.ID()] = true
		}
	}
	for s := range pending {
		rl := forward.NewReleaser(forward.ReleaserOptions{
			Buffer:        r.buf,
			Stream:        s,
			Policy:        &releasePolicy{r: r},
			Changed:       r.cacheChanged,
			Left:          r.waiting.sub,
			MaxPendingAge: r.cfg.Managed.MaxPendingAge,
			Outcomes:      &r.outcomes,
			Reporter:      r.loopReporter(),
			Logger:        r.log,
		})
		r.relWG.Go(func() { rl.Run(relCtx, sendCtx) })
	}
	if m := r.tail.marks; m != nil {
		// Before the Samplers index the held records, so the traces whose
		// errors went out before a restart are kept (tailsample.Marks).
		if err := m.Load(time.Now()); err != nil {
			r.log.Error("tail sampling: error marks not reloaded; their traces fall back to the other rules", "err", err)
		} else if n, d := m.Loaded(), m.LoadedDecisions(); n+d > 0 {
			r.log.Info("tail sampling: error marks and trace decisions reloaded", "marks", n, "decisions", d)
		}
		r.relWG.Go(func() { m.Run(relCtx) })
	} else {
		r.dropMarks()
	}
	r.startSamplers(relCtx, r.buf.Stats().Streams)
	if r.aggr != nil {
		m := forward.MetricsOptions{
			Buffer:     r.buf,
			Aggregator: r.aggr.agg,
			Limiter:    r.aggr.lim,
			Limits:     r.limits,
			Outcomes:   &r.outcomes,
			Limited:    r.limitedReporter(),
			Logger:     r.log,
		}
		for s := range raw {
			m.Sources = append(m.Sources, s)
		}
		if r.cache != nil {
			m.Projects = r.cache
		}
		forward.NewMetrics(m).Start(&r.fwdWG, readCtx, sendCtx)
	}
	lines, reports := r.outcomeSinks()
	if r.reporter.Raw() {
		streams[record.Outcomes().ID()] = true
	}
	for s := range streams {
		c := record.Stream(s).Class()
		o := forward.ForwarderOptions{
			Buffer:   r.buf,
			Stream:   s,
			Sink:     r.sinks.For(c),
			Outcomes: &r.outcomes,
			Limits:   r.limits,
			Logger:   r.log,
			// The upstream's 429 limits are enforced at the door.
			RateLimits: upstreamLimits{r},
			Reporter:   r.loopReporter(),
		}
		switch {
		case record.Stream(s).IsOutcomes():
			// Outcomes are not reported again when they are dropped.
			o.Sink, o.Reporter, o.RateLimits = lines, nil, nil
			o.Outcomes = tee{&r.outcomes, &r.rawCounts}
		case c == envelope.ClassClientReport && reports != nil:
			o.Sink = reports
		}
		if o.Sink == nil {
			o.Sink = r.sinks.For(c)
		}
		if r.auth != nil {
			o.Registrar = r.auth
		}
		if record.Stream(s).IsFlushed() && r.cfg.Metrics.FlushPartitions > 0 {
			o.Shard = strconv.Itoa(int(record.Stream(s).Partition()))
		}
		o.SteerTrace = !record.Stream(s).IsOutcomes() && r.cfg.RouteFor(c).Steer == config.SteerTrace
		if up, ok := r.cfg.UpstreamFor(c); ok && up.MaxRetryInterval > 0 {
			o.MaxBackoff = up.MaxRetryInterval
		}
		o.Instruments, o.Route = r.im.forward, c.String()
		if r.tracing {
			o.Tracer = r.tracer
		}
		if record.Stream(s).IsOutcomes() {
			o.Route = "outcomes"
		}
		f := forward.NewForwarder(o)
		r.fwdWG.Go(func() { f.Run(readCtx, sendCtx) })
	}
}

// ready is what /ready answers: not while closing, while the buffer refuses
// appends, while a Kafka cluster refuses Baton (SASL, TLS or ACLs: a
// setting to fix, which the buffer alone cannot ride out), or, in managed
// mode, until Baton is registered with its upstream and while that fails
// (as Relay). An unreachable destination does not count otherwise: the
// buffer is there for that.
func (r *Relay) ready() bool {
	if r.closing.Load() || !r.buf.Ready() {
		return false
	}
	if r.auth != nil && !r.auth.Ready() {
		return false
	}
	_, f := r.sinks.KafkaFault()
	return f == nil
}

func (r *Relay) bufferOptions() buffer.Options {
	b := r.cfg.Buffer
	opts := buffer.Options{
		MaxBytes:     int64(b.MaxBytes),
		ReserveBytes: int64(b.ReserveBytes),
		MaxAge:       b.MaxAge,
		MemTableSize: uint64(b.MemtableSize),
		Logger:       storeLogger{r.log},
		Weigh:        record.Items,
		OnDrop:       r.onBufferDrop,
		Digest:       r.dropDigest(),
		DropOldest: func(s buffer.Stream) bool {
			return r.cfg.RouteFor(record.Stream(s).Class()).WhenFull == "drop_oldest"
		},
	}
	if r.reporter.Raw() {
		// Outcome records report evictions, which happen when the buffer
		// is full: they go in the overdraft (buffer.Options.Overdraws).
		opts.Overdraws = func(s buffer.Stream) bool { return record.Stream(s).IsOutcomes() }
	}
	if r.tel.Enabled() {
		opts.OnCommit = r.observeCommit
	}
	if b.Durability == "relaxed" {
		opts.Durability = buffer.Relaxed
		opts.SyncInterval = b.SyncInterval
	}
	return opts
}

// storeLogger adapts slog to Pebble's logger. Fatalf returns: the buffer
// then fails with ErrFailed (ingest answers 503) instead of the process
// exiting with acked data in an unknown state.
type storeLogger struct{ l *slog.Logger }

func (s storeLogger) Infof(format string, args ...any) {
	s.l.Debug("buffer: " + fmt.Sprintf(format, args...))
}
func (s storeLogger) Errorf(format string, args ...any) {
	s.l.Error("buffer: " + fmt.Sprintf(format, args...))
}
func (s storeLogger) Fatalf(format string, args ...any) {
	s.l.Error("buffer failed; refusing new data: " + fmt.Sprintf(format, args...))
}

type fasthttpLogger struct{ l *slog.Logger }

func (f fasthttpLogger) Printf(format string, args ...any) {
	f.l.Debug("fasthttp: " + fmt.Sprintf(format, args...))
}

// byClass sums the records and items of buffer streams per traffic class.
func byClass(streams []buffer.StreamStats) (per [envelope.NumClasses]outcome.Count) {
	for _, s := range streams {
		if c := record.Stream(s.Stream).Class(); c < envelope.NumClasses {
			per[c].Records += s.Pending
			per[c].Items += s.PendingWeight
		}
	}
	return per
}

// InspectBuffer reads the state of every stream of the buffer in dir
// without modifying it; PendingWeight is the pending envelope items. Baton
// must be stopped: a buffer in use is locked (a *StartupError naming the
// holder).
func InspectBuffer(dir string) ([]buffer.StreamStats, error) {
	st, err := buffer.Inspect(dir)
	if errors.Is(err, buffer.ErrLocked) {
		return nil, bufferDirError(dir, err)
	}
	return st, err
}
