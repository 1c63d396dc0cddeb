package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCurveFlags(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "extra.yml")
	if err := os.WriteFile(cfg, []byte("metrics: {initial_delay: 1s}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--projects-sweep", "10"}, "--baton"},
		{[]string{"--metrics-sweep", "1k", "--projects-sweep", "10", "--baton", "b"}, "separate"},
		{[]string{"--metrics-sweep", "1k", "--baton", "b", "--sizes", "5k"}, "--sizes"},
		{[]string{"--metrics-sweep", "1k", "--baton", "b", "--cpu-pid", "1"}, "--cpu-pid"},
		{[]string{"--projects-sweep", "10", "--baton", "b", "--keys", "random"}, "--keys"},
		{[]string{"--metrics-sweep", "1k", "--baton", "b", "--metric-lines", "0"}, "--metric-lines"},
		{[]string{"--metrics-sweep", "0", "--baton", "b"}, "--metrics-sweep"},
		{[]string{"--metrics-sweep", "1k", "--baton", "b", "--baton-config", "/nonexistent.yml"}, "--baton-config"},
		{[]string{"--baton-config", cfg}, "--baton-config"},
	} {
		var out, errb bytes.Buffer
		if code := run(context.Background(), tc.args, &out, &errb); code != 2 || !strings.Contains(errb.String(), tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and a message naming %s", tc.args, code, errb.String(), tc.want)
		}
	}
	o, err := parseFlags([]string{"--projects-sweep", "10,10k,1m", "--baton", "b", "--baton-config", cfg}, &bytes.Buffer{})
	if err != nil || len(o.projectsSweep) != 3 || o.projectsSweep[2] != 1_000_000 || !o.curving() {
		t.Errorf("--projects-sweep 10,10k,1m: %v, %v", o.projectsSweep, err)
	}
}

// The two curves at a small scale through the real baton binary, each with
// a budget small enough that the larger point crosses it: the config cache
// (managed.cache.max_projects) and the aggregator's per-project budget
// (metrics.max_project_bytes). The smaller point must stay within them
// without refetching or flushing early; the larger must be held to them.
func TestCurvesThroughBaton(t *testing.T) {
	if testing.Short() {
		t.Skip("builds baton and runs four Batons")
	}
	bin := buildBaton(t)
	curve := func(t *testing.T, yaml string, args ...string) curveReport {
		t.Helper()
		cfg := filepath.Join(t.TempDir(), "extra.yml")
		if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
			t.Fatal(err)
		}
		var stdout, stderr bytes.Buffer
		args = append(args, "--baton", bin, "--baton-config", cfg, "--connections", "4", "--duration", "60s",
			"--pool", "2", "--json", "--quiet")
		if code := run(context.Background(), args, &stdout, &stderr); code != 0 {
			t.Fatalf("exit %d, stderr:\n%s", code, stderr.String())
		}
		var rep curveReport
		if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
			t.Fatalf("report is not JSON: %v\n%s", err, stdout.String())
		}
		for _, p := range rep.Points {
			if !p.Drained || p.Final.Pending != 0 || p.CPUMicros <= 0 || p.RSSPeakMB < p.RSSStartMB || p.RSSEndMB <= 0 || p.AcceptedPerSec <= 0 {
				t.Errorf("point %d: drained %v, final %+v, %.1f µs/req, RSS %.1f/%.1f/%.1f MB, %.0f req/s", p.Distinct, p.Drained,
					p.Final, p.CPUMicros, p.RSSStartMB, p.RSSPeakMB, p.RSSEndMB, p.AcceptedPerSec)
			}
		}
		stdout.Reset()
		if err := writeCurve(&stdout, &rep, false); err != nil || !strings.Contains(stdout.String(), rep.Curve+" curve") {
			t.Errorf("text report (%v):\n%s", err, stdout.String())
		}
		return rep
	}

	t.Run("projects", func(t *testing.T) {
		// 320 cached projects: 10 in each of the cache's 32 shards.
		rep := curve(t, "managed: {cache: {max_projects: 320}}\n", "--projects-sweep", "5,2000", "--requests", "3000")
		if len(rep.Points) != 2 {
			t.Fatalf("%d points", len(rep.Points))
		}
		few, many := rep.Points[0], rep.Points[1]
		if few.Load.Accepted != 3000 || few.CachedPeak != 5 || few.FetchedConfigs != 5 {
			t.Errorf("5 keys: accepted %d, cached %d, %d configs fetched; want 3000, 5, 5", few.Load.Accepted, few.CachedPeak, few.FetchedConfigs)
		}
		// About 1,500 distinct keys in 3,000 requests, 320 cached at most:
		// most requests fetch their key again.
		if many.Load.Accepted != 3000 || many.CachedPeak > 320 || many.FetchedConfigs < 1000 {
			t.Errorf("2000 keys: accepted %d, cached %d, %d configs fetched; want 3000, ≤ 320, ≥ 1000", many.Load.Accepted, many.CachedPeak, many.FetchedConfigs)
		}
	})

	t.Run("metrics", func(t *testing.T) {
		rep := curve(t, "metrics: {bucket_interval: 1s, initial_delay: 0s, max_project_bytes: 1MiB}\n",
			"--metrics-sweep", "10,100k", "--metric-lines", "100", "--requests", "300")
		if len(rep.Points) != 2 {
			t.Fatalf("%d points", len(rep.Points))
		}
		for _, p := range rep.Points {
			// Every line is one bucket inserted into the aggregator.
			if a := p.Final.Aggregator; p.Load.Accepted != 300 || a == nil || a.Inserted != 30000 || p.CPUMicrosLine <= 0 || p.LinesPerSec <= 0 {
				t.Errorf("%d series: accepted %d, aggregator %+v, %.2f µs/line, %.0f lines/s", p.Distinct, p.Load.Accepted, a, p.CPUMicrosLine, p.LinesPerSec)
			}
		}
		few, many := rep.Points[0], rep.Points[1]
		if few.FlushedEarly != 0 || few.BucketsPeak > 10*8 {
			t.Errorf("10 series: %d buckets at most, %d flushed early; want ≤ 80 (a few windows) and 0", few.BucketsPeak, few.FlushedEarly)
		}
		if many.FlushedEarly == 0 || many.AggBytesPeak > 2<<20 {
			t.Errorf("100k series: %d flushed early, %d bytes at most; want some, within twice the 1 MiB budget", many.FlushedEarly, many.AggBytesPeak)
		}
	})
}
