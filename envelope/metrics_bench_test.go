package envelope

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// benchStatsdPayload is 100 statsd lines as SDKs send them: a mix of
// counters, distributions, sets and gauges with two to four tags.
func benchStatsdPayload() ([]byte, int) {
	var b strings.Builder
	n := 0
	for i := range 25 {
		fmt.Fprintf(&b, "endpoint.hits:1|c|#route:/api/users/%d,environment:production,release:app@1.4.0\n", i%5)
		fmt.Fprintf(&b, "endpoint.response_time@millisecond:%d.5:%d:17|d|#route:/api/users/%d,environment:production\n", 30+i, 40+i, i%5)
		fmt.Fprintf(&b, "transactions/endpoint.users:e2546e4c-ecd0-43ad-ae27-87960e57a6%02d|s|#environment:production\n", i)
		fmt.Fprintf(&b, "queue.depth@none:%d|g|#queue:default,host:worker-%d|T1764008301\n", 100+i, i%3)
		n += 4
	}
	return []byte(b.String()), n
}

func BenchmarkParseStatsd(b *testing.B) {
	payload, lines := benchStatsdPayload()
	now := time.Unix(1764008301, 0)
	dst := make([]Bucket, 0, lines)
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	for b.Loop() {
		var errs []LineError
		dst, errs = ParseStatsd(dst[:0], payload, now)
		if len(errs) != 0 || len(dst) != lines {
			b.Fatal(errs)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(lines), "ns/line")
}

// BenchmarkParseStatsdCounter is the cheapest line: an untagged counter
// (one allocation, the name).
func BenchmarkParseStatsdCounter(b *testing.B) {
	payload := []byte(strings.Repeat("endpoint.hits:1|c\n", 100))
	dst := make([]Bucket, 0, 100)
	now := time.Unix(1764008301, 0)
	b.ReportAllocs()
	for b.Loop() {
		dst, _ = ParseStatsd(dst[:0], payload, now)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/100, "ns/line")
}

func BenchmarkMerge(b *testing.B) {
	payload, _ := benchStatsdPayload()
	bs, _ := ParseStatsd(nil, payload, time.Unix(1764008301, 0))
	for _, tt := range []struct {
		name string
		a, o Bucket
	}{
		{"counter", bs[0], bs[4]},
		{"distribution", bs[1], bs[5]},
		{"set", bs[2], bs[6]},
		{"gauge", bs[3], bs[7]},
	} {
		b.Run(tt.name, func(b *testing.B) {
			a := tt.a.Clone()
			base := len(a.Value.Distribution)
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if i%1024 == 0 { // keep distributions and sets from growing without bound
					a.Value.Distribution = a.Value.Distribution[:base]
					a.Value.Set = a.Value.Set[:min(len(a.Value.Set), 1)]
				}
				if err := a.Merge(&tt.o); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkKeyHash(b *testing.B) {
	payload, _ := benchStatsdPayload()
	bs, _ := ParseStatsd(nil, payload, time.Unix(1764008301, 0))
	b.ReportAllocs()
	var h uint64
	for b.Loop() {
		h += bs[0].KeyHash()
	}
	_ = h
}

func BenchmarkBucketsJSON(b *testing.B) {
	payload, _ := benchStatsdPayload()
	bs, _ := ParseStatsd(nil, payload, time.Unix(1764008301, 0))
	data := AppendBucketsJSON(nil, bs)
	b.Run("append", func(b *testing.B) {
		var out []byte
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		for b.Loop() {
			out = AppendBucketsJSON(out[:0], bs)
		}
	})
	b.Run("parse", func(b *testing.B) {
		dst := make([]Bucket, 0, len(bs))
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		for b.Loop() {
			var err error
			if dst, err = AppendParsedBuckets(dst[:0], data); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(bs)), "ns/bucket")
	})
}
