package envelope

import (
	"bytes"
	"encoding/json"
	"errors"
	"hash/fnv"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

var statsdFuzzSeeds = []string{
	"",
	"\n\r\n",
	"transactions/foo:42:17:21|c\nbar@ms:1.5:-2e3|d|#a:b,c|T1615889449\r\n",
	"x:e2546e4c-ecd0-43ad-ae27-87960e57a658:4294967296:+7|s|#k:\\u{2c}\\x41\\101",
	"g@byte:25:17:42:220:85|g|#a:1|#b:2|@0.5",
	"foo#bär/-x@Custom_Unit:1|m|T+5",
	"a:1e308:1e308|c\na:-1e308:-1e308|c\n:1|c\n1a:1|c\na:1|z",
	"a:1|c|#\\u{d800},\\,\x01:x,:y",
}

// FuzzParseStatsd checks that ParseStatsd never panics, accounts for every
// non-empty line, returns well-formed buckets, and that those buckets
// survive AppendBucketsJSON and ParseBuckets unchanged.
func FuzzParseStatsd(f *testing.F) {
	for _, s := range statsdFuzzSeeds {
		f.Add([]byte(s))
	}
	addFixtureSeeds(f, filepath.Join(relayFixtures, "metrics", "*.statsd.txt"), func(b []byte) { f.Add(b) })
	f.Fuzz(func(t *testing.T, payload []byte) {
		bs, errs := ParseStatsd(nil, payload, time.Unix(1700000000, 0))
		lines := 0
		for _, l := range bytes.Split(payload, []byte("\n")) {
			if len(bytes.TrimSuffix(l, []byte("\r"))) > 0 {
				lines++
			}
		}
		if len(bs)+len(errs) != lines {
			t.Fatalf("%d buckets + %d errors for %d lines", len(bs), len(errs), lines)
		}
		for _, e := range errs {
			if e.Line < 1 || e.Offset < 0 || e.Offset > len(payload) || e.Msg == "" {
				t.Fatalf("bad LineError %+v for %d bytes", e, len(payload))
			}
		}
		for i := range bs {
			checkBucket(t, &bs[i])
			if !strings.Contains(bs[i].Name, "/") || bs[i].Name[0] != byte(bs[i].Type) {
				t.Fatalf("name %q is not an MRI of type %s", bs[i].Name, bs[i].Type)
			}
		}
		out := AppendBucketsJSON(nil, bs)
		if !json.Valid(out) {
			t.Fatalf("invalid JSON %q", out)
		}
		back, err := ParseBuckets(out)
		if err != nil {
			t.Fatalf("ParseBuckets(AppendBucketsJSON(...)): %v\n%s", err, out)
		}
		if !bucketsEqual(back, bs) {
			t.Fatalf("JSON round trip changed buckets\n got %+v\nwant %+v", back, bs)
		}
	})
}

// checkBucket checks the invariants every parsed bucket keeps.
func checkBucket(t *testing.T, b *Bucket) {
	t.Helper()
	if !b.Type.Valid() {
		t.Fatalf("invalid type %d", b.Type)
	}
	if !slices.IsSortedFunc(b.Tags, func(x, y Tag) int { return strings.Compare(x.Key, y.Key) }) {
		t.Fatalf("tags not sorted: %q", b.Tags)
	}
	for i := 1; i < len(b.Tags); i++ {
		if b.Tags[i].Key == b.Tags[i-1].Key {
			t.Fatalf("duplicate tag %q", b.Tags[i].Key)
		}
	}
	for i := 1; i < len(b.Value.Set); i++ {
		if b.Value.Set[i] <= b.Value.Set[i-1] {
			t.Fatalf("set not strictly ascending: %v", b.Value.Set)
		}
	}
	finite := func(f float64) bool { return !math.IsInf(f, 0) && !math.IsNaN(f) }
	g := b.Value.Gauge
	if !finite(b.Value.Counter) || !finite(g.Last) || !finite(g.Min) || !finite(g.Max) || !finite(g.Sum) {
		t.Fatalf("non-finite value %+v", b.Value)
	}
	for _, f := range b.Value.Distribution {
		if !finite(f) {
			t.Fatalf("non-finite distribution value %v", f)
		}
	}
	h := fnv.New64a()
	h.Write(b.AppendKey(nil))
	if h.Sum64() != b.KeyHash() {
		t.Fatalf("KeyHash differs from FNV-1a of AppendKey")
	}
}

// FuzzParseBuckets checks that ParseBuckets never panics, fails only with a
// classified *ParseError inside the input, and that what it accepts
// re-serializes to JSON that parses back equal and serializes identically.
func FuzzParseBuckets(f *testing.F) {
	for _, s := range []string{
		``, `[]`, `{}`, `[{}]`, `[1,2]`,
		`[{"timestamp":1615889440,"width":10,"name":"endpoint.response_time","unit":"millisecond","value":[36,49,57,68],"type":"d","tags":{"route":"user_index"},"metadata":{"merges":1,"received_at":1615889440}}]`,
		`[{"timestamp":1,"width":0,"name":"g:custom/x@none","type":"g","value":{"last":-1.5,"min":-2,"max":1e300,"sum":1e-7,"count":3}}]`,
		`[{"timestamp":2,"width":0,"name":"s","type":"s","value":[3,1,3],"tags":{"\u0061":"\ud800","a":"\n"},"metadata":{"received_at":null,"merges":0}}]`,
		`[{"timestamp":3,"width":0,"name":"c","type":"c","value":1,"type":"c"}]`,
	} {
		f.Add([]byte(s))
	}
	addFixtureSeeds(f, filepath.Join(relayFixtures, "metrics", "buckets.json"), func(b []byte) { f.Add(b) })
	f.Fuzz(func(t *testing.T, data []byte) {
		bs, err := ParseBuckets(data)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) || !errors.Is(err, ErrInvalid) || pe.Offset < 0 || pe.Offset > len(data) {
				t.Fatalf("error %v (%T) is not a classified *ParseError inside the input", err, err)
			}
			return
		}
		for i := range bs {
			checkBucket(t, &bs[i])
		}
		out := AppendBucketsJSON(nil, bs)
		back, err := ParseBuckets(out)
		if err != nil {
			t.Fatalf("output does not parse: %v\nin:  %q\nout: %q", err, data, out)
		}
		if !bucketsEqual(back, bs) {
			t.Fatalf("round trip changed buckets\nin:  %q\nout: %q", data, out)
		}
		if out2 := AppendBucketsJSON(nil, back); !bytes.Equal(out, out2) {
			t.Fatalf("AppendBucketsJSON not stable:\n%q\n%q", out, out2)
		}
	})
}
