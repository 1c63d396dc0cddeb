package tailsample

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/baton-relay/baton/buffer"
)

// markVersion opens a mark's value. It is above every relay record
// version, so the buffer's Weigh (record.Items) counts a mark as no item.
const markVersion = 0xf1

// MarkSlack is how long a mark stays on disk past MaxTraceWait: the time
// a Sampler needs to settle the trace it marked once it is due.
const MarkSlack = 30 * time.Second

// maxCheckpoints bounds the checkpoints a Marks keeps in memory.
const maxCheckpoints = 1024

// AppendMark appends the buffer value of a mark of trace id to dst: the
// record the ingest path appends, beside its error, in the error's own
// Append (same batch, same fsync).
func AppendMark(dst []byte, id string) []byte {
	return append(append(dst, markVersion), id...)
}

// decisionVersion opens a decision record's value: the version, a flags
// byte (decisionKeep, decisionInteresting: the reason, for inspection),
// the trace id. decisionRuleVersion is one with the sampling rule of its
// keep rate (Rules.RateRule, 4 bytes big-endian) after the flags, for
// the outcomes of late items; it has a version of its own so that a
// relay that does not know it skips it rather than misread the id.
const (
	decisionVersion     = 0xf2
	decisionRuleVersion = 0xf3
)

const (
	decisionKeep        = 1 << 0
	decisionInteresting = 1 << 1 // kept by an error, a rule or the duration; else by the rate
)

// AppendDecision appends the buffer value of the decision of trace id,
// whose keep rate came from sampling rule rule: the record a Sampler
// appends in the buffer.Move that releases the trace's first decided
// records, so it is durable no later than they are gone.
func AppendDecision(dst []byte, id string, keep, interesting bool, rule uint32) []byte {
	var f byte
	if keep {
		f |= decisionKeep
	}
	if interesting {
		f |= decisionInteresting
	}
	if rule == 0 {
		return append(append(dst, decisionVersion, f), id...)
	}
	dst = binary.BigEndian.AppendUint32(append(dst, decisionRuleVersion, f), rule)
	return append(dst, id...)
}

// decodeMark returns the trace id of a mark's or a decision record's
// value; decision reports which, keep and rule the decision's verdict and
// the sampling rule of its keep rate.
func decodeMark(v []byte) (id string, decision, keep bool, rule uint32, ok bool) {
	switch {
	case len(v) >= 2 && v[0] == markVersion:
		return string(v[1:]), false, false, 0, true
	case len(v) >= 3 && v[0] == decisionVersion:
		return string(v[2:]), true, v[1]&decisionKeep != 0, 0, true
	case len(v) >= 7 && v[0] == decisionRuleVersion:
		return string(v[6:]), true, v[1]&decisionKeep != 0, binary.BigEndian.Uint32(v[2:6]), true
	}
	return "", false, false, 0, false
}

// MarksBuffer is what Marks does with the buffer.
type MarksBuffer interface {
	Peek(s buffer.Stream, from, to buffer.Seq, dst []buffer.Record) ([]buffer.Record, error)
	Ack(s buffer.Stream, upTo buffer.Seq) error
	Stats() buffer.Stats
}

// checkpoint: every mark with seq ≤ seq was appended at or before at
// (unix ns); start is when the checkpoint was opened.
type checkpoint struct {
	seq       buffer.Seq
	start, at int64
}

// Marks keeps an Index's error marks, and the decisions of its finished
// traces (AppendDecision, written by the Samplers), durable in a buffer
// stream of their own: a mark is appended with its error, reloaded into the Index by Load
// on start, and acked (deleted by the buffer's DeleteRange) MaxTraceWait
// plus MarkSlack after it was appended. It never reads the stream while
// running: it only remembers, in at most maxCheckpoints checkpoints, up to
// which seq the marks of each second (or longer grain) go.
type Marks struct {
	buf    MarksBuffer
	stream buffer.Stream
	index  *Index
	life   int64 // ns a mark is kept
	grain  int64 // ns a checkpoint covers
	log    *slog.Logger

	mu        sync.Mutex
	ckpts     []checkpoint
	loaded    int
	decisions int
}

// NewMarks returns the Marks of index kept in stream of buf.
func NewMarks(buf MarksBuffer, stream buffer.Stream, index *Index, log *slog.Logger) *Marks {
	if log == nil {
		log = slog.Default()
	}
	life := index.o.MaxTraceWait + MarkSlack
	return &Marks{
		buf: buf, stream: stream, index: index, log: log,
		life:  int64(life),
		grain: int64(max(time.Second, life/(maxCheckpoints/2))),
	}
}

// Stream is the buffer stream of the marks.
func (m *Marks) Stream() buffer.Stream { return m.stream }

// Added records that the mark of seq was appended at at (its Append
// returned), so that Expire deletes it in time.
func (m *Marks) Added(seq buffer.Seq, at time.Time) {
	n := at.UnixNano()
	m.mu.Lock()
	defer m.mu.Unlock()
	if k := len(m.ckpts); k > 0 && (n-m.ckpts[k-1].start < m.grain || k >= maxCheckpoints) {
		c := &m.ckpts[k-1]
		c.seq, c.at = max(c.seq, seq), max(c.at, n)
		return
	}
	m.ckpts = append(m.ckpts, checkpoint{seq: seq, start: n, at: n})
}

// Load marks in the Index the traces of the marks the stream holds that
// are younger than their life, puts back the decisions of the decision
// records as young (Index.Remember), and deletes the older ones. Call it once,
// before the Samplers start.
func (m *Marks) Load(now time.Time) error {
	var wm, next buffer.Seq
	for _, s := range m.buf.Stats().Streams {
		if s.Stream == m.stream {
			wm, next = s.Watermark, s.NextSeq
		}
	}
	var recs []buffer.Record
	for from := wm + 1; from < next; from += 1024 {
		var err error
		if recs, err = m.buf.Peek(m.stream, from, min(from+1023, next-1), recs[:0]); err != nil {
			return fmt.Errorf("tail sampling: load error marks: %w", err)
		}
		for i := range recs {
			r := &recs[i]
			id, decision, keep, rule, ok := decodeMark(r.Value)
			switch {
			case !ok || now.Sub(r.Appended) >= time.Duration(m.life):
			case decision:
				m.index.Remember(id, keep, rule, r.Appended)
				m.decisions++
			default:
				m.index.Mark(id, r.Appended)
				m.loaded++
			}
			m.Added(r.Seq, r.Appended)
		}
	}
	return m.Expire(now)
}

// Loaded is how many marks Load put back in the Index.
func (m *Marks) Loaded() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.loaded
}

// LoadedDecisions is how many decisions Load put back in the Index.
func (m *Marks) LoadedDecisions() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.decisions
}

// Expire deletes the marks older than their life.
func (m *Marks) Expire(now time.Time) error {
	cut := now.UnixNano() - m.life
	var upTo buffer.Seq
	m.mu.Lock()
	i := 0
	for ; i < len(m.ckpts) && m.ckpts[i].at < cut; i++ {
		upTo = max(upTo, m.ckpts[i].seq)
	}
	m.ckpts = append(m.ckpts[:0], m.ckpts[i:]...)
	m.mu.Unlock()
	if upTo == 0 {
		return nil
	}
	if err := m.buf.Ack(m.stream, upTo); err != nil {
		return fmt.Errorf("tail sampling: delete expired error marks up to %d: %w", upTo, err)
	}
	return nil
}

// Run deletes expired marks each grain until ctx is done.
func (m *Marks) Run(ctx context.Context) {
	t := time.NewTicker(time.Duration(m.grain))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			if err := m.Expire(now); err != nil && ctx.Err() == nil {
				m.log.Error("tail sampling: expiring error marks failed", "err", err)
			}
		}
	}
}
