package project

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"

	"github.com/baton-relay/baton/relay/clientopts"
)

// decodeClientOptions decodes the clientOptions part, Baton's extension
// (docs/client-options.md): the SDK settings the project pushes into its
// clients. Absent or null: the project has none.
func (st *State) decodeClientOptions() error {
	raw, ok := st.config["clientOptions"]
	if !ok || bytes.Equal(raw, []byte("null")) {
		return nil
	}
	d, err := clientopts.Parse(raw)
	if err != nil {
		return fmt.Errorf("clientOptions: %w", err)
	}
	st.ClientOptions = d
	return nil
}

// ClientOptionsBroken is why the project's clientOptions part did not
// decode, "" when it did or is absent.
func (st *State) ClientOptionsBroken() string { return st.Broken[PartClientOptions] }

// WithClientOptions is st with its clientOptions part replaced by doc
// (raw is its JSON): a Baton adding its own options to the config it
// fetched (managed.client_options). The copy shares everything else with
// st. Its Rev carries doc's revision, so a downstream relay holding the
// config without them, or with others, is sent the new one.
func (st *State) WithClientOptions(raw json.RawMessage, doc *clientopts.Document) *State {
	cp := *st
	cp.top = maps.Clone(st.top) // rev, brokenParts
	cp.ClientOptions = doc
	cp.Present = cp.Present.With(PartClientOptions)
	if st.Broken[PartClientOptions] != "" {
		cp.Broken = maps.Clone(st.Broken)
		delete(cp.Broken, PartClientOptions)
		if len(cp.Broken) == 0 {
			cp.Broken = nil
		}
		// Served downstream, the part must not be marked broken there.
		var bp map[string]string
		if raw, ok := st.top[brokenPartsKey]; ok && json.Unmarshal(raw, &bp) == nil {
			delete(bp, PartClientOptions.String())
			if len(bp) == 0 {
				delete(cp.top, brokenPartsKey)
			} else {
				cp.top[brokenPartsKey], _ = json.Marshal(bp)
			}
		}
	}
	cp.config = maps.Clone(st.config)
	if cp.config == nil {
		cp.config = map[string]json.RawMessage{}
	}
	cp.config["clientOptions"] = raw
	if st.Rev != "" {
		cp.Rev = st.Rev + "+co." + doc.Revision()
		cp.top["rev"], _ = json.Marshal(cp.Rev)
	}
	return &cp
}
