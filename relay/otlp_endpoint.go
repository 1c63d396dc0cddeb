package relay

import (
	"errors"
	"fmt"

	"github.com/valyala/fasthttp"

	"github.com/baton-relay/baton/envelope"
	"github.com/baton-relay/baton/relay/otlp"
)

// otlpSignal is the OTLP route a request named, traces or logs: its
// conversion, and the bound of what decoding a body holds (its messages
// are counted before it is decoded: 1 MB of empty spans becomes ~170 MB of
// structs).
func otlpSignal(endpoint string) (conv func([]byte, otlp.Format, []byte, otlp.Options) ([]byte, int, error),
	cost func(otlp.Format, []byte) int, ok bool) {
	switch endpoint {
	case "integration/otlp/v1/traces":
		return otlp.AppendTraces, otlp.TracesCost, true
	case "integration/otlp/v1/logs":
		return otlp.AppendLogs, otlp.LogsCost, true
	}
	return nil, nil, false
}

// handleOTLP serves POST /api/{pid}/integration/otlp/v1/traces and
// .../v1/logs (docs/relay-protocol.md §1.1): OTLP/HTTP in protobuf or JSON,
// authenticated like the other SDK routes, converted to a span v2 or log
// container and accepted like an envelope. Relay answers 200 with an empty
// body, which OTLP exporters read as full success; bodies are limited to
// max_container_size, Relay's limit for integration items.
func (r *Relay) handleOTLP(ctx *fasthttp.RequestCtx, pid uint64, endpoint string) {
	conv, cost, ok := otlpSignal(endpoint)
	if !ok {
		r.handleUnknown(ctx)
		return
	}
	if !ctx.IsPost() {
		methodNotAllowed(ctx)
		return
	}
	f, err := otlp.ParseContentType(string(ctx.Request.Header.ContentType()))
	if err != nil {
		r.reject(ctx, fasthttp.StatusUnsupportedMediaType, rejectContentType,
			err.Error()+": OTLP takes application/x-protobuf or application/json")
		return
	}
	limit := r.limits.MaxContainerSize
	if res := r.converted(ctx, pid, limit, func(s *scratch, body []byte) ([]byte, error) {
		// Decoded messages, then the items (convert charged convSlack and
		// the body's size for them).
		if err := s.lease.Grow(cost(f, body) + max(limit-len(body)-convSlack, 0)); err != nil {
			return nil, err
		}
		var err error
		s.conv.B, _, err = conv(s.conv.B[:0], f, body, otlp.Options{MaxSize: limit})
		if errors.Is(err, otlp.ErrTooLarge) {
			err = fmt.Errorf("%w (%w)", err, envelope.ErrTooLarge) // 413
		}
		return s.conv.B, err
	}); res.ok() {
		ctx.Response.ResetBody()
	}
}
