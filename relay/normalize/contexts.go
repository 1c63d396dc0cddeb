package normalize

import "github.com/baton-relay/baton/relay/event"

// contexts gives every context object without a type (a non-empty string)
// its key as type, as Relay's Contexts do when they are read; a context
// that is not an object is removed.
func (e *norm) contexts() {
	c := e.ev.Get("contexts")
	switch c.Kind() {
	case event.Null:
		return
	case event.Object:
	default:
		e.invalid("contexts", c, "expected an object")
		return
	}
	for i := range c.Len() {
		v := c.Index(i)
		if v.Kind() != event.Object {
			continue
		}
		if ty := v.Get("type"); ty.Kind() != event.String || len(ty.Bytes()) == 0 {
			e.t.Set(v, "type", e.t.NewStringBytes(c.Key(i)))
		}
	}
}
