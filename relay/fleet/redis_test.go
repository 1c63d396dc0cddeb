package fleet

import (
	"context"
	"net"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisServer is a redis-server the test started on a free loopback port.
type redisServer struct {
	Addr string
	cmd  *exec.Cmd
	args []string
}

// startRedis starts redis-server (Debian's package) on 127.0.0.1 and a free
// port, or skips the test without it (fails with BATON_REQUIRE_REDIS=1).
func startRedis(t testing.TB, extra ...string) *redisServer {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		if os.Getenv("BATON_REQUIRE_REDIS") != "" {
			t.Fatal("redis-server not found and BATON_REQUIRE_REDIS is set")
		}
		t.Skip("redis-server not installed (apt-get install redis-server)")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	s := &redisServer{Addr: "127.0.0.1:" + strconv.Itoa(port),
		args: append([]string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", t.TempDir()}, extra...)}
	s.Start(t)
	t.Cleanup(s.Kill)
	return s
}

// Start (re)starts the server and waits until it answers PING.
func (s *redisServer) Start(t testing.TB) {
	t.Helper()
	s.cmd = exec.Command("redis-server", s.args...)
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(&redis.Options{Addr: s.Addr, MaxRetries: -1, DisableIdentity: true})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := c.Ping(context.Background()).Err()
		if err == nil || (err.Error() != "" && isAuthErr(err)) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis-server on %s did not answer: %v", s.Addr, err)
		}
		time.Sleep(10 * time.Millisecond) // polling the server's start, with a deadline
	}
}

func isAuthErr(err error) bool {
	e := err.Error()
	return len(e) >= 6 && (e[:6] == "NOAUTH" || e[:8] == "WRONGPAS")
}

// Kill ends the server at once.
func (s *redisServer) Kill() {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Kill()
		_ = s.cmd.Wait()
		s.cmd = nil
	}
}
