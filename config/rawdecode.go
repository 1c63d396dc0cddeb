package config

import (
	"reflect"

	"go.yaml.in/yaml/v3"
)

// Raw is a YAML subtree kept as written, for formats built on Baton's
// config (config/topology) that carry pieces of config through to files
// they render. Node is nil when the key was absent or null.
type Raw struct {
	Node *yaml.Node
}

var rawType = reflect.TypeFor[Raw]()

// Position is where a decoded value was written.
type Position struct {
	File string
	Line int
}

// DecodeFile decodes one YAML file into v, a pointer to a struct whose
// fields carry yaml tags, with Load's strict decoder and its YAML rules
// (one document, no duplicate keys, bounded aliases, merge keys): every
// unknown key and type error is reported at once as Errors, each at its
// file:line. ${NAME} references are kept as written, not expanded.
// It returns the position of every field path it decoded ("groups.edge.tier"),
// so the caller's own checks can report at the line a value came from.
func DecodeFile(name string, data []byte, v any) (map[string]Position, error) {
	l := newLoader()
	root := l.parse(source{name: name, data: data})
	if root == nil {
		return nil, l.probs.sorted()
	}
	d := decoder{l: l, origins: make(origins), bad: make(map[string]bool)}
	d.decode(root, root, reflect.ValueOf(v).Elem(), "")
	at := make(map[string]Position, len(d.origins))
	for path, p := range d.origins {
		at[path] = Position{File: p.file, Line: p.line}
	}
	if errs := l.probs.sorted(); errs != nil {
		return at, errs
	}
	return at, nil
}

// File is a config file already in memory.
type File struct {
	Name string // used in Problems and to resolve relative project_files
	Data []byte
}

// ParseFiles is Load for files already in memory: the default overlaid
// by each file in order, validated.
func ParseFiles(files ...File) (Config, error) {
	srcs := make([]source, len(files))
	for i, f := range files {
		srcs[i] = source{name: f.Name, data: f.Data}
	}
	return load(srcs)
}
