package envelope

import (
	"iter"
	"math/bits"
)

// Class is a traffic class: the unit of routing and buffering. Every item of
// an envelope belongs to exactly one class; items that must travel together
// (an event and its attachments, minidump and user reports) share the class of
// the item that creates the event. Envelope.Parse assigns the classes; the
// rules are in the package documentation.
//
// Classes are small integers so the relay can derive buffer stream ids from
// them without a map. The zero value is ClassUnknown.
type Class uint8

const (
	ClassUnknown      Class = iota // item types Baton does not know; forwarded as-is
	ClassError                     // event, unreal_report, crash-report attachments (minidumps...), with their attachments
	ClassTransaction               // transaction events, with their attachments and profile
	ClassSecurity                  // security, raw_security (CSP / Expect-CT / HPKP) and nel reports
	ClassAttachment                // attachments sent without an event
	ClassSession                   // session and sessions (aggregates)
	ClassMetric                    // statsd and metric_buckets
	ClassClientReport              // client_report (SDK discard statistics)
	ClassProfile                   // profile and profile_chunk
	ClassReplay                    // replay_event, replay_recording, replay_video
	ClassCheckIn                   // check_in (cron monitors)
	ClassSpan                      // span, otel_span, otel_traces_data
	ClassLog                       // log, otel_log
	ClassFeedback                  // feedback, and user reports sent without an event
	ClassTraceMetric               // trace_metric

	// NumClasses is the number of classes; valid classes are < NumClasses.
	NumClasses
)

var classNames = [NumClasses]string{
	ClassUnknown:      "unknown",
	ClassError:        "error",
	ClassTransaction:  "transaction",
	ClassSecurity:     "security",
	ClassAttachment:   "attachment",
	ClassSession:      "session",
	ClassMetric:       "metric",
	ClassClientReport: "client_report",
	ClassProfile:      "profile",
	ClassReplay:       "replay",
	ClassCheckIn:      "check_in",
	ClassSpan:         "span",
	ClassLog:          "log",
	ClassFeedback:     "feedback",
	ClassTraceMetric:  "trace_metric",
}

// String returns the class name used in configs, topic names and outcomes.
func (c Class) String() string {
	if c < NumClasses {
		return classNames[c]
	}
	return "invalid"
}

// ParseClass returns the class with the given name.
func ParseClass(name string) (Class, bool) {
	for c, n := range classNames {
		if n == name {
			return Class(c), true
		}
	}
	return 0, false
}

// Classes returns every class in id order.
func Classes() []Class {
	cs := make([]Class, NumClasses)
	for i := range cs {
		cs[i] = Class(i)
	}
	return cs
}

// ClassSet is a set of classes (a bitset indexed by Class).
type ClassSet uint32

// Has reports whether c is in s.
func (s ClassSet) Has(c Class) bool { return c < NumClasses && s&(1<<c) != 0 }

// Add adds c to s (classes >= NumClasses are ignored).
func (s *ClassSet) Add(c Class) {
	if c < NumClasses {
		*s |= 1 << c
	}
}

// Len returns the number of classes in s.
func (s ClassSet) Len() int { return bits.OnesCount32(uint32(s)) }

// All yields the classes of s in id order.
func (s ClassSet) All() iter.Seq[Class] {
	return func(yield func(Class) bool) {
		for v := uint32(s); v != 0; v &= v - 1 {
			if !yield(Class(bits.TrailingZeros32(v))) {
				return
			}
		}
	}
}

// String lists the class names, e.g. "{error,session}".
func (s ClassSet) String() string {
	b := []byte{'{'}
	for c := range s.All() {
		if len(b) > 1 {
			b = append(b, ',')
		}
		b = append(b, c.String()...)
	}
	return string(append(b, '}'))
}
