package integration

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// recreateSeq finds the sequence numbers of loadEnvelope payloads.
var recreateSeq = regexp.MustCompile(`"recreate-(\d+)"`)

// TestKafkaTopicRecreated deletes and recreates the topic Baton produces to
// while clients keep posting. franz-go refuses a recreated topic
// (UNKNOWN_TOPIC_ID) until it is purged from the client; Baton must purge it
// and go on producing to the new topic promptly, losing nothing it acked
// after the recreation.
func TestKafkaTopicRecreated(t *testing.T) {
	const topic = "baton.error"
	c := faultCluster(t, topic)
	addr := c.ListenAddrs()[0]
	// Four buffer partitions (the keys below spread over them) are four
	// forwarders producing to the topic at once: one recreation, seen by
	// all of them.
	n := startNode(t, "buffer:\n  partitions: 4\n"+faultKafkaYAML(addr, "1MiB", ""))

	// Load: two clients post numbered events until stopped, noting when
	// each was acked.
	var (
		mu    sync.Mutex
		acked = map[int]time.Time{}
		next  atomic.Int64
		stop  = make(chan struct{})
		wg    sync.WaitGroup
	)
	client := &http.Client{Timeout: 10 * time.Second}
	for range 2 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				seq := int(next.Add(1))
				body, _ := faultSeqEnvelope("recreate", seq)
				req, _ := http.NewRequest(http.MethodPost, n.url+"/api/42/envelope/", bytes.NewReader(body))
				for k, v := range authHeader(crashKey(seq)) {
					req.Header.Set(k, v)
				}
				resp, err := client.Do(req)
				if err != nil {
					t.Errorf("POST %d: %v", seq, err)
					return
				}
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					mu.Lock()
					acked[seq] = time.Now()
					mu.Unlock()
				}
				// A steady trickle, not a flood: the point is the stall.
				time.Sleep(2 * time.Millisecond)
			}
		})
	}
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		wg.Wait()
	}()

	// Some traffic reaches the first topic.
	fakeWaitFor(t, 10*time.Second, func() bool { return n.r.Stats().Classes["error"].Delivered.Records >= 50 },
		func() string {
			return fmt.Sprintf("delivered before the recreation: %+v", n.r.Stats().Classes["error"])
		})

	admCl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer admCl.Close()
	adm := kadm.NewClient(admCl)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := adm.DeleteTopic(ctx, topic); err != nil {
		t.Fatalf("delete %s: %v", topic, err)
	}
	if r, err := adm.CreateTopic(ctx, 3, 1, nil, topic); err != nil || r.Err != nil {
		t.Fatalf("create %s again: %v %v", topic, err, r.Err)
	}
	recreatedAt := time.Now()

	// The stall: from the recreation to the first record in the new topic.
	first := consume(t, addr, topic, 1, 60*time.Second)
	stall := time.Since(recreatedAt)
	t.Logf("first delivery into the recreated topic %s after its creation (%s)", stall.Round(time.Millisecond), recreateSeq.Find(first[0].Value))
	if stall > 5*time.Second && !raceEnabled {
		t.Errorf("producing resumed %s after the topic was recreated, want under 5s", stall.Round(time.Millisecond))
	}

	// More load on the new topic, then stop and settle.
	delivered := n.r.Stats().Classes["error"].Delivered.Records
	fakeWaitFor(t, 10*time.Second, func() bool { return n.r.Stats().Classes["error"].Delivered.Records >= delivered+50 },
		func() string { return fmt.Sprintf("after the recreation: %+v", n.r.Stats().Classes["error"]) })
	close(stop)
	wg.Wait()
	st := waitBalanced(t, n, 30*time.Second)
	e := st.Classes["error"]
	if len(e.Dropped) != 0 {
		t.Errorf("dropped across the recreation: %+v", e.Dropped)
	}
	mu.Lock()
	defer mu.Unlock()
	if e.Accepted.Records != int64(len(acked)) {
		t.Errorf("accepted %d records, clients saw %d acks", e.Accepted.Records, len(acked))
	}

	// Every envelope acked after the recreation is in the new topic.
	var want []int
	for seq, at := range acked {
		if at.After(recreatedAt) {
			want = append(want, seq)
		}
	}
	have := map[int]bool{}
	seen := 0
	recs := consumeUntil(t, addr, topic, 30*time.Second, func(recs []*kgo.Record) bool {
		for _, r := range recs[seen:] {
			if m := recreateSeq.FindSubmatch(r.Value); m != nil {
				seq, _ := strconv.Atoi(string(m[1]))
				have[seq] = true
			}
		}
		seen = len(recs)
		for _, seq := range want {
			if !have[seq] {
				return false
			}
		}
		return true
	})
	t.Logf("%d acked in all, %d after the recreation, %d records in the new topic; outcomes %+v", len(acked), len(want), len(recs), e)
}
