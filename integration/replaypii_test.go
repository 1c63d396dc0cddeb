package integration

import (
	"bytes"
	"compress/zlib"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"
)

// A replay (replay_event and zlib-compressed replay_recording) sent to a
// managed Baton whose project has a piiConfig and the
// session-replay-recording-scrubbing feature reaches Sentry scrubbed as
// Relay scrubs it: the replay event's user e-mail, and in the recording
// the Sentry custom event's payload data (the DOM snapshot's text node is
// left, as Relay leaves it), at ingest and on release after waiting for
// the config; the same replay to a project without rules arrives
// byte-identical, to one without the feature with only its event
// scrubbed, and a recording that does not decompress is
// dropped as invalid.
func TestReplayPIIScrubbing(t *testing.T) {
	settleDialer(t)
	s := newFakeSentry(t)
	s.setPending(managedKey, 3) // the first replay waits for the config
	s.setProject(managedKey, fakeSentryProjectState(42, managedKey, "r1", func(m map[string]any) {
		c := m["config"].(map[string]any)
		c["features"] = []any{"organizations:session-replay", "organizations:session-replay-recording-scrubbing"}
		c["piiConfig"] = json.RawMessage(`{"applications":{"$string":["@email"]}}`)
	}))
	s.setProject(managedKey2, fakeSentryProjectState(43, managedKey2, "r1", func(m map[string]any) {
		m["config"].(map[string]any)["features"] = []any{"organizations:session-replay"}
	}))
	// A project with the rules but without the recording feature: its
	// replay events are scrubbed, its recordings are not (as in Relay).
	const key3 = "aaaabbbbccccddddaaaabbbbccccdddd"
	s.setProject(key3, fakeSentryProjectState(44, key3, "r1", func(m map[string]any) {
		c := m["config"].(map[string]any)
		c["features"] = []any{"organizations:session-replay"}
		c["piiConfig"] = json.RawMessage(`{"applications":{"$string":["@email"]}}`)
	}))
	n := startNode(t, managedYAML(s.url(), ""))

	const rrweb = `[{"type":2,"timestamp":1,"data":{"node":{"type":0,"id":1,"childNodes":[{"type":3,"id":2,"textContent":"mail jane@example.com"}]},"initialOffset":{"left":0,"top":0}}},` +
		`{"type":5,"timestamp":2,"data":{"tag":"breadcrumb","payload":{"type":"default","category":"ui.click","data":{"to":"jane@example.com"}}}}]`
	var z bytes.Buffer
	zw := zlib.NewWriter(&z)
	zw.Write([]byte(rrweb))
	zw.Close()
	recording := append([]byte("{\"segment_id\":0}\n"), z.Bytes()...)
	replayEvent := func(marker string) string {
		return `{"type":"replay_event","replay_id":"ab3d4f5e6a7b4c8d9e0f1a2b3c4d5e6f","segment_id":0,"urls":["https://app.example/` + marker + `"],"user":{"email":"jane@example.com"}}`
	}
	send := func(pid uint64, key, marker string, rec []byte) {
		t.Helper()
		ev := replayEvent(marker)
		body := fmt.Appendf(nil, "{\"dsn\":\"http://%s@h/%d\"}\n{\"type\":\"replay_event\",\"length\":%d}\n%s\n{\"type\":\"replay_recording\",\"length\":%d}\n",
			key, pid, len(ev), ev, len(rec))
		body = append(append(body, rec...), '\n')
		if code, resp, _ := postEnvelope(t, n, pid, key, body, nil); code != 200 {
			t.Fatalf("%s: %d %s", marker, code, resp)
		}
	}
	items := func(marker string) (event, rec []byte) {
		t.Helper()
		fakeWaitFor(t, 15*time.Second, func() bool { _, _, ok := deliveredItem(t, s, marker, "replay_recording"); return ok },
			func() string { return "no replay " + marker + " reached the fake" })
		_, event, _ = deliveredItem(t, s, marker, "replay_event")
		_, rec, _ = deliveredItem(t, s, marker, "replay_recording")
		return event, rec
	}

	send(42, managedKey, "REPLAY-WAITED", recording) // scrubbed on release
	if st := n.r.Stats(); st.Waiting == 0 {
		t.Fatal("nothing waits for the config: the release path is not exercised")
	}
	send(43, managedKey2, "REPLAY-PLAIN", recording)
	if ev, rec := items("REPLAY-PLAIN"); string(ev) != replayEvent("REPLAY-PLAIN") || !bytes.Equal(rec, recording) {
		t.Errorf("replay of a project without rules changed:\n event %s\n recording %q", ev, rec)
	}

	send(44, key3, "REPLAY-NOFEATURE", recording)
	if ev, rec := items("REPLAY-NOFEATURE"); !strings.Contains(string(ev), `"email":"[email]"`) || !bytes.Equal(rec, recording) {
		t.Errorf("without the recording feature: event scrubbed, recording as sent; got\n event %s\n recording %q", ev, rec)
	}
	for _, marker := range []string{"REPLAY-WAITED", "REPLAY-SCRUBBED"} {
		if marker == "REPLAY-SCRUBBED" {
			if st := n.r.Stats(); st.Waiting != 0 {
				t.Fatalf("%d records still wait for the config", st.Waiting)
			}
			send(42, managedKey, marker, recording) // known now: scrubbed at ingest
		}
		checkScrubbed(t, marker, items, rrweb)
	}

	send(42, managedKey, "REPLAY-BROKEN", []byte("{\"segment_id\":0}\n\x16garbage"))
	st := waitBalanced(t, n, 15*time.Second)
	r := st.Classes["replay"]
	if r.Delivered.Records != 4 || r.Dropped["invalid"].Records != 1 {
		t.Fatalf("replay outcomes: %+v", r)
	}
}

// checkScrubbed checks the replay marker reached the fake scrubbed.
func checkScrubbed(t *testing.T, marker string, items func(string) ([]byte, []byte), rrweb string) {
	t.Helper()
	ev, rec := items(marker)
	var e struct {
		User struct{ Email string } `json:"user"`
	}
	if err := json.Unmarshal(ev, &e); err != nil || e.User.Email != "[email]" {
		t.Errorf("%s: replay_event user.email = %q (%v), want [email]: %s", marker, e.User.Email, err, ev)
	}
	nl := bytes.IndexByte(rec, '\n')
	if nl < 0 || string(rec[:nl+1]) != "{\"segment_id\":0}\n" {
		t.Fatalf("%s: recording header lost: %q", marker, rec)
	}
	zr, err := zlib.NewReader(bytes.NewReader(rec[nl+1:]))
	if err != nil {
		t.Fatalf("%s: scrubbed recording is not zlib: %v", marker, err)
	}
	got, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.Replace(rrweb, `"to":"jane@example.com"`, `"to":"[email]"`, 1); string(got) != want {
		t.Errorf("%s: scrubbed recording:\n got %s\nwant %s", marker, got, want)
	}
}

// A replay_video item (Relay's MessagePack of replay_event,
// replay_recording and replay_video) sent to a managed Baton whose
// project scrubs replays reaches Sentry with its event and recording
// scrubbed as the separate items are, the video's bytes unchanged; one
// that is not such a MessagePack, or has no video, is dropped as invalid.
func TestReplayVideoPIIScrubbing(t *testing.T) {
	settleDialer(t)
	s := newFakeSentry(t)
	s.setProject(managedKey, fakeSentryProjectState(42, managedKey, "r1", func(m map[string]any) {
		c := m["config"].(map[string]any)
		c["features"] = []any{"organizations:session-replay", "organizations:session-replay-recording-scrubbing"}
		c["piiConfig"] = json.RawMessage(`{"applications":{"$string":["@email"]}}`)
	}))
	n := startNode(t, managedYAML(s.url(), ""))

	const rrweb = `[{"type":5,"timestamp":2,"data":{"tag":"breadcrumb","payload":{"type":"default","category":"ui.click","data":{"to":"jane@example.com"}}}}]`
	var z bytes.Buffer
	zw := zlib.NewWriter(&z)
	zw.Write([]byte(rrweb))
	zw.Close()
	video := []byte("\x00\x00\x00\x18ftypmp42 jane@example.com stays: video bytes are not text")
	send := func(marker string, payload []byte) {
		t.Helper()
		body := fmt.Appendf(nil, "{\"dsn\":\"http://%s@h/42\",\"event_id\":\"%s\"}\n{\"type\":\"replay_video\",\"length\":%d}\n",
			managedKey, marker, len(payload))
		body = append(append(body, payload...), '\n')
		if code, resp, _ := postEnvelope(t, n, 42, managedKey, body, nil); code != 200 {
			t.Fatalf("%s: %d %s", marker, code, resp)
		}
	}
	type part struct {
		Event     []byte `msgpack:"replay_event"`
		Recording []byte `msgpack:"replay_recording"`
		Video     []byte `msgpack:"replay_video"`
	}
	enc := func(p part) []byte {
		b, err := msgpack.Marshal(&p)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	const marker = "0a1b2c3d4e5f40718293a4b5c6d7e8f9"
	ev := `{"type":"replay_event","replay_id":"ab3d4f5e6a7b4c8d9e0f1a2b3c4d5e6f","segment_id":0,"user":{"email":"jane@example.com"}}`
	send(marker, enc(part{Event: []byte(ev), Recording: append([]byte("{\"segment_id\":0}\n"), z.Bytes()...), Video: video}))
	send("1a1b2c3d4e5f40718293a4b5c6d7e8f9", []byte("not msgpack"))
	send("2a1b2c3d4e5f40718293a4b5c6d7e8f9", enc(part{Event: []byte(ev), Recording: []byte("{}\n"), Video: nil}))

	fakeWaitFor(t, 15*time.Second, func() bool { _, _, ok := deliveredItem(t, s, marker, "replay_video"); return ok },
		func() string { return "the replay video did not reach the fake" })
	_, payload, _ := deliveredItem(t, s, marker, "replay_video")
	var got part
	if err := msgpack.Unmarshal(payload, &got); err != nil {
		t.Fatalf("delivered replay_video does not decode: %v", err)
	}
	var e struct {
		User struct{ Email string } `json:"user"`
	}
	if err := json.Unmarshal(got.Event, &e); err != nil || e.User.Email != "[email]" {
		t.Errorf("replay_event inside the video: user.email %q (%v): %s", e.User.Email, err, got.Event)
	}
	checkScrubbed(t, marker, func(string) ([]byte, []byte) { return got.Event, got.Recording }, rrweb)
	if !bytes.Equal(got.Video, video) {
		t.Errorf("video bytes changed: %q", got.Video)
	}
	st := waitBalanced(t, n, 15*time.Second)
	if r := st.Classes["replay"]; r.Delivered.Records != 1 || r.Dropped["invalid"].Records != 2 {
		t.Fatalf("replay outcomes: %+v", r)
	}
}
