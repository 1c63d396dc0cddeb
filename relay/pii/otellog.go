package pii

import (
	"fmt"
	"strconv"

	"github.com/baton-relay/baton/relay/event"
)

// OTLP log scrubbing. An otel_log item (docs/relay-protocol.md §2.4, the
// older type) holds one OTLP/JSON LogRecord. Relay converts it to its log
// schema (relay-ourlogs otel_to_sentry_log) and scrubs that as any log;
// Baton forwards the item in its own shape, so it scrubs the record in
// place through the same walk (scrubLog): a log is built whose body and
// attribute values are the record's own value nodes, so what the rules
// rewrite is rewritten in the record.
//
// The mapping, as Relay's conversion types them: stringValue is the
// record's node; boolValue is left out (rules never touch booleans);
// intValue and doubleValue numbers (proto3 JSON may
// write them as strings, which a string rule must not rewrite); kvlistValue
// an object of its keys, arrayValue an array, recursively; bytesValue is
// opaque (base64) and left alone. A value a rule removes becomes an empty
// AnyValue ({}), which OTLP readers take as no value. The `_meta` remarks
// are not written: an OTLP record has no place for them.

// otelSlot is where an AnyValue sits in the record (owner's member key,
// or index i of array owner), and the node the log was given for it.
type otelSlot struct {
	owner *event.Node
	key   string
	i     int
	log   *event.Node
}

// otelLog builds the log view of one record.
type otelLog struct {
	t     *event.Tree
	slots []otelSlot
}

// otelField is member camel (OTLP/JSON's name) or snake (the proto name, which
// protobuf's JSON readers accept too) of object n, and the key found.
func otelField(n *event.Node, camel, snake string) (*event.Node, string) {
	if v := n.Get(camel); v != nil {
		return v, camel
	}
	return n.Get(snake), snake
}

// value is the log view of the AnyValue v, nil when it has none to scrub.
func (o *otelLog) value(v *event.Node) *event.Node {
	if v.Kind() != event.Object {
		return nil
	}
	if s, _ := otelField(v, "stringValue", "string_value"); s != nil {
		if s.Kind() == event.String {
			return s
		}
		return nil
	}
	for _, k := range [...][2]string{{"intValue", "int_value"}, {"doubleValue", "double_value"}} {
		n, _ := otelField(v, k[0], k[1])
		switch n.Kind() {
		case event.Number:
			return n
		case event.String:
			if _, err := strconv.ParseFloat(string(n.Bytes()), 64); err == nil {
				return o.t.NewNumber(n.Bytes())
			}
			return nil
		}
	}
	if a, _ := otelField(v, "arrayValue", "array_value"); a.Kind() == event.Object {
		vals, _ := otelField(a, "values", "values")
		arr := o.t.NewArray()
		for i := range vals.Len() {
			if vals.Kind() != event.Array {
				break
			}
			if e := o.value(vals.Index(i)); e != nil {
				o.slots = append(o.slots, otelSlot{owner: vals, i: i, log: e})
				o.t.Push(arr, e)
			}
		}
		return arr
	}
	if kv, _ := otelField(v, "kvlistValue", "kvlist_value"); kv.Kind() == event.Object {
		vals, _ := otelField(kv, "values", "values")
		obj := o.t.NewObject()
		o.keyValues(vals, func(key []byte, v *event.Node) { o.t.Add(obj, key, v) })
		return obj
	}
	return nil
}

// keyValues calls add with the key and log view of every KeyValue of the
// array kvs (attributes, a kvlist's values) that has one.
func (o *otelLog) keyValues(kvs *event.Node, add func(key []byte, v *event.Node)) {
	if kvs.Kind() != event.Array {
		return
	}
	for i := range kvs.Len() {
		kv := kvs.Index(i)
		k := kv.Get("key")
		if k.Kind() != event.String {
			continue
		}
		val, key := otelField(kv, "value", "value")
		if e := o.value(val); e != nil {
			o.slots = append(o.slots, otelSlot{owner: kv, key: key, log: e})
			add(k.Bytes(), e)
		}
	}
}

// ScrubOtelLog appends the OTLP/JSON log record src (an otel_log item's
// payload) to dst with its body and attribute values scrubbed as
// ScrubLogs scrubs a log's, in the record's own shape; a record nothing
// matched is appended byte for byte. A nil Config appends src unchanged.
// dst must not overlap src.
func (c *Config) ScrubOtelLog(dst, src []byte) ([]byte, error) {
	if c == nil {
		return append(dst, src...), nil
	}
	t, err := event.Parse(src)
	if err != nil {
		return dst, fmt.Errorf("%w: otel log: %v", ErrInvalidJSON, err)
	}
	defer t.Release()
	rec := t.Root()
	if rec.Kind() != event.Object {
		return dst, fmt.Errorf("%w: otel log is not an object", ErrInvalidJSON)
	}
	o := otelLog{t: t}
	log := t.NewObject()
	if body, key := otelField(rec, "body", "body"); body != nil {
		if v := o.value(body); v != nil {
			o.slots = append(o.slots, otelSlot{owner: rec, key: key, log: v})
			t.Add(log, []byte("body"), v)
		}
	}
	attrs := t.NewObject()
	attrList, _ := otelField(rec, "attributes", "attributes")
	o.keyValues(attrList, func(key []byte, v *event.Node) {
		typ := "string"
		switch v.Kind() {
		case event.Number:
			typ = "double"
			if _, err := strconv.ParseInt(string(v.Raw()), 10, 64); err == nil {
				typ = "integer"
			}
		case event.Array, event.Object:
			typ = "array"
		}
		a := t.NewObject()
		t.Add(a, []byte("type"), t.NewString(typ))
		t.Add(a, []byte("value"), v)
		t.Add(attrs, key, a)
	})
	if len(o.slots) == 0 {
		return append(dst, src...), nil
	}
	t.Add(log, []byte("attributes"), attrs)
	t.SetRoot(log)
	c.scrubLog(t)
	changed := false
	for _, s := range o.slots {
		if s.log.Meta() == nil { // every value below is a slot of its own
			continue
		}
		changed = true
		if s.log.Kind() != event.Null {
			continue // rewritten in place, or below
		}
		if s.owner.Kind() == event.Array {
			t.SetIndex(s.owner, s.i, t.NewObject())
		} else {
			t.Set(s.owner, s.key, t.NewObject())
		}
	}
	if !changed {
		return append(dst, src...), nil
	}
	return rec.AppendJSON(dst), nil
}
