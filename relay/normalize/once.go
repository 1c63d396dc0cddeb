package normalize

import "github.com/baton-relay/baton/relay/event"

// FullyNormalized reports whether an event item need not be normalized
// again: Relay marks an item it fully normalized with the item header
// `"fully_normalized": true` (relay-server ItemHeaders.fully_normalized) and
// honours it only from a trusted sender (a relay whose signature was
// verified: RequestTrust::Trusted), since an SDK could set it to skip
// normalization. itemHeader is the item header JSON object.
func FullyNormalized(itemHeader []byte, trusted bool) bool {
	if !trusted {
		return false
	}
	t, err := event.Parse(itemHeader)
	if err != nil {
		return false
	}
	defer t.Release()
	v, _ := t.Root().Get("fully_normalized").Bool()
	return v
}
