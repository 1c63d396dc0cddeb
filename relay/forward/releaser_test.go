package forward

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/baton-relay/baton/buffer"
	"github.com/baton-relay/baton/envelope"
	"github.com/baton-relay/baton/relay/outcome"
	"github.com/baton-relay/baton/relay/record"
)

var (
	pendingStream = record.StreamFor(envelope.ClassError, 0).Pending().ID()
	targetStream  = record.StreamFor(envelope.ClassError, 1)
)

// fakePolicy answers per project id; projects it does not list wait.
type fakePolicy struct {
	mu sync.Mutex
	v  map[uint64]Verdict
}

func (p *fakePolicy) Decide(rec *record.Record) Verdict {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.v[rec.ProjectID]
}

func (p *fakePolicy) set(project uint64, v Verdict) {
	p.mu.Lock()
	p.v[project] = v
	p.mu.Unlock()
}

// moveBuffer reports every Move of the wrapped buffer.
type moveBuffer struct {
	*buffer.Buffer
	moves chan moved
}

type moved struct {
	to   []buffer.Stream
	upTo buffer.Seq
}

func (m *moveBuffer) Move(ctx context.Context, es []buffer.Entry, from buffer.Stream, upTo buffer.Seq) error {
	err := m.Buffer.Move(ctx, es, from, upTo)
	var to []buffer.Stream
	for _, e := range es {
		to = append(to, e.Stream)
	}
	m.moves <- moved{to, upTo}
	return err
}

func waitMove(t *testing.T, moves chan moved) moved {
	t.Helper()
	select {
	case m := <-moves:
		return m
	case <-time.After(guard):
		t.Fatal("no move")
		return moved{}
	}
}

type leftKey struct {
	key   string
	bytes int64
}

// A batch is settled at once when any record in it is decided: forwarded
// records move to their stream, refused ones are dropped with their reason,
// one waiting too long is dropped as project_state, and the waiting one is
// re-queued at the back. A waiting record alone then waits for the cache
// to change, and moves once its config arrived.
func TestReleaserSortsBatch(t *testing.T) {
	b, _ := openBuffer(t)
	clk := newClock(false)
	now := clk.Now()
	var es []buffer.Entry
	for _, r := range []struct {
		project uint64
		age     time.Duration
	}{{1, 0}, {2, 0}, {3, 0}, {4, time.Hour}} {
		es = append(es, buffer.Entry{Stream: pendingStream, Value: recordOf(envelope.ClassError, r.project, now.Add(-r.age))})
	}
	if err := b.Append(context.Background(), es); err != nil {
		t.Fatal(err)
	}
	policy := &fakePolicy{v: map[uint64]Verdict{
		1: {Action: Forward, Stream: targetStream},
		2: {Action: Drop, Reason: outcome.ReasonProjectDisabled},
	}}
	changed := make(chan struct{})
	var mu sync.Mutex
	var left []leftKey
	leftAll := make(chan struct{}) // the first batch's three records left
	mb := &moveBuffer{Buffer: b, moves: make(chan moved, 8)}
	rec := newRecorder()
	rl := NewReleaser(ReleaserOptions{
		Buffer: mb, Stream: pendingStream, Policy: policy,
		Changed: func() <-chan struct{} { return changed },
		Left: func(key []byte, n int64) {
			mu.Lock()
			left = append(left, leftKey{string(key), n})
			if len(left) == 3 {
				close(leftAll)
			}
			mu.Unlock()
		},
		MaxPendingAge: time.Minute, Outcomes: rec, Clock: clk, Logger: quiet,
	})
	run(t, rl.Run)

	m := waitMove(t, mb.moves)
	if want := []buffer.Stream{targetStream.ID(), pendingStream}; !slices.Equal(m.to, want) || m.upTo != 4 {
		t.Fatalf("moved %v up to %d, want %v up to 4", m.to, m.upTo, want)
	}
	select { // drops are counted, then Left is called, after the Move
	case <-leftAll:
	case <-time.After(guard):
		t.Fatal("Left not called for the records that left")
	}
	r := rec.get()
	if r.dropped[outcome.ReasonProjectDisabled].Records != 1 || r.dropped[outcome.ReasonProjectState].Records != 1 {
		t.Fatalf("dropped %+v", r.dropped)
	}
	mu.Lock()
	keys := []string{}
	for _, l := range left {
		keys = append(keys, l.key)
		if l.bytes != int64(len(es[0].Value)) {
			t.Errorf("left %+v, want %d bytes", l, len(es[0].Value))
		}
	}
	mu.Unlock()
	if want := []string{keyOf(1), keyOf(2), keyOf(4)}; !slices.Equal(keys, want) {
		t.Fatalf("left %v, want %v", keys, want)
	}
	got, err := b.Read(context.Background(), targetStream.ID(), nil, 10, 0)
	if err != nil || len(got) != 1 {
		t.Fatalf("target stream: %d records, %v", len(got), err)
	}

	// Project 3, re-queued as seq 5, waits alone: for the cache or PendingWait.
	w := clk.Next(t, guard)
	if w.D != PendingWait {
		t.Fatalf("waited %v, want %v", w.D, PendingWait)
	}
	policy.set(3, Verdict{Action: Forward, Stream: targetStream})
	close(changed)
	m = waitMove(t, mb.moves)
	if !slices.Equal(m.to, []buffer.Stream{targetStream.ID()}) || m.upTo != 5 {
		t.Fatalf("moved %v up to %d, want project 3 to the target up to 5", m.to, m.upTo)
	}
}

// A batch whose every record keeps waiting is re-queued at the back after
// PendingPatience waits, so configs that arrived are not stuck behind it.
func TestReleaserRequeuesAfterPatience(t *testing.T) {
	b, _ := openBuffer(t)
	appendRecs(t, b, pendingStream, envelope.ClassError, 1, 2)
	clk := newClock(false)
	mb := &moveBuffer{Buffer: b, moves: make(chan moved, 8)}
	rl := NewReleaser(ReleaserOptions{Buffer: mb, Stream: pendingStream, Policy: &fakePolicy{v: map[uint64]Verdict{}}, Outcomes: newRecorder(), Clock: clk, Logger: quiet})
	run(t, rl.Run)
	for i := range PendingPatience {
		w := clk.Next(t, guard)
		if w.D != PendingWait {
			t.Fatalf("wait %d: %v, want %v", i, w.D, PendingWait)
		}
		select {
		case m := <-mb.moves:
			t.Fatalf("moved %+v after %d waits, want %d", m, i, PendingPatience)
		default:
		}
		w.Fire()
	}
	m := waitMove(t, mb.moves)
	if !slices.Equal(m.to, []buffer.Stream{pendingStream, pendingStream}) || m.upTo != 2 {
		t.Fatalf("moved %+v, want both re-queued up to 2", m)
	}
	clk.Next(t, guard) // the re-queued records (seqs 3, 4) wait again
}

// A record that arrives while the whole batch waits joins the batch at once:
// released as soon as its config is known, without waiting for PendingWait
// or the stuck record's patience.
func TestReleaserTakesArrivalsWhileWaiting(t *testing.T) {
	b, _ := openBuffer(t)
	appendRecs(t, b, pendingStream, envelope.ClassError, 1)
	clk := newClock(false)
	mb := &moveBuffer{Buffer: b, moves: make(chan moved, 8)}
	policy := &fakePolicy{v: map[uint64]Verdict{2: {Action: Forward, Stream: targetStream}}}
	rl := NewReleaser(ReleaserOptions{Buffer: mb, Stream: pendingStream, Policy: policy, Outcomes: newRecorder(), Clock: clk, Logger: quiet})
	run(t, rl.Run)
	if w := clk.Next(t, guard); w.D != PendingWait { // project 1 waits; not fired
		t.Fatalf("waited %v, want %v", w.D, PendingWait)
	}
	appendRecs(t, b, pendingStream, envelope.ClassError, 2)
	m := waitMove(t, mb.moves)
	if want := []buffer.Stream{pendingStream, targetStream.ID()}; !slices.Equal(m.to, want) || m.upTo != 2 {
		t.Fatalf("moved %v up to %d, want %v up to 2", m.to, m.upTo, want)
	}
}
