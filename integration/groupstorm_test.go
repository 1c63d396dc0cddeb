package integration

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// groupEventsMRI is the per-issue event counter storm control emits.
const groupEventsMRI = "c:custom/baton.grouping.events@none"

// stormMessage is a message event's text whose hash is md5 of itself: no
// digits or hex, which Sentry's parameterization would replace.
func stormMessage(prefix string, i int) string {
	var b strings.Builder
	b.WriteString(prefix)
	for _, d := range fmt.Sprint(i) {
		b.WriteByte(byte('g' + d - '0'))
	}
	return b.String()
}

func md5hexOf(s string) string { h := md5.Sum([]byte(s)); return hex.EncodeToString(h[:]) }

// sendMessages posts one event envelope per message to project 42 over
// conc connections, failing the test on any answer but 200.
func sendMessages(t *testing.T, n *node, msgs []string, conc int) {
	t.Helper()
	cl := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conc}, Timeout: 30 * time.Second}
	defer cl.CloseIdleConnections()
	url := n.url + "/api/42/envelope/"
	work := make(chan string)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		fails []string
	)
	for range conc {
		wg.Go(func() {
			for msg := range work {
				body := fmt.Appendf(nil, "{\"dsn\":\"http://%s@h/42\"}\n{\"type\":\"event\"}\n{\"message\":%q}\n", managedKey, msg)
				req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
				for k, v := range authHeader(managedKey) {
					req.Header.Set(k, v)
				}
				resp, err := cl.Do(req)
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						err = fmt.Errorf("status %d", resp.StatusCode)
					}
				}
				if err != nil {
					mu.Lock()
					fails = append(fails, err.Error())
					mu.Unlock()
				}
			}
		})
	}
	for _, m := range msgs {
		work <- m
	}
	close(work)
	wg.Wait()
	if len(fails) > 0 {
		t.Fatalf("%d of %d envelopes failed, first: %s", len(fails), len(msgs), fails[0])
	}
}

// groupCount sums what the fake Sentry received of the per-issue counter
// for hash.
func groupCount(t *testing.T, s *fakeSentry, hash string) float64 {
	t.Helper()
	var sum float64
	for p, byHash := range groupCountsByProject(t, s) {
		if c, ok := byHash[hash]; ok {
			if p != "42" {
				t.Errorf("count of %s tagged project %q, want 42", hash, p)
			}
			sum += c
		}
	}
	return sum
}

// A storm of one error through a managed Baton with storm control at 100
// per minute (the project config's grouping part): the storm's first 100
// events and every distinct error are delivered, the other 9,900 are
// dropped with outcome filtered, reason grouping_storm, and the per-issue
// counter tells Sentry the storm had 10,000 events.
func TestManagedGroupingStorm(t *testing.T) {
	settleDialer(t)
	const (
		storm    = 10000
		distinct = 100
		limit    = 100
	)
	s := newFakeSentry(t)
	s.setProject(managedKey, fakeSentryProjectState(42, managedKey, "r1", func(m map[string]any) {
		m["config"].(map[string]any)["grouping"] = map[string]any{"storm": map[string]any{"limit": limit, "window": 60}}
	}))
	n := startNode(t, managedYAML(s.url(), fastMetrics+"outcomes:\n  emit_outcomes: \"true\"\n  batch_interval: 10ms\n"))
	msgs := make([]string, 0, storm+distinct)
	for i := range storm + distinct {
		if i%(storm/distinct+1) == 0 { // distinct errors spread through the storm
			msgs = append(msgs, stormMessage("distinct-error-", len(msgs)))
			continue
		}
		msgs = append(msgs, "storm-error")
	}
	start := time.Now()
	sendMessages(t, n, msgs, 16)
	sent := time.Since(start)
	st := waitBalanced(t, n, 15*time.Second)
	t.Logf("%d envelopes in %s", len(msgs), sent)

	if got := deliveredTo(s, 42, `"storm-error"`); got != limit {
		t.Errorf("storm events delivered %d times, want %d", got, limit)
	}
	distinctSeen := 0
	for _, m := range msgs {
		if m != "storm-error" {
			distinctSeen++
			if got := deliveredTo(s, 42, `"`+m+`"`); got != 1 {
				t.Errorf("%s delivered %d times, want 1", m, got)
			}
		}
	}
	if distinctSeen != distinct {
		t.Fatalf("sent %d distinct errors, want %d", distinctSeen, distinct)
	}
	dropped := storm - limit
	if got := st.Filtered["grouping_storm"]; got != int64(dropped) {
		t.Errorf("filtered grouping_storm = %d, want %d (all: %v)", got, dropped, st.Filtered)
	}
	if got := st.Classes["error"].Dropped["filtered"].Items; got != int64(dropped) {
		t.Errorf("error items dropped filtered = %d, want %d", got, dropped)
	}
	fakeWaitFor(t, 15*time.Second, func() bool {
		var q float64
		for _, o := range sentryOutcomes(s) {
			if o["reason"] == "grouping_storm" && o["outcome"] == float64(1) && o["category"] == float64(1) {
				q += o["quantity"].(float64)
			}
		}
		return q == float64(dropped)
	}, func() string {
		return fmt.Sprintf("want %d filtered grouping_storm outcomes, Sentry has %d outcome lines", dropped, len(sentryOutcomes(s)))
	})
	hash := md5hexOf("storm-error")
	fakeWaitFor(t, 15*time.Second, func() bool { return groupCount(t, s, hash) == storm },
		func() string {
			return fmt.Sprintf("%s counted %v events upstream, want %d", groupEventsMRI, groupCount(t, s, hash), storm)
		})
	if got := groupCount(t, s, md5hexOf(msgs[0])); got != 1 {
		t.Errorf("a distinct error counted %v events, want 1", got)
	}
}

// A static project's storm control comes from baton.yml: the limit keeps
// the first events of an issue, and the window lets more through once it
// has passed.
func TestStaticGroupingStorm(t *testing.T) {
	const limit = 2
	s := newFakeSentry(t)
	n := startNode(t, fmt.Sprintf("upstreams: {up: {urls: [%s], max_retry_interval: 200ms}}\nroutes: {default: {upstream: up}}\n", s.url())+fastMetrics+
		fmt.Sprintf("mode: static\nprojects: {\"42\": {public_keys: [%s], grouping: {storm: {limit: %d, window: 1s}}}}\n", managedKey, limit))
	send := func(msg string) {
		t.Helper()
		body := fmt.Appendf(nil, "{\"dsn\":\"http://%s@h/42\"}\n{\"type\":\"event\"}\n{\"message\":%q}\n", managedKey, msg)
		if status, resp, _ := postEnvelope(t, n, 42, managedKey, body, nil); status != 200 {
			t.Fatalf("%d %s", status, resp)
		}
	}
	// Judged at ingest: an event is kept unless counted filtered.
	sent := 0
	kept := func() int { return sent - int(n.r.Stats().Filtered["grouping_storm"]) }
	for range limit + 3 {
		send("static-storm")
		sent++
	}
	if got := kept(); got != limit {
		t.Fatalf("kept %d of %d in one window, want %d", got, sent, limit)
	}
	send("static-other")
	// A second window keeps as many again (sending until it starts).
	deadline := time.Now().Add(10 * time.Second)
	for kept() < 2*limit {
		if time.Now().After(deadline) {
			t.Fatalf("kept %d of %d after 10s, want a second window's %d", kept(), sent, limit)
		}
		send("static-storm")
		sent++
	}
	st := waitBalanced(t, n, 15*time.Second)
	if got := deliveredTo(s, 42, `"static-storm"`); got != 2*limit {
		t.Errorf("storm events delivered %d times, want %d", got, 2*limit)
	}
	if got := deliveredTo(s, 42, `"static-other"`); got != 1 {
		t.Errorf("another issue's event delivered %d times, want 1", got)
	}
	if got := st.Filtered["grouping_storm"]; got != int64(sent-2*limit) {
		t.Errorf("filtered grouping_storm = %d, want %d", got, sent-2*limit)
	}
	hash := md5hexOf("static-storm")
	fakeWaitFor(t, 15*time.Second, func() bool { return groupCount(t, s, hash) == float64(sent) },
		func() string { return fmt.Sprintf("counted %v events upstream, want %d", groupCount(t, s, hash), sent) })
}

// An error event grouped at the edge reaches Kafka with the record headers
// grouping_hash and grouping_final; one of a project that is not grouped
// carries neither.
func TestKafkaGroupingHeaders(t *testing.T) {
	n := startNode(t, fmt.Sprintf("mode: static\nprojects:\n  \"42\": {public_keys: [%s], grouping: {discarded_hashes: []}}\n  \"43\": {public_keys: [%s]}\n", managedKey, testKey))
	for _, p := range []struct {
		pid uint64
		key string
	}{{42, managedKey}, {43, testKey}} {
		body := fmt.Appendf(nil, "{\"dsn\":\"http://%s@h/%d\"}\n{\"type\":\"event\"}\n{\"message\":\"kafka-grouped\"}\n", p.key, p.pid)
		if status, resp, _ := postEnvelope(t, n, p.pid, p.key, body, nil); status != 200 {
			t.Fatalf("%d %s", status, resp)
		}
	}
	recs := consume(t, n.kafka, "baton.error", 2, 15*time.Second)
	for _, r := range recs {
		hash, final := header(r, "grouping_hash"), header(r, "grouping_final")
		switch header(r, "project_id") {
		case "42":
			if hash != md5hexOf("kafka-grouped") || final != "true" {
				t.Errorf("grouped event: grouping_hash %q grouping_final %q, want %s true", hash, final, md5hexOf("kafka-grouped"))
			}
		case "43":
			if hash != "" || final != "" {
				t.Errorf("event of a project without grouping: grouping_hash %q grouping_final %q", hash, final)
			}
		default:
			t.Errorf("record of project %q", header(r, "project_id"))
		}
	}
}

// The per-issue counts are metric buckets like any client's: the
// cardinality limiter bounds how many issues a project reports, and drops
// the rest as cardinality_limited, with storm control or the count switch.
func TestGroupCountsCardinalityLimited(t *testing.T) {
	for name, part := range map[string]string{"storm": "{storm: {limit: 100}}", "count": "{count: true}"} {
		t.Run(name, func(t *testing.T) { groupCountsCardinalityLimited(t, part) })
	}
}

func groupCountsCardinalityLimited(t *testing.T, grouping string) {
	const issues, limit = 5, 2
	s := newFakeSentry(t)
	n := startNode(t, fmt.Sprintf("upstreams: {up: {urls: [%s], max_retry_interval: 200ms}}\nroutes: {default: {upstream: up}}\n", s.url())+
		fmt.Sprintf("metrics: {bucket_interval: 1s, initial_delay: 0s, cardinality_limit: %d}\n", limit)+
		fmt.Sprintf("mode: static\nprojects: {\"42\": {public_keys: [%s], grouping: %s}}\n", managedKey, grouping))
	msgs := make([]string, issues)
	for i := range msgs {
		msgs[i] = stormMessage("limited-issue-", i)
	}
	sendMessages(t, n, msgs, 1)
	fakeWaitFor(t, 15*time.Second, func() bool {
		return n.r.Stats().Classes["metric"].Dropped["cardinality_limited"].Items == issues-limit
	}, func() string {
		return fmt.Sprintf("metric drops %+v, want %d cardinality_limited", n.r.Stats().Classes["metric"], issues-limit)
	})
	waitBalanced(t, n, 15*time.Second)
	for _, m := range msgs {
		if deliveredTo(s, 42, `"`+m+`"`) != 1 {
			t.Errorf("%s not delivered once", m)
		}
	}
	counted := func() (k int) {
		for _, m := range msgs {
			switch c := groupCount(t, s, md5hexOf(m)); c {
			case 0:
			case 1:
				k++
			default:
				t.Fatalf("%s counted %v times", m, c)
			}
		}
		return k
	}
	fakeWaitFor(t, 15*time.Second, func() bool { return counted() == limit },
		func() string {
			return fmt.Sprintf("%d issues counted upstream, want the cardinality limit %d", counted(), limit)
		})
}
