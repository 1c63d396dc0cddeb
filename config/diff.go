package config

import (
	"maps"
	"reflect"
	"slices"
	"strings"
)

// Changed lists the settings whose values differ between a and b as field
// paths with their YAML names ("server.listen", "upstreams.sentry.urls"),
// sorted: structs and maps are compared field by field and key by key,
// anything else (lists, scalars) whole. A map entry only one side has is
// its own path ("projects.42"). Only names are returned, never values, so
// secrets stay out of logs.
func Changed(a, b Config) []string {
	var out []string
	changed(&out, "", reflect.ValueOf(a), reflect.ValueOf(b))
	slices.Sort(out)
	return out
}

func changed(out *[]string, path string, a, b reflect.Value) {
	switch a.Kind() {
	case reflect.Struct:
		t := a.Type()
		hidden := false // fields without a YAML name: the struct changed as a whole
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			switch {
			case name == "-":
				hidden = hidden || !reflect.DeepEqual(a.Field(i).Interface(), b.Field(i).Interface())
			case name == "" && opts == "inline":
				changed(out, path, a.Field(i), b.Field(i))
			case name != "":
				changed(out, join(path, name), a.Field(i), b.Field(i))
			}
		}
		if hidden && !slices.ContainsFunc(*out, func(p string) bool { return p == path || strings.HasPrefix(p, path+".") }) {
			*out = append(*out, path)
		}
	case reflect.Map:
		if a.Type().Key().Kind() != reflect.String {
			break
		}
		keys := map[string]bool{}
		for _, k := range a.MapKeys() {
			keys[k.String()] = true
		}
		for _, k := range b.MapKeys() {
			keys[k.String()] = true
		}
		for _, k := range slices.Sorted(maps.Keys(keys)) {
			kv := reflect.ValueOf(k).Convert(a.Type().Key())
			va, vb := a.MapIndex(kv), b.MapIndex(kv)
			if !va.IsValid() || !vb.IsValid() {
				*out = append(*out, join(path, k))
				continue
			}
			changed(out, join(path, k), va, vb)
		}
		return
	case reflect.Interface:
		if !a.IsNil() && !b.IsNil() && a.Elem().Type() == b.Elem().Type() {
			changed(out, path, a.Elem(), b.Elem())
			return
		}
	}
	if a.Kind() != reflect.Struct && !reflect.DeepEqual(a.Interface(), b.Interface()) {
		*out = append(*out, path)
	}
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}
