package relay

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/baton-relay/baton/config"
	"github.com/baton-relay/baton/relay/internal/testutil"
	"github.com/baton-relay/baton/relay/project"
)

// TestRedisConfigsFetcher: keys with a keys part in Redis are answered from
// it (sourced "redis"), the others asked upstream with their revisions;
// with Redis down, a key last served from Redis is not asked upstream
// (it waits, its config serving through grace) while the others are.
func TestRedisConfigsFetcher(t *testing.T) {
	rs := testutil.StartRedis(t)
	c := config.Default()
	c.Redis.Addresses = []string{rs.Addr}
	c.Redis.ProjectConfigs.Enabled = true
	src, err := OpenRedisConfigs(c.Redis, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	ctx := context.Background()
	if err := PutProjectConfig(ctx, src, "inredis", "keys", "1", []byte(`{"projectId":5,"publicKeys":[{"publicKey":"inredis"}]}`)); err != nil {
		t.Fatal(err)
	}
	var asked [][]string
	var askedRevs []*string
	upstream := func(_ context.Context, req *project.Request) (*project.Response, error) {
		asked = append(asked, slices.Clone(req.PublicKeys))
		askedRevs = append(askedRevs, req.Revisions...)
		resp := &project.Response{Configs: map[string]json.RawMessage{}}
		for _, k := range req.PublicKeys {
			resp.Configs[k] = json.RawMessage("null")
		}
		return resp, nil
	}
	r := &Relay{cfg: c, configs: src, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	fetch := r.redisConfigsFetcher(upstream)
	old := "r-up"
	resp, err := fetch(ctx, &project.Request{PublicKeys: []string{"inredis", "upstream"}, Revisions: []*string{nil, &old}})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Sources["inredis"] != redisSource || !strings.Contains(string(resp.Configs["inredis"]), `"projectId":5`) {
		t.Errorf("inredis: source %q config %s", resp.Sources["inredis"], resp.Configs["inredis"])
	}
	if len(asked) != 1 || !slices.Equal(asked[0], []string{"upstream"}) || askedRevs[0] == nil || *askedRevs[0] != "r-up" {
		t.Fatalf("upstream asked %v: want only [upstream] with its revision", asked)
	}
	if string(resp.Configs["upstream"]) != "null" {
		t.Errorf("upstream's answer lost: %s", resp.Configs["upstream"])
	}
	// Asked with the revision it has, a key from Redis is unchanged.
	var got struct{ Rev string }
	if err := json.Unmarshal(resp.Configs["inredis"], &got); err != nil || !strings.HasPrefix(got.Rev, project.PartsRevPrefix) {
		t.Fatalf("rev %q %v", got.Rev, err)
	}
	resp, err = fetch(ctx, &project.Request{PublicKeys: []string{"inredis"}, Revisions: []*string{&got.Rev}})
	if err != nil || !slices.Equal(resp.Unchanged, []string{"inredis"}) || len(resp.Configs) != 0 {
		t.Errorf("same revision: unchanged %v configs %d err %v; want unchanged", resp.Unchanged, len(resp.Configs), err)
	}

	rs.Kill()
	asked = nil
	fromRedis := project.PartsRevPrefix + "abc"
	resp, err = fetch(ctx, &project.Request{PublicKeys: []string{"inredis", "upstream"}, Revisions: []*string{&fromRedis, nil}})
	if err != nil || len(asked) != 1 || !slices.Equal(asked[0], []string{"upstream"}) {
		t.Fatalf("redis down: asked %v err %v; want only the upstream's key asked", asked, err)
	}
	if _, ok := resp.Configs["inredis"]; ok {
		t.Error("a key last served from redis was answered while redis is down")
	}
	asked = nil
	if _, err := fetch(ctx, &project.Request{PublicKeys: []string{"inredis"}, Revisions: []*string{&fromRedis}}); err == nil || len(asked) != 0 {
		t.Errorf("redis down, only redis keys: err %v, asked %v; want the read's error and no upstream request", err, asked)
	}
	if err := PutProjectConfig(ctx, src, "k", "nope", "", []byte(`{}`)); err == nil || !strings.Contains(err.Error(), "unknown part") {
		t.Errorf("unknown part: %v", err)
	}
	if err := PutProjectConfig(ctx, src, "k", "quotas", "", []byte(`{"filterSettings":{}}`)); err == nil || errors.Is(err, context.Canceled) {
		t.Errorf("a part holding another part's key was accepted: %v", err)
	}
}

// TestRedisClientOptionsLaid: a clientOptions part alone in Redis is laid
// over the upstream's config of its key (sourced "redis"), which is then
// always asked for whole; deleted, the upstream's config is served again.
func TestRedisClientOptionsLaid(t *testing.T) {
	rs := testutil.StartRedis(t)
	c := config.Default()
	c.Redis.Addresses = []string{rs.Addr}
	c.Redis.ProjectConfigs.Enabled = true
	src, err := OpenRedisConfigs(c.Redis, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	ctx := context.Background()
	if err := PutProjectConfig(ctx, src, "k", "clientOptions", "1", []byte(`{"clientOptions":{"version":1,"options":{"traces_sample_rate":0.5}}}`)); err != nil {
		t.Fatal(err)
	}
	var askedRevs []*string
	upstream := func(_ context.Context, req *project.Request) (*project.Response, error) {
		askedRevs = append(askedRevs[:0], req.Revisions...)
		return &project.Response{Configs: map[string]json.RawMessage{
			"k": json.RawMessage(`{"projectId":5,"rev":"u1","publicKeys":[{"publicKey":"k"}],"config":{"features":["f"]}}`),
		}}, nil
	}
	r := &Relay{cfg: c, configs: src, log: slog.New(slog.DiscardHandler)}
	fetch := r.redisConfigsFetcher(upstream)
	fetchState := func(rev string) (*project.State, string) {
		t.Helper()
		resp, err := fetch(ctx, &project.Request{PublicKeys: []string{"k"}, Revisions: []*string{&rev}})
		if err != nil {
			t.Fatal(err)
		}
		st, err := project.DecodeState(resp.Configs["k"])
		if err != nil {
			t.Fatalf("%s: %v", resp.Configs["k"], err)
		}
		return st, resp.Sources["k"]
	}
	st, source := fetchState("u1")
	if st.ClientOptions == nil || *st.ClientOptions.Options.TracesSampleRate != 0.5 || !slices.Equal(st.Features, []string{"f"}) || source != redisSource {
		t.Fatalf("laid: %+v from %q", st, source)
	}
	if len(askedRevs) != 1 || askedRevs[0] != nil {
		t.Errorf("asked upstream with %v, want no revision: an unchanged answer would drop the part", askedRevs)
	}
	if !strings.HasPrefix(st.Rev, "u1"+project.LaidRevMarker) {
		t.Errorf("rev %q", st.Rev)
	}

	if err := PutProjectConfig(ctx, src, "k", "clientOptions", "", nil); err != nil {
		t.Fatal(err)
	}
	st, source = fetchState(st.Rev)
	if st.ClientOptions != nil || st.Rev != "u1" || source != "" || askedRevs[0] != nil {
		t.Errorf("after the part was deleted: %+v from %q (asked with %v), want the upstream's config", st, source, askedRevs)
	}
}

// TestRedisConfigsParts: in managed mode with managed.parts, a Baton
// reads only those parts from Redis, and keys: a part it does not ask for
// is off in the config it assembles, as an upstream Baton would leave it
// out.
func TestRedisConfigsParts(t *testing.T) {
	rs := testutil.StartRedis(t)
	c := config.Default()
	c.Mode = config.ModeManaged
	c.Managed.Parts = []string{"quotas"}
	c.Redis.Addresses = []string{rs.Addr}
	c.Redis.ProjectConfigs.Enabled = true
	if got := redisParts(c).Names(); !slices.Equal(got, []string{"keys", "quotas"}) {
		t.Fatalf("parts read %v, want [keys quotas]", got)
	}
	all, err := OpenRedisConfigs(c.Redis, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { all.Close() })
	ctx := context.Background()
	for part, value := range map[string]string{
		"keys":    `{"projectId":5,"publicKeys":[{"publicKey":"parted"}]}`,
		"quotas":  `{"quotas":[{"id":"q","limit":7,"window":60}]}`,
		"filters": `{"filterSettings":{"webCrawlers":{"isEnabled":true}}}`,
	} {
		if err := PutProjectConfig(ctx, all, "parted", part, "1", []byte(value)); err != nil {
			t.Fatal(part, err)
		}
	}
	src, err := openRedisConfigs(c.Redis, redisParts(c), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	r := &Relay{cfg: c, configs: src, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	resp, err := r.redisConfigsFetcher(nil)(ctx, &project.Request{PublicKeys: []string{"parted"}})
	if err != nil {
		t.Fatal(err)
	}
	got := string(resp.Configs["parted"])
	if !strings.Contains(got, `"limit":7`) || strings.Contains(got, "webCrawlers") {
		t.Errorf("config %s: want the quotas part and not the filters part", got)
	}
}
