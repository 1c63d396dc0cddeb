package relay

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"strconv"

	"github.com/baton-relay/baton/envelope"
)

var errNoAttachments = errors.New("no attachments in the multipart body")

// appendAttachmentsEnvelope turns a multipart body of attachments for event
// id into an envelope: every file part becomes an attachment item.
func appendAttachmentsEnvelope(dst []byte, id envelope.EventID, contentType string, body []byte, maxPart int) ([]byte, error) {
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil || mt != "multipart/form-data" || params["boundary"] == "" {
		return dst, fmt.Errorf("%w: want multipart/form-data with a boundary, got %q", envelope.ErrInvalid, contentType)
	}
	dst = append(dst, `{"event_id":"`...)
	dst = id.AppendHex(dst)
	dst = append(dst, "\"}\n"...)
	mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
	n := 0
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return dst, fmt.Errorf("%w: multipart: %v", envelope.ErrInvalid, err)
		}
		if p.FileName() == "" {
			continue
		}
		data, err := io.ReadAll(io.LimitReader(p, int64(maxPart)+1))
		if err != nil {
			return dst, fmt.Errorf("%w: multipart: %v", envelope.ErrInvalid, err)
		}
		if len(data) > maxPart {
			return dst, fmt.Errorf("%w: attachment %q exceeds max_attachment_size", envelope.ErrTooLarge, p.FileName())
		}
		name, _ := json.Marshal(p.FileName())
		ct := p.Header.Get("Content-Type")
		if ct == "" {
			ct = "application/octet-stream"
		}
		ctj, _ := json.Marshal(ct)
		dst = append(dst, `{"type":"attachment","length":`...)
		dst = strconv.AppendInt(dst, int64(len(data)), 10)
		dst = append(dst, `,"filename":`...)
		dst = append(dst, name...)
		dst = append(dst, `,"content_type":`...)
		dst = append(dst, ctj...)
		dst = append(dst, "}\n"...)
		dst = append(dst, data...)
		dst = append(dst, '\n')
		n++
	}
	if n == 0 {
		return dst, fmt.Errorf("%w: %v", envelope.ErrInvalid, errNoAttachments)
	}
	return dst, nil
}
