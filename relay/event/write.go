package event

import "unicode/utf8"

// write appends n as JSON: scalars that were not changed, and compact
// containers in which nothing changed, as their source.
func write(dst []byte, n *Node) []byte {
	if n.raw != nil && !n.dirty {
		return append(dst, n.raw...)
	}
	switch n.kind {
	case Null:
		return append(dst, "null"...)
	case Bool, Number:
		return append(dst, n.raw...)
	case String:
		if n.raw != nil {
			return append(dst, n.raw...)
		}
		return appendString(dst, n.str)
	case Array:
		dst = append(dst, '[')
		for i, v := range n.vals {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = write(dst, v)
		}
		return append(dst, ']')
	default:
		dst = append(dst, '{')
		for i, v := range n.vals {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendString(dst, n.keys[i])
			dst = append(dst, ':')
			dst = write(dst, v)
		}
		return append(dst, '}')
	}
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string; invalid UTF-8 becomes U+FFFD so
// the output is always valid.
func appendString(dst, s []byte) []byte {
	dst = append(dst, '"')
	i := 0
	for i < len(s) && plain[s[i]] { // the usual case: nothing to escape
		i++
	}
	if i == len(s) {
		dst = append(dst, s...)
		return append(dst, '"')
	}
	start := 0
	for i < len(s) {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRune(s[i:])
			if r != utf8.RuneError || size != 1 {
				i += size
				continue
			}
			dst = append(dst, s[start:i]...)
			dst = append(dst, "\ufffd"...)
			i++
			start = i
			continue
		}
		dst = append(dst, s[start:i]...)
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		i++
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
