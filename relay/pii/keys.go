package pii

// Selector keys compiled to small ids, so that matching a path compares
// integers: the key of each value is looked up once per pass (keyIDs.of),
// not once per selector item, and an Or of key paths (the default cookie
// selector has 47) is one bit test. The ids belong to one Config: its
// selectors are cloned before they are numbered, since the built-in ones
// are shared.

// Key ids of a state: 0 is a key no selector names (or an array index),
// slowKey a key with non-ASCII bytes, compared with Unicode folding as
// before (equalFoldLower).
const slowKey = -1

// keyIDs numbers the lower-cased keys a Config's selectors name.
type keyIDs struct {
	ids   map[string]int32 // while numbering
	table *table[int32]    // the same, for lookups (seal)
	names []int32          // the id of each of schemaNames (seal)
}

// of is the id of key, compared ignoring ASCII case.
func (d *keyIDs) of(key []byte) int32 {
	for _, c := range key {
		if c >= 0x80 {
			return slowKey
		}
	}
	id, _ := d.table.get(key)
	return id
}

// seal builds the lookup table once every key is numbered.
func (d *keyIDs) seal() {
	d.table = newTable(d.ids, true)
	d.names = make([]int32, len(schemaNames))
	for i, n := range schemaNames {
		d.names[i] = d.of([]byte(n))
	}
}

// add numbers key (already lower-cased).
func (d *keyIDs) add(key string) int32 {
	if id, ok := d.ids[key]; ok {
		return id
	}
	id := int32(len(d.ids) + 1)
	d.ids[key] = id
	return id
}

// number clones s with its key items numbered in d, and the key sets of
// its Ors as bit sets of ids.
func (d *keyIDs) number(s *selector) *selector {
	c := &selector{kind: s.kind, leafKeys: s.leafKeys}
	if s.path != nil {
		c.path = make([]item, len(s.path))
		copy(c.path, s.path)
		for i := range c.path {
			if c.path[i].kind == iKey {
				c.path[i].id = d.add(c.path[i].key)
			}
		}
	}
	for _, x := range s.inner {
		c.inner = append(c.inner, d.number(x))
	}
	if c.kind == sOr {
		c.typesOnly(s)
	}
	if c.leafKeys != nil {
		for k := range c.leafKeys {
			id := d.add(k)
			for int(id)/64 >= len(c.leafIDs) {
				c.leafIDs = append(c.leafIDs, 0)
			}
			c.leafIDs[id/64] |= 1 << (id % 64)
		}
	}
	return c
}

// hasLeafID reports whether id is in s.leafIDs.
func (s *selector) hasLeafID(id int32) bool {
	return int(id)/64 < len(s.leafIDs) && s.leafIDs[id/64]&(1<<(id%64)) != 0
}

// typesOnly sets anyTypes and specificTypes when every branch of Or s is
// one value type (`$string || $number || ...`), so that it matches with
// two mask tests: such a path matches a value of its type when the value
// is pii true, and, when pii maybe, only for a type that is not basic
// (item.matchState with i == 0).
func (c *selector) typesOnly(s *selector) {
	var all, specific vtype
	for _, x := range s.inner {
		if x.kind != sPath || len(x.path) != 1 || x.path[0].kind != iType {
			return
		}
		all |= x.path[0].ty
		if x.path[0].ty&basicTypes == 0 {
			specific |= x.path[0].ty
		}
	}
	c.anyTypes, c.specificTypes = all, specific
}

// leafFilter is a necessary condition of a pass's selectors on the value
// they select, the last state of the path: applyAll skips the applications
// of a value no selector can select (most values of a stack trace) with a
// few mask tests. Built from the numbered selectors (filterOf).
type leafFilter struct {
	all   bool     // any value may match
	keys  []uint64 // key ids a selected value may have
	slow  bool     // a non-ASCII key may match (Unicode folding)
	index bool     // an array element may match
	types [3]vtype // types that may match, by pii attribute
}

// may reports whether a selector of the pass may select the value at st.
func (f *leafFilter) may(st *state) bool {
	switch {
	case f.all || st.types&f.types[st.pii] != 0:
		return true
	case st.key == nil:
		return f.index
	case st.id == slowKey:
		return f.slow
	}
	return int(st.id)/64 < len(f.keys) && f.keys[st.id/64]&(1<<(st.id%64)) != 0
}

func (f *leafFilter) union(g *leafFilter) {
	f.all = f.all || g.all
	f.slow = f.slow || g.slow
	f.index = f.index || g.index
	for i := range f.types {
		f.types[i] |= g.types[i]
	}
	for len(f.keys) < len(g.keys) {
		f.keys = append(f.keys, 0)
	}
	for i, w := range g.keys {
		f.keys[i] |= w
	}
}

// filterOf is s's leafFilter: for a path, what its last item accepts
// (item.matchState); for an Or, the union of its branches; for an And,
// that of one branch (the first that is not all); a Not may match anything.
func filterOf(s *selector) leafFilter {
	var f leafFilter
	switch s.kind {
	case sNot:
		f.all = true
	case sOr:
		for _, x := range s.inner {
			g := filterOf(x)
			f.union(&g)
		}
	case sAnd:
		f.all = true
		for _, x := range s.inner {
			if g := filterOf(x); !g.all {
				return g
			}
		}
	default:
		it := &s.path[len(s.path)-1]
		switch it.kind {
		case iKey:
			f.slow = true
			for int(it.id)/64 >= len(f.keys) {
				f.keys = append(f.keys, 0)
			}
			f.keys[it.id/64] |= 1 << (it.id % 64)
		case iIndex:
			f.index = true
		case iType:
			f.types[piiTrue] = it.ty
			if it.ty&basicTypes == 0 {
				f.types[piiMaybe] = it.ty
			}
		default: // * and **
			f.all = true
		}
	}
	return f
}
