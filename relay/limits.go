package relay

import (
	"github.com/baton-relay/baton/config"
	"github.com/baton-relay/baton/envelope"
)

// limitsFrom maps the config's limits section onto the envelope parser's.
// Limits the config does not expose keep the parser's defaults.
func limitsFrom(cfg config.Config) envelope.Limits {
	l := envelope.DefaultLimits()
	c := cfg.Limits
	set := func(dst *int, v int64) {
		if v > 0 {
			*dst = int(v)
		}
	}
	set(&l.MaxEnvelopeSize, int64(c.MaxEnvelopeSize))
	set(&l.MaxEventSize, int64(c.MaxEventSize))
	set(&l.MaxAttachmentSize, int64(c.MaxAttachmentSize))
	set(&l.MaxAttachmentsSize, int64(c.MaxAttachmentsSize))
	set(&l.MaxAttachmentCount, int64(c.MaxAttachmentCount))
	set(&l.MaxSessionCount, int64(c.MaxSessionCount))
	set(&l.MaxSessionsSize, int64(c.MaxSessionsSize))
	set(&l.MaxClientReportsSize, int64(c.MaxClientReportsSize))
	set(&l.MaxClientReportsCount, int64(c.MaxClientReportsCount))
	set(&l.MaxStatsdSize, int64(c.MaxStatsdSize))
	set(&l.MaxMetricBucketsSize, int64(c.MaxMetricBucketsSize))
	set(&l.MaxCheckInSize, int64(c.MaxCheckInSize))
	set(&l.MaxLogSize, int64(c.MaxLogSize))
	set(&l.MaxTraceMetricSize, int64(c.MaxTraceMetricSize))
	set(&l.MaxSpanSize, int64(c.MaxSpanSize))
	set(&l.MaxContainerSize, int64(c.MaxContainerSize))
	set(&l.MaxProfileSize, int64(c.MaxProfileSize))
	set(&l.MaxReplaySize, int64(c.MaxReplayCompressedSize))
	set(&l.MaxReplayUncompressedSize, int64(c.MaxReplayUncompressedSize))
	set(&l.MaxReplayMessageSize, int64(c.MaxReplayMessageSize))
	return l
}
