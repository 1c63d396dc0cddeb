package project

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Grouping is the grouping part, config key "grouping": Baton's extension
// (docs/grouping.md "At the edge"). A project that has it gets its error
// events hashed at ingest (relay/grouping) and the hash put into the item
// header; events whose primary hash is in DiscardedHashes are dropped at
// the edge, outcome filtered, reason discarded_hash. With Storm, only the
// first Storm.Limit events of an issue per Storm.Window are kept (the rest
// are filtered, reason grouping_storm) and every event is counted in the
// per-issue metric c:custom/baton.grouping.events@none. Count alone counts
// the events in that metric and drops none.
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

	discarded map[string]struct{}
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
	return nil
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

// NewGrouping is the grouping part of a static project (baton.yml).
func NewGrouping(discardedHashes []string, storm Storm, count bool) (*Grouping, error) {
	g := &Grouping{DiscardedHashes: discardedHashes, Storm: storm, Count: count}
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
	st.Grouping = g
	return nil
}
