package routing

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Kinds of Kafka connection failures (KafkaHealth.ConnectErrors, KafkaFault).
const (
	// FaultAuth: SASL refused (wrong credentials or mechanism). Retrying
	// does not help; fixing kafka.clusters.*.sasl does.
	FaultAuth = "auth"
	// FaultTLS: the TLS handshake failed (untrusted or mismatched broker
	// certificate, client certificate refused, broker not speaking TLS).
	FaultTLS = "tls"
	// FaultAuthorization: the broker's ACLs refuse Baton's principal
	// (topic or cluster authorization failed).
	FaultAuthorization = "authorization"
	// FaultNetwork: dialing or talking to a broker failed. Not a fault of
	// the cluster's state: a broker that is down or restarting heals.
	FaultNetwork = "network"
)

// connectKinds are the kinds counted in KafkaHealth.ConnectErrors.
var connectKinds = [...]string{FaultAuth, FaultTLS, FaultNetwork}

// KafkaFault is why a cluster refuses Baton: a state that retrying does not
// heal, only a change of Baton's settings or of the cluster. Records stay
// buffered (the errors are retryable) until it clears.
type KafkaFault struct {
	Kind  string // FaultAuth, FaultTLS or FaultAuthorization
	Topic string // for FaultAuthorization of one topic
	Err   error
}

func (f *KafkaFault) Error() string {
	what := map[string]string{
		FaultAuth:          "SASL authentication failed",
		FaultTLS:           "TLS handshake failed",
		FaultAuthorization: "not authorized",
	}[f.Kind]
	if f.Topic != "" {
		what += " for topic " + f.Topic
	}
	return fmt.Sprintf("%s: %v", what, f.Err)
}

func (f *KafkaFault) Unwrap() error { return f.Err }

// KafkaHealth is a snapshot of a cluster's state.
type KafkaHealth struct {
	// Fault is non-nil while the cluster refuses Baton.
	Fault *KafkaFault
	// ConnectErrors counts failed broker connections by kind (FaultAuth,
	// FaultTLS, FaultNetwork), every kind present.
	ConnectErrors map[string]int64
	// LastConnectError is the last failed connection's error ("" if
	// none), at LastConnectErrorAt; Connected whether a connection
	// succeeded after it.
	LastConnectError   string
	LastConnectErrorAt time.Time
	Connected          bool
}

// connectError is a cluster's last failed connection.
type connectError struct {
	at  time.Time
	msg string
}

// kafkaHealth tracks the faults of one cluster. Connection faults (auth,
// tls) come from franz-go's connect hook and clear on the next successful
// connection or delivery; authorization faults are per topic and clear on
// a delivery to that topic, so a topic Baton may write does not hide one
// it may not.
type kafkaHealth struct {
	sasl     bool // SASL is configured: an early close is a refusal
	onChange func(*KafkaFault)

	mu     sync.Mutex
	conn   *KafkaFault
	topics map[string]*KafkaFault
	last   *KafkaFault // what onChange was last told
	// refused is closed when a connection fault is set (Sends waiting
	// for the client stop waiting); refusal makes a new one after.
	refused chan struct{}
	errs    [len(connectKinds)]atomic.Int64
	// any and connSet mirror current() != nil and conn != nil, for the
	// per-request and per-Send checks.
	any, connSet atomic.Bool

	// A broker that requires SASL from a client without it accepts the
	// connection and ApiVersions, then hangs up at the first request.
	// hangups counts connections that ended so, in a row; sticky marks
	// the fault it raises, which only a successful request clears.
	justConnected atomic.Bool
	hangups       atomic.Int32
	sticky        bool

	// lastErr is the last failed connection; connected whether one
	// succeeded since (for the status page).
	lastErr   atomic.Pointer[connectError]
	connected atomic.Bool
}

// saslHangups is how many connections in a row must end at their first
// request before a client without SASL reports FaultAuth.
const saslHangups = 3

// current is the fault to report: the connection's first, then the
// authorization fault of the first topic by name. Called with mu held.
func (h *kafkaHealth) current() *KafkaFault {
	if h.conn != nil {
		return h.conn
	}
	if len(h.topics) == 0 {
		return nil
	}
	names := make([]string, 0, len(h.topics))
	for t := range h.topics {
		names = append(names, t)
	}
	sort.Strings(names)
	return h.topics[names[0]]
}

// update runs fn under mu and tells onChange when the reported fault
// changed kind or topic (not when only its error text did: one log line per
// state change).
func (h *kafkaHealth) update(fn func()) {
	h.mu.Lock()
	had := h.conn != nil
	fn()
	cur := h.current()
	// Before waking the waiters: they read connSet without mu.
	h.any.Store(cur != nil)
	h.connSet.Store(h.conn != nil)
	var wake chan struct{}
	if !had && h.conn != nil {
		wake, h.refused = h.refused, nil // refusal makes a new one once it clears
	}
	changed := (cur == nil) != (h.last == nil) ||
		cur != nil && (cur.Kind != h.last.Kind || cur.Topic != h.last.Topic)
	h.last = cur
	h.mu.Unlock()
	if changed && h.onChange != nil {
		h.onChange(cur)
	}
	if wake != nil {
		close(wake) // after onChange: a woken Send finds the fault reported
	}
}

func (h *kafkaHealth) snapshot() KafkaHealth {
	h.mu.Lock()
	f := h.current()
	h.mu.Unlock()
	hs := KafkaHealth{Fault: f, ConnectErrors: make(map[string]int64, len(connectKinds))}
	for i, k := range connectKinds {
		hs.ConnectErrors[k] = h.errs[i].Load()
	}
	if e := h.lastErr.Load(); e != nil {
		hs.LastConnectError, hs.LastConnectErrorAt = e.msg, e.at
	}
	hs.Connected = h.connected.Load()
	return hs
}

var _ interface {
	kgo.HookBrokerConnect
	kgo.HookBrokerE2E
} = (*kafkaHealth)(nil)

// OnBrokerConnect implements kgo.HookBrokerConnect. franz-go calls it after
// every connection attempt, with the error of the dial (TLS included) or of
// the connection's initialisation (ApiVersions, SASL); conn is set when
// the dial succeeded.
func (h *kafkaHealth) OnBrokerConnect(_ kgo.BrokerMetadata, _ time.Duration, conn net.Conn, err error) {
	if err == nil {
		h.connected.Store(true)
		h.justConnected.Store(true)
		if h.connSet.Load() {
			h.update(func() {
				if !h.sticky {
					h.conn = nil
				}
			})
		}
		return
	}
	kind := h.connectKind(err, conn != nil)
	h.count(kind)
	h.connected.Store(false)
	h.lastErr.Store(&connectError{at: time.Now(), msg: err.Error()})
	if kind == FaultNetwork {
		return
	}
	if kind == FaultAuth && errors.Is(err, io.EOF) {
		err = fmt.Errorf("the broker closed the connection during authentication (wrong username, password or mechanism?): %w", err)
	}
	h.update(func() { h.conn, h.sticky = &KafkaFault{Kind: kind, Err: err}, false })
}

// OnBrokerE2E implements kgo.HookBrokerE2E, called after every request, to
// notice brokers that hang up on a client without SASL (see hangups).
func (h *kafkaHealth) OnBrokerE2E(_ kgo.BrokerMetadata, key int16, e kgo.BrokerE2E) {
	if key == apiVersionsKey || key == saslHandshakeKey || key == saslAuthenticateKey {
		return // part of opening the connection
	}
	fresh := h.justConnected.Swap(false)
	switch err := e.Err(); {
	case err == nil:
		h.hangups.Store(0)
		if h.connSet.Load() {
			h.update(func() { h.conn, h.sticky = nil, false })
		}
	case !h.sasl && fresh && errors.Is(err, io.EOF):
		if h.hangups.Add(1) == saslHangups {
			h.count(FaultAuth)
			h.update(func() {
				h.conn = &KafkaFault{Kind: FaultAuth, Err: errSASLRequired}
				h.sticky = true
			})
		}
	}
}

// Kafka API keys of the requests that open a connection.
const (
	saslHandshakeKey    = 17
	apiVersionsKey      = 18
	saslAuthenticateKey = 36
)

var errSASLRequired = errors.New("the broker hangs up at the first request after connecting: it probably requires SASL, and none is configured")

// count counts a failed connection of kind.
func (h *kafkaHealth) count(kind string) {
	for i, k := range connectKinds {
		if k == kind {
			h.errs[i].Add(1)
		}
	}
}

// refusal returns a channel closed once a connection fault is set, or nil
// (never ready) when one is already set: a Send that got past the probe
// waits for its records as usual.
func (h *kafkaHealth) refusal() <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.conn != nil {
		return nil
	}
	if h.refused == nil {
		h.refused = make(chan struct{})
	}
	return h.refused
}

// connFault is the connection fault (auth, tls), if any.
func (h *kafkaHealth) connFault() *KafkaFault {
	if !h.connSet.Load() {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.conn
}

// delivered clears what a delivery to topic disproves.
func (h *kafkaHealth) delivered(topic string) {
	if !h.any.Load() {
		return
	}
	h.mu.Lock()
	stale := h.conn != nil || h.topics[topic] != nil
	h.mu.Unlock()
	if stale {
		h.update(func() {
			h.conn = nil
			delete(h.topics, topic)
		})
	}
}

// unauthorized records that the cluster's ACLs refused a produce to topic.
func (h *kafkaHealth) unauthorized(topic string, err error) {
	h.update(func() {
		if h.topics == nil {
			h.topics = map[string]*KafkaFault{}
		}
		f := &KafkaFault{Kind: FaultAuthorization, Err: err}
		if errors.Is(err, kerr.TopicAuthorizationFailed) {
			f.Topic = topic
		}
		h.topics[topic] = f
	})
}

// connectKind classifies a failed connection. dialed is whether the TCP
// (and TLS) connection was established before the failure.
func (h *kafkaHealth) connectKind(err error, dialed bool) string {
	var (
		verify  *tls.CertificateVerificationError
		alert   tls.AlertError
		header  tls.RecordHeaderError
		unknown x509.UnknownAuthorityError
		host    x509.HostnameError
		invalid x509.CertificateInvalidError
		early   *kgo.ErrFirstReadEOF
		op      *net.OpError
	)
	switch {
	case errors.Is(err, kerr.SaslAuthenticationFailed), errors.Is(err, kerr.UnsupportedSaslMechanism),
		errors.Is(err, kerr.IllegalSaslState):
		return FaultAuth
	case errors.As(err, &verify), errors.As(err, &alert), errors.As(err, &header),
		errors.As(err, &unknown), errors.As(err, &host), errors.As(err, &invalid),
		errors.As(err, &op) && op.Op == "remote error": // crypto/tls: the broker's alert, e.g. certificate required
		return FaultTLS
	case errors.As(err, &early):
		// franz-go's guess from when the broker hung up: TLS on one
		// side only, or SASL required but not configured.
		if strings.Contains(early.Error(), "SASL") {
			return FaultAuth
		}
		return FaultTLS
	case h.sasl && dialed && errors.Is(err, io.EOF):
		// kfake, and brokers with an old SASL handshake, close the
		// connection instead of answering with an error.
		return FaultAuth
	}
	return FaultNetwork
}

// isAuthorization reports whether err is an ACL refusal.
func isAuthorization(err error) bool {
	return errors.Is(err, kerr.TopicAuthorizationFailed) ||
		errors.Is(err, kerr.ClusterAuthorizationFailed) ||
		errors.Is(err, kerr.TransactionalIDAuthorizationFailed)
}
