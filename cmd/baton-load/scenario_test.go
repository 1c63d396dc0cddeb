package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestScenarioFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--chain"}, "--baton"},
		{[]string{"--outage", "10s", "--baton", "b"}, "--rate"},
		{[]string{"--rate", "10"}, "--outage"},
		{[]string{"--chain", "--baton", "b", "--rate", "-1"}, "--rate"},
		{[]string{"--chain", "--outage", "1s", "--rate", "1", "--baton", "b"}, "separate"},
		{[]string{"--chain", "--baton", "b", "--cpu-pid", "1"}, "--cpu-pid"},
		{[]string{"--chain", "--baton", "b", "--sizes", "1k"}, "--sizes"},
		{[]string{"--outage", "1s", "--rate", "1", "--baton", "b", "--kafka", "127.0.0.1:1"}, "--kafka"},
		{[]string{"--outage", "1s", "--rate", "1", "--baton", "b", "--mix", "fixtures"}, "synthetic"},
		{[]string{"--outage", "-1s", "--rate", "1", "--baton", "b"}, "--outage"},
	} {
		var out, errb bytes.Buffer
		if code := run(context.Background(), tc.args, &out, &errb); code != 2 || !strings.Contains(errb.String(), tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and a message naming %s", tc.args, code, errb.String(), tc.want)
		}
	}
	o, err := parseFlags([]string{"--outage", "10m", "--rate", "2000", "--baton", "b"}, &bytes.Buffer{})
	if err != nil || o.drainTimeout != 20*60e9 {
		t.Errorf("--outage 10m: drain timeout %s, %v; want 20m (twice the outage)", o.drainTimeout, err)
	}
}

// buildBaton builds ./cmd/baton into a temporary directory.
func buildBaton(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	gomod := strings.TrimSpace(string(out))
	if err != nil || gomod == "" || gomod == os.DevNull {
		t.Fatalf("go env GOMOD: %q, %v", gomod, err)
	}
	bin := filepath.Join(t.TempDir(), "baton")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/baton")
	cmd.Dir = filepath.Dir(gomod)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/baton: %v\n%s", err, out)
	}
	return bin
}

// The two scenarios that start their own Batons, at a small scale, through
// the real baton binary: the figures must be there and consistent with what
// the Batons and Kafka counted; no timing is asserted but the drain
// outpacing the intake.
func TestScenariosThroughBaton(t *testing.T) {
	if testing.Short() {
		t.Skip("builds baton and runs two Batons for about 15 s")
	}
	bin := buildBaton(t)

	t.Run("chain", func(t *testing.T) {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), []string{"--baton", bin, "--chain", "--connections", "4", "--duration", "1s",
			"--runs", "2", "--pool", "2", "--json", "--quiet"}, &stdout, &stderr)
		if code != 0 {
			t.Fatalf("exit %d, stderr:\n%s", code, stderr.String())
		}
		var rep chainReport
		if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
			t.Fatalf("report is not JSON: %v\n%s", err, stdout.String())
		}
		if rep.Edge.PID == rep.Upstream.PID || rep.Edge.PID == 0 || rep.Edge.URL == rep.Upstream.URL || len(rep.Runs) != 2 {
			t.Fatalf("edge %+v, upstream %+v, %d runs", rep.Edge, rep.Upstream, len(rep.Runs))
		}
		for i, r := range rep.Runs {
			if r.Load.Accepted == 0 || r.KafkaErrors != int64(r.Load.SyntheticAccepted) || r.Load.Latency.P99 <= 0 {
				t.Errorf("run %d: accepted %d, %d in Kafka, p99 %.2f ms", i, r.Load.Accepted, r.KafkaErrors, r.Load.Latency.P99)
			}
			for name, c := range map[string]*cpuReport{"edge": r.EdgeCPU, "upstream": r.UpstreamCPU} {
				if c == nil || c.Error != "" || c.MicrosPerRequest <= 0 || c.Seconds <= 0 {
					t.Errorf("run %d: %s CPU %+v", i, name, c)
				}
			}
		}
		if m := rep.Median; m == nil || !m.DeliveredToKafka || m.EdgeMicros <= 0 || m.UpstreamMicros <= 0 || m.AcceptedPerSec <= 0 {
			t.Errorf("medians %+v", m)
		}
		stdout.Reset()
		if err := writeChain(&stdout, &rep, false); err != nil || !strings.Contains(stdout.String(), "upstr µs") {
			t.Errorf("text report (%v):\n%s", err, stdout.String())
		}
	})

	t.Run("outage", func(t *testing.T) {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), []string{"--baton", bin, "--outage", "4s", "--outage-after", "2s", "--rate", "200",
			"--connections", "8", "--pool", "2", "--json", "--quiet"}, &stdout, &stderr)
		if code != 0 {
			t.Fatalf("exit %d, stderr:\n%s\nstdout:\n%s", code, stderr.String(), stdout.String())
		}
		var rep outageReport
		if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
			t.Fatalf("report is not JSON: %v\n%s", err, stdout.String())
		}
		// At 200/s for 4 s, about 800 records wait: allow for a loaded machine.
		if rep.BacklogRecords < 400 || rep.DiskMBAtReturn <= rep.DiskMBBefore {
			t.Errorf("backlog at return %d records, disk %.2f MB → %.2f MB: want it grown", rep.BacklogRecords, rep.DiskMBBefore, rep.DiskMBAtReturn)
		}
		if rep.UpAtSeconds-rep.DownAtSeconds < 4 || rep.IntakePerSec < 100 || rep.IntakePerSec > 210 {
			t.Errorf("down %.1fs–%.1fs, intake %.0f/s", rep.DownAtSeconds, rep.UpAtSeconds, rep.IntakePerSec)
		}
		if !rep.Drained || rep.DrainPerSec <= rep.IntakePerSec || rep.DrainToIntake <= 1 {
			t.Errorf("drained %v in %.2fs at %.0f/s, %.2f× the intake", rep.Drained, rep.DrainSeconds, rep.DrainPerSec, rep.DrainToIntake)
		}
		if f := rep.Final; f.Pending != 0 || f.Delivered != f.Accepted || f.Accepted < int64(rep.Load.Accepted) {
			t.Errorf("final stats %+v, load accepted %d", f, rep.Load.Accepted)
		}
		phases := map[string]int{}
		for _, s := range rep.Samples {
			phases[s.Phase]++
			if s.RSSMB <= 0 {
				t.Errorf("sample %+v without RSS", s)
			}
		}
		if phases[phaseBefore] == 0 || phases[phaseOutage] < 8 || phases[phaseDrain] == 0 {
			t.Errorf("samples by phase %v", phases)
		}
		if rep.RSSMBMaxOutage < rep.RSSMBMinOutage || rep.RSSMBAtOutage <= 0 {
			t.Errorf("RSS during the outage %.1f–%.1f MB, at start %.1f", rep.RSSMBMinOutage, rep.RSSMBMaxOutage, rep.RSSMBAtOutage)
		}
		stdout.Reset()
		if err := writeOutage(&stdout, &rep, false); err != nil || !strings.Contains(stdout.String(), "× the intake") {
			t.Errorf("text report (%v):\n%s", err, stdout.String())
		}
	})
}
