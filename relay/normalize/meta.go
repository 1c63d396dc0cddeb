package normalize

import (
	"strings"

	"github.com/baton-relay/baton/relay/event"
)

// norm is one event being normalized. What normalization removes is
// recorded in Relay's two places: the `_meta` tree (`{"": {"err": [[kind,
// data]], "val": original}}` at the field's path, through the tree's Meta)
// and an `errors` entry ({type, name, value}).
type norm struct {
	t  *event.Tree
	ev *event.Node
	in *Input
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
	x := t.NewObject()
	t.Set(x, "type", t.NewString("invalid_data"))
	t.Set(x, "name", t.NewString(strings.Join(path, ".")))
	t.Set(x, "value", val)
	e.addError(x)
}

// errorAt records an error of kind with data (an object) at path without
// removing the value.
func (e *norm) errorAt(kind string, data *event.Node, path ...string) {
	t := e.t
	m := t.MetaAt(path...)
	m.Errors = append(m.Errors, event.MetaError{Kind: kind, Data: data})
	x := t.NewObject()
	t.Set(x, "type", t.NewString(kind))
	t.Set(x, "name", t.NewString(path[0]))
	for i := range data.Len() {
		t.Set(x, string(data.Key(i)), data.Index(i))
	}
	e.addError(x)
}

func (e *norm) addError(x *event.Node) {
	l := e.ev.Get("errors")
	if l.Kind() != event.Array {
		l = e.t.NewArray()
		e.t.Set(e.ev, "errors", l)
	}
	e.t.Push(l, x)
}

// hasError reports whether the event's errors hold an entry of kind.
func (e *norm) hasError(kind string) bool {
	l := e.ev.Get("errors")
	if l.Kind() != event.Array {
		return false
	}
	for i := range l.Len() {
		if l.Index(i).Get("type").Is(kind) {
			return true
		}
	}
	return false
}
