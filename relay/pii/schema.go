package pii

import (
	"maps"
	"slices"
)

// piiAttr is Relay's per-field `pii` attribute: false fields are never
// scrubbed, maybe fields only by specific selectors (no `**`, no basic
// `$string`-like types), true fields by any matching selector.
type piiAttr uint8

const (
	piiFalse piiAttr = iota
	piiTrue
	piiMaybe
)

// field describes where a value sits in Relay's event schema: its value
// types, its pii attribute and its children. It replaces Relay's typed
// protocol structs, which baton does not have; only the fields selectors
// commonly name are described, the rest inherit from their parent.
type field struct {
	types  vtype
	pii    piiAttr
	record bool              // a struct: an object here is not an `$object`
	pairs  bool              // a pair list ([[k, v], ...] or an object)
	fields map[string]*field // named fields of a record
	index  *table[named]     // fields, for child
	dead   bool              // pii false here and below: no rule can change it (markDead)
	elem   *field            // elements of an array, values of a map
	other  *field            // unknown keys of a record
	id     int32             // number in allFields (flat.go); 0: none
}

// untyped values inherit their container's attribute, as Relay's inner_attrs do.
var (
	dataTrue  = &field{pii: piiTrue}
	dataMaybe = &field{pii: piiMaybe}
	dataFalse = &field{pii: piiFalse}
)

func init() {
	dataTrue.elem, dataMaybe.elem, dataFalse.elem = dataTrue, dataMaybe, dataFalse
}

func data(p piiAttr) *field {
	switch p {
	case piiTrue:
		return dataTrue
	case piiMaybe:
		return dataMaybe
	}
	return dataFalse
}

// child returns the schema of key (or of an element when isIndex) in f.
func (f *field) child(key []byte, isIndex bool) *field {
	c, _ := f.childNo(key, isIndex)
	return c
}

// childNo is child and, for a named field of a record, the number of its
// name in schemaNames; -1 for any other key.
func (f *field) childNo(key []byte, isIndex bool) (*field, int32) {
	if !isIndex && f.index != nil {
		if c, ok := f.index.get(key); ok {
			return c.f, c.no
		}
	}
	if f.record && !isIndex {
		if f.other != nil {
			return f.other, -1
		}
		return dataFalse, -1
	}
	if f.elem != nil {
		return f.elem, -1
	}
	return data(f.pii), -1
}

func rec(t vtype, p piiAttr, other *field, fields map[string]*field) *field {
	return &field{types: t, pii: p, record: true, fields: fields, index: indexOf(fields), other: other}
}

// named is a record's field and the number of its name in schemaNames,
// so that a Config keeps the key id of every name the schema has
// (keyIDs.names) and push need not look a known field's key up.
type named struct {
	f  *field
	no int32
}

// schemaNames are the names of every record's fields, numbered as the
// schema is built (in key order, so the same every run); schemaFields are
// their fields.
var (
	schemaNames  []string
	schemaFields []*field
)

func indexOf(fields map[string]*field) *table[named] {
	if fields == nil {
		return nil
	}
	m := make(map[string]named, len(fields))
	for _, k := range slices.Sorted(maps.Keys(fields)) {
		m[k] = named{fields[k], int32(len(schemaNames))}
		schemaNames = append(schemaNames, k)
		schemaFields = append(schemaFields, fields[k])
	}
	return newTable(m, false)
}

func arrayOf(p piiAttr, elem *field) *field { return &field{pii: p, elem: elem} }

// values is Relay's Values<T> wrapper: {"values": [...]}, or a bare list.
func values(p piiAttr, elem *field) *field {
	fields := map[string]*field{"values": arrayOf(p, elem)}
	return &field{pii: p, record: true, elem: elem, fields: fields, index: indexOf(fields)}
}

func pairList(p piiAttr) *field { return &field{pii: p, pairs: true, elem: data(p)} }

var (
	yes   = dataTrue
	maybe = dataMaybe
	no    = dataFalse
)

func stacktraceField() *field {
	frame := rec(tFrame, piiTrue, maybe, map[string]*field{
		"function": maybe, "raw_function": maybe, "symbol": maybe, "module": maybe,
		"package": maybe, "filename": maybe, "abs_path": maybe,
		"pre_context": maybe, "context_line": maybe, "post_context": maybe,
		"vars": yes, "data": yes,
		"lineno": no, "colno": no, "in_app": no, "platform": no,
		"instruction_addr": no, "addr_mode": no, "symbol_addr": no, "image_addr": no,
		"trust": no, "lang": no, "stack_start": no,
	})
	return rec(tStacktrace, piiTrue, maybe, map[string]*field{
		"frames":                      arrayOf(piiTrue, frame),
		"registers":                   yes,
		"frames_omitted":              no,
		"lang":                        no,
		"snapshot":                    no,
		"instruction_addr_adjustment": no,
	})
}

// markDead sets dead on f and every field below it; seen breaks the
// cycles of the untyped fields (their elements are themselves).
func markDead(f *field, seen map[*field]bool) bool {
	if f == nil {
		return true
	}
	if d, ok := seen[f]; ok {
		return d
	}
	seen[f] = f.pii == piiFalse // a cycle back to f adds nothing
	d := f.pii == piiFalse
	for _, c := range f.fields {
		d = markDead(c, seen) && d
	}
	d = markDead(f.elem, seen) && d
	d = markDead(f.other, seen) && d
	if f.elem == nil { // child falls back to data(f.pii)
		d = markDead(data(f.pii), seen) && d
	}
	f.dead, seen[f] = d, d
	return d
}

// eventSchema is the root: the event payload.
var eventSchema = func() *field {
	st := stacktraceField()
	logentry := rec(tLogEntry, piiTrue, yes, map[string]*field{
		"message": yes, "formatted": yes, "params": yes,
	})
	exception := rec(tException, piiTrue, maybe, map[string]*field{
		"type": maybe, "value": yes, "module": maybe,
		"stacktrace": st, "raw_stacktrace": st,
		"thread_id": no,
		"mechanism": rec(0, piiTrue, no, map[string]*field{"data": yes, "meta": no}),
	})
	thread := rec(tThread, piiTrue, maybe, map[string]*field{
		"name": maybe, "stacktrace": st, "raw_stacktrace": st,
		"id": no, "crashed": no, "current": no, "main": no, "state": no,
	})
	breadcrumb := rec(tBreadcrumb, piiTrue, maybe, map[string]*field{
		"message": yes, "data": yes, "category": maybe,
		"type": no, "level": no, "timestamp": no, "event_id": no,
	})
	user := rec(tUser, piiTrue, yes, map[string]*field{
		"id": yes, "email": yes, "ip_address": yes, "username": yes, "name": yes,
		"geo": yes, "segment": yes, "data": yes, "sentry_user": yes,
	})
	request := rec(tRequest, piiTrue, yes, map[string]*field{
		"url": yes, "method": no, "data": yes, "query_string": pairList(piiTrue),
		"fragment": yes, "cookies": pairList(piiTrue), "headers": pairList(piiTrue),
		"env": yes, "body_size": no, "inferred_content_type": no, "api_target": no,
		"protocol": no,
	})
	sdk := rec(tSdk, piiFalse, no, map[string]*field{"client_ip": yes})
	image := rec(0, piiFalse, no, map[string]*field{"code_file": maybe, "debug_file": maybe})
	span := rec(tSpan, piiTrue, maybe, map[string]*field{
		"description": maybe, "data": yes, "tags": pairList(piiMaybe),
		"sentry_tags": yes,
		"timestamp":   no, "start_timestamp": no, "exclusive_time": no, "op": no,
		"span_id": no, "parent_span_id": no, "trace_id": no, "status": no,
		"origin": no, "measurements": no,
	})
	trace := map[string]*field{
		"trace_id": no, "span_id": no, "parent_span_id": no, "op": no, "status": no,
		"type": no, "origin": no, "exclusive_time": no, "sampled": no,
	}
	contexts := &field{pii: piiTrue, elem: rec(0, piiTrue, yes, trace)}
	security := rec(0, piiTrue, yes, nil)
	root := rec(tEvent, piiTrue, yes, map[string]*field{
		"logentry": logentry, "message": logentry, "sentry.interfaces.Message": logentry,
		"exception": values(piiTrue, exception), "sentry.interfaces.Exception": values(piiTrue, exception),
		"threads": values(piiTrue, thread), "breadcrumbs": values(piiTrue, breadcrumb),
		"stacktrace": st, "sentry.interfaces.Stacktrace": st,
		"user": user, "sentry.interfaces.User": user,
		"request": request, "sentry.interfaces.Http": request,
		"contexts": contexts,
		"tags":     pairList(piiMaybe),
		"extra":    yes,
		"sdk":      sdk,
		"spans":    arrayOf(piiTrue, span),
		"debug_meta": rec(0, piiFalse, no, map[string]*field{
			"images": arrayOf(piiFalse, image),
		}),
		"server_name": yes, "culprit": maybe, "transaction": maybe,
		"csp": security, "hpkp": security, "expectct": security, "expectstaple": security,
		"event_id": no, "timestamp": no, "start_timestamp": no, "received": no,
		"level": no, "platform": no, "logger": maybe, "release": no, "dist": no,
		"environment": no, "version": no, "type": no, "errors": no, "modules": no,
		"fingerprint": no, "measurements": no, "breakdowns": no, "grouping_config": no,
		"transaction_info": no, "key_id": no, "project": no, "_metrics": no,
		"_dsc": no, "scraping_attempts": no,
	})
	markDead(root, map[*field]bool{})
	return root
}()
