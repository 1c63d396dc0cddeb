package integration

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/baton-relay/baton/envelope"
)

// attachPII is a piiConfig with attachment rules: e-mail addresses in
// log.txt replaced, IP addresses in every attachment masked. Relay scrubs
// attachments for a config that names one ($attachments.'log.txt').
const attachPII = `{"applications":{"$attachments.'log.txt'":["@email:replace"],"$attachments.**":["@ip:mask"]}}`

// An attachment with an e-mail address and an IP address sent to a
// managed Baton whose project's piiConfig has attachment rules arrives at
// Sentry scrubbed as Relay scrubs it, its length kept; the same
// attachment to a project without such a rule arrives byte-identical, as
// does one sent while the project's config was not known yet and released
// once it is (scrubbed then).
func TestAttachmentPIIScrubbing(t *testing.T) {
	settleDialer(t)
	s := newFakeSentry(t)
	s.setPending(managedKey, 3) // the first envelope waits for the config
	s.setProject(managedKey, fakeSentryProjectState(42, managedKey, "r1", func(m map[string]any) {
		m["config"].(map[string]any)["piiConfig"] = json.RawMessage(attachPII)
	}))
	s.setProject(managedKey2, fakeSentryProjectState(43, managedKey2, "r1", nil))
	n := startNode(t, managedYAML(s.url(), ""))

	content := func(marker string) string {
		return marker + " contact jane.doe@example.com from 192.168.1.20\n"
	}
	envelopeWith := func(pid uint64, key, marker string) []byte {
		c := content(marker)
		return fmt.Appendf(nil, "{\"dsn\":\"http://%s@h/%d\"}\n{\"type\":\"event\"}\n{\"message\":\"with attachment\"}\n"+
			"{\"type\":\"attachment\",\"length\":%d,\"filename\":\"log.txt\",\"attachment_type\":\"event.attachment\"}\n%s\n",
			key, pid, len(c), c)
	}
	send := func(pid uint64, key, marker string) {
		t.Helper()
		if code, body, _ := postEnvelope(t, n, pid, key, envelopeWith(pid, key, marker), nil); code != 200 {
			t.Fatalf("%s: %d %s", marker, code, body)
		}
	}
	attachment := func(marker string) string {
		t.Helper()
		fakeWaitFor(t, 15*time.Second, func() bool { _, _, ok := deliveredItem(t, s, marker, "attachment"); return ok },
			func() string { return "no attachment " + marker + " reached the fake" })
		_, payload, _ := deliveredItem(t, s, marker, "attachment")
		return string(payload)
	}

	send(42, managedKey, "ATT-WAITED") // the config is pending: scrubbed on release
	if st := n.r.Stats(); st.Waiting == 0 {
		t.Fatal("nothing waits for the config: the release path is not exercised")
	}
	send(43, managedKey2, "ATT-PLAIN")
	if got, want := attachment("ATT-PLAIN"), content("ATT-PLAIN"); got != want {
		t.Errorf("attachment of a project without attachment rules:\n got %q\nwant %q (byte-identical)", got, want)
	}
	want := func(marker string) string { return marker + " contact [email]************* from ************\n" }
	if got := attachment("ATT-WAITED"); got != want("ATT-WAITED") {
		t.Errorf("attachment released once the config came:\n got %q\nwant %q", got, want("ATT-WAITED"))
	}
	// The config is known now: scrubbed at ingest.
	if st := n.r.Stats(); st.Waiting != 0 {
		t.Fatalf("%d records still wait for the config", st.Waiting)
	}
	send(42, managedKey, "ATT-SCRUBBED")
	if got := attachment("ATT-SCRUBBED"); got != want("ATT-SCRUBBED") {
		t.Errorf("attachment scrubbed at ingest:\n got %q\nwant %q", got, want("ATT-SCRUBBED"))
	}
	waitBalanced(t, n, 15*time.Second)
}

// A minidump sent to a managed Baton whose project has a piiConfig is
// scrubbed by its structure, as Relay scrubs it, whatever the config's
// selectors name: here its heap's IP address ($heap_memory) and the
// directories of its module paths ($string), while the thread stack
// (reached only by specific selectors) stays whole; a plain attachment
// beside it is left alone, the config naming no file.
// minidump-structured.dmp is relay/pii's test dump (minidump_test.go).
func TestMinidumpPIIScrubbing(t *testing.T) {
	settleDialer(t)
	s := newFakeSentry(t)
	s.setProject(managedKey, fakeSentryProjectState(42, managedKey, "r1", func(m map[string]any) {
		m["config"].(map[string]any)["piiConfig"] = json.RawMessage(`{"applications":{"$heap_memory":["@ip:mask"],"$string":["@anything:mask"]}}`)
	}))
	n := startNode(t, managedYAML(s.url(), ""))
	dump := readTestdata(t, "minidump-structured.dmp")
	const plain = "MD-PLAIN from 192.168.1.20\n"
	const mark = "3d7f1a2b4c5e6f708192a3b4c5d6e7f8" // the event id: $string masks the message
	body := fmt.Appendf(nil, "{\"dsn\":\"http://%s@h/42\",\"event_id\":\"%s\"}\n{\"type\":\"event\"}\n{\"message\":\"hi\"}\n"+
		"{\"type\":\"attachment\",\"length\":%d,\"filename\":\"crash.dmp\",\"attachment_type\":\"event.minidump\"}\n%s\n"+
		"{\"type\":\"attachment\",\"length\":%d,\"filename\":\"log.txt\"}\n%s\n",
		managedKey, mark, len(dump), dump, len(plain), plain)
	if code, resp, _ := postEnvelope(t, n, 42, managedKey, body, nil); code != 200 {
		t.Fatalf("%d %s", code, resp)
	}
	fakeWaitFor(t, 15*time.Second, func() bool { _, _, ok := deliveredItem(t, s, mark, "attachment"); return ok },
		func() string { return "the minidump did not reach the fake" })

	var got, gotPlain []byte
	for _, e := range s.envelopes() {
		if !bytes.Contains(e.Body, []byte(mark)) {
			continue
		}
		env, err := envelope.Parse(e.Body)
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range env.Items {
			switch it.Filename {
			case "crash.dmp":
				got = it.Payload
			case "log.txt":
				gotPlain = it.Payload
			}
		}
	}
	if len(got) != len(dump) {
		t.Fatalf("minidump of %d bytes, sent %d", len(got), len(dump))
	}
	for _, c := range []struct {
		text string
		kept bool
	}{
		{"heap: 10.0.0.2", false}, {"heap: ********", true}, // heap scrubbed
		{"stack: 10.0.0.1 alice@example.com", true}, // the stack is not
		{"crash.pdb", true}, {`C:\projects`, false}, // module paths: base names kept
	} {
		if bytes.Contains(got, []byte(c.text)) != c.kept {
			t.Errorf("scrubbed minidump contains %q: %v, want %v", c.text, !c.kept, c.kept)
		}
	}
	if string(gotPlain) != plain {
		t.Errorf("plain attachment %q, want it byte-identical (the config names no file)", gotPlain)
	}
	waitBalanced(t, n, 15*time.Second)
}
