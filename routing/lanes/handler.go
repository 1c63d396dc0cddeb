package lanes

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// Verdict is what a handler made of a record.
type Verdict int

// Verdicts.
const (
	Done     Verdict = iota // handled: commit it
	Escalate                // move it to the next lane (dead letter after the last)
	Throttle                // the handler is overloaded: wait Result.After, call again
	Reject                  // permanent refusal: dead letter with Result.Reason
	Retry                   // transient failure: call again, up to the lane's max attempts
)

// Result is a handler's answer.
type Result struct {
	Verdict Verdict
	After   time.Duration // Throttle: how long the lane waits
	Reason  string        // Reject, Retry, Escalate: why, for the reason header and logs
}

// Item is one record as a handler sees it.
type Item struct {
	Topic     string
	Partition int32
	Offset    int64
	Key       []byte
	Value     []byte
	Headers   map[string]string
	Attempt   int // lanes this record went through before this one
}

// Handler handles one record. Handle must return once ctx is done (the
// lane's deadline or shutdown); its answer is then ignored.
type Handler interface {
	Handle(ctx context.Context, it *Item) Result
}

// HandlerFunc is a function as a Handler.
type HandlerFunc func(ctx context.Context, it *Item) Result

// Handle implements Handler.
func (f HandlerFunc) Handle(ctx context.Context, it *Item) Result { return f(ctx, it) }

// HTTP POSTs each record to URL: the value as body, Content-Type
// application/octet-stream, topic, partition, offset, key and attempt as
// X-Baton-Topic, -Partition, -Offset, -Key, -Attempt, and each record header
// h as X-Baton-H (underscores as dashes: project_id → X-Baton-Project-Id).
//
// The status decides: X-Baton-Escalate (any non-empty value, any status)
// escalates; 2xx is done; 429 and 503 throttle the lane for Retry-After
// (seconds or an HTTP date, default 1s); other 4xx reject with the status and the start of
// the body as reason; anything else, and no answer, is retried.
type HTTP struct {
	URL    string
	Client *http.Client // nil: http.DefaultClient (the lane's deadline bounds each call)
}

// NewHTTP returns an HTTP handler whose client keeps up to concurrency
// connections to url alive: the default keeps 2, so a busier lane would
// dial for nearly every call.
func NewHTTP(url string, concurrency int) *HTTP {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = max(concurrency, 2)
	return &HTTP{URL: url, Client: &http.Client{Transport: t}}
}

// maxReason caps the reason taken from a handler's answer.
const maxReason = 200

// Handle implements Handler.
func (h *HTTP) Handle(ctx context.Context, it *Item) Result {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.URL, bytes.NewReader(it.Value))
	if err != nil {
		return Result{Verdict: Reject, Reason: err.Error()}
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set("X-Baton-Topic", it.Topic)
	req.Header.Set("X-Baton-Partition", strconv.Itoa(int(it.Partition)))
	req.Header.Set("X-Baton-Offset", strconv.FormatInt(it.Offset, 10))
	req.Header.Set("X-Baton-Attempt", strconv.Itoa(it.Attempt))
	if it.Key != nil {
		req.Header.Set("X-Baton-Key", string(it.Key))
	}
	for k, v := range it.Headers {
		if name := headerName(k); name != "" {
			req.Header.Set("X-Baton-"+name, v)
		}
	}
	c := h.Client
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		return Result{Verdict: Retry, Reason: err.Error()}
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxReason))
	switch s := resp.StatusCode; {
	case resp.Header.Get("X-Baton-Escalate") != "":
		return Result{Verdict: Escalate, Reason: "handler: " + resp.Header.Get("X-Baton-Escalate")}
	case s >= 200 && s < 300:
		return Result{Verdict: Done}
	case s == http.StatusTooManyRequests || s == http.StatusServiceUnavailable:
		return Result{Verdict: Throttle, After: retryAfter(resp.Header.Get("Retry-After"), time.Now()), Reason: resp.Status}
	case s >= 400 && s < 500:
		return Result{Verdict: Reject, Reason: strings.TrimSpace(resp.Status + ": " + string(body))}
	default:
		return Result{Verdict: Retry, Reason: resp.Status}
	}
}

// retryAfter reads a Retry-After value, delay-seconds or an HTTP date
// (RFC 9110 §10.2.3), as the wait from now: 1s when it is missing or
// unreadable, 0 for a date already past.
func retryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		return time.Duration(n) * time.Second
	}
	if at, err := http.ParseTime(v); err == nil {
		return max(at.Sub(now), 0)
	}
	return time.Second
}

// headerName makes a record header name an HTTP header name suffix, or ""
// when it cannot be one.
func headerName(k string) string {
	var b strings.Builder
	up := true
	for _, r := range k {
		switch {
		case r == '_' || r == '-' || r == '.':
			b.WriteByte('-')
			up = true
			continue
		case r > unicode.MaxASCII || !(unicode.IsLetter(r) || unicode.IsDigit(r)):
			return ""
		case up:
			r = unicode.ToUpper(r)
		}
		up = false
		b.WriteRune(r)
	}
	return b.String()
}

// Command runs Argv once per record with the value on stdin and the
// metadata in the environment (BATON_TOPIC, BATON_PARTITION, BATON_OFFSET,
// BATON_KEY, BATON_ATTEMPT). Exit 0 is done, ExitEscalate escalates,
// ExitRetry is retried, any other exit rejects with the end of stderr as
// reason. The answer is the exit code alone: stdout is not read (it goes
// to /dev/null, so a command that prints its result needs no reader), and
// a command's results go wherever it writes them. The process is killed
// when the lane's deadline passes.
type Command struct {
	Argv []string
}

// Exit codes of a Command handler.
const (
	ExitRetry    = 1
	ExitEscalate = 75 // EX_TEMPFAIL
)

// Handle implements Handler.
func (c *Command) Handle(ctx context.Context, it *Item) Result {
	cmd := exec.CommandContext(ctx, c.Argv[0], c.Argv[1:]...)
	cmd.Stdin = bytes.NewReader(it.Value)
	cmd.Env = append(os.Environ(),
		"BATON_TOPIC="+it.Topic,
		"BATON_PARTITION="+strconv.Itoa(int(it.Partition)),
		"BATON_OFFSET="+strconv.FormatInt(it.Offset, 10),
		"BATON_KEY="+string(it.Key),
		"BATON_ATTEMPT="+strconv.Itoa(it.Attempt))
	var stderr tailBuf
	cmd.Stderr = &stderr
	cmd.WaitDelay = time.Second // a grandchild holding stderr open must not hold the lane
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return Result{Verdict: Done}
	case ctx.Err() != nil:
		return Result{Verdict: Retry, Reason: ctx.Err().Error()}
	case errors.As(err, &ee) && ee.ExitCode() == ExitEscalate:
		return Result{Verdict: Escalate, Reason: "handler: exit 75"}
	case errors.As(err, &ee) && ee.ExitCode() > 0 && ee.ExitCode() != ExitRetry:
		return Result{Verdict: Reject, Reason: strings.TrimSpace(fmt.Sprintf("exit %d: %s", ee.ExitCode(), stderr.b))}
	default:
		return Result{Verdict: Retry, Reason: err.Error()}
	}
}

// tailBuf keeps the last maxReason bytes written.
type tailBuf struct{ b []byte }

func (t *tailBuf) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > maxReason {
		t.b = t.b[len(t.b)-maxReason:]
	}
	return len(p), nil
}
