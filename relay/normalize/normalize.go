package normalize

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/baton-relay/baton/relay/event"
)

// ErrInvalid is wrapped by every error for a payload that cannot be
// normalized; the caller drops the item with outcome `invalid` and the
// error's text as reason.
var ErrInvalid = errors.New("invalid")

// Options configure a Normalizer. Zero values take the defaults below.
type Options struct {
	// Now is the clock used when Input.Received is zero. Default time.Now.
	Now func() time.Time
	// MaxPast is how far before the receive time an event timestamp may be
	// before it is clamped (Relay's max_secs_in_past). Default 30 days.
	MaxPast time.Duration
	// MaxFuture is how far after the receive time an event timestamp may be
	// before it is clamped (Relay's max_secs_in_future). Default 60 s.
	MaxFuture time.Duration
	// MaxCustomMeasurements is how many measurements other than the
	// built-in ones a transaction keeps (Relay's maxCustomMeasurements of
	// the global config). Default DefaultMaxCustomMeasurements.
	MaxCustomMeasurements int
	// AndroidModels maps Android device models to their marketing names
	// (ParseAndroidModels, android.go): a device context of a model it
	// holds gets that name. Default nil: device names stay as sent.
	AndroidModels map[string]string
}

// Defaults (one source of truth).
const (
	DefaultMaxPast   = 30 * 24 * time.Hour
	DefaultMaxFuture = 60 * time.Second
	// MinClockDrift is Relay's lower bound for correcting clock drift from
	// sent_at: smaller differences are latency, not a wrong clock.
	MinClockDrift = 55 * time.Minute
	// DefaultMaxCustomMeasurements is Sentry's global config value.
	DefaultMaxCustomMeasurements = 10
)

// Input is what the request around a payload tells about it.
type Input struct {
	// ClientAddr is the client's IP address: it replaces "{{auto}}" and is
	// the user's address for security reports.
	ClientAddr string
	// UserAgent is the User-Agent header of the request (security reports
	// and NEL; events carry their own in request.headers).
	UserAgent string
	// Origin and Referer are headers of the request (security reports).
	Origin, Referer string
	// SentAt is the envelope header's sent_at; zero when absent.
	SentAt time.Time
	// Received is when the relay received the payload; zero means Options.Now().
	Received time.Time
	// EventID is the envelope header's event_id (32 hex digits), used when
	// the event has none; "" means a random one.
	EventID string
	// Release and Environment come from the security endpoint's
	// sentry_release / sentry_environment query parameters.
	Release, Environment string
	// Breakdowns is the project's breakdownsV2 in name order
	// (breakdowns.go); nil when it has none: the event's own breakdowns
	// then stay. Non-nil and empty removes them, as Relay does.
	Breakdowns []Breakdown
}

// Normalizer applies its Options; it is safe for concurrent use. The
// User-Agent rules are the process's one parser (relay/useragent).
type Normalizer struct {
	opts Options
}

// New applies the defaults; the error is for options that cannot be met
// (none yet).
func New(opts Options) (*Normalizer, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MaxPast <= 0 {
		opts.MaxPast = DefaultMaxPast
	}
	if opts.MaxFuture <= 0 {
		opts.MaxFuture = DefaultMaxFuture
	}
	if opts.MaxCustomMeasurements <= 0 {
		opts.MaxCustomMeasurements = DefaultMaxCustomMeasurements
	}
	return &Normalizer{opts: opts}, nil
}

func (n *Normalizer) received(in *Input) time.Time {
	if !in.Received.IsZero() {
		return in.Received.UTC()
	}
	return n.opts.Now().UTC()
}

// Event appends the normalized form of the event payload src to dst; dst
// must not overlap src. Members keep their order; new ones are appended.
func (n *Normalizer) Event(dst, src []byte, in *Input) ([]byte, error) {
	t, err := event.Parse(src)
	if err != nil {
		return dst, fmt.Errorf("%w: event is not valid JSON: %v", ErrInvalid, err)
	}
	defer t.Release()
	if err := n.Tree(t, in); err != nil {
		return dst, err
	}
	return t.AppendJSON(dst), nil
}

// Tree normalizes a parsed event in place, for a caller that parses once,
// normalizes, scrubs (pii.Config.ScrubTree) and writes once; what Event
// does between its parse and its write. Removed values are recorded in the
// tree's Meta, written by t.AppendJSON.
func (n *Normalizer) Tree(t *event.Tree, in *Input) error {
	if in == nil {
		in = &Input{}
	}
	if t.Root().Kind() != event.Object {
		return fmt.Errorf("%w: event is not a JSON object", ErrInvalid)
	}
	return n.event(t, in)
}

// decodeObject parses src as one JSON object, numbers kept as written (NEL
// and security reports, which are rebuilt rather than edited).
func decodeObject(src []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(src))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("%w: event is not valid JSON: %v", ErrInvalid, err)
	}
	if _, err := dec.Token(); err == nil {
		return nil, fmt.Errorf("%w: data after the event's JSON", ErrInvalid)
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%w: event is not a JSON object", ErrInvalid)
	}
	return obj, nil
}

func appendJSON(dst []byte, v any) ([]byte, error) {
	buf := bytes.NewBuffer(dst)
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return dst, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	out := buf.Bytes()
	return out[:len(out)-1], nil // Encode's newline
}
