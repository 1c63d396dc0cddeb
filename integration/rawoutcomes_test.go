package integration

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/baton-relay/baton/config"
	"github.com/baton-relay/baton/relay/auth"
	"github.com/baton-relay/baton/relay/outcome"
)

// rawOutcomeTS is Relay's outcome timestamp: microseconds, UTC.
var rawOutcomeTS = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$`)

// normOutcomes checks every outcome's timestamp and returns them without
// it, as JSON strings, sorted: comparable with a test's expectations.
// waitSentryOutcomes waits until the outcomes the fake Sentry received,
// normalized, are exactly want.
func waitSentryOutcomes(t *testing.T, s *fakeSentry, want []string, timeout time.Duration) {
	t.Helper()
	var got []string
	fakeWaitFor(t, timeout, func() bool {
		got = normOutcomes(t, sentryOutcomes(s))
		return reflect.DeepEqual(got, want)
	}, func() string {
		return fmt.Sprintf("outcomes at Sentry:\n got %s\nwant %s", strings.Join(got, "\n     "), strings.Join(want, "\n     "))
	})
}

func normOutcomes(t *testing.T, outs []map[string]any) []string {
	t.Helper()
	var got []string
	for _, o := range outs {
		ts, _ := o["timestamp"].(string)
		if !rawOutcomeTS.MatchString(ts) {
			t.Errorf("outcome %v: timestamp %q is not Relay's format", o, ts)
		}
		c := map[string]any{}
		for k, v := range o {
			if k != "timestamp" {
				c[k] = v
			}
		}
		b, _ := json.Marshal(c)
		got = append(got, string(b))
	}
	slices.Sort(got)
	return got
}

// wantOutcomes renders expectations the way normOutcomes does.
func wantOutcomes(outs ...map[string]any) []string {
	var want []string
	for _, o := range outs {
		b, _ := json.Marshal(o)
		want = append(want, string(b))
	}
	slices.Sort(want)
	return want
}

func sentryOutcomes(s *fakeSentry) []map[string]any {
	var outs []map[string]any
	for _, o := range s.outcomes() {
		outs = append(outs, o.Outcome)
	}
	return outs
}

const (
	crawlerEventID = "11111111111111111111111111111111"
	txEventID      = "22222222222222222222222222222222"
)

// sendRawOutcomeTraffic sends, for project 42 of managedKey, a kept event
// (and waits for it: the config is then known), an event the web-crawlers
// filter drops, a transaction over a quota of 0 and an SDK client report,
// all from 203.0.113.7.
func sendRawOutcomeTraffic(t *testing.T, n *node, s *fakeSentry) {
	t.Helper()
	hdr := map[string]string{"X-Forwarded-For": "203.0.113.7"}
	send := func(want int, body string) {
		t.Helper()
		if status, resp, _ := postEnvelope(t, n, 42, managedKey, []byte(body), hdr); status != want {
			t.Fatalf("%d %s, want %d", status, resp, want)
		}
	}
	dsn := fmt.Sprintf(`"dsn":"http://%s@h/42"`, managedKey)
	send(200, "{"+dsn+"}\n{\"type\":\"event\"}\n{\"message\":\"kept-first\"}\n")
	fakeWaitFor(t, 15*time.Second, func() bool { return deliveredTo(s, 42, "kept-first") == 1 },
		func() string { return "the config was not fetched" })
	send(200, `{"event_id":"`+crawlerEventID+`",`+dsn+"}\n{\"type\":\"event\"}\n"+
		`{"message":"f-crawler","request":{"headers":{"User-Agent":"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"}}}`+"\n")
	send(429, `{"event_id":"`+txEventID+`",`+dsn+"}\n{\"type\":\"transaction\"}\n{\"type\":\"transaction\",\"transaction\":\"/x\","+txValid+"}\n")
	report := fmt.Sprintf(`{"timestamp":%d,"discarded_events":[{"reason":"queue_overflow","category":"error","quantity":3}]}`, time.Now().Unix())
	send(200, "{"+dsn+"}\n{\"type\":\"client_report\"}\n"+report+"\n")
}

// rawOutcomeState is project 42 with the web-crawlers filter and a quota
// of 0 on transactions (reason tx_off).
func rawOutcomeState() string {
	return fakeSentryProjectState(42, managedKey, "r1", func(m map[string]any) {
		cfg := m["config"].(map[string]any)
		cfg["filterSettings"] = map[string]any{"webCrawlers": map[string]any{"isEnabled": true}}
		cfg["quotas"] = []any{map[string]any{"id": "tx", "categories": []any{"transaction"}, "limit": 0, "reasonCode": "tx_off"}}
	})
}

// wantRawOutcomes is what sendRawOutcomeTraffic makes Sentry get, with
// source src: the filtered event and the rate-limited transaction with
// their event ids and the client's address, the SDK's report as a
// client_discard outcome without them (as Relay makes it).
func wantRawOutcomes(src string) []string {
	o := func(outcome int, reason, eventID string, category, quantity int) map[string]any {
		m := map[string]any{"org_id": 1, "project_id": 42, "key_id": 4201, "outcome": outcome, "reason": reason,
			"source": src, "category": category, "quantity": quantity}
		if eventID != "" {
			m["event_id"], m["remote_addr"] = eventID, "203.0.113.7"
		}
		return m
	}
	return wantOutcomes(
		o(1, "web-crawlers", crawlerEventID, 1, 1),
		o(2, "tx_off", txEventID, 2, 1),
		o(2, "tx_off", txEventID, 9, 1),
		o(5, "queue_overflow", "", 1, 3),
	)
}

// With outcomes.emit_outcomes true, a managed Baton sends Sentry raw
// outcomes at /api/0/relays/outcomes/, signed: filtered and rate-limited
// events with Relay's outcome ids, reasons, categories, quantities, key
// id, event id and address, and SDK client reports converted; everything
// passes through the buffer and the stats balance.
func TestManagedRawOutcomesReachSentry(t *testing.T) {
	settleDialer(t)
	s := newFakeSentry(t)
	s.setProject(managedKey, rawOutcomeState())
	n := startNode(t, managedYAML(s.url(), "outcomes:\n  emit_outcomes: \"true\"\n  batch_interval: 10ms\n  source: edge-1\n"))
	sendRawOutcomeTraffic(t, n, s)

	want := wantRawOutcomes("edge-1")
	waitSentryOutcomes(t, s, want, 15*time.Second)
	st := waitBalanced(t, n, 15*time.Second)
	cr := st.Classes["client_report"]
	// One SDK report delivered (as outcomes) and the produced outcome records.
	if cr.Produced.Records == 0 || cr.Delivered.Records != cr.Produced.Records+1 || cr.Accepted.Records != 1 {
		t.Errorf("client_report class %+v: want its produced records and the SDK report delivered", cr)
	}
	// The stats' outcomes section is the produced outcome records alone.
	if o := st.Outcomes; o == nil || o.Produced != cr.Produced || o.Delivered != cr.Produced || o.Accepted.Records != 0 || o.Pending.Records != 0 {
		t.Errorf("outcomes stats %+v: want the %+v produced, delivered, none accepted", o, cr.Produced)
	}
	for _, e := range s.envelopes() {
		if strings.Contains(string(e.Body), `"client_report"`) {
			t.Errorf("a client report reached Sentry as an item: %s", e.Body)
		}
	}
	if st.Reports == nil || st.Reports.Reported != 3 || st.Reports.Lost != 0 {
		t.Errorf("reports %+v, want 3 reported and none lost", st.Reports)
	}
	// Sentry got them from Baton's relay identity.
	if id := s.outcomes()[0].RelayID; s.registered()[id] == "" {
		t.Errorf("outcomes came from %q, not a registered relay", id)
	}
}

// Routed to Kafka, raw outcomes go to Relay's topics, one JSON outcome per
// message: rate-limited (billing) ones to outcomes-billing, the others to
// outcomes; an SDK client report becomes outcomes there too.
func TestRawOutcomesToKafka(t *testing.T) {
	n := startNode(t, `
routes:
  default: {kafka: embedded, topic: "baton.{class}"}
outcomes:
  emit_outcomes: "true"
  batch_interval: 10ms
  source: edge-k
`)
	ts := time.Now().Unix()
	report := fmt.Sprintf(`{"timestamp":%d,"discarded_events":[{"reason":"queue_overflow","category":"error","quantity":3}],`+
		`"rate_limited_events":[{"reason":"","category":"transaction","quantity":2}],`+
		`"filtered_sampling_events":[{"reason":"Sampled:1004","category":"transaction","quantity":4}]}`, ts)
	body := "{}\n{\"type\":\"client_report\"}\n" + report + "\n"
	if status, resp, _ := postEnvelope(t, n, 42, testKey, []byte(body), nil); status != 200 {
		t.Fatalf("%d %s", status, resp)
	}
	at := time.Unix(ts, 0).UTC().Format("2006-01-02T15:04:05.000000Z")
	records := consume(t, n.kafka, "outcomes", 2, 15*time.Second)
	billing := consume(t, n.kafka, "outcomes-billing", 1, 15*time.Second)
	values := func(recs []*kgo.Record) []string {
		var v []string
		for _, r := range recs {
			v = append(v, string(r.Value))
			if len(r.Key) != 32 {
				t.Errorf("outcome message key %q: want a 32-digit id", r.Key)
			}
		}
		slices.Sort(v)
		return v
	}
	want := []string{
		`{"timestamp":"` + at + `","project_id":42,"outcome":1,"reason":"Sampled:1004","source":"edge-k","category":2,"quantity":4}`,
		`{"timestamp":"` + at + `","project_id":42,"outcome":5,"reason":"queue_overflow","source":"edge-k","category":1,"quantity":3}`,
	}
	if got := values(records); !reflect.DeepEqual(got, want) {
		t.Errorf("outcomes topic:\n got %s\nwant %s", got, want)
	}
	wantBilling := []string{`{"timestamp":"` + at + `","project_id":42,"outcome":2,"source":"edge-k","category":2,"quantity":2}`}
	if got := values(billing); !reflect.DeepEqual(got, wantBilling) {
		t.Errorf("outcomes-billing topic:\n got %s\nwant %s", got, wantBilling)
	}
	st := waitBalanced(t, n, 15*time.Second)
	if cr := st.Classes["client_report"]; cr.Delivered.Records != 1 {
		t.Errorf("client_report class %+v: want the report delivered", cr)
	}
}

// A downstream Baton sends its raw outcomes to its upstream Baton, which
// takes them from the internal relay it trusts (202 {}), keeps them in
// its buffer and passes them on to Sentry as they came (the downstream's
// source); a relay that is not internal is refused with 403.
func TestRawOutcomesThroughChain(t *testing.T) {
	settleDialer(t)
	s := newFakeSentry(t)
	s.setProject(managedKey, rawOutcomeState())
	dir := t.TempDir()
	b, err := auth.Generate()
	if err != nil {
		t.Fatal(err)
	}
	other, err := auth.Generate()
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Save(filepath.Join(dir, "b.json")); err != nil {
		t.Fatal(err)
	}
	raw := "outcomes:\n  emit_outcomes: \"true\"\n  batch_interval: 10ms\n  source: %s\n"
	a := startNode(t, managedYAML(s.url(), "auth:\n  static_relays:\n"+
		fmt.Sprintf("    %s: {public_key: %s, internal: true}\n", b.ID, auth.FormatPublicKey(b.PublicKey))+
		fmt.Sprintf("    %s: {public_key: %s}\n", other.ID, auth.FormatPublicKey(other.PublicKey))+
		fmt.Sprintf(raw, "edge-a")))
	down := startNode(t, managedYAML(a.url, "  credentials: "+filepath.Join(dir, "b.json")+"\n"+fmt.Sprintf(raw, "edge-b")))
	sendRawOutcomeTraffic(t, down, s)

	want := wantRawOutcomes("edge-b")
	waitSentryOutcomes(t, s, want, 20*time.Second)
	waitBalanced(t, down, 10*time.Second)
	st := waitBalanced(t, a, 10*time.Second)
	if cr := st.Classes["client_report"]; cr.Accepted.Items != 4 {
		t.Errorf("upstream Baton's client_report class %+v: want the 4 outcomes accepted", cr)
	}

	// A trusted relay that is not internal may not send outcomes.
	body := []byte(`{"outcomes":[{"timestamp":"2026-01-01T00:00:00.000000Z","project_id":42,"outcome":3}]}`)
	status, resp, _ := post(t, a.url+"/api/0/relays/outcomes/", body, map[string]string{
		auth.HeaderRelayID: other.ID, auth.HeaderRelaySignature: other.Sign(body, time.Now()), "Content-Type": "application/json",
	})
	if status != 403 {
		t.Errorf("outcomes of a relay that is not internal: %d %s, want 403", status, resp)
	}
	// Nor may anyone whose signature does not verify.
	status, resp, _ = post(t, a.url+"/api/0/relays/outcomes/", body, map[string]string{
		auth.HeaderRelayID: b.ID, auth.HeaderRelaySignature: other.Sign(body, time.Now()), "Content-Type": "application/json",
	})
	if status != 401 {
		t.Errorf("outcomes with a bad signature: %d %s, want 401", status, resp)
	}
}

// What the buffer drops itself is reported as raw outcomes too: an
// envelope Sentry refused (503) until Baton stopped is past buffer.max_age
// when Baton starts again, and Sentry gets Relay's outcomes for its event
// and attachment (invalid, reason timestamp) with the event id, the
// client's address and the quantities Relay counts; the stats balance
// with the drop counted.
func TestBufferExpiryReportedAsRawOutcomes(t *testing.T) {
	settleDialer(t)
	s := newFakeSentry(t)
	s.setProject(managedKey, fakeSentryProjectState(42, managedKey, "r1", nil))
	s.setEnvelopeStatus(503)
	dir := t.TempDir()
	yaml := managedYAML(s.url(), "outcomes:\n  emit_outcomes: \"true\"\n  batch_interval: 10ms\n  source: edge-x\n")
	n := startNodeIn(t, dir, yaml)
	const id = "33333333333333333333333333333333"
	body := fmt.Sprintf(`{"event_id":"%s","dsn":"http://%s@h/42"}`, id, managedKey) + "\n" +
		`{"type":"event"}` + "\n" + `{"message":"expires"}` + "\n" +
		`{"type":"attachment","length":5,"filename":"a.txt"}` + "\nhello\n"
	sent := time.Now()
	if status, resp, _ := postEnvelope(t, n, 42, managedKey, []byte(body), map[string]string{"X-Forwarded-For": "203.0.113.9"}); status != 200 {
		t.Fatalf("%d %s", status, resp)
	}
	fakeWaitFor(t, 15*time.Second, func() bool {
		st := n.r.Stats()
		return len(s.envelopes()) > 0 && st.Classes["error"].Pending.Records == 1 // the attachment travels with its event
	}, func() string { return "the envelope was not tried upstream: " + statsJSON(n.r.Stats()) })
	n.close() // waits out the drain timeout (2 s): Sentry keeps refusing
	const maxAge = time.Second
	if time.Since(sent) <= maxAge {
		t.Fatalf("restarted %s after the envelope was sent: not past buffer.max_age %s", time.Since(sent), maxAge)
	}
	n = startNodeIn(t, dir, yaml+"buffer:\n  max_age: 1s\n")

	o := func(category, quantity int) map[string]any {
		return map[string]any{"project_id": 42, "outcome": 3, "reason": "timestamp",
			"event_id": id, "remote_addr": "203.0.113.9", "source": "edge-x", "category": category, "quantity": quantity}
	}
	want := wantOutcomes(o(1, 1), o(4, 5), o(22, 1))
	waitSentryOutcomes(t, s, want, 20*time.Second)
	st := waitBalanced(t, n, 15*time.Second)
	if d := st.Classes["error"].Dropped["expired"]; d != (outcome.Count{Records: 1, Items: 2}) {
		t.Errorf("error class: dropped as expired %+v, want its record of 2 items", d)
	}
	if st.Reports == nil || st.Reports.Reported != 7 || st.Reports.Lost != 0 {
		t.Errorf("reports %+v, want 7 reported (1 error, 5 attachment bytes, 1 attachment item) and none lost", st.Reports)
	}
}

// A Relay config directory's outcomes section takes effect: a Baton run
// from Relay's config.yml with emit_outcomes true, a batch_interval in
// milliseconds and a source sends Sentry the same raw outcomes.
func TestRelayDirRawOutcomes(t *testing.T) {
	settleDialer(t)
	s := newFakeSentry(t)
	s.setProject(managedKey, rawOutcomeState())
	dir := relayDir(t, fmt.Sprintf(`relay: {mode: managed, upstream: "%s/", host: 127.0.0.1, port: 0}
cache: {batch_interval: 10}
outcomes:
  emit_outcomes: true
  batch_interval: 10
  source: edge-dir
`, s.url()), nil)
	cfg, d, err := config.LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Ignored) != 0 {
		t.Errorf("ignored Relay keys %v, want none", d.Ignored)
	}
	n := runNode(t, cfg, cfg.Buffer.Dir, nil)
	sendRawOutcomeTraffic(t, n, s)
	want := wantRawOutcomes("edge-dir")
	waitSentryOutcomes(t, s, want, 15*time.Second)
}

// A static Baton that emits raw outcomes takes them from its internal
// static relays, as a managed one does (202 {}, into its buffer, on to
// where client_report is routed: here Kafka), and refuses a static relay
// that is not internal (403) and a signature that does not verify (401).
func TestStaticBatonTakesOutcomesOfInternalRelays(t *testing.T) {
	internal, err := auth.Generate()
	if err != nil {
		t.Fatal(err)
	}
	other, err := auth.Generate()
	if err != nil {
		t.Fatal(err)
	}
	n := startNode(t, "mode: static\nprojects:\n  \"42\": {public_keys: ["+testKey+"]}\n"+
		"routes:\n  default: {kafka: embedded, topic: \"baton.{class}\"}\n"+
		"outcomes:\n  emit_outcomes: \"true\"\n  batch_interval: 10ms\n"+
		"auth:\n  static_relays:\n"+
		fmt.Sprintf("    %s: {public_key: %s, internal: true}\n", internal.ID, auth.FormatPublicKey(internal.PublicKey))+
		fmt.Sprintf("    %s: {public_key: %s}\n", other.ID, auth.FormatPublicKey(other.PublicKey)))
	const line = `{"timestamp":"2026-01-01T00:00:00.000000Z","project_id":42,"outcome":3,"reason":"internal","source":"down","category":1,"quantity":2}`
	body := []byte(`{"outcomes":[` + line + `]}`)
	send := func(from, signer *auth.Credentials) (int, string) {
		status, resp, _ := post(t, n.url+"/api/0/relays/outcomes/", body, map[string]string{
			auth.HeaderRelayID: from.ID, auth.HeaderRelaySignature: signer.Sign(body, time.Now()), "Content-Type": "application/json",
		})
		return status, resp
	}
	if status, resp := send(internal, internal); status != 202 || resp != "{}" {
		t.Fatalf("outcomes of an internal static relay: %d %s, want 202 {}", status, resp)
	}
	if got := consume(t, n.kafka, "outcomes", 1, 15*time.Second); string(got[0].Value) != line {
		t.Errorf("outcomes topic: %s, want %s", got[0].Value, line)
	}
	if status, resp := send(other, other); status != 403 {
		t.Errorf("outcomes of a static relay that is not internal: %d %s, want 403", status, resp)
	}
	if status, resp := send(internal, other); status != 401 {
		t.Errorf("outcomes with a bad signature: %d %s, want 401", status, resp)
	}
	st := waitBalanced(t, n, 15*time.Second)
	if cr := st.Classes["client_report"]; cr.Accepted.Items != 1 || cr.Delivered.Items != 1 {
		t.Errorf("client_report class %+v: want the outcome accepted and delivered", cr)
	}
	if o := st.Outcomes; o == nil || o.Accepted.Items != 1 || o.Delivered.Items != 1 || o.Produced.Records != 0 {
		t.Errorf("outcomes stats %+v: want the outcome accepted and delivered", o)
	}
}

// A proxy Baton passes /api/0/relays/outcomes/ upstream as it came, with
// the downstream relay's signature: a managed Baton behind a proxy one
// gets its raw outcomes to Sentry, which verifies the downstream relay.
func TestProxyBatonForwardsOutcomes(t *testing.T) {
	settleDialer(t)
	s := newFakeSentry(t)
	s.setProject(managedKey, rawOutcomeState())
	p := startNode(t, fmt.Sprintf("mode: proxy\nupstreams:\n  up: {urls: [%s]}\nroutes:\n  default: {upstream: up}\n", s.url()))
	down := startNode(t, managedYAML(p.url, "outcomes:\n  emit_outcomes: \"true\"\n  batch_interval: 10ms\n  source: edge-d\n"))
	sendRawOutcomeTraffic(t, down, s)
	want := wantRawOutcomes("edge-d")
	waitSentryOutcomes(t, s, want, 20*time.Second)
	if id := s.outcomes()[0].RelayID; s.registered()[id] == "" {
		t.Errorf("outcomes came from %q, not the registered downstream relay", id)
	}
	if st := p.r.Stats(); st.Classes["client_report"].Accepted.Records != 0 {
		t.Errorf("the proxy Baton buffered outcomes: %+v", st.Classes["client_report"])
	}
}
