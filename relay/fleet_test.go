package relay

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/baton-relay/baton/config"
	"github.com/baton-relay/baton/relay/fleet"
	"github.com/baton-relay/baton/relay/internal/testutil"
)

// openTestFleet opens the counter of a redis: section given in YAML, as
// New does.
func openTestFleet(t *testing.T, redisYAML string) *fleet.Counter {
	t.Helper()
	cfg, err := config.Parse("test.yml", []byte(redisYAML))
	if err != nil {
		t.Fatal(err)
	}
	fc, err := openFleet(cfg.Redis, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fc.Close() })
	return fc
}

func fleetAdmitted(fc *fleet.Counter, key string, limit, n int64) int64 {
	now := time.Now().Unix()
	var ok int64
	for range n {
		if !fc.Add([]byte(key), limit, 3600, 1, now) {
			ok++
		}
	}
	return ok
}

// TestRedisSettings shows each redis: setting the fleet tests do not
// change the behaviour it names: key_prefix and db (where windows live),
// username (ACL auth), max_wait (how long a decision waits on a Redis that
// does not answer), dial_timeout (how long the first PING does),
// fallback_share (the local share while it does not answer).
func TestRedisSettings(t *testing.T) {
	rs := testutil.StartRedis(t)
	ctx := context.Background()
	admin := redis.NewClient(&redis.Options{Addr: rs.Addr, DisableIdentity: true})
	defer admin.Close()
	addr := "redis: {addresses: [" + rs.Addr + "]"

	t.Run("key_prefix", func(t *testing.T) {
		a, b := openTestFleet(t, addr+", key_prefix: one}"), openTestFleet(t, addr+", key_prefix: two}")
		if n := fleetAdmitted(a, "kp", 5, 10) + fleetAdmitted(b, "kp", 5, 10); n != 10 {
			t.Fatalf("two prefixes admitted %d of a limit of 5 each, want 10 (not shared)", n)
		}
		c := openTestFleet(t, addr+", key_prefix: one}")
		if n := fleetAdmitted(c, "kp", 5, 10); n != 0 {
			t.Fatalf("same prefix admitted %d more, want 0 (shared)", n)
		}
		if keys, _ := admin.Keys(ctx, "one:q:{0}:kp:*").Result(); len(keys) != 1 {
			t.Fatalf("keys under one:q:{0}:kp: %v", keys)
		}
	})
	t.Run("db", func(t *testing.T) {
		fc := openTestFleet(t, addr+", db: 3}")
		fleetAdmitted(fc, "dbkey", 5, 1)
		db3 := redis.NewClient(&redis.Options{Addr: rs.Addr, DB: 3, DisableIdentity: true})
		defer db3.Close()
		if keys, _ := db3.Keys(ctx, "baton:q:{0}:dbkey:*").Result(); len(keys) != 1 {
			t.Fatalf("db 3 holds %v, want the window", keys)
		}
		if keys, _ := admin.Keys(ctx, "baton:q:{0}:dbkey:*").Result(); len(keys) != 0 {
			t.Fatalf("db 0 holds %v", keys)
		}
	})
	t.Run("username", func(t *testing.T) {
		if err := admin.Do(ctx, "ACL", "SETUSER", "baton", "on", ">pw", "~*", "&*", "+@all").Err(); err != nil {
			t.Fatal(err)
		}
		if st := openTestFleet(t, addr+", username: baton, password: pw}").Stats(); !st.Up {
			t.Fatalf("user baton: %+v, want up", st)
		}
		if st := openTestFleet(t, addr+", username: other, password: pw}").Stats(); st.Up || !strings.Contains(st.LastError, "WRONGPASS") {
			t.Fatalf("user other: %+v, want down with WRONGPASS", st)
		}
	})
	t.Run("max_wait, dial_timeout and fallback_share", func(t *testing.T) {
		fast := openTestFleet(t, addr+", max_wait: 20ms, fallback_share: 4}")
		slow := openTestFleet(t, addr+", max_wait: 400ms, fallback_share: 2}")
		// Redis stops answering (SIGSTOP): connections stay open, replies
		// never come.
		if err := syscall.Kill(rs.Pid(), syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		defer syscall.Kill(rs.Pid(), syscall.SIGCONT)
		took := func(fc *fleet.Counter) time.Duration {
			start := time.Now()
			fleetAdmitted(fc, "mw", 100, 1)
			return time.Since(start)
		}
		if d := took(fast); d > 300*time.Millisecond {
			t.Errorf("max_wait 20ms: the decision took %v", d)
		}
		if d := took(slow); d < 400*time.Millisecond {
			t.Errorf("max_wait 400ms: the decision took %v, want at least 400ms", d)
		}
		// dial_timeout bounds the first PING of a Redis that does not answer.
		opened := func(yml string) time.Duration {
			start := time.Now()
			if st := openTestFleet(t, yml).Stats(); st.Up {
				t.Errorf("%s: up with Redis stopped", yml)
			}
			return time.Since(start)
		}
		if d := opened(addr + ", dial_timeout: 50ms}"); d > 500*time.Millisecond {
			t.Errorf("dial_timeout 50ms: Open took %v", d)
		}
		if d := opened(addr + ", dial_timeout: 700ms}"); d < 700*time.Millisecond {
			t.Errorf("dial_timeout 700ms: Open took %v, want at least 700ms", d)
		}
		// Now both count locally: 100/4 and 100/2, the first one included.
		if n := 1 + fleetAdmitted(fast, "mw", 100, 200); n != 25 {
			t.Errorf("fallback_share 4 admitted %d of 100, want 25", n)
		}
		if n := 1 + fleetAdmitted(slow, "mw", 100, 200); n != 50 {
			t.Errorf("fallback_share 2 admitted %d of 100, want 50", n)
		}
	})
}
