package project

import (
	"bytes"
	"fmt"

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
