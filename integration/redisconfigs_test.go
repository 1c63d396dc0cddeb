package integration

import (
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// redisPutConfig runs `baton redis put-config` against addr.
func redisPutConfig(t *testing.T, bin, addr, key, part, value string) {
	t.Helper()
	cmd := exec.Command(bin, "redis", "put-config", "--redis", addr, key, part, "-")
	cmd.Stdin = strings.NewReader(value)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("baton redis put-config %s %s: %v\n%s", key, part, err, out)
	}
}

// cfgSend posts an error event with an Origin header and returns the
// status (0 for a transport error).
func cfgSend(c *http.Client, base string, pid int, key, msg, origin string) int {
	body := fmt.Sprintf("{\"dsn\":\"http://%s@h/%d\"}\n{\"type\":\"event\"}\n{\"message\":%q}\n", key, pid, msg)
	req, _ := http.NewRequest(http.MethodPost, fmt.Sprintf("%s/api/%d/envelope/", base, pid), strings.NewReader(body))
	for k, v := range authHeader(key) {
		req.Header.Set(k, v)
	}
	req.Header.Set("Origin", origin)
	res, err := c.Do(req)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode
}

// TestRedisProjectConfigs runs three baton processes reading project
// configs from one redis-server (redis.project_configs): the key's config
// comes from its parts in Redis, never from the upstream; a quotas part
// written with `baton redis put-config` is enforced by all three within
// a second (the update channel, not the 300s expiry); a quotas part that
// does not decode turns off only quotas (the client part's allowedDomains
// still refuses a foreign origin) and is counted as broken.
func TestRedisProjectConfigs(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the baton binary and redis-server")
	}
	rs := startFleetRedis(t)
	bin := crashBuildBaton(t)
	s := newFakeSentry(t)
	const pid, key = 73, "73737373737373737373737373737373"
	const ok, foreign = "https://ok.example", "https://foreign.example"
	redisPutConfig(t, bin, rs.addr, key, "keys", fmt.Sprintf(`{"projectId":%d,"organizationId":1,"publicKeys":[{"publicKey":%q,"numericId":1}]}`, pid, key))
	redisPutConfig(t, bin, rs.addr, key, "client", `{"allowedDomains":["`+ok+`"]}`)
	// fallback_refresh of an hour: only the update channel can make a
	// change visible within the test.
	redisYAML := fmt.Sprintf("redis: {addresses: [%q], project_configs: {enabled: true, fallback_refresh: 1h}}\n", rs.addr)
	var nodes []*fleetNode
	for range 3 {
		nodes = append(nodes, startFleetNode(t, bin, s.url(), redisYAML))
	}
	fleetWarm(t, nodes, pid, key, 1)
	c := crashClient(t)
	for i, n := range nodes {
		if code := cfgSend(c, n.base, pid, key, "before-ok", ok); code != 200 {
			t.Fatalf("node %d: allowed origin answered %d, want 200", i, code)
		}
		if code := cfgSend(c, n.base, pid, key, "before-foreign", foreign); code != 403 {
			t.Fatalf("node %d: foreign origin answered %d, want 403 (client part from Redis)", i, code)
		}
	}

	// A quota of 0 errors, written with the CLI: every node refuses within 1s.
	put := time.Now()
	redisPutConfig(t, bin, rs.addr, key, "quotas", `{"quotas":[{"id":"redis_q","categories":["error"],"scope":"project","limit":0,"reasonCode":"from_redis"}]}`)
	for i, n := range nodes {
		var code int
		fakeWaitFor(t, 10*time.Second, func() bool {
			code = cfgSend(c, n.base, pid, key, "limited", ok)
			return code == 429
		}, func() string { return fmt.Sprintf("node %d never refused after the quota was put (last %d)", i, code) })
		if took := time.Since(put); took > time.Second {
			t.Errorf("node %d enforced the new quota part %v after put-config, want within 1s", i, took.Round(time.Millisecond))
		}
	}
	t.Logf("three nodes enforce the quota part %v after put-config returned", time.Since(put).Round(time.Millisecond))

	// The quotas part broken (written past the CLI, which refuses it):
	// quotas are off, the client part still in force.
	fleetRedisCmd(t, rs.addr, "SET", "baton:config:"+key+":quotas", `{"rev":"q2","value":{"quotas":[{"scope":`)
	fleetRedisCmd(t, rs.addr, "PUBLISH", "baton:config:updates", key)
	for i, n := range nodes {
		fakeWaitFor(t, 10*time.Second, func() bool { return cfgSend(c, n.base, pid, key, "after-broken", ok) == 200 },
			func() string { return fmt.Sprintf("node %d still enforces the broken quotas part", i) })
		if code := cfgSend(c, n.base, pid, key, "after-broken-foreign", foreign); code != 403 {
			t.Errorf("node %d: foreign origin answered %d with a broken quotas part, want 403 (client part still in force)", i, code)
		}
		if b := n.metric(t, "baton_project_broken_parts_total"); b < 1 {
			t.Errorf("node %d: baton_project_broken_parts_total %v, want ≥ 1", i, b)
		}
		if got := strings.Count(n.stderr.String(), "part=quotas"); got != 1 {
			t.Errorf("node %d logged the broken quotas part %d times, want once:\n%s", i, got, crashTail(n.stderr.String(), 2000))
		}
	}
	for i, n := range nodes {
		if sub, upd := n.metric(t, "baton_redis_configs_subscribed"), n.metric(t, "baton_redis_config_updates_total"); sub != 1 || upd < 2 {
			t.Errorf("node %d: baton_redis_configs_subscribed %v, %v updates; want subscribed, ≥ 2", i, sub, upd)
		}
		_, b, err := crashGet(http.DefaultClient, n.metrics+"/api/status")
		if err != nil || !strings.Contains(string(b), `"project_configs":{"prefix":"baton:config","subscribed":true`) {
			t.Errorf("node %d: /api/status lacks redis.project_configs subscribed: %v %.600s", i, err, b)
		}
	}
	for _, r := range s.configRequests() {
		if strings.Contains(string(r.Body), key) {
			t.Fatalf("the upstream was asked for %s, whose config is in Redis: %s", key, r.Body)
		}
	}
	fakeWaitFor(t, 10*time.Second, func() bool { return deliveredTo(s, pid, "after-broken") == 3 },
		func() string {
			return fmt.Sprintf("%d of 3 events accepted after the break delivered", deliveredTo(s, pid, "after-broken"))
		})
}

// TestRedisProjectConfigsFallback: a Baton whose Redis user may read but
// not SUBSCRIBE (an ACL without the channel) still applies a changed part,
// by refreshing configs from Redis on use once they are
// redis.project_configs.fallback_refresh old; the keys live under a
// non-default prefix.
func TestRedisProjectConfigsFallback(t *testing.T) {
	rs := startFleetRedis(t)
	fleetRedisCmd(t, rs.addr, "ACL", "SETUSER", "reader", "on", ">pw", "~*", "resetchannels", "+@all", "-subscribe")
	s := newFakeSentry(t)
	const pid, key, prefix = 74, "74747474747474747474747474747474", "acme:cfg"
	set := func(part, value string) {
		fleetRedisCmd(t, rs.addr, "SET", prefix+":"+key+":"+part, `{"rev":"t","value":`+value+`}`)
	}
	set("keys", fmt.Sprintf(`{"projectId":%d,"publicKeys":[{"publicKey":%q}]}`, pid, key))
	n := startNode(t, managedYAML(s.url(), "")+fmt.Sprintf(`redis:
  addresses: [%q]
  username: reader
  password: pw
  probe_interval: 50ms
  project_configs: {enabled: true, prefix: %q, fallback_refresh: 300ms}
`, rs.addr, prefix))
	c := crashClient(t)
	fakeWaitFor(t, 10*time.Second, func() bool { return cfgSend(c, n.url, pid, key, "first", "") == 200 && n.r.Stats().Waiting == 0 },
		func() string { return "the config from redis was not used" })
	set("quotas", `{"quotas":[{"id":"q","categories":["error"],"scope":"project","limit":0}]}`)
	fleetRedisCmd(t, rs.addr, "PUBLISH", prefix+":updates", key) // not received: the ACL refuses the channel
	fakeWaitFor(t, 10*time.Second, func() bool { return cfgSend(c, n.url, pid, key, "limited", "") == 429 },
		func() string { return "the changed quotas part was never applied without the update channel" })
	// A key without a keys part in Redis is the upstream's.
	const pid2, key2 = 75, "75757575757575757575757575757575"
	s.setProject(key2, fakeSentryProjectState(pid2, key2, "r1", nil))
	if code := cfgSend(c, n.url, pid2, key2, "from-upstream", ""); code != 200 {
		t.Fatalf("a key only the upstream has: %d", code)
	}
	fakeWaitFor(t, 10*time.Second, func() bool { return deliveredTo(s, pid2, "from-upstream") == 1 },
		func() string { return "an event of a key only the upstream has was not delivered" })
	for _, r := range s.configRequests() {
		if strings.Contains(string(r.Body), key) {
			t.Errorf("the upstream was asked for %s, whose config is in redis: %s", key, r.Body)
		}
	}
}

// TestRedisProjectConfigsStatic: a static Baton serves its projects: and,
// for other projects, the configs kept in Redis (no upstream): a static
// project wins over Redis for its id, a key in Redis is enforced as its
// parts say, a key in neither is unknown.
func TestRedisProjectConfigsStatic(t *testing.T) {
	rs := startFleetRedis(t)
	const (
		pidS, keyS = 80, "80808080808080808080808080808080"
		pidR, keyR = 81, "81818181818181818181818181818181"
		pidU, keyU = 82, "82828282828282828282828282828282"
	)
	set := func(key, part, value string) {
		fleetRedisCmd(t, rs.addr, "SET", "baton:config:"+key+":"+part, `{"rev":"t","value":`+value+`}`)
	}
	quota0 := `{"quotas":[{"id":"q","categories":["error"],"scope":"project","limit":0}]}`
	for _, k := range []struct {
		pid int
		key string
	}{{pidS, keyS}, {pidR, keyR}} {
		set(k.key, "keys", fmt.Sprintf(`{"projectId":%d,"publicKeys":[{"publicKey":%q}]}`, k.pid, k.key))
		set(k.key, "quotas", quota0)
	}
	n := startNode(t, fmt.Sprintf("mode: static\nprojects: {\"%d\": {public_keys: [%s]}}\nredis: {addresses: [%q], project_configs: {enabled: true}}\n",
		pidS, keyS, rs.addr))
	c := crashClient(t)
	for range 3 {
		if code := cfgSend(c, n.url, pidS, keyS, "static", ""); code != 200 {
			t.Fatalf("the static project answered %d: its config must win over Redis's quota", code)
		}
	}
	fakeWaitFor(t, 10*time.Second, func() bool { return cfgSend(c, n.url, pidR, keyR, "redis", "") == 429 },
		func() string { return "the quota of the project in Redis was not enforced" })
	fakeWaitFor(t, 10*time.Second, func() bool { return cfgSend(c, n.url, pidU, keyU, "unknown", "") == 403 },
		func() string { return "a key in neither projects: nor Redis was not refused" })
}
