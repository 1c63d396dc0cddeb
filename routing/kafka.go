package routing

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/baton-relay/baton/envelope"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// Kafka record header names written on every record.
const (
	HeaderProjectID  = "project_id"
	HeaderPublicKey  = "public_key"
	HeaderClass      = "class"
	HeaderReceivedAt = "received_at"   // RFC 3339 with nanoseconds, UTC
	HeaderClientIP   = "client_ip"     // the original client: first address of the chain, when known
	HeaderForwarded  = "forwarded_for" // the whole X-Forwarded-For chain, when it has more than one address
	HeaderClient     = "client"        // only when known

	// Added to records written to the dead-letter topic.
	HeaderDeadLetterReason = "dead_letter_reason"
	HeaderDeadLetterTopic  = "dead_letter_topic" // the topic the record was meant for
)

// DeadLetterTooLarge is the dead_letter_reason of records larger than the
// topic accepts.
const DeadLetterTooLarge = "kafka_message_too_large"

// Defaults of KafkaOptions. Those Baton's config also has (its
// defaults.kafka_cluster) are equal there; relay's TestDefaultsAgree checks it.
const (
	DefaultKafkaClientID         = "baton"
	DefaultKafkaCompression      = "snappy"
	DefaultKafkaMaxMessageBytes  = 1 << 20
	DefaultKafkaProduceTimeout   = 30 * time.Second
	DefaultKafkaMaxBufferedBytes = 64 << 20
)

// kafkaMetadataMinAge is the least time between the metadata refreshes that
// errors trigger (franz-go's default is 5 s). It bounds how long a deleted,
// moved or recreated topic goes unnoticed: a recreated one stalls its route
// until the client sees the new topic id.
const kafkaMetadataMinAge = time.Second

var (
	// ErrNoBrokers is returned by NewKafka without seed brokers.
	ErrNoBrokers = errors.New("routing: kafka: no brokers")
	// ErrUnknownCompression is returned for a compression name we do not know.
	ErrUnknownCompression = errors.New("routing: unknown compression")
	// ErrMessageTooLarge is the cause of a Permanent error for a record
	// larger than MaxMessageBytes when no dead-letter topic is configured.
	ErrMessageTooLarge = errors.New("routing: kafka: message too large")
	// ErrMessageLimit is returned by NewKafka for a MaxMessageBytes under
	// MinKafkaMessageBytes.
	ErrMessageLimit = errors.New("routing: kafka: MaxMessageBytes too small")
)

// SASLOptions selects SASL authentication for Kafka.
type SASLOptions struct {
	// Mechanism is "plain", "scram-sha-256" or "scram-sha-512"; empty
	// disables SASL.
	Mechanism string
	User      string
	Password  string
}

// KafkaOptions configures NewKafka. The zero value of every field but Brokers
// selects the documented default.
type KafkaOptions struct {
	// Brokers are the seed brokers, host:port.
	Brokers []string
	// ClientID is sent to the brokers. Default "baton".
	ClientID string
	// Compression is the batch codec: "snappy" (default), "lz4", "zstd",
	// "gzip" or "none".
	Compression string
	// MaxMessageBytes is the largest record (key, value and headers)
	// produced to a topic, and the producer batch limit. Larger records
	// go to DeadLetterTopic or fail Permanent. Keep it at or below the
	// topics' max.message.bytes. Default 1 MiB.
	MaxMessageBytes int
	// DeadLetterTopic receives records that are too large for their topic,
	// unchanged, with dead_letter_* headers. Empty disables it.
	DeadLetterTopic string
	// DeadLetterMaxBytes is the largest record produced to DeadLetterTopic
	// (whose max.message.bytes must allow it). Default 4 × MaxMessageBytes.
	DeadLetterMaxBytes int
	// Linger is how long a partition waits for more records before
	// sending a batch: 0 keeps franz-go's default (10 ms), negative
	// disables lingering.
	Linger time.Duration
	// ProduceTimeout bounds one Send, including waiting for buffer space
	// while Kafka is unreachable. Default 30 s.
	ProduceTimeout time.Duration
	// MaxBufferedBytes bounds the bytes the client holds in memory; Send
	// blocks (up to ProduceTimeout) when it is full. Default 64 MiB.
	MaxBufferedBytes int
	// TLS enables TLS to the brokers when not nil.
	TLS *tls.Config
	// SASL enables SASL authentication.
	SASL SASLOptions
	// OnDeadLetter, if set, is called after a record reached the
	// dead-letter topic (for metrics and logs). It must not block.
	OnDeadLetter func(topic string, m *Message, reason string)
	// OnFault, if set, is called when the cluster starts refusing Baton
	// (SASL, TLS or ACLs; see KafkaFault) and, with nil, when it accepts
	// it again: once per change, not per record. It must not block.
	OnFault func(*KafkaFault)
	// OnDataLoss, if set, is called when the broker reports that records
	// of the idempotent producer may be lost (OutOfOrderSequenceNumber).
	// The client resets its producer id and carries on.
	OnDataLoss func(topic string, partition int32)
	// Cluster is the cluster's name in the config, for errors that name
	// its settings. Default: "".
	Cluster string
	// CreateTopics, when set, creates a topic the cluster does not have
	// on the first produce that finds it missing; nil fails those records
	// with a retryable *MissingTopicError.
	CreateTopics *TopicCreation
	// OnTopicCreated, if set, is called after CreateTopics created a
	// topic. It must not block.
	OnTopicCreated func(topic string)
	// Opts are appended to the client options (hooks, logger, dialer,
	// tests). They win over the fields above.
	Opts []kgo.Opt
}

// Kafka produces to one Kafka cluster. Several topics (routes) share its
// client through Topic.
//
// The producer is idempotent with acks=all (franz-go's defaults); records are
// never cancelled in flight, so a Send that times out may still be delivered
// later: that is a duplicate, never a loss.
type Kafka struct {
	opts KafkaOptions
	cl   *kgo.Client

	// isoOpts and iso implement isolation: franz-go fails every record
	// buffered on a partition when one batch gets a non-retriable error,
	// so a record that may be innocent is re-produced alone on a second
	// client whose batches hold one record at a time (isoMu).
	isoOpts []kgo.Opt
	isoMu   sync.Mutex
	iso     *kgo.Client

	health kafkaHealth

	// purgeMu guards purges: generation counts them per topic, so that
	// of the Sends that saw one recreation only the first purges.
	purgeMu    sync.Mutex
	generation map[string]uint64

	closed atomic.Bool
}

// NewKafka validates opts and creates the client. It does not connect:
// use Ping to check the cluster is reachable.
func NewKafka(opts KafkaOptions) (*Kafka, error) {
	if len(opts.Brokers) == 0 {
		return nil, ErrNoBrokers
	}
	if opts.ClientID == "" {
		opts.ClientID = DefaultKafkaClientID
	}
	if opts.MaxMessageBytes <= 0 {
		opts.MaxMessageBytes = DefaultKafkaMaxMessageBytes
	}
	if opts.MaxMessageBytes < MinKafkaMessageBytes {
		return nil, fmt.Errorf("%w: %d leaves no room for an envelope besides a record's key and headers (at least %d)",
			ErrMessageLimit, opts.MaxMessageBytes, MinKafkaMessageBytes)
	}
	if opts.DeadLetterMaxBytes <= 0 {
		opts.DeadLetterMaxBytes = 4 * opts.MaxMessageBytes
	}
	if opts.ProduceTimeout <= 0 {
		opts.ProduceTimeout = DefaultKafkaProduceTimeout
	}
	if opts.MaxBufferedBytes <= 0 {
		opts.MaxBufferedBytes = DefaultKafkaMaxBufferedBytes
	}
	if opts.MaxBufferedBytes < opts.DeadLetterMaxBytes {
		opts.MaxBufferedBytes = opts.DeadLetterMaxBytes
	}
	codec, err := kafkaCodec(opts.Compression)
	if err != nil {
		return nil, err
	}

	// The batch limit is per topic so the dead-letter topic can take the
	// records that are too large for the others.
	maxBatch := func(topic string) int32 {
		if opts.DeadLetterTopic != "" && topic == opts.DeadLetterTopic {
			return int32(min(opts.DeadLetterMaxBytes+kafkaBatchOverhead, 1<<30))
		}
		return int32(min(opts.MaxMessageBytes+kafkaBatchOverhead, 1<<30))
	}
	k := &Kafka{opts: opts, generation: map[string]uint64{}}
	k.health.sasl = opts.SASL.Mechanism != ""
	k.health.onChange = opts.OnFault
	base := []kgo.Opt{
		kgo.SeedBrokers(opts.Brokers...),
		kgo.ClientID(opts.ClientID),
		kgo.ProducerBatchCompression(codec),
		kgo.ProducerBatchMaxBytesFn(maxBatch),
		kgo.MaxBufferedBytes(opts.MaxBufferedBytes),
		kgo.MetadataMinAge(kafkaMetadataMinAge),
		kgo.WithHooks(&k.health),
	}
	if opts.TLS != nil {
		base = append(base, kgo.DialTLSConfig(opts.TLS))
	}
	if m, err := saslMechanism(opts.SASL); err != nil {
		return nil, err
	} else if m != nil {
		base = append(base, kgo.SASL(m))
	}
	if opts.OnDataLoss != nil {
		base = append(base, kgo.ProducerOnDataLossDetected(opts.OnDataLoss))
	}
	main := append([]kgo.Opt(nil), base...)
	switch {
	case opts.Linger > 0:
		main = append(main, kgo.ProducerLinger(opts.Linger))
	case opts.Linger < 0:
		main = append(main, kgo.ProducerLinger(0))
	}
	main = append(main, opts.Opts...)
	cl, err := kgo.NewClient(main...)
	if err != nil {
		return nil, fmt.Errorf("routing: kafka client: %w", err)
	}
	iso := append(base, kgo.ProducerLinger(0))
	iso = append(iso, opts.Opts...)
	k.cl, k.isoOpts = cl, iso
	return k, nil
}

// kafkaBatchOverhead is the record-batch header plus the per-record framing
// of a one-record batch; MaxMessageBytes counts only key, value and headers.
const kafkaBatchOverhead = 256

func kafkaCodec(name string) (kgo.CompressionCodec, error) {
	switch strings.ToLower(name) {
	case "", DefaultKafkaCompression:
		return kgo.SnappyCompression(), nil
	case "lz4":
		return kgo.Lz4Compression(), nil
	case "zstd":
		return kgo.ZstdCompression(), nil
	case "gzip":
		return kgo.GzipCompression(), nil
	case "none":
		return kgo.NoCompression(), nil
	}
	return kgo.CompressionCodec{}, fmt.Errorf("%w %q for kafka", ErrUnknownCompression, name)
}

func saslMechanism(o SASLOptions) (sasl.Mechanism, error) {
	switch strings.ToLower(o.Mechanism) {
	case "":
		return nil, nil
	case "plain":
		return plain.Auth{User: o.User, Pass: o.Password}.AsMechanism(), nil
	case "scram-sha-256":
		return scram.Auth{User: o.User, Pass: o.Password}.AsSha256Mechanism(), nil
	case "scram-sha-512":
		return scram.Auth{User: o.User, Pass: o.Password}.AsSha512Mechanism(), nil
	}
	return nil, fmt.Errorf("routing: kafka: unknown SASL mechanism %q", o.Mechanism)
}

// Topic returns a Sink producing to the named topic over k's client.
// Closing the returned Sink only detaches it; k.Close closes the client.
func (k *Kafka) Topic(name string) Sink {
	return &kafkaTopic{k: k, topic: name}
}

// Health reports whether the cluster refuses Baton and how many broker
// connections failed, by kind.
func (k *Kafka) Health() KafkaHealth { return k.health.snapshot() }

// Ping checks that a broker of the cluster answers.
func (k *Kafka) Ping(ctx context.Context) error {
	if k.closed.Load() {
		return ErrClosed
	}
	if err := k.cl.Ping(ctx); err != nil {
		return fmt.Errorf("routing: kafka ping: %w", err)
	}
	return nil
}

// Close flushes what is still buffered (records of Sends that returned
// early) until ctx is done, then closes the clients. Records not flushed
// by then are still in Baton's buffer and are produced again later.
func (k *Kafka) Close(ctx context.Context) error {
	if k.closed.Swap(true) {
		return nil
	}
	err := k.cl.Flush(ctx)
	k.cl.Close()
	k.isoMu.Lock()
	if k.iso != nil {
		k.iso.Close()
	}
	k.isoMu.Unlock()
	if err != nil {
		return fmt.Errorf("routing: kafka close: %w", err)
	}
	return nil
}

type kafkaTopic struct {
	k      *Kafka
	topic  string
	closed atomic.Bool
}

// maxRecordMeta bounds what a record carries besides its envelope: the key
// (a project id) and the headers (64 bytes of names; values: project id,
// public key, class, received_at, and client_ip, forwarded_for and client,
// which ingest truncates to 255 bytes each): about 1,130 bytes at most.
const maxRecordMeta = 1280

// MinKafkaMessageBytes is the least MaxMessageBytes: room for a record's
// key and headers and an envelope (config checks the same bound).
const MinKafkaMessageBytes = 4 << 10

// MaxEnvelope is the largest envelope a record of this topic can carry:
// MaxMessageBytes less the key and headers, or, with a dead-letter topic,
// what that topic takes (oversized records go there, not away).
func (t *kafkaTopic) MaxEnvelope() int {
	limit := t.k.opts.MaxMessageBytes
	if t.k.opts.DeadLetterTopic != "" {
		limit = max(limit, t.k.opts.DeadLetterMaxBytes)
	}
	return max(limit-maxRecordMeta, 1)
}

func (t *kafkaTopic) Close(context.Context) error {
	t.closed.Store(true)
	return nil
}

// Send produces msgs to the topic and waits for Kafka's acks.
//
// Records larger than MaxMessageBytes are not produced to the topic: they
// go to the dead-letter topic (their slot is then nil) or fail Permanent.
// Errors are classified per record: invalid topics are Permanent;
// record-level rejections are Permanent only for the record that still
// fails when produced alone (franz-go fails every record buffered on the
// partition, so the others are re-produced and succeed); everything else,
// SASL, TLS and authorization failures included, is retryable (Health
// reports those).
func (t *kafkaTopic) Send(ctx context.Context, msgs []Message, errs []error) {
	k := t.k
	if t.closed.Load() || k.closed.Load() {
		for i := range errs {
			errs[i] = ErrClosed
		}
		return
	}
	pctx, cancel := context.WithTimeout(ctx, k.opts.ProduceTimeout)
	defer cancel()

	if f := k.health.connFault(); f != nil {
		// The cluster refused the last connection. Records handed to
		// the client would wait there until ProduceTimeout; a probe
		// tells at once whether it still refuses.
		if err := k.cl.Ping(pctx); err != nil {
			if f = k.health.connFault(); f != nil {
				err = f
			}
			for i := range errs {
				errs[i] = t.wrap(ctx, err)
			}
			return
		}
	}

	gen := k.topicGeneration(t.topic)
	kb := getKafkaBatch()
	recs := kb.build(t.topic, msgs)
	outcome, finished := k.produce(pctx, recs, nil)
	if again := recreated(outcome, k.topicGeneration(t.topic) != gen); len(again) > 0 && pctx.Err() == nil {
		// The topic was deleted and created again: franz-go fails it
		// with UNKNOWN_TOPIC_ID until it is purged from the client,
		// and then produces to the new topic. Purge once and produce
		// the failed records again.
		k.purge(t.topic, gen)
		retried, fin := k.produce(pctx, recs, again)
		for _, i := range again {
			outcome[i] = retried[i]
		}
		finished = finished && fin
	}

	if missing := missingTopic(outcome); len(missing) > 0 && pctx.Err() == nil {
		if err := k.createTopic(pctx, t.topic, outcome[missing[0]]); err != nil {
			for _, i := range missing {
				outcome[i] = err
			}
		} else {
			retried, fin := k.produce(pctx, recs, missing)
			for _, i := range missing {
				outcome[i] = retried[i]
			}
			finished = finished && fin
		}
	}

	// Second pass, sequential: isolate record-level rejections and route
	// oversized records to the dead-letter topic.
	for i, err := range outcome {
		switch {
		case err == nil:
		case err == errOversize:
			outcome[i] = k.deadLetter(pctx, &recs[i], &msgs[i], DeadLetterTooLarge)
		case kafkaErrClass(err) == kafkaRecordFault, kafkaErrClass(err) == kafkaTooLarge:
			if pctx.Err() != nil {
				outcome[i] = fmt.Errorf("%w: %w", errNotIsolated, err)
				break
			}
			err = k.produceAlone(pctx, &recs[i])
			if kafkaErrClass(err) == kafkaTooLarge {
				err = k.deadLetter(pctx, &recs[i], &msgs[i], DeadLetterTooLarge)
			}
			outcome[i] = err
		}
	}

	delivered := false
	for i, err := range outcome {
		switch {
		case err == nil:
			delivered = true
		case isAuthorization(err):
			k.health.unauthorized(t.topic, err)
		case errors.Is(err, errNotFinished):
			if f := k.health.connFault(); f != nil {
				// Why the client could not deliver it (it keeps the
				// record: a retry may duplicate it, never lose it).
				err = f
			}
		}
		errs[i] = t.wrap(ctx, err)
	}
	if delivered {
		k.health.delivered(t.topic)
	}
	if finished {
		// Every promise fired and the retries above are synchronous: the
		// client holds none of these records any more.
		putKafkaBatch(kb)
		return
	}
	// Records in flight keep kb (the garbage collector has it later) and
	// the lent envelopes they reference.
	for i := range msgs {
		if l := msgs[i].Loan; l != nil {
			l.Keep()
		}
	}
}

// produce hands recs to the client (only those at the indexes in only,
// when given) and waits for their promises until ctx is done or the
// cluster starts refusing Baton. Records over MaxMessageBytes are not
// produced: their slot is errOversize. Slots not in only are nil.
func (k *Kafka) produce(ctx context.Context, recs []kgo.Record, only []int) ([]error, bool) {
	refused := k.health.refusal()
	c := newProduceCall(len(recs))
	one := func(i int) {
		r := &recs[i]
		if recordSize(r) > k.opts.MaxMessageBytes {
			c.results[i] = errOversize // only Send writes this slot
			return
		}
		c.produce()
		k.cl.Produce(ctx, r, c.promise(i))
	}
	if only == nil {
		for i := range recs {
			one(i)
		}
	} else {
		clear(c.results)
		for _, i := range only {
			c.results[i] = errNotFinished
			one(i)
		}
	}
	c.handed()
	return c.wait(ctx, refused)
}

// recreated returns the indexes of the records to produce again because
// their topic was recreated: when one failed with UNKNOWN_TOPIC_ID, or the
// topic was purged while they were buffered (purged: a concurrent Send
// purged it), every record that failed retryably. Otherwise nil.
func recreated(outcome []error, purged bool) []int {
	var again []int
	found := purged
	for i, err := range outcome {
		if errors.Is(err, kerr.UnknownTopicID) {
			found = true
		}
		if err != nil && err != errOversize && !errors.Is(err, errNotFinished) && kafkaErrClass(err) == kafkaRetry {
			again = append(again, i)
		}
	}
	if !found {
		return nil
	}
	return again
}

// topicGeneration is the number of purges of topic so far.
func (k *Kafka) topicGeneration(topic string) uint64 {
	k.purgeMu.Lock()
	defer k.purgeMu.Unlock()
	return k.generation[topic]
}

// purge removes what the clients know of topic, unless another Send purged
// it since generation gen: one recreation, one purge. Purging fails the
// records of the topic still buffered; their Sends produce them again.
func (k *Kafka) purge(topic string, gen uint64) {
	k.purgeMu.Lock()
	defer k.purgeMu.Unlock()
	if k.generation[topic] != gen || k.closed.Load() {
		return
	}
	k.generation[topic]++
	k.cl.PurgeTopicsFromProducing(topic)
	k.isoMu.Lock()
	if k.iso != nil {
		k.iso.PurgeTopicsFromProducing(topic)
	}
	k.isoMu.Unlock()
}

func (t *kafkaTopic) wrap(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if ctx.Err() != nil && !IsPermanent(err) {
		// The caller gave up: its error, as the Sink contract says.
		return ctx.Err()
	}
	if IsPermanent(err) || errors.Is(err, errNotIsolated) {
		return fmt.Errorf("routing: kafka produce to %q: %w", t.topic, err)
	}
	err = fmt.Errorf("routing: kafka produce to %q: %w", t.topic, err)
	if kafkaErrClass(err) != kafkaRetry {
		return Permanent(err)
	}
	return err
}

// produceAlone produces r on the isolation client, one record at a time,
// so a rejection can only be r's own.
func (k *Kafka) produceAlone(ctx context.Context, r *kgo.Record) error {
	k.isoMu.Lock()
	defer k.isoMu.Unlock()
	if k.closed.Load() {
		return ErrClosed
	}
	if k.iso == nil {
		iso, err := kgo.NewClient(k.isoOpts...)
		if err != nil {
			return fmt.Errorf("isolation client: %w", err)
		}
		k.iso = iso
	}
	rec := *r
	return k.iso.ProduceSync(ctx, &rec).FirstErr()
}

// deadLetter produces r to the dead-letter topic, or returns a Permanent
// error when there is none or the record is too large for it too.
func (k *Kafka) deadLetter(ctx context.Context, r *kgo.Record, m *Message, reason string) error {
	dlt := k.opts.DeadLetterTopic
	size := recordSize(r)
	if dlt == "" {
		return Permanent(fmt.Errorf("%w: %d bytes, limit %d", ErrMessageTooLarge, size, k.opts.MaxMessageBytes))
	}
	if size > k.opts.DeadLetterMaxBytes {
		return Permanent(fmt.Errorf("%w: %d bytes, dead-letter limit %d", ErrMessageTooLarge, size, k.opts.DeadLetterMaxBytes))
	}
	rec := kgo.Record{
		Topic: dlt,
		Key:   r.Key,
		Value: r.Value,
		Headers: append(r.Headers[:len(r.Headers):len(r.Headers)],
			kgo.RecordHeader{Key: HeaderDeadLetterReason, Value: []byte(reason)},
			kgo.RecordHeader{Key: HeaderDeadLetterTopic, Value: []byte(r.Topic)},
		),
	}
	gen := k.topicGeneration(dlt)
	if err := k.cl.ProduceSync(ctx, &rec).FirstErr(); err != nil {
		if errors.Is(err, kerr.UnknownTopicID) {
			k.purge(dlt, gen) // recreated: the next attempt produces to the new topic
		}
		if kafkaErrClass(err) == kafkaTooLarge {
			return Permanent(fmt.Errorf("dead-letter topic %q: %w", dlt, err))
		}
		return fmt.Errorf("dead-letter topic %q: %w", dlt, err)
	}
	if k.opts.OnDeadLetter != nil {
		k.opts.OnDeadLetter(r.Topic, m, reason)
	}
	return nil
}

// kafkaClass is how Send treats a produce error.
type kafkaClass uint8

const (
	kafkaRetry       kafkaClass = iota // transient; keep the record buffered
	kafkaTopicFault                    // every record of the topic fails alike
	kafkaRecordFault                   // maybe this record's fault, maybe a batch neighbour's
	kafkaTooLarge                      // too large for the topic
)

// kafkaErrClass returns how to treat err. Unknown errors are retryable: a
// stuck route is visible and recoverable, lost data is neither. So are
// SASL, TLS and ACL refusals: they are the cluster's or Baton's settings,
// not the record's fault, and Health reports them.
func kafkaErrClass(err error) kafkaClass {
	switch {
	case err == nil:
		return kafkaRetry
	case errors.Is(err, kerr.MessageTooLarge), errors.Is(err, kerr.RecordListTooLarge):
		return kafkaTooLarge
	case errors.Is(err, kerr.InvalidTopicException):
		return kafkaTopicFault
	case errors.Is(err, kerr.InvalidRecord),
		errors.Is(err, kerr.CorruptMessage),
		errors.Is(err, kerr.InvalidTimestamp):
		return kafkaRecordFault
	}
	return kafkaRetry
}

// errNotFinished fills the slots of records whose promise had not fired
// when Send stopped waiting. The client still owns those records (it never
// cancels them in flight), so they may yet be delivered: a duplicate when
// the forwarder retries, never a loss.
var errNotFinished = errors.New("not acknowledged before the produce timeout")

// errOversize marks records larger than MaxMessageBytes, not produced.
var errOversize = errors.New("larger than MaxMessageBytes")

// errNotIsolated marks a possibly innocent record that Send had no time
// left to re-produce alone.
var errNotIsolated = errors.New("rejected with its batch, not retried alone before the produce timeout")

// produceCall collects the promises of one Send. Promises may fire after
// Send returned, so they write into results under mu and are ignored once
// Send took them.
type produceCall struct {
	mu      sync.Mutex
	results []error
	pending int
	taken   bool
	done    chan struct{}
}

func newProduceCall(n int) *produceCall {
	// pending starts at one so the promises cannot close done before
	// Send handed every record to the client (see handed).
	c := &produceCall{results: make([]error, n), pending: 1, done: make(chan struct{})}
	for i := range c.results {
		c.results[i] = errNotFinished
	}
	return c
}

// produce counts one more record before it goes to the client.
func (c *produceCall) produce() {
	c.mu.Lock()
	c.pending++
	c.mu.Unlock()
}

func (c *produceCall) promise(i int) func(*kgo.Record, error) {
	return func(_ *kgo.Record, err error) { c.finish(i, err) }
}

func (c *produceCall) finish(i int, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if i >= 0 && !c.taken {
		c.results[i] = err
	}
	c.pending--
	if c.pending == 0 {
		close(c.done)
	}
}

// handed is called once every record was given to the client.
func (c *produceCall) handed() { c.finish(-1, nil) }

// wait returns the results once every promise fired, ctx is done or
// refused is closed (the cluster refuses Baton: the client would keep the
// records until ctx is done), and whether every promise fired (the client
// keeps no record of the call).
func (c *produceCall) wait(ctx context.Context, refused <-chan struct{}) ([]error, bool) {
	select {
	case <-c.done:
	case <-ctx.Done():
	case <-refused:
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.taken = true
	return c.results, c.pending == 0
}

// kafkaBatch is the memory of one Send's records. It is reused only when
// the client finished with every record of the Send; records in flight at a
// deadline keep theirs, and the garbage collector has it later.
type kafkaBatch struct {
	slab []byte
	recs []kgo.Record
	hdrs []kgo.RecordHeader
}

var kafkaBatches = sync.Pool{New: func() any { return new(kafkaBatch) }}

// maxPooledSlab keeps one batch of huge attachments from pinning its memory.
const maxPooledSlab = 16 << 20

func getKafkaBatch() *kafkaBatch { return kafkaBatches.Get().(*kafkaBatch) }

func putKafkaBatch(kb *kafkaBatch) {
	if cap(kb.slab) > maxPooledSlab {
		return
	}
	clear(kb.recs) // drop the client's references (contexts, promises)
	kafkaBatches.Put(kb)
}

// maxHeaders is the most headers build gives a record: project, key,
// class, received-at, client IP, forwarded chain, client, and an error
// event's grouping hash and finality.
const maxHeaders = 9

// build fills kb with the records of msgs. A record may outlive Send (the
// client keeps records that were in flight at the deadline), so keys and
// header values are copied into one slab, and so are values, except lent
// envelopes (Message.Loan): a record references those, and Send keeps the
// loan when it returns with records in flight. The copy was the largest
// memmove of the forwarding path (issue 21).
func (kb *kafkaBatch) build(topic string, msgs []Message) []kgo.Record {
	n := 0
	for i := range msgs {
		m := &msgs[i]
		n += max(len(m.Key), 20) + 20 + len(m.PublicKey) +
			len(time.RFC3339Nano) + len(m.ClientIP) + len(m.Client)
		if m.Loan == nil {
			n += len(m.Envelope)
		}
	}
	// The slab is sized for every append below: take's sub-slices must
	// never move.
	slab := kb.slab[:0]
	if cap(slab) < n {
		slab = make([]byte, 0, n)
	}
	recs := slices.Grow(kb.recs[:0], len(msgs))[:len(msgs)]
	clear(recs)
	hdrs := slices.Grow(kb.hdrs[:0], maxHeaders*len(msgs))
	// take returns the bytes appended since start, capped so a later
	// append cannot write into them.
	take := func(start int) []byte { return slab[start:len(slab):len(slab)] }
	for i := range msgs {
		m := &msgs[i]
		r := &recs[i]
		r.Topic = topic

		if m.Loan != nil {
			r.Value = m.Envelope
		} else {
			start := len(slab)
			slab = append(slab, m.Envelope...)
			r.Value = take(start)
		}

		start := len(slab)
		slab = strconv.AppendUint(slab, m.ProjectID, 10)
		pid := take(start)
		if len(m.Key) > 0 {
			start = len(slab)
			slab = append(slab, m.Key...)
			r.Key = take(start)
		} else {
			r.Key = pid
		}

		h0 := len(hdrs)
		hdrs = append(hdrs, kgo.RecordHeader{Key: HeaderProjectID, Value: pid})
		start = len(slab)
		slab = append(slab, m.PublicKey...)
		hdrs = append(hdrs, kgo.RecordHeader{Key: HeaderPublicKey, Value: take(start)})
		hdrs = append(hdrs, kgo.RecordHeader{Key: HeaderClass, Value: classBytes(m)})
		start = len(slab)
		slab = m.ReceivedAt.UTC().AppendFormat(slab, time.RFC3339Nano)
		hdrs = append(hdrs, kgo.RecordHeader{Key: HeaderReceivedAt, Value: take(start)})
		if m.ClientIP != "" {
			client, _, chained := strings.Cut(m.ClientIP, ",")
			start = len(slab)
			slab = append(slab, strings.TrimSpace(client)...)
			hdrs = append(hdrs, kgo.RecordHeader{Key: HeaderClientIP, Value: take(start)})
			if chained {
				start = len(slab)
				slab = append(slab, m.ClientIP...)
				hdrs = append(hdrs, kgo.RecordHeader{Key: HeaderForwarded, Value: take(start)})
			}
		}
		if m.Client != "" {
			start = len(slab)
			slab = append(slab, m.Client...)
			hdrs = append(hdrs, kgo.RecordHeader{Key: HeaderClient, Value: take(start)})
		}
		if m.Class == envelope.ClassError || m.Class == envelope.ClassSecurity {
			// Sub-slices of r.Value, which lives as long as the record.
			if hash, final := eventGrouping(r.Value); hash != nil {
				hdrs = append(hdrs, kgo.RecordHeader{Key: HeaderGroupingHash, Value: hash},
					kgo.RecordHeader{Key: HeaderGroupingFinal, Value: final})
			}
		}
		r.Headers = hdrs[h0:len(hdrs):len(hdrs)]
	}
	kb.slab, kb.recs, kb.hdrs = slab, recs, hdrs
	return recs
}

// classHeaderValues holds the class header values so records share them.
var classHeaderValues = func() [envelope.NumClasses + 1][]byte {
	var v [envelope.NumClasses + 1][]byte
	for c := range v {
		v[c] = []byte(envelope.Class(c).String())
	}
	return v
}()

func classBytes(m *Message) []byte {
	return classHeaderValues[min(int(m.Class), int(envelope.NumClasses))]
}

// recordSize is what franz-go and the broker count for a record's payload:
// key, value and headers (framing is in kafkaBatchOverhead).
func recordSize(r *kgo.Record) int {
	n := len(r.Key) + len(r.Value)
	for _, h := range r.Headers {
		n += len(h.Key) + len(h.Value)
	}
	return n
}
