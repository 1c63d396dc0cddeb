package routing

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/baton-relay/baton/envelope"
)

// Message is one class envelope on its way out of the buffer.
//
// Envelope aliases the buffer's record memory: a Sink must not keep it after
// Send returns, unless the message carries a Loan (see there).
type Message struct {
	Class      envelope.Class
	ProjectID  uint64
	PublicKey  string    // the DSN public key the client authenticated with
	Client     string    // sentry_client from the client's auth, if any
	ClientIP   string    // the client's address, if known
	ReceivedAt time.Time // when Baton accepted the envelope
	// Key is the partition key. Empty means "by project": sinks then use the
	// decimal project id.
	Key []byte
	// Shard, when set, steers the message: upstreams send it to the node
	// chosen by rendezvous hashing over the shard (not the public key) and
	// pass it on as X-Sentry-Relay-Shard, so every bucket of one metric key
	// reaches the same next relay.
	Shard string
	// Trace, when set (a route with steer: trace), is the trace id of the
	// envelope's sampling context: upstreams send the message to the node
	// chosen by rendezvous hashing over it instead of the public key, so
	// every item of one trace reaches the same next relay. A Shard wins.
	// It may alias Envelope's memory.
	Trace []byte
	// TraceParent, when set, is the W3C traceparent an upstream request
	// carries: the forwarder's span of a sampled record (relay/forward).
	TraceParent string
	Envelope    []byte // the serialized class envelope
	// Loan, when set, lends Envelope's memory to the sink beyond Send:
	// the sink may reference it instead of copying it, and calls
	// Loan.Keep before Send returns if it still does then. Nil: Envelope
	// is valid only during Send.
	Loan *Loan
}

// Loan is the caller's side of lending message memory to a Sink. The Kafka
// sink produces straight from lent envelopes; records still in flight when
// Send gives up at its deadline keep referencing them, so it calls Keep and
// the caller must then let that memory go (to the garbage collector) rather
// than reuse it. One Loan may cover all the messages of a batch.
type Loan struct{ kept atomic.Bool }

// Keep records that the sink still references the lent memory.
func (l *Loan) Keep() { l.kept.Store(true) }

// Kept reports whether a sink called Keep: the memory must not be reused.
func (l *Loan) Kept() bool { return l.kept.Load() }

// Sink delivers messages to one destination.
//
// Send tries to deliver every message of msgs and writes the result of
// msgs[i] into errs[i] (len(errs) == len(msgs)): nil when delivered, or an
// error classified with Permanent or Throttled (anything else is retryable).
// Send may be called from several goroutines at once. It returns early with
// ctx's error in every unfinished slot when ctx is done.
type Sink interface {
	Send(ctx context.Context, msgs []Message, errs []error)
	Close(ctx context.Context) error
}

// Bounded is implemented by sinks that cannot deliver a message whose
// envelope is larger than MaxEnvelope bytes. Ingest refuses such envelopes
// (413) before acknowledging them, rather than accept what could only be
// dropped.
type Bounded interface {
	MaxEnvelope() int
}

// ErrClosed is returned by a Sink used after Close.
var ErrClosed = errors.New("routing: sink closed")

type permanentError struct{ err error }

func (e *permanentError) Error() string { return "permanent: " + e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// Permanent marks err as one that retrying cannot fix: the message is dropped
// with an outcome.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err}
}

// IsPermanent reports whether err was marked with Permanent.
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}

type throttledError struct {
	err   error
	after time.Duration
}

func (e *throttledError) Error() string {
	return fmt.Sprintf("throttled (retry after %s): %v", e.after, e.err)
}
func (e *throttledError) Unwrap() error { return e.err }

// Throttled marks err as a destination asking us to slow down; after is how
// long it asked us to wait (0 when it did not say).
func Throttled(err error, after time.Duration) error {
	if err == nil {
		return nil
	}
	return &throttledError{err, after}
}

// RetryAfter returns the wait a Throttled error asked for.
func RetryAfter(err error) (time.Duration, bool) {
	var t *throttledError
	if errors.As(err, &t) {
		return t.after, true
	}
	return 0, false
}
