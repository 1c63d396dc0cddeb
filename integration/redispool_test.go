package integration

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// redisBlocked counts, per database, the clients of the redis-server at
// addr held on a script (the quota lease, EVALSHA or EVAL) by CLIENT
// PAUSE: flag b, from CLIENT LIST.
func redisBlocked(t *testing.T, addr string) map[int]int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	must(t, err)
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	_, err = conn.Write([]byte("*2\r\n$6\r\nCLIENT\r\n$4\r\nLIST\r\n"))
	must(t, err)
	r := bufio.NewReader(conn)
	head, err := r.ReadString('\n')
	must(t, err)
	n, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(head, "$")))
	if err != nil || !strings.HasPrefix(head, "$") {
		t.Fatalf("CLIENT LIST answered %q", head)
	}
	body := make([]byte, n)
	_, err = io.ReadFull(r, body)
	must(t, err)
	got := map[int]int{}
	for line := range strings.Lines(string(body)) {
		db, script, blocked := -1, false, false
		for f := range strings.FieldsSeq(line) {
			k, v, _ := strings.Cut(f, "=")
			switch k {
			case "db":
				db, _ = strconv.Atoi(v)
			case "cmd":
				script = v == "evalsha" || v == "eval"
			case "flags":
				blocked = strings.Contains(v, "b")
			}
		}
		if script && blocked {
			got[db]++
		}
	}
	return got
}

// fleetPoolSize (TestRedisFleet/pool_size) shows redis.pool_size bounding
// the connections a Baton opens to Redis. Two Batons, pool_size 1
// (database 1) and 4 (database 2), each get six events at once for six
// projects with quotas of their own (six windows, each decision a lease of
// one: 50/32) while Redis holds every script (CLIENT PAUSE WRITE; PING and
// CLIENT LIST still answer). CLIENT LIST, by database, shows how many
// decisions hold a connection of their own: 4 for pool_size 4 and, at that
// moment and throughout, 1 for pool_size 1, the other five waiting for the
// one connection. Once Redis resumes, every event is accepted.
func fleetPoolSize(t *testing.T, bin string) {
	start := time.Now()
	rs := startFleetRedis(t)
	s := newFakeSentry(t)
	const projects = 6
	key := func(i int) string { return strings.Repeat(fmt.Sprintf("%02d", 70+i), 16) }
	for i := range projects {
		fleetQuota(s, uint64(70+i), key(i), fmt.Sprintf("pool_%d", i), 50)
	}
	// max_wait at its bound: a held decision waits a second before it is
	// made locally; a burst the poll below missed is tried again.
	redisYAML := func(pool, db int) string {
		return fmt.Sprintf("redis: {addresses: [%q], pool_size: %d, db: %d, max_wait: 1s, probe_interval: 50ms}\n", rs.addr, pool, db)
	}
	nodes := []*fleetNode{startFleetNode(t, bin, s.url(), redisYAML(1, 1)), startFleetNode(t, bin, s.url(), redisYAML(4, 2))}
	// Every config asked for at once, then each node waits for all six
	// (fleetWarm's last call waits for configs ≥ 6 after its own post).
	for i, n := range nodes {
		for p := range projects - 1 {
			body := fmt.Sprintf("{\"dsn\":\"http://%s@h/%d\"}\n{\"type\":\"client_report\"}\n{\"timestamp\":1700000000,\"discarded_events\":[]}\n", key(p), 70+p)
			if code, resp, _ := post(t, fmt.Sprintf("%s/api/%d/envelope/", n.base, 70+p), []byte(body), authHeader(key(p))); code != 200 {
				t.Fatalf("warm-up of node %d: %d %s", i, code, resp)
			}
		}
	}
	fleetWarm(t, nodes, 70+projects-1, key(projects-1), projects)
	t.Logf("two Batons ready, configs cached: %v", time.Since(start).Round(time.Millisecond))
	c := crashClient(t)

	for attempt := 1; ; attempt++ {
		for i, n := range nodes {
			fakeWaitFor(t, 10*time.Second, func() bool { return n.metric(t, "baton_redis_up") == 1 },
				func() string { return fmt.Sprintf("node %d: redis not up: %+v", i, n.redis(t)) })
		}
		fleetRedisCmd(t, rs.addr, "CLIENT", "PAUSE", "30000", "WRITE")
		var wg sync.WaitGroup
		codes := make(chan int, 2*projects)
		for _, n := range nodes {
			for i := range projects {
				wg.Go(func() { codes <- fleetSend(c, n.base, 70+i, key(i), fmt.Sprintf("pool-%d-%d", attempt, i)) })
			}
		}
		// Poll until the pool_size 4 Baton holds 4 connections on scripts
		// (or its decisions gave up after max_wait: the burst is over).
		var seen map[int]int
		maxOne := 0
		deadline := time.Now().Add(5 * time.Second)
		for {
			seen = redisBlocked(t, rs.addr)
			maxOne = max(maxOne, seen[1])
			if seen[2] >= 4 || time.Now().After(deadline) {
				break
			}
		}
		fleetRedisCmd(t, rs.addr, "CLIENT", "UNPAUSE")
		wg.Wait()
		close(codes)
		for code := range codes {
			if code != 200 {
				t.Fatalf("attempt %d: an event answered %d; want every one accepted", attempt, code)
			}
		}
		if seen[2] > 4 || maxOne > 1 {
			t.Fatalf("attempt %d: %d connections on scripts with pool_size 4, up to %d with pool_size 1; want at most 4 and 1", attempt, seen[2], maxOne)
		}
		if seen[2] == 4 {
			if seen[1] != 1 {
				t.Fatalf("pool_size 1: %d connections on scripts while pool_size 4 had 4; want 1", seen[1])
			}
			t.Logf("attempt %d: 4 connections with pool_size 4, 1 with pool_size 1", attempt)
			return
		}
		if attempt == 3 {
			t.Fatalf("pool_size 4 never held 4 connections on scripts in %d attempts (last: %v)", attempt, seen)
		}
	}
}
