package pii

import (
	"encoding/json"
	"fmt"

	"github.com/baton-relay/baton/relay/event"
)

// Log scrubbing, as Relay's logs processor scrubs each log of a container
// in managed and static mode (relay-server processing/logs process.rs,
// scrub_log): the project's piiConfig, then the config converted from its
// datascrubbingSettings, over the log entered as `$log` (the path is the
// log's root state, then its fields). The piiConfig sees attributes as
// objects (`attributes.<name>.value`); the legacy settings see each
// attribute's value under the attribute's name (`attributes.<name>`), so
// that a sensitive field or a password-like name selects it. The `_meta`
// remarks are written into each log, as Relay writes them.
//
// The pii attribute of a log attribute comes from Sentry's conventions
// (sentry-conventions); this table holds the ones Baton writes itself (the
// NEL conversion) and a few common ones. Other attributes are pii true,
// as Relay treats unknown attributes.
var logAttrPII = map[string]piiAttr{
	"sentry.origin":  piiFalse,
	"sentry.release": piiFalse,
	"url.full":       piiTrue,
	"url.domain":     piiMaybe,
	"url.path":       piiMaybe,
	"server.address": piiMaybe,
	"nel.referrer":   piiMaybe,
	"nel.type":       piiMaybe,
	"user.name":      piiTrue,
}

// logSchema is Relay's OurLog: body pii true, the ids, timestamp and
// level never scrubbed, other fields maybe.
var logSchema = rec(0, piiTrue, maybe, map[string]*field{
	"timestamp": no, "observed_timestamp_nanos": no, "trace_id": no, "span_id": no,
	"level": no, "severity_number": no, "body": yes,
})

// attrSchema is one attribute object, {"type", "value"}, of pii p.
func attrSchema(p piiAttr) *field {
	return rec(0, p, data(p), map[string]*field{"type": no, "value": data(p)})
}

// attrSchemas are the attribute objects of each pii attribute.
var attrSchemas = [...]*field{piiFalse: attrSchema(piiFalse), piiTrue: attrSchema(piiTrue), piiMaybe: attrSchema(piiMaybe)}

// attrPII is the pii attribute of the log attribute name.
func attrPII(name []byte) piiAttr {
	if p, ok := logAttrPII[string(name)]; ok {
		return p
	}
	return piiTrue
}

// ScrubLogs appends the log container src ({"items": [log, ...]}, a log
// item's payload) with each log scrubbed to dst; a container nothing
// matched is appended byte for byte. A nil Config appends src unchanged.
// dst must not overlap src.
func (c *Config) ScrubLogs(dst, src []byte) ([]byte, error) {
	if c == nil {
		return append(dst, src...), nil
	}
	var cont map[string]json.RawMessage
	if err := json.Unmarshal(src, &cont); err != nil {
		return dst, fmt.Errorf("%w: log container: %v", ErrInvalidJSON, err)
	}
	var items []json.RawMessage
	if err := json.Unmarshal(cont["items"], &items); err != nil {
		return dst, fmt.Errorf("%w: log container items: %v", ErrInvalidJSON, err)
	}
	changed := false
	for i, raw := range items {
		t, err := event.Parse(raw)
		if err != nil {
			return dst, fmt.Errorf("%w: log %d: %v", ErrInvalidJSON, i, err)
		}
		if t.Root().Kind() == event.Object {
			c.scrubLog(t)
		}
		if t.Dirty() {
			items[i], changed = t.AppendJSON(nil), true
		}
		t.Release()
	}
	if !changed {
		return append(dst, src...), nil
	}
	cont["items"], _ = json.Marshal(items)
	out, err := json.Marshal(cont)
	if err != nil {
		return dst, err
	}
	return append(dst, out...), nil
}

// scrubLog scrubs the log at t's root with every pass.
func (c *Config) scrubLog(t *event.Tree) {
	s := scrubbers.Get().(*scrubber)
	defer func() { s.reset(); scrubbers.Put(s) }()
	s.t, s.keys = t, c.keys
	root := t.Root()
	for i := range c.passes {
		p := &c.passes[i]
		s.path = append(s.path[:0], state{key: []byte{}, types: tLog, pii: piiTrue})
		for j := range root.Len() {
			k, v := root.Key(j), root.Index(j)
			if string(k) == "attributes" && v.Kind() == event.Object {
				s.push(k, 0, v, maybe)
				s.scrubAttributes(p, v)
				s.pop()
				continue
			}
			if string(k) == "_meta" || inert(v) {
				continue
			}
			f := logSchema.child(k, false)
			s.push(k, 0, v, f)
			s.walk(p, v, f)
			s.pop()
		}
	}
}

// scrubAttributes scrubs the attributes object attrs with pass p: as
// objects for the piiConfig, by name for the legacy settings.
func (s *scrubber) scrubAttributes(p *pass, attrs *event.Node) {
	for i := range attrs.Len() {
		name, a := attrs.Key(i), attrs.Index(i)
		if a.Kind() != event.Object {
			continue
		}
		pii := attrPII(name)
		if !p.legacy {
			f := attrSchemas[pii]
			s.push(name, 0, a, f)
			s.walk(p, a, f)
			s.pop()
			continue
		}
		v := a.Get("value")
		if v == nil || inert(v) {
			continue
		}
		f := data(pii)
		s.push(name, 0, v, f)
		s.walk(p, v, f)
		s.pop()
	}
}
