package fleet

import (
	"context"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/baton-relay/baton/relay/internal/testutil"
)

func openConfigs(t *testing.T, addr string) *Configs {
	t.Helper()
	c, err := OpenConfigs(ConfigsOptions{Addresses: []string{addr}, Prefix: "t:cfg", Parts: []string{"keys", "quotas", "filters"},
		ProbeInterval: 20 * time.Millisecond, DialTimeout: 200 * time.Millisecond, ReadTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestConfigsReadPut: Put stores a part under <prefix>:<key>:<part>, Read
// returns every part of several keys (nil for absent ones) in one
// pipeline, and Get one part.
func TestConfigsReadPut(t *testing.T) {
	rs := testutil.StartRedis(t)
	c := openConfigs(t, rs.Addr)
	ctx := context.Background()
	if c.Key("abc", "quotas") != "t:cfg:abc:quotas" || c.Channel() != "t:cfg:updates" {
		t.Fatalf("key %s channel %s", c.Key("abc", "quotas"), c.Channel())
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(c.Put(ctx, "abc", "keys", []byte(`{"value":1}`)))
	must(c.Put(ctx, "abc", "filters", []byte(`{"value":2}`)))
	must(c.Put(ctx, "def", "quotas", []byte(`{"value":3}`)))
	out, err := c.Read(ctx, []string{"abc", "def", "none"})
	must(err)
	want := [][]string{{`{"value":1}`, "", `{"value":2}`}, {"", `{"value":3}`, ""}, {"", "", ""}}
	for i := range want {
		for j := range want[i] {
			if string(out[i][j]) != want[i][j] || (want[i][j] == "") != (out[i][j] == nil) {
				t.Errorf("out[%d][%d] = %q, want %q", i, j, out[i][j], want[i][j])
			}
		}
	}
	must(c.Put(ctx, "abc", "filters", nil)) // delete
	if b, err := c.Get(ctx, "abc", "filters"); err != nil || b != nil {
		t.Errorf("deleted part: %q %v", b, err)
	}
	if b, _ := c.Get(ctx, "abc", "keys"); string(b) != `{"value":1}` {
		t.Errorf("Get keys = %q", b)
	}
	if c.Stats().Reads != 1 {
		t.Errorf("stats %+v", c.Stats())
	}
}

// TestConfigsWatch: a Put is seen by a watcher as its public key; with
// Redis killed the watcher resyncs (lost, then every lostEvery) and after
// Redis is back it subscribes again and resyncs once more, and updates
// flow again.
func TestConfigsWatch(t *testing.T) {
	rs := testutil.StartRedis(t)
	w, writer := openConfigs(t, rs.Addr), openConfigs(t, rs.Addr)
	ctx, cancel := context.WithCancel(context.Background())
	changed := make(chan string, 16)
	var resyncs atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.Watch(ctx, 30*time.Millisecond, func(k string) { changed <- k }, func() { resyncs.Add(1) })
	}()
	t.Cleanup(func() { cancel(); <-done })
	waitFor(t, "subscribed", func() bool { return w.Stats().Subscribed })
	if err := writer.Put(ctx, "k1", "quotas", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	select {
	case k := <-changed:
		if k != "k1" {
			t.Fatalf("changed %q, want k1", k)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no update within 5s")
	}
	rs.Kill()
	waitFor(t, "channel lost", func() bool { return !w.Stats().Subscribed })
	base := resyncs.Load()
	waitFor(t, "resyncs every lostEvery while lost", func() bool { return resyncs.Load() >= base+3 })
	rs.Start(t)
	waitFor(t, "subscribed again", func() bool { return w.Stats().Subscribed })
	if err := writer.Put(ctx, "k2", "quotas", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	select {
	case k := <-changed:
		if k != "k2" {
			t.Fatalf("changed %q, want k2", k)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no update within 5s after Redis came back")
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond) // polling an observable condition, with a deadline
	}
}

// TestConfigsWatchRefused: a user Redis refuses SUBSCRIBE (an ACL without
// the channel) still reads, and the watcher resyncs every lostEvery; once
// the ACL allows the channel the watcher subscribes and stops resyncing.
func TestConfigsWatchRefused(t *testing.T) {
	rs := testutil.StartRedis(t)
	admin := openConfigs(t, rs.Addr)
	ctx, cancel := context.WithCancel(context.Background())
	if err := admin.rdb.Do(ctx, "ACL", "SETUSER", "reader", "on", ">pw", "~*", "resetchannels", "+@all", "-subscribe").Err(); err != nil {
		t.Fatal(err)
	}
	w, err := OpenConfigs(ConfigsOptions{Addresses: []string{rs.Addr}, Username: "reader", Password: "pw", Prefix: "t:cfg",
		Parts: []string{"keys"}, ProbeInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	var resyncs atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.Watch(ctx, 30*time.Millisecond, func(string) {}, func() { resyncs.Add(1) })
	}()
	t.Cleanup(func() { cancel(); <-done })
	waitFor(t, "resyncs while SUBSCRIBE is refused", func() bool { return resyncs.Load() >= 3 })
	if st := w.Stats(); st.Subscribed || !strings.Contains(st.LastError, "NOPERM") {
		t.Errorf("stats %+v: want not subscribed, NOPERM", st)
	}
	if _, err := w.Read(ctx, []string{"k"}); err != nil {
		t.Errorf("reads must work without the channel: %v", err)
	}
	if err := admin.rdb.Do(ctx, "ACL", "SETUSER", "reader", "+subscribe", "allchannels").Err(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "subscribed once allowed", func() bool { return w.Stats().Subscribed })
	n := resyncs.Load()
	// Several lostEvery periods: at most the one resync of being back
	// (it may land just after Subscribed) may come, not one per period.
	time.Sleep(150 * time.Millisecond)
	if d := resyncs.Load() - n; d > 1 {
		t.Errorf("resynced %d times in 150ms while subscribed (lostEvery 30ms): the periodic refresh did not stop", d)
	}
}

// TestConfigsCluster: on a Redis Cluster (one node, every slot), a key's
// parts, in different slots, are read in one pipeline, and a Put reaches
// a watcher.
func TestConfigsCluster(t *testing.T) {
	dir := t.TempDir()
	rs := testutil.StartRedis(t, "--cluster-enabled", "yes", "--cluster-config-file", dir+"/nodes.conf")
	plain := openConfigs(t, rs.Addr)
	ctx, cancel := context.WithCancel(context.Background())
	if err := plain.rdb.Do(ctx, "CLUSTER", "ADDSLOTSRANGE", "0", "16383").Err(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "cluster ok", func() bool {
		s, _ := plain.rdb.Do(ctx, "CLUSTER", "INFO").Text()
		return strings.Contains(s, "cluster_state:ok")
	})
	c, err := OpenConfigs(ConfigsOptions{Addresses: []string{rs.Addr}, Cluster: true, Prefix: "t:cfg", Parts: []string{"keys", "quotas", "filters"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	changed := make(chan string, 4)
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.Watch(ctx, time.Hour, func(k string) { changed <- k }, func() {})
	}()
	t.Cleanup(func() { cancel(); <-done })
	waitFor(t, "subscribed", func() bool { return c.Stats().Subscribed })
	for _, part := range []string{"keys", "filters"} {
		if err := c.Put(ctx, "ck", part, []byte(`{"value":"`+part+`"}`)); err != nil {
			t.Fatal(err)
		}
	}
	out, err := c.Read(ctx, []string{"ck"})
	if err != nil {
		t.Fatal(err)
	}
	if string(out[0][0]) != `{"value":"keys"}` || out[0][1] != nil || string(out[0][2]) != `{"value":"filters"}` {
		t.Errorf("read %q", out[0])
	}
	select {
	case k := <-changed:
		if k != "ck" {
			t.Errorf("changed %q", k)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no update on the cluster")
	}
}

// BenchmarkConfigsRead: one batch of the cache's default size (500 keys,
// 10 parts each, 3 present) read in one pipeline.
func BenchmarkConfigsRead(b *testing.B) {
	rs := testutil.StartRedis(b)
	parts := []string{"keys", "client", "quotas", "filters", "sampling", "metrics", "features", "grouping", "clientOptions", "other"}
	c, err := OpenConfigs(ConfigsOptions{Addresses: []string{rs.Addr}, Parts: parts})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	keys := make([]string, 500)
	value := []byte(`{"rev":"1","value":{"quotas":[{"id":"q","scope":"project","limit":100,"window":60}]}}`)
	for i := range keys {
		keys[i] = strings.Repeat("k", 24) + strconv.Itoa(1000000+i)
		for _, p := range []string{"keys", "quotas", "filters"} {
			if err := c.rdb.Set(ctx, c.Key(keys[i], p), value, 0).Err(); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := c.Read(ctx, keys); err != nil {
			b.Fatal(err)
		}
	}
}

// TestConfigsReadBounds: a part longer than MaxPartBytes comes back cut to
// MaxPartBytes+1 bytes; a key of the wrong type fails only its part; keys
// beyond ReadKeys are read in further pipelines.
func TestConfigsReadBounds(t *testing.T) {
	rs := testutil.StartRedis(t)
	c, err := OpenConfigs(ConfigsOptions{Addresses: []string{rs.Addr}, Prefix: "t", Parts: []string{"keys", "quotas"}, MaxPartBytes: 10, ReadKeys: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(c.Put(ctx, "a", "keys", []byte(strings.Repeat("x", 100))))
	must(c.rdb.HSet(ctx, c.Key("a", "quotas"), "f", "v").Err())
	for _, k := range []string{"b", "c", "d", "e"} {
		must(c.Put(ctx, k, "quotas", []byte(k)))
	}
	out, err := c.Read(ctx, []string{"a", "b", "c", "d", "e"})
	must(err)
	if len(out[0][0]) != 11 {
		t.Errorf("a long part read %d bytes, want MaxPartBytes+1 = 11", len(out[0][0]))
	}
	if !strings.Contains(string(out[0][1]), "WRONGTYPE") {
		t.Errorf("a hash under a part key: %q", out[0][1])
	}
	for i, k := range []string{"b", "c", "d", "e"} {
		if string(out[i+1][1]) != k || out[i+1][0] != nil {
			t.Errorf("key %s: %q", k, out[i+1])
		}
	}
}
