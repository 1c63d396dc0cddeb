package telemetry

import (
	"log/slog"
	"sync"
	"time"

	"go.opentelemetry.io/otel"
)

// exportErrorEvery is how often a failing exporter is logged: a collector
// that is down fails every push, and one line a minute says so.
const exportErrorEvery = time.Minute

// exportErrors logs the OTel SDK's errors (failed pushes of metrics and
// spans) through the relay's logger, at most once per exportErrorEvery with
// a count of those it held back, instead of the SDK's default of one
// unstructured stderr line per failure. Handlers are process-wide in the
// SDK (otel.SetErrorHandler): the last relay started in a process owns it.
type exportErrors struct {
	log   *slog.Logger
	now   func() time.Time
	mu    sync.Mutex
	last  time.Time // when the last line was logged
	quiet int       // errors since then
}

func (e *exportErrors) Handle(err error) {
	e.mu.Lock()
	now := e.now()
	if !e.last.IsZero() && now.Sub(e.last) < exportErrorEvery {
		e.quiet++
		e.mu.Unlock()
		return
	}
	quiet := e.quiet
	e.last, e.quiet = now, 0
	e.mu.Unlock()
	e.log.Warn("telemetry export failed; check telemetry.otlp_endpoint and the collector", "err", err,
		"failures_not_logged", quiet, "next_log_in", exportErrorEvery)
}

// logExportErrors routes the SDK's errors to log.
func logExportErrors(log *slog.Logger) {
	if log != nil {
		otel.SetErrorHandler(&exportErrors{log: log, now: time.Now})
	}
}
