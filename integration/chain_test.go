package integration

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/baton-relay/baton/envelope"
)

// chainTopicOf is the topic each item type must reach, written out here
// rather than taken from Baton's classifier.
var chainTopicOf = map[string]string{
	"event":         "baton.error",
	"attachment":    "baton.error", // sent with its event
	"transaction":   "baton.transaction",
	"check_in":      "baton.check_in",
	"session":       "baton.session",
	"sessions":      "baton.session",
	"log":           "baton.log",
	"client_report": "baton.client_report",
}

// chainSent is one envelope as a client sent it to the edge.
type chainSent struct {
	body     []byte // decoded request body
	clientIP string // the address the edge saw, or the X-Forwarded-For sent
	client   string // sentry_client of the request
}

// chainRecorder is an http.RoundTripper that keeps every envelope the SDK
// sends before passing it on.
type chainRecorder struct {
	next *http.Transport
	mu   sync.Mutex
	sent []chainSent
	errs []error
}

func (c *chainRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	wire, err := io.ReadAll(req.Body)
	req.Body.Close()
	if err != nil {
		return nil, err
	}
	body, err := fakeDecode(req.Header.Get("Content-Encoding"), wire)
	c.mu.Lock()
	if err != nil {
		c.errs = append(c.errs, err)
	}
	c.sent = append(c.sent, chainSent{body: body, clientIP: "127.0.0.1", client: chainAuthClient(req.Header.Get("X-Sentry-Auth"))})
	c.mu.Unlock()
	req.Body = io.NopCloser(bytes.NewReader(wire))
	req.ContentLength = int64(len(wire))
	return c.next.RoundTrip(req)
}

// chainAuthClient returns the sentry_client of an X-Sentry-Auth value.
func chainAuthClient(auth string) string {
	for _, kv := range strings.Split(strings.TrimPrefix(auth, "Sentry "), ",") {
		if k, v, ok := strings.Cut(strings.TrimSpace(kv), "="); ok && k == "sentry_client" {
			return v
		}
	}
	return ""
}

// chainHeader decodes an envelope header without sent_at, which relays
// adjust by design.
func chainHeader(t *testing.T, raw []byte) (map[string]any, string) {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("envelope header %q: %v", raw, err)
	}
	sentAt, _ := m["sent_at"].(string)
	delete(m, "sent_at")
	return m, sentAt
}

// chainWant is one item expected in the Kafka topics of the last node.
type chainWant struct {
	topic   string
	typ     string
	payload []byte
	header  map[string]any // envelope header without sent_at
	sentAt  string
	from    chainSent
	seen    int
}

// TestThreeLayerChain: the real sentry-go SDK and raw envelopes go to an
// edge Baton (A), which forwards to a regional Baton (B), which forwards to
// a Baton (C) writing every class to Kafka. Every item reaches the topic of
// its class exactly once with identical payload bytes and envelope header
// (sent_at moves forward by the time spent in A and B), records are keyed
// by project id and carry the client's address in client_ip (and first in
// forwarded_for), and the
// three nodes account for the same records.
func TestThreeLayerChain(t *testing.T) {
	settleDialer(t)
	c := startNode(t, "")
	b := startNode(t, fakeUpstreamYAML("c", c.url, "default"))
	a := startNode(t, fakeUpstreamYAML("b", b.url, "default"))
	if c.kafka == "" {
		t.Fatal("the last node has no embedded broker")
	}
	if a.kafka != "" || b.kafka != "" {
		t.Errorf("nodes without kafka routes started a broker: A %q B %q", a.kafka, b.kafka)
	}

	// The SDK, through a recording transport.
	rec := &chainRecorder{next: &http.Transport{}}
	defer rec.next.CloseIdleConnections()
	runSDKScenario(t, sdkScenario{
		dsn:        "http://" + testKey + "@" + a.r.Addr().String() + "/42",
		transport:  rec,
		prefix:     "chain-test",
		attachment: "chain line one\nchain line two\n",
		tx:         "GET /chain",
		ops:        []string{"db.query", "http.client"},
		monitor:    "chain-nightly",
	})
	if len(rec.errs) > 0 {
		t.Fatalf("could not decode SDK requests: %v", rec.errs)
	}
	if len(rec.sent) < 4 {
		t.Fatalf("the SDK sent %d envelopes, want at least 4", len(rec.sent))
	}

	// Raw envelopes with classes the SDK does not send here, from a client
	// behind a proxy (X-Forwarded-For) and with binary attachment bytes.
	binary := make([]byte, 512)
	for i := range binary {
		binary[i] = byte(i * 7)
	}
	raws := [][]byte{
		[]byte("{\"sent_at\":\"2026-11-25T10:00:00.000Z\",\"sdk\":{\"name\":\"chain.raw\",\"version\":\"1.0\"}}\n" +
			"{\"type\":\"session\"}\n{\"sid\":\"5d0c1e4b8a2f4c6e9b3a7d1f0e2c4a6b\",\"did\":\"chain-user\",\"status\":\"ok\",\"init\":true,\"started\":\"2026-11-25T09:59:00Z\",\"attrs\":{\"release\":\"chain@1\"}}\n" +
			"{\"type\":\"log\",\"item_count\":2,\"content_type\":\"application/vnd.sentry.items.log+json\"}\n" +
			"{\"items\":[{\"timestamp\":1795600800.5,\"trace_id\":\"5b8efff798038103d269b633813fc60c\",\"level\":\"info\",\"body\":\"chain log one\"},{\"timestamp\":1795600801,\"trace_id\":\"5b8efff798038103d269b633813fc60c\",\"level\":\"warn\",\"body\":\"chain log two ✓\"}]}\n" +
			"{\"type\":\"client_report\"}\n{\"timestamp\":\"2026-11-25T10:00:00Z\",\"discarded_events\":[{\"reason\":\"queue_overflow\",\"category\":\"error\",\"quantity\":3}]}\n"),
		[]byte("{\"sent_at\":\"2026-11-25T10:00:01Z\"}\n" +
			"{\"type\":\"sessions\"}\n{\"aggregates\":[{\"started\":\"2026-11-25T09:00:00Z\",\"exited\":5,\"errored\":1}],\"attrs\":{\"release\":\"chain@1\",\"environment\":\"prod\"}}\n"),
		[]byte("{}\n{\"type\":\"log\",\"item_count\":1,\"content_type\":\"application/vnd.sentry.items.log+json\"}\n" +
			"{\"items\":[{\"timestamp\":1795600802,\"trace_id\":\"5b8efff798038103d269b633813fc60c\",\"level\":\"error\",\"body\":\"chain log, no envelope header fields\"}]}\n"),
		append(append([]byte("{\"event_id\":\"c4a1f00d0000400080000000000000aa\",\"sent_at\":\"2026-11-25T10:00:02Z\"}\n"+
			"{\"type\":\"event\"}\n{\"message\":\"chain-test: raw event with a binary attachment\",\"level\":\"error\"}\n"+
			fmt.Sprintf("{\"type\":\"attachment\",\"length\":%d,\"filename\":\"blob.bin\",\"content_type\":\"application/octet-stream\"}\n", len(binary))),
			binary...), '\n'),
	}
	hdr := map[string]string{
		"X-Sentry-Auth":   "Sentry sentry_key=" + testKey + ", sentry_version=7, sentry_client=baton-test/1.0",
		"X-Forwarded-For": "203.0.113.7",
	}
	sent := append([]chainSent(nil), rec.sent...)
	for i, body := range raws {
		status, resp, _ := post(t, a.url+"/api/42/envelope/", body, hdr)
		if status != 200 {
			t.Fatalf("raw envelope %d: POST = %d %s", i, status, resp)
		}
		sent = append(sent, chainSent{body: body, clientIP: "203.0.113.7", client: "baton-test/1.0"})
	}

	// What must arrive where.
	var wants []*chainWant
	topics := map[string]bool{}
	for _, s := range sent {
		env, err := envelope.Parse(s.body)
		if err != nil {
			t.Fatalf("a sent envelope does not parse: %v\n%s", err, s.body)
		}
		h, sentAt := chainHeader(t, env.Header.Raw)
		for _, it := range env.Items {
			topic, ok := chainTopicOf[it.TypeName]
			if !ok {
				t.Fatalf("the test does not know where item type %q goes", it.TypeName)
			}
			topics[topic] = true
			wants = append(wants, &chainWant{topic: topic, typ: it.TypeName, payload: bytes.Clone(it.Payload), header: h, sentAt: sentAt, from: s})
		}
	}
	for _, typ := range []string{"event", "attachment", "transaction", "check_in", "session", "sessions", "log", "client_report"} {
		found := false
		for _, w := range wants {
			found = found || w.typ == typ
		}
		if !found {
			t.Errorf("nothing of type %s was sent: the test lost coverage", typ)
		}
	}

	// The chain drains, node by node, and the nodes agree on what passed.
	sa := waitBalanced(t, a, 20*time.Second)
	sb := waitBalanced(t, b, 20*time.Second)
	sc := waitBalanced(t, c, 20*time.Second)
	for class, ca := range sa.Classes {
		cb, cc := sb.Classes[class], sc.Classes[class]
		if ca.Accepted != cb.Accepted || cb.Accepted != cc.Accepted || cc.Delivered != cc.Accepted ||
			ca.Delivered != ca.Accepted || cb.Delivered != cb.Accepted {
			t.Errorf("class %s: A %+v, B %+v, C %+v", class, ca, cb, cc)
		}
	}
	if len(sa.Classes) != len(sc.Classes) || sa.Dropped+sb.Dropped+sc.Dropped != 0 {
		t.Errorf("classes A %v C %v; dropped A %d B %d C %d", sa.Classes, sc.Classes, sa.Dropped, sb.Dropped, sc.Dropped)
	}

	// Every record of every topic, parsed and matched against what was sent.
	sortedTopics := make([]string, 0, len(topics))
	for topic := range topics {
		sortedTopics = append(sortedTopics, topic)
	}
	sort.Strings(sortedTopics)
	records := map[string][]*kgo.Record{}
	for _, topic := range sortedTopics {
		class := strings.TrimPrefix(topic, "baton.")
		n := int(sc.Classes[class].Delivered.Records)
		recs := consume(t, c.kafka, topic, n, 15*time.Second)
		if len(recs) != n {
			t.Errorf("%s: %d records, C delivered %d", topic, len(recs), n)
		}
		records[topic] = recs
		for _, r := range recs {
			chainCheckRecord(t, topic, class, r, wants)
		}
	}
	for _, w := range wants {
		if w.seen != 1 {
			t.Errorf("%s item (%d bytes) from %s arrived %d times in %s, want exactly once", w.typ, len(w.payload), w.from.client, w.seen, w.topic)
		}
	}

	t.Run("kcat", func(t *testing.T) { chainKcat(t, c.kafka, sortedTopics, records) })
}

// chainCheckRecord matches each item of a record to the wanted item with
// the same topic and payload, and checks the record's key and headers and
// envelope header against the envelope the item was sent in.
func chainCheckRecord(t *testing.T, topic, class string, r *kgo.Record, wants []*chainWant) {
	t.Helper()
	env, err := envelope.Parse(r.Value)
	if err != nil {
		t.Errorf("%s: record at offset %d is not an envelope: %v", topic, r.Offset, err)
		return
	}
	if string(r.Key) != "42" || header(r, "project_id") != "42" || header(r, "public_key") != testKey || header(r, "class") != class {
		t.Errorf("%s: record key %q headers %v", topic, r.Key, r.Headers)
	}
	h, sentAt := chainHeader(t, env.Header.Raw)
	for _, it := range env.Items {
		var w *chainWant
		for _, cand := range wants {
			if cand.topic == topic && cand.typ == it.TypeName && bytes.Equal(cand.payload, it.Payload) {
				w = cand
				break
			}
		}
		if w == nil {
			t.Errorf("%s: an item of type %s (%d bytes) that nobody sent, or altered: %.200q", topic, it.TypeName, len(it.Payload), it.Payload)
			continue
		}
		w.seen++
		if !reflect.DeepEqual(h, w.header) {
			t.Errorf("%s: envelope header changed on the way: got %s", topic, env.Header.Raw)
		}
		if w.sentAt != "" {
			orig, err1 := time.Parse(time.RFC3339Nano, w.sentAt)
			got, err2 := time.Parse(time.RFC3339Nano, sentAt)
			if err1 != nil || err2 != nil || got.Before(orig) || got.Sub(orig) > 30*time.Second {
				t.Errorf("%s: sent_at %q arrived as %q: want it moved forward by the time spent in the relays", topic, w.sentAt, sentAt)
			}
		} else if sentAt != "" {
			t.Errorf("%s: a sent_at %q appeared in a header that had none", topic, sentAt)
		}
		// client_ip is the original client; forwarded_for is the chain:
		// the client first, then one loopback address per relay (A, B and
		// C each append their peer).
		ips := strings.Split(header(r, "forwarded_for"), ", ")
		wantIPs := 3
		if w.from.clientIP != "127.0.0.1" {
			wantIPs = 4
		}
		if header(r, "client_ip") != w.from.clientIP || ips[0] != w.from.clientIP || len(ips) != wantIPs {
			t.Errorf("%s: client_ip %q forwarded_for %q, want %s first and %d addresses", topic, header(r, "client_ip"), header(r, "forwarded_for"), w.from.clientIP, wantIPs)
		}
		if got := header(r, "client"); got != w.from.client || got == "" {
			t.Errorf("%s: client header %q, want the SDK's sentry_client %q", topic, got, w.from.client)
		}
	}
}

// chainKcat reads the topics with kcat, an independent Kafka client, and
// compares what it sees with the franz-go consumer's records.
func chainKcat(t *testing.T, brokers string, topics []string, records map[string][]*kgo.Record) {
	bin, err := exec.LookPath("kcat")
	if err != nil {
		t.Skipf("kcat not installed (apt-get install kcat): %v", err)
	}
	var wg sync.WaitGroup
	for _, topic := range topics {
		wg.Go(func() { chainKcatTopic(t, bin, brokers, topic, records[topic]) })
	}
	wg.Wait()
}

// chainKcatTopic compares one topic as kcat reads it with want. Payloads
// are compared when they are valid UTF-8 (kcat's JSON output cannot carry
// other bytes faithfully).
func chainKcatTopic(t *testing.T, bin, brokers, topic string, want []*kgo.Record) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	out, err := exec.CommandContext(ctx, bin, "-b", brokers, "-C", "-t", topic, "-o", "beginning", "-e", "-q", "-J").Output()
	cancel()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Logf("kcat stderr: %s", ee.Stderr)
		}
		t.Errorf("kcat %s: %v", topic, err)
		return
	}
	type kcatMsg struct {
		Partition int32    `json:"partition"`
		Offset    int64    `json:"offset"`
		Headers   []string `json:"headers"` // name, value, name, value...
		Key       *string  `json:"key"`
		Payload   *string  `json:"payload"`
	}
	byPos := map[[2]int64]*kgo.Record{}
	for _, r := range want {
		byPos[[2]int64{int64(r.Partition), r.Offset}] = r
	}
	got := 0
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		var m kcatMsg
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Errorf("kcat %s: %v: %.200s", topic, err, sc.Bytes())
			continue
		}
		got++
		hs := map[string]string{}
		for i := 0; i+1 < len(m.Headers); i += 2 {
			hs[m.Headers[i]] = m.Headers[i+1]
		}
		r := byPos[[2]int64{int64(m.Partition), m.Offset}]
		switch {
		case r == nil:
			t.Errorf("kcat %s: record %d/%d unknown to franz-go", topic, m.Partition, m.Offset)
		case m.Key == nil || *m.Key != string(r.Key) || hs["class"] != header(r, "class") || hs["client_ip"] != header(r, "client_ip"):
			t.Errorf("kcat %s %d/%d: key %v headers %v", topic, m.Partition, m.Offset, m.Key, hs)
		case m.Payload == nil:
			t.Errorf("kcat %s %d/%d: no payload", topic, m.Partition, m.Offset)
		case utf8.Valid(r.Value) && *m.Payload != string(r.Value):
			t.Errorf("kcat %s %d/%d: payload differs from franz-go's", topic, m.Partition, m.Offset)
		}
	}
	if got != len(want) {
		t.Errorf("kcat %s: %d records, franz-go read %d", topic, got, len(want))
	}
}
