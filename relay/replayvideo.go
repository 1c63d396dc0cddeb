package relay

import (
	"bytes"
	"errors"
	"io"

	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"
)

// Relay's discard reason for a replay_video item it cannot read
// (DiscardReason::InvalidReplayVideoEvent).
const reasonInvalidReplayVideo = "invalid_replay_video"

// errReplayVideo is a replay_video payload that is not Relay's
// ReplayVideoEvent: a MessagePack map (or array, in field order) of
// replay_event, replay_recording and replay_video as bytes, the video not
// empty.
var errReplayVideo = errors.New("replay_video: not a MessagePack replay_event, replay_recording and replay_video")

// replayVideo is a replay_video item's parts. Decoded by
// splitReplayVideo they alias the payload; encoded by MessagePack as
// Relay re-encodes them (rmp_serde's to_vec_named: a map of the three
// names to bin values).
type replayVideo struct {
	Event     []byte `msgpack:"replay_event"`
	Recording []byte `msgpack:"replay_recording"`
	Video     []byte `msgpack:"replay_video"`
}

// splitReplayVideo reads p's parts without copying them: the decoder reads
// straight from a bytes.Reader (an io.ByteScanner, so it adds no buffer),
// whose position is then where a bin or str value's bytes start.
func splitReplayVideo(p []byte) (replayVideo, error) {
	var v replayVideo
	r := bytes.NewReader(p)
	dec := msgpack.NewDecoder(r)
	value := func() ([]byte, error) {
		n, err := dec.DecodeBytesLen()
		if err != nil || n < 0 {
			return nil, errReplayVideo
		}
		at := len(p) - r.Len()
		if n > r.Len() {
			return nil, errReplayVideo
		}
		if _, err := r.Seek(int64(n), io.SeekCurrent); err != nil {
			return nil, errReplayVideo
		}
		return p[at : at+n : at+n], nil
	}
	c, err := dec.PeekCode()
	if err != nil {
		return v, errReplayVideo
	}
	if msgpcode.IsFixedArray(c) || c == msgpcode.Array16 || c == msgpcode.Array32 { // serde's sequence form of a struct
		if n, err := dec.DecodeArrayLen(); err != nil || n != 3 {
			return v, errReplayVideo
		}
		for _, f := range []*[]byte{&v.Event, &v.Recording, &v.Video} {
			if *f, err = value(); err != nil {
				return v, err
			}
		}
	} else {
		n, err := dec.DecodeMapLen()
		if err != nil || n < 0 {
			return v, errReplayVideo
		}
		seen := 0
		for range n {
			key, err := dec.DecodeString()
			if err != nil {
				return v, errReplayVideo
			}
			var f *[]byte
			switch key {
			case "replay_event":
				f, seen = &v.Event, seen|1
			case "replay_recording":
				f, seen = &v.Recording, seen|2
			case "replay_video":
				f, seen = &v.Video, seen|4
			default: // serde ignores unknown fields
				if dec.Skip() != nil {
					return v, errReplayVideo
				}
				continue
			}
			if *f, err = value(); err != nil {
				return v, err
			}
		}
		if seen != 7 {
			return v, errReplayVideo
		}
	}
	if r.Len() != 0 || len(v.Video) == 0 { // trailing bytes; Relay refuses an empty video
		return v, errReplayVideo
	}
	return v, nil
}

// appendReplayVideo appends v encoded as Relay encodes it.
func appendReplayVideo(dst []byte, v *replayVideo) ([]byte, error) {
	b, err := msgpack.Marshal(v)
	if err != nil {
		return dst, err
	}
	return append(dst, b...), nil
}
