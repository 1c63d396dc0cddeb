package routing

import (
	"bytes"
	"testing"
	"time"

	"github.com/baton-relay/baton/envelope"
)

func TestAdjustSentAt(t *testing.T) {
	t.Parallel()
	const items = "\n{\"type\":\"event\"}\n{\"sent_at\":\"2000-01-01T00:00:00Z\"}\n"
	tests := []struct {
		name, header, want string
	}{
		{"utc", `{"sent_at":"2025-03-01T12:00:00Z"}`, `{"sent_at":"2025-03-01T12:01:00Z"}`},
		{"nanos and offset kept", `{"event_id":"x", "sent_at" : "2025-03-01T12:00:00.123456789+02:00" ,"z":1}`,
			`{"event_id":"x", "sent_at" : "2025-03-01T12:01:00.123456789+02:00" ,"z":1}`},
		{"after nested", `{"sdk":{"sent_at":"2025-03-01T00:00:00Z","x":["}",{"y":"\""}]},"sent_at":"2025-03-01T12:00:00Z"}`,
			`{"sdk":{"sent_at":"2025-03-01T00:00:00Z","x":["}",{"y":"\""}]},"sent_at":"2025-03-01T12:01:00Z"}`},
		{"only nested", `{"sdk":{"sent_at":"2025-03-01T00:00:00Z"}}`, `{"sdk":{"sent_at":"2025-03-01T00:00:00Z"}}`},
		{"null", `{"sent_at":null}`, `{"sent_at":null}`},
		{"not a time", `{"sent_at":"yesterday"}`, `{"sent_at":"yesterday"}`},
		{"empty", `{}`, `{}`},
		{"not json", `sent_at`, `sent_at`},
		{"unterminated", `{"a":"b`, `{"a":"b`},
		// The key is read as envelope.Parse and Relay read it.
		{"escaped key", `{"sent\u005fat":"2025-03-01T12:00:00Z"}`, `{"sent\u005fat":"2025-03-01T12:01:00Z"}`},
		{"not a string", `{"sent_at":1740830400}`, `{"sent_at":1740830400}`},
		{"key in value", `{"a":"\"sent_at\":\"2025-03-01T12:00:00Z\""}`, `{"a":"\"sent_at\":\"2025-03-01T12:00:00Z\""}`},
	}
	for _, tt := range tests {
		got := adjustSentAt(nil, []byte(tt.header+items), time.Minute)
		if string(got) != tt.want+items {
			t.Errorf("%s:\n got %q\nwant %q", tt.name, got, tt.want+items)
		}
	}
	// No header line end: the envelope is only a header.
	if got := adjustSentAt(nil, []byte(`{"sent_at":"2025-03-01T12:00:00Z"}`), time.Second); string(got) != `{"sent_at":"2025-03-01T12:00:01Z"}` {
		t.Errorf("header only: %q", got)
	}
	// A zero or negative delay (clock went backwards) changes nothing.
	in := []byte(`{"sent_at":"2025-03-01T12:00:00Z"}` + items)
	if got := adjustSentAt(nil, in, -time.Hour); !bytes.Equal(got, in) {
		t.Errorf("negative delay: %q", got)
	}
}

func FuzzAdjustSentAt(f *testing.F) {
	f.Add([]byte(`{"sent_at":"2025-03-01T12:00:00Z"}`+"\n{}\n"), int64(time.Minute))
	f.Add([]byte(`{"a":[1,{"b":"}"}],"sent_at":"2025-03-01T12:00:00.5-07:00"}`), int64(time.Second))
	f.Add([]byte(`{"sent_at":"\`), int64(1))
	f.Fuzz(func(t *testing.T, env []byte, delay int64) {
		d := time.Duration(delay)
		out := adjustSentAt(nil, env, d)
		inLine, inRest, _ := bytes.Cut(env, []byte("\n"))
		outLine, outRest, _ := bytes.Cut(out, []byte("\n"))
		if !bytes.Equal(inRest, outRest) {
			t.Fatalf("bytes after the header line changed:\n in %q\nout %q", env, out)
		}
		if bytes.Equal(inLine, outLine) {
			return
		}
		// Only the sent_at value may differ, and by exactly d.
		s1, e1, ok1 := envelope.HeaderFieldSpan(inLine, "sent_at")
		s2, e2, ok2 := envelope.HeaderFieldSpan(outLine, "sent_at")
		if !ok1 || !ok2 || s1 != s2 {
			t.Fatalf("changed line without sent_at: %q -> %q", inLine, outLine)
		}
		if !bytes.Equal(inLine[:s1], outLine[:s2]) || !bytes.Equal(inLine[e1:], outLine[e2:]) {
			t.Fatalf("bytes around sent_at changed: %q -> %q", inLine, outLine)
		}
		t1, err1 := time.Parse(time.RFC3339Nano, string(inLine[s1+1:e1-1]))
		t2, err2 := time.Parse(time.RFC3339Nano, string(outLine[s2+1:e2-1]))
		if err1 != nil || err2 != nil || !t2.Equal(t1.Add(d)) {
			t.Fatalf("sent_at %q -> %q, want +%s", inLine[s1:e1], outLine[s2:e2], d)
		}
	})
}
