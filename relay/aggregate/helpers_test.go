package aggregate

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/baton-relay/baton/envelope"
)

// base is a window-aligned unix time used as "now" by most tests.
const base = 1_700_000_000

// clock is a settable fake clock.
type clock struct{ t time.Time }

func (c *clock) Now() time.Time { return c.t }

func newClock(unix int64) *clock { return &clock{time.Unix(unix, 0)} }

// admit is AdmitSeries of a series without a name.
func admit(l *Limiter, project uint64, namespace string, hash uint64) bool {
	return l.AdmitSeries(Series{Project: project, Namespace: namespace, Hash: hash})
}

func newAgg(t testing.TB, o Options) *Aggregator {
	t.Helper()
	a, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func counter(name string, ts int64, v float64, tags ...string) envelope.Bucket {
	b := envelope.Bucket{Timestamp: ts, Name: "c:custom/" + name + "@none", Type: envelope.MetricCounter, Metadata: envelope.BucketMetadata{Merges: 1}}
	b.Value.Counter = v
	setTags(&b, tags)
	return b
}

func dist(name string, ts int64, vs ...float64) envelope.Bucket {
	b := envelope.Bucket{Timestamp: ts, Name: "d:custom/" + name + "@none", Type: envelope.MetricDistribution, Metadata: envelope.BucketMetadata{Merges: 1}}
	b.Value.Distribution = vs
	return b
}

func setTags(b *envelope.Bucket, kv []string) {
	for i := 0; i+1 < len(kv); i += 2 {
		b.SetTag(kv[i], kv[i+1])
	}
}

// flat returns the buckets of batches in order.
func flat(batches []Batch) []envelope.Bucket {
	var out []envelope.Bucket
	for _, b := range batches {
		out = append(out, b.Buckets...)
	}
	return out
}

// render is a canonical text of batches: scope, partition and bucket JSON
// with distribution values sorted (their order depends on insert order).
func render(batches []Batch) string {
	var out []byte
	for _, b := range batches {
		out = fmt.Appendf(out, "%d/%s/%d ", b.Scope.ProjectID, b.Scope.PublicKey, b.Partition)
		bs := make([]envelope.Bucket, len(b.Buckets))
		for i := range b.Buckets {
			bs[i] = b.Buckets[i].Clone()
			slices.Sort(bs[i].Value.Distribution)
		}
		out = envelope.AppendBucketsJSON(out, bs)
		out = append(out, '\n')
	}
	return string(out)
}
