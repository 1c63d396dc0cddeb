package relay

import (
	"bytes"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

// splitReplayVideo reads Relay's ReplayVideoEvent as rmp_serde does: a
// map by names (any order, unknown keys skipped) or an array in field
// order, bin or str values; anything else, trailing bytes or an empty
// video is refused. The parts alias the payload.
func TestSplitReplayVideo(t *testing.T) {
	enc := func(v any) []byte {
		b, err := msgpack.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	want := replayVideo{Event: []byte(`{"type":"replay_event"}`), Recording: []byte("rec"), Video: []byte("\x00\x01video")}
	for _, c := range []struct {
		name string
		in   []byte
		ok   bool
	}{
		{"named map", enc(&want), true},
		{"other order, unknown key", enc(map[string]any{"replay_video": want.Video, "x": []int{1, 2}, "replay_recording": want.Recording, "replay_event": want.Event}), true},
		{"array", enc([]any{want.Event, want.Recording, want.Video}), true},
		{"str values", enc(map[string]string{"replay_event": string(want.Event), "replay_recording": "rec", "replay_video": string(want.Video)}), true},
		{"missing part", enc(map[string][]byte{"replay_event": want.Event, "replay_video": want.Video}), false},
		{"empty video", enc(&replayVideo{Event: want.Event, Recording: want.Recording, Video: []byte{}}), false},
		{"array of two", enc([]any{want.Event, want.Video}), false},
		{"number value", enc(map[string]any{"replay_event": 1, "replay_recording": want.Recording, "replay_video": want.Video}), false},
		{"trailing bytes", append(enc(&want), 0xc0), false},
		{"truncated", enc(&want)[:20], false},
		{"JSON", []byte(`{"replay_event":"x"}`), false},
		{"empty", nil, false},
	} {
		got, err := splitReplayVideo(c.in)
		if (err == nil) != c.ok {
			t.Errorf("%s: err %v, want ok %v", c.name, err, c.ok)
			continue
		}
		if !c.ok {
			continue
		}
		if !bytes.Equal(got.Event, want.Event) || !bytes.Equal(got.Recording, want.Recording) || !bytes.Equal(got.Video, want.Video) {
			t.Errorf("%s: %q %q %q", c.name, got.Event, got.Recording, got.Video)
		}
		if &got.Video[0] != &c.in[len(c.in)-len(want.Video)] && c.name == "named map" {
			t.Errorf("%s: the video was copied", c.name)
		}
	}
	// Encoded again as Relay encodes it, it reads back the same.
	b, err := appendReplayVideo([]byte("x"), &want)
	if err != nil || b[0] != 'x' {
		t.Fatal(err)
	}
	if got, err := splitReplayVideo(b[1:]); err != nil || !bytes.Equal(got.Video, want.Video) {
		t.Errorf("round trip: %v %q", err, got.Video)
	}
}

func FuzzSplitReplayVideo(f *testing.F) {
	b, _ := msgpack.Marshal(&replayVideo{Event: []byte("{}"), Recording: []byte("r"), Video: []byte("v")})
	f.Add(b)
	f.Fuzz(func(t *testing.T, p []byte) {
		v, err := splitReplayVideo(p)
		if err != nil {
			return
		}
		out, err := appendReplayVideo(nil, &v)
		if err != nil {
			t.Fatal(err)
		}
		w, err := splitReplayVideo(out)
		if err != nil || !bytes.Equal(w.Event, v.Event) || !bytes.Equal(w.Recording, v.Recording) || !bytes.Equal(w.Video, v.Video) {
			t.Fatalf("round trip: %v", err)
		}
	})
}
