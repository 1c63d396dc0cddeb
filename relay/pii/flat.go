package pii

import "github.com/baton-relay/baton/relay/event"

// Flat objects. Most objects of an event's stack traces are frames of
// scalars and arrays of strings (filename, function, lineno, colno,
// in_app, pre_context, context_line, post_context) under fields no
// selector of the usual configs selects, and the walk used to build a
// state and look each key up only to find that (BENCHMARKS.md, issue 17,
// session 12). A pass now knows, for every field of the schema, which keys
// could make a scalar member of an object there selectable: the named
// fields the filter may select and, when unknown keys could be selected
// by name, every key a selector names; and which keys could make an array
// member selectable, the array itself or its elements (pre_context is pii
// "maybe": `$frame.pre_context` selects it, `$string` does not). An object
// whose members are all scalars, or for a lazy frame (relay/event) scalars
// and arrays of scalars, and whose keys are none of those (tested through
// a 1,024-bit signature of the key's length and first and last bytes,
// ASCII-lower-cased, so a hit only costs the full walk) is passed over:
// visiting it would reject every member and element in visit's filter
// test. Values are never read, so escapes in them do not matter. An array
// of two elements, the first a string, is walked as a key and its value
// (walkChildren), so a frame with one is quiet only for a pass that
// selects no key by name. TestFlatMatchesWalk checks the output against
// the walk without this.

// flatSig is what a pass knows of the objects of one schema field.
type flatSig struct {
	ok     bool // objects of the field may be passed over (quiet)
	elemOK bool // an object element of an array of the field is rejected by applyAll
	// byName: an unknown key's scalar or array is selected by the key alone
	// (leafFilter.keys, or slow for a non-ASCII key); else never.
	byName bool
	// arrOK: an array of scalars under an unknown key is passed over
	// unless byName selects the key.
	arrOK   bool
	danger  [sigWords]uint64 // signatures of the keys quiet must look up
	adanger [sigWords]uint64 // the same, and the keys under which an array may be selected
}

const sigWords = 16 // 1,024 bits

// noFlat turns the shortcut off: the tests' full walk.
var noFlat bool

// allFields numbers every field of the schemas (field.id, from 1), so a
// pass keeps its flatSig per field in a slice.
var allFields = func() []*field {
	var all []*field
	var add func(f *field)
	add = func(f *field) {
		if f == nil || f.id != 0 {
			return
		}
		all = append(all, f)
		f.id = int32(len(all))
		for _, n := range schemaNamesOf(f) {
			add(f.fields[n])
		}
		add(f.elem)
		add(f.other)
	}
	add(eventSchema)
	add(logSchema)
	for _, f := range attrSchemas {
		add(f)
	}
	add(dataTrue)
	add(dataMaybe)
	add(dataFalse)
	return all
}()

// schemaNamesOf is f's field names in a fixed order.
func schemaNamesOf(f *field) []string {
	if f.index == nil {
		return nil
	}
	var names []string
	for i := range f.index.slots {
		if s := &f.index.slots[i]; s.used {
			names = append(names, s.key)
		}
	}
	return names
}

// keySig is a key's bit in flatSig.danger, the same for every ASCII case.
func keySig(k []byte) uint32 { return tableHash(k) & (sigWords*64 - 1) }

func (g *flatSig) add(k string) {
	s := keySig([]byte(k))
	g.danger[s/64] |= 1 << (s % 64)
	g.adanger[s/64] |= 1 << (s % 64)
}

func (g *flatSig) addArray(k string) {
	s := keySig([]byte(k))
	g.adanger[s/64] |= 1 << (s % 64)
}

// arrayQuiet reports whether walkChildren passes over an array of scalars
// that is the member with key id of an object, f the member's field: visit
// rejects the array, and walkChildren each element. An array of two
// elements, the first a string, is also walked as that key and the second
// (Relay's pair heuristic); whether a selector names the key is the
// caller's (pass.keyless).
func (p *pass) arrayQuiet(f *field, id int32) bool {
	if f.dead {
		return true
	}
	if !p.rejects(f, id, event.Array) {
		return false
	}
	ef := f.child(nil, true)
	if ef.dead || ef.pii == piiFalse {
		return true
	}
	for _, k := range []event.Kind{event.String, event.Number} {
		if st := (state{types: typesOf(ef, k), pii: ef.pii}); p.filter.may(&st) {
			return false
		}
	}
	return true
}

// unknownOf is childNo's field for a key f does not name.
func unknownOf(f *field) *field {
	switch {
	case f.record && f.other != nil:
		return f.other
	case f.record:
		return dataFalse
	case f.elem != nil:
		return f.elem
	}
	return data(f.pii)
}

// flatOf is what pass p knows of objects of field f; d numbers the
// selectors' keys.
func (p *pass) flatOf(f *field, d *keyIDs) flatSig {
	var g flatSig
	if p.filter == nil || p.filter.all {
		return g
	}
	// An array element that is an object (key nil): applyAll's test.
	el := state{types: typesOf(f, event.Object), pii: f.pii}
	g.elemOK = el.pii == piiFalse || !p.filter.may(&el)
	uf := unknownOf(f)
	if !uf.dead && uf.pii != piiFalse {
		if !p.rejects(uf, 0, event.String) || !p.rejects(uf, 0, event.Number) {
			return g // an unknown key's scalar may be selected whatever its name
		}
		g.byName = true
		for k, id := range d.ids {
			if st := (state{key: []byte(k), id: id}); p.filter.may(&st) {
				g.add(k)
			}
		}
	}
	// By name, an unknown key's array is selected as its scalar would be
	// (the filter's key test does not depend on the type).
	g.arrOK = p.arrayQuiet(uf, 0)
	for _, k := range schemaNamesOf(f) {
		c, _ := f.index.get([]byte(k))
		if c.f.dead {
			continue
		}
		if !p.quietAt(c.no) {
			g.add(k)
		} else if !p.arrayQuietAt(c.no) {
			g.addArray(k)
		}
	}
	g.ok = true
	return g
}

// quietObject reports whether walkChildren(p, n, f) would change nothing
// in object n, g being p's flatSig of f: every member a scalar the walk
// would pass over, or for a lazy object also an array of scalars the walk
// would pass over with its elements. A key whose signature is not in
// g.danger (g.adanger when there are arrays) is one; the others are looked
// up as the walk does. A lazy object (relay/event) is read without parsing
// it: its keys are ASCII, its values scalars or arrays of scalars (which
// members are arrays is not known, so every key is judged as both).
func (s *scrubber) quietObject(p *pass, g *flatSig, f *field, n *event.Node) bool {
	if !g.ok {
		return false
	}
	if keys, mem, ok := n.LazyKeys(); ok {
		if mem == 0 {
			for _, k := range keys {
				if !s.quietKey(p, g, f, k, false) {
					return false
				}
			}
			return true
		}
		if !g.arrOK || mem&event.HasPairs != 0 && !p.keyless {
			return false
		}
		for _, k := range keys {
			if !s.quietKey(p, g, f, k, true) {
				return false
			}
		}
		return true
	}
	for i := range n.Len() {
		if k := n.Index(i).Kind(); k == event.Array || k == event.Object {
			return false
		}
		k := n.Key(i)
		if g.byName && p.filter.slow {
			for _, c := range k {
				if c >= 0x80 {
					return false // a selector's key may fold to it (keyIDs.of)
				}
			}
		}
		if !s.quietKey(p, g, f, k, false) {
			return false
		}
	}
	return true
}

// quietKey reports whether a scalar under ASCII key k of an object of f
// is one visit would pass over; with arrays, a scalar or an array of
// scalars one walkChildren would pass over.
func (s *scrubber) quietKey(p *pass, g *flatSig, f *field, k []byte, arrays bool) bool {
	if len(k) == 0 {
		return false
	}
	danger := &g.danger
	if arrays {
		danger = &g.adanger
	}
	if sg := keySig(k); danger[sg/64]&(1<<(sg%64)) == 0 {
		return true
	}
	if c, no := f.childNo(k, false); no >= 0 {
		return c.dead || p.quietAt(no) && (!arrays || p.arrayQuietAt(no))
	}
	if g.byName {
		if st := (state{key: k, id: s.keys.of(k)}); p.filter.may(&st) {
			return false
		}
	}
	return true
}

// WalksAll reports whether a pass of c may select any value (a selector
// that ends in * or **, or a negation), so that the walk reads every
// member of every object and no frame is passed over: a caller that
// parses only to scrub should parse eagerly (event.ParseEager) rather
// than keep frames lazy and parse them twice.
func (c *Config) WalksAll() bool {
	if c == nil {
		return false
	}
	for i := range c.passes {
		if f := c.passes[i].filter; f == nil || f.all {
			return true
		}
	}
	return false
}

// flatAt is p's flatSig of f; nil when there is none.
func (p *pass) flatAt(f *field) *flatSig {
	if noFlat || f.id == 0 || int(f.id) > len(p.flat) {
		return nil
	}
	return &p.flat[f.id-1]
}
