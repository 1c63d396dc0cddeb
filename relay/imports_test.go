package relay

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/baton-relay/baton"

// allowed is the dependency table of DESIGN.md: which project packages each
// package may import. Anything else is a layering violation.
var allowed = map[string][]string{
	"cmd/baton":      {"relay", "config"},
	"cmd/baton-load": {},
	"relay":          {"routing", "config", "buffer", "envelope"},
	"routing":        {"config", "envelope"},
	"config":         {"envelope"},
	"envelope":       {},
	"buffer":         {},
	"integration":    {"relay", "config", "envelope", "buffer", "routing"},
}

// thirdParty restricts what leaf packages may import beyond the standard
// library (by module path prefix).
var thirdParty = map[string][]string{
	"envelope": {},
	"buffer":   {"github.com/cockroachdb/pebble/v2"},
}

// TestImports walks `go list -deps` for every package and fails on an edge
// the table above does not allow.
func TestImports(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-test=false", "-json=ImportPath,Imports,Standard", module+"/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	type pkg struct {
		ImportPath string
		Imports    []string
		Standard   bool
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	std := map[string]bool{}
	var pkgs []pkg
	for dec.More() {
		var p pkg
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		std[p.ImportPath] = p.Standard
		pkgs = append(pkgs, p)
	}
	seen := 0
	for _, p := range pkgs {
		rel, ok := strings.CutPrefix(p.ImportPath, module+"/")
		if !ok {
			continue
		}
		seen++
		top := topLevel(rel)
		ok = false
		for k := range allowed {
			ok = ok || k == top
		}
		if !ok {
			t.Errorf("package %s is outside the layout (cmd/, relay/, envelope/, buffer/, routing/, config/, integration/)", p.ImportPath)
			continue
		}
		for _, imp := range p.Imports {
			if dep, ok := strings.CutPrefix(imp, module+"/"); ok {
				if d := topLevel(dep); d != top && !contains(allowed[top], d) {
					t.Errorf("%s imports %s: %s may import only %v", rel, dep, top, allowed[top])
				}
				continue
			}
			if list, restricted := thirdParty[top]; restricted && !std[imp] && !hasPrefix(imp, list) {
				t.Errorf("%s imports %s: %s may import only the standard library and %v", rel, imp, top, list)
			}
		}
	}
	if seen < 6 {
		t.Fatalf("go list saw only %d project packages; the test is not looking at the module", seen)
	}
}

func topLevel(rel string) string {
	if strings.HasPrefix(rel, "cmd/") {
		parts := strings.SplitN(rel, "/", 3)
		return parts[0] + "/" + parts[1]
	}
	top, _, _ := strings.Cut(rel, "/")
	return top
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func hasPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if s == p || strings.HasPrefix(s, p+"/") {
			return true
		}
	}
	return false
}
