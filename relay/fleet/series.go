package fleet

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Series asks to admit one metric series (a bucket identity hash) of a
// (project, namespace) scope under Limit distinct series per sliding Window
// made of granules of Granularity. It mirrors relay/aggregate's
// SeriesCheck, which this package may not import.
type Series struct {
	Project     uint64
	Namespace   string
	Hash        uint64
	Limit       int
	Window      time.Duration
	Granularity time.Duration

	// A project's configured limit: its id, scope ("organization": Project
	// is the organization's id; "project", "type", "name") and the scope's
	// value (metric type or MRI, else ""); all "" for the default limit.
	ID, Scope, Value string
}

// ErrDown is returned by AdmitSeries while Redis is known to be
// unreachable: the caller decides locally, and the probe looks for Redis.
var ErrDown = errors.New("fleet: redis unreachable")

// maxScriptArgs bounds the members of one SADD in seriesScript (Lua's
// unpack has a stack limit).
const maxScriptArgs = 1000

// seriesScript admits a scope's series (docs/relay-protocol.md, 6.4).
// KEYS are the scope's granule sets, the current granule's (the working
// set: every series admitted in the last window) first, then the next
// ones of the window. ARGV: limit, ttl, then the hashes. A hash is
// admitted if the working set knows it or has fewer than limit members;
// an admitted hash is added to every set, so it counts for a window from
// now. It returns 1 (admitted) or 0 per hash, in order. SMISMEMBER needs
// Redis 6.2 or later.
var seriesScript = redis.NewScript(`
local limit = tonumber(ARGV[1])
local card = redis.call('SCARD', KEYS[1])
local n, chunk = #ARGV - 2, ` + strconv.Itoa(maxScriptArgs) + `
local known = {}
for i = 3, #ARGV, chunk do
  local k = redis.call('SMISMEMBER', KEYS[1], unpack(ARGV, i, math.min(i + chunk - 1, #ARGV)))
  for j = 1, #k do known[#known + 1] = k[j] end
end
local res, add, fresh = {}, {}, {}
for i = 1, n do
  local h = ARGV[i + 2]
  local ok = known[i] == 1 or fresh[h]
  if not ok and card < limit then
    card = card + 1
    fresh[h] = true
    ok = true
  end
  if ok then
    add[#add + 1] = h
    res[i] = 1
  else
    res[i] = 0
  end
end
for k = 1, #KEYS do
  for i = 1, #add, chunk do
    redis.call('SADD', KEYS[k], unpack(add, i, math.min(i + chunk - 1, #add)))
  end
  redis.call('EXPIRE', KEYS[k], ARGV[2])
end
return res
`)

// seriesScope is a script call: one scope's keys, arguments and the
// indexes of its series in the batch.
type seriesScope struct {
	keys []string
	args []any
	idx  []int
}

type seriesKey struct {
	project          uint64
	namespace        string
	id, scope, value string
	window, gra      time.Duration
}

// AdmitSeries decides a batch of series at now in one round trip: a
// pipeline of one script call per scope, bounded by MaxWait. It sets ok[i]
// for series[i]. While Redis is unreachable it returns ErrDown at once; a
// failure or a timeout returns the error and starts the fallback (see
// the package doc): the caller then decides the batch locally.
func (c *Counter) AdmitSeries(now time.Time, series []Series, ok []bool) error {
	if len(series) == 0 {
		return nil
	}
	if !c.up.Load() {
		c.seriesFallbacks.Add(int64(len(series)))
		return ErrDown
	}
	byKey := map[seriesKey]int{}
	var scopes []seriesScope
	for i, s := range series {
		k := seriesKey{s.Project, s.Namespace, s.ID, s.Scope, s.Value, s.Window, s.Granularity}
		j, seen := byKey[k]
		if !seen {
			j = len(scopes)
			byKey[k] = j
			scopes = append(scopes, c.seriesScope(s, now.Unix()))
		}
		sc := &scopes[j]
		sc.args = append(sc.args, int64(s.Hash)) // signed: Redis keeps small sets of integers as intsets
		sc.idx = append(sc.idx, i)
	}
	ctx, cancel := context.WithTimeout(c.ctx, c.opts.MaxWait)
	defer cancel()
	cmds := make([]*redis.Cmd, len(scopes))
	run := func(eval bool) error {
		pipe := c.rdb.Pipeline()
		for j := range scopes {
			if eval {
				cmds[j] = seriesScript.Eval(ctx, pipe, scopes[j].keys, scopes[j].args...)
			} else {
				cmds[j] = seriesScript.EvalSha(ctx, pipe, scopes[j].keys, scopes[j].args...)
			}
		}
		_, err := pipe.Exec(ctx)
		return err
	}
	err := run(false)
	if err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
		err = run(true) // a new or restarted server: Eval loads the script
	}
	if err == nil {
		err = collect(cmds, scopes, ok)
	}
	if err != nil {
		c.lost(err)
		c.seriesFallbacks.Add(int64(len(series)))
		return err
	}
	c.seriesCalls.Add(1)
	return nil
}

// collect copies the script answers to ok.
func collect(cmds []*redis.Cmd, scopes []seriesScope, ok []bool) error {
	for j, cmd := range cmds {
		res, err := cmd.Int64Slice()
		if err != nil {
			return err
		}
		if len(res) != len(scopes[j].idx) {
			return fmt.Errorf("fleet: series script answered %d of %d", len(res), len(scopes[j].idx))
		}
		for n, i := range scopes[j].idx {
			ok[i] = res[n] == 1
		}
	}
	return nil
}

// seriesScope starts the script call of s's scope at now (unix seconds):
// the keys of the granules from now's to the window's last, limit, ttl.
func (c *Counter) seriesScope(s Series, now int64) seriesScope {
	gran := max(int64(s.Granularity/time.Second), 1)
	window := max(int64(s.Window/time.Second), gran)
	n := (window + gran - 1) / gran
	first := now / gran
	prefix := c.seriesPrefix(&s, window, gran)
	keys := make([]string, n)
	for i := range n {
		keys[i] = prefix + strconv.FormatInt(first+i, 10)
	}
	// A set is read until its granule ends, at most a window from its
	// first write; a minute more for Batons whose clocks are a little apart.
	ttl := window + gran + sweepEvery
	return seriesScope{keys: keys, args: []any{s.Limit, ttl}}
}

// seriesPrefix is the keys' common part:
// prefix:c:{project:namespace}:window:granularity: for the default limit,
// prefix:c:{scope:project:namespace:id[:value]}:window:granularity: for a
// configured one (project is the organization's id for its scope; value
// the metric type or MRI of type and name scopes). The braces keep a
// scope's sets in one Redis Cluster slot, as a script needs.
func (c *Counter) seriesPrefix(s *Series, window, gran int64) string {
	b := make([]byte, 0, len(c.opts.KeyPrefix)+len(s.Namespace)+len(s.ID)+len(s.Scope)+len(s.Value)+64)
	b = append(b, c.opts.KeyPrefix...)
	b = append(b, ":c:{"...)
	if s.Scope != "" {
		b = append(b, s.Scope...)
		b = append(b, ':')
	}
	b = strconv.AppendUint(b, s.Project, 10)
	b = append(b, ':')
	b = append(b, s.Namespace...)
	if s.Scope != "" {
		b = append(b, ':')
		b = append(b, s.ID...)
		if s.Value != "" {
			b = append(b, ':')
			b = append(b, s.Value...)
		}
	}
	b = append(b, "}:"...)
	b = strconv.AppendInt(b, window, 10)
	b = append(b, ':')
	b = strconv.AppendInt(b, gran, 10)
	b = append(b, ':')
	return string(b)
}
