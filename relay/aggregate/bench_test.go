package aggregate

import (
	"fmt"
	"testing"
	"time"

	"github.com/baton-relay/baton/envelope"
)

// benchBuckets returns n distinct buckets shaped like transaction metrics:
// a distribution with three tags.
func benchBuckets(n int) []envelope.Bucket {
	bs := make([]envelope.Bucket, n)
	for i := range bs {
		bs[i] = envelope.Bucket{
			Timestamp: base,
			Name:      "d:transactions/duration@millisecond",
			Type:      envelope.MetricDistribution,
			Value:     envelope.BucketValue{Distribution: []float64{float64(i % 100)}},
			Tags: []envelope.Tag{
				{Key: "environment", Value: "production"},
				{Key: "transaction", Value: fmt.Sprintf("/api/0/projects/%d/", i)},
				{Key: "transaction.status", Value: "ok"},
			},
			Metadata: envelope.BucketMetadata{Merges: 1},
		}
	}
	return bs
}

// BenchmarkInsert measures Insert per bucket, in calls of 50 buckets:
// "existing" merges into 1000 held buckets, "new" creates a bucket each
// time (a full FlushAll every 64k buckets, outside the timer, bounds
// memory).
func BenchmarkInsert(b *testing.B) {
	const batch = 50
	now := func() time.Time { return time.Unix(base, 0) }
	b.Run("existing", func(b *testing.B) {
		bs := benchBuckets(1000)
		a := newAgg(b, Options{Now: now})
		a.Insert(sc1, Source{}, bs)
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i += batch {
			j := i % len(bs)
			a.Insert(sc1, Source{Seq: uint64(i)}, bs[j:min(j+batch, len(bs))])
			if i%(1<<16) == 0 { // bound the distributions' growth
				b.StopTimer()
				a.FlushAll(nil)
				a.Insert(sc1, Source{}, bs)
				b.StartTimer()
			}
		}
	})
	b.Run("new", func(b *testing.B) {
		bs := benchBuckets(1 << 16)
		a := newAgg(b, Options{Now: now})
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i += batch {
			j := i % len(bs)
			if j < batch && i > 0 {
				b.StopTimer()
				a.FlushAll(nil)
				b.StartTimer()
			}
			a.Insert(sc1, Source{Seq: uint64(i)}, bs[j:min(j+batch, len(bs))])
		}
	})
}

// BenchmarkFlush measures Flush per bucket: 10000 buckets over 4 partitions.
func BenchmarkFlush(b *testing.B) {
	bs := benchBuckets(10_000)
	now := func() time.Time { return time.Unix(base, 0) }
	a := newAgg(b, Options{Partitions: 4, Now: now})
	b.ReportAllocs()
	var dst []Batch
	for b.Loop() {
		b.StopTimer()
		a.Insert(sc1, Source{}, bs)
		b.StartTimer()
		dst = a.FlushAll(dst[:0])
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(bs)), "ns/bucket")
}

// BenchmarkLimiterAdmit measures AdmitSeries for known hashes (the steady state)
// and for a flood of new ones past the limit.
func BenchmarkLimiterAdmit(b *testing.B) {
	now := func() time.Time { return time.Unix(base, 0) }
	b.Run("known", func(b *testing.B) {
		l := NewLimiter(LimitOptions{Limit: 10_000, Now: now})
		for h := range uint64(10_000) {
			admit(l, 1, "transactions", h*0x9e3779b97f4a7c15)
		}
		b.ReportAllocs()
		i := uint64(0)
		for b.Loop() {
			admit(l, 1, "transactions", (i%10_000)*0x9e3779b97f4a7c15)
			i++
		}
	})
	b.Run("known/configured", func(b *testing.B) { // a project limit and a name limit
		l := NewLimiter(LimitOptions{Now: now})
		l.SetProjectLimits(1, 0, []ProjectLimit{{ID: "p", Limit: 10_000}, {ID: "n", Scope: ScopeName, Limit: 10_000}})
		se := Series{Project: 1, Namespace: "transactions", Name: "d:transactions/duration@millisecond"}
		for h := range uint64(10_000) {
			se.Hash = h * 0x9e3779b97f4a7c15
			l.AdmitSeries(se)
		}
		b.ReportAllocs()
		i := uint64(0)
		for b.Loop() {
			se.Hash = (i % 10_000) * 0x9e3779b97f4a7c15
			l.AdmitSeries(se)
			i++
		}
	})
	b.Run("limited", func(b *testing.B) {
		l := NewLimiter(LimitOptions{Limit: 10_000, Now: now})
		b.ReportAllocs()
		i := uint64(0)
		for b.Loop() {
			admit(l, 1, "transactions", i*0x9e3779b97f4a7c15)
			i++
		}
	})
}
