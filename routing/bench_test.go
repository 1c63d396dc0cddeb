package routing

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

// BenchmarkKafkaSend produces batches of 64 × 5 KB envelopes to an
// in-process kfake broker and waits for the acks; the sink copies the
// envelopes (no Loan).
func BenchmarkKafkaSend(b *testing.B) { benchKafkaSend(b, nil) }

// BenchmarkKafkaSendLent is BenchmarkKafkaSend with the envelopes lent, as
// the forwarder sends them: no copy.
func BenchmarkKafkaSendLent(b *testing.B) { benchKafkaSend(b, new(Loan)) }

func benchKafkaSend(b *testing.B, loan *Loan) {
	c := newCluster(b, kfake.SeedTopics(4, "events"))
	k, err := NewKafka(KafkaOptions{Brokers: c.ListenAddrs(), Compression: "snappy", Linger: -1})
	if err != nil {
		b.Fatal(err)
	}
	defer k.Close(context.Background())
	s := k.Topic("events")
	body := bytes.Repeat([]byte(`{"message":"benchmark payload","level":"error"}`), 5<<10/48)
	msgs := make([]Message, 64)
	for i := range msgs {
		msgs[i] = testMsg(uint64(i%8), string(body))
		msgs[i].Loan = loan
	}
	errs := make([]error, len(msgs))
	b.SetBytes(int64(len(msgs) * len(body)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		s.Send(context.Background(), msgs, errs)
		for _, err := range errs {
			if err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkRendezvous is the per-message node choice over 3 nodes.
func BenchmarkRendezvous(b *testing.B) {
	u, err := NewUpstream(UpstreamOptions{URLs: []string{"http://10.0.0.1:3000", "http://10.0.0.2:3000", "http://10.0.0.3:3000"}})
	if err != nil {
		b.Fatal(err)
	}
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = fmt.Sprintf("%032x", i)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		u.pick(keys[i&1023])
		i++
	}
}

// BenchmarkUpstreamSend posts batches of 64 × 5 KB envelopes, gzip, to a
// local fasthttp server.
func BenchmarkUpstreamSend(b *testing.B) {
	f := newFakeUpstream(b)
	u, err := NewUpstream(UpstreamOptions{URLs: []string{f.url}, MaxIdleConnDuration: 50 * time.Millisecond})
	if err != nil {
		b.Fatal(err)
	}
	defer u.Close(context.Background())
	body := append([]byte(`{"sent_at":"2025-03-01T12:00:00Z"}`+"\n"), bytes.Repeat([]byte("x"), 5<<10)...)
	msgs := make([]Message, 64)
	for i := range msgs {
		msgs[i] = testMsg(uint64(i), string(body))
	}
	errs := make([]error, len(msgs))
	b.SetBytes(int64(len(msgs) * len(body)))
	b.ReportAllocs()
	for b.Loop() {
		u.Send(context.Background(), msgs, errs)
		for _, err := range errs {
			if err != nil {
				b.Fatal(err)
			}
		}
	}
}

func BenchmarkAdjustSentAt(b *testing.B) {
	env := []byte(testHeaderLine + "\n" + testItems)
	dst := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		dst = adjustSentAt(dst[:0], env, time.Minute)
	}
}
