package normalize

// meta records what normalization removed, in Relay's two places: the
// `_meta` tree (`{"": {"err": [[kind, data]], "val": original}}` at the
// field's path) and an `errors` entry ({type, name, value}).
type meta struct {
	ev map[string]any
}

// invalid removes the top-level field key and records why.
func (m *meta) invalid(key string, val any, reason string) {
	delete(m.ev, key)
	m.invalidAt([]string{key}, val, reason)
}

// invalidAt records an invalid value at path (already removed by the caller).
func (m *meta) invalidAt(path []string, val any, reason string) {
	node := m.node(path)
	node["err"] = append(asList(node["err"]), []any{"invalid_data", map[string]any{"reason": reason}})
	node["val"] = val
	name := path[0]
	for _, p := range path[1:] {
		name += "." + p
	}
	m.addError(map[string]any{"type": "invalid_data", "name": name, "value": val})
}

// errorAt records an error of kind with data at path without removing it.
func (m *meta) errorAt(path []string, kind string, data map[string]any) {
	node := m.node(path)
	node["err"] = append(asList(node["err"]), []any{kind, data})
	e := map[string]any{"type": kind, "name": path[0]}
	for k, v := range data {
		e[k] = v
	}
	m.addError(e)
}

func (m *meta) addError(e map[string]any) {
	m.ev["errors"] = append(asList(m.ev["errors"]), e)
}

// node returns the `_meta` node of path, creating it.
func (m *meta) node(path []string) map[string]any {
	cur, _ := m.ev["_meta"].(map[string]any)
	if cur == nil {
		cur = map[string]any{}
		m.ev["_meta"] = cur
	}
	for _, p := range path {
		next, _ := cur[p].(map[string]any)
		if next == nil {
			next = map[string]any{}
			cur[p] = next
		}
		cur = next
	}
	own, _ := cur[""].(map[string]any)
	if own == nil {
		own = map[string]any{}
		cur[""] = own
	}
	return own
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}

// hasError reports whether the event's errors hold an entry of kind.
func hasError(ev map[string]any, kind string) bool {
	for _, e := range asList(ev["errors"]) {
		if o, ok := e.(map[string]any); ok && o["type"] == kind {
			return true
		}
	}
	return false
}
