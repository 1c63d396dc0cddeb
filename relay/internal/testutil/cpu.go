package testutil

import (
	"syscall"
	"testing"
	"time"
)

// CPUTime starts measuring the process's CPU time (user and system, every
// goroutine, the garbage collector's included); the function it returns
// reports it per op as "cpu-ns/op". On a machine shared with other work,
// ns/op is wall time and grows with the load; cpu-ns/op does not.
func CPUTime(b *testing.B) func() {
	start := cpuNow()
	return func() {
		if b.N > 0 {
			b.ReportMetric(float64((cpuNow()-start).Nanoseconds())/float64(b.N), "cpu-ns/op")
		}
	}
}

func cpuNow() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
