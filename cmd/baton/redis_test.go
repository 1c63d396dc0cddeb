package main

import (
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestRedisUsage: a verb is required, the argument count is checked, and
// no address is a usage error.
func TestRedisUsage(t *testing.T) {
	for _, args := range [][]string{{"redis"}, {"redis", "wipe"}, {"redis", "put-config", "k", "quotas"}, {"redis", "get-config"}} {
		if code, _, errs := runCLI(t, args...); code != exitUsage || !strings.Contains(errs, "Usage") {
			t.Errorf("%v: exit %d, want %d with the usage\n%s", args, code, exitUsage, errs)
		}
	}
	if code, _, errs := runCLI(t, "redis", "get-config", "k"); code != exitUsage || !strings.Contains(errs, "no Redis address") {
		t.Errorf("no address: exit %d\n%s", code, errs)
	}
}

// TestRedisPutGetConfig: put-config refuses a part that would be broken,
// stores a good one with its revision, get-config shows it, delete-config
// removes it.
func TestRedisPutGetConfig(t *testing.T) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		if os.Getenv("BATON_REQUIRE_REDIS") != "" {
			t.Fatal("redis-server not found and BATON_REQUIRE_REDIS is set")
		}
		t.Skip("redis-server not installed")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	addr := "127.0.0.1:" + strconv.Itoa(port)
	cmd := exec.Command("redis-server", "--bind", "127.0.0.1", "--port", strconv.Itoa(port), "--save", "", "--appendonly", "no", "--dir", t.TempDir())
	must(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	for deadline := time.Now().Add(10 * time.Second); ; {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("redis-server did not listen")
		}
		time.Sleep(10 * time.Millisecond) // polling the server's start, with a deadline
	}
	dir := t.TempDir()
	good, bad := dir+"/good.json", dir+"/bad.json"
	must(t, os.WriteFile(good, []byte(`{"quotas":[{"id":"q","scope":"project","limit":0}]}`), 0o600))
	must(t, os.WriteFile(bad, []byte(`{"quotas":[{"scope":"galaxy"}]}`), 0o600))
	if code, _, errs := runCLI(t, "redis", "put-config", "--redis", addr, "--prefix", "p", "k1", "quotas", bad); code != exitError || !strings.Contains(errs, "unknown scope") {
		t.Errorf("bad part: exit %d\n%s", code, errs)
	}
	code, out, errs := runCLI(t, "redis", "put-config", "--redis", addr, "--prefix", "p", "--rev", "r7", "k1", "quotas", good)
	if code != exitOK || !strings.Contains(out, "p:k1:quotas rev r7, published on p:updates") {
		t.Fatalf("put: exit %d\n%s%s", code, out, errs)
	}
	code, out, _ = runCLI(t, "redis", "get-config", "--redis", addr, "--prefix", "p", "k1")
	if code != exitOK || !strings.Contains(out, `"rev": "r7"`) || !strings.Contains(out, `"limit": 0`) {
		t.Errorf("get: exit %d\n%s", code, out)
	}
	if code, _, errs := runCLI(t, "redis", "delete-config", "--redis", addr, "--prefix", "p", "k1", "quotas"); code != exitOK {
		t.Fatalf("delete: exit %d\n%s", code, errs)
	}
	if code, _, errs := runCLI(t, "redis", "get-config", "--redis", addr, "--prefix", "p", "k1", "quotas"); code != exitError || !strings.Contains(errs, "no part") {
		t.Errorf("get after delete: exit %d\n%s", code, errs)
	}
}
