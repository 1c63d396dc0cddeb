package project

import (
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/baton-relay/baton/relay/glob"
)

// Sampling is the dynamic sampling part (docs/relay-protocol.md §7.3).
//
// The edge decides only trace rules, from the envelope's dynamic sampling
// context (DSC): transaction rules need the event payload and are left to
// the processing relay, as are rules on fields the DSC does not carry.
type Sampling struct {
	Version int    `json:"version"`
	Rules   []Rule `json:"rules"`
	// RulesV2 is the older name of Rules; both are read.
	RulesV2 []Rule `json:"rulesV2"`
}

// Rule is one sampling rule.
type Rule struct {
	ID            uint32 `json:"id"`
	Type          string `json:"type"` // trace or transaction
	SamplingValue struct {
		Type  string  `json:"type"` // sampleRate, factor, minimumSampleRate
		Value float64 `json:"value"`
	} `json:"samplingValue"`
	Condition Condition `json:"condition"`
	TimeRange struct {
		Start *time.Time `json:"start"`
		End   *time.Time `json:"end"`
	} `json:"timeRange"`
}

// Condition is a node of Relay's rule-condition language.
type Condition struct {
	Op      string          `json:"op"`
	Name    string          `json:"name"`
	Value   json.RawMessage `json:"value"`
	Inner   json.RawMessage `json:"inner"` // []Condition for and/or, Condition for not
	Options struct {
		IgnoreCase bool `json:"ignoreCase"`
	} `json:"options"`

	inner  []Condition
	values []string
	number float64
}

var errBadCondition = errors.New("invalid condition")

func (s *Sampling) validate() error {
	if len(s.Rules) == 0 {
		s.Rules = s.RulesV2
	}
	s.RulesV2 = nil
	for i := range s.Rules {
		r := &s.Rules[i]
		switch r.Type {
		case "trace", "transaction", "project":
		default:
			return fmt.Errorf("rule %d: unknown type %q", r.ID, r.Type)
		}
		v := r.SamplingValue.Value
		switch r.SamplingValue.Type {
		case "sampleRate", "minimumSampleRate":
			if !(v >= 0 && v <= 1) {
				return fmt.Errorf("rule %d: sample rate %v outside [0, 1]", r.ID, v)
			}
		case "factor":
			if !(v >= 0) || math.IsInf(v, 0) {
				return fmt.Errorf("rule %d: bad factor %v", r.ID, v)
			}
		default:
			return fmt.Errorf("rule %d: unknown samplingValue type %q", r.ID, r.SamplingValue.Type)
		}
		if err := r.Condition.compile(0); err != nil {
			return fmt.Errorf("rule %d: %w", r.ID, err)
		}
	}
	return nil
}

func (c *Condition) compile(depth int) error {
	if depth > 32 {
		return fmt.Errorf("%w: nested too deep", errBadCondition)
	}
	switch c.Op {
	case "and", "or":
		if len(c.Inner) == 0 {
			return nil // Relay: and of nothing is true, or of nothing false
		}
		if err := json.Unmarshal(c.Inner, &c.inner); err != nil {
			return fmt.Errorf("%w: %s inner: %v", errBadCondition, c.Op, err)
		}
	case "not":
		c.inner = make([]Condition, 1)
		if err := json.Unmarshal(c.Inner, &c.inner[0]); err != nil {
			return fmt.Errorf("%w: not inner: %v", errBadCondition, err)
		}
	case "eq", "glob":
		if c.Name == "" {
			return fmt.Errorf("%w: %s without name", errBadCondition, c.Op)
		}
		var one string
		if err := json.Unmarshal(c.Value, &one); err == nil {
			c.values = []string{one}
		} else if err := json.Unmarshal(c.Value, &c.values); err != nil {
			var b bool // eq also compares booleans and null
			if json.Unmarshal(c.Value, &b) != nil {
				return fmt.Errorf("%w: %s value: %v", errBadCondition, c.Op, err)
			}
			c.values = []string{strconv.FormatBool(b)}
		}
	case "gt", "gte", "lt", "lte":
		if err := json.Unmarshal(c.Value, &c.number); err != nil {
			return fmt.Errorf("%w: %s value: %v", errBadCondition, c.Op, err)
		}
	default:
		return fmt.Errorf("%w: unknown op %q", errBadCondition, c.Op)
	}
	for i := range c.inner {
		if err := c.inner[i].compile(depth + 1); err != nil {
			return err
		}
	}
	return nil
}

// DSC is the part of a dynamic sampling context the edge looks at.
type DSC struct {
	TraceID     string `json:"trace_id"`
	PublicKey   string `json:"public_key"`
	Release     string `json:"release"`
	Environment string `json:"environment"`
	Transaction string `json:"transaction"`
	SampleRand  string `json:"sample_rand"`
	ReplayID    string `json:"replay_id"`
	UserSegment string `json:"user_segment"`
	UserID      string `json:"user_id"`
}

func (d *DSC) field(name string) (string, bool) {
	switch strings.TrimPrefix(name, "trace.") {
	case "release", "releases":
		return d.Release, d.Release != ""
	case "environment":
		return d.Environment, d.Environment != ""
	case "transaction":
		return d.Transaction, d.Transaction != ""
	case "replay_id":
		return d.ReplayID, d.ReplayID != ""
	case "user.segment", "user_segment":
		return d.UserSegment, d.UserSegment != ""
	case "user.id", "user_id":
		return d.UserID, d.UserID != ""
	}
	return "", false
}

// Fields is what a condition reads: the value of a named field, and
// whether the item has it. The DSC answers trace.* names, an event the
// event.* names of generic inbound filters.
type Fields interface {
	Field(name string) (string, bool)
}

// Field answers the trace.* fields of trace sampling rules.
func (d *DSC) Field(name string) (string, bool) { return d.field(name) }

// Match reports whether the item f describes satisfies the condition.
func (c *Condition) Match(f Fields) bool { return c.match(f) }

func (c *Condition) match(d Fields) bool {
	switch c.Op {
	case "and":
		for i := range c.inner {
			if !c.inner[i].match(d) {
				return false
			}
		}
		return true
	case "or":
		for i := range c.inner {
			if c.inner[i].match(d) {
				return true
			}
		}
		return false
	case "not":
		return !c.inner[0].match(d)
	}
	v, ok := d.Field(c.Name)
	if !ok {
		return false
	}
	switch c.Op {
	case "eq":
		for _, w := range c.values {
			if v == w || c.Options.IgnoreCase && strings.EqualFold(v, w) {
				return true
			}
		}
	case "glob":
		for _, w := range c.values {
			if glob.Match(w, v) {
				return true
			}
		}
	case "gt", "gte", "lt", "lte":
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return false
		}
		switch c.Op {
		case "gt":
			return f > c.number
		case "gte":
			return f >= c.number
		case "lt":
			return f < c.number
		default:
			return f <= c.number
		}
	}
	return false
}

// Decision is the outcome of sampling a trace.
type Decision struct {
	Keep bool
	Rate float64
	Rule uint32 // the sampleRate rule that decided; 0 when none matched
}

// Decide samples the trace described by d with the trace rules active at
// now: the first matching sampleRate (times the factors matched before it)
// is compared with the trace's random number. No matching rule keeps.
func (s *Sampling) Decide(d *DSC, now time.Time) Decision {
	factor := 1.0
	for i := range s.Rules {
		r := &s.Rules[i]
		if r.Type != "trace" || !r.active(now) || !r.Condition.match(d) {
			continue
		}
		switch r.SamplingValue.Type {
		case "factor":
			factor *= r.SamplingValue.Value
		case "sampleRate", "minimumSampleRate":
			rate := min(r.SamplingValue.Value*factor, 1)
			return Decision{Keep: traceRand(d) < rate, Rate: rate, Rule: r.ID}
		}
	}
	return Decision{Keep: true, Rate: 1}
}

func (r *Rule) active(now time.Time) bool {
	if s := r.TimeRange.Start; s != nil && now.Before(*s) {
		return false
	}
	if e := r.TimeRange.End; e != nil && !now.Before(*e) {
		return false
	}
	return true
}

// traceRand is the trace's random number in [0, 1): the DSC's sample_rand
// when the SDK sent one (so every relay agrees with the SDK), else derived
// from the trace id (so every relay agrees with each other).
func traceRand(d *DSC) float64 {
	if f, err := strconv.ParseFloat(d.SampleRand, 64); err == nil && f >= 0 && f < 1 {
		return f
	}
	h := fnv.New64a()
	h.Write([]byte(strings.ReplaceAll(strings.ToLower(d.TraceID), "-", "")))
	return float64(h.Sum64()>>11) / (1 << 53)
}

// BlockedIP reports whether the client address addr is in the clientIps
// filter.
func (f *Filters) BlockedIP(addr netip.Addr) bool {
	addr = addr.Unmap()
	for _, p := range f.blocked {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// HasIPFilter reports whether the clientIps filter lists anything, so that
// callers look up the client address only when it matters.
func (f *Filters) HasIPFilter() bool { return len(f.blocked) > 0 }

// HasReleaseFilter reports whether the releases filter lists anything.
func (f *Filters) HasReleaseFilter() bool { return len(f.Releases.Releases) > 0 }

// BlockedRelease reports whether release matches the releases filter.
func (f *Filters) BlockedRelease(release string) bool {
	if release == "" {
		return false
	}
	for _, g := range f.Releases.Releases {
		if glob.Match(g, release) {
			return true
		}
	}
	return false
}

func parseIPOrPrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		return netip.ParsePrefix(s)
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}
