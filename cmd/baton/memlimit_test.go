package main

import (
	"errors"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/KimMachineGun/automemlimit/memlimit"

	"github.com/baton-relay/baton/config"
)

func TestDecideMemoryLimit(t *testing.T) {
	const mib = 1 << 20
	noEnv := func(string) (string, bool) { return "", false }
	cgroup := func(n uint64, err error) func() (uint64, error) { return func() (uint64, error) { return n, err } }
	cfg := config.Default()
	cfg.Buffer.MemtableSize = 48 * mib
	withLimit := cfg
	withLimit.Runtime.MemoryLimit = 300 * mib

	for _, tc := range []struct {
		name  string
		cfg   config.Config
		src   limitSources
		bytes int64
		why   string
		err   bool
	}{
		{"configured", withLimit, limitSources{env: noEnv, cgroup: cgroup(1<<30, nil)}, 300 * mib, "runtime.memory_limit", false},
		{"no cgroup limit", cfg, limitSources{env: noEnv, cgroup: cgroup(0, memlimit.ErrNoLimit)}, 0, "no cgroup memory limit", false},
		{"not in a cgroup", cfg, limitSources{env: noEnv, cgroup: cgroup(0, memlimit.ErrNoCgroup)}, 0, "no cgroup memory limit", false},
		{"static build", cfg, limitSources{env: noEnv, cgroup: cgroup(512*mib, nil)}, 460 * mib, "90% of the cgroup's 512MiB", false},
		// 0.9 × 512 MiB = 460.8 MiB, less 3 × 48 MiB + 8 MiB = 152 MiB.
		{"cgo build", cfg, limitSources{env: noEnv, cgroup: cgroup(512*mib, nil), cgo: true}, 308 * mib, "less 152MiB that Pebble keeps outside the Go heap", false},
		// 0.9 × 256 MiB − 152 MiB = 78 MiB; 0.9 × 160 MiB − 152 MiB < 0.
		{"small cgroup, cgo", cfg, limitSources{env: noEnv, cgroup: cgroup(256*mib, nil), cgo: true}, 78 * mib, "less 152MiB", false},
		{"too small cgroup, cgo", cfg, limitSources{env: noEnv, cgroup: cgroup(160*mib, nil), cgo: true}, 0, "leaves less than 64MiB for Go", true},
		{"too small cgroup, static", cfg, limitSources{env: noEnv, cgroup: cgroup(64*mib, nil)}, 0, "90% of the cgroup's 64MiB leaves less than 64MiB", true},
		{"unreadable cgroup", cfg, limitSources{env: noEnv, cgroup: cgroup(0, errors.New("permission denied"))}, 0, "unreadable", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := decideMemoryLimit(tc.cfg, tc.src)
			if (err != nil) != tc.err || m.bytes != tc.bytes || !strings.Contains(m.why, tc.why) {
				t.Errorf("got %d bytes, %q, err %v; want %d bytes, a reason containing %q, error %v", m.bytes, m.why, err, tc.bytes, tc.why, tc.err)
			}
		})
	}

	// An empty GOMEMLIMIT is no limit to the runtime, and to Baton.
	empty := func(k string) (string, bool) { return "", k == "GOMEMLIMIT" }
	if m, _ := decideMemoryLimit(withLimit, limitSources{env: empty, cgroup: cgroup(1<<30, nil)}); m.bytes != 300*mib {
		t.Errorf("GOMEMLIMIT empty: got %d, %q; want runtime.memory_limit", m.bytes, m)
	}

	// GOMEMLIMIT is applied by the runtime at start; Baton reports it and
	// changes nothing, whatever the config says.
	prev := debug.SetMemoryLimit(200 * mib)
	defer debug.SetMemoryLimit(prev)
	env := func(k string) (string, bool) { return "200MiB", k == "GOMEMLIMIT" }
	m, err := decideMemoryLimit(withLimit, limitSources{env: env, cgroup: cgroup(1<<30, nil)})
	if err != nil || m.bytes != 200*mib || m.why != "GOMEMLIMIT=200MiB" || m.String() != "200MiB (GOMEMLIMIT=200MiB)" {
		t.Errorf("GOMEMLIMIT: got %d, %q, %v", m.bytes, m, err)
	}
}
