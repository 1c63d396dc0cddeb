package normalize

import "github.com/baton-relay/baton/relay/event"

// norm is one event being normalized. What normalization removes or
// corrects is recorded only in the `_meta` tree (`{"": {"err": [[kind,
// data]], "val": original}}` at the field's path, through the tree's Meta):
// a first relay leaves the event's `errors` list alone, since Relay copies
// `_meta` errors into `errors` (EmitEventErrors) only where it runs full
// normalization, at processing relays (see doc.go).
type norm struct {
	t  *event.Tree
	ev *event.Node
	in *Input
	// envFromTag: the environment came from a tag and is checked after
	// trimming (tagEnvironment).
	envFromTag bool
	root       rootKeys // see scanRoot
	// models is Options.AndroidModels (android.go).
	models map[string]string
}

// invalid removes the top-level field key and records why.
func (e *norm) invalid(key string, val *event.Node, reason string) {
	e.t.Delete(e.ev, key)
	e.invalidAt(val, reason, key)
}

// invalidAt records an invalid value at path (already removed by the caller).
func (e *norm) invalidAt(val *event.Node, reason string, path ...string) {
	t := e.t
	m := t.MetaAt(path...)
	r := t.NewObject()
	t.Set(r, "reason", t.NewString(reason))
	m.Errors = append(m.Errors, event.MetaError{Kind: "invalid_data", Data: r})
	m.Val = val
}

// errorAt records an error of kind with data (an object) at path without
// removing the value.
func (e *norm) errorAt(kind string, data *event.Node, path ...string) {
	m := e.t.MetaAt(path...)
	m.Errors = append(m.Errors, event.MetaError{Kind: kind, Data: data})
}
