package envelope

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
)

// recording builds a replay_recording payload: the header line, then the
// rrweb JSON (n bytes of it) compressed with enc: "zlib", "gzip" or "none".
func recording(t testing.TB, enc string, n int) []byte {
	t.Helper()
	body := []byte(`[{"type":3,"data":"` + strings.Repeat("a", max(n-24, 0)) + `"}]`)
	body = append(body, strings.Repeat(" ", max(n-len(body), 0))...)
	var buf bytes.Buffer
	buf.WriteString(`{"segment_id":0}` + "\n")
	switch enc {
	case "zlib":
		w := zlib.NewWriter(&buf)
		w.Write(body)
		w.Close()
	case "gzip":
		w := gzip.NewWriter(&buf)
		w.Write(body)
		w.Close()
	default:
		buf.Write(body)
	}
	return buf.Bytes()
}

func TestRecordingSize(t *testing.T) {
	const n = 100 << 10
	for _, enc := range []string{"zlib", "gzip", "none"} {
		p := recording(t, enc, n)
		if got, err := RecordingSize(p, 1<<20); got != n || err != nil {
			t.Errorf("%s: RecordingSize = %d, %v; want %d", enc, got, err, n)
		}
		// At the limit it fits; one byte below, it is over and counting
		// stopped at max+1.
		if got, err := RecordingSize(p, n); got != n || err != nil {
			t.Errorf("%s, max %d: = %d, %v; want %d", enc, n, got, err, n)
		}
		if got, err := RecordingSize(p, n-1); got != n || err != nil {
			t.Errorf("%s, max %d: = %d, %v; want %d (max+1)", enc, n-1, got, err, n)
		}
	}
	for name, p := range map[string][]byte{
		"no header line":  []byte(`{"segment_id":0}`),
		"empty recording": []byte("{\"segment_id\":0}\n"),
		"not zlib":        []byte("{\"segment_id\":0}\n\x16garbage"),
	} {
		if _, err := RecordingSize(p, 1<<20); !errors.Is(err, ErrRecording) {
			t.Errorf("%s: err = %v, want ErrRecording", name, err)
		}
	}
	// A truncated stream reports what it decoded before the break.
	p := recording(t, "zlib", n)
	got, err := RecordingSize(p[:len(p)/2], 1<<30)
	if !errors.Is(err, ErrRecording) || got == 0 || got >= n {
		t.Errorf("truncated: = %d, %v; want a partial count and ErrRecording", got, err)
	}
}

// A bomb is counted up to the limit, through scratch: decoding a 16 MiB
// recording allocates nothing close to its size.
func TestRecordingSizeBomb(t *testing.T) {
	p := recording(t, "zlib", 16<<20)
	if len(p) > 64<<10 {
		t.Fatalf("bomb is %d bytes compressed", len(p))
	}
	if got, err := RecordingSize(p, 4<<20); got != 4<<20+1 || err != nil {
		t.Fatalf("= %d, %v; want max+1", got, err)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	if got, _ := RecordingSize(p, 1<<30); got != 16<<20 {
		t.Fatalf("= %d, want %d", got, 16<<20)
	}
	runtime.ReadMemStats(&after)
	if n := after.TotalAlloc - before.TotalAlloc; n > 1<<20 {
		t.Errorf("counting a 16 MiB recording allocated %d bytes; the output must not be held", n)
	}
}

func TestCheckReplay(t *testing.T) {
	env := func(items ...string) *Envelope {
		t.Helper()
		var b strings.Builder
		b.WriteString("{}\n")
		for _, it := range items {
			b.WriteString(it)
		}
		e, err := Parse([]byte(b.String()))
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	item := func(typ string, payload []byte) string {
		return fmt.Sprintf("{\"type\":%q,\"length\":%d}\n%s\n", typ, len(payload), payload)
	}
	rec := recording(t, "zlib", 200<<10)
	event := item("replay_event", bytes.Repeat([]byte("e"), 1000))
	lim := func(uncompressed, message int) *Limits {
		return &Limits{MaxReplayUncompressedSize: uncompressed, MaxReplayMessageSize: message}
	}
	message := ReplayMessageOverhead + 1000 + len(rec)
	for _, c := range []struct {
		name  string
		e     *Envelope
		lim   *Limits
		limit string // "" passes
		size  int
	}{
		{"defaults", env(event, item("replay_recording", rec)), nil, "", 0},
		{"no replay", env(item("event", []byte("{}"))), lim(1, 1), "", 0},
		{"uncompressed over", env(event, item("replay_recording", rec)), lim(200<<10-1, 1<<20), "max_replay_uncompressed_size", 200 << 10},
		{"uncompressed at the limit", env(event, item("replay_recording", rec)), lim(200<<10, 1<<20), "", 0},
		{"message at the limit", env(event, item("replay_recording", rec)), lim(1<<20, message), "max_replay_message_size", message},
		{"message under", env(event, item("replay_recording", rec)), lim(1<<20, message+1), "", 0},
		{"video counts", env(event, item("replay_recording", rec), item("replay_video", make([]byte, 5000))), lim(1<<20, message+1), "max_replay_message_size", message + 5000},
		{"undecodable recording passes", env(item("replay_recording", []byte("{}\n\x16x"))), lim(1, 1<<20), "", 0},
	} {
		err := c.e.CheckReplay(c.lim)
		if c.limit == "" {
			if err != nil {
				t.Errorf("%s: %v", c.name, err)
			}
			continue
		}
		var le *LimitError
		if !errors.As(err, &le) || !errors.Is(err, ErrTooLarge) || le.Limit != c.limit || le.Size != c.size {
			t.Errorf("%s: err = %v, want %s with size %d", c.name, err, c.limit, c.size)
		}
	}
}
