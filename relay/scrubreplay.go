package relay

import (
	"bytes"

	"github.com/baton-relay/baton/envelope"
	"github.com/baton-relay/baton/relay/event"
	"github.com/baton-relay/baton/relay/outcome"
	"github.com/baton-relay/baton/relay/pii"
	"github.com/baton-relay/baton/relay/project"
)

// Relay's discard reasons for the replays its scrubbing drops
// (DiscardReason::InvalidReplayEvent, InvalidReplayRecordingEvent).
const (
	reasonInvalidReplay          = "invalid_replay"
	reasonInvalidReplayRecording = "invalid_replay_recording"
)

// scrubsReplays reports whether st has replays to scrub: a PII config
// (or one that failed, which drops them as it drops events).
func scrubsReplays(env *envelope.Envelope, st *project.State) bool {
	if st == nil || st.PII == nil && st.PIIErr == nil {
		return false
	}
	for i := range env.Items {
		switch env.Items[i].Type {
		case envelope.ItemReplayEvent, envelope.ItemReplayRecording, envelope.ItemReplayVideo:
			return true
		}
	}
	return false
}

// replayScratch is the memory scrubbing env's replays with st's config
// takes beyond its output: each recording's pii.RecordingScratch for its
// size decompressed, counted at most to limit (envelope.RecordingSize; one
// recording is scrubbed at a time), or a replay_event's parsed tree
// (event.Cost). Recordings are sized (decompressed) only when the project
// scrubs them (FeatureReplayRecordingScrubbing).
func replayScratch(env *envelope.Envelope, st *project.State, limit int) (scratch, out int) {
	recordings := st.HasFeature(project.FeatureReplayRecordingScrubbing)
	for i := range env.Items {
		it := &env.Items[i]
		switch it.Type {
		case envelope.ItemReplayEvent:
			scratch = max(scratch, event.Cost(it.Payload))
			out += 2*len(it.Payload) + procSlack
		case envelope.ItemReplayRecording:
			if !recordings {
				continue
			}
			n, _ := envelope.RecordingSize(it.Payload, limit)
			scratch = max(scratch, pii.RecordingScratch(min(n, limit)))
			out += len(it.Payload) + procSlack
		case envelope.ItemReplayVideo:
			// Its event and recording as above, then the item encoded
			// again (MessagePack's own buffer, then its copy in out).
			v, err := splitReplayVideo(it.Payload)
			if err != nil {
				continue // dropped as invalid
			}
			encoded := len(it.Payload) + len(v.Event) + 2*procSlack + 16
			scratch = max(scratch, event.Cost(v.Event)+encoded)
			out += 2*len(v.Event) + procSlack + encoded
			if recordings {
				n, _ := envelope.RecordingSize(v.Recording, limit)
				scratch = max(scratch, pii.RecordingScratch(min(n, limit))+encoded)
				out += len(v.Recording) + procSlack
			}
		}
	}
	return scratch, out
}

// scrubReplays scrubs env's replays with st's config as Relay's replay
// processing does: each replay_event as an event (piiConfig, then
// datascrubbingSettings), each replay_recording's custom events
// (pii.Config.ScrubRecording, decompressed to at most limit) when the
// project has FeatureReplayRecordingScrubbing, and both inside each
// replay_video (replayvideo.go; one that does not read, or has no video,
// is dropped as invalid_replay_video). A changed payload is
// appended to *buf and its item points there; one nothing matched is
// left as it is. It reports whether one changed; an error is a
// *dropError (the replay is dropped, outcome invalid, as Relay does).
func scrubReplays(env *envelope.Envelope, st *project.State, buf *[]byte, limit int) (bool, error) {
	if !scrubsReplays(env, st) {
		return false, nil
	}
	if st.PIIErr != nil {
		return false, errProjectStatePII
	}
	recordings := st.HasFeature(project.FeatureReplayRecordingScrubbing)
	changed := false
	for i := range env.Items {
		it := &env.Items[i]
		switch it.Type {
		case envelope.ItemReplayEvent:
			p, ok, err := scrubReplayEvent(st, buf, it.Payload)
			if err != nil {
				return changed, err
			}
			if ok {
				it.Payload, changed = p, true
			}
		case envelope.ItemReplayRecording:
			if !recordings {
				continue
			}
			p, ok, err := scrubReplayRecording(st, buf, it.Payload, limit)
			if err != nil {
				return changed, err
			}
			if ok {
				it.Payload, changed = p, true
			}
		case envelope.ItemReplayVideo:
			v, err := splitReplayVideo(it.Payload)
			if err != nil {
				return changed, &dropError{why: outcome.ReasonInvalid, reason: reasonInvalidReplayVideo, msg: err.Error()}
			}
			ev, evOK, err := scrubReplayEvent(st, buf, v.Event)
			if err != nil {
				return changed, err
			}
			rec, recOK := v.Recording, false
			if recordings {
				if rec, recOK, err = scrubReplayRecording(st, buf, v.Recording, limit); err != nil {
					return changed, err
				}
			}
			if !evOK && !recOK {
				continue // left as it came
			}
			if evOK {
				v.Event = ev
			}
			if recOK {
				v.Recording = rec
			}
			start := len(*buf)
			if *buf, err = appendReplayVideo(*buf, &v); err != nil {
				return changed, &dropError{why: outcome.ReasonInvalid, reason: reasonInvalidReplayVideo, msg: err.Error()}
			}
			it.Payload, changed = (*buf)[start:len(*buf):len(*buf)], true
		}
	}
	return changed, nil
}

// scrubReplayEvent appends replay_event p scrubbed with st's config to
// *buf; ok is false, and nothing appended, when nothing matched.
func scrubReplayEvent(st *project.State, buf *[]byte, p []byte) (out []byte, ok bool, err error) {
	start := len(*buf)
	b, err := st.PII.ScrubEvent(*buf, p)
	if err != nil {
		return nil, false, &dropError{why: outcome.ReasonInvalid, reason: reasonInvalidReplay, msg: "replay_event: " + err.Error()}
	}
	if bytes.Equal(b[start:], p) {
		*buf = b[:start]
		return nil, false, nil
	}
	*buf = b
	return b[start:len(b):len(b)], true, nil
}

// scrubReplayRecording appends replay_recording p scrubbed with st's
// config to *buf; ok is false, and nothing appended, when nothing matched.
func scrubReplayRecording(st *project.State, buf *[]byte, p []byte, limit int) (out []byte, ok bool, err error) {
	start := len(*buf)
	b, ok, err := st.PII.ScrubRecording(*buf, p, limit)
	if err != nil {
		return nil, false, &dropError{why: outcome.ReasonInvalid, reason: reasonInvalidReplayRecording, msg: "replay_recording: " + err.Error()}
	}
	if !ok {
		return nil, false, nil
	}
	*buf = b
	return b[start:len(b):len(b)], true, nil
}

// recordingLimit is the uncompressed size limit of replay recordings.
func recordingLimit(l *envelope.Limits) int {
	if l.MaxReplayUncompressedSize > 0 {
		return l.MaxReplayUncompressedSize
	}
	return envelope.DefaultLimits().MaxReplayUncompressedSize
}
