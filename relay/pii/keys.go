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
	ids    map[string]int32
	maxLen int
	first  [256]bool // first bytes of the keys, both cases
}

// of is the id of key, ASCII-lower-cased; low is scratch for the lookup.
func (d *keyIDs) of(key []byte, low []byte) (int32, []byte) {
	for _, c := range key {
		if c >= 0x80 {
			return slowKey, low
		}
	}
	if len(key) == 0 || len(key) > d.maxLen || !d.first[key[0]] {
		return 0, low
	}
	low = low[:0]
	for _, c := range key {
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		low = append(low, c)
	}
	return d.ids[string(low)], low // no allocation: the conversion is the map key only
}

// add numbers key (already lower-cased).
func (d *keyIDs) add(key string) int32 {
	if id, ok := d.ids[key]; ok {
		return id
	}
	id := int32(len(d.ids) + 1)
	d.ids[key] = id
	d.maxLen = max(d.maxLen, len(key))
	if key != "" && key[0] < 0x80 {
		c := key[0]
		d.first[c] = true
		if c >= 'a' && c <= 'z' {
			d.first[c-'a'+'A'] = true
		}
	}
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
