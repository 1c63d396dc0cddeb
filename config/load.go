package config

import (
	_ "embed"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"

	"go.yaml.in/yaml/v3"
)

//go:embed default.yaml
var defaultYAML []byte

// DefaultName is the file name Problems use for values from default.yaml.
const DefaultName = "<default>"

// DefaultYAML returns the embedded default configuration: the complete,
// commented schema. The caller may modify the returned slice.
func DefaultYAML() []byte { return slices.Clone(defaultYAML) }

// Default returns the embedded default configuration, decoded. It panics if
// default.yaml does not decode or validate, which tests rule out.
func Default() Config {
	c, err := load(nil)
	if err != nil {
		panic("BUG: config: embedded default.yaml is invalid:\n" + err.Error())
	}
	return c
}

// Load returns Default overlaid by each file in paths, in order, with
// environment variables expanded, project_files read, and validated. On any
// problem it returns the partly decoded Config and an Errors listing them all.
func Load(paths ...string) (Config, error) {
	srcs := make([]source, len(paths))
	for i, p := range paths {
		data, err := os.ReadFile(p)
		srcs[i] = source{name: p, data: data, err: err}
	}
	return load(srcs)
}

// Parse is Load for one file already in memory; name is used in Problems and
// to resolve relative project_files.
func Parse(name string, data []byte) (Config, error) {
	return load([]source{{name: name, data: data}})
}

type source struct {
	name  string
	data  []byte
	err   error // reading failed
	relay *Dir  // non-nil: a Relay config.yml, translated (see relay.go)
}

// defaultTree is default.yaml parsed once; loads work on copies of it.
var defaultTree = sync.OnceValue(func() *yaml.Node {
	l := newLoader()
	n := l.parse(source{name: DefaultName, data: defaultYAML})
	if n == nil {
		panic("BUG: config: embedded default.yaml does not parse:\n" + l.probs.sorted().Error())
	}
	return n
})

// copyDefault deep-copies the default tree, recording the copies as coming
// from default.yaml (rank defaultRank).
func (l *loader) copyDefault(n *yaml.Node) *yaml.Node {
	c := *n
	c.Content = make([]*yaml.Node, len(n.Content))
	for i, child := range n.Content {
		c.Content[i] = l.copyDefault(child)
	}
	l.fileOf[&c] = defaultRank
	return &c
}

// maxAliasNodes bounds the nodes one file may add through aliases, so a small
// file cannot expand into a huge tree ("billion laughs").
const maxAliasNodes = 1 << 14

// loader holds the state of one Load: the merged tree's provenance.
type loader struct {
	files     []string           // load order; index is pos.rank
	fileOf    map[*yaml.Node]int // node → index into files
	inherited map[*yaml.Node]bool
	bad       map[*yaml.Node]bool   // nodes that already have a problem
	expanded  map[*yaml.Node]string // node → its text before ${} expansion
	probs     problems
	// relayNames maps Baton paths set from a Relay config.yml to the Relay
	// key, so problems there name the key the user wrote.
	relayNames map[string]string
	relayRank  int
	// relayProjects are Relay's projects/<id>.json by id, verbatim, for
	// Project.Relay.
	relayProjects map[string][]byte
}

func newLoader() *loader {
	return &loader{
		fileOf:     make(map[*yaml.Node]int),
		inherited:  make(map[*yaml.Node]bool),
		bad:        make(map[*yaml.Node]bool),
		expanded:   make(map[*yaml.Node]string),
		relayNames: make(map[string]string),
		relayRank:  -1,
	}
}

// load runs the pipeline described in the package doc. When a file cannot be
// read or parsed, it reports that for every file and stops: checking a merge
// that lacks a file would report problems that are not there.
func load(srcs []source) (Config, error) {
	l := newLoader()
	l.files = append(l.files, DefaultName)
	root := l.copyDefault(defaultTree())
	files := make([]*yaml.Node, len(srcs))
	for i, src := range srcs {
		files[i] = l.parse(src)
	}
	if len(l.probs) > 0 {
		return Config{}, l.probs.sorted()
	}
	for i, n := range files {
		if srcs[i].relay != nil {
			l.relayRank = l.fileOf[n]
			n = l.translateRelay(n, srcs[i].relay)
		}
		l.merge(root, n, nil)
	}
	l.expandEnv(root, "")
	l.readProjectFiles(root)
	l.applyTemplates(root)

	d := decoder{l: l, origins: make(origins), bad: make(map[string]bool)}
	var c Config
	d.decode(root, root, reflectValue(&c), "")
	c.origins = d.origins
	for id, data := range l.relayProjects {
		if p, ok := c.Projects[id]; ok {
			p.Relay = data
			c.Projects[id] = p
		}
	}
	for _, p := range c.validate() {
		if !d.covers(p.Field) {
			l.probs = append(l.probs, p)
		}
	}
	for i, p := range l.probs {
		if r, ok := l.relayNames[p.Field]; ok && p.rank == l.relayRank {
			l.probs[i].Field = r + " (" + p.Field + ")"
		}
	}
	if errs := l.probs.sorted(); errs != nil {
		return c, errs
	}
	return c, nil
}

func (l *loader) pos(n *yaml.Node) pos {
	i, ok := l.fileOf[n]
	if !ok {
		return pos{line: n.Line, col: n.Column, rank: math.MaxInt}
	}
	return pos{file: l.files[i], line: n.Line, col: n.Column, rank: i}
}

func (l *loader) problem(n *yaml.Node, field string, kind error, format string, args ...any) {
	l.bad[n] = true
	if l.inherited[n] {
		return // reported where the template is defined
	}
	l.probs.add(l.pos(n), field, kind, fmt.Sprintf(format, args...))
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// parse reads one file into a normalized mapping node: aliases and merge
// keys resolved, duplicate keys and extra documents rejected, every node
// recorded as coming from the file. It returns nil on a fatal problem.
func (l *loader) parse(src source) *yaml.Node {
	rank := len(l.files)
	l.files = append(l.files, src.name)
	at := pos{file: src.name, rank: rank}
	if src.err != nil {
		l.probs.add(at, "", fmt.Errorf("%w: %w", ErrRead, src.err), "cannot read file: "+errMsg(src.err))
		return nil
	}
	dec := yaml.NewDecoder(strings.NewReader(string(src.data)))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil && !errors.Is(err, io.EOF) {
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		if m := yamlLineRE.FindStringSubmatch(err.Error()); m != nil {
			at.line, _ = strconv.Atoi(m[1])
			msg = m[2]
		}
		l.probs.add(at, "", ErrSyntax, msg)
		return nil
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		at.line = extra.Line
		l.probs.add(at, "", ErrSyntax, "a config file must hold one YAML document; remove the second \"---\" and what follows")
		return nil
	}
	var top *yaml.Node
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		top = doc.Content[0]
	}
	if top == nil || top.ShortTag() == "!!null" {
		return &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: 1, Column: 1}
	}
	budget := maxAliasNodes
	n := l.normalize(top, rank, &budget, false)
	if budget < 0 {
		at.line = top.Line
		l.probs.add(at, "", ErrSyntax, fmt.Sprintf("aliases expand to more than %d nodes", maxAliasNodes))
		return nil
	}
	if n.Kind != yaml.MappingNode {
		l.problem(n, "", ErrType, "the top level must be a mapping of keys to values, got %s", kindName(n))
		return nil
	}
	return n
}

// normalize returns a copy of n with aliases replaced by copies of their
// targets and merge keys (<<) applied, recording each copy's file. Nodes
// copied through an alias count against budget; once it is negative,
// normalize stops copying.
func (l *loader) normalize(n *yaml.Node, rank int, budget *int, viaAlias bool) *yaml.Node {
	if viaAlias {
		*budget--
	}
	if *budget < 0 {
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null"}
	}
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		c := l.normalize(n.Alias, rank, budget, true)
		// Report problems in the copy at the alias, where the reader looks.
		c = shallowAt(c, n)
		l.fileOf[c] = rank
		return c
	}
	c := &yaml.Node{Kind: n.Kind, Style: n.Style, Tag: n.Tag, Value: n.Value, Line: n.Line, Column: n.Column,
		HeadComment: n.HeadComment, LineComment: n.LineComment}
	l.fileOf[c] = rank
	if n.Kind == yaml.AliasNode { // dangling alias; cannot happen with yaml's parser
		c.Kind, c.Tag = yaml.ScalarNode, "!!null"
		return c
	}
	if n.Kind != yaml.MappingNode {
		for _, child := range n.Content {
			c.Content = append(c.Content, l.normalize(child, rank, budget, viaAlias))
		}
		return c
	}
	var merged []*yaml.Node // pairs from << sources, lower priority
	seen := make(map[string]*yaml.Node)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			src := l.normalize(v, rank, budget, viaAlias)
			srcs := []*yaml.Node{src}
			if src.Kind == yaml.SequenceNode {
				srcs = src.Content
			}
			for _, s := range srcs {
				if s.Kind != yaml.MappingNode {
					l.problem(s, "", ErrSyntax, "a merge key (<<) needs a mapping or a list of mappings, got %s", kindName(s))
					continue
				}
				merged = append(merged, s.Content...)
			}
			continue
		}
		kc, vc := l.normalize(k, rank, budget, viaAlias), l.normalize(v, rank, budget, viaAlias)
		if k.Kind == yaml.ScalarNode {
			if prev, dup := seen[k.Value]; dup {
				l.problem(kc, "", ErrSyntax, "key %q is already defined at line %d", k.Value, prev.Line)
				continue
			}
			seen[k.Value] = kc
		}
		c.Content = append(c.Content, kc, vc)
	}
	// Explicit keys win over merged ones; among merge sources the first wins.
	for i := 0; i+1 < len(merged); i += 2 {
		k := merged[i]
		if _, dup := seen[k.Value]; dup && k.Kind == yaml.ScalarNode {
			continue
		}
		seen[k.Value] = k
		c.Content = append(c.Content, merged[i], merged[i+1])
	}
	return c
}

// shallowAt returns n moved to the position of at.
func shallowAt(n, at *yaml.Node) *yaml.Node {
	c := *n
	c.Line, c.Column = at.Line, at.Column
	return &c
}

// exclusiveGroups returns the key groups of the mapping at path that replace
// each other: setting a key of one group drops inherited keys of the others.
func exclusiveGroups(path []string) [][]string {
	if len(path) == 2 && (path[0] == "routes" || path[0] == "defaults" && path[1] == "route") {
		return destinationGroups()
	}
	return nil
}

// merge overlays the mapping src onto the mapping dst in place: mappings
// merge by key, anything else replaces, null deletes.
func (l *loader) merge(dst, src *yaml.Node, path []string) {
	for _, group := range exclusiveGroups(path) {
		if !hasAnyKey(src, group) {
			continue
		}
		for _, other := range exclusiveGroups(path) {
			if !slices.Equal(other, group) {
				for _, k := range other {
					if !hasAnyKey(src, []string{k}) {
						deleteKey(dst, k)
					}
				}
			}
		}
	}
	for i := 0; i+1 < len(src.Content); i += 2 {
		k, v := src.Content[i], src.Content[i+1]
		j := keyIndex(dst, k.Value)
		switch {
		case v.ShortTag() == "!!null":
			deleteKey(dst, k.Value)
		case j < 0:
			dst.Content = append(dst.Content, k, v)
		case dst.Content[j+1].Kind == yaml.MappingNode && v.Kind == yaml.MappingNode:
			// The merged mapping takes the position of the later file, which
			// is where a reader looks for problems about it.
			dv := dst.Content[j+1]
			l.merge(dv, v, append(slices.Clip(path), k.Value))
			dst.Content[j] = k
			dv.Line, dv.Column = v.Line, v.Column
			l.fileOf[dv] = l.fileOf[v]
		default:
			dst.Content[j], dst.Content[j+1] = k, v
		}
	}
}

func keyIndex(m *yaml.Node, key string) int {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return i
		}
	}
	return -1
}

func hasAnyKey(m *yaml.Node, keys []string) bool {
	for _, k := range keys {
		if i := keyIndex(m, k); i >= 0 && m.Content[i+1].ShortTag() != "!!null" {
			return true
		}
	}
	return false
}

func deleteKey(m *yaml.Node, key string) {
	if i := keyIndex(m, key); i >= 0 {
		m.Content = slices.Delete(m.Content, i, i+2)
	}
}

// lookup returns the node at a path of mapping keys, or nil.
func lookup(n *yaml.Node, path ...string) *yaml.Node {
	for _, k := range path {
		if n == nil || n.Kind != yaml.MappingNode {
			return nil
		}
		i := keyIndex(n, k)
		if i < 0 {
			return nil
		}
		n = n.Content[i+1]
	}
	return n
}

// templates maps the path of each map to the path of its entry template.
var templates = []struct{ entries, template []string }{
	{[]string{"upstreams"}, []string{"defaults", "upstream"}},
	{[]string{"kafka", "clusters"}, []string{"defaults", "kafka_cluster"}},
	{[]string{"routes"}, []string{"defaults", "route"}},
	{[]string{"projects"}, []string{"defaults", "project"}},
	{[]string{"lanes", "topics"}, []string{"defaults", "lane"}},
}

// applyTemplates replaces each map entry by its template overlaid with the
// entry. Template nodes are copied and marked inherited so their problems are
// reported once, under defaults.
func (l *loader) applyTemplates(root *yaml.Node) {
	for _, t := range templates {
		tmpl, entries := lookup(root, t.template...), lookup(root, t.entries...)
		if tmpl == nil || tmpl.Kind != yaml.MappingNode || entries == nil || entries.Kind != yaml.MappingNode {
			continue
		}
		for i := 1; i < len(entries.Content); i += 2 {
			e := entries.Content[i]
			if e.Kind != yaml.MappingNode {
				continue // the decoder reports it
			}
			c := l.inherit(tmpl)
			c.Line, c.Column = e.Line, e.Column
			l.fileOf[c] = l.fileOf[e]
			delete(l.inherited, c)
			l.merge(c, e, append(slices.Clone(t.entries), entries.Content[i-1].Value))
			entries.Content[i] = c
		}
	}
}

// inherit deep-copies n, marking the copies inherited.
func (l *loader) inherit(n *yaml.Node) *yaml.Node {
	c := *n
	c.Content = make([]*yaml.Node, len(n.Content))
	for i, child := range n.Content {
		c.Content[i] = l.inherit(child)
	}
	l.fileOf[&c] = l.fileOf[n]
	l.inherited[&c] = true
	if l.bad[n] {
		l.bad[&c] = true
	}
	if s, ok := l.expanded[n]; ok {
		l.expanded[&c] = s
	}
	return &c
}

// readProjectFiles parses each project_files entry and adds its projects to
// the projects mapping; a project id defined twice is a problem.
func (l *loader) readProjectFiles(root *yaml.Node) {
	list := lookup(root, "project_files")
	if list == nil || list.Kind != yaml.SequenceNode {
		return // absent, or the decoder reports the wrong shape
	}
	projects := lookup(root, "projects")
	if projects == nil {
		k := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: "projects", Line: list.Line, Column: list.Column}
		projects = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: list.Line, Column: list.Column}
		l.fileOf[k], l.fileOf[projects] = l.fileOf[list], l.fileOf[list]
		root.Content = append(root.Content, k, projects)
	}
	if projects.Kind != yaml.MappingNode {
		return
	}
	for i, item := range list.Content {
		if item.Kind != yaml.ScalarNode || item.Value == "" || l.bad[item] {
			continue
		}
		path := item.Value
		if !filepath.IsAbs(path) {
			path = filepath.Join(filepath.Dir(l.files[l.fileOf[item]]), path)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			l.problem(item, fmt.Sprintf("project_files[%d]", i), fmt.Errorf("%w: %w", ErrRead, err), "cannot read project file: %s", errMsg(err))
			continue
		}
		n := l.parse(source{name: path, data: data})
		if n == nil {
			continue
		}
		l.expandEnv(n, "projects")
		for j := 0; j+1 < len(n.Content); j += 2 {
			k := n.Content[j]
			if prev := keyIndex(projects, k.Value); prev >= 0 {
				l.problem(k, "projects."+k.Value, ErrInvalid, "project %s is already defined at %s:%d",
					k.Value, l.pos(projects.Content[prev]).file, projects.Content[prev].Line)
				continue
			}
			projects.Content = append(projects.Content, k, n.Content[j+1])
		}
	}
}

// errMsg strips the path from *fs.PathError messages, since Problems already
// carry the file name.
func errMsg(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// kindName describes a node for error messages.
func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.ShortTag() == "!!null" {
			return "null"
		}
		return strconv.Quote(n.Value)
	}
	return "nothing"
}
