package routing

import (
	"bytes"
	"time"
)

// adjustSentAt appends env to dst with the envelope header's sent_at moved
// forward by delay, the time the envelope spent in Baton. The next relay
// corrects clock drift with now − sent_at; without this, every buffered
// envelope's timestamps would shift by its buffering delay.
//
// Only the sent_at value of the first line changes; every other byte is
// copied as is. When the header has no parsable sent_at string (or is not
// a JSON object) env is copied unchanged.
func adjustSentAt(dst, env []byte, delay time.Duration) []byte {
	if delay <= 0 {
		return append(dst, env...)
	}
	line := env
	if i := bytes.IndexByte(env, '\n'); i >= 0 {
		line = env[:i]
	}
	start, end, ok := findSentAt(line)
	if !ok {
		return append(dst, env...)
	}
	t, err := time.Parse(time.RFC3339Nano, string(line[start+1:end-1]))
	if err != nil {
		return append(dst, env...)
	}
	dst = append(dst, env[:start]...)
	dst = append(dst, '"')
	dst = t.Add(delay).AppendFormat(dst, time.RFC3339Nano)
	dst = append(dst, '"')
	return append(dst, env[end:]...)
}

// findSentAt returns the byte range, quotes included, of the string value
// of the top-level "sent_at" key of the JSON object in line. It is a
// scanner, not a validator: it only needs to skip values correctly.
func findSentAt(line []byte) (start, end int, ok bool) {
	s := jsonScanner{b: line}
	s.ws()
	if !s.eat('{') {
		return 0, 0, false
	}
	for {
		s.ws()
		if s.eat('}') {
			return 0, 0, false
		}
		ks := s.i
		if !s.str() {
			return 0, 0, false
		}
		key := line[ks:s.i]
		s.ws()
		if !s.eat(':') {
			return 0, 0, false
		}
		s.ws()
		vs := s.i
		isStr := s.i < len(line) && line[s.i] == '"'
		if !s.value() {
			return 0, 0, false
		}
		if isStr && string(key) == `"sent_at"` {
			return vs, s.i, true
		}
		s.ws()
		if !s.eat(',') {
			return 0, 0, false
		}
	}
}

type jsonScanner struct {
	b []byte
	i int
}

func (s *jsonScanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\r', '\n':
			s.i++
		default:
			return
		}
	}
}

func (s *jsonScanner) eat(c byte) bool {
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// str skips a string starting at the current quote.
func (s *jsonScanner) str() bool {
	if !s.eat('"') {
		return false
	}
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case '\\':
			s.i += 2
		case '"':
			s.i++
			return true
		default:
			s.i++
		}
	}
	return false
}

// value skips any JSON value. Nesting is tracked with a counter: strings
// are the only thing that can hide brackets.
func (s *jsonScanner) value() bool {
	if s.i >= len(s.b) {
		return false
	}
	switch s.b[s.i] {
	case '"':
		return s.str()
	case '{', '[':
		depth := 0
		for s.i < len(s.b) {
			switch s.b[s.i] {
			case '"':
				if !s.str() {
					return false
				}
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					s.i++
					return true
				}
			}
			s.i++
		}
		return false
	}
	// Number or literal: runs to the next delimiter.
	st := s.i
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ',', '}', ']', ' ', '\t', '\r', '\n':
			return s.i > st
		}
		s.i++
	}
	return s.i > st
}
