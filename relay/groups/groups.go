package groups

import (
	"errors"
	"hash/maphash"
	"sync"
	"time"
)

// Options configures a Table. The zero value is valid.
type Options struct {
	// MaxIssues bounds the issues held. Default: 65,536.
	MaxIssues int
	// Shards is the number of independently locked LRUs the issues are
	// spread over. Default: 16.
	Shards int
	// Now is the clock. Default: time.Now.
	Now func() time.Time
}

// ErrOptions is returned by New for options out of range.
var ErrOptions = errors.New("groups: invalid options")

// Count is the number of events of one issue seen since the previous
// Drain; PublicKey is the DSN key its first event came with.
type Count struct {
	ProjectID uint64
	PublicKey string
	Hash      string
	Events    int64
}

// Stats is a snapshot of a Table.
type Stats struct {
	Issues  int   // issues held
	Evicted int64 // issues evicted since New
	Lost    int64 // events whose count was evicted past the spill bound
}

// Table is the per-issue state. See the package doc.
type Table struct {
	shards []shard
	seed   maphash.Seed
	now    func() time.Time
}

type issueKey struct {
	project uint64
	hash    string
}

type entry struct {
	key         issueKey
	publicKey   string
	windowStart int64 // unix nanoseconds
	kept        int   // events kept in the window
	count       int64 // events seen since the last Drain
	prev, next  *entry
}

type shard struct {
	mu      sync.Mutex
	max     int
	m       map[issueKey]*entry
	root    entry // sentinel of the LRU list: root.next is the most recent
	spill   []Count
	evicted int64
	lost    int64
}

// New returns an empty table.
func New(o Options) (*Table, error) {
	if o.MaxIssues < 0 || o.Shards < 0 {
		return nil, ErrOptions
	}
	if o.MaxIssues == 0 {
		o.MaxIssues = 65536
	}
	if o.Shards == 0 {
		o.Shards = 16
	}
	o.Shards = min(o.Shards, o.MaxIssues)
	if o.Now == nil {
		o.Now = time.Now
	}
	t := &Table{shards: make([]shard, o.Shards), seed: maphash.MakeSeed(), now: o.Now}
	per := o.MaxIssues / o.Shards
	for i := range t.shards {
		s := &t.shards[i]
		s.max = per
		if i < o.MaxIssues%o.Shards {
			s.max++
		}
		s.m = make(map[issueKey]*entry)
		s.root.prev, s.root.next = &s.root, &s.root
	}
	return t, nil
}

// Observe counts one event of the issue (projectID, hash), sent with
// publicKey, and reports whether storm control keeps it: always when limit
// is 0, else when fewer than limit events of the issue were kept in its
// current window.
func (t *Table) Observe(projectID uint64, publicKey []byte, hash string, limit int, window time.Duration) bool {
	k := issueKey{projectID, hash}
	s := &t.shards[t.shardOf(k)]
	now := t.now().UnixNano()
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.m[k]
	if ok {
		e.unlink()
	} else {
		if len(s.m) >= s.max {
			s.evict()
		}
		e = &entry{key: k, publicKey: string(publicKey), windowStart: now}
		s.m[k] = e
	}
	s.pushFront(e)
	e.count++
	if limit <= 0 {
		return true
	}
	if now-e.windowStart >= int64(window) || now < e.windowStart {
		e.windowStart, e.kept = now, 0
	}
	if e.kept >= limit {
		return false
	}
	e.kept++
	return true
}

func (t *Table) shardOf(k issueKey) int {
	var h maphash.Hash
	h.SetSeed(t.seed)
	var b [8]byte
	for i := range b {
		b[i] = byte(k.project >> (8 * i))
	}
	_, _ = h.Write(b[:])
	_, _ = h.WriteString(k.hash)
	return int(h.Sum64() % uint64(len(t.shards)))
}

// Drain appends to dst the counts seen since the previous Drain (spilled
// ones included) and resets them.
func (t *Table) Drain(dst []Count) []Count {
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		dst = append(dst, s.spill...)
		clear(s.spill)
		s.spill = s.spill[:0]
		for e := s.root.next; e != &s.root; e = e.next {
			if e.count > 0 {
				dst = append(dst, Count{ProjectID: e.key.project, PublicKey: e.publicKey, Hash: e.key.hash, Events: e.count})
				e.count = 0
			}
		}
		s.mu.Unlock()
	}
	return dst
}

// Stats returns a snapshot of the table.
func (t *Table) Stats() Stats {
	var st Stats
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		st.Issues += len(s.m)
		st.Evicted += s.evicted
		st.Lost += s.lost
		s.mu.Unlock()
	}
	return st
}

// evict removes the least recently used issue, spilling its count.
func (s *shard) evict() {
	e := s.root.prev
	if e == &s.root {
		return
	}
	e.unlink()
	delete(s.m, e.key)
	s.evicted++
	if e.count == 0 {
		return
	}
	if len(s.spill) >= s.max {
		s.lost += e.count
		return
	}
	s.spill = append(s.spill, Count{ProjectID: e.key.project, PublicKey: e.publicKey, Hash: e.key.hash, Events: e.count})
}

func (s *shard) pushFront(e *entry) {
	e.prev, e.next = &s.root, s.root.next
	s.root.next.prev = e
	s.root.next = e
}

func (e *entry) unlink() {
	e.prev.next = e.next
	e.next.prev = e.prev
	e.prev, e.next = nil, nil
}
