package record

import (
	"github.com/baton-relay/baton/buffer"
	"github.com/baton-relay/baton/envelope"
)

// Stream is a buffer stream id laid out as the package doc shows.
type Stream buffer.Stream

const (
	pendingBit  = 0x80 // in the class byte: waiting for a project config
	flushedBit  = 0x40 // in the class byte: aggregated metric buckets
	outcomesBit = 0x20 // in the class byte: raw outcomes
	tailBit     = 0x10 // in the class byte: waiting for a tail-sampling decision
)

// StreamFor is the stream of class c's partition p.
func StreamFor(c envelope.Class, p uint32) Stream {
	return Stream(uint32(c)<<8 | p&0xff)
}

// Flushed is the stream of aggregated metric buckets of flush partition p.
func Flushed(p int) Stream {
	return Stream(uint32(envelope.ClassMetric|flushedBit)<<8 | uint32(p)&0xff)
}

// Outcomes is the stream of raw outcomes (outcomes.emit_outcomes true):
// records of class client_report whose payload is outcome JSON lines.
func Outcomes() Stream {
	return Stream(uint32(envelope.ClassClientReport|outcomesBit) << 8)
}

// IsOutcomes reports whether s holds raw outcomes.
func (s Stream) IsOutcomes() bool { return uint32(s)>>8&outcomesBit != 0 }

// ID is s as the buffer names it.
func (s Stream) ID() buffer.Stream { return buffer.Stream(s) }

// Pending is the waiting room of s: its envelopes whose project config is
// not known yet.
func (s Stream) Pending() Stream { return s | pendingBit<<8 }

// IsPending reports whether s holds envelopes waiting for their project's
// config rather than envelopes ready to forward.
func (s Stream) IsPending() bool { return uint32(s)>>8&pendingBit != 0 }

// Tail is the trace buffer of s's class: transactions and spans of
// tail-sampled projects waiting for their trace's decision (partition 0).
func (s Stream) Tail() Stream { return StreamFor(s.Class(), 0) | tailBit<<8 }

// IsTail reports whether s is a trace buffer.
func (s Stream) IsTail() bool { return uint32(s)>>8&tailBit != 0 }

// Marks is the stream of tail sampling's error marks (relay/tailsample
// Marks): a trace buffer of class 15, the last the class byte can hold,
// which is no class (≥ envelope.NumClasses), so every loop over classes
// and the forwarders skip it (TestMarksStreamIsNoClass).
func Marks() Stream { return Stream(uint32(0x0f|tailBit) << 8) }

// IsMarks reports whether s holds tail sampling's error marks.
func (s Stream) IsMarks() bool { return s == Marks() }

// IsFlushed reports whether s holds aggregated metric buckets.
func (s Stream) IsFlushed() bool { return uint32(s)>>8&flushedBit != 0 }

// Class is the traffic class s carries. Ids Baton did not write may give a
// class ≥ envelope.NumClasses; callers skip those.
func (s Stream) Class() envelope.Class {
	return envelope.Class(uint32(s) >> 8 &^ (pendingBit | flushedBit | outcomesBit | tailBit))
}

// Partition is s's partition (for a flushed stream, its flush partition).
func (s Stream) Partition() uint32 { return uint32(s) & 0xff }

// Partition maps a public key to one of n partitions with 32-bit FNV-1a: a
// fixed hash, so a key keeps its partition across restarts and versions.
func Partition(key []byte, n uint32) uint32 {
	if n <= 1 {
		return 0
	}
	return envelope.FNV32a(key) % n
}
