package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestSweepFlags(t *testing.T) {
	o, err := parseFlags([]string{"--url", "http://127.0.0.1:1,http://127.0.0.1:2", "--cpu-pid", "10, 20",
		"--sizes", "500,5k,50k,1m", "--connections-sweep", "1,16,64,256,1024"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(o.sizes, []int{500, 5000, 50_000, 1000_000}) || !slices.Equal(o.connSweep, []int{1, 16, 64, 256, 1024}) ||
		!slices.Equal(o.cpuPIDs, []int{10, 20}) || !slices.Equal(o.urls, []string{"http://127.0.0.1:1", "http://127.0.0.1:2"}) ||
		o.url != "http://127.0.0.1:1" || !o.sweeping() {
		t.Errorf("sizes %v, connections %v, cpu pids %v, urls %v (url %s)", o.sizes, o.connSweep, o.cpuPIDs, o.urls, o.url)
	}
	if o, err := parseFlags([]string{"--cpu-pid", "10"}, &bytes.Buffer{}); err != nil || o.sweeping() || !slices.Equal(o.cpuPIDs, []int{10}) {
		t.Errorf("--cpu-pid without a sweep: %v, %v", o.cpuPIDs, err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--sizes", "5q"}, "--sizes"},
		{[]string{"--sizes", "100"}, "--sizes"},
		{[]string{"--connections-sweep", "1,0"}, "--connections-sweep"},
		{[]string{"--cpu-pid", "x"}, "--cpu-pid"},
		{[]string{"--url", "http://127.0.0.1:1,http://127.0.0.1:2", "--cpu-pid", "1", "--sizes", "1k"}, "--cpu-pid"},
		{[]string{"--url", "http://127.0.0.1:1,http://127.0.0.1:2"}, "--url"},
		{[]string{"--url", "http://127.0.0.1:1,ftp://h", "--sizes", "1k"}, "--url"},
		{[]string{"--sizes", "1k", "--kafka", "127.0.0.1:9092"}, "--kafka"},
		{[]string{"--sizes", "1k", "--rss-pid", "1"}, "--rss-pid"},
		{[]string{"--sizes", "1k", "--mix", "fixtures"}, "--sizes"},
	} {
		var out, errb bytes.Buffer
		if code := run(context.Background(), tc.args, &out, &errb); code != 2 || !strings.Contains(errb.String(), tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and a message naming %s", tc.args, code, errb.String(), tc.want)
		}
	}
}

// The 1 MB point is an attachment envelope whose item lengths add up.
func TestAttachmentPayload(t *testing.T) {
	set, err := buildPayloads(mixSynthetic, synthSpec{count: 2, size: 1000_000, project: 1, key: strings.Repeat("a", 32), dsnHost: "h:1"}, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range set.items {
		if n := len(p.body); n < 990_000 || n > 1000_000 {
			t.Errorf("%s: %d bytes, want about 1 MB", p.name, n)
		}
		lines := bytes.SplitN(p.body, []byte("\n"), 5) // envelope header, event header, event, attachment header, the rest
		var att struct {
			Type   string `json:"type"`
			Length int    `json:"length"`
		}
		if err := json.Unmarshal(lines[3], &att); err != nil || att.Type != "attachment" {
			t.Fatalf("%s: fourth line %.80q is not an attachment item header: %v", p.name, lines[3], err)
		}
		if start := bytes.Index(p.body, lines[3]) + len(lines[3]) + 1; len(p.body)-start-1 != att.Length {
			t.Errorf("%s: attachment has %d bytes, header says %d", p.name, len(p.body)-start-1, att.Length)
		}
		if len(p.idOffsets) != 2 {
			t.Errorf("%s: %d event id placeholders, want 2 (envelope and event)", p.name, len(p.idOffsets))
		}
	}
}

// A short sweep against no-op servers: a row per point, each target at
// every point, CPU per request of the processes given and of the ceiling's
// child. No timing is asserted, only that the figures are there and sane.
func TestSweepAgainstNoop(t *testing.T) {
	a, err := startNoop("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := startNoop("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	self := strconv.Itoa(os.Getpid()) // the in-process servers run here
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"--url", a.URL() + "," + b.URL(), "--cpu-pid", self + "," + self, "--ceiling",
		"--sizes", "500,100k", "--connections-sweep", "1,4", "--duration", "300ms", "--pool", "2", "--json", "--quiet"}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr.String())
	}
	var rep sweepReport
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("report is not JSON: %v\n%s", err, stdout.String())
	}
	if len(rep.Targets) != 3 || !rep.Targets[2].Ceiling || rep.Targets[2].CPUPID == 0 {
		t.Fatalf("targets %+v, want t1, t2 and the ceiling's child", rep.Targets)
	}
	type pt struct{ size, conns int }
	var got []pt
	for _, p := range rep.Points {
		got = append(got, pt{p.SizeBytes, p.Connections})
		if p.AvgBodyBytes < p.SizeBytes*99/100 || p.AvgBodyBytes > p.SizeBytes*101/100 {
			t.Errorf("size %d: bodies of %d bytes", p.SizeBytes, p.AvgBodyBytes)
		}
		if len(p.Results) != 3 || p.FirstToSecond == nil || *p.FirstToSecond <= 0 {
			t.Fatalf("size %d conns %d: %d results, t1÷t2 %v", p.SizeBytes, p.Connections, len(p.Results), p.FirstToSecond)
		}
		for i, r := range p.Results {
			where := fmt.Sprintf("size %d conns %d %s", p.SizeBytes, p.Connections, r.Target)
			if r.AcceptedPerSec <= 0 || r.AcceptedMBPerSec <= 0 || r.P50 <= 0 || r.P99 < r.P50 || len(r.Runs) != 1 {
				t.Errorf("%s: %.0f req/s, %.1f MB/s, p50 %.2f p99 %.2f, %d runs", where, r.AcceptedPerSec, r.AcceptedMBPerSec, r.P50, r.P99, len(r.Runs))
			}
			if r.CPUMicros == nil || *r.CPUMicros < 0 || *r.CPUMicros > 1e6 {
				t.Errorf("%s: CPU per request %v", where, r.CPUMicros)
			}
			if (r.ToCeiling != nil) != (i < 2) {
				t.Errorf("%s: ratio to the ceiling %v", where, r.ToCeiling)
			}
			if p := r.Runs[0]; r.CPUMicros != nil && p.Sent > 0 && p.CPU.Seconds > 0 && math.Abs(*r.CPUMicros-p.CPU.Seconds*1e6/float64(p.Sent)) > 1e-6 {
				t.Errorf("%s: %.1f µs per request, but %.2f s over %d requests", where, *r.CPUMicros, p.CPU.Seconds, p.Sent)
			}
		}
	}
	if want := []pt{{500, 1}, {500, 4}, {100_000, 1}, {100_000, 4}}; !slices.Equal(got, want) {
		t.Errorf("points %v, want %v", got, want)
	}

	// The text table: a header and one row per point.
	stdout.Reset()
	code = run(context.Background(), []string{"--url", a.URL(), "--sizes", "1k", "--connections-sweep", "1,2,3",
		"--duration", "200ms", "--pool", "2", "--quiet"}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr.String())
	}
	var rows []string
	for l := range strings.Lines(stdout.String()) {
		if f := strings.Fields(l); len(f) > 3 && f[0] == "1k" {
			rows = append(rows, l)
		}
	}
	if len(rows) != 3 || !strings.Contains(stdout.String(), "req/s") || !strings.Contains(stdout.String(), "µs/req") {
		t.Errorf("want a header and 3 rows, got:\n%s", stdout.String())
	}
	for i, r := range rows {
		f := strings.Fields(r)
		if f[2] != strconv.Itoa(i+1) {
			t.Errorf("row %d is for %s connections: %s", i, f[2], r)
		}
		if v, err := strconv.ParseFloat(f[4], 64); err != nil || v <= 0 {
			t.Errorf("row %d: req/s %q", i, f[4])
		}
	}
}

// --cpu-pid without a sweep: each run and the medians carry the target's
// CPU per request, and the ceiling's child is measured too.
func TestCPUPerRequestPlainRun(t *testing.T) {
	noop, err := startNoop("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer noop.Close()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"--url", noop.URL(), "--cpu-pid", strconv.Itoa(os.Getpid()), "--ceiling",
		"--connections", "2", "--duration", "300ms", "--runs", "2", "--pool", "2", "--json", "--quiet"}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr.String())
	}
	var rep report
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("report is not JSON: %v\n%s", err, stdout.String())
	}
	for _, r := range rep.Runs {
		if r.Baton.CPU == nil || r.Baton.CPU.PID != os.Getpid() || r.Baton.CPU.Error != "" || r.Ceiling.CPU == nil || r.Ceiling.CPU.PID != rep.Ceiling.PID {
			t.Errorf("run %d: baton CPU %+v, ceiling CPU %+v", r.Run, r.Baton.CPU, r.Ceiling.CPU)
		}
	}
	if m := rep.Median; m == nil || m.CPUMicros == nil || m.CeilingCPUMicros == nil || *m.CPUMicros <= 0 {
		t.Errorf("medians %+v: want CPU per request of the target and of the ceiling", m)
	}
}
