package routing

import (
	"bytes"
	"context"
	"errors"
	"net"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/baton-relay/baton/envelope"
)

func newCluster(t testing.TB, opts ...kfake.Opt) *kfake.Cluster {
	t.Helper()
	opts = append([]kfake.Opt{kfake.NumBrokers(1)}, opts...)
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func newTestKafka(t testing.TB, c *kfake.Cluster, opts KafkaOptions) *Kafka {
	t.Helper()
	opts.Brokers = c.ListenAddrs()
	if opts.Compression == "" {
		opts.Compression = "none" // so produce controls can see payload bytes
	}
	if opts.ProduceTimeout == 0 {
		opts.ProduceTimeout = 10 * time.Second
	}
	k, err := NewKafka(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := k.Close(ctx); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return k
}

var testReceived = time.Date(2025, 3, 1, 12, 30, 45, 123456789, time.UTC)

func testMsg(pid uint64, body string) Message {
	return Message{
		Class:      envelope.ClassError,
		ProjectID:  pid,
		PublicKey:  "abc123",
		Client:     "sentry.go/0.30",
		ClientIP:   "203.0.113.7",
		ReceivedAt: testReceived,
		Envelope:   []byte(body),
	}
}

// consumeAll reads every record of topic and fails unless there are
// exactly want (end offsets tell us nothing more is coming).
func consumeAll(t *testing.T, c *kfake.Cluster, topic string, want int) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	ends.Each(func(o kadm.ListedOffset) { total += o.Offset })
	if total != int64(want) {
		t.Fatalf("topic %s holds %d records, want %d", topic, total, want)
	}
	var out []*kgo.Record
	for len(out) < want {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d records of %s", len(out), want, topic)
		}
		fs.EachRecord(func(r *kgo.Record) { out = append(out, r) })
	}
	return out
}

func header(r *kgo.Record, key string) (string, bool) {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value), true
		}
	}
	return "", false
}

func byValue(recs []*kgo.Record) map[string]*kgo.Record {
	m := make(map[string]*kgo.Record, len(recs))
	for _, r := range recs {
		m[string(r.Value)] = r
	}
	return m
}

// answerProduce builds a produce response failing every partition of req
// with code.
func answerProduce(req *kmsg.ProduceRequest, code int16) *kmsg.ProduceResponse {
	resp := req.ResponseKind().(*kmsg.ProduceResponse)
	for _, rt := range req.Topics {
		st := kmsg.NewProduceResponseTopic()
		st.Topic, st.TopicID = rt.Topic, rt.TopicID
		for _, rp := range rt.Partitions {
			sp := kmsg.NewProduceResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.ErrorCode = code
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}

func send(t testing.TB, s Sink, msgs []Message) []error {
	t.Helper()
	errs := make([]error, len(msgs))
	s.Send(context.Background(), msgs, errs)
	return errs
}

func TestKafkaSendRecords(t *testing.T) {
	t.Parallel()
	c := newCluster(t, kfake.SeedTopics(3, "events"))
	k := newTestKafka(t, c, KafkaOptions{})
	s := k.Topic("events")

	msgs := []Message{testMsg(42, "{}\nfirst"), testMsg(7, "{}\nsecond"), testMsg(42, "{}\nthird")}
	msgs[1].Key = []byte("event-id-1")
	msgs[2].ClientIP, msgs[2].Client = "", ""
	// The buffer owns Envelope memory: mangle it after Send to prove the
	// sink does not keep it.
	errs := send(t, s, msgs)
	for i, err := range errs {
		if err != nil {
			t.Fatalf("msg %d: %v", i, err)
		}
	}
	for i := range msgs {
		copy(msgs[i].Envelope, "XXXX")
	}

	got := byValue(consumeAll(t, c, "events", 3))
	tests := []struct {
		value, key string
		headers    map[string]string
		absent     []string
	}{
		{"{}\nfirst", "42", map[string]string{
			HeaderProjectID: "42", HeaderPublicKey: "abc123", HeaderClass: "error",
			HeaderReceivedAt: "2025-03-01T12:30:45.123456789Z", HeaderClientIP: "203.0.113.7", HeaderClient: "sentry.go/0.30",
		}, nil},
		{"{}\nsecond", "event-id-1", map[string]string{HeaderProjectID: "7"}, nil},
		{"{}\nthird", "42", map[string]string{HeaderProjectID: "42"}, []string{HeaderClientIP, HeaderClient}},
	}
	for _, tt := range tests {
		r, ok := got[tt.value]
		if !ok {
			t.Errorf("record %q missing", tt.value)
			continue
		}
		if string(r.Key) != tt.key {
			t.Errorf("record %q: key %q, want %q", tt.value, r.Key, tt.key)
		}
		for k, v := range tt.headers {
			if h, _ := header(r, k); h != v {
				t.Errorf("record %q: header %s = %q, want %q", tt.value, k, h, v)
			}
		}
		for _, k := range tt.absent {
			if _, ok := header(r, k); ok {
				t.Errorf("record %q: header %s present", tt.value, k)
			}
		}
	}
	// Same key, same partition: project 42 stays ordered on one partition.
	if got["{}\nfirst"].Partition != got["{}\nthird"].Partition {
		t.Error("records of one project landed on different partitions")
	}
}

func TestKafkaRetriableErrorThenSuccess(t *testing.T) {
	t.Parallel()
	c := newCluster(t, kfake.SeedTopics(1, "events"))
	var failed atomic.Int32
	c.ControlKey(int16(kmsg.Produce), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		failed.Add(1)
		return answerProduce(kreq.(*kmsg.ProduceRequest), kerr.NotLeaderForPartition.Code), nil, true
	})
	k := newTestKafka(t, c, KafkaOptions{})
	msgs := make([]Message, 10)
	for i := range msgs {
		msgs[i] = testMsg(1, "payload-"+strconv.Itoa(i))
	}
	for i, err := range send(t, k.Topic("events"), msgs) {
		if err != nil {
			t.Fatalf("msg %d: %v", i, err)
		}
	}
	if failed.Load() != 1 {
		t.Fatalf("control ran %d times, want 1", failed.Load())
	}
	// Idempotent retries: each record exactly once.
	got := byValue(consumeAll(t, c, "events", len(msgs)))
	for i := range msgs {
		if _, ok := got["payload-"+strconv.Itoa(i)]; !ok {
			t.Errorf("payload-%d missing", i)
		}
	}
}

// A record the broker rejects takes its whole partition down with it in
// franz-go: the innocent neighbours must be delivered, only the culprit is
// Permanent.
func TestKafkaFatalErrorForOneRecord(t *testing.T) {
	t.Parallel()
	c := newCluster(t, kfake.SeedTopics(1, "events"))
	poison := []byte("POISON")
	var rejected atomic.Int32
	c.ControlKey(int16(kmsg.Produce), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		req := kreq.(*kmsg.ProduceRequest)
		for _, rt := range req.Topics {
			for _, rp := range rt.Partitions {
				if bytes.Contains(rp.Records, poison) {
					rejected.Add(1)
					return answerProduce(req, kerr.InvalidRecord.Code), nil, true
				}
			}
		}
		return nil, nil, false
	})
	k := newTestKafka(t, c, KafkaOptions{})
	s := k.Topic("events")
	msgs := make([]Message, 8)
	for i := range msgs {
		msgs[i] = testMsg(1, "ok-"+strconv.Itoa(i))
	}
	msgs[3].Envelope = []byte("bad-POISON")

	errs := send(t, s, msgs)
	for i, err := range errs {
		switch {
		case i == 3:
			if !IsPermanent(err) || !errors.Is(err, kerr.InvalidRecord) {
				t.Errorf("poison: got %v, want Permanent InvalidRecord", err)
			}
		case err != nil:
			t.Errorf("msg %d: %v", i, err)
		}
	}
	if rejected.Load() < 2 {
		t.Errorf("poison rejected %d times, want its batch and its retry alone", rejected.Load())
	}
	// The partition keeps working after the failure.
	if errs := send(t, s, []Message{testMsg(1, "after")}); errs[0] != nil {
		t.Fatalf("send after failure: %v", errs[0])
	}
	got := byValue(consumeAll(t, c, "events", 8))
	if _, ok := got["bad-POISON"]; ok {
		t.Error("poison was produced")
	}
	if _, ok := got["after"]; !ok {
		t.Error("record after the failure missing")
	}
}

// An ACL refusal is the cluster's or Baton's settings, not the records'
// fault: they stay retryable (in Baton's buffer) and Health reports the
// fault until a delivery to the topic clears it.
func TestKafkaTopicAuthorizationIsRetryable(t *testing.T) {
	t.Parallel()
	c := newCluster(t, kfake.SeedTopics(1, "events"))
	var refuse atomic.Bool
	refuse.Store(true)
	var calls atomic.Int32
	c.ControlKey(int16(kmsg.Produce), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if !refuse.Load() {
			return nil, nil, false
		}
		calls.Add(1)
		return answerProduce(kreq.(*kmsg.ProduceRequest), kerr.TopicAuthorizationFailed.Code), nil, true
	})
	var faults faultLog
	k := newTestKafka(t, c, KafkaOptions{OnFault: faults.add})
	msgs := []Message{testMsg(1, "a"), testMsg(1, "b"), testMsg(1, "c")}
	for range 2 {
		for i, err := range send(t, k.Topic("events"), msgs) {
			if err == nil || IsPermanent(err) || !errors.Is(err, kerr.TopicAuthorizationFailed) {
				t.Errorf("msg %d: got %v, want a retryable TopicAuthorizationFailed", i, err)
			}
		}
	}
	// Topic-wide failures are not retried record by record.
	if n := calls.Load(); n > 4 {
		t.Errorf("%d produce requests for two sends, want the records to fail together", n)
	}
	f := k.Health().Fault
	if f == nil || f.Kind != FaultAuthorization || f.Topic != "events" {
		t.Fatalf("health fault %+v, want authorization for topic events", f)
	}

	refuse.Store(false)
	for i, err := range send(t, k.Topic("events"), msgs) {
		if err != nil {
			t.Fatalf("msg %d once authorized: %v", i, err)
		}
	}
	if f := k.Health().Fault; f != nil {
		t.Errorf("fault %v after a delivery", f)
	}
	if got := faults.kinds(); len(got) != 2 || got[0] != FaultAuthorization || got[1] != "" {
		t.Errorf("OnFault calls %q, want one for the refusal and one for the recovery", got)
	}
}

func TestKafkaTooLarge(t *testing.T) {
	t.Parallel()
	big := string(bytes.Repeat([]byte("x"), 30_000))
	for _, tt := range []struct {
		name       string
		brokerMax  string // message.max.bytes of the cluster, "" for default
		maxMessage int
		deadLetter bool
	}{
		{"client-side/dead-letter", "", 10_000, true},
		{"client-side/permanent", "", 10_000, false},
		{"broker-side/dead-letter", "20000", 0, true},
		{"broker-side/permanent", "20000", 0, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			opts := []kfake.Opt{kfake.SeedTopics(1, "events")}
			if tt.brokerMax != "" {
				opts = append(opts, kfake.BrokerConfigs(map[string]string{"message.max.bytes": tt.brokerMax}))
			}
			c := newCluster(t, opts...)
			kopts := KafkaOptions{MaxMessageBytes: tt.maxMessage}
			if tt.deadLetter {
				kopts.DeadLetterTopic = "dead"
				createTopic(t, c, "dead", map[string]*string{"max.message.bytes": ptr("4000000")})
			}
			var dead atomic.Int32
			kopts.OnDeadLetter = func(topic string, m *Message, reason string) {
				if topic == "events" && reason == DeadLetterTooLarge && len(m.Envelope) == len(big) {
					dead.Add(1)
				}
			}
			k := newTestKafka(t, c, kopts)
			msgs := []Message{testMsg(5, "small-1"), testMsg(5, big), testMsg(5, "small-2")}
			errs := send(t, k.Topic("events"), msgs)
			if errs[0] != nil || errs[2] != nil {
				t.Fatalf("small records: %v, %v", errs[0], errs[2])
			}
			if tt.deadLetter {
				if errs[1] != nil {
					t.Fatalf("big record: %v, want dead-lettered", errs[1])
				}
				if dead.Load() != 1 {
					t.Errorf("OnDeadLetter ran %d times", dead.Load())
				}
				r := consumeAll(t, c, "dead", 1)[0]
				if string(r.Value) != big || string(r.Key) != "5" {
					t.Errorf("dead letter: key %q, %d value bytes", r.Key, len(r.Value))
				}
				for k, v := range map[string]string{HeaderDeadLetterReason: DeadLetterTooLarge, HeaderDeadLetterTopic: "events", HeaderProjectID: "5"} {
					if h, _ := header(r, k); h != v {
						t.Errorf("dead letter header %s = %q, want %q", k, h, v)
					}
				}
			} else if !IsPermanent(errs[1]) {
				t.Fatalf("big record: %v, want Permanent", errs[1])
			}
			got := byValue(consumeAll(t, c, "events", 2))
			if got["small-1"] == nil || got["small-2"] == nil {
				t.Errorf("small records missing from events")
			}
		})
	}
}

func createTopic(t *testing.T, c *kfake.Cluster, topic string, configs map[string]*string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	resp, err := kadm.NewClient(cl).CreateTopic(context.Background(), 1, 1, configs, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
}

func ptr[T any](v T) *T { return &v }

func TestKafkaUnreachable(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	k, err := NewKafka(KafkaOptions{Brokers: []string{addr}, ProduceTimeout: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	s := k.Topic("events")
	msgs := []Message{testMsg(1, "a"), testMsg(2, "b")}
	start := time.Now()
	errs := send(t, s, msgs)
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Send took %s with a 500ms produce timeout", d)
	}
	for i, err := range errs {
		if err == nil || IsPermanent(err) {
			t.Errorf("msg %d: %v, want a retryable error", i, err)
		}
		if _, ok := RetryAfter(err); ok {
			t.Errorf("msg %d: unreachable Kafka is not throttling: %v", i, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	start = time.Now()
	_ = k.Close(ctx) // flushing cannot succeed; what matters is that it returns
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Close took %s", d)
	}
	if errs := send(t, s, msgs[:1]); !errors.Is(errs[0], ErrClosed) {
		t.Errorf("Send after Close: %v, want ErrClosed", errs[0])
	}
	if err := k.Ping(ctx); !errors.Is(err, ErrClosed) {
		t.Errorf("Ping after Close: %v", err)
	}
}

func TestKafkaCallerContext(t *testing.T) {
	t.Parallel()
	c := newCluster(t, kfake.SeedTopics(1, "events"))
	// Stall every produce until the test is over, so Send can only end
	// through ctx.
	release := make(chan struct{})
	defer close(release) // before the cleanups close the client and broker
	c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		<-release
		return nil, nil, false
	})
	k := newTestKafka(t, c, KafkaOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	errs := make([]error, 2)
	k.Topic("events").Send(ctx, []Message{testMsg(1, "a"), testMsg(1, "b")}, errs)
	for i, err := range errs {
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("msg %d: %v, want the caller's context error", i, err)
		}
	}
}

func TestNewKafkaValidates(t *testing.T) {
	t.Parallel()
	if _, err := NewKafka(KafkaOptions{}); !errors.Is(err, ErrNoBrokers) {
		t.Errorf("no brokers: %v", err)
	}
	if _, err := NewKafka(KafkaOptions{Brokers: []string{"x:1"}, Compression: "brotli"}); !errors.Is(err, ErrUnknownCompression) {
		t.Errorf("brotli: %v", err)
	}
	if _, err := NewKafka(KafkaOptions{Brokers: []string{"x:1"}, SASL: SASLOptions{Mechanism: "gssapi"}}); err == nil {
		t.Error("gssapi accepted")
	}
	for _, codec := range []string{"", "snappy", "lz4", "zstd", "gzip", "none"} {
		k, err := NewKafka(KafkaOptions{Brokers: []string{"x:1"}, Compression: codec, SASL: SASLOptions{Mechanism: "scram-sha-512", User: "u", Password: "p"}})
		if err != nil {
			t.Errorf("%q: %v", codec, err)
			continue
		}
		if err := k.Close(context.Background()); err != nil {
			t.Errorf("close: %v", err)
		}
	}
}

// Lent envelopes (Message.Loan) are produced without a copy; the loan is
// kept only when Send returns with records still in flight, which then
// reference the caller's memory until Kafka acknowledges them.
func TestKafkaLentEnvelopes(t *testing.T) {
	t.Parallel()
	var kb kafkaBatch
	loan := new(Loan)
	lent, owned := testMsg(1, "{}\nlent"), testMsg(1, "{}\nowned")
	lent.Loan = loan
	recs := kb.build("events", []Message{lent, owned})
	if &recs[0].Value[0] != &lent.Envelope[0] {
		t.Error("a lent envelope was copied")
	}
	if &recs[1].Value[0] == &owned.Envelope[0] {
		t.Error("an envelope that was not lent is referenced, not copied")
	}

	c := newCluster(t, kfake.SeedTopics(1, "events"))
	k := newTestKafka(t, c, KafkaOptions{})
	s := k.Topic("events")
	for i, err := range send(t, s, []Message{lent}) {
		if err != nil {
			t.Fatalf("msg %d: %v", i, err)
		}
	}
	if loan.Kept() {
		t.Error("every record was acknowledged, yet the loan was kept")
	}

	// Stall the produces: Send gives up with the records in flight.
	release := make(chan struct{})
	var stalled atomic.Bool
	c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		if stalled.Load() {
			return nil, nil, false
		}
		stalled.Store(true)
		c.KeepControl()
		<-release
		return nil, nil, false
	})
	stalledLoan := new(Loan)
	m := testMsg(2, "{}\nin flight")
	m.Loan = stalledLoan
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	errs := make([]error, 1)
	s.Send(ctx, []Message{m}, errs)
	close(release)
	if errs[0] == nil {
		t.Fatal("Send succeeded while the broker stalled every produce")
	}
	if !stalledLoan.Kept() {
		t.Fatal("Send returned with a record in flight but did not keep the loan")
	}
	// The client still delivers it, from the lent memory.
	got := byValue(consumeAll(t, c, "events", 2))
	if _, ok := got["{}\nin flight"]; !ok {
		t.Errorf("the record in flight at the deadline was not delivered: %v", got)
	}
}
