package testutil

import (
	"net"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"
)

// Redis is a redis-server (Debian's package) a test started on 127.0.0.1
// and a free port.
type Redis struct {
	Addr string
	args []string
	cmd  *exec.Cmd
}

// StartRedis starts redis-server with extra arguments, without persistence,
// and stops it when the test ends. Without the binary the test skips, or
// fails when BATON_REQUIRE_REDIS is set (CI installs it).
func StartRedis(tb testing.TB, extra ...string) *Redis {
	tb.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		if os.Getenv("BATON_REQUIRE_REDIS") != "" {
			tb.Fatal("redis-server not found and BATON_REQUIRE_REDIS is set (apt-get install redis-server)")
		}
		tb.Skip("redis-server not installed (apt-get install redis-server)")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	r := &Redis{Addr: "127.0.0.1:" + strconv.Itoa(port),
		args: append([]string{"--bind", "127.0.0.1", "--port", strconv.Itoa(port), "--save", "", "--appendonly", "no", "--dir", tb.TempDir()}, extra...)}
	r.Start(tb)
	tb.Cleanup(r.Kill)
	return r
}

// Start (re)starts the server on its port and waits until it accepts
// connections.
func (r *Redis) Start(tb testing.TB) {
	tb.Helper()
	r.cmd = exec.Command("redis-server", r.args...)
	if err := r.cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", r.Addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("redis-server did not listen on %s: %v", r.Addr, err)
		}
		time.Sleep(10 * time.Millisecond) // polling the server's start, with a deadline
	}
}

// Pid is the server process's id (to stop it with SIGSTOP).
func (r *Redis) Pid() int { return r.cmd.Process.Pid }

// Kill ends the server at once (SIGKILL).
func (r *Redis) Kill() {
	if r.cmd != nil {
		_ = r.cmd.Process.Kill()
		_ = r.cmd.Wait()
		r.cmd = nil
	}
}
