package main

import (
	"errors"
	"fmt"
	"math"
	"runtime/debug"

	"github.com/KimMachineGun/automemlimit/memlimit"

	"github.com/baton-relay/baton/config"
)

const (
	// cgroupShare is the part of a cgroup's memory limit given to Go:
	// stacks, the binary and the kernel's page tables need the rest.
	cgroupShare = 0.9
	// pebbleCache is Pebble's default block cache, which the buffer keeps.
	pebbleCache = 8 << 20
)

// memoryLimit is the Go runtime's soft memory limit Baton runs with.
type memoryLimit struct {
	bytes int64  // 0: none
	why   string // where it came from, for the start-up line
}

func (m memoryLimit) String() string {
	if m.bytes == 0 {
		return "none (" + m.why + ")"
	}
	return fmt.Sprintf("%s (%s)", config.ByteSize(m.bytes), m.why)
}

// limitSources are what decideMemoryLimit reads: the environment and the
// cgroup's memory limit (memlimit.ErrNoLimit when there is none).
type limitSources struct {
	env    func(string) (string, bool)
	cgroup func() (uint64, error)
	cgo    bool // Pebble allocates its memtables and cache outside the Go heap
}

// decideMemoryLimit picks the limit: GOMEMLIMIT if set (the runtime applied
// it already), else runtime.memory_limit, else 90% of the cgroup's limit
// less what a cgo build keeps outside the Go heap, else none. Without a
// limit Go lets its heap grow to twice what is live; in a static build the
// memtables are on that heap, so a container without --memory and without
// runtime.memory_limit peaked at 1.3–1.9× the memory of a cgo build in the
// benchmark (BENCHMARKS.md).
func decideMemoryLimit(cfg config.Config, src limitSources) (memoryLimit, error) {
	if v, ok := src.env("GOMEMLIMIT"); ok && v != "" { // the runtime ignores an empty one too
		m := memoryLimit{bytes: debug.SetMemoryLimit(-1), why: "GOMEMLIMIT=" + v}
		if m.bytes == math.MaxInt64 { // GOMEMLIMIT=off
			m.bytes = 0
		}
		return m, nil
	}
	if l := cfg.Runtime.MemoryLimit; l > 0 {
		return memoryLimit{bytes: int64(l), why: "runtime.memory_limit"}, nil
	}
	cg, err := src.cgroup()
	// FromCgroup reports v1's "unlimited" and v2's "max" as ErrNoLimit.
	if errors.Is(err, memlimit.ErrNoLimit) || errors.Is(err, memlimit.ErrNoCgroup) ||
		errors.Is(err, memlimit.ErrCgroupsNotSupported) {
		return memoryLimit{why: "no cgroup memory limit; runtime.memory_limit sets one"}, nil
	}
	if err != nil {
		return memoryLimit{why: "cgroup memory limit unreadable; runtime.memory_limit sets one"},
			fmt.Errorf("read the cgroup's memory limit: %w", err)
	}
	limit := int64(float64(cg) * cgroupShare)
	why := fmt.Sprintf("%.0f%% of the cgroup's %s", cgroupShare*100, config.ByteSize(cg))
	if src.cgo {
		// Pebble stops writes at 2 memtables in use (MemTableStopWritesThreshold)
		// and keeps one more for recycling.
		off := 3*int64(cfg.Buffer.MemtableSize) + pebbleCache
		limit -= off
		why += fmt.Sprintf(", less %s that Pebble keeps outside the Go heap", config.ByteSize(off))
	}
	limit &^= 1<<20 - 1 // whole MiB, to read well
	if limit < int64(config.MinMemoryLimit) {
		// A limit below the live heap would keep the collector running
		// without pause; better none, and say why.
		why = fmt.Sprintf("%s leaves less than %s for Go", why, config.MinMemoryLimit)
		return memoryLimit{why: why + "; runtime.memory_limit sets one"},
			fmt.Errorf("the cgroup's memory limit (%s) is too small to derive one: %s", config.ByteSize(cg), why)
	}
	return memoryLimit{bytes: limit, why: why}, nil
}

// apply sets the limit in the runtime (GOMEMLIMIT is already in force).
func (m memoryLimit) apply() {
	if m.bytes > 0 {
		debug.SetMemoryLimit(m.bytes)
	}
}
