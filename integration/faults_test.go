package integration

import (
	"bytes"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/baton-relay/baton/envelope"
	"github.com/baton-relay/baton/relay"
)

// TestForwardUnknownAPI: /api/ paths Baton does not serve go to the
// upstream verbatim (method, path, query, body, headers) and the upstream's
// status, headers and body come back unchanged, error statuses included.
func TestForwardUnknownAPI(t *testing.T) {
	settleDialer(t)
	up := newFakeUpstream(t)
	up.setAnswer(func(r *fakeRequest) fakeAnswer {
		switch {
		case strings.HasPrefix(r.RequestURI, "/api/0/missing/"):
			return fakeAnswer{Status: http.StatusNotFound, Header: map[string]string{"Content-Type": "application/json"}, Body: `{"detail":"upstream says no"}`}
		default:
			return fakeAnswer{Status: http.StatusCreated, Header: map[string]string{"Content-Type": "application/json", "X-Upstream": "fake"},
				Body: `{"method":"` + r.Method + `","len":` + strconv.Itoa(len(r.Body)) + `}`}
		}
	})
	n := startNode(t, fakeUpstreamYAML("up", up.url(), "default"))

	cases := []struct {
		method, uri, body string
		headers           map[string]string
		status            int
		respBody          string
	}{
		{"GET", "/api/0/projects/x/?cursor=0:100:0&per_page=2&q=a%20b", "", map[string]string{"Authorization": "Bearer tok-123", "X-Custom": "kept"},
			201, `{"method":"GET","len":0}`},
		{"POST", "/api/0/projects/x/keys/", `{"name":"from baton test","rate_limit":null}`, map[string]string{"Content-Type": "application/json"},
			201, `{"method":"POST","len":44}`},
		{"PUT", "/api/0/projects/my%20org/x/", "plain body\nsecond line", map[string]string{"Content-Type": "text/plain"},
			201, `{"method":"PUT","len":22}`},
		{"DELETE", "/api/0/projects/x/hooks/7/", "", nil, 201, `{"method":"DELETE","len":0}`},
		// A numeric project id with an endpoint Baton does not know.
		{"POST", "/api/42/unknown-endpoint/?x=1", "abc", nil, 201, `{"method":"POST","len":3}`},
		// Upstream errors are passed through, not turned into Baton errors.
		{"GET", "/api/0/missing/thing/", "", nil, 404, `{"detail":"upstream says no"}`},
	}
	for _, c := range cases {
		before := len(up.requests())
		status, body, h := sendRequest(t, c.method, n.url+c.uri, c.body, c.headers)
		if status != c.status || body != c.respBody {
			t.Errorf("%s %s: got %d %s, want %d %s", c.method, c.uri, status, body, c.status, c.respBody)
		}
		if c.status == 201 && h.Get("X-Upstream") != "fake" {
			t.Errorf("%s %s: upstream response header lost: %v", c.method, c.uri, h)
		}
		reqs := up.requests()
		if len(reqs) != before+1 {
			t.Errorf("%s %s: upstream got %d requests, want 1", c.method, c.uri, len(reqs)-before)
			continue
		}
		r := reqs[before]
		if r.Method != c.method || r.RequestURI != c.uri || string(r.Body) != c.body {
			t.Errorf("%s %s: upstream saw %s %s body %q", c.method, c.uri, r.Method, r.RequestURI, r.Body)
		}
		for k, v := range c.headers {
			if got := r.Header.Get(k); got != v {
				t.Errorf("%s %s: header %s = %q upstream, want %q", c.method, c.uri, k, got, v)
			}
		}
	}
	st := waitBalanced(t, n, 5*time.Second)
	if st.Accepted != 0 {
		t.Errorf("proxied requests were counted as accepted envelopes: %+v", st)
	}

	// With two upstreams, the default route's gets them (config
	// ForwardUpstream), though class routes open the other first.
	other := newFakeUpstream(t)
	two := startNode(t, fmt.Sprintf(`upstreams:
  other: {urls: [%q], timeout: 5s}
  up: {urls: [%q], timeout: 5s}
routes:
  unknown: {upstream: other}
  error: {upstream: other}
  attachment: {upstream: other}
  default: {upstream: up}
`, other.url(), up.url()))
	before := len(up.requests())
	if status, body, _ := sendRequest(t, "GET", two.url+"/api/0/projects/x/", "", nil); status != 201 || len(up.requests()) != before+1 || len(other.requests()) != 0 {
		t.Errorf("two upstreams: GET = %d %s; default route's upstream got %d requests, the error route's %d; want it forwarded to the default route's",
			status, body, len(up.requests())-before, len(other.requests()))
	}

	// With forward_unknown off, and without an upstream, such paths are 404
	// locally and nothing reaches the upstream.
	before = len(up.requests())
	off := startNode(t, fakeUpstreamYAML("up", up.url(), "default")+"server:\n  forward_unknown: false\n")
	if status, _, _ := sendRequest(t, "GET", off.url+"/api/0/projects/x/", "", nil); status != 404 {
		t.Errorf("forward_unknown: false: GET = %d, want 404", status)
	}
	none := startNode(t, "")
	if status, _, _ := sendRequest(t, "GET", none.url+"/api/0/projects/x/", "", nil); status != 404 {
		t.Errorf("no upstream: GET = %d, want 404", status)
	}
	if got := len(up.requests()) - before; got != 0 {
		t.Errorf("upstream got %d requests it should not have", got)
	}
	waitBalanced(t, two, 5*time.Second)
	waitBalanced(t, off, 5*time.Second)
	waitBalanced(t, none, 5*time.Second)
}

// faultOutage is how long the fake upstream of TestUpstreamOutageRecovers
// answers 503 (the reliability plan's outage is 30 s; CI keeps it short).
const faultOutage = 3 * time.Second

// faultSeqEnvelope is envelope number seq of a sequence: an error event whose
// message carries seq, with a unique event id.
func faultSeqEnvelope(tag string, seq int) (body []byte, payload string) {
	payload = fmt.Sprintf(`{"message":"%s-%05d","level":"error"}`, tag, seq)
	body = fmt.Appendf(nil, "{\"event_id\":\"%08x%024x\",\"sent_at\":\"2026-11-25T10:00:00Z\"}\n{\"type\":\"event\",\"length\":%d}\n%s\n",
		len(tag), seq, len(payload), payload)
	return body, payload
}

// faultSeqs returns the sequence numbers of tag in the event payloads of the
// requests, in order, and counts envelopes that are not of tag.
func faultSeqs(t *testing.T, tag string, reqs []fakeRequest) (seqs []int, foreign int) {
	t.Helper()
	for _, r := range reqs {
		env, err := envelope.Parse(r.Body)
		if err != nil {
			t.Errorf("upstream got an unparsable envelope: %v\n%q", err, r.Body)
			continue
		}
		found := false
		for _, it := range env.Items {
			var seq int
			if i := bytes.Index(it.Payload, []byte(tag+"-")); i >= 0 {
				if _, err := fmt.Sscanf(string(it.Payload[i+len(tag)+1:]), "%05d", &seq); err == nil {
					seqs = append(seqs, seq)
					found = true
				}
			}
		}
		if !found {
			foreign++
		}
	}
	return seqs, foreign
}

// TestUpstreamOutageRecovers: while the upstream answers 503 with
// Retry-After, Baton keeps acknowledging (the data waits in the buffer),
// honours Retry-After instead of hammering, and after recovery delivers
// every envelope at least once, byte for byte, in stream order (up to the
// upstream sink's request concurrency), with balanced accounting.
func TestUpstreamOutageRecovers(t *testing.T) {
	settleDialer(t)
	const (
		n   = 200
		tag = "fault-outage"
	)
	up := newFakeUpstream(t)
	start := time.Now()
	var posted atomic.Bool
	var recoveredAt atomic.Int64
	up.setAnswer(func(r *fakeRequest) fakeAnswer {
		if !posted.Load() || time.Since(start) < faultOutage {
			return fakeAnswer{Status: http.StatusServiceUnavailable, Header: map[string]string{"Retry-After": "1"}, Body: `{"detail":"down for maintenance"}`}
		}
		recoveredAt.CompareAndSwap(0, time.Now().UnixNano())
		return fakeAnswer{Status: http.StatusOK, Body: "{}"}
	})
	node := startNode(t, fakeUpstreamYAML("up", up.url(), "default"))

	payloads := make([]string, n)
	for seq := range n {
		body, payload := faultSeqEnvelope(tag, seq)
		payloads[seq] = payload
		t0 := time.Now()
		status, resp, _ := post(t, node.url+"/api/42/envelope/", body, authHeader(testKey))
		if status != 200 {
			t.Fatalf("envelope %d: %d %s (Baton must ack while the upstream is down)", seq, status, resp)
		}
		if d := time.Since(t0); d > 2*time.Second {
			t.Errorf("envelope %d took %s to ack: ingest waited on the upstream?", seq, d)
		}
	}
	if d := len(up.delivered()); d != 0 {
		t.Fatalf("%d envelopes delivered during the outage", d)
	}
	// Everything is in the buffer and Baton is trying (and being refused).
	fakeWaitFor(t, 5*time.Second, func() bool {
		return len(up.requests()) > 0 && node.r.Stats().Pending == n
	}, func() string {
		return fmt.Sprintf("pending %d (want %d), %d upstream attempts", node.r.Stats().Pending, n, len(up.requests()))
	})
	postedAt := time.Now()
	posted.Store(true)

	var first []int
	fakeWaitFor(t, faultOutage+15*time.Second, func() bool {
		seqs, _ := faultSeqs(t, tag, up.delivered())
		seen := map[int]bool{}
		for _, s := range seqs {
			seen[s] = true
		}
		return len(seen) == n
	}, func() string {
		seqs, _ := faultSeqs(t, tag, up.delivered())
		return fmt.Sprintf("%d of %d envelopes delivered (%d deliveries) after the outage", len(uniqueInts(seqs)), n, len(seqs))
	})
	allAt := time.Now()
	st := waitBalanced(t, node, 10*time.Second)

	// Retry-After: 1 was honoured: the envelope that met the outage was
	// tried about once a second, not in a hot loop.
	refused := map[int]int{}
	var refusedReqs []fakeRequest
	for _, r := range up.requests() {
		if r.Status == http.StatusServiceUnavailable {
			refusedReqs = append(refusedReqs, r)
		}
	}
	rs, _ := faultSeqs(t, tag, refusedReqs)
	for _, s := range rs {
		refused[s]++
	}
	outage := time.Duration(recoveredAt.Load() - start.UnixNano())
	maxTries := int(outage/time.Second) + 2
	for s, k := range refused {
		if k > maxTries {
			t.Errorf("envelope %d was refused %d times in a %s outage with Retry-After: 1 (want ≤ %d)", s, k, outage.Round(time.Millisecond), maxTries)
		}
	}
	if len(refused) == 0 {
		t.Error("no request reached the upstream during the outage")
	}

	// Every envelope once or more, nothing unknown, payloads intact, order.
	delivered := up.delivered()
	seqs, foreign := faultSeqs(t, tag, delivered)
	if foreign != 0 {
		t.Errorf("%d delivered envelopes carry no sequence number", foreign)
	}
	seen := map[int]bool{}
	for _, s := range seqs {
		if s < 0 || s >= n {
			t.Errorf("phantom sequence number %d", s)
			continue
		}
		if !seen[s] {
			seen[s] = true
			first = append(first, s) // duplicates are allowed; order counts first arrivals
		}
	}
	for _, r := range delivered {
		env, err := envelope.Parse(r.Body)
		if err != nil || len(env.Items) != 1 {
			continue
		}
		seqs, _ := faultSeqs(t, tag, []fakeRequest{r})
		if len(seqs) == 1 && string(env.Items[0].Payload) != payloads[seqs[0]] {
			t.Errorf("envelope %d payload altered: %q", seqs[0], env.Items[0].Payload)
		}
		// docs/relay-protocol.md §3.7: the original key and sentry_client, and
		// X-Forwarded-For extended with the client's address.
		auth := r.Header.Get("X-Sentry-Auth")
		if r.RequestURI != "/api/42/envelope/" || !strings.Contains(auth, "sentry_key="+testKey) ||
			chainAuthClient(auth) != "baton-test/1.0" || r.Header.Get("X-Forwarded-For") != "127.0.0.1" {
			t.Errorf("delivered to %s with auth %q, X-Forwarded-For %q", r.RequestURI, auth, r.Header.Get("X-Forwarded-For"))
		}
	}
	if st.Classes["error"].Delivered.Records != n || st.Dropped != 0 {
		t.Errorf("outcomes: %+v", st.Classes)
	}
	t.Logf("outage %s, %d refused requests; all %d delivered %s after recovery (%s after posting ended); %d deliveries (%d duplicates)",
		outage.Round(time.Millisecond), len(refusedReqs), n, allAt.Sub(time.Unix(0, recoveredAt.Load())).Round(time.Millisecond),
		allAt.Sub(postedAt).Round(time.Millisecond), len(seqs), len(seqs)-len(first))

	// Error envelopes of one project go in parallel (routing.Ordered), so
	// their first arrivals need not be in stream order; sessions' order is
	// checked in TestUpstreamConcurrency and routing's
	// TestUpstreamKeepsProjectOrder.
}

func uniqueInts(xs []int) map[int]bool {
	m := make(map[int]bool, len(xs))
	for _, x := range xs {
		m[x] = true
	}
	return m
}

// faultCluster starts a kfake cluster of one broker holding topics.
func faultCluster(t *testing.T, topics ...string) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, topics...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// faultKafkaYAML routes every class to the external cluster "k" at addr.
func faultKafkaYAML(addr, maxMessage, deadLetter string) string {
	s := fmt.Sprintf("kafka:\n  clusters:\n    k:\n      brokers: [%q]\n      compression: none\n      max_message_bytes: %s\n", addr, maxMessage)
	if deadLetter != "" {
		s += fmt.Sprintf("      dead_letter_topic: %s\n", deadLetter)
	}
	return s + "routes:\n  default: {kafka: k}\n"
}

// faultProduceAnswer fails every partition of a produce request with code.
func faultProduceAnswer(req *kmsg.ProduceRequest, code int16) *kmsg.ProduceResponse {
	resp := req.ResponseKind().(*kmsg.ProduceResponse)
	for _, rt := range req.Topics {
		st := kmsg.NewProduceResponseTopic()
		st.Topic, st.TopicID = rt.Topic, rt.TopicID
		for _, rp := range rt.Partitions {
			sp := kmsg.NewProduceResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.ErrorCode = code
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}

// faultEventWithAttachment is an error envelope whose attachment has size
// bytes; the event message carries tag.
func faultEventWithAttachment(tag string, size int) []byte {
	ev := fmt.Sprintf(`{"message":%q}`, tag)
	att := bytes.Repeat([]byte("0123456789abcdef"), size/16+1)[:size]
	return fmt.Appendf(nil, "{}\n{\"type\":\"event\",\"length\":%d}\n%s\n{\"type\":\"attachment\",\"length\":%d,\"filename\":\"big.bin\"}\n%s\n",
		len(ev), ev, len(att), att)
}

// faultTags counts, per tag, the records of recs whose value contains it.
func faultTags(recs []*kgo.Record, tags ...string) map[string]int {
	m := map[string]int{}
	for _, r := range recs {
		for _, tag := range tags {
			if bytes.Contains(r.Value, []byte(`"`+tag+`"`)) {
				m[tag]++
			}
		}
	}
	return m
}

// TestKafkaFaults injects broker faults into Baton's own Kafka cluster:
// a produce error once (the envelope is still delivered), and a record over
// max_message_bytes (dead-lettered, or dropped as "invalid" without a
// dead-letter topic) while its neighbours are delivered.
func TestKafkaFaults(t *testing.T) {
	for _, tc := range []struct {
		name string
		code int16
	}{
		// Retried inside franz-go: Baton's Send never sees it.
		{"retriable-once/not-leader", kerr.NotLeaderForPartition.Code},
		// Fatal to franz-go, unknown to Baton: the forwarder retries it.
		{"retriable-once/policy-violation", kerr.PolicyViolation.Code},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := faultCluster(t, "baton.error")
			var injected atomic.Int32
			c.ControlKey(int16(kmsg.Produce), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
				injected.Add(1)
				return faultProduceAnswer(kreq.(*kmsg.ProduceRequest), tc.code), nil, true
			})
			n := startNode(t, faultKafkaYAML(c.ListenAddrs()[0], "1MiB", ""))
			const tag = "fault-once"
			status, resp, _ := post(t, n.url+"/api/42/envelope/", faultEventWithAttachment(tag, 100), authHeader(testKey))
			if status != 200 {
				t.Fatalf("POST = %d %s", status, resp)
			}
			recs := consumeUntil(t, c.ListenAddrs()[0], "baton.error", 15*time.Second, func(recs []*kgo.Record) bool {
				return faultTags(recs, tag)[tag] >= 1
			})
			if injected.Load() != 1 {
				t.Errorf("the fault was injected %d times, want 1", injected.Load())
			}
			st := waitBalanced(t, n, 10*time.Second)
			if e := st.Classes["error"]; e.Delivered.Records != 1 || len(e.Dropped) != 0 {
				t.Errorf("outcomes: %+v", st.Classes)
			}
			if string(recs[0].Key) != "42" {
				t.Errorf("record key %q", recs[0].Key)
			}
		})
	}

	const maxMessage = 16 << 10
	for _, tc := range []struct {
		name       string
		deadLetter string
	}{
		{"too-large/dead-letter", "baton.dead"},
		{"too-large/no-dead-letter", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := faultCluster(t, "baton.error", "baton.dead")
			addr := c.ListenAddrs()[0]
			var produced atomic.Int32
			c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
				c.KeepControl()
				produced.Add(1)
				return nil, nil, false
			})
			n := startNode(t, faultKafkaYAML(addr, strconv.Itoa(maxMessage), tc.deadLetter))

			// Ten small envelopes around a large one (40 KB: over
			// max_message_bytes, well under Baton's ingest limits), posted
			// back to back so they share the stream and, mostly, a batch.
			var small []string
			for i := range 11 {
				tag, size := fmt.Sprintf("fault-small-%02d", i), 200
				if i == 5 {
					tag, size = "fault-big", 40_000
				} else {
					small = append(small, tag)
				}
				status, resp, _ := post(t, n.url+"/api/42/envelope/", faultEventWithAttachment(tag, size), authHeader(testKey))
				if tag == "fault-big" && tc.deadLetter == "" {
					// Nowhere to deliver it: refused before the ack, not
					// acknowledged and then dropped.
					if status != 413 || !strings.Contains(resp, "larger than their destination accepts") {
						t.Fatalf("%s without a dead-letter topic: POST = %d %s, want 413", tag, status, resp)
					}
					continue
				}
				if status != 200 {
					t.Fatalf("%s: POST = %d %s", tag, status, resp)
				}
			}
			t0 := time.Now()
			consumeUntil(t, addr, "baton.error", 10*time.Second, func(recs []*kgo.Record) bool {
				got := faultTags(recs, small...)
				return len(got) == len(small)
			})
			if d := time.Since(t0); d > 5*time.Second {
				t.Errorf("the neighbours of the large record took %s", d)
			}
			st := waitBalanced(t, n, 10*time.Second)
			// Everything is settled: read the whole topics again.
			recs := consume(t, addr, "baton.error", len(small), 10*time.Second)
			if got := faultTags(recs, "fault-big"); got["fault-big"] != 0 {
				t.Error("the large record was produced to baton.error")
			}
			for tag, k := range faultTags(recs, small...) {
				if k != 1 {
					t.Errorf("%s: %d copies in baton.error", tag, k)
				}
			}

			e := st.Classes["error"]
			if tc.deadLetter != "" {
				dead := consume(t, addr, tc.deadLetter, 1, 10*time.Second)
				if faultTags(dead, "fault-big")["fault-big"] != 1 {
					t.Fatalf("dead-letter topic holds %d records, not the large one", len(dead))
				}
				d := dead[0]
				if header(d, "dead_letter_reason") != "kafka_message_too_large" || header(d, "dead_letter_topic") != "baton.error" ||
					string(d.Key) != "42" || header(d, "project_id") != "42" || header(d, "class") != "error" {
					t.Errorf("dead-letter record key %q headers %v", d.Key, d.Headers)
				}
				if env, err := envelope.Parse(d.Value); err != nil || len(env.Items) != 2 || len(env.Items[1].Payload) != 40_000 {
					t.Errorf("dead-letter value is not the original envelope (err %v)", err)
				}
				if e.Delivered.Records != 11 || len(e.Dropped) != 0 {
					t.Errorf("outcomes with a dead-letter topic: %+v", e)
				}
			} else {
				if len(e.Dropped) != 0 || e.Accepted.Records != 10 {
					t.Errorf("the refused envelope was accepted or dropped; outcomes %+v", e)
				}
				if e.Delivered.Records != 10 {
					t.Errorf("outcomes without a dead-letter topic: %+v", e)
				}
			}
			t.Logf("%d produce requests; outcomes %+v", produced.Load(), e)
		})
	}
}

// faultPending is what a class still holds in the buffer by its counters.
func faultPending(st relay.Stats, class string) int64 {
	c := st.Classes[class]
	p := c.Accepted.Records - c.Delivered.Records
	for _, d := range c.Dropped {
		p -= d.Records
	}
	return p
}

// TestKafkaDownSessionsFlow is head-of-line isolation: errors go to a Kafka
// cluster that is down (nothing listens on its port), sessions to a working
// upstream. Sessions keep arriving promptly while errors pile up in the
// buffer; when the broker comes up the errors drain and the accounting
// balances.
func TestKafkaDownSessionsFlow(t *testing.T) {
	settleDialer(t)
	const rounds = 20
	up := newFakeUpstream(t)
	port := faultFreePort(t)
	brokers := fmt.Sprintf("127.0.0.1:%d", port)
	cfg := fmt.Sprintf("kafka:\n  clusters:\n    k:\n      brokers: [%q]\n      compression: none\n", brokers) +
		fakeUpstreamYAML("up", up.url(), "default") + "  error: {kafka: k}\n"
	n := startNode(t, cfg)
	if n.kafka != "" {
		t.Errorf("an embedded broker was started at %s though no route uses it", n.kafka)
	}

	sessionSeen := func(tag string) bool {
		for _, r := range up.delivered() {
			if bytes.Contains(r.Body, []byte(tag)) {
				return true
			}
		}
		return false
	}
	var worst time.Duration
	for i := range rounds {
		etag := fmt.Sprintf("fault-hol-error-%02d", i)
		if status, resp, _ := post(t, n.url+"/api/42/envelope/", faultEventWithAttachment(etag, 64), authHeader(testKey)); status != 200 {
			t.Fatalf("error %d: POST = %d %s", i, status, resp)
		}
		stag := fmt.Sprintf("fault-hol-session-%02d", i)
		body := fmt.Appendf(nil, "{\"sent_at\":\"2026-11-25T10:00:00Z\"}\n{\"type\":\"session\"}\n{\"sid\":\"%032x\",\"did\":%q,\"status\":\"ok\",\"init\":true,\"seq\":%d,\"attrs\":{\"release\":\"fault@1\"}}\n", i+1, stag, i)
		t0 := time.Now()
		if status, resp, _ := post(t, n.url+"/api/42/envelope/", body, authHeader(testKey)); status != 200 {
			t.Fatalf("session %d: POST = %d %s", i, status, resp)
		}
		fakeWaitFor(t, 5*time.Second, func() bool { return sessionSeen(stag) }, func() string {
			return fmt.Sprintf("session %d not delivered while Kafka is down (errors pending: %d)", i, faultPending(n.r.Stats(), "error"))
		})
		worst = max(worst, time.Since(t0))
	}
	if worst > time.Second {
		t.Errorf("slowest session delivery %s while errors were stuck: head-of-line blocking?", worst)
	}
	// The upstream saw the last session before Baton counted it delivered.
	fakeWaitFor(t, 5*time.Second, func() bool { return n.r.Stats().Classes["session"].Delivered.Records == rounds },
		func() string { return fmt.Sprintf("sessions: %+v", n.r.Stats().Classes["session"]) })
	// A delivery is counted a moment before its ack lands in the buffer's
	// pending figure: wait for the two to agree.
	fakeWaitFor(t, 5*time.Second, func() bool { st := n.r.Stats(); return st.Balanced && st.Pending == rounds },
		func() string { return fmt.Sprintf("not balanced with %d pending: %+v", rounds, n.r.Stats()) })
	st := n.r.Stats()
	if p := faultPending(st, "error"); p != rounds || st.Pending != rounds {
		t.Errorf("errors pending %d, buffer pending %d; want %d each (Kafka is down)", p, st.Pending, rounds)
	}
	if p := faultPending(st, "session"); p != 0 || st.Classes["session"].Delivered.Records != rounds {
		t.Errorf("sessions: %+v", st.Classes["session"])
	}
	if !st.Balanced {
		t.Errorf("accounting identity broken while Kafka is down: %+v", st)
	}

	// The broker comes up on the configured port: the errors drain.
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(port), kfake.SeedTopics(1, "baton.error"))
	if err != nil {
		t.Fatalf("start the broker on the reserved port %d (taken meanwhile?): %v", port, err)
	}
	t.Cleanup(c.Close) // registered after the node: closes after it
	t0 := time.Now()
	var tags []string
	for i := range rounds {
		tags = append(tags, fmt.Sprintf("fault-hol-error-%02d", i))
	}
	consumeUntil(t, brokers, "baton.error", 30*time.Second, func(recs []*kgo.Record) bool {
		return len(faultTags(recs, tags...)) == rounds
	})
	st = waitBalanced(t, n, 10*time.Second)
	if e := st.Classes["error"]; e.Delivered.Records != rounds || len(e.Dropped) != 0 {
		t.Errorf("errors after recovery: %+v", e)
	}
	t.Logf("slowest session %s while Kafka was down; errors drained %s after the broker started", worst.Round(time.Millisecond), time.Since(t0).Round(time.Millisecond))
}
