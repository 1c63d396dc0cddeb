package project

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// Grouping is the grouping part, config key "grouping": Baton's extension
// (docs/grouping.md "At the edge"). A project that has it gets its error
// events hashed at ingest (relay/grouping) and the hash put into the item
// header; events whose primary hash is in DiscardedHashes are dropped at
// the edge, outcome filtered, reason discarded_hash.
type Grouping struct {
	// DiscardedHashes are issue hashes (Sentry's primary hash: 32
	// lower-case hex digits, or a legacy checksum as sent). Default: none.
	DiscardedHashes []string `json:"discardedHashes"`

	discarded map[string]struct{}
}

var errEmptyHash = errors.New("empty hash")

func (g *Grouping) validate() error {
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

// NewGrouping is the grouping part of a static project (baton.yml).
func NewGrouping(discardedHashes []string) (*Grouping, error) {
	g := &Grouping{DiscardedHashes: discardedHashes}
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
