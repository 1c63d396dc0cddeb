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
		case envelope.ItemReplayEvent, envelope.ItemReplayRecording:
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
		}
	}
	return scratch, out
}

// scrubReplays scrubs env's replays with st's config as Relay's replay
// processing does: each replay_event as an event (piiConfig, then
// datascrubbingSettings), each replay_recording's custom events
// (pii.Config.ScrubRecording, decompressed to at most limit) when the
// project has FeatureReplayRecordingScrubbing. A changed payload is
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
		start := len(*buf)
		switch it.Type {
		case envelope.ItemReplayEvent:
			out, err := st.PII.ScrubEvent(*buf, it.Payload)
			if err != nil {
				return changed, &dropError{why: outcome.ReasonInvalid, reason: reasonInvalidReplay, msg: "replay_event: " + err.Error()}
			}
			if bytes.Equal(out[start:], it.Payload) {
				*buf = out[:start]
				continue
			}
			*buf = out
		case envelope.ItemReplayRecording:
			if !recordings {
				continue
			}
			out, ok, err := st.PII.ScrubRecording(*buf, it.Payload, limit)
			if err != nil {
				return changed, &dropError{why: outcome.ReasonInvalid, reason: reasonInvalidReplayRecording, msg: "replay_recording: " + err.Error()}
			}
			if !ok {
				continue
			}
			*buf = out
		default:
			continue
		}
		it.Payload, changed = (*buf)[start:len(*buf):len(*buf)], true
	}
	return changed, nil
}

// recordingLimit is the uncompressed size limit of replay recordings.
func recordingLimit(l *envelope.Limits) int {
	if l.MaxReplayUncompressedSize > 0 {
		return l.MaxReplayUncompressedSize
	}
	return envelope.DefaultLimits().MaxReplayUncompressedSize
}
