package project

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"
)

// TailSampling is the tailSampling part, config key "tailSampling": Baton's
// extension (DESIGN.md "Tail sampling"). An enabled project has its
// transactions and spans held until their trace is complete and decided
// whole (relay/tailsample), and is not head-sampled; a broken part leaves
// the project head-sampled as before.
//
//	{"enabled": true, "decisionWait": 30, "rootGrace": 5, "keepRate": 0.1, "durationThreshold": 2,
//	 "rules": [{"attribute": "tier", "equals": "gold"}, {"transaction": "/api/*"}, {"release": "2.*"}]}
type TailSampling struct {
	// Enabled turns tail sampling on. Default: false.
	Enabled bool `json:"enabled"`
	// DecisionWait is the quiet time in seconds after which a trace is
	// decided. Default 0: the relay's tail_sampling.decision_wait.
	DecisionWait float64 `json:"decisionWait"`
	// RootGrace is the time in seconds after the trace's root transaction
	// arrived after which it is decided, if sooner; 0 is off. Default
	// (absent or null): the relay's tail_sampling.root_grace.
	RootGrace *float64 `json:"rootGrace"`
	// KeepRate is the share of uninteresting traces kept, 0 to 1. Default
	// (absent or null): the rate the project's sampling rules give the
	// trace's first item.
	KeepRate *float64 `json:"keepRate"`
	// DurationThreshold in seconds keeps a trace with a transaction or
	// span at least this long; 0 is off. Default: 0.
	DurationThreshold float64 `json:"durationThreshold"`
	// Rules keep a trace with an item one of them matches. Default: none.
	Rules []TailRule `json:"rules"`
}

// TailRule is one keep rule (relay/tailsample.Match): every field set must
// hold for one item.
type TailRule struct {
	// Attribute and Equals: a tag of a transaction or a data key /
	// attribute of a span has this value.
	Attribute string `json:"attribute"`
	Equals    string `json:"equals"`
	// Transaction is a glob ('*' any run) of the transaction name.
	Transaction string `json:"transaction"`
	// Release is a glob of the release.
	Release string `json:"release"`
}

var (
	errTailSeconds = errors.New("must be a number of seconds, 0 or more")
	errTailRate    = errors.New("keepRate must be between 0 and 1")
)

func (ts *TailSampling) validate() error {
	for _, f := range []struct {
		name string
		v    float64
	}{{"decisionWait", ts.DecisionWait}, {"durationThreshold", ts.DurationThreshold}} {
		if !(f.v >= 0) || f.v > math.MaxInt64/float64(time.Second) {
			return fmt.Errorf("%s: %v %w", f.name, f.v, errTailSeconds)
		}
	}
	if g := ts.RootGrace; g != nil && (!(*g >= 0) || *g > math.MaxInt64/float64(time.Second)) {
		return fmt.Errorf("rootGrace: %v %w", *g, errTailSeconds)
	}
	if r := ts.KeepRate; r != nil && !(*r >= 0 && *r <= 1) {
		return fmt.Errorf("%w, not %v", errTailRate, *r)
	}
	for i, r := range ts.Rules {
		switch {
		case r.Attribute == "" && r.Equals != "":
			return fmt.Errorf("rules %d: equals needs an attribute", i)
		case r.Attribute == "" && r.Transaction == "" && r.Release == "":
			return fmt.Errorf("rules %d: a rule needs attribute, transaction or release", i)
		}
	}
	return nil
}

// Seconds converts one of the part's second counts to a duration.
func Seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// TailSampled reports whether the project's traces are tail-sampled by
// its config: a usable tailSampling part that is enabled.
func (st *State) TailSampled() bool {
	return st != nil && st.TailSampling != nil && st.TailSampling.Enabled
}

func (st *State) decodeTailSampling() error {
	raw, ok := st.config["tailSampling"]
	if !ok || bytes.Equal(raw, []byte("null")) {
		return nil
	}
	ts := new(TailSampling)
	if err := json.Unmarshal(raw, ts); err != nil {
		return fmt.Errorf("tailSampling: %w", err)
	}
	if err := ts.validate(); err != nil {
		return fmt.Errorf("tailSampling: %w", err)
	}
	st.TailSampling = ts
	return nil
}
