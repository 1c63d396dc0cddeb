package config

import (
	"fmt"
	"os"
	"strings"

	"go.yaml.in/yaml/v3"
)

// expandEnv expands ${NAME} and ${NAME:-fallback} in every scalar value
// (not keys) of the tree, in place.
func (l *loader) expandEnv(n *yaml.Node, path string) {
	switch n.Kind {
	case yaml.ScalarNode:
		if !strings.Contains(n.Value, "$") {
			return
		}
		v, err := expand(n.Value, os.LookupEnv)
		if err != nil {
			l.problem(n, path, ErrEnv, "%v", err)
			return
		}
		if v != n.Value {
			l.expanded[n] = n.Value
			n.Value = v
			if n.Tag != "!!str" {
				n.Tag = "!!str" // "${X}" is never null, even if X is empty
			}
		}
	case yaml.MappingNode:
		for i := 1; i < len(n.Content); i += 2 {
			l.expandEnv(n.Content[i], joinPath(path, n.Content[i-1].Value))
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			l.expandEnv(c, fmt.Sprintf("%s[%d]", path, i))
		}
	}
}

// expand replaces ${NAME} with NAME's value and ${NAME:-fallback} with NAME's
// value, or fallback when NAME is unset or empty, as in the shell. "$$" is a
// literal "$" (as in Docker Compose); any other "$" not followed by "{" is
// kept as is. An unset NAME
// without fallback is an error. Fallbacks are not expanded further.
func expand(s string, lookup func(string) (string, bool)) (string, error) {
	var b strings.Builder
	for {
		i := strings.Index(s, "$")
		if i < 0 {
			b.WriteString(s)
			return b.String(), nil
		}
		b.WriteString(s[:i])
		s = s[i:]
		switch {
		case strings.HasPrefix(s, "$$"):
			b.WriteByte('$')
			s = s[2:]
			continue
		case !strings.HasPrefix(s, "${"):
			b.WriteByte('$')
			s = s[1:]
			continue
		}
		end := strings.IndexByte(s, '}')
		if end < 0 {
			return "", fmt.Errorf("unterminated %q: want ${NAME} or ${NAME:-fallback} (write $$ for a literal $)", s)
		}
		ref := s[2:end]
		s = s[end+1:]
		name, fallback, hasFallback := strings.Cut(ref, ":-")
		if !validEnvName(name) {
			return "", fmt.Errorf("invalid environment variable reference ${%s}: want ${NAME} or ${NAME:-fallback} with NAME of letters, digits and _", ref)
		}
		val, ok := lookup(name)
		switch {
		case hasFallback && val == "":
			val = fallback
		case !ok:
			return "", fmt.Errorf("environment variable %s is not set (use ${%s:-fallback} for a default)", name, name)
		}
		b.WriteString(val)
	}
}

func validEnvName(s string) bool {
	if s == "" || s[0] >= '0' && s[0] <= '9' {
		return false
	}
	for _, r := range s {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}
