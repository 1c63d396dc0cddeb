package aggregate

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/baton-relay/baton/envelope"
)

// fixture reads one of Relay's metric fixtures (testdata/README.md).
func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func jsonValue(t *testing.T, b []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("invalid JSON %s: %v", b, err)
	}
	return v
}

// explode splits every multi-value distribution and set line into one line
// per value, so the aggregator has to merge them back.
func explode(text []byte) []byte {
	var out []string
	for _, l := range strings.Split(string(text), "\n") {
		head, rest, ok := strings.Cut(l, "|")
		name, vals, _ := strings.Cut(head, ":")
		if !ok || !(strings.HasPrefix(rest, "d") || strings.HasPrefix(rest, "s")) {
			out = append(out, l)
			continue
		}
		for _, v := range strings.Split(vals, ":") {
			out = append(out, name+":"+v+"|"+rest)
		}
	}
	return []byte(strings.Join(out, "\n"))
}

// TestFixtureBuckets aggregates buckets.statsd.txt, split into one Insert
// per value, and compares with buckets.json. The fixtures come from
// different points of Relay's history: the statsd lines lack the
// "transactions/" prefix the JSON names have (added here), and the JSON has
// the width 0 of unaggregated buckets (the aggregator sets 10).
func TestFixtureBuckets(t *testing.T) {
	text := fixture(t, "buckets.statsd.txt")
	want := fixture(t, "buckets.json")
	var prefixed bytes.Buffer
	for _, l := range strings.Split(strings.TrimSpace(string(text)), "\n") {
		prefixed.WriteString("transactions/" + l + "\n")
	}
	now := time.Unix(1615889440, 0)
	bs, errs := envelope.ParseStatsd(nil, explode(prefixed.Bytes()), now)
	if len(errs) != 0 || len(bs) != 8 {
		t.Fatalf("%d buckets, errors %v", len(bs), errs)
	}
	a := newAgg(t, Options{Now: func() time.Time { return now }})
	for i := range bs {
		a.Insert(sc1, Source{Seq: uint64(i)}, bs[i:i+1])
	}
	got := flat(a.FlushAll(nil))
	// buckets.json is in input order; ours is sorted by name.
	wantBs, err := envelope.ParseBuckets(want)
	if err != nil {
		t.Fatal(err)
	}
	for i := range wantBs {
		wantBs[i].Width = 10
	}
	byName := func(bs []envelope.Bucket) map[string]envelope.Bucket {
		m := map[string]envelope.Bucket{}
		for _, b := range bs {
			b.Metadata = envelope.BucketMetadata{Merges: 1} // merges differ: we merged the split lines
			m[b.Name] = b
		}
		return m
	}
	if g, w := byName(got), byName(wantBs); !reflect.DeepEqual(g, w) {
		t.Errorf("aggregated\n %+v\nwant\n %+v", g, w)
	}
	if got[0].Name != "c:transactions/endpoint.hits@none" || got[0].Metadata.Merges != 1 {
		t.Errorf("first bucket %+v", got[0])
	}
	for _, b := range got {
		if b.Type == envelope.MetricDistribution && b.Metadata.Merges != 4 {
			t.Errorf("distribution merges %d, want 4", b.Metadata.Merges)
		}
	}
}

// TestFixtureSet aggregates set.statsd.txt twice (a set ignores repeats)
// and compares with set.json, whose timestamp is aligned to the window.
func TestFixtureSet(t *testing.T) {
	text := fixture(t, "set.statsd.txt")
	want := fixture(t, "set.json")
	now := time.Unix(1615889449, 0)
	bs, errs := envelope.ParseStatsd(nil, text, now)
	if len(errs) != 0 || len(bs) != 1 {
		t.Fatalf("%d buckets, errors %v", len(bs), errs)
	}
	a := newAgg(t, Options{Now: func() time.Time { return now }})
	a.Insert(sc1, Source{}, bs)
	a.Insert(sc1, Source{}, bs)
	got := flat(a.FlushAll(nil))
	if len(got) != 1 {
		t.Fatalf("got %+v", got)
	}
	got[0].Metadata.Merges = 1
	w := jsonValue(t, want).(map[string]any)
	w["timestamp"], w["width"] = float64(1615889440), float64(10)
	if g := jsonValue(t, got[0].AppendJSON(nil)); !reflect.DeepEqual(g, w) {
		t.Errorf("got %v\nwant %v", g, w)
	}
}

// TestFixtureMetrics aggregates metrics.statsd.txt three times and checks
// the values against metrics.json (Relay's older one-value-per-metric
// format).
func TestFixtureMetrics(t *testing.T) {
	text := fixture(t, "metrics.statsd.txt")
	raw := fixture(t, "metrics.json")
	var want []struct {
		Name      string            `json:"name"`
		Value     float64           `json:"value"`
		Type      string            `json:"type"`
		Timestamp int64             `json:"timestamp"`
		Tags      map[string]string `json:"tags"`
	}
	if err := json.Unmarshal(raw, &want); err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1615889449, 0)
	bs, errs := envelope.ParseStatsd(nil, text, now)
	if len(errs) != 0 || len(bs) != len(want) {
		t.Fatalf("%d buckets, errors %v", len(bs), errs)
	}
	a := newAgg(t, Options{Now: func() time.Time { return now }})
	for range 3 {
		a.Insert(sc1, Source{}, bs)
	}
	got := map[string]envelope.Bucket{}
	for _, b := range flat(a.FlushAll(nil)) {
		got[b.Name] = b
	}
	for _, w := range want {
		b, ok := got[w.Name]
		if !ok {
			t.Errorf("no bucket %s in %v", w.Name, got)
			continue
		}
		tags := map[string]string{}
		for _, tg := range b.Tags {
			tags[tg.Key] = tg.Value
		}
		if b.Type.String() != w.Type || b.Timestamp != w.Timestamp-w.Timestamp%10 || !reflect.DeepEqual(tags, w.Tags) {
			t.Errorf("%s: %+v, want %+v", w.Name, b, w)
		}
		switch b.Type {
		case envelope.MetricCounter:
			if b.Value.Counter != 3*w.Value {
				t.Errorf("%s = %v, want %v", w.Name, b.Value.Counter, 3*w.Value)
			}
		case envelope.MetricDistribution:
			if !reflect.DeepEqual(b.Value.Distribution, []float64{w.Value, w.Value, w.Value}) {
				t.Errorf("%s = %v, want 3 × %v", w.Name, b.Value.Distribution, w.Value)
			}
		}
	}
}
