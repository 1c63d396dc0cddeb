package main

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"time"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat:
// 100 on every Linux architecture Go supports (proc(5)).
const clockTicks = 100

// cpuReport is the CPU time a process spent during one run (utime + stime
// from /proc/<pid>/stat), per request answered in the run.
type cpuReport struct {
	PID int `json:"pid"`
	// Seconds of CPU (user + system) over the run; 10 ms resolution.
	Seconds float64 `json:"cpu_seconds"`
	// Cores is Seconds over the run's elapsed time.
	Cores float64 `json:"cores"`
	// MicrosPerRequest is Seconds over the requests the target answered
	// (2xx or not), in µs.
	MicrosPerRequest float64 `json:"us_per_request"`
	Error            string  `json:"error,omitempty"`
}

// cpuMeter reads a process's CPU time at the start and end of a run.
type cpuMeter struct {
	pid   int
	ticks uint64
	err   error
}

func startCPU(pid int) *cpuMeter {
	m := &cpuMeter{pid: pid}
	m.ticks, m.err = readCPUTicks(pid)
	return m
}

// stop returns the CPU the process spent since start, per answered request.
func (m *cpuMeter) stop(elapsed time.Duration, answered uint64) *cpuReport {
	r := &cpuReport{PID: m.pid}
	end, err := readCPUTicks(m.pid)
	if err = firstErr(m.err, err); err != nil {
		r.Error = err.Error()
		return r
	}
	r.Seconds = float64(end-m.ticks) / clockTicks
	r.Cores = r.Seconds / max(elapsed.Seconds(), 1e-9)
	if answered > 0 {
		r.MicrosPerRequest = r.Seconds * 1e6 / float64(answered)
	}
	return r
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// checkCPUPID fails early (before any load) when pid's CPU time cannot be read.
func checkCPUPID(pid int) error {
	if _, err := readCPUTicks(pid); err != nil {
		return fmt.Errorf("--cpu-pid %d: %w", pid, err)
	}
	return nil
}

// readCPUTicks returns utime + stime of pid, in clock ticks.
func readCPUTicks(pid int) (uint64, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, fmt.Errorf("read CPU time: %w", err)
	}
	return parseProcStat(data)
}

// parseProcStat reads utime (field 14) and stime (field 15) of a
// /proc/<pid>/stat line. The command name (field 2) is in parentheses and
// may hold spaces and ')', so fields are counted after its last ')'.
func parseProcStat(data []byte) (uint64, error) {
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc stat line without a command name: %.40q", data)
	}
	fields := bytes.Fields(data[i+1:]) // from field 3 (state) on
	if len(fields) < 13 {
		return 0, fmt.Errorf("/proc stat line has %d fields after the command, want at least 13", len(fields))
	}
	utime, err1 := strconv.ParseUint(string(fields[11]), 10, 64)
	stime, err2 := strconv.ParseUint(string(fields[12]), 10, 64)
	if err := firstErr(err1, err2); err != nil {
		return 0, fmt.Errorf("/proc stat utime/stime: %w", err)
	}
	return utime + stime, nil
}
