package envelope

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"errors"
	"fmt"
	"io"
	"sync"
)

// ReplayMessageOverhead is what the replay message size reserves for the
// message's own metadata, on top of its items (Relay reserves the same).
const ReplayMessageOverhead = 2000

// CheckReplay applies the replay limits that the item sizes Parse checks
// cannot: Limits.MaxReplayMessageSize to the replay message of the envelope
// (ReplayMessageOverhead plus its replay_event, replay_recording and
// replay_video payloads; at the limit it is too large already, as in Relay)
// and Limits.MaxReplayUncompressedSize to each replay_recording's recording
// after decompression (see RecordingSize). lim nil means DefaultLimits.
//
// It returns nil or a *LimitError, which unwraps to ErrTooLarge. An
// envelope without replay items costs one pass over its items; a recording
// that does not decode is not this check's business and passes.
func (e *Envelope) CheckReplay(lim *Limits) error {
	l := lim.withDefaults()
	size, replay := ReplayMessageOverhead, false
	for i := range e.Items {
		switch it := &e.Items[i]; it.Type {
		case ItemReplayEvent, ItemReplayRecording, ItemReplayVideo:
			size += len(it.Payload)
			replay = true
		}
	}
	if !replay {
		return nil
	}
	if size >= l.MaxReplayMessageSize {
		return &LimitError{Limit: "max_replay_message_size", Kind: "total_size", ItemType: "replay_recording", Size: size, Max: l.MaxReplayMessageSize}
	}
	for i := range e.Items {
		it := &e.Items[i]
		if it.Type != ItemReplayRecording {
			continue
		}
		if n, _ := RecordingSize(it.Payload, l.MaxReplayUncompressedSize); n > l.MaxReplayUncompressedSize {
			return &LimitError{Limit: "max_replay_uncompressed_size", Kind: "item_size", ItemType: it.TypeName, Size: n, Max: l.MaxReplayUncompressedSize}
		}
	}
	return nil
}

// ErrRecording is the cause of RecordingSize's failures: a payload without
// the header line, or a body that is neither JSON nor a zlib or gzip stream.
var ErrRecording = errors.New("envelope: invalid replay recording")

// RecordingSize returns the size of a replay_recording payload's recording
// once decompressed. The payload is a JSON header line ({"segment_id":N})
// and the recording: rrweb JSON (starting with '['), or that JSON
// compressed with zlib (what the SDKs send) or gzip. The output is counted
// through a bounded scratch buffer, never held: a bomb costs CPU up to max,
// no memory. Past max it stops and returns max+1.
//
// On a malformed payload or a corrupt stream it returns the bytes decoded
// before the problem and an error wrapping ErrRecording.
func RecordingSize(payload []byte, max int) (int, error) {
	nl := bytes.IndexByte(payload, '\n')
	if nl < 0 || nl == len(payload)-1 {
		return 0, fmt.Errorf("%w: no recording after the header line", ErrRecording)
	}
	body := payload[nl+1:]
	if body[0] == '[' {
		return min(len(body), max+1), nil
	}
	d := recordingDecoders.Get().(*recordingDecoder)
	defer recordingDecoders.Put(d)
	d.src.Reset(body)
	var r io.Reader
	var err error
	if len(body) >= 2 && body[0] == 0x1f && body[1] == 0x8b {
		if d.gz == nil {
			d.gz, err = gzip.NewReader(&d.src)
		} else {
			err = d.gz.Reset(&d.src)
		}
		r = d.gz
	} else {
		if d.zl == nil {
			d.zl, err = zlib.NewReader(&d.src)
		} else {
			err = d.zl.(zlib.Resetter).Reset(&d.src, nil)
		}
		r = d.zl
	}
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrRecording, err)
	}
	n, err := io.CopyBuffer(discard{}, io.LimitReader(r, int64(max)+1), d.buf[:])
	if err != nil {
		return int(n), fmt.Errorf("%w: %w", ErrRecording, err)
	}
	return int(n), nil
}

// recordingDecoder is RecordingSize's reusable state: decoders keep their
// windows and tables between recordings.
type recordingDecoder struct {
	src bytes.Reader
	zl  io.ReadCloser // zlib, which also implements zlib.Resetter
	gz  *gzip.Reader
	buf [32 << 10]byte
}

var recordingDecoders = sync.Pool{New: func() any { return new(recordingDecoder) }}

// discard is io.Discard without its ReaderFrom, so that CopyBuffer uses the
// decoder's own scratch buffer instead of taking io.Discard's pooled one.
type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
