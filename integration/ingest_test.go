package integration

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/baton-relay/baton/envelope"
)

// TestEnvelopeToKafka is the README tour: an envelope posted to the
// embedded default is acknowledged with its event id and lands, payload
// bytes intact, in the error topic with its metadata headers.
func TestEnvelopeToKafka(t *testing.T) {
	n := startNode(t, "")
	body := []byte(`{"event_id":"9ec79c33ec9942ab8353589fcb2e04dc","sent_at":"2026-11-25T10:00:00Z"}
{"type":"event"}
{"message":"hello from the tour","level":"error"}
{"type":"attachment","length":11,"filename":"a.txt"}
hello
world
{"type":"session"}
{"sid":"3c6d2b51a4e547d4b7d8a5d2e1f0c9ab","status":"ok","init":true}
`)
	status, resp, _ := post(t, n.url+"/api/1/envelope/", body, authHeader(testKey))
	if status != 200 || resp != `{"id":"9ec79c33ec9942ab8353589fcb2e04dc"}` {
		t.Fatalf("POST = %d %s", status, resp)
	}

	recs := consume(t, n.kafka, "baton.error", 1, 10*time.Second)
	env, err := envelope.Parse(recs[0].Value)
	if err != nil {
		t.Fatalf("record in baton.error is not an envelope: %v\n%s", err, recs[0].Value)
	}
	if len(env.Items) != 2 || string(env.Items[0].Payload) != `{"message":"hello from the tour","level":"error"}` ||
		string(env.Items[1].Payload) != "hello\nworld" {
		t.Fatalf("error record carries the wrong items:\n%s", recs[0].Value)
	}
	if env.Header.EventID.String() != "9ec79c33ec9942ab8353589fcb2e04dc" {
		t.Errorf("envelope header lost its event_id: %s", env.Header.Raw)
	}
	if string(recs[0].Key) != "1" || header(recs[0], "public_key") != testKey || header(recs[0], "class") != "error" {
		t.Errorf("record key %q headers %v", recs[0].Key, recs[0].Headers)
	}

	recs = consume(t, n.kafka, "baton.session", 1, 10*time.Second)
	if !bytes.Contains(recs[0].Value, []byte(`"sid":"3c6d2b51a4e547d4b7d8a5d2e1f0c9ab"`)) {
		t.Fatalf("session record: %s", recs[0].Value)
	}
	st := waitBalanced(t, n, 10*time.Second)
	if st.Classes["error"].Delivered.Items != 2 || st.Classes["session"].Delivered.Items != 1 {
		t.Errorf("outcomes: %+v", st.Classes)
	}
}

// fixtureRequest is the part of a capture's .json the replay needs.
type fixtureRequest struct {
	File     string `json:"file"`
	WireFile string `json:"wire_file"`
	Endpoint string `json:"endpoint"`
	Request  struct {
		Method  string      `json:"method"`
		Path    string      `json:"path"`
		Query   string      `json:"query"`
		Headers [][2]string `json:"headers"`
	} `json:"request"`
}

// TestFixtureReplay replays every request real SDKs made (path, query,
// headers, gzip wire bytes) and checks each is accepted and that every item
// reaches the topic of its class with its payload intact.
func TestFixtureReplay(t *testing.T) {
	dir := filepath.Join(fixtures, "sdk-envelopes")
	n := startNode(t, "")
	jsons, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	if len(jsons) == 0 {
		t.Fatalf("no captures in %s", dir)
	}
	want := map[string][][]byte{} // topic → payloads expected in it
	for _, jf := range jsons {
		var fr fixtureRequest
		raw, err := os.ReadFile(jf)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(raw, &fr); err != nil {
			t.Fatalf("%s: %v", jf, err)
		}
		decoded, err := os.ReadFile(filepath.Join(dir, fr.File))
		if err != nil {
			t.Fatal(err)
		}
		body := decoded
		headers := map[string]string{}
		for _, h := range fr.Request.Headers {
			switch strings.ToLower(h[0]) {
			case "host", "content-length", "transfer-encoding", "connection":
				continue
			}
			headers[h[0]] = h[1]
		}
		if fr.WireFile != "" {
			if body, err = os.ReadFile(filepath.Join(dir, fr.WireFile)); err != nil {
				t.Fatal(err)
			}
		} else {
			delete(headers, "Content-Encoding")
		}
		url := n.url + fr.Request.Path
		if fr.Request.Query != "" {
			url += "?" + fr.Request.Query
		}
		status, resp, _ := post(t, url, body, headers)
		if status != 200 {
			t.Errorf("%s: POST %s = %d %s", fr.File, fr.Request.Path, status, resp)
			continue
		}
		if fr.Endpoint == "envelope" {
			env, err := envelope.Parse(decoded)
			if err != nil {
				t.Fatalf("%s: %v", fr.File, err)
			}
			for _, it := range env.Items {
				topic := "baton." + it.Class.String()
				want[topic] = append(want[topic], it.Payload)
			}
		} else {
			want["baton.error"] = append(want["baton.error"], nil) // a store event: one error record
		}
	}

	topics := make([]string, 0, len(want))
	for topic := range want {
		topics = append(topics, topic)
	}
	sort.Strings(topics)
	for _, topic := range topics {
		payloads := want[topic]
		var got [][]byte
		consumeUntil(t, n.kafka, topic, 15*time.Second, func(recs []*kgo.Record) bool {
			got = got[:0]
			for _, rec := range recs {
				got = append(got, rec.Value)
			}
			return countItems(got) >= len(payloads)
		})
		all := bytes.Join(got, []byte("\n"))
		for _, p := range payloads {
			if p != nil && !bytes.Contains(all, p) {
				t.Errorf("%s: a payload of %d bytes is missing or altered", topic, len(p))
			}
		}
		t.Logf("%s: %d records carrying %d items", topic, len(got), countItems(got))
	}
	waitBalanced(t, n, 15*time.Second)
}

func countItems(recs [][]byte) int {
	n := 0
	for _, r := range recs {
		if env, err := envelope.Parse(r); err == nil {
			n += len(env.Items)
		}
	}
	return n
}
