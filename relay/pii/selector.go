package pii

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrInvalidSelector is wrapped by every selector parse error.
var ErrInvalidSelector = errors.New("pii: invalid selector")

// vtype is a set of value types, the `$name` selector items.
type vtype uint32

const (
	tString vtype = 1 << iota
	tNumber
	tBoolean
	tArray
	tObject
	tEvent
	tException
	tStacktrace
	tFrame
	tRequest
	tUser
	tLogEntry
	tThread
	tBreadcrumb
	tSpan
	tSdk
	tDateTime
	tBinary
	tAttachments
	tReplay
	tMinidump
	tHeapMemory  // a minidump's memory regions that are no thread's stack
	tStackMemory // a minidump's thread stacks
	tLog         // logs; never an event's type, accepted so their selectors parse
)

// basicTypes cannot be part of a specific path (Pii "maybe" fields are only
// reached by specific selectors).
const basicTypes = tString | tNumber | tBoolean | tArray | tObject | tDateTime | tBinary

var typeNames = map[string]vtype{
	"string": tString, "number": tNumber, "boolean": tBoolean, "bool": tBoolean,
	"array": tArray, "list": tArray, "object": tObject, "datetime": tDateTime, "binary": tBinary,
	"event": tEvent, "exception": tException, "error": tException,
	"stacktrace": tStacktrace, "stack": tStacktrace, "frame": tFrame,
	"request": tRequest, "http": tRequest, "user": tUser,
	"logentry": tLogEntry, "message": tLogEntry, "thread": tThread,
	"breadcrumb": tBreadcrumb, "span": tSpan, "sdk": tSdk,
	"attachments": tAttachments, "replay": tReplay, "minidump": tMinidump,
	"heap_memory": tHeapMemory, "stack_memory": tStackMemory, "log": tLog, "ourlog": tLog,
}

type itemKind uint8

const (
	iType itemKind = iota
	iIndex
	iKey
	iWild
	iDeep
)

type item struct {
	kind  itemKind
	ty    vtype
	index int
	key   string // lower-cased: keys match case-insensitively
	id    int32  // key's id in its Config (keys.go); 0: compare key
}

type selKind uint8

const (
	sPath selKind = iota
	sAnd
	sOr
	sNot
)

// selector is Relay's SelectorSpec: a path, or a boolean combination.
type selector struct {
	kind  selKind
	path  []item
	inner []*selector
	// leafKeys, for an Or whose every branch is a path ending in a key: the
	// keys a value must have to match. It skips the branches for all other
	// values (the default cookie selector has 47 of them).
	leafKeys map[string]struct{}
	// leafIDs is leafKeys as a bit set of key ids, once numbered (keys.go).
	leafIDs []uint64
	// anyTypes and specificTypes, for an Or of value types only, once
	// numbered: the types it matches for pii true and pii maybe values.
	anyTypes, specificTypes vtype
}

// index fills leafKeys throughout s.
func (s *selector) index() *selector {
	for _, x := range s.inner {
		x.index()
	}
	if s.kind != sOr {
		return s
	}
	keys := map[string]struct{}{}
	for _, x := range s.inner {
		if x.kind != sPath || x.path[len(x.path)-1].kind != iKey {
			return s
		}
		keys[x.path[len(x.path)-1].key] = struct{}{}
	}
	s.leafKeys = keys
	return s
}

// hasLeafKey reports whether key, ASCII-lower-cased, is in s.leafKeys.
func (s *selector) hasLeafKey(key []byte) bool {
	var buf [64]byte
	if key == nil || len(key) > len(buf) {
		return key != nil // long keys: let the branches decide
	}
	for i, c := range key {
		if c >= 0x80 {
			return true // Unicode folding: let the branches decide
		}
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[i] = c
	}
	_, ok := s.leafKeys[string(buf[:len(key)])]
	return ok
}

// parseSelector parses Relay's selector grammar, including the legacy names
// (`freeform`, `email`, `sensitive`, `text` for $string; `databag`,
// `container` for $object).
func parseSelector(s string) (*selector, error) {
	switch s {
	case "freeform", "email", "sensitive", "text":
		return &selector{path: []item{{kind: iType, ty: tString}}}, nil
	case "databag", "container":
		return &selector{path: []item{{kind: iType, ty: tObject}}}, nil
	}
	return parseSelectorStrict(s)
}

func parseSelectorStrict(s string) (*selector, error) {
	p := selParser{s: s}
	sel, err := p.or()
	if err == nil {
		p.ws()
		if p.pos != len(p.s) {
			err = p.errf("unexpected %q", p.s[p.pos:])
		}
	}
	if err != nil {
		return nil, err
	}
	return sel.index(), nil
}

type selParser struct {
	s   string
	pos int
}

func (p *selParser) errf(format string, args ...any) error {
	return fmt.Errorf("%w %q: %s", ErrInvalidSelector, p.s, fmt.Sprintf(format, args...))
}

func (p *selParser) ws() {
	for p.pos < len(p.s) && p.s[p.pos] == ' ' {
		p.pos++
	}
}

func (p *selParser) eat(tokens ...string) bool {
	p.ws()
	for _, t := range tokens {
		if strings.HasPrefix(p.s[p.pos:], t) {
			p.pos += len(t)
			return true
		}
	}
	return false
}

func (p *selParser) or() (*selector, error) {
	return p.list(sOr, []string{"||", "|"}, p.and)
}

func (p *selParser) and() (*selector, error) {
	return p.list(sAnd, []string{"&&", "&"}, p.not)
}

func (p *selParser) list(k selKind, ops []string, next func() (*selector, error)) (*selector, error) {
	first, err := next()
	if err != nil {
		return nil, err
	}
	items := []*selector{first}
	for p.eat(ops...) {
		s, err := next()
		if err != nil {
			return nil, err
		}
		items = append(items, s)
	}
	if len(items) == 1 {
		return first, nil
	}
	return &selector{kind: k, inner: items}, nil
}

func (p *selParser) not() (*selector, error) {
	if p.eat("!", "~") {
		s, err := p.parenOrPath()
		if err != nil {
			return nil, err
		}
		return &selector{kind: sNot, inner: []*selector{s}}, nil
	}
	return p.parenOrPath()
}

func (p *selParser) parenOrPath() (*selector, error) {
	if p.eat("(") {
		s, err := p.or()
		if err != nil {
			return nil, err
		}
		if !p.eat(")") {
			return nil, p.errf("missing ')'")
		}
		return s, nil
	}
	return p.path()
}

func (p *selParser) path() (*selector, error) {
	var items []item
	deep := false
	for {
		p.ws()
		it, err := p.item()
		if err != nil {
			return nil, err
		}
		if it.kind == iDeep {
			if deep {
				return nil, p.errf("deep wildcard used more than once")
			}
			deep = true
		}
		items = append(items, it)
		p.ws()
		if p.pos < len(p.s) && p.s[p.pos] == '.' {
			p.pos++
			continue
		}
		break
	}
	if len(items) == 1 && items[0].kind == iWild {
		return nil, p.errf("wildcard must be part of a path")
	}
	return &selector{path: items}, nil
}

func isAlpha(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func (p *selParser) item() (item, error) {
	if p.pos >= len(p.s) {
		return item{}, p.errf("expected a path item")
	}
	c := p.s[p.pos]
	switch {
	case c == '$':
		start := p.pos + 1
		p.pos++
		for p.pos < len(p.s) && (p.s[p.pos] >= 'a' && p.s[p.pos] <= 'z' || p.s[p.pos] == '_') {
			p.pos++
		}
		name := p.s[start:p.pos]
		ty, ok := typeNames[name]
		if !ok {
			return item{}, p.errf("unknown value type $%s", name)
		}
		return item{kind: iType, ty: ty}, nil
	case strings.HasPrefix(p.s[p.pos:], "**"):
		p.pos += 2
		return item{kind: iDeep}, nil
	case c == '*':
		p.pos++
		return item{kind: iWild}, nil
	case isDigit(c):
		start := p.pos
		for p.pos < len(p.s) && isDigit(p.s[p.pos]) {
			p.pos++
		}
		n, err := strconv.Atoi(p.s[start:p.pos])
		if err != nil {
			return item{}, p.errf("invalid index")
		}
		return item{kind: iIndex, index: n}, nil
	case c == '\'':
		p.pos++
		var b strings.Builder
		for {
			if p.pos >= len(p.s) {
				return item{}, p.errf("unterminated quoted key")
			}
			if p.s[p.pos] == '\'' {
				if p.pos+1 < len(p.s) && p.s[p.pos+1] == '\'' {
					b.WriteByte('\'')
					p.pos += 2
					continue
				}
				p.pos++
				break
			}
			b.WriteByte(p.s[p.pos])
			p.pos++
		}
		if b.Len() == 0 {
			return item{}, p.errf("empty quoted key")
		}
		return item{kind: iKey, key: strings.ToLower(b.String())}, nil
	case isAlpha(c) || c == '_':
		start := p.pos
		for p.pos < len(p.s) && (isAlpha(p.s[p.pos]) || isDigit(p.s[p.pos]) || p.s[p.pos] == '-' || p.s[p.pos] == '_') {
			p.pos++
		}
		return item{kind: iKey, key: strings.ToLower(p.s[start:p.pos])}, nil
	}
	return item{}, p.errf("unexpected %q", p.s[p.pos:])
}

// state is one step of the path being scrubbed: Relay's ProcessingState.
type state struct {
	key   []byte // object key, or nil for an array index
	id    int32  // key's id (keys.go): 0 none, slowKey non-ASCII
	index int
	types vtype
	pii   piiAttr
}

// matches reports whether the selector selects the value at the end of
// path (root first). It walks the selector and the path from the end, as
// Relay does; pii is the leaf's attribute.
func (s *selector) matches(path []state) bool {
	pii := path[len(path)-1].pii
	if pii == piiFalse {
		return false
	}
	switch s.kind {
	case sAnd:
		for _, x := range s.inner {
			if !x.matches(path) {
				return false
			}
		}
		return true
	case sOr:
		if s.anyTypes != 0 {
			if pii == piiTrue {
				return path[len(path)-1].types&s.anyTypes != 0
			}
			return path[len(path)-1].types&s.specificTypes != 0
		}
		switch leaf := &path[len(path)-1]; {
		case s.leafIDs != nil:
			if leaf.key == nil || leaf.id != slowKey && !s.hasLeafID(leaf.id) {
				return false
			}
		case s.leafKeys != nil:
			if !s.hasLeafKey(leaf.key) {
				return false
			}
		}
		for _, x := range s.inner {
			if x.matches(path) {
				return true
			}
		}
		return false
	case sNot:
		return !s.inner[0].matches(path)
	}
	items := s.path
	// The path starts below the event: Relay's root state enters nothing.
	if len(items) > len(path) {
		return false
	}
	j := len(path) - 1
	i := len(items) - 1
	for ; i >= 0 && j >= 0; i, j = i-1, j-1 {
		if !items[i].matchState(pii, i, &path[j]) {
			return false
		}
		if items[i].kind == iDeep {
			break
		}
	}
	if i < 0 || items[i].kind != iDeep {
		return true
	}
	// Deep wildcard at i consumed path[j]; match items[:i] against some
	// prefix-suffix of path[:j]: skip states from the root until the first
	// item matches, then the rest must match one to one.
	rest := items[:i]
	remaining := path[:j]
	if len(rest) == 0 {
		return len(remaining) > 0
	}
	k := 0
	for k < len(remaining) && !rest[0].matchState(pii, 0, &remaining[k]) {
		k++
	}
	if k == len(remaining) {
		return false
	}
	k++
	r := 1
	for ; r < len(rest) && k < len(remaining); r, k = r+1, k+1 {
		if !rest[r].matchState(pii, r, &remaining[k]) {
			return false
		}
	}
	return r == len(rest)
}

func (it *item) matchState(pii piiAttr, i int, st *state) bool {
	switch it.kind {
	case iWild:
		return true
	case iDeep:
		return pii == piiTrue
	case iType:
		if st.types&it.ty == 0 {
			return false
		}
		if pii == piiTrue {
			return true
		}
		return it.ty&basicTypes == 0 && i == 0
	case iIndex:
		return st.key == nil && st.index == it.index
	default:
		if st.key == nil {
			return false
		}
		if it.id != 0 && st.id != slowKey {
			return st.id == it.id
		}
		return equalFoldLower(st.key, it.key)
	}
}

// equalFoldLower compares b case-insensitively with lower, already lower-cased.
func equalFoldLower(b []byte, lower string) bool {
	for i := range len(b) {
		if b[i] >= 0x80 {
			return strings.EqualFold(string(b), lower) // rare: Unicode folding
		}
	}
	return len(b) == len(lower) && hasPrefixFold(b, lower)
}
