package config

import (
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// decoder fills a Config from the merged tree, reporting every unknown key
// and type error with its position, and recording where each value came from.
type decoder struct {
	l       *loader
	origins origins
	bad     map[string]bool // paths whose value had a problem
}

var (
	durationType = reflect.TypeFor[time.Duration]()
	byteSizeType = reflect.TypeFor[ByteSize]()
)

func reflectValue(c *Config) reflect.Value { return reflect.ValueOf(c).Elem() }

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// covers reports whether field is, or is inside, a path that failed to
// decode, so Validate's verdict on it would repeat that problem.
func (d *decoder) covers(field string) bool {
	for p := field; ; {
		if d.bad[p] {
			return true
		}
		i := strings.LastIndexAny(p, ".[")
		if i < 0 {
			return false
		}
		p = p[:i]
	}
}

func (d *decoder) fail(n *yaml.Node, path string, kind error, format string, args ...any) {
	d.bad[path] = true
	d.l.problem(n, path, kind, format, args...)
}

// decode stores n into v. A null node leaves v's zero value. at is the node
// whose position Validate reports for path: the key for mapping values, else n.
func (d *decoder) decode(n, at *yaml.Node, v reflect.Value, path string) {
	d.origins[path] = d.l.pos(at)
	if d.l.bad[n] {
		d.bad[path] = true
		return
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		v.SetZero()
		return
	}
	switch v.Type() {
	case rawType:
		v.Set(reflect.ValueOf(Raw{Node: n}))
		return
	case durationType:
		if s, ok := d.scalar(n, path, "a duration"); ok {
			dur, err := parseDuration(s)
			if err != nil {
				d.fail(n, path, ErrType, "%v%s", err, d.from(n))
				return
			}
			v.SetInt(int64(dur))
		}
		return
	case byteSizeType:
		if s, ok := d.scalar(n, path, "a byte size"); ok {
			b, err := ParseByteSize(s)
			if err != nil {
				d.fail(n, path, ErrType, "%v%s", err, d.from(n))
				return
			}
			v.SetInt(int64(b))
		}
		return
	}
	switch v.Kind() {
	case reflect.Pointer: // optional: null (above) leaves nil
		e := reflect.New(v.Type().Elem())
		d.decode(n, at, e.Elem(), path)
		v.Set(e)
	case reflect.Struct:
		d.decodeStruct(n, v, path)
	case reflect.Map:
		d.decodeMap(n, v, path)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.fail(n, path, ErrType, "expected a list, got %s", kindName(n))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, item := range n.Content {
			d.decode(item, item, s.Index(i), fmt.Sprintf("%s[%d]", path, i))
		}
		v.Set(s)
	case reflect.String:
		if s, ok := d.scalar(n, path, "a string"); ok {
			v.SetString(s)
		}
	case reflect.Bool:
		if s, ok := d.scalar(n, path, "true or false"); ok {
			switch s {
			case "true", "True", "TRUE":
				v.SetBool(true)
			case "false", "False", "FALSE":
				v.SetBool(false)
			default:
				d.fail(n, path, ErrType, "expected true or false, got %q%s", s, d.from(n))
			}
		}
	case reflect.Int, reflect.Int64:
		if s, ok := d.scalar(n, path, "an integer"); ok {
			i, err := strconv.ParseInt(s, 0, 64)
			if err != nil || v.OverflowInt(i) {
				d.fail(n, path, ErrType, "expected an integer, got %q%s", s, d.from(n))
				return
			}
			v.SetInt(i)
		}
	case reflect.Float64:
		if s, ok := d.scalar(n, path, "a number"); ok {
			f, err := strconv.ParseFloat(s, 64)
			if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
				d.fail(n, path, ErrType, "expected a number, got %q%s", s, d.from(n))
				return
			}
			v.SetFloat(f)
		}
	default:
		panic(fmt.Sprintf("BUG: config: no decoder for %s at %s", v.Type(), path))
	}
}

// scalar returns n's text, or reports that a scalar (want) was expected.
func (d *decoder) scalar(n *yaml.Node, path, want string) (string, bool) {
	if n.Kind != yaml.ScalarNode {
		d.fail(n, path, ErrType, "expected %s, got %s", want, kindName(n))
		return "", false
	}
	return n.Value, true
}

// from names the ${} reference a bad value came from, if any.
func (d *decoder) from(n *yaml.Node) string {
	if s, ok := d.l.expanded[n]; ok {
		return fmt.Sprintf(" (expanded from %q)", s)
	}
	return ""
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, ErrType, "expected a mapping, got %s", kindName(n))
		return
	}
	fields := structFields(v.Type())
	choice, kinds := choiceField(v.Type())
	names := fields.names
	for _, k := range kinds {
		names = append(slices.Clip(names), structFields(k).names...)
	}
	byKind := make(map[reflect.Type][]int) // the choice's keys, by kind: indexes into n.Content
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		idx, ok := -1, k.Kind == yaml.ScalarNode
		if ok {
			idx = fields.index(k.Value)
			if kind := kindOf(kinds, k.Value); idx < 0 && kind != nil {
				byKind[kind] = append(byKind[kind], i)
				continue
			}
		}
		if idx < 0 {
			name := k.Value
			if k.Kind != yaml.ScalarNode {
				name = kindName(k)
			}
			if why, ok := removedKeys[v.Type()][name]; ok {
				d.fail(k, joinPath(path, name), ErrUnknownKey, "unknown key: %s", why)
				continue
			}
			guesses := suggestions(name, names)
			d.fail(k, joinPath(path, name), ErrUnknownKey, "unknown key%s", didYouMean(guesses))
			if len(guesses) == 1 {
				// The intended key is likely absent: don't also report it missing.
				d.bad[joinPath(path, guesses[0])] = true
			}
			continue
		}
		d.decode(val, k, v.Field(idx), joinPath(path, k.Value))
	}
	if choice >= 0 {
		d.decodeChoice(n, v.Field(choice), path, kinds, byKind)
	}
}

// choiceField returns the index of t's inline choice field (Route.Dest)
// and the kinds it may hold, or -1.
func choiceField(t reflect.Type) (int, []reflect.Type) {
	for i := range t.NumField() {
		if f := t.Field(i); f.Tag.Get("yaml") == ",inline" {
			if kinds := choices(f.Type); kinds != nil {
				return i, kinds
			}
		}
	}
	return -1, nil
}

// kindOf returns the kind among kinds that has the key key, or nil.
func kindOf(kinds []reflect.Type, key string) reflect.Type {
	for _, k := range kinds {
		if structFields(k).index(key) >= 0 {
			return k
		}
	}
	return nil
}

// isSet reports whether a value counts as given: not null and not "".
func isSet(n *yaml.Node) bool {
	return !(n.Kind == yaml.ScalarNode && (n.Value == "" || n.ShortTag() == "!!null"))
}

// decodeChoice stores into v (an interface) the one kind whose selecting
// key, its first field, is set in the mapping n; none leaves v nil, which
// Validate reports. Two selecting keys, or a set key of a kind that was
// not chosen, are errors.
func (d *decoder) decodeChoice(n *yaml.Node, v reflect.Value, path string, kinds []reflect.Type, byKind map[reflect.Type][]int) {
	var chosen []reflect.Type
	var named []string
	var last *yaml.Node
	for _, kind := range kinds {
		tag := structFields(kind).names[0]
		for _, i := range byKind[kind] {
			if k, val := n.Content[i], n.Content[i+1]; k.Value == tag && isSet(val) {
				chosen = append(chosen, kind)
				named = append(named, fmt.Sprintf("%s (%q)", tag, val.Value))
				last = k
			}
		}
	}
	switch len(chosen) {
	case 0:
		return
	case 1:
	default:
		// Reported at the route, as Validate reports a route without one.
		d.bad[path] = true
		if !d.l.inherited[last] {
			d.l.probs.add(d.origins.at(path), path, ErrInvalid, fmt.Sprintf("sets both %s; set exactly one", strings.Join(named, " and ")))
		}
		return
	}
	kind := chosen[0]
	e := reflect.New(kind).Elem()
	fields := structFields(kind)
	for _, other := range kinds {
		for _, i := range byKind[other] {
			k, val := n.Content[i], n.Content[i+1]
			if other == kind {
				d.decode(val, k, e.Field(fields.index(k.Value)), joinPath(path, k.Value))
			} else if isSet(val) {
				d.fail(k, joinPath(path, k.Value), ErrInvalid, "only applies to %s routes", structFields(other).names[0])
			}
		}
	}
	v.Set(e)
}

func (d *decoder) decodeMap(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, ErrType, "expected a mapping, got %s", kindName(n))
		return
	}
	m := reflect.MakeMapWithSize(v.Type(), len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			d.fail(k, path, ErrType, "expected a name as key, got %s", kindName(k))
			continue
		}
		e := reflect.New(v.Type().Elem()).Elem()
		d.decode(val, k, e, joinPath(path, k.Value))
		m.SetMapIndex(reflect.ValueOf(k.Value).Convert(v.Type().Key()), e)
	}
	v.Set(m)
}

// removedKeys says, per struct type, what became of keys that were once in
// the schema, so an old config gets more than "unknown key".
var removedKeys = map[reflect.Type]map[string]string{
	reflect.TypeFor[Route](): {
		"partition_by": "partition_by was removed: it never had an effect; delete it " +
			"(metric buckets are steered with metrics.flush_partitions)",
	},
}

// fieldSet is the yaml-tagged fields of a struct type.
type fieldSet struct {
	names []string // yaml names in declaration order
	index func(name string) int
}

func structFields(t reflect.Type) fieldSet {
	var fs fieldSet
	idx := make(map[string]int)
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if name == "" || name == "-" || !t.Field(i).IsExported() {
			continue
		}
		fs.names = append(fs.names, name)
		idx[name] = i
	}
	fs.index = func(name string) int {
		if i, ok := idx[name]; ok {
			return i
		}
		return -1
	}
	return fs
}

// parseDuration is time.ParseDuration with friendlier errors.
func parseDuration(s string) (time.Duration, error) {
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err == nil {
		return d, nil
	}
	if _, nerr := strconv.ParseFloat(strings.TrimSpace(s), 64); nerr == nil {
		return 0, fmt.Errorf("invalid duration %q: missing unit, e.g. \"%ss\"", s, strings.TrimSpace(s))
	}
	return 0, fmt.Errorf("invalid duration %q: want a number with a unit (ns, us, ms, s, m, h), e.g. \"30s\" or \"72h\"", s)
}
