package integration

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// A routed topic that a real cluster (kfake without auto-creation) does
// not have: with create_topics off its records stay buffered and the
// delivery error names the topic and the setting, then they are delivered
// once the topic exists; with create_topics on Baton creates it with the
// configured partitions and delivers.
func TestKafkaMissingTopics(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	broker := c.ListenAddrs()[0]
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	cfg := func(topic, create string) string {
		return fmt.Sprintf(`kafka:
  clusters:
    main:
      brokers: [%s]
      create_topics: %s
routes:
  default: {kafka: main, topic: %q}
`, broker, create, topic)
	}
	send := func(n *node, msg string) {
		t.Helper()
		body := fmt.Appendf(nil, "{}\n{\"type\":\"event\"}\n{\"message\":%q}\n", msg)
		if status, resp, _ := post(t, n.url+"/api/1/envelope/", body, authHeader("a7c3e9f1b5d24680ace13579bdf02468")); status != 200 {
			t.Fatalf("envelope: %d %s", status, resp)
		}
	}

	t.Run("off", func(t *testing.T) {
		logs := &crashLogBuf{}
		dir := t.TempDir()
		base := fmt.Sprintf("server: {listen: 127.0.0.1:0}\nbuffer: {dir: %s, reserve_bytes: 1MiB}\n", dir)
		n := runNode(t, loadConfig(t, base, cfg("missing.{class}", "{enabled: false}")), dir, logs)
		send(n, "waits for its topic")
		want := `kafka cluster \"main\" has no topic \"missing.error\": create it, or set kafka.clusters.main.create_topics.enabled`
		fakeWaitFor(t, 30*time.Second, func() bool { return strings.Contains(logs.String(), want) },
			func() string {
				return "no missing-topic error naming the setting in:\n" + crashTail(logs.String(), 2000)
			})
		if st := n.r.Stats(); st.Pending == 0 {
			t.Fatalf("nothing pending while the topic is missing: %+v", st)
		}
		if _, err := adm.CreateTopic(ctx, 1, 1, nil, "missing.error"); err != nil {
			t.Fatal(err)
		}
		recs := consume(t, broker, "missing.error", 1, 60*time.Second)
		if !strings.Contains(string(recs[0].Value), "waits for its topic") {
			t.Errorf("missing.error holds %q", recs[0].Value)
		}
	})

	t.Run("on", func(t *testing.T) {
		dir := t.TempDir()
		base := fmt.Sprintf("server: {listen: 127.0.0.1:0}\nbuffer: {dir: %s, reserve_bytes: 1MiB}\n", dir)
		n := runNode(t, loadConfig(t, base, cfg("created.{class}", "{enabled: true, partitions: 3, replication: 1}")), dir, nil)
		send(n, "creates its topic")
		recs := consume(t, broker, "created.error", 1, 30*time.Second)
		if !strings.Contains(string(recs[0].Value), "creates its topic") {
			t.Errorf("created.error holds %q", recs[0].Value)
		}
		td, err := adm.ListTopics(ctx, "created.error", "created.transaction")
		if err != nil {
			t.Fatal(err)
		}
		if p := len(td["created.error"].Partitions); p != 3 {
			t.Errorf("created.error has %d partitions, want create_topics.partitions 3", p)
		}
		if d, ok := td["created.transaction"]; ok && d.Err == nil {
			t.Errorf("created.transaction exists: topics are created when first produced to, not all at start")
		}
	})
}
