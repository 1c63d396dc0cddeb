// Package clientoptions is the reference client of Baton's client options
// (docs/client-options.md): it fetches what Baton serves at
// GET /api/{project_id}/client-options/ for this client and applies it to
// a sentry-go client while it runs. SDK authors can read it as the
// protocol in code:
//
//   - the client says who it is in the query (sdk, version, release,
//     environment, platform, device_id) and authenticates with its DSN key;
//   - it keeps the answer's ETag and asks again with If-None-Match (304:
//     nothing changed), no sooner than Cache-Control max-age;
//   - every ingest answer carries X-Baton-Client-Options, the revision in
//     force: a client holding another revision fetches again at once,
//     without waiting for its next poll;
//   - an option the answer leaves unset keeps the SDK's own value, and a
//     failed fetch keeps the last answer.
//
// sentry-go decides sampling per transaction through TracesSampler, which
// Apply installs, so a new traces_sample_rate takes effect on the next
// transaction without a new client. sentry-go v0.50 has no profiler:
// ProfilesSampleRate is exposed for applications that run one.
package clientoptions

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/getsentry/sentry-go"
)

// Options configure a Client.
type Options struct {
	// DSN is the project's DSN, as given to sentry-go. Required.
	DSN string
	// Release and Environment are sent for targeting; use the values given
	// to sentry-go. Default: "".
	Release, Environment string
	// DeviceID identifies this device or installation for percentage
	// rules; stable across restarts. Default: "" (percentage rules never
	// match).
	DeviceID string
	// HTTPClient fetches the options. Default: http.DefaultClient.
	HTTPClient *http.Client
	// MinInterval is the shortest time between two fetches, whatever the
	// hints. Default: 100ms.
	MinInterval time.Duration
}

// Resolved are the options Baton answered for this client; nil fields are
// unset.
type Resolved struct {
	Version  int      `json:"version"`
	Revision string   `json:"revision"`
	Rules    []string `json:"rules"`
	Options  struct {
		TracesSampleRate         *float64 `json:"traces_sample_rate"`
		ProfilesSampleRate       *float64 `json:"profiles_sample_rate"`
		ReplaysSessionSampleRate *float64 `json:"replays_session_sample_rate"`
		ReplaysOnErrorSampleRate *float64 `json:"replays_on_error_sample_rate"`
		EnableMinidumps          *bool    `json:"enable_minidumps"`
		SendDefaultPII           *bool    `json:"send_default_pii"`
	} `json:"options"`
}

// Client keeps the current options of one SDK client.
type Client struct {
	opts    Options
	url     string
	key     string
	current atomic.Pointer[Resolved]
	maxAge  atomic.Int64 // ns, from Cache-Control

	mu       sync.Mutex // one fetch at a time
	etag     string
	last     time.Time
	fetching atomic.Bool
	fetches  atomic.Int64
	hints    sync.WaitGroup // background fetches started by hints

	after func(time.Duration) <-chan time.Time // Run's clock: time.After, a test's ticks
}

// ErrDSN is returned by New for a DSN it cannot read.
var ErrDSN = errors.New("clientoptions: invalid DSN")

// New returns a Client for opts; it fetches nothing yet.
func New(opts Options) (*Client, error) {
	u, err := url.Parse(opts.DSN)
	if err != nil || u.User == nil || u.User.Username() == "" {
		return nil, fmt.Errorf("%w: %q", ErrDSN, opts.DSN)
	}
	path := strings.TrimSuffix(u.Path, "/")
	i := strings.LastIndexByte(path, '/')
	pid := path[i+1:]
	if _, err := strconv.ParseUint(pid, 10, 64); err != nil {
		return nil, fmt.Errorf("%w: no project id in %q", ErrDSN, opts.DSN)
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = http.DefaultClient
	}
	if opts.MinInterval <= 0 {
		opts.MinInterval = 100 * time.Millisecond
	}
	q := url.Values{}
	q.Set("sdk", "sentry.go")
	q.Set("version", sentry.SDKVersion)
	q.Set("platform", "go")
	for k, v := range map[string]string{"release": opts.Release, "environment": opts.Environment, "device_id": opts.DeviceID} {
		if v != "" {
			q.Set(k, v)
		}
	}
	c := &Client{
		opts:  opts,
		after: time.After,
		key:   u.User.Username(),
		url:   fmt.Sprintf("%s://%s%s/api/%s/client-options/?%s", u.Scheme, u.Host, path[:i], pid, q.Encode()),
	}
	c.maxAge.Store(int64(time.Minute))
	return c, nil
}

// Current returns the options in force, nil before the first answer.
func (c *Client) Current() *Resolved { return c.current.Load() }

// Fetches counts the requests made (200 and 304 alike).
func (c *Client) Fetches() int64 { return c.fetches.Load() }

// Fetch asks Baton for the options; changed reports a new revision. On
// error the options in force stay.
func (c *Client) Fetch(ctx context.Context) (changed bool, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url, nil)
	if err != nil {
		return false, err
	}
	req.Header.Set("X-Sentry-Auth", "Sentry sentry_version=7, sentry_client=sentry.go/"+sentry.SDKVersion+", sentry_key="+c.key)
	if c.etag != "" {
		req.Header.Set("If-None-Match", c.etag)
	}
	c.last = time.Now()
	c.fetches.Add(1)
	resp, err := c.opts.HTTPClient.Do(req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return false, err
	}
	if age, ok := maxAge(resp.Header.Get("Cache-Control")); ok {
		c.maxAge.Store(int64(age))
	}
	switch resp.StatusCode {
	case http.StatusNotModified:
		return false, nil
	case http.StatusOK:
	default:
		return false, fmt.Errorf("clientoptions: %s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	var r Resolved
	if err := json.Unmarshal(body, &r); err != nil {
		return false, fmt.Errorf("clientoptions: answer: %w", err)
	}
	c.etag = resp.Header.Get("ETag")
	prev := c.current.Swap(&r)
	return prev == nil || prev.Revision != r.Revision, nil
}

// maxAge reads max-age from a Cache-Control value.
func maxAge(cc string) (time.Duration, bool) {
	for _, d := range strings.Split(cc, ",") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(d), "max-age="); ok {
			if n, err := strconv.Atoi(v); err == nil && n >= 0 {
				return time.Duration(n) * time.Second, true
			}
		}
	}
	return 0, false
}

// Run fetches once, then again each max-age and whenever an ingest answer
// (seen through Apply's transport) names another revision, until ctx ends.
func (c *Client) Run(ctx context.Context) {
	for {
		c.Fetch(ctx) //nolint:errcheck // a failed fetch keeps the last answer
		select {
		case <-ctx.Done():
			return
		case <-c.after(time.Duration(c.maxAge.Load())):
		}
	}
}

// Apply makes o follow the options: TracesSampler returns the served
// traces_sample_rate (o's TracesSampleRate while none is served), and
// o.HTTPTransport is wrapped to watch X-Baton-Client-Options on ingest
// answers.
func (c *Client) Apply(o *sentry.ClientOptions) {
	fallback := o.TracesSampleRate
	o.TracesSampler = func(sentry.SamplingContext) float64 {
		if r := c.current.Load(); r != nil && r.Options.TracesSampleRate != nil {
			return *r.Options.TracesSampleRate
		}
		return fallback
	}
	next := o.HTTPTransport
	if next == nil {
		next = http.DefaultTransport
	}
	o.HTTPTransport = &hintTransport{c: c, next: next}
}

// Close waits for the fetches hints started; call it after the sentry-go
// client is closed.
func (c *Client) Close() { c.hints.Wait() }

// WithholdDefaultPII reports whether the served options say
// send_default_pii: false. sentry-go fixes what data it collects when the
// client is made (ClientOptions.DataCollection), so an application applies
// it there, after a first Fetch.
func (c *Client) WithholdDefaultPII() bool {
	r := c.current.Load()
	return r != nil && r.Options.SendDefaultPII != nil && !*r.Options.SendDefaultPII
}

// ProfilesSampleRate is the served profiles_sample_rate, or fallback.
func (c *Client) ProfilesSampleRate(fallback float64) float64 {
	if r := c.current.Load(); r != nil && r.Options.ProfilesSampleRate != nil {
		return *r.Options.ProfilesSampleRate
	}
	return fallback
}

// hintTransport fetches the options again, in the background, when an
// ingest answer names a revision other than the one in force.
type hintTransport struct {
	c    *Client
	next http.RoundTripper
}

func (t *hintTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if err == nil {
		if rev := resp.Header.Get("X-Baton-Client-Options"); rev != "" {
			t.c.hint(rev)
		}
	}
	return resp, err
}

func (c *Client) hint(rev string) {
	if r := c.current.Load(); r != nil && r.Revision == rev {
		return
	}
	if !c.fetching.CompareAndSwap(false, true) {
		return
	}
	c.hints.Add(1)
	go func() {
		defer c.hints.Done()
		defer c.fetching.Store(false)
		c.mu.Lock()
		wait := c.opts.MinInterval - time.Since(c.last)
		c.mu.Unlock()
		if wait > 0 {
			time.Sleep(wait) // rate limit, not synchronisation
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c.Fetch(ctx) //nolint:errcheck // the next hint or poll retries
	}()
}
