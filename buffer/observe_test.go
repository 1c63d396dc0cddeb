package buffer

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// TestOnCommitAndRemoved checks the figures the telemetry side observes:
// OnCommit sees every group commit that Stats counts, and a stream's
// Removed grows by the records acked.
func TestOnCommitAndRemoved(t *testing.T) {
	var commits atomic.Int64
	var total atomic.Int64
	b, err := Open("db", Options{FS: vfs.NewMem(), OnCommit: func(d time.Duration) {
		commits.Add(1)
		total.Add(int64(d))
	}})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := b.Append(context.Background(), []Entry{{Stream: 7, Value: []byte("x")}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Ack(7, 2); err != nil {
		t.Fatal(err)
	}
	st := b.Stats()
	if err := b.Close(); err != nil { // the loop has ended: every OnCommit ran
		t.Fatal(err)
	}
	if st.Commits == 0 || commits.Load() < st.Commits {
		t.Errorf("OnCommit called %d times, Stats counted %d commits", commits.Load(), st.Commits)
	}
	if total.Load() <= 0 {
		t.Error("OnCommit reported no latency")
	}
	if len(st.Streams) != 1 || st.Streams[0].Removed != 2 || st.Streams[0].Pending != 1 {
		t.Errorf("streams %+v, want stream 7 with 2 removed and 1 pending", st.Streams)
	}
}
