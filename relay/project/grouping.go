package project

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// DefaultGroupingConfig is the Sentry grouping config whose hashes Baton
// reproduces (relay/grouping.ConfigID; this package may not import it,
// TestGroupingConfigID holds them equal).
const DefaultGroupingConfig = "newstyle:2023-01-11"

// Grouping is the grouping part, config key "grouping": Baton's extension
// (docs/grouping.md "At the edge"). A project that has it gets its error
// events hashed at ingest (relay/grouping) and the hash put into the item
// header; events whose primary hash is in DiscardedHashes are dropped at
// the edge, outcome filtered, reason discarded_hash. With Storm, only the
// first Storm.Limit events of an issue per Storm.Window are kept (the rest
// are filtered, reason grouping_storm) and every event is counted in the
// per-issue metric c:custom/baton.grouping.events@none. Count alone counts
// the events in that metric and drops none. CustomRules says the project
// groups with rules of its own, so no edge hash of it is final.
type Grouping struct {
	// DiscardedHashes are issue hashes (Sentry's primary hash: 32
	// lower-case hex digits, or a legacy checksum as sent). Default: none.
	DiscardedHashes []string `json:"discardedHashes"`
	// Storm is storm control. Default: off.
	Storm Storm `json:"storm"`
	// Count counts every event not discarded in the per-issue metric
	// c:custom/baton.grouping.events@none, without a storm limit
	// (metrics extraction; storm control always counts). Default: false.
	Count bool `json:"count"`
	// CustomRules says the project has grouping rules Baton does not
	// apply: stack-trace rules (Sentry's project option
	// sentry:grouping_enhancements) or server-side fingerprint rules
	// (sentry:fingerprinting_rules). Its hashes are sent as not final.
	// Default: false.
	CustomRules bool `json:"customRules"`

	discarded map[string]struct{}
	notFinal  string // why no hash of the project is final, or ""
}

// Storm is storm control: per issue, keep the first Limit events of each
// Window (docs/grouping.md "At the edge").
type Storm struct {
	// Limit is the events of one issue kept per window; 0 is off.
	// Default: 0.
	Limit int `json:"limit"`
	// Window is the window in seconds, as Relay's quota windows are.
	// Required (greater than 0) when Limit is set.
	Window int64 `json:"window"`
}

// WindowDuration is Window as a duration.
func (s Storm) WindowDuration() time.Duration { return time.Duration(s.Window) * time.Second }

var (
	errEmptyHash   = errors.New("empty hash")
	errStormLimit  = errors.New("storm.limit must not be negative")
	errStormWindow = errors.New("storm.window must be greater than 0 seconds when storm.limit is set")
)

func (g *Grouping) validate() error {
	switch {
	case g.Storm.Limit < 0:
		return errStormLimit
	case g.Storm.Limit > 0 && g.Storm.Window <= 0:
		return errStormWindow
	}
	g.discarded = make(map[string]struct{}, len(g.DiscardedHashes))
	for i, h := range g.DiscardedHashes {
		if h == "" {
			return fmt.Errorf("discardedHashes %d: %w", i, errEmptyHash)
		}
		g.discarded[h] = struct{}{}
	}
	if g.CustomRules {
		g.notFinal = "project grouping rules: the project has stack-trace or fingerprint rules of its own (customRules)"
	}
	return nil
}

// NotFinal is why no edge hash of the project is Sentry's (its own rules,
// another grouping config), or "" when the part does not know of any.
func (g *Grouping) NotFinal() string {
	if g == nil {
		return ""
	}
	return g.notFinal
}

// Discards reports whether events with the primary hash h are dropped at
// the edge; never for "" (an event without a hash).
func (g *Grouping) Discards(h string) bool {
	if g == nil || h == "" {
		return false
	}
	_, ok := g.discarded[h]
	return ok
}

// StormLimit returns the storm limit and window; limit 0 is off.
func (g *Grouping) StormLimit() (limit int, window time.Duration) {
	if g == nil {
		return 0, 0
	}
	return g.Storm.Limit, g.Storm.WindowDuration()
}

// Counts reports whether the events of an issue are counted in the
// per-issue metric: with Count or a storm limit.
func (g *Grouping) Counts() bool {
	return g != nil && (g.Count || g.Storm.Limit > 0)
}

// NewGrouping is the grouping part of a static project (baton.yml), from
// its exported fields.
func NewGrouping(part Grouping) (*Grouping, error) {
	g := &part
	if err := g.validate(); err != nil {
		return nil, err
	}
	return g, nil
}

func (st *State) decodeGrouping() error {
	raw, ok := st.config["grouping"]
	if !ok || bytes.Equal(raw, []byte("null")) {
		return nil
	}
	g := new(Grouping)
	if err := json.Unmarshal(raw, g); err != nil {
		return fmt.Errorf("grouping: %w", err)
	}
	if err := g.validate(); err != nil {
		return fmt.Errorf("grouping: %w", err)
	}
	// Relay's project config names the grouping config Sentry uses for
	// the project (docs/relay-protocol.md, groupingConfig.id): under
	// another one than Baton reproduces no hash is final. Its
	// "enhancements" is Sentry's encoded rule set, base rules included, so
	// it cannot tell project rules apart: that is CustomRules' job.
	var gc struct {
		ID string `json:"id"`
	}
	if raw, ok := st.config["groupingConfig"]; ok && json.Unmarshal(raw, &gc) == nil && gc.ID != "" && gc.ID != DefaultGroupingConfig && g.notFinal == "" {
		g.notFinal = "grouping config " + gc.ID + ": Baton reproduces " + DefaultGroupingConfig
	}
	st.Grouping = g
	return nil
}
