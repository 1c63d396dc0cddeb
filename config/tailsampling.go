package config

import (
	"maps"
	"slices"
	"strconv"
	"time"
)

// TailSampling holds the transactions and spans of some projects in the
// buffer until their trace is complete, then keeps or drops the whole trace
// (relay/tailsample, DESIGN.md "Tail sampling").
type TailSampling struct {
	// Projects are the decimal ids of the projects whose traces wait for a
	// decision. Default: [] (off).
	Projects []string `yaml:"projects"`
	// DecisionWait decides a trace once no item of it arrived for this
	// long. Default: 30s.
	DecisionWait time.Duration `yaml:"decision_wait"`
	// MaxTraceWait decides a trace this long after its first item even if
	// items keep coming. Default: 5m.
	MaxTraceWait time.Duration `yaml:"max_trace_wait"`
	// RootGrace decides a trace this long after its root transaction (one
	// without a parent_span_id) arrived, when that is sooner; at most the
	// decision wait counts; 0 is off. Default: 5s.
	RootGrace time.Duration `yaml:"root_grace"`
	// KeepRate is the share of uninteresting traces kept, 0 to 1, chosen by
	// a hash of the trace id (the same on every relay). Default: 1.
	KeepRate float64 `yaml:"keep_rate"`
	// DurationThreshold keeps a trace with a transaction or span at least
	// this long; 0 is off. Default: 0.
	DurationThreshold time.Duration `yaml:"duration_threshold"`
	// MaxTraces is the most traces waiting at once (the index's memory
	// bound); a trace beyond it is decided at once by the keep rate.
	// Default: 100000.
	MaxTraces int `yaml:"max_traces"`
	// MaxTraceItems decides a trace at once when it has this many items
	// (transactions and spans). Default: 1000.
	MaxTraceItems int `yaml:"max_trace_items"`
	// MaxBytes is the disk budget of the trace buffer: the stored size of
	// the records waiting for a decision; over it, the oldest traces are
	// decided at once. Default: 1GiB.
	MaxBytes ByteSize `yaml:"max_bytes"`
	// Rules keep a trace with an item that one of them matches (all of a
	// rule's fields must hold for one item). Default: none.
	Rules []TailRule `yaml:"rules"`
}

// TailRule is one keep rule of tail sampling (relay/tailsample.Match).
type TailRule struct {
	// Attribute is a tag of a transaction, or a data key/attribute of a
	// span; Equals is its value (numbers and booleans as their JSON text).
	Attribute string `yaml:"attribute"`
	Equals    string `yaml:"equals"`
	// Transaction is a glob ('*' any run of characters) of the
	// transaction name.
	Transaction string `yaml:"transaction"`
	// Release is a glob of the release.
	Release string `yaml:"release"`
}

// ProjectTailSampling is a static project's tail sampling
// (projects.<id>.tail_sampling), the tailSampling part of a managed
// project in YAML: present, it tail-samples the project (listed in
// tail_sampling.projects or not) under these rules instead of
// tail_sampling's; the index's bounds (max_trace_wait, max_traces, ...)
// stay tail_sampling's.
type ProjectTailSampling struct {
	// KeepRate is the share of uninteresting traces kept, 0 to 1.
	// Default: tail_sampling.keep_rate.
	KeepRate *float64 `yaml:"keep_rate"`
	// DecisionWait, at most tail_sampling.max_trace_wait. Default:
	// tail_sampling.decision_wait.
	DecisionWait time.Duration `yaml:"decision_wait"`
	// RootGrace; 0 is off. Default: tail_sampling.root_grace.
	RootGrace *time.Duration `yaml:"root_grace"`
	// DurationThreshold; 0 is off. Default: 0.
	DurationThreshold time.Duration `yaml:"duration_threshold"`
	// Rules are the project's keep rules (tail_sampling.rules are not
	// added). Default: none.
	Rules []TailRule `yaml:"rules"`
}

// TailProjects returns the project ids of tail_sampling.projects (the
// valid ones) and of the static projects with a tail_sampling of their
// own.
func (c *Config) TailProjects() map[uint64]bool {
	m := map[uint64]bool{}
	for _, p := range c.TailSampling.Projects {
		if id, err := strconv.ParseUint(p, 10, 64); err == nil {
			m[id] = true
		}
	}
	for p, pr := range c.Projects {
		if id, err := strconv.ParseUint(p, 10, 64); err == nil && pr.TailSampling != nil {
			m[id] = true
		}
	}
	return m
}

func (v *validator) tailSampling() {
	t := v.c.TailSampling
	for _, p := range t.Projects {
		if _, err := strconv.ParseUint(p, 10, 64); err != nil {
			v.errorf("tail_sampling.projects", "%q is not a decimal project id", p)
		}
	}
	v.durationPositive("tail_sampling.decision_wait", t.DecisionWait)
	v.durationPositive("tail_sampling.max_trace_wait", t.MaxTraceWait)
	if t.MaxTraceWait > 0 && t.DecisionWait > t.MaxTraceWait {
		v.errorf("tail_sampling.decision_wait", "%s is longer than max_trace_wait (%s)", t.DecisionWait, t.MaxTraceWait)
	}
	if t.RootGrace < 0 {
		v.errorf("tail_sampling.root_grace", "must not be negative (0 is off)")
	}
	if !(t.KeepRate >= 0 && t.KeepRate <= 1) {
		v.errorf("tail_sampling.keep_rate", "%v is not between 0 and 1", t.KeepRate)
	}
	if t.DurationThreshold < 0 {
		v.errorf("tail_sampling.duration_threshold", "must not be negative (0 is off)")
	}
	v.positive("tail_sampling.max_traces", int64(t.MaxTraces))
	v.positive("tail_sampling.max_trace_items", int64(t.MaxTraceItems))
	v.positive("tail_sampling.max_bytes", int64(t.MaxBytes))
	v.tailRules("tail_sampling.rules", t.Rules)
	for _, id := range slices.Sorted(maps.Keys(v.c.Projects)) {
		pt, p := v.c.Projects[id].TailSampling, "projects."+id+".tail_sampling"
		if pt == nil {
			continue
		}
		if pt.KeepRate != nil && !(*pt.KeepRate >= 0 && *pt.KeepRate <= 1) {
			v.errorf(p+".keep_rate", "%v is not between 0 and 1", *pt.KeepRate)
		}
		if pt.DecisionWait < 0 {
			v.errorf(p+".decision_wait", "must not be negative (0 is tail_sampling.decision_wait)")
		} else if t.MaxTraceWait > 0 && pt.DecisionWait > t.MaxTraceWait {
			v.errorf(p+".decision_wait", "%s is longer than tail_sampling.max_trace_wait (%s)", pt.DecisionWait, t.MaxTraceWait)
		}
		if pt.RootGrace != nil && *pt.RootGrace < 0 {
			v.errorf(p+".root_grace", "must not be negative (0 is off)")
		}
		if pt.DurationThreshold < 0 {
			v.errorf(p+".duration_threshold", "must not be negative (0 is off)")
		}
		v.tailRules(p+".rules", pt.Rules)
	}
}

func (v *validator) tailRules(field string, rules []TailRule) {
	for i, r := range rules {
		f := field + "[" + strconv.Itoa(i) + "]"
		switch {
		case r.Attribute == "" && r.Equals != "":
			v.errorf(f, "equals needs an attribute")
		case r.Attribute == "" && r.Transaction == "" && r.Release == "":
			v.errorf(f, "a rule needs attribute, transaction or release")
		}
	}
}
