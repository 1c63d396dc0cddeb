package routing

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/valyala/bytebufferpool"
	"github.com/valyala/fasthttp"

	"github.com/baton-relay/baton/envelope"
)

// Defaults of UpstreamOptions. Those Baton's config also has (its
// defaults.upstream) are equal there; relay's TestDefaultsAgree checks it.
const (
	DefaultUpstreamCompression   = "gzip"
	DefaultUpstreamTimeout       = 30 * time.Second
	DefaultUpstreamMaxFailures   = 5
	DefaultUpstreamProbeInterval = 10 * time.Second
	DefaultUpstreamMaxConns      = 100
	DefaultUpstreamConcurrency   = 8
	DefaultUserAgent             = "baton"
)

var (
	// ErrNoUpstreams is returned by NewUpstream without URLs.
	ErrNoUpstreams = errors.New("routing: upstream: no URLs")
	// ErrBadUpstreamURL is returned by NewUpstream for a URL it cannot use.
	ErrBadUpstreamURL = errors.New("routing: upstream: bad URL")
	// ErrConnsBusy is a request's error when every connection to its node
	// stayed busy until the request's deadline. It is retryable and is
	// not held against the node: the congestion is this relay's.
	ErrConnsBusy = errors.New("routing: upstream: every connection busy until the deadline")
)

// UpstreamOptions configures NewUpstream. The zero value of every field but
// URLs selects the documented default.
type UpstreamOptions struct {
	// URLs is the pool of upstream relays: http(s)://host[:port][/prefix].
	URLs []string
	// Compression of request bodies: "gzip" (default), "zstd" or "none".
	Compression string
	// Timeout bounds one request, connecting included. Default 30 s.
	Timeout time.Duration
	// MaxFailures consecutive failures (connection errors, timeouts, 5xx)
	// eject a node; negative never ejects. Default (0) 5.
	MaxFailures int
	// ProbeInterval is how long a node stays ejected. After it, the next
	// request hashed to the node is a trial: success re-admits the node,
	// failure ejects it for another interval. Default 10 s.
	ProbeInterval time.Duration
	// Concurrency is how many requests one Send runs at once (Baton's
	// upstreams.NAME.concurrency). Default 8.
	Concurrency int
	// MaxConnsPerHost caps connections per node, and so the requests in
	// flight to it across every Send, Forward and caller: a request finding
	// them all busy waits for one (until its deadline or ctx ends) rather
	// than failing. Default 100.
	MaxConnsPerHost int
	// MaxIdleConnDuration closes idle keep-alive connections (fasthttp
	// default 10 s).
	MaxIdleConnDuration time.Duration
	// UserAgent is sent with every request and is the sentry_client of
	// messages without one. Default "baton"; use "baton/<version>".
	UserAgent string
	// TLS configures https upstreams; nil uses Go's defaults.
	TLS *tls.Config
	// Sign, if set, is called on every envelope request just before it is
	// sent (body final), e.g. to add the relay signature headers. Forward
	// does not call it.
	Sign func(req *fasthttp.Request)
	// Dial replaces the dialer (tests, proxies).
	Dial fasthttp.DialFunc
	// OutageGracePeriod is how long a node's requests may fail at the
	// network level (no answer, or 502-504) before it enters outage mode
	// (outage.go). Default 10 s, Relay's http.outage_grace_period.
	OutageGracePeriod time.Duration
	// MaxRetryInterval caps the backoff between outage probes. Default
	// 60 s, Relay's http.max_retry_interval.
	MaxRetryInterval time.Duration
	// Logger receives a line per outage and recovery. Default
	// slog.Default().
	Logger *slog.Logger
	// Now returns the current time. Default time.Now.
	Now func() time.Time
	// After waits for the outage prober's backoff. Default time.After.
	After func(time.Duration) <-chan time.Time
}

// StatusError is an upstream answer other than 2xx. Send wraps it with
// Permanent or Throttled as the status requires.
type StatusError struct {
	Status int
	// Detail is the start of the response body, for logs and outcomes.
	Detail string
	// Limits are the parsed X-Sentry-Rate-Limits of a 429 or 503.
	Limits []RateLimit
}

func (e *StatusError) Error() string {
	if e.Detail == "" {
		return fmt.Sprintf("upstream answered %d", e.Status)
	}
	return fmt.Sprintf("upstream answered %d: %s", e.Status, e.Detail)
}

// maxDetail is how much of an error body StatusError keeps.
const maxDetail = 256

// HeaderShard carries a steered message's partition (Relay's metrics
// traffic steering).
const HeaderShard = "X-Sentry-Relay-Shard"

// Upstream sends envelopes to a pool of upstream relays over HTTP.
//
// Each public key sticks to one node by rendezvous hashing over the nodes
// that are not ejected, so ejecting a node moves only its keys.
type Upstream struct {
	opts  UpstreamOptions
	nodes []*upstreamNode

	gzipPool sync.Pool
	zstdEnc  *zstd.Encoder

	closed    atomic.Bool
	stop      chan struct{} // closed by Close: probers end
	probers   sync.WaitGroup
	outages   atomic.Uint64
	ejections atomic.Uint64 // failures that ejected (or re-ejected) a node
}

type upstreamNode struct {
	base   string // scheme://host[:port][/prefix] without trailing slash
	scheme string
	host   string
	prefix string // escaped path prefix without trailing slash, or ""
	seed   uint64 // rendezvous identity
	hc     *fasthttp.HostClient
	// slots holds a token per request in flight, MaxConnsPerHost at most:
	// the streams' Sends together may want more (streams × Concurrency),
	// and fasthttp fails a request finding no free connection at once.
	slots    chan struct{}
	failures atomic.Int32
	// ejectedUntil is 0 for a healthy node, else the unix-nano time from
	// which the next request may try it.
	ejectedUntil atomic.Int64
	// netErrSince is the unix-nano time of the first network failure
	// since the last answer, or 0; outage is set while in outage mode.
	netErrSince atomic.Int64
	outage      atomic.Pointer[outage]
	// For the status page (Members): the last failure and a moving average
	// of the round trip of answered requests.
	lastErr atomic.Pointer[nodeError]
	rtt     atomic.Int64 // nanoseconds, EWMA (1/8 weight per request)
}

// nodeError is a node's last failure and when it happened.
type nodeError struct {
	at  time.Time
	msg string
}

// NewUpstream validates opts and builds the node pool. It does not connect.
func NewUpstream(opts UpstreamOptions) (*Upstream, error) {
	if len(opts.URLs) == 0 {
		return nil, ErrNoUpstreams
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultUpstreamTimeout
	}
	if opts.MaxFailures == 0 {
		opts.MaxFailures = DefaultUpstreamMaxFailures
	}
	if opts.ProbeInterval <= 0 {
		opts.ProbeInterval = DefaultUpstreamProbeInterval
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = DefaultUpstreamConcurrency
	}
	if opts.MaxConnsPerHost <= 0 {
		opts.MaxConnsPerHost = DefaultUpstreamMaxConns
	}
	if opts.UserAgent == "" {
		opts.UserAgent = DefaultUserAgent
	}
	if opts.OutageGracePeriod <= 0 {
		opts.OutageGracePeriod = DefaultUpstreamOutageGracePeriod
	}
	if opts.MaxRetryInterval <= 0 {
		opts.MaxRetryInterval = DefaultUpstreamMaxRetryInterval
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.After == nil {
		opts.After = time.After
	}
	u := &Upstream{opts: opts, stop: make(chan struct{})}
	switch strings.ToLower(opts.Compression) {
	case "", DefaultUpstreamCompression:
		u.opts.Compression = DefaultUpstreamCompression
	case "zstd":
		u.opts.Compression = "zstd"
		enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(1))
		if err != nil {
			return nil, fmt.Errorf("routing: upstream zstd: %w", err)
		}
		u.zstdEnc = enc
	case "none", "identity":
		u.opts.Compression = ""
	default:
		return nil, fmt.Errorf("%w %q for upstream", ErrUnknownCompression, opts.Compression)
	}
	seen := make(map[string]bool, len(opts.URLs))
	for _, raw := range opts.URLs {
		n, err := newUpstreamNode(raw, &u.opts)
		if err != nil {
			return nil, err
		}
		if seen[n.base] {
			return nil, fmt.Errorf("%w: %q listed twice", ErrBadUpstreamURL, raw)
		}
		seen[n.base] = true
		u.nodes = append(u.nodes, n)
	}
	return u, nil
}

func newUpstreamNode(raw string, o *UpstreamOptions) (*upstreamNode, error) {
	pu, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadUpstreamURL, err)
	}
	if (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" || pu.RawQuery != "" || pu.User != nil {
		return nil, fmt.Errorf("%w: %q (want http(s)://host[:port][/prefix])", ErrBadUpstreamURL, raw)
	}
	tlsOn := pu.Scheme == "https"
	prefix := strings.TrimRight(pu.EscapedPath(), "/")
	base := pu.Scheme + "://" + pu.Host + prefix
	return &upstreamNode{
		base:   base,
		scheme: pu.Scheme,
		host:   pu.Host,
		prefix: prefix,
		seed:   hash64(base),
		slots:  make(chan struct{}, o.MaxConnsPerHost),
		hc: &fasthttp.HostClient{
			Addr:      fasthttp.AddMissingPort(pu.Host, tlsOn),
			IsTLS:     tlsOn,
			TLSConfig: o.TLS,
			Dial:      o.Dial,
			MaxConns:  o.MaxConnsPerHost,
			// slots keeps requests within MaxConns; this covers a closing
			// connection not yet uncounted, waiting instead of failing.
			MaxConnWaitTimeout:            o.Timeout,
			MaxIdleConnDuration:           o.MaxIdleConnDuration,
			Name:                          o.UserAgent,
			ReadTimeout:                   o.Timeout,
			WriteTimeout:                  o.Timeout,
			DisableHeaderNamesNormalizing: true, // forward header names as written
			DisablePathNormalizing:        true, // forward paths verbatim
		},
	}, nil
}

// Close rejects further sends, ends the outage probers (waiting for a
// probe in flight until ctx ends) and closes idle connections.
func (u *Upstream) Close(ctx context.Context) error {
	if u.closed.Swap(true) {
		return nil
	}
	u.stopProbers(ctx)
	for _, n := range u.nodes {
		n.hc.CloseIdleConnections()
	}
	if u.zstdEnc != nil {
		u.zstdEnc.Close()
	}
	return nil
}

// Send posts every message to {node}/api/{project_id}/envelope/ on the node
// its public key hashes to, up to Concurrency at a time; the messages of an
// Ordered class one after another per project, a retryable failure holding
// back the rest of them (ErrHeldBack). A project's first message goes alone:
// if it fails (retryably), the project's others are held back too.
//
// Results: 2xx → nil; 429 and 503 → Throttled with the wait of Retry-After
// or X-Sentry-Rate-Limits (the longer); 408 and other 5xx, connection
// errors and timeouts → retryable and count toward ejecting the node; other
// 4xx → Permanent with a StatusError; 1xx/3xx → retryable (a misconfigured
// URL must not drop data).
func (u *Upstream) Send(ctx context.Context, msgs []Message, errs []error) {
	if u.closed.Load() {
		for i := range errs {
			errs[i] = ErrClosed
		}
		return
	}
	// Messages of an ordered class (see Ordered) are sent one after another
	// per project, so that they arrive in stream order (a session's init
	// before its updates); every other message is independent. Up to
	// Concurrency requests run at a time. A project's first message goes
	// alone: its others wait for its answer and are held back if it failed,
	// so a failing upstream costs one request per project and attempt, as
	// when everything went in order.
	groups := sendPlan(msgs)
	workers := min(u.opts.Concurrency, len(groups))
	var (
		next atomic.Int64
		wg   sync.WaitGroup
	)
	for range workers {
		wg.Go(func() {
			for {
				g := int(next.Add(1) - 1)
				if g >= len(groups) {
					return
				}
				u.sendGroup(ctx, msgs, &groups[g], errs)
			}
		})
	}
	wg.Wait()
}

// Ordered reports whether the messages of class c must reach an upstream
// in stream order per project: sessions (an init before its updates, an
// aggregate after the updates it sums) and check-ins (in_progress before
// ok or error of the same check-in). Both are updates of one entity's
// state; every other class carries self-contained items (an event, a
// span, a log line), which an upstream accepts in any order, so they are
// sent in parallel.
func Ordered(c envelope.Class) bool {
	return c == envelope.ClassSession || c == envelope.ClassCheckIn
}

// ErrHeldBack fills the slots of messages not sent because an earlier
// message of the same project failed: the first one Send tried, or one
// before them in an Ordered class. It is retryable.
var ErrHeldBack = errors.New("routing: held back behind an earlier message of the same project")

// sendGroup sends msgs[g.idx...] in order, stopping at the first retryable
// failure so that nothing overtakes it. A group that does not lead its
// project first waits for the leading message's answer.
func (u *Upstream) sendGroup(ctx context.Context, msgs []Message, g *sendGroup, errs []error) {
	held := func(from int) {
		err := ErrHeldBack
		if cerr := ctx.Err(); cerr != nil {
			err = cerr // Send's contract: ctx's error in unfinished slots
		}
		for _, j := range g.idx[from:] {
			errs[j] = err
		}
	}
	if !g.leads {
		select {
		case <-g.lead.done:
		case <-ctx.Done():
		}
		if g.lead.failed || ctx.Err() != nil {
			held(0)
			return
		}
	}
	for n, i := range g.idx {
		errs[i] = u.sendOne(ctx, &msgs[i])
		failed := errs[i] != nil && !IsPermanent(errs[i])
		if n == 0 && g.leads {
			g.lead.failed = failed // read after done is closed
			close(g.lead.done)
		}
		if failed {
			held(n + 1)
			return
		}
	}
}

// sendGroup is a sequence of messages Send runs in order: an Ordered
// class's messages of one project, or one message of another class.
type sendGroup struct {
	idx   []int
	lead  *projectLead
	leads bool // idx[0] is lead's message
}

// projectLead is the answer to a project's first message in a Send.
type projectLead struct {
	done   chan struct{} // closed when answered
	failed bool          // retryably: the project's other messages wait
}

// sendPlan returns the groups of msgs in order of first appearance: the
// messages of an Ordered class grouped by public key and class, each group
// in message order, and every other message alone. The first group of each
// public key leads it.
func sendPlan(msgs []Message) []sendGroup {
	groups := make([]sendGroup, 0, len(msgs))
	solo := make([]int, 0, len(msgs)) // backs the one-message groups
	leads := make(map[string]*projectLead, 4)
	var at map[orderKey]int
	for i := range msgs {
		m := &msgs[i]
		lead, ok := leads[m.PublicKey]
		if !ok {
			lead = &projectLead{done: make(chan struct{})}
			leads[m.PublicKey] = lead
		}
		if !Ordered(m.Class) {
			solo = append(solo, i)
			groups = append(groups, sendGroup{idx: solo[len(solo)-1 : len(solo) : len(solo)], lead: lead, leads: !ok})
			continue
		}
		if at == nil {
			at = make(map[orderKey]int, 4)
		}
		k := orderKey{m.PublicKey, m.Class}
		g, seen := at[k]
		if !seen {
			g = len(groups)
			at[k] = g
			groups = append(groups, sendGroup{lead: lead, leads: !ok})
		}
		groups[g].idx = append(groups[g].idx, i)
	}
	return groups
}

type orderKey struct {
	key   string
	class envelope.Class
}

func (u *Upstream) sendOne(ctx context.Context, m *Message) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	deadline := time.Now().Add(u.opts.Timeout) // real time: fasthttp measures it
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	var n *upstreamNode
	switch {
	case m.Shard != "":
		n = u.pick("shard:" + m.Shard)
	case len(m.Trace) > 0:
		n = u.pickHash(hash64(m.Trace))
	default:
		n = u.pick(m.PublicKey)
	}
	if err := u.available(ctx, n); err != nil {
		return err
	}

	if err := n.acquire(ctx, deadline); err != nil {
		return err
	}
	defer n.release()

	// body backs req's body (SetBodyRaw): released after req.
	body := bytebufferpool.Get()
	defer bytebufferpool.Put(body)
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	if err := u.buildRequest(req, body, n, m); err != nil {
		return Permanent(err)
	}
	start := time.Now()
	err := n.hc.DoDeadline(req, resp, deadline)
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return ctxErr // the caller gave up, not a node failure
		}
		n.fail(u)
		u.netFailed(n, err)
		n.noteErr(u, err)
		return fmt.Errorf("routing: upstream %s: %w", n.base, err)
	}
	n.noteRTT(time.Since(start))
	err = u.classify(resp, m.Envelope)
	u.answered(n, resp.StatusCode())
	if err != nil {
		n.noteErr(u, err)
		return fmt.Errorf("routing: upstream %s: %w", n.base, err)
	}
	return nil
}

// acquire takes one of n's request slots, waiting for one until deadline
// (ErrConnsBusy) or ctx's end (its error). Neither counts as n failing.
func (n *upstreamNode) acquire(ctx context.Context, deadline time.Time) error {
	select {
	case n.slots <- struct{}{}:
		return nil
	default:
	}
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case n.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return fmt.Errorf("%w (%s, %d connections)", ErrConnsBusy, n.base, cap(n.slots))
	}
}

// release returns a slot taken by acquire.
func (n *upstreamNode) release() { <-n.slots }

// noteErr keeps err as n's last failure.
func (n *upstreamNode) noteErr(u *Upstream, err error) {
	n.lastErr.Store(&nodeError{at: u.opts.Now(), msg: err.Error()})
}

// noteRTT folds an answered request's round trip into n's average.
func (n *upstreamNode) noteRTT(d time.Duration) {
	for {
		old := n.rtt.Load()
		avg := int64(d)
		if old != 0 {
			avg = old + (int64(d)-old)/8
		}
		if n.rtt.CompareAndSwap(old, avg) {
			return
		}
	}
}

// buildRequest fills req with the POST of m's envelope to n. body backs the
// request body and must live until the request is done.
func (u *Upstream) buildRequest(req *fasthttp.Request, body *bytebufferpool.ByteBuffer, n *upstreamNode, m *Message) error {
	uri := append(body.B[:0], n.base...)
	uri = append(uri, "/api/"...)
	uri = strconv.AppendUint(uri, m.ProjectID, 10)
	uri = append(uri, "/envelope/"...)
	req.SetRequestURIBytes(uri)
	req.Header.SetMethod(fasthttp.MethodPost)
	req.Header.SetContentType("application/x-sentry-envelope")
	req.Header.SetUserAgent(u.opts.UserAgent)

	auth := append(body.B[:0], "Sentry sentry_key="...)
	auth = append(auth, m.PublicKey...)
	auth = append(auth, ", sentry_version=7, sentry_client="...)
	if m.Client != "" {
		auth = append(auth, m.Client...)
	} else {
		auth = append(auth, u.opts.UserAgent...)
	}
	req.Header.SetBytesV("X-Sentry-Auth", auth)
	if m.ClientIP != "" {
		req.Header.Set("X-Forwarded-For", m.ClientIP)
	}
	if m.Shard != "" {
		req.Header.Set(HeaderShard, m.Shard)
	}
	if m.TraceParent != "" {
		req.Header.Set("traceparent", m.TraceParent)
	}

	var delay time.Duration
	if !m.ReceivedAt.IsZero() {
		delay = u.opts.Now().Sub(m.ReceivedAt)
	}
	switch u.opts.Compression {
	case "gzip":
		req.Header.Set(fasthttp.HeaderContentEncoding, "gzip")
		raw := bytebufferpool.Get()
		defer bytebufferpool.Put(raw)
		raw.B = adjustSentAt(raw.B[:0], m.Envelope, delay)
		body.B = body.B[:0]
		zw, _ := u.gzipPool.Get().(*gzip.Writer)
		if zw == nil {
			zw = gzip.NewWriter(body)
		} else {
			zw.Reset(body)
		}
		_, err := zw.Write(raw.B)
		if cerr := zw.Close(); err == nil {
			err = cerr
		}
		u.gzipPool.Put(zw)
		if err != nil {
			return fmt.Errorf("routing: upstream gzip: %w", err)
		}
	case "zstd":
		req.Header.Set(fasthttp.HeaderContentEncoding, "zstd")
		raw := bytebufferpool.Get()
		defer bytebufferpool.Put(raw)
		raw.B = adjustSentAt(raw.B[:0], m.Envelope, delay)
		body.B = u.zstdEnc.EncodeAll(raw.B, body.B[:0])
	default:
		body.B = adjustSentAt(body.B[:0], m.Envelope, delay)
	}
	req.SetBodyRaw(body.B)
	if u.opts.Sign != nil {
		u.opts.Sign(req)
	}
	return nil
}

// classify maps the response to env to Send's error vocabulary.
func (u *Upstream) classify(resp *fasthttp.Response, env []byte) error {
	code := resp.StatusCode()
	if code >= 200 && code < 300 {
		return nil
	}
	se := &StatusError{Status: code, Detail: Snippet(resp.Body())}
	switch {
	case code == fasthttp.StatusTooManyRequests || code == fasthttp.StatusServiceUnavailable:
		var after time.Duration
		if v := resp.Header.Peek(fasthttp.HeaderRetryAfter); len(v) > 0 {
			after, _ = parseRetryAfter(string(v), u.opts.Now())
		}
		if v := resp.Header.Peek("X-Sentry-Rate-Limits"); len(v) > 0 {
			se.Limits, _ = ParseRateLimits(string(v)) // keep the valid entries
			after = max(after, limitFor(se.Limits, env))
		}
		return Throttled(se, after)
	case code == fasthttp.StatusRequestTimeout, code >= 500:
		return se
	case code >= 400:
		// The upstream rejected this envelope (parse error, size, auth of
		// its key): retrying cannot help.
		return Permanent(se)
	}
	// 1xx/3xx: a misconfigured URL, not a bad envelope; keep the data.
	return se
}

// isNodeFailure reports whether status counts toward ejecting the node.
// 429 is policy, not ill health; 503 means overloaded or no backend.
func isNodeFailure(status int) bool {
	return status >= 500 || status == fasthttp.StatusRequestTimeout
}

// Snippet is the start of an error body for an error message or a log
// line: at most maxDetail bytes, cut at a rune boundary, space trimmed.
func Snippet(b []byte) string {
	if len(b) > maxDetail {
		b = b[:maxDetail]
		for len(b) > 0 && !utf8.Valid(b) { // do not cut a rune in half
			b = b[:len(b)-1]
		}
	}
	return strings.TrimSpace(string(b))
}

// answered notes n's answer with status: toward ejection and outage.
func (u *Upstream) answered(n *upstreamNode, status int) {
	if isNodeFailure(status) {
		n.fail(u)
	} else {
		n.ok()
	}
	if isNetworkStatus(status) {
		u.netFailed(n, fmt.Errorf("answered %d", status))
	} else {
		u.received(n)
	}
}

func (n *upstreamNode) ok() {
	n.failures.Store(0)
	n.ejectedUntil.Store(0)
}

func (n *upstreamNode) fail(u *Upstream) {
	if int(n.failures.Add(1)) >= u.opts.MaxFailures && u.opts.MaxFailures > 0 {
		// Also re-ejects after a failed trial.
		n.ejectedUntil.Store(u.opts.Now().Add(u.opts.ProbeInterval).UnixNano())
		u.ejections.Add(1)
	}
}

// pick returns the node for key: the highest rendezvous score among the
// nodes that are neither ejected nor in outage. A node whose ejection
// expired competes too; the first request that picks it claims the trial
// by moving its ejection forward, so only one request probes it per
// interval. With every node ejected or in outage it falls back to the
// plain rendezvous choice among the nodes not in outage, else among all.
func (u *Upstream) pick(key string) *upstreamNode { return u.pickHash(hash64(key)) }

// pickHash is pick of a key hashed with hash64.
func (u *Upstream) pickHash(kh uint64) *upstreamNode {
	if len(u.nodes) == 1 {
		return u.nodes[0]
	}
	now := u.opts.Now().UnixNano()
	var skip uint64 // bit i: node i lost its trial claim to another request
	for range len(u.nodes) {
		best, bestScore, bestUntil := -1, uint64(0), int64(0)
		for i, n := range u.nodes {
			if i < 64 && skip&(1<<i) != 0 {
				continue
			}
			until := n.ejectedUntil.Load()
			if until != 0 && now < until || n.outage.Load() != nil {
				continue
			}
			if s := rendezvousScore(kh, n.seed); best < 0 || s > bestScore {
				best, bestScore, bestUntil = i, s, until
			}
		}
		if best < 0 {
			break
		}
		n := u.nodes[best]
		if bestUntil == 0 {
			return n
		}
		next := u.opts.Now().Add(u.opts.ProbeInterval).UnixNano()
		if n.ejectedUntil.CompareAndSwap(bestUntil, next) {
			return n // this request is the trial
		}
		if best < 64 {
			skip |= 1 << best
		}
	}
	best, bestScore, bestUp := 0, uint64(0), false
	for i, n := range u.nodes {
		up := n.outage.Load() == nil
		if s := rendezvousScore(kh, n.seed); up && !bestUp || up == bestUp && s > bestScore {
			best, bestScore, bestUp = i, s, up
		}
	}
	return u.nodes[best]
}

// rendezvousScore mixes a key hash with a node seed (murmur3's finalizer):
// every (key, node) pair gets an independent, uniform score.
func rendezvousScore(key, node uint64) uint64 {
	h := key ^ node
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}

// hash64 is FNV-1a: stable across processes, so keys keep their node over
// restarts.
func hash64[T string | []byte](s T) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

// Forward proxies req verbatim to the first node that is not ejected (in
// URLs order) and leaves the answer in resp: for /api/ requests Baton does
// not handle itself. It never signs: a proxied request must not borrow this
// relay's identity (callers that speak for the relay sign req themselves). Only the scheme and host of req's URI are replaced
// (and the node's path prefix prepended). A non-2xx answer is not an
// error; transport failures are, and count toward ejection.
func (u *Upstream) Forward(ctx context.Context, req *fasthttp.Request, resp *fasthttp.Response) error {
	if u.closed.Load() {
		return ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	n := u.first()
	if err := u.available(ctx, n); err != nil {
		return err
	}
	uri := req.URI()
	if n.prefix != "" {
		uri.SetPathBytes(append([]byte(n.prefix), uri.PathOriginal()...))
	}
	uri.SetScheme(n.scheme)
	uri.SetHost(n.host)
	req.Header.SetHost(n.host)
	deadline := time.Now().Add(u.opts.Timeout) // real time: fasthttp measures it
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if err := n.acquire(ctx, deadline); err != nil {
		return err
	}
	defer n.release()
	if err := n.hc.DoDeadline(req, resp, deadline); err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return ctxErr // the caller gave up, not a node failure
		}
		n.fail(u)
		u.netFailed(n, err)
		return fmt.Errorf("routing: upstream forward to %s: %w", n.base, err)
	}
	u.answered(n, resp.StatusCode())
	return nil
}

// first returns the first healthy node in configuration order, claiming a
// trial like pick does, or when all are ejected or in outage the first
// not in outage, else the first node.
func (u *Upstream) first() *upstreamNode {
	now := u.opts.Now().UnixNano()
	fallback := u.nodes[0]
	for i := len(u.nodes) - 1; i >= 0; i-- {
		if u.nodes[i].outage.Load() == nil {
			fallback = u.nodes[i]
		}
	}
	for _, n := range u.nodes {
		until := n.ejectedUntil.Load()
		if n.outage.Load() != nil {
			continue
		}
		if until == 0 {
			return n
		}
		if now >= until && n.ejectedUntil.CompareAndSwap(until, u.opts.Now().Add(u.opts.ProbeInterval).UnixNano()) {
			return n
		}
	}
	return fallback
}
