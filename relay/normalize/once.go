package normalize

import "encoding/json"

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
	var h struct {
		FullyNormalized bool `json:"fully_normalized"`
	}
	return json.Unmarshal(itemHeader, &h) == nil && h.FullyNormalized
}
