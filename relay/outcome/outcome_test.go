package outcome

import (
	"sync"
	"testing"

	"github.com/baton-relay/baton/envelope"
)

// The snapshot reports each verb under its own field, drops by reason
// name, and leaves out classes nothing happened to.
func TestSnapshot(t *testing.T) {
	var o Counters
	var recovered, pending [envelope.NumClasses]Count
	recovered[envelope.ClassSession] = Count{Records: 2, Items: 5}
	o.Accept(envelope.ClassError, 3, 4)
	o.Deliver(envelope.ClassError, 2, 3)
	o.DeadLetter(envelope.ClassError, 1, 1)
	o.Drop(envelope.ClassError, ReasonRateLimited, 1, 1)
	o.Drop(envelope.ClassMetric, ReasonCardinality, 0, 7) // items of records that carry on
	o.Aggregate(envelope.ClassMetric, 4, 9)
	o.Produce(envelope.ClassMetric, 1, 2)

	m := o.Snapshot(&recovered, &pending)
	if len(m) != 3 {
		t.Fatalf("classes %v, want error, metric and session", m)
	}
	e := m["error"]
	if e.Accepted != (Count{3, 4}) || e.Delivered != (Count{2, 3}) || e.DeadLettered != (Count{1, 1}) ||
		len(e.Dropped) != 1 || e.Dropped["rate_limited"] != (Count{1, 1}) {
		t.Fatalf("error: %+v", e)
	}
	mt := m["metric"]
	if mt.Dropped["cardinality_limited"] != (Count{0, 7}) || mt.Aggregated != (Count{4, 9}) || mt.Produced != (Count{1, 2}) {
		t.Fatalf("metric: %+v", mt)
	}
	if m["session"].Recovered != recovered[envelope.ClassSession] {
		t.Fatalf("session: %+v", m["session"])
	}
	if got := o.Dropped(envelope.ClassError, ReasonRateLimited); got != (Count{1, 1}) {
		t.Fatalf("Dropped = %+v", got)
	}
	if got := Total(&recovered); got != (Count{2, 5}) {
		t.Fatalf("Total = %+v", got)
	}
}

// Every reason has a distinct name: they are keys of /api/relay/stats/ and
// label values of /metrics.
func TestReasonNames(t *testing.T) {
	seen := map[string]bool{}
	for r := range NumReasons {
		n := r.String()
		if n == "" || seen[n] {
			t.Fatalf("reason %d: name %q empty or repeated", r, n)
		}
		seen[n] = true
	}
}

func TestCountersConcurrent(t *testing.T) {
	var o Counters
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 1000 {
				o.Deliver(envelope.ClassSpan, 1, 2)
			}
		})
	}
	wg.Wait()
	var none [envelope.NumClasses]Count
	if got := o.Snapshot(&none, &none)["span"].Delivered; got != (Count{8000, 16000}) {
		t.Fatalf("delivered %+v", got)
	}
}
