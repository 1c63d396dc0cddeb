package tailsample

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// refTrace is the reference model of one trace: the rule written
// out plainly.
type refTrace struct {
	first, last time.Time
	items       int
	wait        time.Duration // fixed by its first item
	rate        float64       // fixed by its first item
	rootAt      time.Time     // when its first root came (with a grace); zero: none yet
	grace       time.Duration // that root's grace
	interesting bool
	decided     bool
	keep        bool
}

// TestDecisionModel drives an Index and a plain reference with random
// items, error marks and clock steps, and checks that every trace is
// decided once, at the same step, the same way: due once quiet for the
// decision wait, or the root grace (at most the decision wait) after its
// root transaction, or MaxTraceWait after its first item; kept when interesting
// (an error mark, an error status, or an item a rule matches: tag equals,
// transaction glob, release glob, an item lasting the duration threshold)
// or Hash < the keep rate; later items
// follow; a trace with MaxTraceItems items is due at once. Items of one trace come with differing keep rates and waits (a
// DSC that changes mid-trace): the first item's hold.
func TestDecisionModel(t *testing.T) {
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 7))
		threshold := time.Duration(seed%3) * time.Second // 0: off
		rules := Rules{KeepRate: rng.Float64(), DurationThreshold: threshold, Match: []Match{
			{Attribute: "tier", Equals: "gold"},
			{Transaction: "checkout*"},
			{Release: "2.*", Attribute: "region", Equals: "eu"},
		}}
		o := IndexOptions{Rules: rules, DecisionWait: time.Second, MaxTraceWait: 5 * time.Second, MaxTraces: 1000, MaxTraceItems: 2 + int(seed%5)}
		x := NewIndex(o)
		ref := map[string]*refTrace{}
		var ids []string
		for i := range 40 {
			ids = append(ids, fmt.Sprintf("%016x%016x", rng.Uint64(), i))
		}
		now := t0
		decisions := 0
		for step := range 400 {
			now = now.Add(time.Duration(rng.IntN(400)) * time.Millisecond)
			id := ids[rng.IntN(len(ids))]
			r := ref[id]
			switch p := rng.IntN(20); {
			case p == 0: // an error of the trace
				x.Mark(id, now)
				if r == nil {
					r = &refTrace{first: now, last: now}
					ref[id] = r
				}
				r.interesting = true
			default:
				item := randomItem(rng, id, p == 1, rng.IntN(6) == 0, threshold)
				itemRules := rules // the rate and wait of this item's DSC
				itemRules.KeepRate = rng.Float64()
				itemRules.DecisionWait = time.Duration(1+rng.IntN(3)) * 500 * time.Millisecond
				itemRules.RootGrace = time.Duration(rng.IntN(4)) * 400 * time.Millisecond // 0: off
				gotID, interesting, root := itemRules.Inspect(item.env)
				if gotID != id || interesting != item.interesting || root != item.root {
					t.Fatalf("seed %d step %d: Inspect(%s) = %s, %v, %v; reference %s, %v, %v", seed, step, item.env, gotID, interesting, root, id, item.interesting, item.root)
				}
				decided, keep := x.observe(id, now, interesting, root, &itemRules, 1, len(item.env))
				if r == nil {
					r = &refTrace{first: now, last: now}
					ref[id] = r
				}
				if r.wait == 0 && !r.decided {
					r.wait, r.rate = itemRules.DecisionWait, itemRules.KeepRate
				}
				if r.decided {
					if !decided || keep != r.keep {
						t.Fatalf("seed %d step %d: late item of %s: decided %v keep %v, want the trace's %v", seed, step, id, decided, keep, r.keep)
					}
					continue
				}
				if decided {
					t.Fatalf("seed %d step %d: %s decided at observe", seed, step, id)
				}
				r.last, r.interesting = now, r.interesting || interesting
				r.items++
				if item.root && itemRules.RootGrace > 0 && r.rootAt.IsZero() {
					r.rootAt, r.grace = now, itemRules.RootGrace
				}
			}
			for _, id := range ids {
				r := ref[id]
				if r == nil || !hasRecord(x, id) {
					continue
				}
				h := []heldRecord{{id: id}}
				decided := x.decide(h, now) == 1
				keep := h[0].keep
				due := now.Sub(r.last) >= r.wait || now.Sub(r.first) >= o.MaxTraceWait || r.items >= o.MaxTraceItems ||
					!r.rootAt.IsZero() && now.Sub(r.rootAt) >= min(r.grace, r.wait)
				if !r.decided && due {
					r.decided, r.keep = true, r.interesting || Hash(id) < r.rate
					decisions++
				}
				if decided != r.decided || (decided && keep != r.keep) {
					t.Fatalf("seed %d step %d: %s: decided %v keep %v, reference %v %v (%+v)", seed, step, id, decided, keep, r.decided, r.keep, *r)
				}
			}
		}
		if st := x.Stats(); st.Kept+st.Dropped != int64(decisions) {
			t.Fatalf("seed %d: %d decisions counted, reference made %d", seed, st.Kept+st.Dropped, decisions)
		}
	}
}

// modelItem is one random transaction and what the reference says of it.
type modelItem struct {
	env         []byte
	interesting bool
	root        bool
}

// randomItem is a transaction of trace id with a random name, release,
// tags (object or pair-list form, or on a span) and status; the reference
// decides the rules of TestDecisionModel plainly. A root's trace context
// has no parent_span_id (absent or null); the others have one.
func randomItem(rng *rand.Rand, id string, errStatus, root bool, threshold time.Duration) modelItem {
	names := []string{"checkout", "checkout/pay", "check", "home"}
	releases := []string{"", "2.0", "2.1-beta", "1.9"}
	tiers := []string{"", "gold", "silver", "gold "}
	regions := []string{"", "eu", "us"}
	name, release := names[rng.IntN(len(names))], releases[rng.IntN(len(releases))]
	tier, region := tiers[rng.IntN(len(tiers))], regions[rng.IntN(len(regions))]
	status := "ok"
	if errStatus {
		status = "internal_error"
	}
	attrs := map[string]string{}
	if tier != "" {
		attrs["tier"] = tier
	}
	if region != "" {
		attrs["region"] = region
	}
	var tags, spans string
	switch rng.IntN(3) {
	case 0: // object tags
		b, _ := json.Marshal(attrs)
		tags = string(b)
	case 1: // Sentry's pair list
		var pairs [][2]string
		for k, v := range attrs {
			pairs = append(pairs, [2]string{k, v})
		}
		b, _ := json.Marshal(pairs)
		tags = string(b)
	default: // span data
		b, _ := json.Marshal(attrs)
		tags, spans = "{}", fmt.Sprintf(`[{"op":"db","data":%s}]`, b)
	}
	if spans == "" {
		spans = "[]"
	}
	parent := `,"parent_span_id":"b0e6f15b45c36b12"`
	if root {
		parent = [...]string{"", `,"parent_span_id":null`}[rng.IntN(2)]
	}
	took := []float64{0.25, 0.999, 1, 1.5, 2, 3}[rng.IntN(6)] // seconds
	tx := fmt.Sprintf(`{"transaction":%q,"release":%q,"tags":%s,"spans":%s,"start_timestamp":1700000000.5,"timestamp":%v,"contexts":{"trace":{"trace_id":%q,"status":%q%s}}}`,
		name, release, tags, spans, 1700000000.5+took, id, status, parent)
	env := fmt.Appendf(nil, "{\"trace\":{\"trace_id\":%q}}\n{\"type\":\"transaction\"}\n%s\n", id, tx)
	interesting := errStatus || tier == "gold" || strings.HasPrefix(name, "checkout") ||
		(strings.HasPrefix(release, "2.") && region == "eu") ||
		threshold > 0 && took >= threshold.Seconds()
	return modelItem{env: env, interesting: interesting, root: root}
}

// hasRecord: a Sampler asks only about traces it holds records of.
func hasRecord(x *Index, id string) bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	t := x.m[id]
	return t != nil && t.refs > 0
}

// Hash is pinned: every relay, of every version, must agree on it.
func TestHashIsFixedAndUniform(t *testing.T) {
	id := "771a43a4192642f0b136d5159a501700"
	if h := Hash(id); fmt.Sprintf("%.12f", h) != pinnedHash {
		t.Errorf("Hash(%s) = %.12f, want %s: changing it splits traces across relays", id, h, pinnedHash)
	}
	if Hash(strings.ToUpper(id)) != Hash(id) {
		t.Error("Hash depends on the case of the trace id")
	}
	rng := rand.New(rand.NewPCG(1, 2))
	kept := 0
	const n, rate = 20000, 0.25
	for range n {
		if (Rules{KeepRate: rate}).KeepByRate(fmt.Sprintf("%016x%016x", rng.Uint64(), rng.Uint64())) {
			kept++
		}
	}
	if got := float64(kept) / n; got < rate-0.02 || got > rate+0.02 {
		t.Errorf("kept %.3f of random traces at keep_rate %v", got, rate)
	}
}

// pinnedHash is Hash of the id above, computed independently (Python).
const pinnedHash = "0.723318816911"

// Inspect finds the trace id in the header or, without one, in the item;
// error statuses and long items make the trace interesting.
func TestInspect(t *testing.T) {
	r := Rules{DurationThreshold: 2 * time.Second}
	for _, c := range []struct {
		env, id     string
		interesting bool
	}{
		{"{\"trace\":{\"trace_id\":\"AB12\"}}\n{\"type\":\"transaction\"}\n{\"start_timestamp\":1,\"timestamp\":2,\"contexts\":{\"trace\":{\"status\":\"ok\"}}}\n", "ab12", false},
		{"{}\n{\"type\":\"transaction\"}\n{\"start_timestamp\":1,\"timestamp\":2,\"contexts\":{\"trace\":{\"trace_id\":\"cd34\",\"status\":\"deadline_exceeded\"}}}\n", "cd34", true},
		{"{}\n{\"type\":\"transaction\"}\n{\"start_timestamp\":\"2024-01-01T00:00:00Z\",\"timestamp\":\"2024-01-01T00:00:03Z\",\"contexts\":{\"trace\":{\"trace_id\":\"ef\"}}}\n", "ef", true},
		{"{}\n{\"type\":\"span\"}\n{\"trace_id\":\"01\",\"start_timestamp\":1,\"end_timestamp\":2.5,\"status\":\"ok\"}\n", "01", false},
		{"{}\n{\"type\":\"span\"}\n{\"trace_id\":\"01\",\"start_timestamp\":1,\"end_timestamp\":3.5,\"status\":\"cancelled\"}\n", "01", true},
	} {
		id, interesting, _ := r.Inspect([]byte(c.env))
		if id != c.id || interesting != c.interesting {
			t.Errorf("Inspect(%q) = %q, %v; want %q, %v", c.env, id, interesting, c.id, c.interesting)
		}
	}
}

// With Match rules each payload is decoded once for the rules and the
// status checks alike; a field of the wrong JSON type leaves the others
// to judge the item, with or without rules.
func TestInspectRules(t *testing.T) {
	rules := Rules{DurationThreshold: 2 * time.Second, Match: []Match{{Transaction: "/checkout/*"}}}
	for _, c := range []struct {
		r           Rules
		payload     string
		interesting bool
	}{
		{rules, `{"transaction":"/home","start_timestamp":1,"timestamp":2,"contexts":{"trace":{"trace_id":"ab","status":"ok"}}}`, false},
		{rules, `{"transaction":"/checkout/pay","contexts":{"trace":{"trace_id":"ab"}}}`, true},
		{rules, `{"transaction":"/home","contexts":{"trace":{"trace_id":"ab","status":"internal_error"}}}`, true},
		{rules, `{"transaction":"/home","start_timestamp":1,"timestamp":3.5,"contexts":{"trace":{"trace_id":"ab"}}}`, true},
		{rules, `{"transaction":"/home","spans":{},"contexts":{"trace":{"trace_id":"ab","status":"internal_error"}}}`, true},
		{rules, `{"transaction":"/checkout/pay","status":5,"contexts":{"trace":{"trace_id":"ab"}}}`, true},
		{Rules{}, `{"status":5,"contexts":{"trace":{"trace_id":"ab","status":"internal_error"}}}`, true},
		{rules, `{"transaction":"/checkout/pay"`, false},
	} {
		env := "{}\n{\"type\":\"transaction\"}\n" + c.payload + "\n"
		id, interesting, _ := c.r.Inspect([]byte(env))
		wantID := "ab"
		if !json.Valid([]byte(c.payload)) {
			wantID = ""
		}
		if id != wantID || interesting != c.interesting {
			t.Errorf("rules %+v on %s: %q, %v; want %q, %v", c.r.Match, c.payload, id, interesting, wantID, c.interesting)
		}
	}
}

// Marks of traces whose items never come are forgotten after
// MaxTraceWait: errors alone cannot fill the index.
func TestMarksAreForgotten(t *testing.T) {
	x := NewIndex(IndexOptions{DecisionWait: time.Second, MaxTraceWait: time.Minute, MaxTraces: 10})
	for i := range 10 {
		x.Mark(fmt.Sprintf("%032x", i), t0)
	}
	if st := x.Stats(); st.Waiting != 10 {
		t.Fatalf("%d indexed, want the 10 marks", st.Waiting)
	}
	x.Mark(traceA, t0.Add(2*time.Minute))
	if st := x.Stats(); st.Waiting != 1 {
		t.Errorf("%d indexed after max_trace_wait, want only the new mark", st.Waiting)
	}
	if decided, _ := x.observe(traceB, t0.Add(2*time.Minute), false, false, nil, 1, 0); decided {
		t.Error("a new trace was decided early: the index is still full of old marks")
	}
}
