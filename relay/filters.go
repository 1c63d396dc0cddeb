package relay

// FilterCounts returns how many envelopes each inbound filter of the
// projects dropped, by Relay's filter name (FilterStatKey) or a generic
// filter's id; their items are counted as dropped "filtered" in Stats.
func (r *Relay) FilterCounts() map[string]int64 { return r.enforcer.FilterCounts() }
