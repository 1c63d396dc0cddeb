package normalize

import (
	"slices"
	"strings"

	"github.com/baton-relay/baton/relay/event"
)

// Breakdowns, as Relay's normalize_breakdowns (relay-event-normalization
// breakdowns.rs) computes them from the project's `breakdownsV2` during
// normalize_event, at the first relay too: product-defined measurements
// materialized from the event's spans. Sentry's default project config
// has one, `{"span_ops": {"type": "spanOperations", "matches": ["http",
// "db", "browser", "resource", "ui"]}}`.
//
// For a spanOperations breakdown, every span with an op and both
// timestamps is an interval (start and end swapped when reversed),
// grouped under the first of `matches` its op starts with (case
// sensitive), or under its own op when none does. A group's duration is
// the union of its intervals (sorted by start, each cut at the end of the
// one before); `ops.<match>` is emitted for the groups of a match and
// `total.time` is the sum over all groups, those of unmatched ops too, so
// overlapping spans of different groups count twice there. Values are
// milliseconds, rounded to the microsecond, unit "millisecond". An event
// whose spans emit nothing has no breakdown of that name.
//
// With a breakdownsV2 configured, the breakdowns the SDK sent are
// replaced, and removed when nothing is emitted: Relay accepts none from
// clients. Without one (nil), the event's are left as they are. Like
// Relay, this runs for every event type (only transactions have spans).

// Breakdown is one entry of a project's breakdownsV2; Input.Breakdowns
// holds them in name order (the order they are written in).
type Breakdown struct {
	// Name is the breakdown's key under the event's "breakdowns"; an entry
	// whose name has other characters than [a-zA-Z0-9._-] emits nothing.
	Name string
	// Matches are the span operation prefixes of a spanOperations
	// breakdown; nil for a type Relay does not know (which emits nothing).
	Matches []string
}

// ValidBreakdownName is Relay's Breakdowns::is_valid_breakdown_name.
func ValidBreakdownName(name string) bool {
	for _, c := range []byte(name) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// interval is a span's time window in microseconds.
type interval struct{ start, end int64 }

// opGroup is the intervals of one group: of the match key when emits,
// else of an op no match takes.
type opGroup struct {
	key   string
	emits bool
	spans []interval
}

// Breakdowns applies cfg to an event normalized without it (one that
// waited for its project's config): what Tree does with
// Input.Breakdowns, alone. The tree stays clean when the breakdowns are
// already what cfg makes of it. nil cfg does nothing.
func (n *Normalizer) Breakdowns(t *event.Tree, cfg []Breakdown) {
	if cfg != nil && t.Root().Kind() == event.Object {
		e := &norm{t: t, ev: t.Root()}
		e.breakdowns(cfg)
	}
}

// breakdowns applies cfg (Input.Breakdowns) to the event; nil does nothing.
func (e *norm) breakdowns(cfg []Breakdown) {
	if cfg == nil {
		return
	}
	t, ev := e.t, e.ev
	var out *event.Node
	var groups []opGroup
	for _, b := range cfg {
		if len(b.Matches) == 0 || !ValidBreakdownName(b.Name) {
			continue
		}
		groups = spanGroups(groups[:0], ev.Get("spans"), b.Matches)
		if len(groups) == 0 {
			continue
		}
		// Written in key order, as Relay writes its maps (BTreeMap):
		// "ops.*" sort before "total.time".
		slices.SortFunc(groups, func(a, b opGroup) int { return strings.Compare(a.key, b.key) })
		ms := t.NewObject()
		var total int64
		for i := range groups {
			g := &groups[i]
			d := unionLength(g.spans)
			total += d
			if g.emits {
				t.Set(ms, "ops."+g.key, e.millis(d))
			}
		}
		t.Set(ms, "total.time", e.millis(total))
		if out == nil {
			out = t.NewObject()
		}
		t.Set(out, b.Name, ms)
	}
	if out == nil {
		if ev.Has("breakdowns") {
			t.Delete(ev, "breakdowns")
		}
		return
	}
	if old := ev.Get("breakdowns"); old != nil && string(old.AppendJSON(nil)) == string(out.AppendJSON(nil)) {
		return // as computed before (idempotent): the tree stays clean
	}
	t.Set(ev, "breakdowns", out)
}

// millis is a measurement of us microseconds in milliseconds.
func (e *norm) millis(us int64) *event.Node {
	t := e.t
	var buf [32]byte
	m := t.NewObject()
	t.Set(m, "value", t.NewNumber(appendRustFloat(buf[:0], float64(us)/1e3)))
	t.Set(m, "unit", t.NewString("millisecond"))
	return m
}

// spanGroups appends the groups of the spans' intervals under matches, in
// the order their first span came.
func spanGroups(dst []opGroup, spans *event.Node, matches []string) []opGroup {
	if spans.Kind() != event.Array {
		return dst
	}
	for i := range spans.Len() {
		s := spans.Index(i)
		if s.Kind() != event.Object {
			continue
		}
		op, ok := s.Get("op").Str()
		if !ok {
			continue
		}
		start, end := parseTime(s.Get("start_timestamp")), parseTime(s.Get("timestamp"))
		if !start.ok || !end.ok {
			continue
		}
		iv := interval{start.us, end.us}
		if iv.end < iv.start {
			iv.start, iv.end = iv.end, iv.start
		}
		key, emits := op, false
		for _, m := range matches {
			if strings.HasPrefix(op, m) {
				key, emits = m, true
				break
			}
		}
		j := slices.IndexFunc(dst, func(g opGroup) bool { return g.key == key && g.emits == emits })
		if j < 0 {
			dst = append(dst, opGroup{key: key, emits: emits})
			j = len(dst) - 1
		}
		dst[j].spans = append(dst[j].spans, iv)
	}
	return dst
}

// unionLength is Relay's get_operation_duration: the length of the union
// of ivs, in microseconds.
func unionLength(ivs []interval) int64 {
	slices.SortFunc(ivs, func(a, b interval) int {
		switch {
		case a.start < b.start:
			return -1
		case a.start > b.start:
			return 1
		}
		return 0
	})
	var d, cut int64
	for i, iv := range ivs {
		if i > 0 {
			iv.start, iv.end = max(iv.start, cut), max(iv.end, cut)
		}
		d += iv.end - iv.start
		cut = iv.end
	}
	return d
}
