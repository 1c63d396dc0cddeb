package integration

import (
	"bytes"
	"compress/zlib"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/baton-relay/baton/relay"
	"github.com/baton-relay/baton/relay/outcome"
)

// replayEnvelope is a replay as the JS SDK sends it: a replay_event and a
// replay_recording whose payload is the segment header line and the
// zlib-compressed rrweb JSON.
func replayEnvelope(t *testing.T, replayID string, rrweb []byte) []byte {
	t.Helper()
	var rec bytes.Buffer
	rec.WriteString(`{"segment_id":0}` + "\n")
	w := zlib.NewWriter(&rec)
	w.Write(rrweb)
	w.Close()
	event := fmt.Sprintf(`{"type":"replay_event","replay_id":%q,"segment_id":0}`, replayID)
	var b bytes.Buffer
	fmt.Fprintf(&b, "{\"event_id\":%q}\n", replayID)
	fmt.Fprintf(&b, "{\"type\":\"replay_event\",\"length\":%d}\n%s\n", len(event), event)
	fmt.Fprintf(&b, "{\"type\":\"replay_recording\",\"length\":%d}\n%s\n", rec.Len(), rec.Bytes())
	return b.Bytes()
}

// rrweb returns n bytes of rrweb JSON; random makes it incompressible.
func rrweb(n int, random bool) []byte {
	fill := bytes.Repeat([]byte("a"), n)
	if random {
		rand.Read(fill)
		for i, c := range fill {
			fill[i] = 'a' + c%26
		}
	}
	b := append([]byte(`[{"type":3,"data":"`), fill...)
	return append(b, `"}]`...)
}

// httpStats reads /api/relay/stats/ the way an operator does.
func httpStats(t *testing.T, n *node) relay.Stats {
	t.Helper()
	resp, err := http.Get(n.url + "/api/relay/stats/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st relay.Stats
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatalf("stats: %v", err)
	}
	return st
}

// TestReplayLimits: limits.max_replay_uncompressed_size and
// max_replay_message_size drop a replay after the client got its 200, with
// outcome too_large, and let the replays under them through to Kafka.
func TestReplayLimits(t *testing.T) {
	n := startNode(t, "limits:\n  max_replay_uncompressed_size: 1MiB\n  max_replay_message_size: 64KiB\n")
	const (
		bomb  = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" // 2 MiB of rrweb in about 2 KiB
		large = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb" // 200 KiB of random letters: over 64 KiB compressed
		good  = "cccccccccccccccccccccccccccccccc" // 500 KiB rrweb, 1 KiB on the wire
	)
	// The good replay goes last: its stream is forwarded in order, so once
	// it is in the topic the two before it were dealt with.
	for _, c := range []struct {
		id   string
		body []byte
	}{
		{bomb, replayEnvelope(t, bomb, rrweb(2<<20, false))},
		{large, replayEnvelope(t, large, rrweb(200<<10, true))},
		{good, replayEnvelope(t, good, rrweb(500<<10, false))},
	} {
		status, resp, _ := post(t, n.url+"/api/1/envelope/", c.body, authHeader(testKey))
		if status != 200 || resp != `{"id":"`+c.id+`"}` {
			t.Fatalf("POST replay %s (%d bytes) = %d %s", c.id[:1], len(c.body), status, resp)
		}
	}
	var got []*kgo.Record
	consumeUntil(t, n.kafka, "baton.replay", 15*time.Second, func(recs []*kgo.Record) bool {
		got = recs
		for _, r := range recs {
			if bytes.Contains(r.Value, []byte(good)) {
				return true
			}
		}
		return false
	})
	for _, r := range got {
		if !bytes.Contains(r.Value, []byte(good)) {
			t.Errorf("a replay over a limit reached Kafka (%d bytes)", len(r.Value))
		}
	}
	if len(got) != 1 {
		t.Errorf("%d replay records in the topic, want 1", len(got))
	}

	deadline := time.Now().Add(10 * time.Second)
	st := httpStats(t, n)
	for !(st.Balanced && st.Pending == 0) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		st = httpStats(t, n)
	}
	replay := st.Classes["replay"]
	want := outcome.Count{Records: 2, Items: 4}
	if replay.Dropped["too_large"] != want || replay.Delivered != (outcome.Count{Records: 1, Items: 2}) || len(replay.Dropped) != 1 {
		t.Errorf("replay outcomes = %+v; want 2 records (4 items) dropped too_large and 1 delivered", replay)
	}
	if !st.Balanced {
		t.Errorf("stats not balanced: %+v", st)
	}
}
