package pii

import (
	"maps"
	"slices"
)

// table is a small, fixed string-keyed lookup for the scrubber's hot path:
// a value's key against a Config's selector keys (ASCII case-insensitive)
// and against a schema record's field names (exact). Most keys of an
// event are in neither, and a miss mostly costs one probe of an empty slot
// after a hash of four bytes, where a Go map hashes the whole key (and the
// selector lookup first copied it lower-cased).
type table[V any] struct {
	slots []tableSlot[V] // len a power of two, at most a quarter full
	fold  bool           // keys are lower-case and compared ignoring ASCII case
}

type tableSlot[V any] struct {
	key  string
	val  V
	used bool
}

// newTable builds a table of m; with fold, m's keys must be lower-case.
func newTable[V any](m map[string]V, fold bool) *table[V] {
	size := 4
	for size < 4*len(m) {
		size *= 2
	}
	t := &table[V]{slots: make([]tableSlot[V], size), fold: fold}
	// In key order, so that a config compiles to the same table every
	// time (Configs compare equal: relay/project's round trip).
	for _, k := range slices.Sorted(maps.Keys(m)) {
		i := tableHash(k) & uint32(size-1)
		for t.slots[i].used {
			i = (i + 1) & uint32(size-1)
		}
		t.slots[i] = tableSlot[V]{key: k, val: m[k], used: true}
	}
	return t
}

// tableHash mixes the length and three bytes, ASCII-lower-cased, of key.
func tableHash[S string | []byte](key S) uint32 {
	n := len(key)
	if n == 0 {
		return 0
	}
	h := uint32(n) * 0x9e3779b1
	h ^= uint32(lowerASCII(key[0])) * 0x85ebca6b
	h ^= uint32(lowerASCII(key[n/2])) * 0xc2b2ae35
	h ^= uint32(lowerASCII(key[n-1])) * 0x27d4eb2f
	return h ^ h>>15
}

func lowerASCII(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// get is the value of key; ok is false when it is not in t.
func (t *table[V]) get(key []byte) (v V, ok bool) {
	mask := uint32(len(t.slots) - 1)
	for i := tableHash(key) & mask; t.slots[i].used; i = (i + 1) & mask {
		s := &t.slots[i]
		if len(s.key) != len(key) {
			continue
		}
		if t.fold {
			if hasPrefixFold(key, s.key) {
				return s.val, true
			}
		} else if s.key == string(key) {
			return s.val, true
		}
	}
	return v, false
}
