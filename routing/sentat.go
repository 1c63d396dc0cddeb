package routing

import (
	"bytes"
	"time"

	"github.com/baton-relay/baton/envelope"
)

// adjustSentAt appends env to dst with the envelope header's sent_at moved
// forward by delay, the time the envelope spent in Baton. The next relay
// corrects clock drift with now − sent_at; without this, every buffered
// envelope's timestamps would shift by its buffering delay.
//
// Only the sent_at value of the first line changes; every other byte is
// copied as is. The header is read as envelope.Parse reads it (escaped keys
// included). When it is not a JSON object or has no sent_at string that
// parses as a time, env is copied unchanged.
func adjustSentAt(dst, env []byte, delay time.Duration) []byte {
	if delay <= 0 {
		return append(dst, env...)
	}
	line := env
	if i := bytes.IndexByte(env, '\n'); i >= 0 {
		line = env[:i]
	}
	start, end, ok := envelope.HeaderFieldSpan(line, "sent_at")
	if !ok || line[start] != '"' {
		return append(dst, env...)
	}
	t, err := time.Parse(time.RFC3339Nano, string(line[start+1:end-1]))
	if err != nil {
		return append(dst, env...)
	}
	dst = append(dst, env[:start]...)
	dst = append(dst, '"')
	dst = t.Add(delay).AppendFormat(dst, time.RFC3339Nano)
	dst = append(dst, '"')
	return append(dst, env[end:]...)
}
