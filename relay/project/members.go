package project

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"
)

// members splits the JSON object data into its members, each value a
// sub-slice of data (not a copy); null gives a nil map. ok is false when
// data is neither. data must be valid JSON (json.Valid): values are
// skipped, not checked. It does what json.Unmarshal into a
// map[string]json.RawMessage does (the last of duplicate keys wins) at a
// fraction of the cost: one pass, no copies, no reflection — a config
// miss in managed mode decodes two such maps per project (BENCHMARKS.md,
// "Profile of the cache-miss path").
func members(data []byte) (m map[string]json.RawMessage, ok bool) {
	i := skipSpace(data, 0)
	if bytes.HasPrefix(data[i:], []byte("null")) {
		return nil, true
	}
	if i == len(data) || data[i] != '{' {
		return nil, false
	}
	m = make(map[string]json.RawMessage)
	i = skipSpace(data, i+1)
	for i < len(data) && data[i] == '"' {
		end := skipString(data, i)
		key := data[i+1 : end-1]
		var k string
		if bytes.IndexByte(key, '\\') >= 0 || !utf8.Valid(key) { // as encoding/json unquotes it
			if json.Unmarshal(data[i:end], &k) != nil {
				return nil, false
			}
		} else {
			k = string(key)
		}
		i = skipSpace(data, end)
		if i == len(data) || data[i] != ':' {
			return nil, false
		}
		i = skipSpace(data, i+1)
		vEnd := skipValue(data, i)
		m[k] = data[i:vEnd:vEnd]
		i = skipSpace(data, vEnd)
		if i < len(data) && data[i] == ',' {
			i = skipSpace(data, i+1)
		}
	}
	return m, true
}

func skipSpace(data []byte, i int) int {
	for i < len(data) && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index after the string starting at data[i] ('"').
func skipString(data []byte, i int) int {
	for i++; i < len(data); i++ {
		switch data[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return i
}

// skipValue returns the index after the value starting at data[i].
func skipValue(data []byte, i int) int {
	if i == len(data) {
		return i
	}
	switch data[i] {
	case '"':
		return skipString(data, i)
	case '{', '[':
		depth := 0
		for i < len(data) {
			switch data[i] {
			case '"':
				i = skipString(data, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return i
	}
	for ; i < len(data); i++ { // a number, true, false or null
		switch data[i] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return i
		}
	}
	return i
}
